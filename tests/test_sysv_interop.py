"""qshm_compat and real Qt programs share System V segments under string keys, both ways.

Every test runs against each of the five real Qt peers (PyQt5, PyQt6, PySide6, C++ Qt 5.15 and
C++ Qt 6.4) and compares what qshm_compat does with what the peer did.
"""

from __future__ import annotations

import os
import stat
import time

import pytest

from peers import Peer, increment_alongside
from qshm_compat import QSharedMemory

LOCK_WAIT = 0.3


def test_native_key_matches_peer(peer: Peer, key: str) -> None:
    """QSharedMemory(key).nativeKey() is the key file path the Qt peer computes for the key."""
    answer = peer.ok("key", key=key)
    assert QSharedMemory(key).nativeKey() == answer["nativeKey"]


def test_python_creates_peer_reads_and_writes(peer: Peer, key: str) -> None:
    """A segment created by qshm_compat is attached, read and written under the lock by Qt."""
    payload = os.urandom(4113)
    with QSharedMemory(key) as shm:
        assert shm.create(len(payload)), shm.errorString()
        with shm.locked(timeout=5):
            shm.data()[:] = payload
        peer.ok("key", key=key)
        attached = peer.ok("attach")
        assert attached["size"] == len(payload)
        peer.ok("lock")
        assert bytes.fromhex(peer.ok("read")["hex"]) == payload
        peer.ok("write", offset=100, hex="c0ffee")
        peer.ok("unlock")
        with shm.locked(timeout=5):
            assert bytes(shm.constData()[99:104]) == payload[99:100] + b"\xc0\xff\xee" + payload[103:104]
        assert peer.ok("detach")["ok"]


def test_peer_creates_python_reads_and_writes(peer: Peer, key: str) -> None:
    """A segment created by the Qt peer is attached, read and written under the lock by us."""
    payload = os.urandom(1000)
    peer.ok("key", key=key)
    assert peer.ok("create", size=len(payload))["size"] == len(payload)
    peer.ok("lock")
    peer.ok("write", hex=payload.hex())
    peer.ok("unlock")
    with QSharedMemory(key) as shm:
        assert shm.attach(timeout=5), shm.errorString()
        assert shm.size() == len(payload)
        with shm.locked(timeout=5):
            assert bytes(shm.data()) == payload
            shm.data()[:4] = b"qshm"
        peer.ok("lock")
        assert bytes.fromhex(peer.ok("read", length=4)["hex"]) == b"qshm"
        peer.ok("unlock")
        assert shm.detach()
    peer.ok("detach")


def test_peer_lock_excludes_python(peer: Peer, key: str) -> None:
    """While the Qt peer holds lock(), our lock(timeout) returns False; after unlock(), True."""
    with QSharedMemory(key) as shm:
        assert shm.create(64)
        peer.ok("key", key=key)
        peer.ok("attach")
        peer.ok("lock")
        started = time.monotonic()
        assert not shm.lock(timeout=LOCK_WAIT)
        assert time.monotonic() - started >= LOCK_WAIT * 0.9
        assert shm.error() == QSharedMemory.LockError
        assert "timed out" in shm.errorString() and shm.key() in shm.errorString()
        with pytest.raises(TimeoutError):
            with shm.locked(timeout=0.05):
                pass
        peer.ok("unlock")
        assert shm.lock(timeout=5)
        assert shm.unlock()
        peer.ok("detach")


def test_python_lock_excludes_peer(peer: Peer, key: str) -> None:
    """While we hold lock(), the Qt peer's lock() blocks, and it returns once we unlock()."""
    with QSharedMemory(key) as shm:
        assert shm.create(64)
        peer.ok("key", key=key)
        peer.ok("attach")
        assert shm.lock()
        peer.send("lock")
        assert not peer.pending(LOCK_WAIT), "the peer got the lock while we held it"
        assert shm.unlock()
        assert peer.reply()["ok"]
        assert not shm.lock(timeout=0.1)
        peer.ok("unlock")
        peer.ok("detach")


def test_attach_waits_for_the_lock_as_qt_does(peer: Peer, key: str) -> None:
    """attach() takes the lock: it waits while the Qt peer holds it, and times out if asked."""
    peer.ok("key", key=key)
    peer.ok("create", size=8)
    peer.ok("lock")
    with QSharedMemory(key) as shm:
        assert not shm.attach(timeout=LOCK_WAIT)
        assert shm.error() == QSharedMemory.LockError
        assert shm.errorString().startswith("QSharedMemory::attach: unable to lock")
        peer.ok("unlock")
        assert shm.attach(timeout=5)
    peer.ok("detach")


def test_read_only_attach(peer: Peer, key: str) -> None:
    """After a ReadOnly attach, data() refuses writes with TypeError and still sees Qt's writes."""
    peer.ok("key", key=key)
    peer.ok("create", size=16)
    with QSharedMemory(key) as shm:
        assert shm.attach(QSharedMemory.AccessMode.ReadOnly)
        view = shm.data()
        assert view.readonly
        with pytest.raises(TypeError):
            view[0] = 1
        peer.ok("write", hex="2a")
        assert view[0] == 0x2A
        del view
    peer.ok("detach")


def _key_file_facts(path: str) -> tuple:
    st = os.stat(path)
    return (stat.S_IMODE(st.st_mode), st.st_size, st.st_uid)


def _sysv_rows(path: str) -> dict:
    """The /proc/sysvipc rows whose key is ftok(path, 'Q'): perms, size/nsems, nattch."""
    from qshm_compat import sysv

    want = sysv.ftok(path)
    rows = {}
    for kind, fields in (("shm", (2, 3, 6)), ("sem", (2, 3))):
        with open(f"/proc/sysvipc/{kind}") as f:
            for line in f.read().splitlines()[1:]:
                cols = line.split()
                if int(cols[0]) == want:
                    rows[kind] = tuple(oct(int(cols[i], 8)) if i == 2 else int(cols[i]) for i in fields)
    return rows


def _objects_while_attached(creator_is_python: bool, peer: Peer, key: str) -> dict:
    """Create with one side, attach with the other, and describe every OS object that exists."""
    shm = QSharedMemory(key)
    peer.ok("key", key=key)
    if creator_is_python:
        assert shm.create(4097)
        peer.ok("attach")
    else:
        peer.ok("create", size=4097)
        assert shm.attach()
    native = shm.nativeKey()
    sem_file = native.replace("qipc_sharedmemory_", "qipc_systemsem_")
    facts = {
        "shm key file": _key_file_facts(native),
        "sem key file": _key_file_facts(sem_file),
        "segment": _sysv_rows(native).get("shm"),
        "lock": _sysv_rows(sem_file).get("sem"),
    }
    shm.close()
    peer.ok("detach")
    names = {native: "shm key file", sem_file: "sem key file"}
    # The peer's QSharedMemory still exists here: Qt keeps (or re-makes) its lock semaphore.
    facts["left while the peer object lives"] = sorted(names[p] for p in names if os.path.exists(p))
    peer.ok("destroy")
    facts["left after both are gone"] = sorted(names[p] for p in names if os.path.exists(p))
    return facts


def test_os_objects_match_a_qt_creator(peer: Peer, key: str, peer_pool) -> None:
    """Creating with qshm_compat leaves the same files, modes, ipcs rows and cleanup as Qt."""
    ours = _objects_while_attached(True, peer, key)
    theirs = _objects_while_attached(False, peer, key + " (2)")
    assert ours == theirs
    assert ours["segment"] == ("0o600", 4097, 2)
    assert ours["lock"] == ("0o600", 1)
    assert ours["left after both are gone"] == []


@pytest.mark.parametrize("name", ["cpp-qt5", "cpp-qt6", "pyqt5"])
def test_mixed_increment_stress_loses_no_update(name: str, peer_pool, key: str) -> None:
    """Qt and qshm_compat each add 1 under the lock 20,000 times at once: the total is exact."""
    count = 20_000
    peer = peer_pool.get(name)
    with QSharedMemory(key) as shm:
        assert shm.create(4)
        peer.ok("key", key=key)
        peer.ok("attach")
        assert increment_alongside(peer, shm, count) == 2 * count
        peer.ok("detach")


def test_stale_segment_after_peer_crash(spawn, key: str) -> None:
    """A Qt 5 creator killed with SIGKILL leaves a segment that we, like Qt 5, attach and clean."""
    crashed = spawn("cpp-qt5")
    crashed.ok("key", key=key)
    crashed.ok("create", size=32)
    crashed.ok("write", hex="deadbeef")
    crashed.kill()
    with QSharedMemory(key) as shm:
        assert not shm.create(32)
        assert shm.error() == QSharedMemory.AlreadyExists
        assert shm.attach(timeout=5)
        assert bytes(shm.constData()[:4]) == bytes.fromhex("deadbeef")
        assert shm.detach()
        assert not os.path.exists(shm.nativeKey())
        assert shm.create(32)


def test_failed_create_keeps_another_process_lock(spawn, key: str) -> None:
    """Our create() that fails with AlreadyExists does not break a lock another process holds."""
    holder = spawn("cpp-qt5")
    other = spawn("pyqt5")
    holder.ok("key", key=key)
    holder.ok("create", size=8)
    shm = QSharedMemory(key)
    assert not shm.create(8, timeout=5)
    assert shm.error() == QSharedMemory.AlreadyExists
    assert shm.errorString() == "QSharedMemory::create: already exists"
    holder.ok("lock")
    # While the lock is held, a second create() answers at once, as Qt does, but without
    # resetting the lock (Qt resets it).
    assert not shm.create(8, timeout=0.2)
    assert shm.error() == QSharedMemory.AlreadyExists
    shm.close()  # Qt's destructor here would remove the lock semaphore the holder is using
    other.ok("key", key=key)
    other.send("attach")  # attach takes the lock: it must wait for the holder
    assert not other.pending(LOCK_WAIT), "the lock was broken by a failed create()"
    holder.ok("unlock")
    assert other.reply()["ok"]
    other.ok("detach")
    holder.ok("detach")
