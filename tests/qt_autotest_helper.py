"""The helper programs that Qt's autotests start, rewritten in Python for every implementation.

Usage:  python tests/qt_autotest_helper.py IMPL BRANCH PROGRAM ARGS...

IMPL is qshm_compat, pyqt5, pyqt6 or pyside6 (see qtimpl.py); BRANCH is 5.15 or 6.  PROGRAM:

- ``sharedmemoryhelper readonly_segfault|producer|consumer``: Qt 5.15's
  ``tests/auto/corelib/kernel/qsharedmemory/sharedmemoryhelper`` (fixed keys
  ``readonly_segfault`` and ``market``);
- ``producerconsumer readonly_segfault|producer|consumer KEY``: Qt 6's
  ``tests/auto/corelib/ipc/qsharedmemory/producerconsumer``, KEY a ``QNativeIpcKey::toString()``;
- ``systemsemaphorehelper acquire [N]|release|acquirerelease``: Qt 5.15's
  ``tests/auto/corelib/kernel/qsystemsemaphore/systemsemaphorehelper`` (fixed key ``store``);
- ``acquirerelease acquire|release|acquirerelease KEY [N]``: Qt 6's
  ``tests/auto/corelib/ipc/qsystemsemaphore/acquirerelease``.

What each mode does (the exit status, what it prints, the order of its calls and its 1 ms / 10 ms
sleeps) follows Qt's helper; the code is ours.  Exit status 0 on success, 1 on failure.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # qtimpl, also with PYTHONSAFEPATH

import qtimpl  # noqa: E402

FAIL = 1


def warn(*words: object) -> None:
    print(*words, file=sys.stderr, flush=True)


def set_byte(impl: qtimpl.Impl, sm: Any, pos: int, value: int) -> None:
    view = impl.buffer(sm)
    assert view is not None, "not attached"
    view[pos] = value


def get_byte(impl: qtimpl.Impl, sm: Any, pos: int) -> int:
    view = impl.buffer(sm, const=True)
    assert view is not None, "not attached"
    return int(view[pos])


def readonly_segfault(impl: qtimpl.Impl, key: Any) -> int:
    """Create the segment read-only, then write to it under the lock: Qt dies with SIGSEGV."""
    sm = impl.shm(key) if key is not None else impl.shm()
    if key is None:
        sm.setKey("readonly_segfault")
    sm.create(1024, impl.ReadOnly)
    sm.lock()
    set_byte(impl, sm, 0, ord("a"))
    sm.unlock()
    return 0


def producer(impl: qtimpl.Impl, key: Any) -> int:
    """Create (or attach to) the market, say so on stdout, hand out five 'Q's, then 'E'."""
    sm = impl.shm(key) if key is not None else impl.shm()
    if key is None:
        sm.setKey("market")
    if not sm.create(1024):
        if sm.error() != impl.AlreadyExists:
            warn("Could not create", sm.key(), sm.errorString())
            return FAIL
        if not sm.attach():
            warn("Could not attach to", sm.key(), sm.errorString())
            return FAIL
    sys.stdout.write("\n")  # the parent waits for this line: the segment is there
    sys.stdout.flush()

    if not sm.lock():
        warn("Could not lock", sm.key())
        return FAIL
    set_byte(impl, sm, 0, ord("Q"))
    if not sm.unlock():
        warn("Could not unlock", sm.key())
        return FAIL

    handed_out = 0
    while handed_out < 5:
        if not sm.lock():
            warn("Could not lock", sm.key())
            return FAIL
        if get_byte(impl, sm, 0) == ord("Q"):  # nobody took the last one yet
            if not sm.unlock():
                warn("Could not unlock", sm.key())
                return FAIL
            time.sleep(0.001)
            continue
        handed_out += 1
        set_byte(impl, sm, 0, ord("Q"))
        if not sm.unlock():
            warn("Could not unlock", sm.key())
            return FAIL
        time.sleep(0.001)

    if not sm.lock():
        warn("Could not lock", sm.key())
        return FAIL
    set_byte(impl, sm, 0, ord("E"))
    if not sm.unlock():
        warn("Could not unlock", sm.key())
        return FAIL
    sys.stdin.buffer.read(1)  # stay attached until the parent says the consumers are done
    return 0


def consumer(impl: qtimpl.Impl, key: Any) -> int:
    """Attach (5000 tries, 1 ms apart), take each 'Q' by writing a count, leave on 'E'."""
    sm = impl.shm(key) if key is not None else impl.shm()
    if key is None:
        sm.setKey("market")
    tries = 0
    while not sm.attach():
        if tries == 5000:
            warn("consumer exiting, waiting too long")
            return FAIL
        tries += 1
        time.sleep(0.001)

    taken = 0
    while True:
        if not sm.lock():
            warn("Could not lock", sm.key())
            return FAIL
        if get_byte(impl, sm, 0) == ord("Q"):
            taken += 1
            set_byte(impl, sm, 0, taken & 0xFF)
        if get_byte(impl, sm, 0) == ord("E"):
            if not sm.unlock():
                warn("Could not unlock", sm.key())
                return FAIL
            break
        if not sm.unlock():
            warn("Could not unlock", sm.key())
            return FAIL
        time.sleep(0.010)

    if not sm.detach():
        warn("Could not detach", sm.key())
        return FAIL
    return 0


def sem_acquire(impl: qtimpl.Impl, key: Any, count: int) -> int:
    sem = impl.sem(key)
    for _ in range(count):
        if not sem.acquire():
            warn("Could not acquire", sem.errorString())
            return FAIL
    warn("done aquiring")  # sic, as Qt's helper prints it
    return 0


def sem_release(impl: qtimpl.Impl, key: Any) -> int:
    sem = impl.sem(key)
    if not sem.release():
        warn("Could not release", sem.errorString())
        return FAIL
    warn("done releasing")
    return 0


def sem_acquirerelease(impl: qtimpl.Impl, key: Any) -> int:
    sem = impl.sem(key)
    if not sem.acquire():
        warn("Could not acquire", sem.errorString())
        return FAIL
    if not sem.release():
        warn("Could not release", sem.errorString())
        return FAIL
    return 0


def count_argument(args: List[str]) -> int:
    """Qt's ``toInt(&ok)``, with 1 when there is no argument or it is not a number."""
    if not args:
        return 1
    try:
        return int(args[0])
    except ValueError:
        return 1


def main(argv: List[str]) -> int:
    if len(argv) < 4:
        warn(__doc__)
        return FAIL
    impl = qtimpl.Impl(argv[1], argv[2])
    program, args = argv[3], argv[4:]
    try:
        if program in ("sharedmemoryhelper", "producerconsumer"):
            if program == "sharedmemoryhelper":
                if len(args) != 1:
                    warn("Please call the helper with the function to call as argument")
                    return FAIL
                key = None
            else:
                if len(args) != 2:
                    warn("usage: producerconsumer readonly_segfault|producer|consumer KEY")
                    return FAIL
                key = impl.QNativeIpcKey.fromString(args[1])
            function = {"readonly_segfault": readonly_segfault, "producer": producer,
                        "consumer": consumer}.get(args[0])
            if function is None:
                warn("Unknown function", args[0])
                return 0
            return function(impl, key)
        if program in ("systemsemaphorehelper", "acquirerelease"):
            if program == "systemsemaphorehelper":
                if len(args) < 1:
                    warn("Please call the helper with the function to call as argument")
                    return FAIL
                function_name, key, rest = args[0], "store", args[1:]
            else:
                if len(args) < 2:
                    warn("usage: acquirerelease acquire|release|acquirerelease KEY [N]")
                    return FAIL
                function_name, rest = args[0], args[2:]
                key = impl.QNativeIpcKey.fromString(args[1])
            if function_name == "acquire":
                return sem_acquire(impl, key, count_argument(rest))
            if function_name == "release":
                return sem_release(impl, key)
            if function_name == "acquirerelease":
                return sem_acquirerelease(impl, key)
            warn("Unknown function", function_name)
            return 0
        warn("unknown program", program)
        return FAIL
    finally:
        impl.delete_all()  # the C++ helpers' locals go out of scope here


if __name__ == "__main__":
    sys.exit(main(sys.argv))
