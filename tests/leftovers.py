"""What IPC objects the tests made, read from /proc and the file system.

The tests promise to leave nothing behind: no System V segment or semaphore, no Qt key file and
no ``/dev/shm`` object.  :func:`snapshot` lists the objects a test run could have made, so a
fixture can compare before and after each test and remove (and report) whatever the test left.

Only objects this test run can own are listed, so that a developer's other Qt programs (or a
benchmark running at the same time) are never touched: segments whose creator pid, and
semaphores whose last-operation pid, is the test process or one of its peers; key files in the
test run's own ``TMPDIR``; and ``/dev/shm`` objects whose names the tests use.
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass
from typing import AbstractSet, FrozenSet

#: /dev/shm names the tests make (POSIX keys): fresh keys contain "qshm"; plus Qt's example key,
#: and glibc's temporary "sem.XXXXXX" files, which sem_open leaves when killed halfway through.
DEV_SHM_NAMES = re.compile(r"qshm|QSharedMemoryExample|qipc_|^sem\.[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class Snapshot:
    segments: FrozenSet[int]  # shmids
    semaphores: FrozenSet[int]  # semids
    files: FrozenSet[str]  # Qt key files and /dev/shm objects

    def __sub__(self, other: "Snapshot") -> "Snapshot":
        return Snapshot(
            self.segments - other.segments, self.semaphores - other.semaphores, self.files - other.files
        )

    def with_semaphores(self, semids: AbstractSet[int]) -> "Snapshot":
        return Snapshot(self.segments, self.semaphores | semids, self.files)

    def __bool__(self) -> bool:
        return bool(self.segments or self.semaphores or self.files)

    def describe(self) -> str:
        parts = []
        if self.segments:
            parts.append(f"System V segments (shmid) {sorted(self.segments)}")
        if self.semaphores:
            parts.append(f"System V semaphores (semid) {sorted(self.semaphores)}")
        if self.files:
            parts.append(f"files {sorted(self.files)}")
        return "; ".join(parts)


def _rows(path: str) -> list:
    try:
        with open(path) as f:
            return [row.split() for row in f.read().splitlines()[1:] if row.strip()]
    except OSError:
        return []


def _last_semop_pid(semid: int) -> int:
    from qshm_compat import sysv

    try:
        return sysv.Semaphore(semid, f"semid {semid}").last_pid()
    except OSError:
        return -1


def snapshot(pids: AbstractSet[int], temp_dirs: AbstractSet[str]) -> Snapshot:
    """The IPC objects that processes in ``pids`` made, and Qt key files in ``temp_dirs``."""
    # /proc/sysvipc/shm: key shmid perms size cpid lpid nattch ...
    segments = frozenset(int(row[1]) for row in _rows("/proc/sysvipc/shm") if int(row[4]) in pids)
    semaphores = frozenset(
        int(row[1]) for row in _rows("/proc/sysvipc/sem") if _last_semop_pid(int(row[1])) in pids
    )
    files = set()
    for d in temp_dirs:
        files.update(glob.glob(os.path.join(glob.escape(d), "qipc_*")))
    if os.path.isdir("/dev/shm"):
        files.update(os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm") if DEV_SHM_NAMES.search(n))
    return Snapshot(segments, semaphores, frozenset(files))


def semids() -> FrozenSet[int]:
    """Every System V semaphore id on the machine now."""
    return frozenset(int(row[1]) for row in _rows("/proc/sysvipc/sem"))


def unset_semaphores(before: AbstractSet[int], temp_dirs: AbstractSet[str]) -> FrozenSet[int]:
    """Semaphores not in ``before`` that nobody ever set or operated on (count 0, and ``GETPID``
    0: no ``semop`` or ``SETVAL`` ever ran on them), with an ``ftok`` key of a file on the device
    of one of ``temp_dirs``.

    :func:`snapshot` finds semaphores by the pid of their last ``semop``, and these have none:
    a process made them with ``semget`` and neither set nor used them (one that dies between
    the two, or one that made a lock nobody else will find).  A creator shows the same for the
    microseconds before its ``SETVAL``, so they must stay so for 0.2 s to count."""
    from qshm_compat import sysv

    devices = {os.stat(d).st_dev & 0xFF for d in temp_dirs if os.path.isdir(d)}

    def unset() -> FrozenSet[int]:
        found = set()
        for row in _rows("/proc/sysvipc/sem"):
            key, semid = int(row[0]) & 0xFFFFFFFF, int(row[1])
            if semid in before or not key >> 24 or (key >> 16) & 0xFF not in devices:
                continue  # not new, IPC_PRIVATE, or a key file on another device
            try:
                sem = sysv.Semaphore(semid, f"semid {semid}")
                if sem.value() == 0 and sem.last_pid() == 0:
                    found.add(semid)
            except OSError:
                pass
        return frozenset(found)

    first = unset()
    if not first:
        return first
    time.sleep(0.2)
    return first & unset()


def remove(objects: Snapshot) -> None:
    """Remove exactly these objects (by id or exact path)."""
    from qshm_compat import sysv

    for shmid in objects.segments:
        try:
            sysv.shm_remove(shmid, f"shmid {shmid}")
        except OSError:
            pass
    for semid in objects.semaphores:
        try:
            sysv.Semaphore(semid, f"semid {semid}").remove()
        except OSError:
            pass
    for path in objects.files:
        try:
            os.unlink(path)
        except OSError:
            pass
