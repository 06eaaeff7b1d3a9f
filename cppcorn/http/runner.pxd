# The coroutine of one asyncio Task that runs the applications of a
# connection's requests, one after another (see runner.pyx).
from cppcorn.http.cycle cimport RequestCycle


cdef class RequestRunner:
    cdef object loop
    cdef object app
    cdef set tasks                  # the server's running tasks (ServerState.tasks)
    cdef readonly object task
    cdef RequestCycle cycle         # the request whose application runs
    cdef object coroutine           # that application's coroutine
    cdef RequestCycle next_cycle    # the request the next step starts
    cdef object waiter              # what the task waits on between requests
    cdef object handoff             # what an eagerly started application
    cdef bint handed_off            # yielded, for the task to take over
    cdef bint thrown                # an exception went into this request
    cdef bint retired               # no more requests will be handed to it

    @staticmethod
    cdef RequestRunner start(object loop, object app, set tasks, RequestCycle cycle)
    cdef bint waiting(self) except -1
    cdef int run_eagerly(self, RequestCycle cycle) except -1
    cdef int retire(self) except -1
    cdef int _resume(self, RequestCycle cycle) except -1
    cdef int _wake(self) except -1
    cdef object _step(self, object value, object exc)
    cdef object _step_app(self, object value, object exc)
    cdef int _request_done(self, RequestCycle cycle, object outcome, object error) except -1
    cdef object _between_requests(self, RequestCycle cycle)
    cdef int _finish(self) except -1
