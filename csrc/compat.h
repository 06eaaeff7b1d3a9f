/* What the Python version cppcorn is compiled for offers, as constants.
 *
 * An extension module is built for one Python version, so these are decided
 * at compile time; each names the capability the code acts on, not the
 * version, so that a reader of `if CC_TASKS_TAKE_CONTEXT:` knows why. */
#ifndef CC_COMPAT_H
#define CC_COMPAT_H

#include <Python.h>

/* asyncio.Task(context=) and loop.create_task(context=): 3.11. */
#define CC_TASKS_TAKE_CONTEXT (PY_VERSION_HEX >= 0x030B0000)

/* Task.cancelling() and Task.uncancel() count cancel() requests: 3.11. */
#define CC_TASKS_COUNT_CANCELS (PY_VERSION_HEX >= 0x030B0000)

/* asyncio.current_task() reads the thread state, not the dict
 * asyncio.tasks._current_tasks (CPython gh-129898): 3.14. Code that runs a
 * task's step itself then swaps the current task with
 * asyncio.tasks._swap_current_task() (3.12+). */
#define CC_CURRENT_TASK_IN_THREAD_STATE (PY_VERSION_HEX >= 0x030E0000)

/* asyncio.Server._attach()/_detach() take the transport: 3.13. */
#define CC_SERVER_ATTACH_TAKES_TRANSPORT (PY_VERSION_HEX >= 0x030D0000)

#endif
