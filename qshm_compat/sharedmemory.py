"""``QSharedMemory``, with Qt's names, on System V and POSIX shared memory.

The class keeps Qt's camelCase method names and enum names and values on purpose, so PyQt code
ports by changing one import (as Python's own ``unittest`` keeps its foreign camelCase).
Additions of our own are snake_case or keyword-only: timeouts on every call that takes the lock,
``locked()``, ``close()`` and the context manager.

The lifecycle follows Qt 5.15.8 / 6.4.2 ``src/corelib/kernel/qsharedmemory*.cpp`` and 6.8.2 /
6.11.2 ``src/corelib/ipc/qsharedmemory*.cpp`` (spec §4, §5, §8, §11).  For a string key on Linux:
``create()``, ``attach()`` and ``detach()`` hold the lock semaphore
``<temp>/qipc_systemsem_<letters><sha1>`` while they work; the segment is
``shmget(ftok(<temp>/qipc_sharedmemory_<letters><sha1>, 'Q'), size, 0600|IPC_CREAT|IPC_EXCL)``;
whoever detaches last removes the segment and its key file.  ``qt_version`` picks the Qt whose
behaviour is mirrored where versions differ (default 5.15, or ``$QSHM_QT_VERSION``); a
``QNativeIpcKey`` implies Qt 6.6 or later.

Where Qt is unsafe we are safer without changing what a Qt peer sees:

* a ``create()`` that fails with AlreadyExists leaves the lock semaphore alone (every Qt stack
  resets it and later removes it, breaking a lock another process holds);
* ``data()`` after a ReadOnly attach is a read-only ``memoryview``: a write raises ``TypeError``
  instead of the SIGSEGV of every Qt stack;
* a ``memoryview`` that outlives ``detach()`` reads harmless private memory instead of crashing;
* every call that takes the lock accepts a timeout, so an abandoned POSIX lock is reported
  instead of hanging for ever;
* a key file that is a symbolic link or belongs to another user, and a segment or POSIX object
  owned by another user, are refused (Qt follows and uses them blindly): ``allow_foreign=True``
  accepts them as Qt does;
* a string key is never given a key file in ``/`` (what Qt <= 6.9.1 does when ``$TMPDIR`` does
  not exist).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from _weakref import proxy
from itertools import starmap
from operator import not_

from . import _memory, _registry, keys, posix, sysv
from ._plain import fast as _fast
from .errors import SEM_TO_SHM, AccessMode, QtVersion, SemaphoreAccessMode, SharedMemoryError, shm_error
from .exceptions import IpcError, LockTimeoutError
from .keys import QNativeIpcKey
from .semaphore import (
    NATIVE_KEY_QT,
    PosixSemaphoreHandle,
    QSystemSemaphore,
    SysVSemaphoreHandle,
    _copy_key,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import deque
    from typing import Any, List, Optional, Tuple, TypeAlias, Union, cast
else:  # the C types themselves: importing collections, functools (and typing) costs import time
    from _collections import deque

    def cast(_type: object, value: object) -> object:
        return value

_QSM = "QSharedMemory"
# The base class: with the native fast path, lock() and unlock() are C methods that do the
# uncontended case in one call and call _lock()/_unlock() below for anything else.
_LockBase: Any = object if _fast is None else _fast.Lockable
_QT66: QtVersion = (6, 6, 0)
# Our own reference plus getrefcount's argument: more means a memoryview still uses the buffer.
_UNSHARED_REFCOUNT = 2


#: The lock's state "not held" (any value but 0), as an iterable for ``deque.extend``.
_FREE = (-1,)
#: The argument tuples of one call with no argument (``starmap(take, _NO_ARGS)``).
_NO_ARGS = ((),)
# Read once: an enum member looked up on its class costs about 50 ns, on the one-call path too.
_READ_WRITE = AccessMode.ReadWrite
_tmpdir = keys.environ_tmpdir


class _Failed(Exception):
    """Internal: a step failed; error() and errorString() are already set."""


class QSharedMemory(_LockBase):  # type: ignore[misc]
    """``QSharedMemory``: a shared memory segment that Qt programs see as their own.

    ``QSharedMemory(key)`` names the segment exactly as Qt does for ``key`` (a string, or a
    ``QNativeIpcKey`` as in Qt 6.6).  ``create(size)``, ``attach()`` and ``detach()`` return False
    on failure, with ``error()`` and ``errorString()`` as Qt gives them.  ``data()`` is a
    ``memoryview`` of exactly ``size()`` bytes over the segment itself.
    """

    AccessMode: TypeAlias = AccessMode
    SharedMemoryError: TypeAlias = SharedMemoryError
    ReadOnly = AccessMode.ReadOnly
    ReadWrite = AccessMode.ReadWrite
    NoError = SharedMemoryError.NoError
    PermissionDenied = SharedMemoryError.PermissionDenied
    InvalidSize = SharedMemoryError.InvalidSize
    KeyError = SharedMemoryError.KeyError
    AlreadyExists = SharedMemoryError.AlreadyExists
    NotFound = SharedMemoryError.NotFound
    LockError = SharedMemoryError.LockError
    OutOfResources = SharedMemoryError.OutOfResources
    UnknownError = SharedMemoryError.UnknownError

    _close_order = 1

    def __init__(
        self,
        key: Any = None,
        parent: Any = None,
        *,
        qt_version: Union[str, Tuple[int, ...], None] = None,
        allow_foreign: bool = False,
    ):
        if key is not None and not isinstance(key, (str, QNativeIpcKey)):
            parent, key = key, None  # QSharedMemory(parent): Qt's overload without a key
        self._parent = parent
        self._allow_foreign = allow_foreign
        self._qt = keys.parse_qt_version(qt_version)
        self._ipc_key = QNativeIpcKey("", QNativeIpcKey.legacyDefaultTypeForOs())
        self._segment: _Segment = _SysVSegment(self)
        self._memory: Any = None
        self._buffer: Any = None
        self._readonly = False
        self._size = 0
        self._error = SharedMemoryError.NoError
        self._error_string = ""
        # Whether this object holds the lock: held while _held[0] == 0.  The semaphore calls
        # themselves store their outcome there (sysv.recorded), so an exception raised by a
        # signal handler (Ctrl-C) can never fall between taking the lock and knowing it.
        self._held: Any = deque(_FREE, maxlen=1) if _fast is None else _fast.Held()
        # The lock's fast path: take()/give() of the semaphore that worked last time, one C call
        # each (_no_fast until there is one); anything unusual goes the long way.
        self._take: Any = _no_fast
        self._give: Any = _no_fast
        self._retired: List[bool] = [False]  # mapped_buffer's flag for the current mapping
        # attach()/detach() in one C call (a _fast.SysVAttach or PosixAttach), learned from the
        # last attach() the long way; None: the long way.
        self._plan: Any = None
        self._plan_attach = False  # the plan may attach (not only detach)
        # create() in one call: (lock key file, segment key file, the segment's ftok project id,
        # $TMPDIR), learned from a create() the long way; None: the long way.
        self._create_plan: Optional[Tuple[bytes, bytes, int, object]] = None
        self._addr = 0  # the mapping's address as an int, for the plan's detach
        self._sem = QSystemSemaphore(None, qt_version=self._qt)
        # Qt 6.6+ starts the lock with an empty key of DefaultTypeForOs (POSIX on Linux), so the
        # first initKey() always sets it, even to an empty System V key (and then fails).
        self._sem._ipc_key = QNativeIpcKey()
        self._sem._is_lock = True
        self._sem._allow_foreign = allow_foreign
        _registry.unregister(self._sem)  # closed by this object, after the segment
        _registry.register(self)
        if key is None and self._qt >= _QT66:
            # Qt 6.6+: QSharedMemory(parent) is QSharedMemory(QNativeIpcKey(), parent), so its
            # nativeIpcKey() is an empty key of DefaultTypeForOs (tst_qsharedmemory constructor()).
            key = QNativeIpcKey()
        if isinstance(key, QNativeIpcKey):
            self.setNativeKey(key)
        else:
            self.setKey(key)

    # -- keys -------------------------------------------------------------------------------

    @staticmethod
    def platformSafeKey(key: str, type: Optional[int] = None) -> QNativeIpcKey:
        """``QSharedMemory::platformSafeKey`` (Qt 6.6): default type POSIX on Linux."""
        return keys.make_platform_safe_key(key, "shm", type)

    @staticmethod
    def legacyNativeKey(key: str, type: Optional[int] = None) -> QNativeIpcKey:
        """``QSharedMemory::legacyNativeKey`` (Qt 6.6): the names Qt 5 uses for ``key``."""
        return keys.make_legacy_native_key(key, "shm", type)

    @staticmethod
    def isKeyTypeSupported(type: int) -> bool:
        """``QSharedMemory::isKeyTypeSupported`` (Qt 6.6)."""
        return keys.is_key_type_supported(type)

    def setKey(self, key: Optional[str]) -> None:
        """``QSharedMemory::setKey``: detach if attached, then use the segment Qt names ``key``."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"a key is a str, not {type(key).__name__}")
        new = keys.make_legacy_native_key(key or "", "shm", None, self._ctx())
        if self._qt >= _QT66:
            self._set_native(new)
        elif new != self._ipc_key:
            self._replace_key(new)

    def setNativeKey(self, key: Union[QNativeIpcKey, str], type: Optional[int] = None) -> None:
        """``QSharedMemory::setNativeKey``.

        A ``QNativeIpcKey``, or a native key string of ``type`` (Qt 6.6; default
        ``legacyDefaultTypeForOs()``).  Mirroring Qt 5.15 (no ``type``, a string), the key is a
        System V key file with no lock, as Qt 5 has it.
        """
        if isinstance(key, str):
            if type is None and self._qt < _QT66:
                new = QNativeIpcKey(key, QNativeIpcKey.Type.SystemV)
                if new != self._ipc_key:
                    self._replace_key(new)
                return
            key = QNativeIpcKey(key, QNativeIpcKey.legacyDefaultTypeForOs() if type is None else type)
        elif not isinstance(key, QNativeIpcKey):
            raise TypeError(f"a native key is a QNativeIpcKey or a str, not {key.__class__.__name__}")
        if self._qt < _QT66:
            self._qt = NATIVE_KEY_QT
            self._sem._qt = NATIVE_KEY_QT
        self._set_native(_copy_key(key))

    def key(self) -> str:
        """``QSharedMemory::key``: the key given to setKey(), or "" for a native key."""
        return self._ipc_key.legacyKey()

    def nativeKey(self) -> str:
        """``QSharedMemory::nativeKey``: the OS name (key file or POSIX name) Qt uses."""
        return self._ipc_key.nativeKey()

    def nativeIpcKey(self) -> QNativeIpcKey:
        """``QSharedMemory::nativeIpcKey`` (Qt 6.6)."""
        return _copy_key(self._ipc_key)

    # -- create / attach / detach -----------------------------------------------------------

    def create(
        self,
        size: int,
        mode: Union[AccessMode, int] = AccessMode.ReadWrite,
        *,
        timeout: Optional[float] = None,
    ) -> bool:
        """``QSharedMemory::create``: make a segment of ``size`` bytes and attach to it.

        ``timeout`` (seconds) bounds the wait for the lock; None waits as long as Qt does.
        """
        size = _check_size(size)
        if type(mode) is not AccessMode:
            mode = AccessMode(mode)
        plan = self._create_plan
        if plan is not None and timeout is None and mode is _READ_WRITE and self._memory is None:
            made = self._create_in_one_call(plan, size)
            if made is not None:
                return made
        if size > 0 and self._memory is None and self._segment.in_use():
            # Qt answers at once here because its create() resets (System V) or replaces (POSIX)
            # the lock, breaking a holder's exclusion; we answer at once without touching the
            # lock: the segment exists and is in use, so the exclusive create would fail anyway.
            self._segment.fail_exists()
            return False
        if not self._init_key(self._create_lock_mode()):
            return False
        self._sem_handle_repair()
        return self._create_locked(size, mode, timeout)

    def _create_locked(self, size: int, mode: AccessMode, timeout: Optional[float]) -> bool:
        """create() once its lock is keyed: under the lock, make the segment and attach it."""
        function = f"{_QSM}::create"
        mine = self._held[0] == 0  # held by the caller: stays held
        try:
            if self._lock_internally(function, timeout) is None:
                return False
            if size <= 0:
                self._set_error(SharedMemoryError.InvalidSize, f"{function}: create size is less then 0")
                return False
            try:
                self._segment.create(size)
            except _Failed:
                if self._error == SharedMemoryError.AlreadyExists and self._segment.is_stale():
                    # A crashed creator's segment: its lock has no owner left to remove it.
                    # Qt's failed create() takes it over (and so cleans up); so do we.
                    self._own_lock()
                return False
            self._own_lock()
            try:
                self._segment.attach(mode)
            except _Failed:
                # Qt leaves the new segment behind, attached to nobody; we give it back.
                self._segment.discard_created()
                return False
            self._learn_plan(created=True)
            return True
        finally:
            if not mine and self._held[0] == 0:
                self._unlock_internally()

    def _create_in_one_call(self, plan: Tuple[bytes, bytes, int, object], size: int) -> Optional[bool]:
        """create() in one C call (``_fast.sysv_create``) by the owner of a lock kept since its
        last detach, as Qt's owner keeps it: None when not done (the long way does it all).

        Qt's create() removes that lock and makes one of the same name anew; we use it as it is
        (the C call checks that its key file is still the one it was keyed from), so a process
        holding it keeps its exclusion, and the cycle makes one key file, not two."""
        handle = self._sem._handle
        if (
            not isinstance(handle, SysVSemaphoreHandle)
            or handle.sem is None
            or not handle.owned
            or handle.foreign
            or handle.file_id is None
            or self._fastlock is None
            or self._held[0] == 0
            or self._segment.unix_key != 0
        ):
            return None
        lock_file, seg_file, seg_project, tmp = plan
        if tmp != _tmpdir() or (self._qt < _QT66 and self._sem._legacy_key != self._ipc_key.legacyKey()):
            return None
        semid = handle.sem.semid
        got = _fast.sysv_create(lock_file, *handle.file_id, semid, seg_file, size, seg_project, self)
        if got is None:
            return None
        self._segment.unix_key = got[2]
        self._set_error(SharedMemoryError.NoError, "")
        self._mapped(got[0], got[1], False, got[0])
        # What _learn_plan(created=True) finds, known here; Qt 5 re-keys (removes and re-makes)
        # the lock this object owns on attach, so there only detach() is done in one call.
        self._set_plan(lock_file, *handle.file_id, semid, seg_file, seg_project, tmp, self._qt >= _QT66, True)
        return True

    def _attach(
        self,
        mode: Union[AccessMode, int] = AccessMode.ReadWrite,
        *,
        timeout: Optional[float] = None,
    ) -> bool:
        """``QSharedMemory::attach``: attach to the segment a Qt program (or we) created.

        ``timeout`` (seconds) bounds the wait for the lock; None waits as long as Qt does.  With
        the native module, attach() is ``_fast.Lockable.attach``: after an attach the long way
        (here) has learned the plan (``_learn_plan``), the usual attach is one C call, and
        anything else comes here."""
        if type(mode) is not AccessMode:
            mode = AccessMode(mode)
        if self._memory is not None or not self._init_key(SemaphoreAccessMode.Open):
            return False
        self._sem_handle_repair()  # Qt would hang on a lock its creator never initialized
        mine = self._held[0] == 0
        try:
            if self._lock_internally(f"{_QSM}::attach", timeout) is None:
                return False
            if self._memory is not None:
                return False
            self._segment.handle()
            self._segment.attach(mode)
            self._learn_plan()
            return True
        except _Failed:
            return False
        finally:
            if not mine and self._held[0] == 0:
                self._unlock_internally()

    def _detach(self, *, timeout: Optional[float] = None) -> bool:
        """``QSharedMemory::detach``; on System V the last one out removes the segment and file.

        With the native module, detach() is ``_fast.Lockable.detach``: one C call with a plan
        and no view left over, what is here otherwise."""
        if self._memory is None:
            return False
        mine = self._held[0] == 0
        try:
            if self._lock_internally(f"{_QSM}::detach", timeout) is None:
                return False
            done = self._segment.detach()
            if self._segment.removed and not mine and self._held[0] == 0:
                self._remove_lock()
            return done
        finally:
            if not mine and self._held[0] == 0:
                self._unlock_internally()

    if _fast is None or not hasattr(_fast.Lockable, "attach"):  # built for Python < 3.11: no Mapping
        attach, detach = _attach, _detach
    # else: Lockable's attach() and detach(), the plan's one call, calling these otherwise.

    def _detach_last_one(self) -> bool:
        """After the plan's detach found nobody attached any more, under the lock (recorded in
        ``_held``; none for a native key): remove the segment, its key file and the lock, as
        the long way does."""
        segment = self._segment
        assert isinstance(segment, _SysVSegment)  # plans are System V only
        unix_key, segment.unix_key = segment.unix_key, 0
        segment.removed = False
        try:
            done = segment._remove_if_unused(unix_key)
            if segment.removed and self._held[0] == 0:
                self._remove_lock()
            return done
        finally:
            if self._held[0] == 0:
                self._unlock_internally()

    def isAttached(self) -> bool:
        """``QSharedMemory::isAttached``."""
        return self._memory is not None

    def size(self) -> int:
        """``QSharedMemory::size``: the segment's size in bytes, 0 when not attached."""
        return self._size

    def data(self) -> Optional[memoryview]:
        """``QSharedMemory::data``: a ``memoryview`` over the segment, no copy; None when detached.

        Read-only after a ReadOnly attach, so a write raises ``TypeError`` instead of crashing.
        """
        buffer = self._buffer  # read once: another thread's detach() may clear it meanwhile
        if buffer is None:
            return None
        view = memoryview(buffer)
        return view.toreadonly() if self._readonly else view

    def constData(self) -> Optional[memoryview]:
        """``QSharedMemory::constData``: a read-only ``memoryview`` over the segment."""
        buffer = self._buffer
        if buffer is None:
            return None
        return memoryview(buffer).toreadonly()

    # -- the lock ---------------------------------------------------------------------------

    def _lock(self, timeout: Optional[float] = None) -> bool:
        """``QSharedMemory::lock``; with ``timeout`` (seconds), False once it runs out.

        An exception raised meanwhile by a signal handler (Ctrl-C) leaves the lock either held,
        and then ``unlock()`` (or ``close()``) gives it back, or free."""
        held = self._held
        if held[0] == 0:
            _warn_already_locked()
            return True
        if timeout is None:
            held.extend(starmap(self._take, _NO_ARGS))  # take and record, in C
            if held[0] == 0:
                return True
        # The long way re-makes a removed semaphore, retries EINTR and sets Qt's errors.
        if self._sem._modify(-1, timeout, held):
            self._set_fast()
            return True
        self._lock_failed(f"{_QSM}::lock", timeout)
        return False

    def _unlock(self) -> bool:
        """``QSharedMemory::unlock``: False unless this object holds the lock."""
        held = self._held
        if held[0] != 0:
            return False
        held.extend(map(not_, starmap(self._give, _NO_ARGS)))  # give and record, in C
        if held[0] is True:
            return True
        if self._sem._modify(1, None, held):
            return True
        held.extend(_FREE)  # the semaphore is gone: nothing is held any more
        self._set_fast(clear=True)  # and its error fails the next initKey: the long way
        self._set_error(SharedMemoryError.LockError, f"{_QSM}::unlock: unable to unlock")
        return False

    if _fast is None:
        lock, unlock = _lock, _unlock
    # else: Lockable's lock() and unlock(), the same in C (native/qshm_fast.c) when uncontended.

    @property
    def _locked_by_me(self) -> bool:
        """Whether this object holds the lock now."""
        return bool(self._held[0] == 0)

    def locked(self, timeout: Optional[float] = None) -> _Locked:
        """``with shm.locked(timeout=1.0):`` hold the lock for the block.

        Raises ``LockTimeoutError`` (a ``TimeoutError``) when the lock is not had in time, and
        ``IpcError`` when it cannot be taken at all.
        """
        return _Locked(self, timeout)

    # -- errors -----------------------------------------------------------------------------

    def error(self) -> SharedMemoryError:
        """``QSharedMemory::error``."""
        return self._error

    def errorString(self) -> str:
        """``QSharedMemory::errorString``."""
        return self._error_string

    # -- Python additions -------------------------------------------------------------------

    def close(self, *, timeout: Optional[float] = None) -> None:
        """What Qt's destructor does: detach (on System V the last one out removes the segment)
        and give up the lock semaphore if this object owns it.

        With ``timeout``, a lock that is not had in time does not block: the segment is then
        only unmapped from this process, without the last-one-out removal.
        """
        if self._held[0] == 0:
            if self.isAttached():
                _warn_already_locked()  # Qt's destructor detaches through lock() first
            self.unlock()
        if self.isAttached() and not self.detach(timeout=timeout) and self.isAttached():
            self._segment.unmap_only()
        self._segment.clean_handle()
        self._set_fast(clear=True)
        self._create_plan = None
        self._sem.close(timeout=timeout)
        _registry.unregister(self)

    def __enter__(self) -> "QSharedMemory":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            # A finalizer never waits: the lock only if free within 10 ms, else only unmap.
            self.close(timeout=0.01)
        except Exception:
            pass

    def _disown(self) -> None:
        """In a forked child: the lock and the semaphore belong to the parent, not to us."""
        self._held.extend(_FREE)
        self._set_fast(clear=True)
        self._create_plan = None
        self._sem._disown()

    def __repr__(self) -> str:
        state = f"attached, {self._size} bytes" if self.isAttached() else "detached"
        return f"<QSharedMemory {self._ipc_key.toString() or self.key()!r} {state}>"

    # -- internals: keys and errors ---------------------------------------------------------

    def _ctx(self) -> keys.KeyContext:
        return self._sem._ctx() if self._sem._qt == self._qt else keys.KeyContext(qt_version=self._qt)

    def _set_error(self, error: SharedMemoryError, text: str) -> None:
        self._error = error
        self._error_string = text

    def _set_errno(self, exc: OSError, function: str) -> None:
        self._set_error(*shm_error(exc.errno or 0, function, self._qt))

    def _set_native(self, new: QNativeIpcKey) -> None:
        """Qt 6.6's ``setNativeKey(QNativeIpcKey)``."""
        if new == self._ipc_key and new.isEmpty():
            return
        if not keys.is_key_type_supported(new.type()):
            self._set_error(SharedMemoryError.KeyError, f"{_QSM}::setNativeKey: unsupported key type")
            return
        self._replace_key(new)

    def _replace_key(self, new: QNativeIpcKey) -> None:
        if self.isAttached():
            self.detach()
        self._segment.clean_handle()
        self._set_fast(clear=True)
        self._create_plan = None
        if new.type() != self._ipc_key.type():
            is_posix = new.type() == QNativeIpcKey.Type.PosixRealtime
            self._segment = _PosixSegment(self) if is_posix else _SysVSegment(self)
        self._ipc_key = new

    def _locks(self) -> bool:
        """Whether create/attach/detach lock: string keys only before Qt 6.6, any key from 6.6."""
        if self._qt < _QT66:
            return bool(self._ipc_key.legacyKey())
        return not self._ipc_key.isEmpty()

    def _create_lock_mode(self) -> SemaphoreAccessMode:
        # Qt opens the lock in Create mode in create(), resetting it "in case it survived a crash".
        # On POSIX (no undo) that is the only way out of an abandoned lock, so we do it too, but
        # only when no segment exists that anyone could be using.  On System V we never reset a
        # held lock (SEM_UNDO gives back what a dead holder took); see _sem_handle_repair.
        if self._segment.kind == "posix" and self._qt >= _QT66 and not self._segment.exists():
            return SemaphoreAccessMode.Create
        return SemaphoreAccessMode.Open

    def _init_key(self, mode: SemaphoreAccessMode) -> bool:
        """Qt's ``initKey``: point the lock semaphore at this key (initial value 1)."""
        self._set_fast(clear=True)
        if self._qt < _QT66:
            self._segment.clean_handle()
            sem = self._sem
            sem.setKey(None, 1)
            sem.setKey(self._ipc_key.legacyKey() or None, 1)
        else:
            if not self._segment.clean_handle():
                return False
            sem_key = keys.lock_semaphore_key(self._ipc_key, self._ctx())
            if sem_key is None:
                sem_key = QNativeIpcKey("", self._ipc_key.type())
            sem = self._sem
            sem._qt = self._qt
            sem._set_native(sem_key, 1, mode)
        if sem.error() != sem.NoError:
            text = "QSharedMemoryPrivate::initKey: unable to set key on lock"
            if self._qt >= _QT66 or "refused" in sem.errorString():
                # Qt 6.6 appends the reason; so do we, for the refusals that are ours alone.
                text += f" ({sem.errorString()})"
            self._set_error(SEM_TO_SHM[sem.error()], text)
            return False
        self._set_error(SharedMemoryError.NoError, "")
        return True

    def _sem_handle_repair(self) -> None:
        handle = self._sem._handle
        if handle is not None and self._locks():
            handle.repair()

    def _remove_lock(self) -> None:
        """The last one out removed the segment, under the lock: remove the lock too, unless
        it is this object's own.

        Another object's lock: its owner (the creator) may be gone, or unable to take it when
        it went, and nobody else would ever remove it.  We hold it, so nobody is inside; waiters
        see it removed and make a new one (as they do when Qt's owner removes it), with the key
        file, which goes first.  This object's own lock stays, as Qt's owner keeps it: its
        close() removes it, and its next create() uses it again rather than making a new one.
        """
        handle = self._sem._handle
        if not isinstance(handle, SysVSemaphoreHandle) or handle.sem is None:
            return
        if handle.owned:
            return
        sem = handle.sem
        self._lock_removed()
        handle.remove_file_and(sem)
        self._held.extend(_FREE)

    def _lock_removed(self) -> None:
        """Forget the lock semaphore: it is removed (or being removed) with its key file."""
        handle = self._sem._handle
        if isinstance(handle, SysVSemaphoreHandle):
            handle.sem, handle.unix_key = None, -1
            handle.created_file = handle.created_semaphore = False
        self._set_fast(clear=True)

    def _own_lock(self) -> None:
        """After a successful create, own the lock semaphore as Qt's creator does."""
        handle = self._sem._handle
        if handle is not None and self._locks():
            handle.created_semaphore = True
            if hasattr(handle, "created_file"):
                handle.created_file = True

    def _learn_plan(self, created: bool = False) -> None:
        """After an attach() or create(): what the next attach()/detach() (and, after a
        create(), the next create()) can do in one call.

        Only segments of ours and locks that are ours to use unchanged; a foreign one goes the
        long way with its checks.  A lock that this object owns is removed and re-made by Qt 5's
        re-key on every attach (the long way mirrors that): then only detach() is done in one
        call.  POSIX (Qt 6.6 and later, whose attach leaves a lock of the same key alone): the
        lock is the fast semaphore bound at the time of each call."""
        self._plan = None
        if _fast is None or self._allow_foreign:
            return
        if self._segment.kind == "posix":
            handle = self._sem._handle
            if self._qt >= _QT66 and isinstance(handle, PosixSemaphoreHandle) and handle.sem is not None:
                self._plan = _fast.PosixAttach(_memory.encode_name(self.nativeKey()), self._locks(), os.geteuid())
                self._plan_attach = True
            return
        seg_file = os.fsencode(self.nativeKey())
        seg_project: int = self._segment._project_id()  # type: ignore[union-attr]
        if not self._locks():
            self._set_plan(None, 0, 0, -1, seg_file, seg_project, None, True)
            return
        handle = self._sem._handle
        if not isinstance(handle, SysVSemaphoreHandle) or handle.sem is None or handle.foreign:
            return
        if handle.file_id is None:
            return
        lock_file = os.fsencode(handle.file_name)
        tmp = _tmpdir()
        self._set_plan(lock_file, *handle.file_id, handle.sem.semid, seg_file, seg_project, tmp,
                       self._qt >= _QT66 or not handle.created_semaphore, handle.owned)
        if created and handle.legacy and self._create_plan is None:
            self._create_plan = (lock_file, seg_file, seg_project, tmp)

    def _set_plan(self, lock_file: Optional[bytes], dev: int, ino: int, semid: int, seg_file: bytes,
                  seg_project: int, tmp: Any, attach: bool, own: bool = False) -> None:
        """The one-call attach/detach plan of a System V segment (``attach``: not detach only);
        ``tmp``: the ``$TMPDIR`` the lock's name was made from (``keys.environ_tmpdir()``);
        ``own``: the lock is this object's, and the last one out leaves it (``_remove_lock``)."""
        tmp = None if tmp is None or lock_file is None else os.fsencode(tmp)
        self._plan = _fast.SysVAttach(lock_file, dev, ino, semid, seg_file, seg_project, os.geteuid(),
                                      self._qt < _QT66, tmp, own)
        self._plan_attach = attach

    def _set_fast(self, clear: bool = False) -> None:
        """Point the lock's fast path at the semaphore in use now (or at nothing)."""
        if clear:
            self._plan = None  # and of attach()/detach(): the long way learns it again
        sem = None if clear else self._sem._fast_semaphore()
        self._take = _no_fast if sem is None else sem.take
        self._give = _no_fast if sem is None else sem.give
        if _fast is not None:
            self._fastlock = None if sem is None else sem.fast

    def _lock_internally(self, function: str, timeout: Optional[float]) -> Optional[bool]:
        """Take the lock around create/attach/detach, as Qt's ``QSharedMemoryLocker`` does.

        True: taken, release it with :meth:`_unlock_internally`.  False: nothing to take (no
        lock for this key, or this object holds it already: then it stays held afterwards,
        where Qt would release it under its caller).  None: not had; the error is set.
        """
        held = self._held
        if not self._locks():
            return False
        if held[0] == 0:
            _warn_already_locked()  # Qt's QSharedMemoryLocker calls lock(), which warns
            return False
        if timeout is None:
            held.extend(starmap(self._take, _NO_ARGS))
            if held[0] == 0:
                return True
        if self._sem._modify(-1, timeout, held):
            self._set_fast()
            return True
        self._lock_failed(function, timeout)
        return None

    def _unlock_internally(self) -> None:
        held = self._held
        held.extend(map(not_, starmap(self._give, _NO_ARGS)))
        if held[0] is not True and not self._sem._modify(1, None, held):
            held.extend(_FREE)
            self._set_fast(clear=True)  # the lock's error now fails initKey: the long way

    def _lock_failed(self, function: str, timeout: Optional[float]) -> None:
        """Qt's LockError "<function>: unable to lock", saying more when our timeout ran out."""
        text = f"{function}: unable to lock"
        self._set_fast(clear=True)  # a slow wait may have re-opened the semaphore: re-bind later
        if self._sem._timed_out:
            text += f" (timed out after {timeout:g} s; {self._lock_description()})"
            # A timeout is ours, not an error of Qt's semaphore: left there, it would make the
            # next initKey() fail (Qt checks the semaphore's error() after re-keying it).
            self._sem._clear_error()
        self._set_error(SharedMemoryError.LockError, text)

    def _lock_description(self) -> str:
        handle = self._sem._handle
        where = handle.describe() if handle else "no lock"
        name = repr(self.key()) if self.key() else repr(self._ipc_key.toString())
        return (
            f"the lock of key {name} ({where}) is held by another process; "
            "if that process is gone, the lock looks abandoned"
        )

    # -- internals: mapping -----------------------------------------------------------------

    def _mapped(self, memory: Any, size: int, readonly: bool, address: Optional[int] = None) -> None:
        """Attached: ``memory`` is the mapping's pointer, or its ``address`` as an int."""
        self._addr = _memory.address(memory) if address is None else address
        self._memory = memory
        self._size = size
        self._readonly = readonly
        self._buffer, self._retired = _memory.mapped_buffer(memory, size)

    def _unmapped(self, unmap: Any) -> None:
        """Give the mapping back with ``unmap(addr, size)``, or retire it if views remain.

        The buffer is taken out of this object first: ``unmap`` runs with the GIL released, and
        a ``data()`` in another thread meanwhile must get None, not a new view over an address
        that is going away.  Every view made before is counted in the buffer's refcount.
        """
        buffer, memory, size = self._buffer, self._memory, self._size
        self._memory = self._buffer = None
        pointer = _memory.pointer(memory) if type(memory) is int else memory  # an int: one-call attach
        self._size = 0
        try:
            if sys.getrefcount(buffer) > _UNSHARED_REFCOUNT:  # the local name and the argument
                _memory.retire(pointer, size, self.nativeKey(), self._retired)
            else:
                unmap(pointer, size)
        except BaseException:
            self._memory, self._buffer, self._size = memory, buffer, size  # still mapped
            raise


if _fast is not None:
    _fast.bind_methods(QSharedMemory)  # lock(), unlock(), attach(), detach(): called the fast way


class _SysVSegment:
    """The System V side of one ``QSharedMemory``: key file, ``key_t``, segment id."""

    kind = "sysv"

    def __init__(self, owner: QSharedMemory):
        # A weak proxy: a strong reference back would make every QSharedMemory a reference
        # cycle, freed only by the cyclic GC, whose __del__ -> close() then runs at a random
        # moment (possibly while this thread holds the lock).
        self.owner: QSharedMemory = cast("QSharedMemory", proxy(owner))
        self.unix_key = 0
        self.removed = False  # the last detach removed the segment

    def _qt66(self) -> bool:
        return self.owner._qt >= _QT66

    def _project_id(self) -> int:
        return int(self.owner._ipc_key.type()) if self._qt66() else sysv.QT_PROJECT_ID

    def exists(self) -> bool:
        return os.path.exists(self.owner.nativeKey())

    def in_use(self) -> bool:
        """The segment exists and a process is attached to it: create() cannot but fail.

        Looks only (``lstat``, ``ftok``, ``shmget`` without ``IPC_CREAT``, ``IPC_STAT``): nothing
        is made, and no lock is taken.
        """
        name = self.owner.nativeKey()
        if not name:
            return False
        try:
            st = os.lstat(name)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                return False  # the long way refuses it with a precise error
            shmid = sysv.shm_get(sysv.ftok(name, self._project_id()), True, name)
            return sysv.shm_size_and_attachments(shmid, name)[1] > 0
        except (OSError, ValueError):
            return False

    def fail_exists(self) -> None:
        """Set the error of an exclusive ``shmget`` that found the segment (AlreadyExists)."""
        self.owner._set_errno(OSError(errno.EEXIST, os.strerror(errno.EEXIST)), f"{_QSM}::create")

    def is_stale(self) -> bool:
        """The segment exists and no process is attached to it (its creator died)."""
        try:
            name = self.owner.nativeKey()
            shmid = sysv.shm_get(sysv.ftok(name, self._project_id()), True, name)
            return sysv.shm_size_and_attachments(shmid, name)[1] == 0
        except OSError:
            return False

    def handle(self) -> int:
        """Qt's ``handle()``: the ``key_t`` of the key file (which must exist)."""
        if self.unix_key:
            return self.unix_key
        owner = self.owner
        native = owner.nativeKey()
        if not native:
            owner._set_error(SharedMemoryError.KeyError, f"{_QSM}::handle:: key is empty")
            raise _Failed
        try:
            st = os.lstat(native)
        except OSError:
            st = None
        if st is not None and not owner._allow_foreign:
            self._refuse_foreign_key_file(native, st)
        if not self._qt66():
            # Qt <= 6.5 checks the file first, with its own (double-colon) message.  The lstat
            # above answers for a plain file; only a (followed) symlink needs a second look.
            if st is None or (stat.S_ISLNK(st.st_mode) and not os.path.exists(native)):
                owner._set_error(SharedMemoryError.NotFound, f"{_QSM}::handle:: UNIX key file doesn't exist")
                raise _Failed
            try:
                self.unix_key = sysv.ftok(native)
            except OSError:
                owner._set_error(SharedMemoryError.KeyError, f"{_QSM}::handle:: ftok failed")
                raise _Failed from None
            return self.unix_key
        try:
            self.unix_key = sysv.ftok(native, self._project_id())
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::handle")
            raise _Failed from None
        return self.unix_key

    def _refuse_foreign_key_file(self, native: str, st: os.stat_result) -> None:
        """Refuse a key file that is a symlink or not ours (Qt uses whatever it finds there)."""
        if stat.S_ISLNK(st.st_mode):
            self.owner._set_error(
                SharedMemoryError.KeyError,
                f"{_QSM}::handle: key file {native} is a symbolic link; refused "
                "(allow_foreign=True follows it as Qt does)",
            )
            raise _Failed
        if st.st_uid != os.geteuid():
            self.owner._set_error(
                SharedMemoryError.PermissionDenied,
                f"{_QSM}::handle: key file {native} belongs to uid {st.st_uid}, not to us; refused "
                "(allow_foreign=True uses it as Qt does)",
            )
            raise _Failed

    def clean_handle(self) -> bool:
        """Qt's ``cleanHandle``.  From 6.6 it also removes a segment nobody is attached to (a
        crashed creator's), with its key file."""
        unix_key, self.unix_key = self.unix_key, 0
        if not unix_key or not self._qt66():
            return True
        return self._remove_if_unused(unix_key)

    def _remove_if_unused(self, unix_key: int) -> bool:
        owner = self.owner
        name = owner.nativeKey()
        try:
            shmid = sysv.shm_get(unix_key, True, name)
            attachments = sysv.shm_size_and_attachments(shmid, name)[1]
        except OSError as exc:
            return exc.errno in (errno.EINVAL, errno.ENOENT)
        if attachments != 0:
            return True
        self.removed = True
        try:
            sysv.shm_remove(shmid, name)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                owner._set_errno(exc, f"{_QSM}::remove")
                return False
        return sysv.remove_key_file(name)

    def unmap_only(self) -> None:
        """Drop this process's mapping, skipping the last-one-out removal (no lock was had)."""
        name = self.owner.nativeKey()
        self.owner._unmapped(lambda memory, size: sysv.shm_detach(memory, name))
        self.unix_key = 0

    def discard_created(self) -> None:
        """Remove the segment this object just created and could not attach."""
        if self.unix_key:
            self._remove_if_unused(self.unix_key)
            self.unix_key = 0

    def create(self, size: int) -> None:
        owner = self.owner
        native = owner.nativeKey()
        if _in_root(native, owner._ipc_key.legacyKey()):
            owner._set_error(
                SharedMemoryError.KeyError,
                f"{_QSM}::handle:: unable to make key ($TMPDIR does not exist, and Qt <= 6.9.1 "
                f"would put the key file {native} in /; refused)",
            )
            raise _Failed
        try:
            created_file = sysv.create_key_file(native)
        except OSError:
            owner._set_error(SharedMemoryError.KeyError, f"{_QSM}::handle:: unable to make key")
            raise _Failed from None
        try:
            key = self.handle()
        except _Failed:
            if created_file:
                sysv.remove_key_file(native)
            raise
        try:
            sysv.shm_create(key, size, native)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                owner._set_error(SharedMemoryError.InvalidSize, f"{_QSM}::handle: system-imposed size restrictions")
            else:
                owner._set_errno(exc, f"{_QSM}::create")
            if created_file and owner._error != SharedMemoryError.AlreadyExists:
                sysv.remove_key_file(native)
            raise _Failed from None

    def attach(self, mode: AccessMode) -> None:
        owner = self.owner
        readonly = mode == AccessMode.ReadOnly
        name = owner.nativeKey()
        try:
            shmid = sysv.shm_get(self.unix_key, readonly, name)
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::attach (shmget)")
            if self._qt66():
                self.unix_key = 0
            raise _Failed from None
        try:
            memory = sysv.shm_attach(shmid, readonly, name)
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::attach (shmat)")
            raise _Failed from None
        try:
            size, _, uid = sysv.shm_size_and_attachments(shmid, name)
        except OSError as exc:
            sysv.shm_detach(memory, name)  # Qt stays attached with size 0; we give it back
            owner._set_errno(exc, f"{_QSM}::attach (shmctl)")
            raise _Failed from None
        if uid != os.geteuid() and not owner._allow_foreign:
            sysv.shm_detach(memory, name)
            owner._set_error(
                SharedMemoryError.PermissionDenied,
                f"{_QSM}::attach: segment {shmid} of key file {name} belongs to uid {uid}, not to us; "
                "refused (allow_foreign=True attaches as Qt does)",
            )
            raise _Failed
        owner._mapped(memory, size, readonly)

    def detach(self) -> bool:
        owner = self.owner
        name = owner.nativeKey()
        self.removed = False
        try:
            owner._unmapped(lambda memory, size: sysv.shm_detach(memory, name))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                owner._set_error(SharedMemoryError.NotFound, f"{_QSM}::detach: not attached")
            else:
                owner._set_errno(exc, f"{_QSM}::detach")
            return False
        # The last one out removes the segment and its key file.
        unix_key, self.unix_key = self.unix_key, 0
        return self._remove_if_unused(unix_key)


class _PosixSegment:
    """The POSIX side of one ``QSharedMemory``: ``shm_open`` name, descriptor, mapping.

    As in Qt, the object is never unlinked on Linux, not even by the last detach.
    """

    kind = "posix"

    def __init__(self, owner: QSharedMemory):
        # A weak proxy: a strong reference back would make every QSharedMemory a reference
        # cycle, freed only by the cyclic GC, whose __del__ -> close() then runs at a random
        # moment (possibly while this thread holds the lock).
        self.owner: QSharedMemory = cast("QSharedMemory", proxy(owner))
        self.fd = -1
        self.unix_key = 0  # none on POSIX (read by the System V one-call paths, never set)
        self.removed = False  # never: Qt does not unlink POSIX shared memory on Linux

    def exists(self) -> bool:
        name = self.owner.nativeKey()
        return bool(name) and posix.shm_exists(name)

    def is_stale(self) -> bool:
        return False  # POSIX tells nothing of who is attached

    def in_use(self) -> bool:
        """The object exists (POSIX does not say who maps it; Qt never unlinks it), so an
        exclusive ``shm_open`` would fail."""
        name = self.owner.nativeKey()
        try:
            fd = posix.shm_open(name, posix.open_flags(True), 0) if name else -1
        except (OSError, ValueError):
            return False  # missing, or not ours to open: the long way says which
        if fd == -1:
            return False
        posix.close(fd)
        return True

    def fail_exists(self) -> None:
        """Set the error of an exclusive ``shm_open`` that found the object (AlreadyExists)."""
        self.owner._set_errno(OSError(errno.EEXIST, os.strerror(errno.EEXIST)), f"{_QSM}::attach (shm_open)")

    def unmap_only(self) -> None:
        name = self.owner.nativeKey()
        self.owner._unmapped(lambda memory, size: posix.munmap(memory, size, name))
        self.clean_handle()

    def discard_created(self) -> None:
        """Unlink the object this object just created and could not map."""
        posix.shm_unlink(self.owner.nativeKey())

    def handle(self) -> None:
        if not self.owner.nativeKey():
            self.owner._set_error(SharedMemoryError.KeyError, f"{_QSM}::handle: key is empty")
            raise _Failed

    def clean_handle(self) -> bool:
        if self.fd != -1:
            posix.close(self.fd)
            self.fd = -1
        return True

    def _open_failed(self, exc: OSError) -> None:
        function = f"{_QSM}::attach (shm_open)"
        if exc.errno == errno.EINVAL:
            self.owner._set_error(SharedMemoryError.KeyError, f"{function}: bad name")
        else:
            self.owner._set_errno(exc, function)
        raise _Failed from None

    def create(self, size: int) -> None:
        self.handle()
        name = self.owner.nativeKey()
        try:
            fd = posix.shm_open(name, posix.create_flags(), posix.IPC_MODE)
        except OSError as exc:
            self._open_failed(exc)
        try:
            posix.ftruncate(fd, size, name)
        except OSError as exc:
            self.owner._set_errno(exc, f"{_QSM}::create (ftruncate)")
            raise _Failed from None
        finally:
            posix.close(fd)

    def attach(self, mode: AccessMode) -> None:
        owner = self.owner
        readonly = mode == AccessMode.ReadOnly
        name = owner.nativeKey()
        try:
            self.fd = posix.shm_open(name, posix.open_flags(readonly), 0o400 if readonly else posix.IPC_MODE)
        except OSError as exc:
            self.fd = -1
            self._open_failed(exc)
        try:
            size = posix.fstat_size(self.fd, name)
            uid = posix.fstat_uid(self.fd, name)
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::attach (fstat)")
            self.clean_handle()
            raise _Failed from None
        if uid != os.geteuid() and not owner._allow_foreign:
            self.clean_handle()
            owner._set_error(
                SharedMemoryError.PermissionDenied,
                f"{_QSM}::attach: POSIX shared memory {name} belongs to uid {uid}, not to us; refused "
                "(allow_foreign=True attaches as Qt does)",
            )
            raise _Failed
        try:
            memory = posix.mmap(self.fd, size, readonly, name)
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::attach (mmap)")
            self.clean_handle()
            raise _Failed from None
        owner._mapped(memory, size, readonly)

    def detach(self) -> bool:
        owner = self.owner
        name = owner.nativeKey()
        try:
            owner._unmapped(lambda memory, size: posix.munmap(memory, size, name))
        except OSError as exc:
            owner._set_errno(exc, f"{_QSM}::detach (munmap)")
            return False
        self.clean_handle()
        return True


class _Locked:
    """The context manager of :meth:`QSharedMemory.locked`."""

    __slots__ = ("_shm", "_timeout")

    def __init__(self, shm: QSharedMemory, timeout: Optional[float]):
        self._shm = shm
        self._timeout = timeout

    def __enter__(self) -> QSharedMemory:
        shm = self._shm
        try:
            ok = shm.lock(self._timeout)
        except BaseException:
            # Interrupted (Ctrl-C): the block will not run, so its lock must not stay taken.
            shm.unlock()
            raise
        if not ok:
            if shm._sem._timed_out:
                raise LockTimeoutError(shm._error_string)
            raise IpcError(shm._error_string)
        return shm

    def __exit__(self, *exc_info: object) -> None:
        self._shm.unlock()


def _warn_already_locked() -> None:
    """Qt's qWarning when lock() is called by the object that holds the lock."""
    import warnings

    warnings.warn("QSharedMemory::lock: already locked", RuntimeWarning, stacklevel=3)


def _no_fast() -> int:
    """The lock's fast path before a semaphore is known: always "take the long way"."""
    return -1


if TYPE_CHECKING:
    _Segment = Union[_SysVSegment, _PosixSegment]


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, not {type(size).__name__}")
    if size > sys.maxsize:
        raise OverflowError(f"size {size} is larger than any segment can be (qsizetype)")
    return size


def _in_root(native: str, legacy_key: str) -> bool:
    """A legacy key file that would land in ``/``: Qt <= 6.9.1 with a missing ``$TMPDIR``."""
    return bool(legacy_key) and os.path.dirname(native) == "/"
