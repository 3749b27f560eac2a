"""``QSharedMemory``, with Qt's names, on the System V backend Qt uses for string keys on Linux.

The class keeps Qt's camelCase method names and enum names and values on purpose, so PyQt code
ports by changing one import (as Python's own ``unittest`` keeps its foreign camelCase).
Additions of our own are snake_case or keyword-only: timeouts on every call that takes the lock,
``locked()``, ``close()`` and the context manager.

The lifecycle follows Qt 5.15.8 / 6.4.2 ``qsharedmemory.cpp`` and ``qsharedmemory_systemv.cpp``
(spec §4.2, §8): ``create()``, ``attach()`` and ``detach()`` hold the lock semaphore
``qipc_systemsem_<letters><sha1>`` while they work; the segment is
``shmget(ftok(<temp>/qipc_sharedmemory_<letters><sha1>, 'Q'), size, 0600|IPC_CREAT|IPC_EXCL)``;
whoever detaches last removes the segment and its key file.

Where Qt is unsafe we are safer without changing what a Qt peer sees:

* a ``create()`` that fails with AlreadyExists leaves the lock semaphore alone (every Qt stack
  resets it to 1 and later removes it, breaking a lock another process holds);
* ``data()`` after a ReadOnly attach is a read-only ``memoryview``: a write raises ``TypeError``
  instead of the SIGSEGV of every Qt stack;
* a ``memoryview`` that outlives ``detach()`` reads harmless private memory instead of crashing;
* ``lock()`` and the internal locking take a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings
from typing import Any, Iterator, List, Optional, Tuple, Union

from . import _registry, keys, sysv
from .errors import SEM_TO_SHM, AccessMode, SharedMemoryError, shm_error
from .exceptions import IpcError, LockTimeoutError
from .semaphore import QSystemSemaphore

_QSM = "QSharedMemory"
# Our own reference plus getrefcount's argument: more means a memoryview still uses the buffer.
_UNSHARED_REFCOUNT = 2


class _Failed(Exception):
    """Internal: a step failed; error() and errorString() are already set."""


class QSharedMemory:
    """``QSharedMemory``: a shared memory segment that Qt programs see as their own.

    ``QSharedMemory(key)`` names the segment exactly as Qt does for ``key``.  ``create(size)``,
    ``attach()`` and ``detach()`` return False on failure, with ``error()`` and
    ``errorString()`` as Qt 5.15 gives them (or as the Qt version given by ``qt_version``).
    ``data()`` is a ``memoryview`` of exactly ``size()`` bytes over the segment itself.
    """

    AccessMode = AccessMode
    SharedMemoryError = SharedMemoryError
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
        key: Any = "",
        parent: Any = None,
        *,
        qt_version: Union[str, Tuple[int, ...], None] = None,
    ):
        if key is None or not isinstance(key, str):
            # QSharedMemory(parent): Qt's overload without a key.
            parent, key = key, ""
        self._qt = keys.parse_qt_version(qt_version)
        self._parent = parent
        self._key: Optional[str] = None
        self._native_key = ""
        self._unix_key = 0
        self._shmid = -1
        self._memory: Any = None
        self._buffer: Any = None
        self._readonly = False
        self._size = 0
        self._error = SharedMemoryError.NoError
        self._error_string = ""
        self._locked_by_me = False
        self._fast: Any = None  # the backend semaphore of the last successful lock
        self._retired: List[Tuple[Any, Any, int]] = []
        self._sem = QSystemSemaphore(None, qt_version=self._qt)
        _registry.unregister(self._sem)  # closed by this object, after the segment
        _registry.register(self)
        self.setKey(key)

    # -- keys -------------------------------------------------------------------------------

    def setKey(self, key: Optional[str]) -> None:
        """``QSharedMemory::setKey``: detach if attached, then use the segment Qt names ``key``."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"a key is a str, not {type(key).__name__}")
        key = key or None
        native = self._legacy_native_key(key)
        if key == self._key and native == self._native_key:
            return
        if self.isAttached():
            self.detach()
        self._clean_handle()
        self._key = key
        self._native_key = native

    def setNativeKey(self, key: str) -> None:
        """``QSharedMemory::setNativeKey`` (Qt 5.15 meaning: a key file path; no lock)."""
        if not isinstance(key, str):
            raise TypeError(f"a native key is a str, not {type(key).__name__}")
        if key == self._native_key and self._key is None:
            return
        if self.isAttached():
            self.detach()
        self._clean_handle()
        self._key = None
        self._native_key = key

    def key(self) -> str:
        """``QSharedMemory::key``: the key given to setKey(), or "" for a native key."""
        return self._key or ""

    def nativeKey(self) -> str:
        """``QSharedMemory::nativeKey``: the key file Qt derives from the key."""
        return self._native_key

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
        mode = AccessMode(mode)
        if not self._init_key():
            return False
        if self._key is not None:
            # Qt opens the lock in Create mode here, resetting it to 1 and taking ownership, "in
            # case it survived a crash".  With SEM_UNDO a crash cannot leave it taken, so only a
            # value above 1 (no exclusion at all) is reset; ownership waits for success below.
            self._repair_lock_value()
        function = f"{_QSM}::create"
        with self._internal_lock(function, timeout) as locked:
            if not locked:
                return False
            if size <= 0:
                self._set_error(SharedMemoryError.InvalidSize, f"{function}: create size is less then 0")
                return False
            try:
                self._create_segment(size)
                if self._key is not None:
                    self._own_lock()
                self._attach_segment(mode)
            except _Failed:
                return False
            return True

    def attach(
        self,
        mode: Union[AccessMode, int] = AccessMode.ReadWrite,
        *,
        timeout: Optional[float] = None,
    ) -> bool:
        """``QSharedMemory::attach``: attach to the segment a Qt program (or we) created."""
        mode = AccessMode(mode)
        if self.isAttached() or not self._init_key():
            return False
        with self._internal_lock(f"{_QSM}::attach", timeout) as locked:
            if not locked or self.isAttached():
                return False
            try:
                self._handle()
                self._attach_segment(mode)
            except _Failed:
                return False
            return True

    def detach(self, *, timeout: Optional[float] = None) -> bool:
        """``QSharedMemory::detach``; the last process to detach removes the segment and key file."""
        if not self.isAttached():
            return False
        with self._internal_lock(f"{_QSM}::detach", timeout) as locked:
            if not locked:
                return False
            return self._detach_segment()

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
        if self._buffer is None:
            return None
        view = memoryview(self._buffer)
        return view.toreadonly() if self._readonly else view

    def constData(self) -> Optional[memoryview]:
        """``QSharedMemory::constData``: a read-only ``memoryview`` over the segment."""
        if self._buffer is None:
            return None
        return memoryview(self._buffer).toreadonly()

    # -- the lock ---------------------------------------------------------------------------

    def lock(self, timeout: Optional[float] = None) -> bool:
        """``QSharedMemory::lock``; with ``timeout`` (seconds), False once it runs out."""
        if self._locked_by_me:
            warnings.warn("QSharedMemory::lock: already locked", RuntimeWarning, stacklevel=2)
            return True
        # Fast path: the semaphore used last time, one semop; anything unusual goes the long way
        # (which re-makes a removed semaphore, retries EINTR and sets Qt's errors).
        fast = self._fast
        if timeout is None and fast is not None and fast.take() == 0:
            self._locked_by_me = True
            return True
        if self._sem._modify(-1, timeout):
            self._locked_by_me = True
            self._fast = self._sem._fast_semaphore()
            return True
        text = f"{_QSM}::lock: unable to lock"
        if self._sem._timed_out:
            text += f" (timed out after {timeout:g} s; {self._lock_description()})"
        self._set_error(SharedMemoryError.LockError, text)
        return False

    def unlock(self) -> bool:
        """``QSharedMemory::unlock``: False unless this object holds the lock."""
        if not self._locked_by_me:
            return False
        self._locked_by_me = False
        fast = self._fast
        if fast is not None and fast.give() == 0:
            return True
        if self._sem._modify(1, None):
            return True
        self._set_error(SharedMemoryError.LockError, f"{_QSM}::unlock: unable to unlock")
        return False

    @contextlib.contextmanager
    def locked(self, timeout: Optional[float] = None) -> Iterator["QSharedMemory"]:
        """``with shm.locked(timeout=1.0):`` hold the lock for the block.

        Raises ``LockTimeoutError`` (a ``TimeoutError``) when the lock is not had in time, and
        ``IpcError`` when it cannot be taken at all.
        """
        if not self.lock(timeout):
            if self._sem._timed_out:
                raise LockTimeoutError(self._error_string)
            raise IpcError(self._error_string)
        try:
            yield self
        finally:
            self.unlock()

    # -- errors -----------------------------------------------------------------------------

    def error(self) -> SharedMemoryError:
        """``QSharedMemory::error``."""
        return self._error

    def errorString(self) -> str:
        """``QSharedMemory::errorString``."""
        return self._error_string

    # -- Python additions -------------------------------------------------------------------

    def close(self) -> None:
        """What Qt's destructor does: detach (the last one out removes the segment) and give up
        the lock semaphore if this object owns it."""
        if self._locked_by_me:
            self.unlock()
        self.setKey(None)
        self._fast = None
        self._sem.close()
        self._sweep_retired(force=False)
        _registry.unregister(self)

    def __enter__(self) -> "QSharedMemory":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = f"attached, {self._size} bytes" if self.isAttached() else "detached"
        return f"<QSharedMemory key={self.key()!r} nativeKey={self._native_key!r} {state}>"

    # -- internals --------------------------------------------------------------------------

    def _legacy_native_key(self, key: Optional[str]) -> str:
        if key is None:
            return ""
        ctx = keys.KeyContext(qt_version=self._qt)
        return keys.legacy_platform_safe_key(key, keys.SHM_PREFIX, 0x51, ctx)

    def _set_error(self, error: SharedMemoryError, text: str) -> None:
        self._error = error
        self._error_string = text

    def _set_errno(self, exc: OSError, function: str) -> None:
        self._set_error(*shm_error(exc.errno or 0, function, self._qt))

    def _init_key(self) -> bool:
        """Qt's ``initKey``: point the lock semaphore at this key (mode Open, initial value 1)."""
        self._clean_handle()
        self._fast = None
        sem = self._sem
        sem.setKey(None, 1)
        sem.setKey(self._key, 1)
        if sem.error() != sem.NoError:
            self._set_error(SEM_TO_SHM[sem.error()], self._init_key_failure(sem.errorString()))
            return False
        self._set_error(SharedMemoryError.NoError, "")
        return True

    def _init_key_failure(self, sem_text: str) -> str:
        text = "QSharedMemoryPrivate::initKey: unable to set key on lock"
        return f"{text} ({sem_text})" if self._qt >= (6, 6, 0) else text

    def _repair_lock_value(self) -> None:
        handle = self._sem._handle
        try:
            if handle is not None and handle.sem is not None and handle.sem.value() > 1:
                handle.sem.set_value(1)
        except OSError:
            pass  # removed meanwhile: the lock below re-makes it

    def _own_lock(self) -> None:
        """After a successful create, own the lock semaphore as Qt's creator does."""
        handle = self._sem._handle
        if handle is not None:
            handle.created_semaphore = handle.created_file = True

    @contextlib.contextmanager
    def _internal_lock(self, function: str, timeout: Optional[float]) -> Iterator[bool]:
        """Hold the lock around create/attach/detach, as Qt's ``QSharedMemoryLocker`` does.

        Only for string keys (Qt 5.15 does not lock native keys).  If this object already holds
        the lock, it stays held afterwards (Qt releases it here, which surprises its callers).
        """
        if self._key is None or self._locked_by_me:
            yield True
            return
        fast = self._fast
        if not (timeout is None and fast is not None and fast.take() == 0) and not self._sem._modify(-1, timeout):
            text = f"{function}: unable to lock"
            if self._sem._timed_out:
                text += f" (timed out after {timeout:g} s; {self._lock_description()})"
            self._set_error(SharedMemoryError.LockError, text)
            yield False
            return
        self._fast = fast = self._sem._fast_semaphore()
        try:
            yield True
        finally:
            if fast is None or fast.give() != 0:
                self._sem._modify(1, None)

    def _lock_description(self) -> str:
        handle = self._sem._handle
        where = handle.describe() if handle else "no lock"
        return (
            f"the lock of key {self.key()!r} ({where}) is held by another process; "
            "if that process is gone, the lock looks abandoned"
        )

    def _clean_handle(self) -> None:
        self._unix_key = 0

    def _handle(self) -> int:
        """Qt 5.15's ``handle()``: the ``key_t`` of the key file (which must exist)."""
        if self._unix_key:
            return self._unix_key
        function = f"{_QSM}::handle:"
        if not self._native_key:
            self._set_error(SharedMemoryError.KeyError, f"{function}: key is empty")
            raise _Failed
        if not _exists(self._native_key):
            self._set_error(SharedMemoryError.NotFound, f"{function}: UNIX key file doesn't exist")
            raise _Failed
        try:
            self._unix_key = sysv.ftok(self._native_key)
        except OSError:
            self._set_error(SharedMemoryError.KeyError, f"{function}: ftok failed")
            raise _Failed from None
        return self._unix_key

    def _create_segment(self, size: int) -> None:
        try:
            created_file = sysv.create_key_file(self._native_key)
        except OSError:
            self._set_error(SharedMemoryError.KeyError, f"{_QSM}::handle:: unable to make key")
            raise _Failed from None
        try:
            key = self._handle()
        except _Failed:
            if created_file:
                sysv.remove_key_file(self._native_key)
            raise
        try:
            sysv.shm_create(key, size, self._native_key)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                self._set_error(
                    SharedMemoryError.InvalidSize, f"{_QSM}::handle: system-imposed size restrictions"
                )
            else:
                self._set_errno(exc, f"{_QSM}::create")
            if created_file and self._error != SharedMemoryError.AlreadyExists:
                sysv.remove_key_file(self._native_key)
            raise _Failed from None

    def _attach_segment(self, mode: AccessMode) -> None:
        readonly = mode == AccessMode.ReadOnly
        name = self._native_key
        try:
            shmid = sysv.shm_get(self._unix_key, readonly, name)
        except OSError as exc:
            self._set_errno(exc, f"{_QSM}::attach (shmget)")
            raise _Failed from None
        try:
            memory = sysv.shm_attach(shmid, readonly, name)
        except OSError as exc:
            self._set_errno(exc, f"{_QSM}::attach (shmat)")
            raise _Failed from None
        try:
            info = sysv.shm_stat(shmid, name)
        except OSError as exc:
            # Qt stays attached here with size 0; we give the mapping back instead.
            sysv.shm_detach(memory, name)
            self._set_errno(exc, f"{_QSM}::attach (shmctl)")
            raise _Failed from None
        self._shmid = shmid
        self._memory = memory
        self._size = info.size
        self._readonly = readonly
        self._buffer = sysv.memory_view(memory, info.size)

    def _detach_segment(self) -> bool:
        name = self._native_key
        buffer, memory, size = self._buffer, self._memory, self._size
        try:
            if sys.getrefcount(buffer) > _UNSHARED_REFCOUNT + 1:  # +1: the local name
                sysv.shm_retire(memory, size, name)
                self._retired.append((buffer, memory, size))
            else:
                sysv.shm_detach(memory, name)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                self._set_error(SharedMemoryError.NotFound, f"{_QSM}::detach: not attached")
            else:
                self._set_errno(exc, f"{_QSM}::detach")
            return False
        del buffer
        self._memory = self._buffer = None
        self._size = 0
        self._shmid = -1
        self._sweep_retired(force=False)

        # The last one out removes the segment and its key file.
        unix_key = self._unix_key
        self._clean_handle()
        try:
            shmid = sysv.shm_get(unix_key, True, name)
            info = sysv.shm_stat(shmid, name)
        except OSError as exc:
            return exc.errno in (errno.EINVAL, errno.ENOENT)
        if info.nattch == 0:
            try:
                sysv.shm_remove(shmid, name)
            except OSError as exc:
                self._set_errno(exc, f"{_QSM}::remove")
                return exc.errno == errno.EINVAL
            if not sysv.remove_key_file(name):
                return False
        return True

    def _sweep_retired(self, force: bool) -> None:
        """Unmap placeholders of detached segments once no memoryview uses them any more."""
        keep = []
        for entry in self._retired:
            if force or sys.getrefcount(entry[0]) <= _UNSHARED_REFCOUNT:
                sysv.unmap(entry[1], entry[2])
            else:
                keep.append(entry)
        self._retired = keep


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, not {type(size).__name__}")
    return size


def _exists(path: str) -> bool:
    return os.path.exists(path)
