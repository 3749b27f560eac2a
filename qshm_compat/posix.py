"""POSIX realtime backend: ``shm_open``/``ftruncate``/``mmap`` and ``sem_open``/``sem_wait``.

Used by Qt >= 6.6 for ``QNativeIpcKey`` keys of type ``PosixRealtime`` (the default type of a
new native key on Linux and macOS) and by Qt builds configured with ``QT_POSIX_IPC``.  Thin on
purpose: call C, check, raise ``OSError(errno, strerror, name)``.

Facts were read from Qt 6.8.2 / 6.11.2 ``src/corelib/ipc/qsharedmemory_posix.cpp`` and
``qsystemsemaphore_posix.cpp`` (spec §5): objects are made with mode 0600, a new shm object gets
exactly ``ftruncate(size)``, attach ``mmap``s ``fstat().st_size`` bytes, and Qt never unlinks a
shm object on Linux (only a semaphore's creator unlinks it).
"""

from __future__ import annotations

import errno
import functools
import os
import time
from typing import Any, Optional

from ._native import ffi, lib

IPC_MODE = 0o600
HAVE_TIMED_WAIT = bool(lib.QSHM_HAVE_SEM_TIMEDWAIT)


def _raise(name: str) -> Any:
    code = ffi.errno
    raise OSError(code, os.strerror(code), name)


def _encode(name: str) -> bytes:
    return os.fsencode(name)


# --- shared memory ------------------------------------------------------------------------


def shm_create(name: str, size: int) -> None:
    """``shm_open(O_RDWR|O_CREAT|O_EXCL, 0600)`` then ``ftruncate(size)``."""
    fd = lib.qshm_shm_open(_encode(name), lib.O_RDWR | lib.O_CREAT | lib.O_EXCL | lib.O_CLOEXEC, IPC_MODE)
    if fd == -1:
        _raise(name)
    try:
        if lib.ftruncate(fd, size) == -1:
            _raise(name)
    finally:
        lib.close(fd)


def shm_attach(name: str, readonly: bool) -> "tuple[int, Any, int]":
    """Open, size and map an existing object: ``(fd, address, size)``; the fd stays open."""
    flags = (lib.O_RDONLY if readonly else lib.O_RDWR) | lib.O_CLOEXEC
    fd = lib.qshm_shm_open(_encode(name), flags, 0o400 if readonly else IPC_MODE)
    if fd == -1:
        _raise(name)
    try:
        size = lib.qshm_fstat_size(fd)
        if size == -1:
            _raise(name)
        prot = lib.PROT_READ if readonly else lib.PROT_READ | lib.PROT_WRITE
        addr = lib.qshm_mmap(ffi.NULL, size, prot, lib.MAP_SHARED, fd, 0)
        if addr == ffi.NULL:
            _raise(name)
    except OSError:
        lib.close(fd)
        raise
    return fd, addr, int(size)


def shm_detach(fd: int, addr: Any, size: int, name: str) -> None:
    """``munmap`` and ``close``."""
    if lib.munmap(addr, size) == -1:
        _raise(name)
    lib.close(fd)


def shm_unlink(name: str) -> bool:
    """``shm_unlink``; False if it was not there."""
    if lib.shm_unlink(_encode(name)) == -1:
        if ffi.errno == errno.ENOENT:
            return False
        _raise(name)
    return True


# --- semaphores ---------------------------------------------------------------------------


class Semaphore:
    """A named POSIX semaphore.  There is no undo: a holder that dies keeps it taken."""

    __slots__ = ("name", "_sem", "take", "give")

    def __init__(self, name: str, create: bool, exclusive: bool, initial: int):
        flags = (lib.O_CREAT if create else 0) | (lib.O_EXCL if exclusive else 0)
        while True:
            sem = lib.qshm_sem_open(_encode(name), flags, IPC_MODE, max(initial, 0))
            if sem != ffi.NULL:
                break
            if ffi.errno != errno.EINTR:
                _raise(name)
        self.name = name
        self._sem = sem
        # Uncontended fast path: one C call, 0 on success (as in sysv.Semaphore).
        self.take = functools.partial(lib.sem_trywait, sem)
        self.give = functools.partial(lib.sem_post, sem)

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """``sem_wait`` (EINTR retried); with ``timeout``, ``sem_timedwait``: False when it ran out."""
        sem = self._sem
        if timeout is None:
            while lib.sem_wait(sem) == -1:
                if ffi.errno != errno.EINTR:
                    _raise(self.name)
            return True
        deadline = time.time() + max(timeout, 0.0)
        while True:
            sec = int(deadline)
            if lib.qshm_sem_timedwait(sem, sec, int((deadline - sec) * 1e9)) == 0:
                return True
            code = ffi.errno
            if code == errno.ETIMEDOUT:
                return False
            if code != errno.EINTR:
                _raise(self.name)

    def release(self, n: int = 1) -> None:
        """``sem_post`` n times; if one fails, the earlier posts are taken back (as Qt does)."""
        for done in range(n):
            if lib.sem_post(self._sem) == -1:
                code = ffi.errno
                for _ in range(done):
                    lib.sem_wait(self._sem)
                raise OSError(code, os.strerror(code), self.name)

    def value(self) -> int:
        out = ffi.new("int *")
        if lib.sem_getvalue(self._sem, out) == -1:
            _raise(self.name)
        return int(out[0])

    def close(self) -> None:
        if self._sem != ffi.NULL:
            lib.sem_close(self._sem)
            self._sem = ffi.NULL


def sem_unlink(name: str) -> bool:
    """``sem_unlink``; False if it was not there."""
    if lib.sem_unlink(_encode(name)) == -1:
        if ffi.errno == errno.ENOENT:
            return False
        _raise(name)
    return True
