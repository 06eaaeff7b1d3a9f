# Declarations of csrc/compat.h: what the Python version cppcorn is compiled
# for offers, decided at compile time (see the header for each).

cdef extern from "compat.h":
    bint CC_TASKS_TAKE_CONTEXT
    bint CC_TASKS_COUNT_CANCELS
    bint CC_CURRENT_TASK_IN_THREAD_STATE
    bint CC_SERVER_ATTACH_TAKES_TRANSPORT
