# The ASGI request cycle. See cycle.pxd.
#
# receive() is a coroutine, and send() returns a SendCall, which is one too
# as far as asyncio is concerned: applications and libraries pass them to
# create_task() or run_coroutine_threadsafe(), as in Uvicorn. When nothing
# has to wait they return without suspending.
import collections.abc

cimport cython
from cpython.bytes cimport PyBytes_Check, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject

from cppcorn.http.awaitables cimport STEP_DONE, step_result, thrown, to_wait_on, yielded_or_stop
from cppcorn.http.connection cimport RequestLog
from cppcorn.http.response cimport ResponseWriter
from cppcorn.includes.am_send cimport cc_install_am_send

cdef enum:
    # The connection stops reading once this much request body waits for
    # the application.
    BODY_HIGH_WATER = 65536

cdef bytes EMPTY = b""
cdef dict DISCONNECT = {"type": "http.disconnect"}


cdef class RequestCycle:
    """One request and its response: the ASGI `receive` and `send`."""

    @staticmethod
    cdef RequestCycle create(dict scope, ResponseWriter writer, object loop, RequestLog log,
                             bint expect_continue):
        cdef RequestCycle cycle = RequestCycle.__new__(RequestCycle)
        cycle.scope = scope
        cycle.writer = writer
        cycle.loop = loop
        cycle.log = log
        cycle.expect_continue = expect_continue
        return cycle

    # -- what the connection tells the cycle -----------------------------

    cdef int add_body(self, const char* data, size_t length) except -1:
        if self.send_state == SEND_DONE or self.disconnected:
            return 0  # the application is done with this request: drop it
        chunk = PyBytes_FromStringAndSize(data, length)
        if self.body_chunks is None:
            self.body_chunks = [chunk]
        else:
            self.body_chunks.append(chunk)
        self.body_size += length
        return 0

    cdef int end_body(self) except -1:
        self.message_complete = True
        return 0

    cdef int end_input(self) except -1:
        """The client half-closed: once the body is delivered, the next
        receive() is the disconnect."""
        self.input_ended = True
        return self.wake()

    cdef int disconnect(self) except -1:
        self.disconnected = True
        return self.wake()

    cdef bint body_backlogged(self):
        """Enough body waits for the application that reading should pause."""
        return self.body_size > BODY_HIGH_WATER and not self.message_complete

    cdef int refuse(self, int status) except -1:
        """Answer with a plain error (500, 503) instead of the application."""
        self._response_done()
        self.log.access(self.scope, status)
        return self.writer.refuse(status)

    cdef int app_finished(self, object outcome, object error) except -1:
        """Runs in the request's context: log filters may read it."""
        cdef bint responding = self.send_state == SEND_START and not self.disconnected
        logger = self.log.logger
        if error is not None:
            logger.error("Exception in ASGI application\n", exc_info=error)
            if responding:
                return self.refuse(500)
            return self.writer.abandon()
        if outcome is not None:
            logger.error("ASGI callable should return None, but returned '%s'.", outcome)
            return self.writer.abandon()
        if responding:
            logger.error("ASGI callable returned without starting response.")
            return self.refuse(500)
        if self.send_state == SEND_BODY and not self.disconnected:
            logger.error("ASGI callable returned without completing response.")
            return self.writer.abandon()
        if self.send_state != SEND_DONE:
            # Disconnected before its response was complete: the connection
            # cannot serve another request (a half-closed one is still open).
            return self.writer.abandon()
        return 0

    # -- receive ---------------------------------------------------------

    async def receive(self):
        if self.expect_continue:
            # The client waits for this before sending the body; only send it
            # if the application asks for the body before answering.
            self.expect_continue = False
            if self.send_state == SEND_START and not self.message_complete and not self.disconnected:
                self.writer.write_continue()
        message = self._receive_now()
        if message is not None:
            return message
        # Each caller waits on its own future: several tasks may wait at once
        # (a handler and a disconnect listener), and cancelling one of them
        # must not cancel the others.
        waiter = self.loop.create_future()
        if self.waiters is None:
            self.waiters = [waiter]
        else:
            self.waiters.append(waiter)
        return await waiter

    cdef object _receive_now(self):
        """The message receive() can return without waiting, or None."""
        cdef object body
        cdef bint backlogged
        if self.disconnected or self.send_state == SEND_DONE:
            return DISCONNECT
        if self.body_delivered:
            # The whole body was read: the next event is the disconnect,
            # which a client that half-closed has announced already. Told
            # so, the application is answering nobody (a client that
            # closed looks the same as one that half-closed, until a write
            # fails): as Uvicorn, which treats both as gone, what it sends
            # from now on is dropped and its unfinished response is no
            # error.
            if not self.input_ended:
                return None
            self.disconnected = True
            return DISCONNECT
        if self.body_size == 0 and not self.message_complete:
            return None
        if self.body_chunks is None:
            body = EMPTY
        elif len(self.body_chunks) == 1:
            body = self.body_chunks[0]
        else:
            body = EMPTY.join(self.body_chunks)
        backlogged = self.body_backlogged()
        self.body_chunks = None
        self.body_size = 0
        if self.message_complete:
            self.body_delivered = True
        elif backlogged:
            self.writer.body_taken()
        return {"type": "http.request", "body": body, "more_body": not self.message_complete}

    cdef int wake(self) except -1:
        """Give waiting receive() calls what there is for them."""
        cdef list waiters = self.waiters
        cdef object message
        if not waiters:
            return 0
        self.waiters = None
        for waiter in waiters:
            if waiter.done():
                continue  # cancelled
            message = self._receive_now()
            if message is None:
                if self.waiters is None:
                    self.waiters = [waiter]
                else:
                    self.waiters.append(waiter)
            else:
                waiter.set_result(message)
        return 0

    # -- send ------------------------------------------------------------

    def send(self, message):
        return SendCall.create(self, message)

    cdef object send_message(self, object message):
        """Act on one message of send(); return the future to wait on before
        sending more (the transport's buffer is full), or None."""
        cdef object message_type, waiter
        cdef bint more_body
        cdef int status
        if self.disconnected:
            # As Uvicorn: a response to a client that went away is dropped.
            return None
        if type(message) is not dict:
            if not isinstance(message, dict):
                raise RuntimeError(f"ASGI message must be a dict, got {type(message).__name__}.")
        message_type = (<dict>message).get("type")
        if self.send_state == SEND_START:
            if message_type != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message_type}'.")
            status = self.writer.start((<dict>message).get("status"), (<dict>message).get("headers"))
            self.send_state = SEND_BODY
            self.expect_continue = False
            self.log.access(self.scope, status)
            return None
        if self.send_state == SEND_DONE:
            raise RuntimeError(
                f"Unexpected ASGI message '{message_type}' sent, after response already completed.")
        if message_type != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message_type}'.")
        body = (<dict>message).get("body", EMPTY)
        if not PyBytes_Check(body):
            if isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
            else:
                raise RuntimeError(
                    f"ASGI 'http.response.body' body must be bytes, got {type(body).__name__}.")
        more_body = bool((<dict>message).get("more_body", False))
        if not more_body:
            # Before the writer completes the response: the connection may
            # go on with its next request at once.
            self._response_done()
        waiter = self.writer.write(body, more_body)
        if not more_body:
            self.wake()
        return None if self.disconnected else waiter

    cdef int _response_done(self) except -1:
        """No more response: body the application did not read is dropped
        from now on, and receive() gives the disconnect."""
        self.send_state = SEND_DONE
        self.expect_continue = False
        self.body_chunks = None
        self.body_size = 0
        return 0


@cython.freelist(16)
cdef class SendCall:
    """What send(message) returns: a coroutine in all but type (asyncio
    takes it as one, see the registration below) that acts on the message
    when first stepped, as `async def send()` would. A Cython coroutine cost
    about 600 instructions per send() in its making, stepping and freeing
    (callgrind, 3.11); a hello-world response makes two.

    Nothing happens at call time: run_coroutine_threadsafe(send(message),
    loop) from another thread must leave the work to the loop's thread.
    The interpreter and asyncio's Task step it through am_send and
    tp_iternext (without them, the StopIteration that ended each send()
    made a frame object for its traceback: callgrind, 3.13, 29.5k
    instructions per hello request, 3.11 took am_send and 14.6k);
    __next__, send() and throw() are the same steps for everyone else.
    """

    @staticmethod
    cdef SendCall create(RequestCycle cycle, object message):
        cdef SendCall call = SendCall.__new__(SendCall)
        call.cycle = cycle
        call.message = message
        return call

    def __await__(self):
        return self

    def __iter__(self):
        # What __await__() returns is iterated by `yield from`.
        return self

    def __next__(self):
        return yielded_or_stop(self._step())

    def send(self, value):
        return yielded_or_stop(self._step())

    def throw(self, typ, val=None, tb=None):
        # Into the wait for the drain (a cancellation) or before the start:
        # either way it ends the call, as it would a coroutine.
        self.close()
        raise thrown(typ, val, tb)

    def close(self):
        self.cycle = None
        self.message = None
        self.waiter = None
        self.state = CALL_DONE

    cdef object _step(self):
        """The future to wait on (the transport's buffer is full), or
        STEP_DONE."""
        cdef object waiter
        if self.state == CALL_NEW:
            self.state = CALL_DONE
            waiter = self.cycle.send_message(self.message)
            self.cycle = None
            self.message = None
            if waiter is None:
                return STEP_DONE
            self.waiter = waiter
            self.state = CALL_WAITING
            return to_wait_on(waiter)
        if self.state == CALL_WAITING:
            waiter = self.waiter
            self.waiter = None
            self.state = CALL_DONE
            waiter.result()
            return STEP_DONE
        raise RuntimeError("cannot reuse already awaited coroutine")


cdef int _send_call_am_send(PyObject *call, PyObject *arg, PyObject **result) except -1:
    return step_result((<SendCall>call)._step(), result)


cc_install_am_send(SendCall, _send_call_am_send)
collections.abc.Coroutine.register(SendCall)
