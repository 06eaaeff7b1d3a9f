/* Readiness polling for cppcorn.loop: one small interface, two backends.
 *
 *   epoll  Linux, the default there;
 *   poll   any POSIX system; also selectable on Linux so that the loop's
 *          tests run on both.
 *
 * The loop owns the interest of every descriptor (which events it wants)
 * and passes the old and the new interest on every change, so the backends
 * keep no per-descriptor state of their own beyond what the OS needs.
 * Readiness is level-triggered, as with the selectors module.
 *
 * A completion backend (IOCP) does not fit a readiness interface; it will
 * sit beside this one, behind the loop's transports, not inside it.
 *
 * Plain C, no Python: errors are returned as -errno.
 */
#ifndef CPPCORN_IO_POLLER_H
#define CPPCORN_IO_POLLER_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>

#ifdef __linux__
#include <sys/epoll.h>
#define CC_HAVE_EPOLL 1
#else
#define CC_HAVE_EPOLL 0
#endif

#define CC_IO_READ 1u
#define CC_IO_WRITE 2u

#define CC_POLLER_EPOLL 1
#define CC_POLLER_POLL 2

typedef struct {
    int fd;
    unsigned events; /* CC_IO_READ | CC_IO_WRITE; errors and hang-ups report both */
} cc_io_event;

typedef struct {
    int backend;
    int epfd;                 /* epoll: the epoll descriptor */
    struct pollfd *pollfds;   /* poll: the watched descriptors, packed */
    int npollfds;
    int pollfds_cap;
    int *poll_index;          /* poll: fd -> index in pollfds, or -1 */
    int poll_index_cap;
#if CC_HAVE_EPOLL
    struct epoll_event *epoll_events;
    int epoll_events_cap;
#endif
} cc_poller;

static inline int cc_poller_backend_available(int backend) {
    return backend == CC_POLLER_POLL || (backend == CC_POLLER_EPOLL && CC_HAVE_EPOLL);
}

/* 0 on success, -errno on failure. */
static inline int cc_poller_init(cc_poller *p, int backend) {
    memset(p, 0, sizeof(*p));
    p->epfd = -1;
    p->backend = backend;
    if (!cc_poller_backend_available(backend))
        return -EINVAL;
#if CC_HAVE_EPOLL
    if (backend == CC_POLLER_EPOLL) {
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epfd < 0)
            return -errno;
    }
#endif
    return 0;
}

static inline void cc_poller_close(cc_poller *p) {
    if (p->epfd >= 0) {
        close(p->epfd);
        p->epfd = -1;
    }
    free(p->pollfds);
    free(p->poll_index);
#if CC_HAVE_EPOLL
    free(p->epoll_events);
    p->epoll_events = NULL;
    p->epoll_events_cap = 0;
#endif
    p->pollfds = NULL;
    p->poll_index = NULL;
    p->npollfds = p->pollfds_cap = p->poll_index_cap = 0;
}

static inline short cc_poll_mask(unsigned events) {
    return (short)(((events & CC_IO_READ) ? POLLIN : 0) | ((events & CC_IO_WRITE) ? POLLOUT : 0));
}

static inline int cc_poll_set(cc_poller *p, int fd, unsigned events) {
    if (fd >= p->poll_index_cap) {
        int cap = p->poll_index_cap ? p->poll_index_cap : 64;
        while (cap <= fd)
            cap *= 2;
        int *index = (int *)realloc(p->poll_index, sizeof(int) * (size_t)cap);
        if (index == NULL)
            return -ENOMEM;
        for (int i = p->poll_index_cap; i < cap; i++)
            index[i] = -1;
        p->poll_index = index;
        p->poll_index_cap = cap;
    }
    int at = p->poll_index[fd];
    if (events == 0) {
        if (at >= 0) {
            /* Keep the array packed: the last entry takes the freed place. */
            int last = --p->npollfds;
            if (at != last) {
                p->pollfds[at] = p->pollfds[last];
                p->poll_index[p->pollfds[at].fd] = at;
            }
            p->poll_index[fd] = -1;
        }
        return 0;
    }
    if (at < 0) {
        if (p->npollfds == p->pollfds_cap) {
            int cap = p->pollfds_cap ? p->pollfds_cap * 2 : 64;
            struct pollfd *fds = (struct pollfd *)realloc(p->pollfds, sizeof(struct pollfd) * (size_t)cap);
            if (fds == NULL)
                return -ENOMEM;
            p->pollfds = fds;
            p->pollfds_cap = cap;
        }
        at = p->npollfds++;
        p->poll_index[fd] = at;
        p->pollfds[at].fd = fd;
    }
    p->pollfds[at].events = cc_poll_mask(events);
    p->pollfds[at].revents = 0;
    return 0;
}

/* Change fd's interest from old_events to new_events (either may be 0).
 * A descriptor closed while watched is forgotten by epoll on its own; the
 * fallbacks below make re-registering a reused number work all the same. */
static inline int cc_poller_set(cc_poller *p, int fd, unsigned old_events, unsigned new_events) {
    if (fd < 0)
        return -EBADF;
    if (p->backend == CC_POLLER_POLL)
        return cc_poll_set(p, fd, new_events);
#if CC_HAVE_EPOLL
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.data.fd = fd;
    ev.events = ((new_events & CC_IO_READ) ? EPOLLIN : 0) | ((new_events & CC_IO_WRITE) ? EPOLLOUT : 0);
    if (new_events == 0) {
        if (old_events == 0)
            return 0;
        if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF)
            return -errno;
        return 0;
    }
    if (old_events == 0) {
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
            return 0;
        if (errno != EEXIST)
            return -errno;
        return epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    }
    if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
#else
    return -EINVAL;
#endif
}

/* Wait up to timeout_ms (-1: forever) and fill `out` with at most `max`
 * ready descriptors. Returns their count, or -errno (-EINTR included). */
static inline int cc_poller_wait(cc_poller *p, cc_io_event *out, int max, int timeout_ms) {
#if CC_HAVE_EPOLL
    if (p->backend == CC_POLLER_EPOLL) {
        if (p->epoll_events_cap < max) {
            struct epoll_event *events =
                (struct epoll_event *)realloc(p->epoll_events, sizeof(struct epoll_event) * (size_t)max);
            if (events == NULL)
                return -ENOMEM;
            p->epoll_events = events;
            p->epoll_events_cap = max;
        }
        int n = epoll_wait(p->epfd, p->epoll_events, max, timeout_ms);
        if (n < 0)
            return -errno;
        for (int i = 0; i < n; i++) {
            uint32_t e = p->epoll_events[i].events;
            unsigned events = 0;
            /* As selectors does: an error or hang-up wakes readers and writers. */
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
                events |= CC_IO_READ;
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                events |= CC_IO_WRITE;
            out[i].fd = p->epoll_events[i].data.fd;
            out[i].events = events;
        }
        return n;
    }
#endif
    int n = poll(p->pollfds, (nfds_t)p->npollfds, timeout_ms);
    if (n < 0)
        return -errno;
    int count = 0;
    for (int i = 0; i < p->npollfds && count < n && count < max; i++) {
        short e = p->pollfds[i].revents;
        if (e == 0)
            continue;
        unsigned events = 0;
        if (e & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
            events |= CC_IO_READ;
        if (e & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))
            events |= CC_IO_WRITE;
        out[count].fd = p->pollfds[i].fd;
        out[count].events = events;
        count++;
    }
    return count;
}

#endif
