"""Qt 6.6+ key families against real Qt 6 peers (PyQt6 / Qt 6.11, PySide6 / Qt 6.12).

``QNativeIpcKey(k)``, ``platformSafeKey(k)`` (POSIX by default on Linux), ``platformSafeKey(k,
SystemV)`` and ``legacyNativeKey(k, PosixRealtime)``: segments made by either side are read and
written by the other, under the lock Qt 6.6+ takes for that key.  Qt never unlinks POSIX shared
memory objects, so the keys come from our pytest plugin (``qshm_key``, ``qshm_native_key``),
which removes every object of them after the test.
"""

from __future__ import annotations

import os
import time

import pytest

from peers import Peer, increment_alongside
from qshm_compat import QNativeIpcKey, QSharedMemory, posix

T = QNativeIpcKey.Type
LOCK_WAIT = 0.3

# (mode of the peer's `ipckey` request, the peer's type argument, how we build the same key)
FAMILIES = {
    "QNativeIpcKey(k)": ("native", None, lambda k: QNativeIpcKey(k)),
    "platformSafeKey(k)": ("platformSafe", None, lambda k: QSharedMemory.platformSafeKey(k)),
    "platformSafeKey(k, SystemV)": (
        "platformSafe",
        "systemv",
        lambda k: QSharedMemory.platformSafeKey(k, T.SystemV),
    ),
    "legacyNativeKey(k, PosixRealtime)": (
        "legacy",
        "posix",
        lambda k: QSharedMemory.legacyNativeKey(k, T.PosixRealtime),
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_peer_creates_python_attaches(family: str, qt66_peer: Peer, qshm_key: str) -> None:
    """A segment a Qt 6 peer made with this key family is read and written by qshm_compat."""
    mode, type_, ours = FAMILIES[family]
    key = qshm_key
    ipc_key = ours(key)
    args = {"mode": mode, "key": key} if type_ is None else {"mode": mode, "key": key, "type": type_}
    made = qt66_peer.ok("ipckey", **args)
    assert made["toString"] == ipc_key.toString()
    assert made["nativeKey"] == ipc_key.nativeKey()
    qt66_peer.ok("create", size=333)
    qt66_peer.ok("write", hex="0badc0de")
    with QSharedMemory(ipc_key) as shm:
        assert shm.attach(timeout=5), shm.errorString()
        assert shm.size() == 333
        with shm.locked(timeout=5):
            assert bytes(shm.data()[:4]) == bytes.fromhex("0badc0de")
            shm.data()[4:8] = b"qshm"
        assert bytes.fromhex(qt66_peer.ok("read", offset=4, length=4)["hex"]) == b"qshm"
    qt66_peer.ok("detach")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_python_creates_peer_attaches(family: str, qt66_peer: Peer, qshm_key: str) -> None:
    """A segment qshm_compat made with this key family is read and written by a Qt 6 peer."""
    mode, type_, ours = FAMILIES[family]
    key = qshm_key
    ipc_key = ours(key)
    with QSharedMemory(ipc_key) as shm:
        assert shm.create(4096), shm.errorString()
        shm.data()[:5] = b"hello"
        args = {"mode": mode, "key": key} if type_ is None else {"mode": mode, "key": key, "type": type_}
        qt66_peer.ok("ipckey", **args)
        assert qt66_peer.ok("attach")["size"] == 4096
        qt66_peer.ok("lock")
        assert bytes.fromhex(qt66_peer.ok("read", length=5)["hex"]) == b"hello"
        qt66_peer.ok("write", offset=5, hex="21")
        qt66_peer.ok("unlock")
        with shm.locked(timeout=5):
            assert bytes(shm.constData()[:6]) == b"hello!"
        qt66_peer.ok("detach")


def test_posix_lock_exclusion_both_ways(qt66_peer: Peer, qshm_native_key: QNativeIpcKey) -> None:
    """On a POSIX key, the Qt peer's lock excludes ours and ours excludes the peer's."""
    ipc_key = qshm_native_key
    with QSharedMemory(ipc_key) as shm:
        assert shm.create(8)
        qt66_peer.ok("ipckey", mode="fromString", key=ipc_key.toString())
        qt66_peer.ok("attach")
        qt66_peer.ok("lock")
        assert not shm.lock(timeout=LOCK_WAIT)
        assert "looks abandoned" in shm.errorString()
        qt66_peer.ok("unlock")
        assert shm.lock(timeout=5)
        qt66_peer.send("lock")
        assert not qt66_peer.pending(LOCK_WAIT), "the peer got the lock while we held it"
        assert shm.unlock()
        assert qt66_peer.reply()["ok"]
        qt66_peer.ok("unlock")
        qt66_peer.ok("detach")


def test_posix_mixed_increment_stress(qt66_peer: Peer, qshm_native_key: QNativeIpcKey) -> None:
    """Qt 6 and qshm_compat each add 1 under a POSIX lock 20,000 times at once: none is lost."""
    count = 20_000
    ipc_key = qshm_native_key
    with QSharedMemory(ipc_key) as shm:
        assert shm.create(4)
        qt66_peer.ok("ipckey", mode="native", key=ipc_key.nativeKey())
        qt66_peer.ok("attach")
        assert increment_alongside(qt66_peer, shm, count) == 2 * count
        qt66_peer.ok("detach")


def test_qt6_shared_memory_example_key(qt66_peer: Peer, qshm_key_factory) -> None:
    """The Qt >= 6.6 example's key, QNativeIpcKey("QSharedMemoryExample"), works both ways."""
    ipc_key = QNativeIpcKey("QSharedMemoryExample")
    assert ipc_key.toString() == "posix:QSharedMemoryExample"
    if posix.shm_exists("QSharedMemoryExample"):
        pytest.fail("/dev/shm/QSharedMemoryExample exists already (a Qt example left it): remove it")
    qshm_key_factory("QSharedMemoryExample")  # ours from here on: removed after the test
    qt66_peer.ok("ipckey", mode="native", key="QSharedMemoryExample")
    qt66_peer.ok("create", size=16)
    qt66_peer.ok("write", hex="51")
    with QSharedMemory(ipc_key) as shm:
        assert shm.attach(timeout=5)
        assert shm.constData()[0] == 0x51
    qt66_peer.ok("detach")
    qt66_peer.ok("destroy")
    # Qt left the object behind: creating again fails, as for the Qt example itself.
    assert os.path.exists("/dev/shm/QSharedMemoryExample")
    with QSharedMemory(ipc_key) as shm:
        assert not shm.create(16)
        assert shm.error() == QSharedMemory.AlreadyExists
        assert shm.errorString() == "QSharedMemory::attach (shm_open): already exists"
    posix.shm_unlink("QSharedMemoryExample")
    with QSharedMemory(ipc_key) as shm:
        assert shm.create(16)
        qt66_peer.ok("ipckey", mode="native", key="QSharedMemoryExample")
        qt66_peer.ok("attach")
        qt66_peer.ok("detach")


def test_held_posix_lock_times_out_with_a_clear_error_and_is_recovered_once_abandoned(
    spawn, qshm_native_key: QNativeIpcKey
) -> None:
    """A Qt 6 peer holding a POSIX lock: we time out with a clear error instead of hanging for
    ever; once the peer is killed holding it, we recover the lock (POSIX has no undo)."""
    ipc_key = qshm_native_key
    holder = spawn("pyside6")
    holder.ok("ipckey", mode="native", key=ipc_key.nativeKey())
    holder.ok("create", size=8)
    holder.ok("lock")
    with QSharedMemory(ipc_key) as shm:
        started = time.monotonic()
        assert not shm.attach(timeout=0.5)
        assert time.monotonic() - started < 5
        assert shm.error() == QSharedMemory.LockError
        assert "looks abandoned" in shm.errorString()
        assert ipc_key.nativeKey() in shm.errorString()
    holder.kill()  # POSIX semaphores have no undo: the lock stays taken
    with QSharedMemory(ipc_key) as shm:
        started = time.monotonic()
        assert shm.attach(timeout=5), shm.errorString()
        assert time.monotonic() - started < 2.5


def test_legacy_string_key_in_a_qt6_peer_matches_qt5_names(qt66_peer: Peer, key: str) -> None:
    """A Qt 6 QSharedMemory(QString) uses Qt 5's System V names, so qshm_compat's default works."""
    answer = qt66_peer.ok("key", key=key)
    assert answer["toString"] == QSharedMemory.legacyNativeKey(key).toString()
    qt66_peer.ok("create", size=8)
    with QSharedMemory(key) as shm:
        assert shm.attach(timeout=5)
        assert shm.nativeIpcKey() == QSharedMemory.legacyNativeKey(key)
    qt66_peer.ok("detach")


@pytest.mark.parametrize(
    "text",
    [
        "posix:/qshm_x",
        "systemv:/tmp/qipc_sharedmemory_abc?legacyKey=a%23b",
        "systemv-7:relative",
        "POSIX:%2f%66o%6f",
        "posix:/foo#frag",
        "posix:/foo?x=1",
        "windows:Global\\app",
        "bogus:x",
    ],
)
def test_from_string_matches_qt(qt66_peer: Peer, text: str) -> None:
    """QNativeIpcKey.fromString() agrees with Qt on validity, type, native key and toString()."""
    theirs = qt66_peer.ok("parse", strings=[text])["keys"][0]
    ours = QNativeIpcKey.fromString(text)
    assert (ours.isValid(), int(ours.type()), ours.nativeKey(), ours.toString()) == (
        theirs["valid"],
        theirs["type"],
        theirs["nativeKey"],
        theirs["toString"],
    )
