"""``QSystemSemaphore``, with Qt's names, on System V and POSIX semaphores.

The class keeps Qt's camelCase method names and enum names and values on purpose, so PyQt code
ports by changing one import (as Python's own ``unittest`` keeps its foreign camelCase).
Additions of our own are snake_case or keyword-only: ``acquire(timeout=...)``, ``close()`` and the
context manager.

The protocol follows Qt 5.15.8 / 6.4.2 ``src/corelib/kernel/qsystemsemaphore*.cpp`` and 6.8.2 /
6.11.2 ``src/corelib/ipc/qsystemsemaphore*.cpp`` (spec §4.3, §5.2):

* System V: the key file is created ``O_CREAT|O_EXCL`` 0640, the semaphore is
  ``semget(ftok(file, proj), 1, 0600|IPC_CREAT|IPC_EXCL)`` (else opened, without Qt's
  ``IPC_CREAT``; ``proj`` is ``'Q'``, or the key type from Qt 6.6), a new or ``Create``-mode
  semaphore is set to the initial value, ``acquire``/``release`` are ``semop`` with
  ``SEM_UNDO``, a removed semaphore is made again and the operation retried, and the process
  that created it (or opened it with ``Create``) removes it and its key file when the object goes.
* POSIX: ``sem_open(name, O_CREAT|O_EXCL, 0600, initial)``; on EEXIST ``Create`` unlinks and
  re-makes it and ``Open`` opens it (without Qt's ``O_CREAT``: one unlinked meanwhile is made
  again with ``O_EXCL``); the creator unlinks it when the object goes.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from . import _names, _registry, keys, posix, sysv
from .errors import QtVersion, SemaphoreAccessMode, SystemSemaphoreError, sem_error
from .keys import QNativeIpcKey

TYPE_CHECKING = False
if TYPE_CHECKING:
    from functools import partial
else:  # the C class itself: importing functools costs import time
    from _functools import partial
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple, TypeAlias, Union

    Handle = Union["SysVSemaphoreHandle", "PosixSemaphoreHandle"]

_QSS = "QSystemSemaphore"
#: The Qt version mirrored for an object keyed with the Qt 6.6 API (QNativeIpcKey) when the
#: caller asked for an older one: such a key only exists from Qt 6.6 on.
NATIVE_KEY_QT: QtVersion = (6, 8, 0)
#: How long the owner of a shared memory lock waits, when it goes, to take the lock before it
#: removes it (seconds).  A lock still held after that is left in place for its holder.
OWNER_CLEANUP_WAIT = 1.0
#: A POSIX shared memory lock not had after this many seconds is checked for abandonment (its
#: holder killed inside it), then waited for in rounds of RECOVERY_ROUND seconds, each checking.
RECOVERY_AFTER = 1.0
RECOVERY_ROUND = 0.5
#: A shorter wait (a try, a finalizer's) never looks for abandonment: a look costs milliseconds.
RECOVERY_MIN_TIMEOUT = 0.1
#: False: never recover an abandoned POSIX lock (``QSHM_NO_RECOVERY=1``), as Qt does not.
RECOVERY = not os.environ.get("QSHM_NO_RECOVERY")
#: A lock's recorded state "given back" (see ``sysv.recorded``), for ``deque.extend``.
_GIVEN = (True,)


class SemaphoreFailure(Exception):
    """Internal: a step of the semaphore protocol failed; translated into Qt's error at the edge."""

    def __init__(self, error: SystemSemaphoreError, text: str):
        super().__init__(text)
        self.error = error
        self.text = text

    @classmethod
    def from_oserror(cls, exc: OSError, function: str, qt: QtVersion) -> "SemaphoreFailure":
        return cls(*sem_error(exc.errno or 0, function, qt))


class SysVSemaphoreHandle:
    """One Qt system semaphore on System V: its key file, ``key_t``, id and ownership flags."""

    def __init__(self, file_name: str, initial_value: int, qt: QtVersion, project_id: int, is_lock: bool = False):
        self.file_name = file_name
        self.initial_value = initial_value
        self.qt = qt
        self.project_id = project_id
        self.is_lock = is_lock
        self.legacy = False  # a name derived from a string key (set by make_handle)
        self.unix_key = -1
        self.sem: Optional[sysv.Semaphore] = None
        self.created_file = False
        self.created_semaphore = False
        self.file_id: Optional[Tuple[int, int]] = None  # (st_dev, st_ino) the key came from
        # A shared memory lock refuses a key file or semaphore of another user, as the segment's
        # are refused; QSharedMemory(allow_foreign=True) uses them as Qt does (set by make_handle).
        self.allow_foreign = True
        self.foreign = False  # the semaphore in use belongs to another user (never repaired)

    @property
    def owned(self) -> bool:
        """This object made the semaphore and its key file, as Qt's owner (which removes both
        when it goes, and keeps them until then)."""
        return self.created_semaphore and self.created_file

    def describe(self) -> str:
        if self.unix_key != -1:
            return f"System V semaphore key 0x{self.unix_key & 0xFFFFFFFF:08x}, key file {self.file_name}"
        return f"System V semaphore of key file {self.file_name}"

    def handle(self, mode: SemaphoreAccessMode) -> None:
        """Make sure the semaphore exists and is open (Qt's ``handle(mode)``)."""
        if self.unix_key != -1:
            return
        if not self.file_name:
            raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle:: key is empty")
        if self.legacy and os.path.dirname(self.file_name) == "/":
            raise SemaphoreFailure(
                SystemSemaphoreError.KeyError,
                f"{_QSS}::handle:: unable to make key ($TMPDIR does not exist, and Qt <= 6.9.1 "
                f"would put the key file {self.file_name} in /; refused)",
            )
        self._make_key_file()
        for attempt in range(8):
            try:
                st = os.stat(self.file_name)  # what ftok reads: the file behind any symlink
                self.unix_key = sysv.ftok(self.file_name, self.project_id)
            except OSError as exc:
                self.unix_key = -1
                if exc.errno == errno.ENOENT and attempt < 7 and not os.path.islink(self.file_name):
                    # Removed since we found it, by the last one out removing the lock with its
                    # key file: key again on a file made anew (Qt fails here with "ftok failed").
                    self._make_key_file()
                    continue
                raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle:: ftok failed") from None
            self.file_id = (st.st_dev, st.st_ino)
            # Formatted only if an error needs it; no bound method: the semaphore would keep
            # its handle alive in a reference cycle.
            name = partial(_describe_sysv, self.file_name, self.unix_key)
            try:
                semid = self._semget(name)
                if self.is_lock:
                    # After semget, so that where Qt fails (EACCES) its own error stands.
                    self._check_owners(semid, name())
            except OSError as exc:
                self.clean()
                raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None
            if self._same_file() or attempt == 7:
                break
            # The key file was removed (and maybe re-made) while we keyed on it: its owner is
            # removing the lock.  A semaphore made for the old file would be a second lock that
            # nobody else finds; drop it and key again on the file there now.
            if self.created_semaphore:
                try:
                    sysv.Semaphore(semid, name).remove()
                except OSError:
                    pass
            self.created_semaphore = False
            self._make_key_file()
        self.sem = sysv.Semaphore(semid, name)
        if mode == SemaphoreAccessMode.Create:
            self.created_semaphore = self.created_file = True
        if self.created_semaphore and self.initial_value >= 0:
            try:
                self.sem.set_value(self.initial_value)
            except OSError as exc:
                sem, self.sem, self.unix_key = self.sem, None, -1
                self.created_semaphore = self.created_file = False
                self.remove_file_and(sem)
                raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None

    def _semget(self, name: sysv.Name) -> int:
        """Make the semaphore of ``unix_key`` (then this object owns it, and the key file with
        it, as Qt removes a key file left over from a crash), else open the one there.

        Qt opens with ``semget(IPC_CREAT)`` once ``IPC_EXCL`` said it exists: if the last one out
        removes it in between, that call makes a new one that nobody owns or sets to 1 (by Qt's
        source, an ``attach()`` then waits on it for ever, and nobody removes it).  We open
        without ``IPC_CREAT`` and, if it is gone, make it again with ``IPC_EXCL``: the same
        semaphore either way, and a made one is known to be ours."""
        tries = 8
        while True:
            try:
                semid = sysv.sem_get(self.unix_key, True, name)
                self.created_semaphore = self.created_file = True
                return semid
            except FileExistsError:
                try:
                    return sysv.sem_open(self.unix_key, name)
                except FileNotFoundError:
                    tries -= 1
                    if not tries:
                        raise

    def _make_key_file(self) -> None:
        """Qt's ``createUnixKeyFile``: ``created_file`` says whether this call made it."""
        try:
            self.created_file = sysv.create_key_file(self.file_name)
        except OSError:
            raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle:: unable to make key") from None

    def clean(self, wait: float = OWNER_CLEANUP_WAIT) -> None:
        """Forget the handle; remove the semaphore, and its key file, if this object owns it.

        The key file goes only with its semaphore, first, and only if it is still the very file
        the semaphore was keyed from: a key file removed while its semaphore lives (Qt removes
        it whenever it made the file) is re-made with a new inode, so ``ftok`` gives the next
        process a new key and a second lock; a file someone re-made since is someone else's.
        A file whose semaphore is gone is taken over by the next process that makes one for it.

        Qt removes an owned lock even while another process holds it, and the next locker then
        makes a new one and gets in too.  For a shared memory lock we first take it (waiting up
        to ``wait`` seconds); if another process keeps holding it, we leave the semaphore and
        its key file to the processes still using them (the last detach removes them).
        """
        self.unix_key = -1
        sem, self.sem = self.sem, None
        owned = self.created_semaphore and sem is not None
        self.created_file = self.created_semaphore = False
        if not owned:
            return
        assert sem is not None
        if self.is_lock:
            try:
                if not sem.modify(-1, wait):
                    return  # still held: left to its holders
            except OSError:
                return  # already removed, by whoever removed it, with its file
        self.remove_file_and(sem)

    def _check_owners(self, semid: int, name: str) -> None:
        """A lock's key file that is a symbolic link or another user's, or a semaphore of another
        user, is refused (unless ``allow_foreign``); what this call made for it is removed."""
        uid = os.geteuid()
        owner = uid
        if not self.created_semaphore:
            try:
                owner = sysv.sem_stat(semid, name).uid
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EIDRM):
                    raise
                # Removed meanwhile by its owner: the next semop re-makes it and checks again.
        self.foreign = owner != uid
        if self.allow_foreign:
            return
        try:
            st: Optional[os.stat_result] = os.lstat(self.file_name)
        except OSError:
            st = None  # gone meanwhile: the caller keys again
        if st is not None and stat.S_ISLNK(st.st_mode):
            text = f"key file {self.file_name} is a symbolic link; refused (allow_foreign=True follows it as Qt does)"
        elif st is not None and st.st_uid != uid:
            text = (
                f"key file {self.file_name} belongs to uid {st.st_uid}, not to us; refused "
                "(allow_foreign=True uses it as Qt does)"
            )
        elif self.foreign:
            text = (
                f"semaphore {semid} of key file {self.file_name} belongs to uid "
                f"{owner}, not to us; refused (allow_foreign=True uses it as Qt does)"
            )
        else:
            return
        if self.created_semaphore:
            try:
                sysv.Semaphore(semid, name).remove()
            except OSError:
                pass
        if self.created_file and st is not None and not stat.S_ISLNK(st.st_mode) and st.st_uid == uid:
            sysv.remove_key_file(self.file_name)
        self.unix_key = -1
        self.created_file = self.created_semaphore = False
        raise SemaphoreFailure(SystemSemaphoreError.PermissionDenied, f"{_QSS}::handle: {text}")

    def _same_file(self) -> bool:
        try:
            st = os.stat(self.file_name)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.file_id

    def remove_file_and(self, sem: sysv.Semaphore) -> None:
        """Remove the key file (if still the one ``sem`` was keyed from), then ``sem``."""
        try:
            st = os.lstat(self.file_name)
            if (st.st_dev, st.st_ino) == self.file_id:
                sysv.remove_key_file(self.file_name)
        except OSError:
            pass
        try:
            sem.remove()
        except OSError:
            pass  # already gone: another owner removed it

    def modify(self, count: int, timeout: Optional[float], into: Any = None) -> bool:
        """``semop`` by ``count`` with ``SEM_UNDO``; False only when ``timeout`` ran out.

        ``into``: a lock's state, recorded by the ``semop`` itself (``sysv.recorded``)."""
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        try:
            return self.sem.modify(count, timeout, into)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                # Removed under us (its owner went away): make it again and retry, as Qt does.
                # Nothing of it is ours to remove any more: its remover took its key file with
                # it, and a key file there now is the one the others use (Qt unlinks it here).
                self.sem = None
                self.unix_key = -1
                self.created_file = self.created_semaphore = False
                if count > 0 and self.is_lock:
                    # The lock we held went with it: there is nothing to give back (Qt makes
                    # a new one and gives it a second count, and two processes get in).
                    if into is not None:
                        into.extend(_GIVEN)
                    return True
                self.handle(SemaphoreAccessMode.Open)
                return self.modify(count, timeout, into)
            raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::modifySemaphore", self.qt) from None

    def value(self) -> int:
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        return self.sem.value()

    def repair(self) -> None:
        """Give a lock its count of 1 back when no holder can be relying on it.

        Qt resets the count to 1 in every ``create()`` "in case it survived a crash", even under a
        live holder.  With ``SEM_UNDO`` a crash cannot leave the lock taken, so only two states
        need it: a count above 1 (no exclusion left), and a count of 0 on a semaphore nobody ever
        operated on (``sem_otime`` 0: its creator died between ``semget`` and ``SETVAL``).
        A count of 0 after a ``semop`` means a live holder, and is left alone.
        """
        sem = self.sem
        try:
            if sem is None or self.foreign:
                return  # never set another user's count, even with allow_foreign=True
            value = sem.value()
            if value > 1:
                sem.set_value(1)
                return
            # A count of 0 that no semop ever touched is also what a live creator shows
            # between its semget and its SETVAL: resetting it then would let two processes
            # in (ours, then the creator's SETVAL).  So it must be so for over a second
            # (sem_ctime counts whole seconds) before we give the 1 back.
            deadline = time.monotonic() + 2.5
            while value == 0 and sem.last_op_time() == 0:
                if time.time() - sem.change_time() >= 2:
                    sem.set_value(1)
                    return
                if time.monotonic() > deadline:
                    return
                time.sleep(0.005)
                value = sem.value()
        except OSError:
            pass  # removed meanwhile: the next operation re-makes it


class PosixSemaphoreHandle:
    """One Qt system semaphore on POSIX: ``sem_open`` by name, unlinked by its creator."""

    def __init__(self, name: str, initial_value: int, qt: QtVersion, is_lock: bool = False):
        self.file_name = name
        self.initial_value = initial_value
        self.qt = qt
        self.is_lock = is_lock  # a shared memory lock: an abandoned one is recovered
        # A shared memory lock refuses another user's semaphore (set by make_handle).
        self.allow_foreign = True
        self.sem: Optional[posix.Semaphore] = None
        self.created_semaphore = False

    def describe(self) -> str:
        return f"POSIX semaphore {self.file_name}"

    def handle(self, mode: SemaphoreAccessMode) -> None:
        if self.sem is not None:
            return
        if not self.file_name:
            raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle: key is empty")
        exclusive = True
        tries, max_tries = 0, 1
        while tries < max_tries:
            tries += 1
            try:
                if exclusive:
                    self.sem = posix.Semaphore(self.file_name, True, self.initial_value)
                else:
                    self.sem = posix.sem_open_existing(self.file_name)
                break
            except FileExistsError:
                if not self.allow_foreign:
                    self._check_owner()
                if mode == SemaphoreAccessMode.Create:
                    # Qt replaces it: processes that still hold the old one keep using the old one.
                    try:
                        posix.sem_unlink(self.file_name)
                    except OSError as exc:
                        raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle (sem_unlink)", self.qt) from None
                    max_tries = 3
                else:
                    exclusive = False
                    max_tries = tries + 1
            except FileNotFoundError as exc:
                if exclusive or tries >= 8:
                    raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None
                # Unlinked since O_EXCL found it.  Qt opens with O_CREAT here, which makes a new
                # one that it does not know it made, and so never unlinks: make it, as ours.
                exclusive = True
                max_tries = tries + 1
            except OSError as exc:
                raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None
        if self.sem is None:
            raise SemaphoreFailure.from_oserror(
                OSError(errno.EEXIST, "exists"), f"{_QSS}::handle", self.qt
            )
        self.created_semaphore = exclusive
        if not exclusive and not self.allow_foreign:
            try:
                self._check_owner()  # again: the one opened may have been made since the first look
            except SemaphoreFailure:
                sem, self.sem = self.sem, None
                sem.close()
                raise

    def _check_owner(self) -> None:
        """A lock semaphore of another user is refused (unless ``allow_foreign``), as the System V
        lock's key file and semaphore are: Qt uses (or, in create(), replaces) whatever is there."""
        path = posix.semaphore_file(self.file_name)
        try:
            st = os.lstat(path)
        except OSError:
            return  # gone meanwhile (or not glibc's layout): nothing to refuse
        uid = os.geteuid()
        if stat.S_ISLNK(st.st_mode):
            text = f"POSIX semaphore {self.file_name} ({path}) is a symbolic link"
        elif st.st_uid != uid:
            text = f"POSIX semaphore {self.file_name} ({path}) belongs to uid {st.st_uid}, not to us"
        else:
            return
        raise SemaphoreFailure(
            SystemSemaphoreError.PermissionDenied, f"{_QSS}::handle: {text}; refused (allow_foreign=True uses it as Qt does)"
        )

    def clean(self) -> None:
        if self.sem is not None:
            self.sem.close()
            self.sem = None
        if self.created_semaphore:
            try:
                posix.sem_unlink(self.file_name)
            except OSError:
                pass
            self.created_semaphore = False

    def modify(self, count: int, timeout: Optional[float], into: Any = None) -> bool:
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        if count > 0:
            try:
                self.sem.release(count, into)
            except OSError as exc:
                raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::modifySemaphore (sem_post)", self.qt) from None
            return True
        if not self.is_lock or not RECOVERY or (timeout is not None and timeout < RECOVERY_MIN_TIMEOUT):
            return self._acquire(timeout, into)
        # A shared memory lock: wait as usual for RECOVERY_AFTER seconds, then in rounds that
        # look for an abandoned lock (see _recover_abandoned) between waits.
        start = time.monotonic()
        if self._acquire(RECOVERY_AFTER if timeout is None else min(timeout, RECOVERY_AFTER), into):
            return True
        deadline = None if timeout is None else start + max(timeout, 0.0)
        while True:
            if self._slow_round(deadline, into):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _acquire(self, timeout: Optional[float], into: Any) -> bool:
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        try:
            return self.sem.acquire(timeout, into)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                self.sem = None
                return self._acquire(timeout, into)
            raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::modifySemaphore (sem_wait)", self.qt) from None

    def _slow_round(self, deadline: Optional[float], into: Any) -> bool:
        """One round of the slow path: wait unmapped for the key's recovery guard, then, holding
        it, re-open the lock by name, look for abandonment, and wait mapped for a while.

        Waiting for the guard with the semaphore closed is what lets several qshm waiters
        recover together: the one holding the guard sees no other qshm waiter mapping the
        semaphore.  Processes still in their first RECOVERY_AFTER seconds, and Qt's waiters
        (blocked in sem_wait), map it: while any of them is there nothing is recovered.
        """
        sem = self.sem
        assert sem is not None
        owned = self.created_semaphore
        file_id = posix.mapped_file(sem)
        self.sem = None
        sem.close()  # this process's mapping goes with the last close (glibc counts opens)
        try:
            guard = posix.FileGuard.take(_guard_file(self.file_name), deadline)
        except OSError:
            guard = None  # another user's guard, or no /dev/shm: wait without recovering
        try:
            self.handle(SemaphoreAccessMode.Open)  # whatever semaphore the name has now
            assert self.sem is not None
            if owned and not self.created_semaphore and posix.mapped_file(self.sem) == file_id:
                self.created_semaphore = True  # the same one: still ours to unlink
            if guard is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return self._acquire(0.0, into)
                return self._acquire(RECOVERY_ROUND, into)
            if self._acquire(0.0, into):
                return True
            try:
                self._recover_abandoned()
            except OSError:
                pass  # a look that failed recovers nothing
            wait = RECOVERY_ROUND if deadline is None else min(RECOVERY_ROUND, deadline - time.monotonic())
            return self._acquire(max(wait, 0.0), into)
        finally:
            if guard is not None:
                guard.release()

    def _recover_abandoned(self) -> bool:
        """Give an abandoned lock its count back (one ``sem_post``); True if it did.

        POSIX semaphores have no undo and no owner, so a holder killed inside the lock leaves it
        taken for ever; Qt's create() replaces the semaphore (breaking the lock of a live
        holder).  We post only when nobody can be holding it:

        1. An inotify watch for opens of the semaphore's file is set, and the file the name
           leads to is checked to be the one we map.
        2. Its count is 0 (v1).  No other object of this process has it open.
        3. No other process maps that file or has it open (/proc/<pid>/fd, then
           /proc/<pid>/maps; a process we cannot read counts as a user).  Anyone who holds it
           took it with the file mapped, and keeps it mapped until it posts.
        4. The count is still 0 (v2); processes started since step 3 (new pids, or reused
           ones with another start time) are looked at too; the watch saw no open; and still
           no other object of this process has it open.

        Why that is enough: take the first post after v1 by anyone else.  Its poster held the
        lock at v1 (nothing can be taken while the count stays 0), so it mapped the file from
        before v1 until its post; step 3 saw it unless it posted and unmapped before we
        looked at it.  Whoever took that count then (the count is 0 again at v2) mapped the
        file when it took it; step 3 missed it only if it opened the file after we looked at
        it (an open the watch reports, or a fork since step 3's list of processes, looked at
        in step 4).  So if every check passes, no process holds the lock, and none can take
        it before our post, which it needs.  Two recoverers cannot both post: the guard lets
        one look at a time, and each sees the other's open or mapping.
        What is not covered: processes in another pid namespace sharing /dev/shm, and a
        process that posts a lock it never took.
        """
        sem = self.sem
        if sem is None or not posix.proc_shows_everyone():
            return False
        file_id = posix.mapped_file(sem)
        path = posix.semaphore_file(self.file_name)
        if file_id is None or _file_id(path) != file_id:
            return False
        watch = posix.OpenWatch(path)
        try:
            if _file_id(path) != file_id or sem.value() != 0 or self._others_here():
                return False
            me = os.getpid()
            seen = posix.processes()
            if posix.file_users(file_id, seen, me) != 0 or sem.value() != 0:
                return False
            now = posix.processes()
            new = [pid for pid, started in now.items() if seen.get(pid) != started]
            if posix.file_users(file_id, new, me) != 0 or watch.opened() or self._others_here():
                return False
            sem.release(1)
            return True
        finally:
            watch.close()

    def _others_here(self) -> bool:
        """Whether another object of this process has this semaphore open (it may hold it)."""
        for obj in list(_registry._live):
            handle = getattr(getattr(obj, "_sem", obj), "_handle", None)
            if (
                handle is not self
                and isinstance(handle, PosixSemaphoreHandle)
                and handle.sem is not None
                and handle.file_name == self.file_name
            ):
                return True
        return False

    def value(self) -> int:
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        return self.sem.value()

    def repair(self) -> None:
        pass  # POSIX counts are never reset behind a holder's back (see QSharedMemory.create)


def _file_id(path: str) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _guard_file(name: str) -> str:
    """The file whose flock lets one process at a time look for abandonment of lock ``name``."""
    import hashlib

    return f"{posix.SEM_DIR}/.qshm-recover-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:20]}"


def _describe_sysv(file_name: str, unix_key: int) -> str:
    return f"System V semaphore key 0x{unix_key & 0xFFFFFFFF:08x}, key file {file_name}"


def make_handle(
    key: QNativeIpcKey, initial_value: int, qt: QtVersion, is_lock: bool = False, allow_foreign: bool = True
) -> Handle:
    """The backend for a semaphore key of any supported type (``is_lock``: a shared memory lock,
    whose key file and semaphore must be ours unless ``allow_foreign``)."""
    if key.type() == QNativeIpcKey.Type.PosixRealtime:
        posix_handle = PosixSemaphoreHandle(key.nativeKey(), initial_value, qt, is_lock)
        posix_handle.allow_foreign = allow_foreign or not is_lock
        return posix_handle
    # Qt < 6.6 always used ftok(file, 'Q'); from 6.6 the project id is the key type.
    project_id = 0x51 if qt < (6, 6, 0) else int(key.type())
    handle = SysVSemaphoreHandle(key.nativeKey(), initial_value, qt, project_id, is_lock)
    handle.allow_foreign = allow_foreign or not is_lock
    handle.legacy = bool(key.legacyKey())
    return handle


class QSystemSemaphore:
    """``QSystemSemaphore``: a counting semaphore shared between processes, under Qt's names.

    ``QSystemSemaphore(key, initialValue=0, mode=AccessMode.Open)`` opens (or creates) the same
    OS semaphore a Qt program does for ``key`` (a string, or a ``QNativeIpcKey`` as in Qt 6.6).
    ``acquire(timeout=None)`` and ``release(n=1)`` return False on failure, with ``error()`` and
    ``errorString()`` as Qt gives them; ``acquire`` also returns False when a ``timeout``
    (seconds) runs out.
    """

    AccessMode: TypeAlias = SemaphoreAccessMode
    SystemSemaphoreError: TypeAlias = SystemSemaphoreError
    Open = SemaphoreAccessMode.Open
    Create = SemaphoreAccessMode.Create
    NoError = SystemSemaphoreError.NoError
    PermissionDenied = SystemSemaphoreError.PermissionDenied
    KeyError = SystemSemaphoreError.KeyError
    AlreadyExists = SystemSemaphoreError.AlreadyExists
    NotFound = SystemSemaphoreError.NotFound
    OutOfResources = SystemSemaphoreError.OutOfResources
    UnknownError = SystemSemaphoreError.UnknownError

    _close_order = 2

    def __init__(
        self,
        key: Union[str, QNativeIpcKey, None] = "",
        initialValue: int = 0,
        mode: Union[SemaphoreAccessMode, int] = SemaphoreAccessMode.Open,
        *,
        qt_version: Union[str, Tuple[int, ...], None] = None,
    ):
        self._qt = keys.parse_qt_version(qt_version)
        self._legacy_key: Optional[str] = None
        # Qt 6.6+ starts from an empty key of the given key's type, so QSystemSemaphore(key) with
        # an empty key of any type is a no-op in Open mode, without an error (tst_qsystemsemaphore
        # nativeKey()); a string key is a legacy key, System V on Linux.
        empty_type = key.type() if isinstance(key, QNativeIpcKey) else QNativeIpcKey.legacyDefaultTypeForOs()
        self._ipc_key = QNativeIpcKey("", empty_type)
        self._handle: Optional[Handle] = None
        self._error = SystemSemaphoreError.NoError
        self._error_string = ""
        self._timed_out = False
        self._is_lock = False  # set by QSharedMemory on the semaphore it locks with
        self._allow_foreign = False  # set by QSharedMemory: its allow_foreign, for the lock
        self._key_context: Optional[keys.KeyContext] = None
        _registry.register(self)
        if isinstance(key, QNativeIpcKey):
            self.setNativeKey(key, initialValue, mode)
        else:
            self.setKey(key, initialValue, mode)

    # -- keys -------------------------------------------------------------------------------

    @staticmethod
    def platformSafeKey(key: str, type: Optional[int] = None) -> QNativeIpcKey:
        """``QSystemSemaphore::platformSafeKey`` (Qt 6.6)."""
        return keys.make_platform_safe_key(key, "sem", type)

    @staticmethod
    def legacyNativeKey(key: str, type: Optional[int] = None) -> QNativeIpcKey:
        """``QSystemSemaphore::legacyNativeKey`` (Qt 6.6)."""
        return keys.make_legacy_native_key(key, "sem", type)

    @staticmethod
    def isKeyTypeSupported(type: int) -> bool:
        """``QSystemSemaphore::isKeyTypeSupported`` (Qt 6.6)."""
        return keys.is_key_type_supported(type)

    def setKey(
        self,
        key: Optional[str],
        initialValue: int = 0,
        mode: Union[SemaphoreAccessMode, int] = SemaphoreAccessMode.Open,
    ) -> None:
        """``QSystemSemaphore::setKey``: forget the old semaphore (removing it if this object owns
        it) and open or create the one Qt names for ``key``."""
        key = _check_key(key)
        if type(mode) is not SemaphoreAccessMode:
            mode = SemaphoreAccessMode(mode)
        if self._qt >= (6, 6, 0):
            self._set_native(_names.legacy_native_key(key or "", "sem", self._ctx()), initialValue, mode)
            self._legacy_key = key
            return
        # Qt <= 6.5 compares the user key, and keeps a System V shortcut for Create mode.
        if key == self._legacy_key and mode == SemaphoreAccessMode.Open:
            return
        self._clear_error()
        handle = self._handle
        if (
            key == self._legacy_key
            and isinstance(handle, SysVSemaphoreHandle)
            and handle.created_semaphore
            and handle.created_file
        ):
            handle.initial_value = initialValue
            handle.unix_key = -1
            self._run_handle(mode)
            return
        self._clean()
        self._legacy_key = key
        if key is None:
            self._ipc_key = QNativeIpcKey("", self._ctx_legacy_type())
            self._handle = None
            return
        self._ipc_key = _names.legacy_native_key(key, "sem", self._ctx())
        self._handle = make_handle(self._ipc_key, initialValue, self._qt, self._is_lock, self._allow_foreign)
        self._run_handle(mode)

    def setNativeKey(
        self,
        key: Union[QNativeIpcKey, str],
        initialValue: int = 0,
        mode: Union[SemaphoreAccessMode, int] = SemaphoreAccessMode.Open,
        type: Optional[int] = None,
    ) -> None:
        """``QSystemSemaphore::setNativeKey`` (Qt 6.6): a ``QNativeIpcKey``, or a native key
        string of ``type`` (default ``legacyDefaultTypeForOs()``)."""
        if isinstance(key, str):
            key = QNativeIpcKey(key, QNativeIpcKey.legacyDefaultTypeForOs() if type is None else type)
        elif not isinstance(key, QNativeIpcKey):
            raise TypeError(f"a native key is a QNativeIpcKey or a str, not {key.__class__.__name__}")
        self._qt = max(self._qt, NATIVE_KEY_QT)
        self._set_native(key, initialValue, SemaphoreAccessMode(mode))
        self._legacy_key = None

    def nativeIpcKey(self) -> QNativeIpcKey:
        """``QSystemSemaphore::nativeIpcKey`` (Qt 6.6)."""
        return _copy_key(self._ipc_key)

    def key(self) -> str:
        """``QSystemSemaphore::key``: the legacy key given to setKey()."""
        return self._legacy_key or ""

    # -- Qt's operations --------------------------------------------------------------------

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """``QSystemSemaphore::acquire``; with ``timeout`` (seconds), False once it runs out."""
        return self._modify(-1, timeout)

    def release(self, n: int = 1) -> bool:
        """``QSystemSemaphore::release(n)``."""
        if not isinstance(n, int):
            raise TypeError(f"release() takes an int, not {type(n).__name__}")
        if n == 0:
            return True
        if n < 0:
            return False  # Qt warns "QSystemSemaphore::release: n is negative." and fails
        return self._modify(n, None)

    def error(self) -> SystemSemaphoreError:
        """``QSystemSemaphore::error``."""
        return self._error

    def errorString(self) -> str:
        """``QSystemSemaphore::errorString``."""
        return self._error_string

    # -- Python additions -------------------------------------------------------------------

    def close(self, *, timeout: Optional[float] = None) -> None:
        """What Qt's destructor does: remove the semaphore (and key file) if this object owns it.

        ``timeout`` bounds the wait of a shared memory lock's owner, which takes its lock before
        removing it (at most ``OWNER_CLEANUP_WAIT``, 1 s; 0 from a finalizer: never waits)."""
        self._clean(OWNER_CLEANUP_WAIT if timeout is None else min(max(timeout, 0.0), OWNER_CLEANUP_WAIT))
        self._handle = None
        self._legacy_key = None
        _registry.unregister(self)

    def __enter__(self) -> "QSystemSemaphore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._clean(0.0)  # a finalizer never waits
        except Exception:
            pass

    def _disown(self) -> None:
        """In a forked child: what this object created belongs to the parent."""
        handle = self._handle
        if handle is not None:
            handle.created_semaphore = False
            if isinstance(handle, SysVSemaphoreHandle):
                handle.created_file = False

    def __repr__(self) -> str:
        where = self._handle.describe() if self._handle else "no key"
        return f"<QSystemSemaphore key={self.key()!r} {where}>"

    # -- internals (also used by QSharedMemory for its lock) ---------------------------------

    def _ctx_legacy_type(self) -> int:
        return QNativeIpcKey.legacyDefaultTypeForOs(self._ctx())

    def _ctx(self) -> keys.KeyContext:
        """The key context of the Qt version this object mirrors (made once per version)."""
        ctx = self._key_context
        if ctx is None or ctx.qt_version != self._qt:
            ctx = self._key_context = keys.KeyContext(qt_version=self._qt)
        return ctx

    def _set_native(self, key: QNativeIpcKey, initial_value: int, mode: SemaphoreAccessMode) -> None:
        """Qt 6.6's ``setNativeKey(QNativeIpcKey, initialValue, mode)``."""
        if key == self._ipc_key and mode == SemaphoreAccessMode.Open:
            return
        if not keys.is_key_type_supported(key.type()):
            self._error = SystemSemaphoreError.KeyError
            self._error_string = f"{_QSS}::setNativeKey: unsupported key type"
            return
        self._clear_error()
        self._clean()
        self._ipc_key = _copy_key(key)
        self._handle = make_handle(self._ipc_key, initial_value, self._qt, self._is_lock, self._allow_foreign)
        self._run_handle(mode)

    def _clear_error(self) -> None:
        self._error = SystemSemaphoreError.NoError
        self._error_string = ""

    def _set_failure(self, failure: SemaphoreFailure) -> None:
        self._error = failure.error
        self._error_string = failure.text

    def _clean(self, wait: float = OWNER_CLEANUP_WAIT) -> None:
        handle = self._handle
        if isinstance(handle, SysVSemaphoreHandle):
            handle.clean(wait)
        elif handle is not None:
            handle.clean()

    def _run_handle(self, mode: SemaphoreAccessMode) -> bool:
        assert self._handle is not None
        try:
            self._handle.handle(mode)
        except SemaphoreFailure as failure:
            self._set_failure(failure)
            return False
        return True

    def _fast_semaphore(self) -> Any:
        """The backend semaphore in use now (``take``/``give``), for a lock's fast path."""
        return self._handle.sem if self._handle is not None else None

    def _modify(self, count: int, timeout: Optional[float], into: Any = None) -> bool:
        timeout = wait_timeout(timeout)
        handle = self._handle
        self._timed_out = False
        if handle is None:
            self._error = SystemSemaphoreError.KeyError
            self._error_string = f"{_QSS}::handle:: key is empty"
            return False
        try:
            done = handle.modify(count, timeout, into)
        except SemaphoreFailure as failure:
            self._set_failure(failure)
            return False
        if not done:
            self._timed_out = True
            self._error = SystemSemaphoreError.UnknownError
            self._error_string = (
                f"{_QSS}::acquire: timed out after {timeout:g} s waiting for key "
                f"{self._describe_key()} ({handle.describe()})"
            )
            return False
        self._clear_error()
        return True

    def _describe_key(self) -> str:
        if self._legacy_key:
            return repr(self._legacy_key)
        return repr(self._ipc_key.toString())


def wait_timeout(timeout: object) -> Optional[float]:
    """A lock wait's ``timeout`` checked: None (wait as Qt does; so is an infinite one), or a
    number of seconds (one at most 0 tries once).  Anything else raises, before any waiting: a
    ``TypeError`` for what is not a number, a ``ValueError`` for NaN."""
    if timeout is None:
        return None
    if not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    seconds = float(timeout)  # OverflowError for an int beyond any float
    if seconds != seconds:
        raise ValueError("timeout must be a number of seconds or None, not NaN")
    return None if seconds == float("inf") else seconds


def _copy_key(key: QNativeIpcKey) -> QNativeIpcKey:
    copy = QNativeIpcKey(key.nativeKey(), key.type())
    copy.legacy_key = key.legacyKey()
    return copy


def _check_key(key: Optional[str]) -> Optional[str]:
    if key is None:
        return None
    if not isinstance(key, str):
        raise TypeError(f"a key is a str, not {type(key).__name__}")
    # Qt treats "" like a null key: it maps to an empty native key.
    return key or None
