"""Objects that own OS resources, closed at interpreter exit as Qt's destructors would be.

A C++ Qt program destroys its ``QSharedMemory`` objects on the way out, so the last one detaching
removes the segment and its key file.  Python does not promise to collect every object at exit,
so each live object registers here and an ``atexit`` hook closes what is left: segments first,
then semaphores, never waiting more than :data:`EXIT_TIMEOUT` for a lock (an abandoned POSIX lock
must not hang the interpreter's exit, as it hangs Qt's destructor).

A forked child inherits the objects but not their ownership: it must not remove, when it exits,
the semaphores and key files its parent created (CPython's ``multiprocessing`` resource tracker
made that mistake, bpo-38119), nor release a lock its parent holds.  So the objects are disowned
in the child.  Nothing here runs a helper process or touches objects it did not open.
"""

from __future__ import annotations

import atexit
import os

# _weakrefset is what weakref.WeakSet is; importing it directly skips weakref's other imports.
from _weakrefset import WeakSet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_live: WeakSet[Any] = WeakSet()


#: Seconds an object closed at interpreter exit waits for its lock.
EXIT_TIMEOUT = 5.0


def register(obj: Any) -> None:
    _live.add(obj)


def unregister(obj: Any) -> None:
    _live.discard(obj)


@atexit.register
def _close_all() -> None:
    objects = list(_live)
    # Segments before semaphores: a segment's detach takes its lock semaphore.
    objects.sort(key=lambda o: getattr(o, "_close_order", 1))
    for obj in objects:
        try:
            obj.close(timeout=EXIT_TIMEOUT)
        except Exception:  # pragma: no cover - best effort at exit
            pass


def _disown_all() -> None:
    for obj in list(_live):
        obj._disown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_disown_all)
