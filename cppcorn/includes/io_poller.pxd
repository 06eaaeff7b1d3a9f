# Declarations of csrc/io_poller.h: readiness polling (epoll, poll) behind
# one interface. Errors come back as -errno.

cdef extern from "io_poller.h":
    ctypedef struct cc_io_event:
        int fd
        unsigned events

    ctypedef struct cc_poller:
        int backend

    unsigned CC_IO_READ
    unsigned CC_IO_WRITE
    int CC_POLLER_EPOLL
    int CC_POLLER_POLL

    int cc_poller_backend_available(int backend)
    int cc_poller_init(cc_poller *p, int backend)
    void cc_poller_close(cc_poller *p)
    int cc_poller_set(cc_poller *p, int fd, unsigned old_events, unsigned new_events)
    int cc_poller_wait(cc_poller *p, cc_io_event *out, int max, int timeout_ms) nogil
