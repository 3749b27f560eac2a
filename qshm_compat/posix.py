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
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from functools import partial
else:
    try:  # the C class itself: importing functools costs import time
        from _functools import partial
    except ImportError:  # pragma: no cover
        from functools import partial

from ._memory import encode_name as _encode
from ._native import ffi, lib
from ._plain import fast as _fast
from .sysv import recorded, timed_take

if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

IPC_MODE = 0o600
HAVE_TIMED_WAIT = bool(lib.QSHM_HAVE_SEM_TIMEDWAIT)


def _raise(name: str) -> Any:
    code = ffi.errno
    raise OSError(code, os.strerror(code), name)


# --- shared memory ------------------------------------------------------------------------


def shm_open(name: str, flags: int, mode: int) -> int:
    """``shm_open`` (EINTR retried): a file descriptor."""
    while True:
        fd = lib.qshm_shm_open(_encode(name), flags, mode)
        if fd != -1:
            return int(fd)
        if ffi.errno != errno.EINTR:
            _raise(name)


def create_flags() -> int:
    """What Qt passes to create: ``O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC``."""
    return lib.O_RDWR | lib.O_CREAT | lib.O_EXCL | lib.O_CLOEXEC


def open_flags(readonly: bool) -> int:
    """What Qt passes to attach: ``O_RDONLY`` or ``O_RDWR``, with ``O_CLOEXEC``."""
    return (lib.O_RDONLY if readonly else lib.O_RDWR) | lib.O_CLOEXEC


def ftruncate(fd: int, size: int, name: str) -> None:
    while lib.ftruncate(fd, size) == -1:
        if ffi.errno != errno.EINTR:
            _raise(name)


def fstat_size(fd: int, name: str) -> int:
    size = lib.qshm_fstat_size(fd)
    if size == -1:
        _raise(name)
    return int(size)


def fstat_uid(fd: int, name: str) -> int:
    """The owner of an open object (``fstat().st_uid``)."""
    uid = lib.qshm_fstat_uid(fd)
    if uid == -1:
        _raise(name)
    return int(uid)


def mmap(fd: int, size: int, readonly: bool, name: str) -> Any:
    """``mmap(NULL, size, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, 0)``."""
    prot = lib.PROT_READ if readonly else lib.PROT_READ | lib.PROT_WRITE
    addr = lib.qshm_mmap(ffi.NULL, size, prot, lib.MAP_SHARED, fd, 0)
    if addr == ffi.NULL:
        _raise(name)
    return addr


def munmap(addr: Any, size: int, name: str) -> None:
    if lib.munmap(addr, size) == -1:
        _raise(name)


def close(fd: int) -> None:
    lib.close(fd)


def shm_unlink(name: str) -> bool:
    """``shm_unlink``; False if it was not there."""
    if lib.shm_unlink(_encode(name)) == -1:
        if ffi.errno == errno.ENOENT:
            return False
        _raise(name)
    return True


def shm_exists(name: str) -> bool:
    """Whether a POSIX shared memory object of that name exists (opened read-only, closed)."""
    fd = lib.qshm_shm_open(_encode(name), lib.O_RDONLY | lib.O_CLOEXEC, 0)
    if fd == -1:
        return ffi.errno != errno.ENOENT
    lib.close(fd)
    return True


# --- semaphores ---------------------------------------------------------------------------


class Semaphore:
    """An open named POSIX semaphore.  There is no undo: a holder that dies keeps it taken.

    ``take()`` and ``give()`` are the uncontended fast path (``sem_trywait``/``sem_post``, 0 on
    success); on failure the caller falls back to :meth:`acquire`/:meth:`release`.  They are the
    methods of a ``qshm_compat._fast.PosixLock`` (native/qshm_fast.c), or with ``QSHM_PLAIN=1``
    the cffi functions; ``fast`` is that C object (None on the plain path).
    """

    __slots__ = ("name", "_sem", "take", "give", "fast")

    def __init__(self, name: str, exclusive: bool, initial: int):
        """``sem_open(name, O_CREAT[|O_EXCL], 0600, initial)``, EINTR retried."""
        self._open(name, lib.O_CREAT | (lib.O_EXCL if exclusive else 0), initial)

    def _open(self, name: str, flags: int, initial: int) -> None:
        while True:
            sem = lib.qshm_sem_open(_encode(name), flags, IPC_MODE, max(initial, 0))
            if sem != ffi.NULL:
                break
            if ffi.errno != errno.EINTR:
                _raise(name)
        self.name = name
        self._sem = sem
        if _fast is not None:
            self.fast = _fast.PosixLock(int(ffi.cast("uintptr_t", sem)))
            self.take = self.fast.take
            self.give = self.fast.give
            return
        self.fast = None
        self.take = partial(lib.sem_trywait, sem)
        self.give = partial(lib.sem_post, sem)

    def acquire(self, timeout: Optional[float] = None, into: Any = None) -> bool:
        """``sem_wait`` (EINTR retried); with ``timeout``, ``sem_timedwait``: False when it ran out.

        ``into``: the outcome is recorded there by the call itself (``sysv.recorded``)."""
        sem = self._sem
        if timeout is not None and self.fast is not None:
            return timed_take(self.fast, float(timeout), into, self.name)  # the same wait, in C
        if timeout is None:
            while recorded(into, False, lib.sem_wait, sem) == -1:
                if ffi.errno != errno.EINTR:
                    _raise(self.name)
            return True
        deadline = time.time() + max(timeout, 0.0)
        while True:
            sec = int(deadline)
            if recorded(into, False, lib.qshm_sem_timedwait, sem, sec, int((deadline - sec) * 1e9)) == 0:
                return True
            code = ffi.errno
            if code == errno.ETIMEDOUT:
                return False
            if code != errno.EINTR:
                _raise(self.name)

    def release(self, n: int = 1, into: Any = None) -> None:
        """``sem_post`` n times; if one fails, the earlier posts are taken back (as Qt does).

        ``into``: the outcome of a single post is recorded there by the call itself."""
        for done in range(n):
            if recorded(into if n == 1 else None, True, lib.sem_post, self._sem) == -1:
                code = ffi.errno
                for _ in range(done):
                    while lib.sem_wait(self._sem) == -1 and ffi.errno == errno.EINTR:
                        pass
                raise OSError(code, os.strerror(code), self.name)

    def value(self) -> int:
        out = ffi.new("int *")
        if lib.sem_getvalue(self._sem, out) == -1:
            _raise(self.name)
        return int(out[0])

    def close(self) -> None:
        if self._sem != ffi.NULL:
            if self.fast is not None:
                self.fast.forget()
            lib.sem_close(self._sem)
            self._sem = ffi.NULL


def sem_unlink(name: str) -> bool:
    """``sem_unlink``; False if it was not there."""
    if lib.sem_unlink(_encode(name)) == -1:
        if ffi.errno == errno.ENOENT:
            return False
        _raise(name)
    return True


# --- inspection (``qshm probe`` / ``unlock``): open what exists, never create ----------------


def sem_open_existing(name: str) -> Semaphore:
    """``sem_open(name, 0)``: an existing semaphore only (``FileNotFoundError`` if there is none).

    :class:`Semaphore` itself always passes ``O_CREAT``, as Qt does; a tool that looks at a lock
    must not make one.
    """
    opened = object.__new__(Semaphore)
    opened._open(name, 0, 0)
    return opened


def shm_size(name: str) -> int:
    """The size of an existing shared memory object (opened read-only, ``fstat``, closed)."""
    fd = shm_open(name, open_flags(True), 0)
    try:
        return fstat_size(fd, name)
    finally:
        close(fd)


# --- who has a semaphore open (abandoned-lock recovery, semaphore.py) ----------------------
#
# glibc keeps a named semaphore in the file /dev/shm/sem.<name without its "/">, and every
# process that has it open maps that file (sem_open opens the file, mmaps it and closes the
# descriptor).  A process that holds the semaphore, or could post it, therefore shows the file's
# inode in /proc/<pid>/maps, or for a moment in /proc/<pid>/fd while its sem_open runs.

SEM_DIR = "/dev/shm"
_IN_OPEN = 0x20
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC


def semaphore_file(name: str) -> str:
    """The file glibc keeps the named semaphore ``name`` in."""
    return f"{SEM_DIR}/sem.{name[1:] if name.startswith('/') else name}"


def mapped_file(sem: Semaphore) -> Optional[Tuple[int, int]]:
    """``(st_dev, st_ino)`` of the file this process maps ``sem`` from (None if not found)."""
    address = int(ffi.cast("uintptr_t", sem._sem))
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                span, _, rest = line.partition(" ")
                low, _, high = span.partition("-")
                if int(low, 16) <= address < int(high, 16):
                    fields = rest.split(None, 4)  # perms offset dev inode [path]
                    major, _, minor = fields[2].partition(":")
                    return os.makedev(int(major, 16), int(minor, 16)), int(fields[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def processes() -> Dict[int, str]:
    """Every process /proc shows: pid -> its start time (to tell a reused pid)."""
    found: Dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat_file:
                    found[int(entry)] = stat_file.read().rpartition(b")")[2].split()[19].decode()
            except (OSError, IndexError):
                pass  # gone meanwhile
    return found


def proc_shows_everyone() -> bool:
    """False when /proc hides other users' processes from us (``hidepid``, ``subset``)."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                fields = line.split()
                if len(fields) > 4 and fields[4] == "/proc":
                    for option in line.rpartition(" - ")[2].split()[-1].split(","):
                        name, _, value = option.partition("=")
                        if (name == "hidepid" and value not in ("0", "off")) or name == "subset":
                            return False
    except OSError:
        return False
    return True


def _permitted_caps(pid: Any) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("CapPrm:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _hidden_above_us(pid: int) -> bool:
    """Whether a process we may not look into holds capabilities that we lack.

    The kernel keeps such a process closed even to root (here: the machine's own init, which
    has CAP_SYS_MODULE where we do not).  Such a process is taken as not sharing a Qt lock with
    us; any other process we cannot read is taken as one that might hold it."""
    mine, theirs = _permitted_caps("self"), _permitted_caps(pid)
    return mine is not None and theirs is not None and theirs & ~mine != 0


def file_users(file_id: Tuple[int, int], pids: Any, skip: int) -> Optional[int]:
    """A pid among ``pids`` (``skip`` aside) that maps the file ``file_id`` or has it open; 0 if
    none; None if some process could not be read (it might), see :func:`_hidden_above_us`."""
    dev, ino = file_id
    needle = f" {os.major(dev):02x}:{os.minor(dev):02x} {ino} "
    for pid in pids:
        if pid == skip:
            continue
        try:
            if _uses(pid, file_id, needle):
                return pid
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        except OSError:
            if not _hidden_above_us(pid):
                return None
    return 0


def _uses(pid: int, file_id: Tuple[int, int], needle: str) -> bool:
    # Descriptors first, then mappings: a sem_open in progress has the descriptor before it has
    # the mapping, and closes it only after mapping.
    base = f"/proc/{pid}"
    for fd in os.listdir(f"{base}/fd"):
        try:
            if os.readlink(f"{base}/fd/{fd}").startswith(SEM_DIR + "/"):
                st = os.stat(f"{base}/fd/{fd}")
                if (st.st_dev, st.st_ino) == file_id:
                    return True
        except FileNotFoundError:
            continue  # closed meanwhile
    with open(f"{base}/maps") as maps:
        return needle in maps.read()


class OpenWatch:
    """An inotify watch for ``IN_OPEN`` on one file: did anyone open it since the watch began?

    (ctypes, not cffi: used on the abandoned-lock slow path only.)"""

    def __init__(self, path: str):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if self.fd == -1:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        if libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_OPEN) == -1:
            code = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(code, os.strerror(code), path)

    def opened(self) -> bool:
        try:
            return len(os.read(self.fd, 4096)) > 0
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self.fd)


class FileGuard:
    """An ``flock`` on a file of its own, removed by whoever holds it when it lets go.

    A waiter that locked the file just as its holder removed it finds that the name no longer
    names its file, and tries again on the new one: so one holder at a time, and no file left.
    """

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path

    @classmethod
    def take(cls, path: str, deadline: Optional[float]) -> Optional["FileGuard"]:
        """Wait for the guard until ``deadline`` (``time.monotonic()``; None: for ever)."""
        import fcntl

        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                time.sleep(0.002)
                continue
            except BaseException:
                os.close(fd)
                raise
            try:
                st, now = os.fstat(fd), os.stat(path)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    return cls(fd, path)
            except FileNotFoundError:
                pass
            os.close(fd)  # removed by its last holder: take the new one

    def release(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
