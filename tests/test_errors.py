"""Every QSharedMemory / QSystemSemaphore error code we can provoke, compared with real Qt.

Each scenario is played by qshm_compat and by the Qt peer on the same machine; the error code
must match, and the text must match Qt's text for the Qt version the object targets
(``qt_version`` set from the peer's own ``qVersion()``).
"""

from __future__ import annotations

import errno
import os
import secrets

import pytest

from peers import Peer
from qshm_compat import QSharedMemory, QSystemSemaphore


def ours_for(peer: Peer, key: str = "") -> QSharedMemory:
    return QSharedMemory(key, qt_version=peer.qt)


def assert_same_error(shm: QSharedMemory, answer: dict) -> None:
    assert (int(shm.error()), shm.errorString()) == (answer["error"], answer["errorString"])


def test_empty_key(peer: Peer) -> None:
    """create() with an empty key fails with KeyError, with Qt's text for that Qt version."""
    peer.ok("key", key="")
    answer = peer.request("create", size=8)
    assert not answer["ok"]
    with ours_for(peer) as shm:
        assert not shm.create(8)
        assert shm.error() == QSharedMemory.KeyError
        assert_same_error(shm, answer)


def test_key_too_long_for_the_file_system(peer: Peer) -> None:
    """A key with more letters than NAME_MAX allows fails with KeyError and creates nothing."""
    key = ("abcdefghijklmnopqrstuvwxyz0123456789" * 9)[:300]
    peer.ok("key", key=key)
    answer = peer.request("create", size=8)
    with ours_for(peer, key) as shm:
        assert not shm.create(8)
        assert shm.error() == QSharedMemory.KeyError == answer["error"]
        assert_same_error(shm, answer)


def test_already_exists(peer: Peer, key: str) -> None:
    """create() of an existing segment fails with AlreadyExists and Qt's exact text."""
    peer.ok("key", key=key)
    peer.ok("create", size=8)
    with ours_for(peer, key) as shm:
        assert not shm.create(8)
        assert shm.error() == QSharedMemory.AlreadyExists
        assert shm.errorString() == "QSharedMemory::create: already exists"
    peer.ok("detach")
    # The same failure seen from the Qt side, against our segment.
    with QSharedMemory(key) as shm:
        assert shm.create(8)
        peer_answer = peer.request("create", size=8)
        assert (peer_answer["error"], peer_answer["errorString"]) == (
            int(QSharedMemory.AlreadyExists),
            "QSharedMemory::create: already exists",
        )


def test_not_found(peer: Peer, key: str) -> None:
    """attach() of a missing segment fails with NotFound and Qt's version-specific text."""
    peer.ok("key", key=key)
    answer = peer.request("attach")
    assert not answer["ok"]
    with ours_for(peer, key) as shm:
        assert not shm.attach()
        assert shm.error() == QSharedMemory.NotFound
        assert_same_error(shm, answer)


@pytest.mark.parametrize("size", [0, -1])
def test_invalid_size(peer: Peer, key: str, size: int) -> None:
    """create(0) and create(-1) fail with InvalidSize and Qt's (misspelt) text, creating nothing."""
    peer.ok("key", key=key)
    answer = peer.request("create", size=size)
    with ours_for(peer, key) as shm:
        assert not shm.create(size)
        assert_same_error(shm, answer)
        assert shm.error() == QSharedMemory.InvalidSize
        assert shm.errorString() == "QSharedMemory::create: create size is less then 0"


@pytest.mark.parametrize("name", ["pyqt5", "cpp-qt5", "cpp-qt6"])  # Qt < 6.6: no lock for native keys
def test_lock_without_a_string_key(name: str, peer_pool, tmp_path) -> None:
    """With a native key (Qt 5 meaning), lock() fails with LockError, exactly as Qt 5 does."""
    peer = peer_pool.get(name)
    native = str(tmp_path / "native-key")
    peer.ok("native", native=native)
    answer = peer.request("lock")
    shm = ours_for(peer)
    shm.setNativeKey(native)
    assert not shm.lock()
    assert_same_error(shm, answer)
    assert shm.errorString() == "QSharedMemory::lock: unable to lock"
    shm.close()


def test_out_of_resources(qt66_peer: Peer, key: str) -> None:
    """A segment larger than the system allows fails with OutOfResources, as in Qt 6."""
    size = 1 << 62
    qt66_peer.ok("key", key=key)
    answer = qt66_peer.request("create", size=size)
    with ours_for(qt66_peer, key) as shm:
        assert not shm.create(size)
        assert (int(shm.error()), shm.errorString()) == (answer["error"], answer["errorString"])
        assert shm.error() in (QSharedMemory.OutOfResources, QSharedMemory.InvalidSize)


def test_unlock_without_lock_and_detach_when_detached(peer: Peer, key: str) -> None:
    """unlock() without lock() and detach() when detached return False and change no error."""
    with QSharedMemory(key) as shm:
        assert not shm.unlock()
        assert not shm.detach()
        assert shm.error() == QSharedMemory.NoError
    peer.ok("key", key=key)
    assert not peer.request("unlock")["ok"]
    assert not peer.request("detach")["ok"]


def test_permission_denied_for_another_user(spawn, key: str) -> None:
    """A process of another user gets PermissionDenied on a 0600 segment, from Qt and from us."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a process as another user")
    with QSharedMemory(key) as shm:
        assert shm.create(8)
        # The Qt side: a C++ Qt 5 peer running as nobody.
        other = spawn("cpp-qt5", user=65534)
        other.ok("key", key=key)
        answer = other.request("attach")
        # Our side, in a child process that drops to the same user.
        code, text = _as_other_user(lambda: _attach_error(key))
        assert (code, text) == (answer["error"], answer["errorString"])
        assert code == int(QSharedMemory.PermissionDenied)


def _attach_error(key: str) -> tuple:
    shm = QSharedMemory(key)
    shm.attach()
    return int(shm.error()), shm.errorString()


def _as_other_user(func):
    """Run ``func`` in a forked child running as uid/gid 65534 and return its result."""
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            result = func()
            os.write(write_end, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


def test_semaphore_with_empty_key(peer: Peer) -> None:
    """QSystemSemaphore("") reports nothing until acquire(), which fails with Qt's KeyError text."""
    answer = peer.request("sem_open", key="", initial=0, mode="open")
    with QSystemSemaphore("") as sem:
        assert (int(sem.error()), sem.errorString()) == (answer["error"], answer["errorString"])
        assert sem.error() == QSystemSemaphore.NoError
        answer = peer.request("sem_acquire")
        assert not answer["ok"]
        assert not sem.acquire()
        assert (int(sem.error()), sem.errorString()) == (answer["error"], answer["errorString"])
        assert sem.error() == QSystemSemaphore.KeyError
        assert sem.errorString() == "QSystemSemaphore::handle:: key is empty"
        assert sem.release(0)
        assert not sem.release(-1)


def test_semaphore_counts_across_processes(peer: Peer) -> None:
    """A QSystemSemaphore is shared with the Qt peer: our release() lets its acquire() through."""
    key = f"qshm sem {secrets.token_hex(4)}"
    with QSystemSemaphore(key, 0, QSystemSemaphore.AccessMode.Create) as sem:
        assert sem.error() == QSystemSemaphore.NoError
        peer.ok("sem_open", key=key, initial=0, mode="open")
        peer.send("sem_acquire")
        assert not peer.pending(0.3)
        assert sem.release(1)
        assert peer.reply()["ok"]
        assert not sem.acquire(timeout=0.2)
        assert "timed out" in sem.errorString()
        peer.ok("sem_release", n=2)
        assert sem.acquire(timeout=5) and sem.acquire(timeout=5)
        peer.ok("sem_destroy")


@pytest.mark.parametrize(
    "code, qt, expected",
    [
        (errno.EACCES, (5, 15, 0), (1, "F: permission denied")),
        (errno.EEXIST, (5, 15, 0), (4, "F: already exists")),
        (errno.ENOENT, (5, 15, 0), (5, "F: doesn't exist")),
        (errno.ENOMEM, (5, 15, 0), (7, "F: out of resources")),
        (errno.EMFILE, (6, 8, 0), (7, "F: out of resources")),
        (errno.EFBIG, (5, 15, 0), (8, f"F: unknown error {errno.EFBIG}")),
        (errno.EFBIG, (6, 8, 0), (8, "F: unknown error: File too large")),
    ],
)
def test_errno_table_of_qsharedmemory(code: int, qt: tuple, expected: tuple) -> None:
    """The errno table of Qt 5.15 setErrorString / Qt 6.8 setUnixErrorString (spec 7.1), for the
    codes no peer scenario reaches (UnknownError needs an errno Qt has no code for)."""
    from qshm_compat.errors import shm_error

    error, text = shm_error(code, "F", qt)
    assert (int(error), text) == expected


@pytest.mark.parametrize(
    "code, qt, expected",
    [
        (errno.EPERM, (5, 15, 0), (1, "F: permission denied")),
        (errno.ENOENT, (5, 15, 0), (4, "F: does not exist")),
        (errno.ERANGE, (5, 15, 0), (5, "F: out of resources")),
        (errno.EMFILE, (5, 15, 0), (6, f"F: unknown error {errno.EMFILE}")),
        (errno.EMFILE, (6, 8, 0), (5, "F: out of resources")),
        (errno.ENAMETOOLONG, (5, 15, 0), (6, f"F: unknown error {errno.ENAMETOOLONG}")),
        (errno.ENAMETOOLONG, (6, 8, 0), (2, "F: key too long")),
    ],
)
def test_errno_table_of_qsystemsemaphore(code: int, qt: tuple, expected: tuple) -> None:
    """The errno table of QSystemSemaphore (spec 7.2), where Qt 5.15 and 6.6+ differ."""
    from qshm_compat.errors import sem_error

    error, text = sem_error(code, "F", qt)
    assert (int(error), text) == expected
