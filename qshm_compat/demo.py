"""``python -m qshm_compat demo``: a two-process round trip under Qt's names and lock.

The parent creates the segment a Qt program would create for the key, writes a message under the
lock and starts a second Python process.  The child attaches, reads under the lock, writes its
answer and detaches.  The parent reads the answer, detaches (the last one out removes the segment
and its key files) and checks that nothing is left.  A Qt program given the same key and the
same ``TMPDIR`` could take either side.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Optional

from . import QSharedMemory

SIZE = 256
TIMEOUT = 10.0


def _read_text(shm: QSharedMemory) -> str:
    data = shm.constData()
    assert data is not None
    return bytes(data).split(b"\0", 1)[0].decode("utf-8")


def _write_text(shm: QSharedMemory, text: str) -> None:
    data = shm.data()
    assert data is not None
    raw = text.encode("utf-8")[: shm.size() - 1] + b"\0"
    data[: len(raw)] = raw


def child(key: Optional[str]) -> int:
    shm = QSharedMemory(key or "")
    if not shm.attach(timeout=TIMEOUT):
        print(f"child: attach failed: {shm.errorString()}", file=sys.stderr)
        return 1
    with shm.locked(timeout=TIMEOUT):
        seen = _read_text(shm)
        _write_text(shm, f"hello back from pid {os.getpid()}")
    print(f"child  (pid {os.getpid()}): attached, {shm.size()} bytes, read {seen!r}")
    shm.close()
    return 0


def run(key: Optional[str]) -> int:
    key = key or f"qshm_compat demo {secrets.token_hex(4)}"
    shm = QSharedMemory(key)
    print(f"key:        {key!r}")
    print(f"native key: {shm.nativeKey()}   (the key file Qt uses; ftok(file, 'Q') names the segment)")
    if not shm.create(SIZE, timeout=TIMEOUT):
        print(f"parent: create failed: {shm.errorString()}", file=sys.stderr)
        return 1
    with shm.locked(timeout=TIMEOUT):
        _write_text(shm, f"hello from pid {os.getpid()}")
    print(f"parent (pid {os.getpid()}): created {shm.size()} bytes, wrote 'hello from pid {os.getpid()}'")
    sys.stdout.flush()
    done = subprocess.run(
        [sys.executable, "-m", "qshm_compat", "demo", "--child", "--key", key], timeout=60
    )
    if done.returncode != 0:
        shm.close()
        return 1
    with shm.locked(timeout=TIMEOUT):
        answer = _read_text(shm)
    print(f"parent (pid {os.getpid()}): read {answer!r}")
    native = shm.nativeKey()
    sem_file = native.replace("qipc_sharedmemory_", "qipc_systemsem_")
    shm.close()
    left = [path for path in (native, sem_file) if os.path.exists(path)]
    if left:
        print(f"left behind: {left}", file=sys.stderr)
        return 1
    print("detached: the segment, its lock semaphore and both key files are gone")
    return 0
