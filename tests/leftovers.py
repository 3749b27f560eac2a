"""What IPC objects exist on this machine, read from /proc and the file system.

The tests promise to leave nothing behind: no System V segment or semaphore, no Qt key file in a
temp dir and no ``/dev/shm`` object.  :func:`snapshot` lists them so a fixture can compare before
and after each test and remove (and report) whatever the test left.
"""

from __future__ import annotations

import glob
import os
import tempfile
from dataclasses import dataclass
from typing import FrozenSet


@dataclass(frozen=True)
class Snapshot:
    segments: FrozenSet[int]  # shmids
    semaphores: FrozenSet[int]  # semids
    files: FrozenSet[str]  # Qt key files and /dev/shm objects

    def __sub__(self, other: "Snapshot") -> "Snapshot":
        return Snapshot(
            self.segments - other.segments, self.semaphores - other.semaphores, self.files - other.files
        )

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


def _ids(path: str, column: int) -> FrozenSet[int]:
    try:
        with open(path) as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return frozenset()
    return frozenset(int(row.split()[column]) for row in rows if row.strip())


def snapshot(*extra_dirs: str) -> Snapshot:
    dirs = {"/tmp", tempfile.gettempdir(), *extra_dirs}
    files = set()
    for d in dirs:
        files.update(glob.glob(os.path.join(d, "qipc_*")))
    if os.path.isdir("/dev/shm"):
        files.update(os.path.join("/dev/shm", name) for name in os.listdir("/dev/shm"))
    return Snapshot(
        segments=_ids("/proc/sysvipc/shm", 1),
        semaphores=_ids("/proc/sysvipc/sem", 1),
        files=frozenset(files),
    )


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
