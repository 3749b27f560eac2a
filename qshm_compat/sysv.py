"""System V backend: key files, ``ftok``, ``shmget``/``shmat``/``shmdt``/``shmctl`` and
``semget``/``semop``/``semctl``, exactly as Qt calls them on Linux.

Thin on purpose: every function calls C, checks the result and raises
``OSError(errno, strerror, name)`` naming the OS object; Python turns that into
``FileExistsError``, ``PermissionError`` and so on.  Translating an ``OSError`` into Qt's error
codes and strings happens in :mod:`qshm_compat.errors`, not here.

Facts (flags, modes, the order of calls) were read from Qt 5.15.8 and 6.4.2
``src/corelib/kernel/qsharedmemory_systemv.cpp`` and ``qsystemsemaphore_systemv.cpp``, 6.8.2
``src/corelib/ipc/``, and checked against strace output of real Qt (spec §4).
"""

from __future__ import annotations

import errno
import os
import time
from operator import not_

TYPE_CHECKING = False
if TYPE_CHECKING:
    from functools import partial
else:
    try:  # the C class itself: importing functools costs import time
        from _functools import partial
    except ImportError:  # pragma: no cover
        from functools import partial

from ._memory import encode_name
from ._native import ffi, lib
from ._plain import fast as _fast

if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

    Name = Union[str, Callable[[], str]]

#: ftok project id of Qt's legacy keys and of ``QNativeIpcKey::Type::SystemV``: ``'Q'``.
QT_PROJECT_ID = 0x51
#: Mode of the key file Qt creates (before the umask).
KEY_FILE_MODE = 0o640
#: Mode Qt gives segments and semaphores.
IPC_MODE = 0o600

_KEY_FILE_FLAGS = lib.O_EXCL | lib.O_CREAT | lib.O_RDWR | lib.O_CLOEXEC
HAVE_TIMED_WAIT = bool(lib.QSHM_HAVE_SEMTIMEDOP)


def _raise(name: Name) -> Any:
    """Raise ``OSError`` for ``errno``; ``name`` is the object's name, or a callable making it
    (so that the success path never formats a name)."""
    code = ffi.errno
    raise OSError(code, os.strerror(code), name() if callable(name) else name)


# --- key files and ftok -------------------------------------------------------------------


def create_key_file(path: str) -> bool:
    """Create Qt's empty key file with ``O_CREAT|O_EXCL``, mode 0640.

    Returns True when this call created it, False when it already existed; any other failure
    raises ``OSError``.
    """
    fd = lib.qshm_open(encode_name(path), _KEY_FILE_FLAGS, KEY_FILE_MODE)
    if fd == -1:
        if ffi.errno == errno.EEXIST:
            return False
        _raise(path)
    lib.close(fd)
    return True


def remove_key_file(path: str) -> bool:
    """Unlink a key file; True if it was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def ftok(path: str, project_id: int = QT_PROJECT_ID) -> int:
    """libc ``ftok``: the System V key of an existing file (it follows symlinks, as Qt relies on)."""
    key = lib.ftok(encode_name(path), project_id)
    if key == -1:
        _raise(path)
    return int(key)


# --- shared memory ------------------------------------------------------------------------


class Record:
    """A small immutable record (a dataclass without the import time of ``dataclasses``)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: Any) -> None:
        slot: str
        for slot in self.__slots__:
            object.__setattr__(self, slot, fields.pop(slot))
        if fields:
            raise TypeError(f"unknown fields {sorted(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and type(other) is type(self) and self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        inner = ", ".join(f"{slot}={getattr(self, slot)!r}" for slot in self.__slots__)
        return f"{type(self).__name__}({inner})"


class SegmentInfo(Record):
    """What ``shmctl(IPC_STAT)`` says of a segment."""

    __slots__ = ("shmid", "size", "nattch", "creator_pid", "last_pid", "uid", "mode")
    shmid: int
    size: int
    nattch: int
    creator_pid: int
    last_pid: int
    uid: int
    mode: int


def shm_create(key: int, size: int, name: str) -> int:
    """``shmget(key, size, 0600|IPC_CREAT|IPC_EXCL)``: a new segment's id."""
    shmid = lib.shmget(key, size, IPC_MODE | lib.IPC_CREAT | lib.IPC_EXCL)
    if shmid == -1:
        _raise(name)
    return int(shmid)


def shm_get(key: int, readonly: bool, name: str) -> int:
    """``shmget(key, 0, 0400 or 0600)``: the id of an existing segment."""
    shmid = lib.shmget(key, 0, 0o400 if readonly else IPC_MODE)
    if shmid == -1:
        _raise(name)
    return int(shmid)


def shm_attach(shmid: int, readonly: bool, name: str) -> Any:
    """``shmat(shmid, NULL, SHM_RDONLY or 0)``: the address it is mapped at."""
    addr = lib.qshm_shmat(shmid, lib.SHM_RDONLY if readonly else 0)
    if addr == ffi.NULL:
        _raise(name)
    return addr


def shm_stat(shmid: int, name: str) -> SegmentInfo:
    """``shmctl(IPC_STAT)``."""
    ds = ffi.new("struct shmid_ds *")
    if lib.shmctl(shmid, lib.IPC_STAT, ds) == -1:
        _raise(name)
    return SegmentInfo(
        shmid=shmid,
        size=int(ds.shm_segsz),
        nattch=int(ds.shm_nattch),
        creator_pid=int(ds.shm_cpid),
        last_pid=int(ds.shm_lpid),
        uid=int(ds.shm_perm.uid),
        mode=int(ds.shm_perm.mode) & 0o777,
    )


def shm_size_and_attachments(shmid: int, name: str) -> tuple[int, int, int]:
    """``shmctl(IPC_STAT)``: ``(shm_segsz, shm_nattch, owner uid)``, what attach and detach need."""
    ds = ffi.new("struct shmid_ds *")
    if lib.shmctl(shmid, lib.IPC_STAT, ds) == -1:
        _raise(name)
    return int(ds.shm_segsz), int(ds.shm_nattch), int(ds.shm_perm.uid)


def shm_detach(addr: Any, name: str) -> None:
    """``shmdt``."""
    if lib.shmdt(addr) == -1:
        _raise(name)


def shm_remove(shmid: int, name: str) -> None:
    """``shmctl(IPC_RMID)``."""
    if lib.shmctl(shmid, lib.IPC_RMID, ffi.NULL) == -1:
        _raise(name)


# --- semaphores ---------------------------------------------------------------------------


def sem_get(key: int, exclusive: bool, name: Name) -> int:
    """``semget(key, 1, 0600|IPC_CREAT[|IPC_EXCL])``."""
    flags = IPC_MODE | lib.IPC_CREAT | (lib.IPC_EXCL if exclusive else 0)
    semid = lib.semget(key, 1, flags)
    if semid == -1:
        _raise(name)
    return int(semid)


def sem_open(key: int, name: Name) -> int:
    """``semget(key, 1, 0600)``: an existing semaphore only (``FileNotFoundError`` if none).

    Unlike :func:`sem_find` it asks for read and write access, as Qt's open does, so that where
    Qt fails with EACCES the error comes from here too."""
    semid = lib.semget(key, 1, IPC_MODE)
    if semid == -1:
        _raise(name)
    return int(semid)


class Semaphore:
    """One System V semaphore set of one slot, operated with ``SEM_UNDO`` as Qt does.

    ``SEM_UNDO`` makes the kernel give back what a process took when it dies, so a lock held by
    a killed process is released (and, as in Qt, a ``release()`` by a process that then exits is
    taken back).

    ``take()`` and ``give()`` are the uncontended fast path of a lock: one ``semop`` each, no
    timeout, returning ``semop``'s result (0 on success); on any failure the caller falls back to
    :meth:`modify`, which retries EINTR and raises ``OSError``.  They are the methods of a
    ``qshm_compat._fast.SysVLock`` (native/qshm_fast.c), or with ``QSHM_PLAIN=1`` the cffi
    shims; ``fast`` is that C object (None on the plain path).
    """

    __slots__ = ("semid", "_name", "take", "give", "fast")

    def __init__(self, semid: int, name: Any):
        """``name`` names the OS object in errors: a string, or a callable making one."""
        self.semid = semid
        self._name = name
        if _fast is not None:
            self.fast = _fast.SysVLock(semid)
            self.take = self.fast.take
            self.give = self.fast.give
            return
        self.fast = None
        # One C call each, bound once (partial adds no Python frame).
        self.take = partial(lib.qshm_sem_take, semid)
        self.give = partial(lib.qshm_sem_give, semid)

    @property
    def name(self) -> str:
        return str(self._name() if callable(self._name) else self._name)

    def modify(self, count: int, timeout: Optional[float] = None, into: Any = None) -> bool:
        """Add ``count`` (negative: wait and take).  False only when ``timeout`` ran out.

        EINTR is retried (Qt's ``EINTR_LOOP``); Python's signal handlers run between tries, so a
        Ctrl-C still interrupts a wait.  ``into`` (see :func:`recorded`) records the outcome of
        the ``semop`` itself, so an exception from a signal handler cannot separate the two.
        """
        if count == -1 and timeout is not None and self.fast is not None:
            return timed_take(self.fast, float(timeout), into, self.name)  # the same wait, in C
        ops = _DOWN if count == -1 else _UP if count == 1 else _sembuf(count)
        if timeout is None:
            while recorded(into, count > 0, lib.semop, self.semid, ops, 1) == -1:
                if ffi.errno != errno.EINTR:
                    _raise(self.name)
            return True
        deadline = time.monotonic() + timeout
        remaining = max(timeout, 0.0)
        while True:
            sec = int(remaining)
            nsec = int((remaining - sec) * 1e9)
            if recorded(into, count > 0, lib.qshm_semtimedop, self.semid, ops, 1, sec, nsec) == 0:
                return True
            code = ffi.errno
            if code == errno.EAGAIN:
                return False
            if code != errno.EINTR:
                _raise(self.name)
            remaining = max(deadline - time.monotonic(), 0.0)

    def set_value(self, value: int) -> None:
        if lib.qshm_semctl_setval(self.semid, 0, value) == -1:
            _raise(self.name)

    def value(self) -> int:
        v = lib.qshm_semctl_cmd(self.semid, 0, lib.GETVAL)
        if v == -1:
            _raise(self.name)
        return int(v)

    def last_op_time(self) -> int:
        """``sem_otime``: when a ``semop`` last ran on it, 0 if none ever did (``IPC_STAT``)."""
        ds = ffi.new("struct semid_ds *")
        if lib.qshm_semctl_stat(self.semid, ds) == -1:
            _raise(self.name)
        return int(ds.sem_otime)

    def change_time(self) -> int:
        """``sem_ctime``: when it was made or last set with ``semctl`` (``IPC_STAT``)."""
        ds = ffi.new("struct semid_ds *")
        if lib.qshm_semctl_stat(self.semid, ds) == -1:
            _raise(self.name)
        return int(ds.sem_ctime)

    def last_pid(self) -> int:
        """The pid of the last process that operated on the semaphore (``GETPID``)."""
        v = lib.qshm_semctl_cmd(self.semid, 0, lib.GETPID)
        if v == -1:
            _raise(self.name)
        return int(v)

    def waiters(self) -> int:
        """How many processes wait to take it (``GETNCNT``)."""
        v = lib.qshm_semctl_cmd(self.semid, 0, lib.GETNCNT)
        if v == -1:
            _raise(self.name)
        return int(v)

    def remove(self) -> None:
        if lib.qshm_semctl_cmd(self.semid, 0, lib.IPC_RMID) == -1:
            _raise(self.name)


def recorded(into: Any, release: bool, function: Any, *args: Any) -> int:
    """``function(*args)`` (a C call returning 0 or -1), its outcome stored in ``into`` first.

    ``into`` is a ``deque(maxlen=1)`` holding a lock's state: after a take, the call's result
    (0: held); after a release, ``not result`` (True: given back).  The call and the store happen
    inside C (``map`` consumed by ``deque.extend``), where Python runs no signal handler, so a
    Ctrl-C cannot fall between taking a semaphore and knowing it is taken.  ``into`` None: a
    plain call.
    """
    if into is None:
        return int(function(*args))
    calls = map(function, *[(arg,) for arg in args])
    if release:
        into.extend(map(not_, calls))
        return 0 if into[0] is True else -1
    into.extend(calls)
    return int(into[0])


def timed_take(fast: Any, timeout: float, into: Any, name: str) -> bool:
    """``fast.acquire(timeout)`` (a C lock's timed wait, with its EINTR loop: True when taken),
    its outcome stored in ``into`` inside C as :func:`recorded` does (``not taken``: 0/False
    means held); an error is raised as an ``OSError`` naming the semaphore ``name``."""
    try:
        if into is None:
            return bool(fast.acquire(timeout))
        into.extend(map(not_, map(fast.acquire, (timeout,))))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, name) from None
    return bool(into[0] == 0)


def _sembuf(op: int) -> Any:
    ops = ffi.new("struct sembuf[1]")
    ops[0].sem_num = 0
    ops[0].sem_op = op
    ops[0].sem_flg = lib.SEM_UNDO
    return ops


# Read-only after creation: shared by every semaphore (semop never writes its sembuf).
_DOWN = _sembuf(-1)
_UP = _sembuf(1)


# --- inspection (``qshm probe`` / ``ls`` / ``clean``): look, never create --------------------


class SemaphoreInfo(Record):
    """What ``semctl(IPC_STAT)`` says of a semaphore set."""

    __slots__ = ("semid", "uid", "mode")
    semid: int
    uid: int
    mode: int


def sem_find(key: int, name: str) -> int:
    """``semget(key, 0, 0)``: the id of an existing semaphore set; ENOENT if there is none."""
    semid = lib.semget(key, 0, 0)
    if semid == -1:
        _raise(name)
    return int(semid)


def sem_stat(semid: int, name: str) -> SemaphoreInfo:
    """``semctl(IPC_STAT)``."""
    ds = ffi.new("struct semid_ds *")
    if lib.qshm_semctl_stat(semid, ds) == -1:
        _raise(name)
    return SemaphoreInfo(semid=semid, uid=int(ds.sem_perm.uid), mode=int(ds.sem_perm.mode) & 0o777)
