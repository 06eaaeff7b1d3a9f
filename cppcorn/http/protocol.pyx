# The HTTP/1.1 ASGI protocol. See protocol.pxd for the shape.
#
# Life of a request: data_received() (or the transport's C-level receiver)
# -> _feed() -> llhttp, whose callbacks stay in C until the header section is
# complete; then on_headers_complete() builds the scope once. The parser stops
# at the end of each message, and once the bytes at hand are parsed the
# application is started in the connection's task (RequestRunner): at once,
# when the task is parked between requests, else on its first step. send()
# serialises the head into the connection's
# output buffer and holds it until the first body message, so that a small
# response leaves in one write. The next pipelined request is parsed only
# when this response is complete.
import asyncio
import collections.abc
import contextvars
import logging
import sys
import urllib.parse

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.contextvars cimport PyContext_CopyCurrent, PyContext_Enter, PyContext_Exit
from cpython.dict cimport PyDict_GetItem
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid, PyCapsule_New
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF

from cppcorn.http.connection cimport Connection, ServerState
from cppcorn.includes.am_send cimport PYGEN_NEXT, PYGEN_RETURN, cc_install_am_send
from cppcorn.includes.python cimport PyCoro_CheckExact, PyIter_Send
from cppcorn.http.parser cimport (
    PARSE_ERROR,
    PARSE_MESSAGE_END,
    PARSE_NEED_MORE,
    ParserCallbacks,
    ParseResult,
    RequestParser,
)
from cppcorn.http.response cimport HeadInfo, OutputBuffer, status_line, write_headers, write_status_line
from cppcorn.http.websocket cimport WebSocketProtocol, WebSocketSettings
from cppcorn.includes.stream_seam cimport CC_RECEIVER_CAPSULE, CC_SENDER_CAPSULE, cc_stream_receiver, cc_stream_sender

from cppcorn.http.websocket import valid_key

# Reading pauses once this much request body waits for the application.
DEF BODY_HIGH_WATER = 65536
# Bodies up to this size are copied next to the head into one bytes object
# (one write); larger ones go out as separate buffers of one writelines().
DEF BODY_COPY_LIMIT = 16384

cdef object Context = contextvars.Context
# Which task runs on which loop, as asyncio.current_task() reads it: a
# Task's step sets its entry around its coroutine's step (through
# asyncio.tasks._enter_task()/_leave_task(); this sets it directly, at a
# fifth of their cost), and so does RequestRunner.run_eagerly().
cdef dict current_tasks = asyncio.tasks._current_tasks
# Python 3.11+ count a task's cancel() requests (cancelling(), uncancel()).
cdef bint TASKS_COUNT_CANCELS = sys.version_info >= (3, 11)
cdef int INFO = logging.INFO

cdef bytes CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
cdef bytes CRLF = b"\r\n"
cdef bytes LAST_CHUNK = b"0\r\n\r\n"
cdef bytes CHUNKED_HEADER = b"transfer-encoding: chunked\r\n"
cdef bytes CLOSE_HEADER = b"connection: close\r\n"
cdef bytes KEEP_ALIVE_HEADER = b"connection: keep-alive\r\n"
cdef bytes EMPTY = b""
cdef str ACCESS_LOG_FORMAT = '%s - "%s %s HTTP/%s" %d'

cdef dict DISCONNECT = {"type": "http.disconnect"}

ERROR_BODIES = {
    400: b"Invalid HTTP request received.",
    408: b"Request Timeout",
    426: b"Upgrade Required",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


cdef class HttpSettings:
    """Settings of the HTTP protocol, resolved once per server from Config."""

    def __init__(
        self,
        *,
        app,
        dict app_state,
        str root_path = "",
        str asgi_version = "3.0",
        limit_concurrency = None,
        double timeout_keep_alive = 5.0,
        double timeout_request_headers = 30.0,
        size_t max_head_size = 65536,
        trusted_hosts = None,
        bint access_log = True,
        bint reset_contextvars = False,
        WebSocketSettings websocket = None,
        logger = None,
        access_logger = None,
    ):
        self.app = app
        self.app_state = app_state
        self.root_path = root_path
        self.root_path_bytes = root_path.encode("utf-8")
        self.asgi = {"version": asgi_version, "spec_version": "2.3"}
        self.websocket_asgi = {"version": asgi_version, "spec_version": "2.4"}
        # Copying this dict and replacing values costs less than inserting
        # 13 keys into a new one (callgrind: 400 fewer instructions per
        # request), and the keys keep this order.
        self.http_scope = {
            "type": "http",
            "asgi": self.asgi,
            "http_version": None,
            "server": None,
            "client": None,
            "scheme": None,
            "method": None,
            "root_path": root_path,
            "path": None,
            "raw_path": None,
            "query_string": None,
            "headers": None,
            "state": None,
        }
        # None when WebSockets are off (--ws none, or a WSGI application).
        self.websocket = websocket
        self.limit_concurrency = -1 if limit_concurrency is None else limit_concurrency
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_request_headers = timeout_request_headers
        self.max_head_size = max_head_size
        self.trusted_hosts = trusted_hosts
        self.logger = logger if logger is not None else logging.getLogger("cppcorn.error")
        self.access_logger = access_logger if access_logger is not None else logging.getLogger("cppcorn.access")
        # As Uvicorn: no handlers at startup means no access log at all, and
        # nothing is formatted per request.
        self.access_log = access_log and self.access_logger.hasHandlers()
        self.reset_contextvars = reset_contextvars


cdef class RequestCycle:
    """One request and its response: the ASGI `receive` and `send`."""

    cdef int _fail_response(self) except -1:
        """Answer 500 for an application that failed before responding."""
        self.response_started = True
        self.response_complete = True
        self.keep_alive = False
        self.protocol.state.total_requests += 1
        self.protocol._access_log(self, 500)
        self.protocol._send_error_response(500, ERROR_BODIES[500])
        return 0

    # -- receive ---------------------------------------------------------
    # receive() is a coroutine, and send() returns a SendCall, which is one
    # too as far as asyncio is concerned: applications and libraries pass
    # them to create_task() or run_coroutine_threadsafe(), as in Uvicorn.
    # When nothing has to wait they return without suspending.

    async def receive(self):
        cdef HttpProtocol protocol = self.protocol
        if self.expect_continue:
            # The client waits for this before sending the body; only send it
            # if the application asks for the body before answering.
            self.expect_continue = False
            if not self.response_started and not self.message_complete and not self.disconnected:
                protocol._write(CONTINUE_RESPONSE)
        message = self._receive_now()
        if message is not None:
            return message
        # Each caller waits on its own future: several tasks may wait at once
        # (a handler and a disconnect listener), and cancelling one of them
        # must not cancel the others.
        waiter = protocol.loop.create_future()
        if self.waiters is None:
            self.waiters = [waiter]
        else:
            self.waiters.append(waiter)
        if protocol.body_backpressure:
            protocol.body_backpressure = False
            protocol._update_reading()
        return await waiter

    cdef object _receive_now(self):
        """The message receive() can return without waiting, or None."""
        cdef object body
        if self.disconnected or self.response_complete:
            return DISCONNECT
        if self.body_delivered:
            # The whole body was read: the next event is the disconnect,
            # which a client that half-closed has announced already.
            return DISCONNECT if self.protocol.eof else None
        if self.body_size == 0 and not self.message_complete:
            return None
        if len(self.body_chunks) == 1:
            body = self.body_chunks[0]
        elif self.body_chunks:
            body = EMPTY.join(self.body_chunks)
        else:
            body = EMPTY
        self.body_chunks = []
        self.body_size = 0
        if self.message_complete:
            self.body_delivered = True
        elif self.protocol.body_backpressure:
            self.protocol.body_backpressure = False
            self.protocol._update_reading()
        return {"type": "http.request", "body": body, "more_body": not self.message_complete}

    cdef int _wake(self) except -1:
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

    cdef object _send(self, object message):
        """Act on one message of send(); return the future to wait on before
        sending more (the transport's buffer is full), or None."""
        cdef HttpProtocol protocol = self.protocol
        cdef object message_type
        if self.disconnected:
            # As Uvicorn: a response to a client that went away is dropped.
            return None
        if type(message) is not dict:
            if not isinstance(message, dict):
                raise RuntimeError(f"ASGI message must be a dict, got {type(message).__name__}.")
        message_type = (<dict>message).get("type")
        if not self.response_started:
            if message_type != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message_type}'.")
            self._start_response(<dict>message)
            return None
        if self.response_complete:
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
        self._write_body(body, bool((<dict>message).get("more_body", False)))
        if protocol.writing_paused and not self.disconnected:
            # The client reads slower than the application writes: wait until
            # the transport's buffer drains below its low-water mark.
            return protocol.drained()
        return None

    cdef int _start_response(self, dict message) except -1:
        cdef HttpProtocol protocol = self.protocol
        cdef OutputBuffer out = protocol.out
        cdef HeadInfo info
        cdef object status = message.get("status")
        cdef int code
        out.buf.length = 0
        if protocol.eof and protocol.pending is None:
            # The client half-closed and nothing else is buffered: this is
            # the last response.
            self.keep_alive = False
        write_status_line(out, status)
        code = status
        out.append_bytes(protocol.state.default_headers)
        write_headers(out, message.get("headers"), &info)
        self.response_started = True
        self.expect_continue = False
        protocol._access_log(self, code)

        self.no_body = self.is_head or code < 200 or code == 204 or code == 304
        if info.connection_close:
            self.keep_alive = False
        if info.chunked:
            self.chunked = not self.no_body
        elif info.content_length >= 0:
            if not self.no_body:
                self.content_remaining = info.content_length
        elif not self.no_body:
            if self.http_1_0:
                # An HTTP/1.0 client cannot read chunked: the end of the body
                # is the end of the connection.
                self.keep_alive = False
            else:
                self.chunked = True
                out.append_bytes(CHUNKED_HEADER)
        if not self.keep_alive:
            if not info.connection_close:
                out.append_bytes(CLOSE_HEADER)
        elif self.http_1_0 and not info.has_connection:
            out.append_bytes(KEEP_ALIVE_HEADER)
        out.append(b"\r\n", 2)
        return 0

    cdef int _write_body(self, bytes body, bint more_body) except -1:
        cdef HttpProtocol protocol = self.protocol
        cdef OutputBuffer out = protocol.out
        cdef size_t size = <size_t>PyBytes_GET_SIZE(body)
        if self.no_body:
            size = 0
        elif self.content_remaining >= 0:
            if <long long>size > self.content_remaining:
                raise RuntimeError("Response content longer than Content-Length")
            self.content_remaining -= size
            if not more_body and self.content_remaining != 0:
                # Send what there is, then fail the response: the connection
                # is closed by the caller.
                if out.buf.length or size:
                    self._flush_with(body, size, False)
                raise RuntimeError("Response content shorter than Content-Length")
        if not more_body:
            # Counted before the last bytes go out, so that a client holding
            # the response never sees a count without it.
            protocol.state.total_requests += 1
        if size or out.buf.length or (self.chunked and not more_body):
            self._flush_with(body, size, more_body)
        if not more_body:
            self.response_complete = True
            protocol._response_complete()
        return 0

    cdef int _flush_with(self, bytes body, size_t size, bint more_body) except -1:
        """Write the held head (if any) and one body message, framed."""
        cdef HttpProtocol protocol = self.protocol
        cdef OutputBuffer out = protocol.out
        cdef bint last_chunk = self.chunked and not more_body
        cdef bytes head
        if self.chunked and size:
            out.append_chunk_size(size)
        if size <= BODY_COPY_LIMIT:
            if size:
                out.append(PyBytes_AS_STRING(body), size)
                if self.chunked:
                    out.append(b"\r\n", 2)
            if last_chunk:
                out.append(b"0\r\n\r\n", 5)
            protocol._write_output()
        else:
            head = out.take()
            if self.chunked:
                protocol._write_many((head, body, CRLF + LAST_CHUNK if last_chunk else CRLF))
            elif head:
                protocol._write_many((head, body))
            else:
                protocol._write(body)
        return 0


# SendCall and RequestRunner are coroutines in all but type: each has one
# _step() that returns what to yield, or STEP_DONE once it is finished (an
# application's coroutine may yield None, a bare yield, so None cannot say
# it). csrc/am_send.h turns that into a return without raising StopIteration
# in the two slots the interpreter steps them through (am_send, and
# tp_iternext for `await` on 3.12+); the Python-level __next__(), send() and
# throw() raise it as coroutines do.
cdef object STEP_DONE = object()
# What RequestRunner._step_app() returns once the application has returned.
cdef object APP_RETURNED = object()


cdef int _send_result(object step, PyObject **result) except -1:
    """am_send's result for what a _step() returned."""
    if step is STEP_DONE:
        Py_INCREF(None)
        result[0] = <PyObject *>None
        return PYGEN_RETURN
    Py_INCREF(step)
    result[0] = <PyObject *>step
    return PYGEN_NEXT


cdef object _yielded_or_stop(object step):
    if step is STEP_DONE:
        raise StopIteration
    return step


cdef object _to_wait_on(object future):
    """`future` as `await future` hands it to the task, which checks the
    flag to tell a wait from a stray yield."""
    future._asyncio_future_blocking = True
    return future


cdef object _thrown(object typ, object val, object tb):
    """The exception of a coroutine's throw(typ[, val[, tb]])."""
    if val is None:
        val = typ if isinstance(typ, BaseException) else typ()
    if tb is not None:
        val = val.with_traceback(tb)
    return val


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
    tp_iternext (below; without them, the StopIteration that ends each
    send() made a frame object for its traceback: callgrind, 3.13, 29.5k
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
        return _yielded_or_stop(self._step())

    def send(self, value):
        return _yielded_or_stop(self._step())

    def throw(self, typ, val=None, tb=None):
        # Into the wait for the drain (a cancellation) or before the start:
        # either way it ends the call, as it would a coroutine.
        self.close()
        raise _thrown(typ, val, tb)

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
            waiter = self.cycle._send(self.message)
            self.cycle = None
            self.message = None
            if waiter is None:
                return STEP_DONE
            self.waiter = waiter
            self.state = CALL_WAITING
            return _to_wait_on(waiter)
        if self.state == CALL_WAITING:
            waiter = self.waiter
            self.waiter = None
            self.state = CALL_DONE
            waiter.result()
            return STEP_DONE
        raise RuntimeError("cannot reuse already awaited coroutine")


cdef int _send_call_am_send(PyObject *call, PyObject *arg, PyObject **result) except -1:
    return _send_result((<SendCall>call)._step(), result)


cc_install_am_send(SendCall, _send_call_am_send)
collections.abc.Coroutine.register(SendCall)


async def _awaited(awaitable):
    """An application's awaitable that is not a native coroutine, as one (the
    same errors as `await` for what cannot be awaited)."""
    return await awaitable


cdef class RequestRunner:
    """The coroutine of the asyncio Task that runs a connection's requests'
    applications, one request after another.

    A Task per request was the largest single cost of serving a small one:
    its init (a "Task-N" name, a call_soon), its registration in asyncio's
    WeakSet of tasks and its removal from it took a fifth of the server's
    user-space instructions per hello-world request (callgrind, 3.11: 26.6k
    with a Task per request, 21.3k with this). A connection's requests come
    one after another, so one Task serves them all and waits on a future in
    between.

    The Task steps this object as its coroutine. Each step enters the
    request's own context (a fresh copy per request, as a Task of its own
    would have) and steps the application's coroutine in it: what that
    yields (futures) goes to the Task, what the Task throws (cancellation)
    goes to the application. An application sees what it would see in a
    task of its own, except the task's identity: asyncio.current_task() is
    the connection's task, the same object for each of its requests.

    An application may go on running after its response is complete. A
    request that arrives meanwhile gets a new runner, which becomes the
    connection's; the old one ends with its application.

    While the task is parked between requests, the next request's
    application is stepped at once by run_eagerly(), with the task set as
    the loop's current one: most applications answer without waiting, and
    then the task never wakes (callgrind, 3.11: 19.6k user-space
    instructions per keep-alive hello request through the task, 14.6k so).

    The task steps it through am_send (csrc/am_send.h), which lets it end
    without raising StopIteration: with Connection: close that is once per
    request.
    """

    @staticmethod
    cdef RequestRunner start(HttpProtocol protocol, RequestCycle cycle, object context):
        """A runner whose task's first step starts `cycle` in `context`."""
        cdef RequestRunner runner = RequestRunner.__new__(RequestRunner)
        runner.protocol = protocol
        runner.next_cycle = cycle
        runner.next_context = context
        runner.task = protocol.loop.create_task(runner)
        # Counted as running while a request's application runs in it
        # (--limit-concurrency, graceful shutdown): until _request_done().
        protocol.state.tasks.add(runner.task)
        return runner

    cdef bint waiting(self) except -1:
        """Between requests: resume() may hand it the next one."""
        return self.waiter is not None and not self.waiter.done()

    cdef int resume(self, RequestCycle cycle, object context) except -1:
        self.next_cycle = cycle
        self.next_context = context
        self.waiter.set_result(None)
        return 0

    cdef int wake(self) except -1:
        """Wake the task if it is parked on its waiter: to take over an
        application that run_eagerly() handed over, or else to end (the
        connection brings no more requests)."""
        if self.waiting():
            self.waiter.set_result(None)
        return 0

    # -- the coroutine protocol, as asyncio's Task drives it ------------

    @property
    def __qualname__(self):
        return "RequestRunner"

    def __await__(self):
        return self

    def __next__(self):
        return _yielded_or_stop(self._step(None, None))

    def send(self, value):
        return _yielded_or_stop(self._step(value, None))

    def throw(self, typ, val=None, tb=None):
        return _yielded_or_stop(self._step(None, _thrown(typ, val, tb)))

    def close(self):
        coroutine = self.coroutine
        if coroutine is not None:
            self.coroutine = None
            PyContext_Enter(self.context)
            try:
                coroutine.close()
            finally:
                PyContext_Exit(self.context)
        if self.cycle is not None:
            self.protocol.state.tasks.discard(self.task)
        self._finish()

    cdef int run_eagerly(self, RequestCycle cycle, object context) except -1:
        """Start `cycle`'s application at once, inside the callback that
        brought its request, as the task's own step would have: an
        application that never waits is done without a trip through the
        loop's ready queue. The task stays parked on its waiter meanwhile;
        whatever the application waits on first, the task takes over."""
        cdef object loop = self.protocol.loop
        cdef object yielded
        self.protocol.state.tasks.add(self.task)
        if PyDict_GetItem(current_tasks, loop) is not NULL:
            # Inside another task's step, not a loop callback: asyncio.
            # current_task() could not be this task, so its own step runs it.
            return self.resume(cycle, context)
        current_tasks[loop] = self.task
        self.cycle = cycle
        self.context = context
        try:
            yielded = self._step_app(None, None)
        finally:
            del current_tasks[loop]
        if yielded is not APP_RETURNED:
            self.handoff = yielded
            self.handed_off = True
            # A cancel() of the task (by the application) has woken it
            # already: then wake() leaves it, and the task throws that in.
            self.wake()
        return 0

    cdef object _step(self, object value, object exc):
        """One step of the task: the application's next step, or the start
        of the next request, or the wait for it. Returns what the task is to
        wait on, or STEP_DONE when the task is to end."""
        cdef RequestCycle cycle
        cdef object yielded
        if self.handed_off:
            # run_eagerly() started the application, which yielded `handoff`.
            self.handed_off = False
            self.waiter = None
            yielded = self.handoff
            self.handoff = None
            if exc is not None:
                # A cancel() since: as a task would, cancel what the
                # application waits on; the exception goes to it below.
                if getattr(yielded, "_asyncio_future_blocking", None) is not None:
                    yielded.cancel()
            elif yielded is not None:
                return yielded
            # A bare yield (asyncio.sleep(0)): the wake-up was its turn.
        elif self.cycle is None:
            # The first step, or woken between requests.
            self.waiter = None
            cycle = self.next_cycle
            if exc is not None:
                # Cancelled between requests (the loop shutting down, or a
                # cancel() that came after its request had ended). A request
                # handed over meanwhile is dropped with its connection, as
                # a task cancelled before its first step never runs.
                if cycle is not None:
                    self.protocol.state.tasks.discard(self.task)
                    self.protocol.transport.close()
                self._finish()
                raise exc
            if cycle is None:
                self._finish()
                return STEP_DONE
            self.next_cycle = None
            self.cycle = cycle
            self.context = self.next_context
            self.next_context = None
        yielded = self._step_app(value, exc)
        if yielded is not APP_RETURNED:
            return yielded
        return self._between_requests()

    cdef object _step_app(self, object value, object exc):
        """Step the current request's application in its context: returns
        what it yielded, or APP_RETURNED once it has returned or raised (and
        its request is done)."""
        cdef RequestCycle cycle = self.cycle
        cdef PyObject *result = NULL
        cdef object outcome
        context = self.context
        PyContext_Enter(context)
        try:
            try:
                if self.coroutine is None:
                    awaitable = self.protocol.settings.app(cycle.scope, cycle.receive, cycle.send)
                    self.coroutine = awaitable if PyCoro_CheckExact(awaitable) else _awaited(awaitable)
                if exc is None:
                    status = PyIter_Send(self.coroutine, value, &result)
                    outcome = <object>result
                    Py_XDECREF(result)
                    if status == PYGEN_NEXT:
                        return outcome
                else:
                    self.thrown = True
                    try:
                        return self.coroutine.throw(exc)
                    except StopIteration as stop:
                        outcome = stop.value
            except BaseException as error:
                self._request_done(cycle, None, error)
            else:
                self._request_done(cycle, outcome, None)
        finally:
            PyContext_Exit(context)
        self.context = None
        return APP_RETURNED

    cdef int _request_done(self, RequestCycle cycle, object outcome, object error) except -1:
        """The application of `cycle` has returned `outcome` or raised
        `error` (run in the request's context: log filters may read it)."""
        cdef HttpProtocol protocol = self.protocol
        self.coroutine = None
        self.cycle = None
        try:
            if error is not None:
                protocol._app_exception(cycle, error)
            elif outcome is not None:
                protocol.settings.logger.error(
                    "ASGI callable should return None, but returned '%s'.", outcome)
                protocol.transport.close()
            elif not cycle.response_started and not cycle.disconnected:
                protocol.settings.logger.error("ASGI callable returned without starting response.")
                cycle._fail_response()
            elif not cycle.response_complete and not cycle.disconnected:
                protocol.settings.logger.error("ASGI callable returned without completing response.")
                protocol.transport.close()
        finally:
            protocol.state.tasks.discard(self.task)
        return 0

    cdef object _between_requests(self):
        """The future to wait on for the connection's next request, or
        STEP_DONE."""
        cdef HttpProtocol protocol = self.protocol
        if protocol.runner is not self or protocol.transport is None or protocol._closing():
            self._finish()
            return STEP_DONE
        if self.thrown:
            # A cancellation the application absorbed is not carried into
            # the next request, which a task of its own would start without.
            self.thrown = False
            if TASKS_COUNT_CANCELS:
                while self.task.uncancel():
                    pass
        self.waiter = protocol.loop.create_future()
        return _to_wait_on(self.waiter)

    cdef int _finish(self) except -1:
        cdef HttpProtocol protocol = self.protocol
        if protocol is not None and protocol.runner is self:
            protocol.runner = None
        self.protocol = None
        self.next_cycle = None
        self.next_context = None
        self.context = None
        self.waiter = None
        self.handoff = None
        return 0


cdef int _runner_am_send(PyObject *runner, PyObject *arg, PyObject **result) except -1:
    return _send_result((<RequestRunner>runner)._step(<object>arg, None), result)


cc_install_am_send(RequestRunner, _runner_am_send)
# Task() takes a coroutine: asyncio.iscoroutine() asks collections.abc.
collections.abc.Coroutine.register(RequestRunner)


# The parser reports to its protocol through these.

cdef int _headers_complete(void* protocol) except -1:
    return (<HttpProtocol>protocol).on_headers_complete()


cdef int _body(void* protocol, const char* data, size_t length) except -1:
    return (<HttpProtocol>protocol).on_body(data, length)


cdef int _message_complete(void* protocol) except -1:
    return (<HttpProtocol>protocol).on_message_complete()


cdef ParserCallbacks PARSER_CALLBACKS = ParserCallbacks(_headers_complete, _body, _message_complete)


# The protocol's side of csrc/stream_seam.h: cppcorn.loop's transports hand
# their read buffer to _feed() through this.

cdef int _seam_data_received(object protocol, const char* data, size_t length) except -1:
    return (<HttpProtocol>protocol)._feed(data, length, None)


cdef cc_stream_receiver RECEIVER = cc_stream_receiver(_seam_data_received)


cdef class HttpProtocol(Connection):
    """asyncio Protocol for one HTTP/1.1 connection."""

    __cppcorn_receiver__ = PyCapsule_New(&RECEIVER, CC_RECEIVER_CAPSULE, NULL)

    def __init__(self, HttpSettings settings not None, ServerState state not None, loop=None):
        self.settings = settings
        self.state = state
        self.parser = RequestParser.create(<void*>self, PARSER_CALLBACKS, settings.max_head_size)
        self.out = OutputBuffer()
        self.loop = asyncio.get_running_loop() if loop is None else loop

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport):
        cdef object peer, local
        self.transport = transport
        sender = getattr(type(transport), "__cppcorn_sender__", None)
        if PyCapsule_IsValid(sender, CC_SENDER_CAPSULE):
            self.sender = <const cc_stream_sender *>PyCapsule_GetPointer(sender, CC_SENDER_CAPSULE)
        # Work started from this connection's own callbacks (not from inside
        # an application's task) runs in this context, so that context
        # variables an application sets never leak into the next request.
        self.context = contextvars.copy_context()
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        if isinstance(local, tuple) and len(local) >= 2:
            self.server = (str(local[0]), int(local[1]))
        elif isinstance(local, str) and local:
            # Unix domain socket: (path, None), as Uvicorn.
            self.server = (local, None)
        self.scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        # A new connection gets the header deadline: it has to send a request.
        self.deadline = self.state.now + self.settings.timeout_request_headers
        self.idle = True

    def connection_lost(self, exc):
        cdef RequestCycle cycle = self.cycle
        self.state.connections.discard(self)
        self.pending = None
        self.deadline = 0.0
        self.cycle = None
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle._wake()
        self._release_drain_waiters()
        if self.runner is not None:
            self.runner.wake()

    def eof_received(self):
        cdef RequestCycle cycle = self.cycle
        self.eof = True
        if cycle is not None and cycle.waiters:
            cycle._wake()  # an application waiting for the disconnect gets it
        if self.pending is not None or (
                cycle is not None and cycle.message_complete and not cycle.response_complete):
            # The client has sent its requests and half-closed: keep the
            # connection open long enough to answer them, then close.
            if cycle is not None and self.pending is None:
                cycle.keep_alive = False
            return True
        return None

    def data_received(self, data):
        if type(data) is not bytes:
            data = bytes(data)
        self._feed(PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), data)

    # -- parsing ---------------------------------------------------------

    cdef int _feed(self, const char* data, size_t length, object owner) except -1:
        """Parse `length` bytes at `data`. `owner` is the bytes object they
        are in, or None when they are the transport's buffer (see
        csrc/stream_seam.h): then only the bytes kept for later are copied."""
        cdef size_t offset = 0
        cdef size_t consumed
        cdef ParseResult result
        cdef RequestCycle cycle
        if self.transport is None or self._closing():
            return 0
        cycle = self.cycle
        if self.pending is not None or (
                cycle is not None and cycle.message_complete and not cycle.response_complete):
            # A request is still being answered: keep the bytes for later.
            # Reading pauses, so at most one more read arrives meanwhile.
            if self.pending is None:
                self._keep_pending(data, length, owner)
            else:
                self.pending = self.pending[self.pending_offset:] + PyBytes_FromStringAndSize(data, length)
                self.pending_offset = 0
            self._update_reading()
            return 0
        if self.idle and length > offset:
            # The first bytes of a request: its header deadline starts.
            self.idle = False
            self.deadline = self.state.now + self.settings.timeout_request_headers
        self.feeding = True
        try:
            while offset < length:
                result = self.parser.feed(data + offset, length - offset, &consumed)
                offset += consumed
                if result == PARSE_ERROR:
                    self._parse_error()
                    return 0
                cycle = self.cycle
                if cycle is not None and cycle.waiters:
                    # Wake the application once per read, with all of the
                    # body this read brought (and its end, if it came too).
                    cycle._wake()
                if cycle is not None and not cycle.started:
                    # Everything at hand is parsed: with the whole request in
                    # (or the body still arriving) the application starts.
                    self._start_cycle()
                    if self._closing():
                        return 0
                if result == PARSE_NEED_MORE:
                    break
                if self.websocket_request is not None:
                    self._start_websocket(PyBytes_FromStringAndSize(data + offset, length - offset))
                    return 0
                # A whole request is in; the next one waits for its response.
                if cycle is not None and not cycle.response_complete:
                    if offset < length:
                        self._keep_pending(data + offset, length - offset, owner)
                    break
                self._request_finished(offset < length)
                if offset < length:
                    # The next pipelined request has started arriving.
                    self.idle = False
                    self.deadline = self.state.now + self.settings.timeout_request_headers
        finally:
            self.feeding = False
            # Reading pauses while bytes of a next request are held.
            self._update_reading()
        return 0

    cdef int _keep_pending(self, const char* data, size_t length, object owner) except -1:
        """Hold the bytes of the next pipelined request until this response
        is complete; the transport's buffer is copied, a bytes object kept."""
        if owner is None:
            self.pending = PyBytes_FromStringAndSize(data, length)
            self.pending_offset = 0
        else:
            self.pending = owner
            self.pending_offset = <size_t>(data - PyBytes_AS_STRING(owner))
        return 0

    cdef int on_headers_complete(self) except -1:
        """Parser event: the header section is in; build the scope."""
        cdef RequestParser parser = self.parser
        cdef HttpSettings settings = self.settings
        cdef str path
        cdef bytes raw_path, query_string
        cdef list headers
        cdef dict scope
        cdef RequestCycle cycle
        path, raw_path, query_string = parser.build_target()
        if settings.root_path_bytes:
            path = settings.root_path + path
            raw_path = settings.root_path_bytes + raw_path
        headers = parser.build_headers()
        self.deadline = 0.0
        self.idle = False
        if parser.upgrade is not None and parser._parser.upgrade:
            if settings.websocket is not None and parser.upgrade.lower() == b"websocket":
                return self._websocket_request(path, raw_path, query_string, headers)
            self._warn_upgrade(parser.upgrade)
        scope = settings.http_scope.copy()
        scope["http_version"] = parser.http_version()
        scope["server"] = self.server
        scope["client"] = self.client
        scope["scheme"] = self.scheme
        scope["method"] = parser.method()
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = query_string
        scope["headers"] = headers
        scope["state"] = settings.app_state.copy()
        if (parser.forwarded_for is not None or parser.forwarded_proto is not None) and self._client_is_trusted():
            settings.trusted_hosts.apply(scope, parser.forwarded_proto, parser.forwarded_for)
        cycle = RequestCycle.__new__(RequestCycle)
        cycle.protocol = self
        cycle.scope = scope
        cycle.body_chunks = []
        cycle.content_remaining = -1
        cycle.keep_alive = parser.should_keep_alive() and not self.eof
        cycle.http_1_0 = parser._parser.http_minor == 0
        # No 100 (Continue) for HTTP/1.0 clients (RFC 9110 10.1.1).
        cycle.expect_continue = parser.expect_continue and not cycle.http_1_0
        cycle.is_head = parser.is_head()
        self.cycle = cycle
        return 0

    cdef bint _client_is_trusted(self) except -1:
        """Whether this client is a proxy whose forwarding headers count:
        decided on the first request that has such headers, not for every
        connection (most never send them)."""
        if self.client_trust == TRUST_UNKNOWN:
            trusted_hosts = self.settings.trusted_hosts
            if trusted_hosts is not None and (self.client[0] if self.client is not None else None) in trusted_hosts:
                self.client_trust = TRUST_YES
            else:
                self.client_trust = TRUST_NO
        return self.client_trust == TRUST_YES

    cdef int _websocket_request(self, str path, bytes raw_path, bytes query_string, list headers) except -1:
        """A WebSocket upgrade request: its scope, kept until the request
        has been parsed to its end; then _start_websocket() hands over."""
        cdef RequestParser parser = self.parser
        cdef HttpSettings settings = self.settings
        key = version = extensions = None
        subprotocols = []
        for name, value in headers:
            if name == b"sec-websocket-key":
                key = value
            elif name == b"sec-websocket-version":
                version = value
            elif name == b"sec-websocket-protocol":
                subprotocols.extend(
                    item.strip() for item in value.decode("latin-1").split(",") if item.strip())
            elif name == b"sec-websocket-extensions":
                extensions = value if extensions is None else extensions + b", " + value
        scope = {
            "type": "websocket",
            "asgi": settings.websocket_asgi,
            "http_version": parser.http_version(),
            "server": self.server,
            "client": self.client,
            "scheme": "wss" if self.scheme == "https" else "ws",
            "root_path": settings.root_path,
            "path": path,
            "raw_path": raw_path,
            "query_string": query_string,
            "headers": headers,
            "subprotocols": subprotocols,
            "state": settings.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        if (parser.forwarded_for is not None or parser.forwarded_proto is not None) and self._client_is_trusted():
            settings.trusted_hosts.apply(scope, parser.forwarded_proto, parser.forwarded_for)
        if parser.method() != "GET" or key is None or not valid_key(key):
            self.websocket_refusal = 400
        elif version != b"13":
            # RFC 6455 4.4: say which version this server speaks.
            self.websocket_refusal = 426
        self.websocket_request = (scope, key, extensions)
        return 0

    cdef int _start_websocket(self, bytes rest) except -1:
        """Hand the connection over to the WebSocket protocol."""
        cdef WebSocketProtocol websocket
        scope, key, extensions = self.websocket_request
        self.websocket_request = None
        if self.websocket_refusal == 426:
            self.settings.logger.warning("Unsupported WebSocket version: only version 13 is served.")
            return self._send_error_response(426, ERROR_BODIES[426], b"sec-websocket-version: 13\r\n")
        if self.websocket_refusal:
            self.settings.logger.warning("Invalid WebSocket upgrade request.")
            return self._send_error_response(400, ERROR_BODIES[400])
        if self.runner is not None:
            self.runner.wake()
        websocket = WebSocketProtocol(self.settings.websocket, self.state, scope, key, extensions)
        self.state.connections.discard(self)
        transport = self.transport
        self.transport = None
        self.deadline = 0.0
        websocket.start(transport, rest)
        return 0

    def _warn_upgrade(self, bytes upgrade):
        self.settings.logger.warning("Unsupported upgrade request.")
        if upgrade.lower() == b"websocket":
            self.settings.logger.warning(
                "WebSockets are off (--ws none, or a WSGI application): "
                "the upgrade request is served as plain HTTP.")

    cdef int on_body(self, const char* data, size_t length) except -1:
        cdef RequestCycle cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.disconnected:
            return 0  # the application is done with this request: drop it
        cycle.body_chunks.append(PyBytes_FromStringAndSize(data, length))
        cycle.body_size += length
        if cycle.body_size > BODY_HIGH_WATER and not self.body_backpressure:
            self.body_backpressure = True
            self._update_reading()
        return 0

    cdef int on_message_complete(self) except -1:
        cdef RequestCycle cycle = self.cycle
        if cycle is None:
            return 0  # a WebSocket upgrade request
        cycle.message_complete = True
        if self.body_backpressure:
            self.body_backpressure = False
            self._update_reading()
        return 0

    cdef int _start_cycle(self) except -1:
        """Run the application for the current request."""
        cdef RequestCycle cycle = self.cycle
        cdef HttpSettings settings = self.settings
        cdef long limit = settings.limit_concurrency
        cdef RequestRunner runner
        cycle.started = True
        if limit >= 0 and (len(self.state.connections) > limit or len(self.state.tasks) >= limit):
            settings.logger.warning("Exceeded concurrency limit.")
            cycle.response_started = True
            cycle.response_complete = True
            cycle.keep_alive = False
            self.state.total_requests += 1
            self._access_log(cycle, 503)
            self._send_error_response(503, ERROR_BODIES[503])
            return 0
        # The context the request's own task would have had.
        context = Context() if settings.reset_contextvars else PyContext_CopyCurrent()
        runner = self.runner
        if runner is not None and runner.waiting():
            runner.run_eagerly(cycle, context)
        else:
            self.runner = RequestRunner.start(self, cycle, context)
        return 0

    cdef int _request_finished(self, bint more_data) except -1:
        """The request is fully read and its response fully sent;
        `more_data`: bytes of a next request are already at hand."""
        self.cycle = None
        if self.eof and not more_data:
            # The client half-closed and every request it sent is answered.
            self.transport.close()
            return 0
        self._update_reading()
        self.idle = True
        self.deadline = self.state.now + self.settings.timeout_keep_alive
        return 0

    cdef int _response_complete(self) except -1:
        """Called by the cycle once the last body byte is written."""
        cdef RequestCycle cycle = self.cycle
        if cycle.waiters:
            cycle._wake()
        if not cycle.keep_alive:
            self.transport.close()
            return 0
        # Body the application did not read is dropped from now on.
        cycle.body_chunks = []
        cycle.body_size = 0
        if self.body_backpressure:
            self.body_backpressure = False
            self._update_reading()
        if not cycle.message_complete or self.feeding:
            # Either the rest of the request body is still to be read (and
            # dropped), or the parse loop on the stack goes on by itself.
            return 0
        self._request_finished(self.pending is not None)
        if self.pending is not None:
            # Parse the next pipelined request on a fresh loop iteration, not
            # inside this application's send().
            self.loop.call_soon(self._resume_pipeline, context=self.context)
        return 0

    def _resume_pipeline(self):
        pending = self.pending
        if pending is None or self.cycle is not None:
            return
        self.pending = None
        self._feed(PyBytes_AS_STRING(pending) + self.pending_offset,
                   <size_t>(PyBytes_GET_SIZE(pending) - self.pending_offset), pending)

    cdef int _update_reading(self) except -1:
        cdef bint pause = self.pending is not None or self.body_backpressure
        if pause == self.reading_paused or self.transport is None or self._closing():
            return 0
        self.reading_paused = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
        return 0

    # -- writing ---------------------------------------------------------

    cdef bint _closing(self):
        if self.sender is not NULL:
            return self.sender.is_closing(self.transport)
        return self.transport.is_closing()

    cdef int _write(self, bytes data) except -1:
        if self.sender is not NULL:
            return self.sender.write(self.transport, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), data)
        self.transport.write(data)
        return 0

    cdef int _write_output(self) except -1:
        """Write what the output buffer holds, and empty it. Through the
        seam the bytes are copied only if the socket does not take them all."""
        cdef OutputBuffer out = self.out
        if self.sender is not NULL:
            self.sender.write(self.transport, out.buf.data, <Py_ssize_t>out.buf.length, None)
            out.clear()
            return 0
        return self._write(out.take())

    cdef int _write_many(self, tuple parts) except -1:
        if self.sender is not NULL:
            # One writev() for the head and the body.
            return self.sender.writelines(self.transport, parts)
        # Separate writes, not writelines(): on Python 3.12.0-3.13.1 asyncio's
        # writelines() skips the write-buffer limits (CPython gh-127655).
        for part in parts:
            self.transport.write(part)
        return 0

    cdef int _send_error_response(self, int status, bytes body, bytes extra_headers=EMPTY) except -1:
        """Answer with a short plain-text error and close the connection."""
        cdef OutputBuffer out = self.out
        if self._closing():
            return 0
        out.buf.length = 0
        out.append_bytes(status_line(status))
        out.append_bytes(self.state.default_headers)
        out.append_bytes(extra_headers)
        out.append_bytes(
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body))
        out.append_bytes(body)
        self._write_output()
        self.transport.close()
        return 0

    cdef int _parse_error(self) except -1:
        cdef RequestParser parser = self.parser
        cdef RequestCycle cycle = self.cycle
        cdef int status = parser.error_status
        if status == 400:
            self.settings.logger.warning("Invalid HTTP request received.")
        else:
            self.settings.logger.warning("Request refused with %d: %s.", status, parser.error_reason)
        self.settings.logger.debug("Invalid request detail: %s", parser.error_reason)
        if cycle is not None and cycle.started:
            # Broken body framing while the application runs: it sees a
            # disconnect; a response already under way cannot be replaced.
            cycle.disconnected = True
            cycle._wake()
            if cycle.response_started:
                self.transport.close()
                return 0
        self._send_error_response(status, ERROR_BODIES.get(status, ERROR_BODIES[400]))
        return 0

    cdef int _app_exception(self, RequestCycle cycle, object exc) except -1:
        self.settings.logger.error("Exception in ASGI application\n", exc_info=exc)
        if not cycle.response_started and not cycle.disconnected:
            cycle._fail_response()
        else:
            self.transport.close()
        return 0

    cdef int _access_log(self, RequestCycle cycle, int status) except -1:
        cdef dict scope
        if not self.settings.access_log or not self.settings.access_logger.isEnabledFor(INFO):
            return 0
        scope = cycle.scope
        client = scope.get("client")
        path = urllib.parse.quote(scope["path"])
        if scope["query_string"]:
            path = f"{path}?{scope['query_string'].decode('ascii', 'replace')}"
        self.settings.access_logger.info(
            ACCESS_LOG_FORMAT,
            "%s:%d" % (client[0], client[1]) if client else "",
            scope["method"],
            path,
            scope["http_version"],
            status,
        )
        return 0

    # -- lifecycle -------------------------------------------------------

    cdef int on_deadline(self, double now) except -1:
        """Close the connection: idle keep-alive connections quietly, a
        request head that is too slow with 408."""
        if self.transport is None:
            return 0
        if self.idle:
            self.transport.close()
        else:
            self._send_error_response(408, ERROR_BODIES[408])
        return 0

    def shutdown(self):
        """Graceful shutdown: close now if idle, else after this response."""
        if self.transport is None or self._closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def abort(self):
        """Drop the connection now (graceful shutdown timed out)."""
        if self.transport is not None:
            self.transport.abort()
