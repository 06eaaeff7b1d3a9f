/* The C-level seam between a stream transport of cppcorn.loop and a compiled
 * protocol (cppcorn.http): two tables of function pointers.
 *
 * A protocol type offers a receiver in its class attribute
 * __cppcorn_receiver__, a transport type offers a sender in
 * __cppcorn_sender__, each a PyCapsule named below. When both ends find the
 * other's table, received bytes go from the transport's buffer to the parser
 * and responses from the protocol's buffer to the socket without a Python
 * object or method call between them. Either end falls back to asyncio's
 * Protocol/Transport methods when the other offers nothing (stdlib asyncio,
 * uvloop, other protocols), and neither package imports the other: the
 * HTTP protocol is built where cppcorn.loop is not (Windows).
 */
#ifndef CPPCORN_STREAM_SEAM_H
#define CPPCORN_STREAM_SEAM_H

#include <Python.h>

#define CC_RECEIVER_CAPSULE "cppcorn.stream_receiver"
#define CC_SENDER_CAPSULE "cppcorn.stream_sender"

typedef struct {
    /* protocol.data_received(): `size` (> 0) bytes in a buffer the transport
     * reuses once this returns, so the protocol copies what it keeps.
     * Returns 0, or -1 with a Python exception set. */
    int (*data_received)(PyObject *protocol, const char *data, size_t size);
} cc_stream_receiver;

typedef struct {
    /* transport.write(): sends what the socket takes now and queues the
     * rest, keeping a reference to `owner` (an immutable bytes object that
     * holds `data`) or, when `owner` is None, a copy. Returns 0, or -1 with
     * a Python exception set. */
    int (*write)(PyObject *transport, const char *data, Py_ssize_t size, PyObject *owner);
    /* transport.writelines() of a tuple of bytes objects: one writev() for
     * all of them when the socket takes them. Returns 0, or -1 with a Python
     * exception set. */
    int (*writelines)(PyObject *transport, PyObject *chunks);
    /* transport.is_closing() */
    int (*is_closing)(PyObject *transport);
} cc_stream_sender;

#endif
