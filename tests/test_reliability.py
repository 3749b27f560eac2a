"""Reliability: crashes, contention, hostile input, other users, signals and exhausted resources.

Each scenario runs against real Qt peers (and qshm_compat in processes of its own,
``tests/qshm_peer.py``), counts what was lost (nothing) and checks what is left behind.  The long
variants run with ``QSHM_SOAK_COUNT`` (and ``QSHM_FUZZ_EXAMPLES`` for the codec fuzzer); their
numbers are in the README.
"""

from __future__ import annotations

import gc
import os
import random
import secrets
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

from peers import Peer
from qshm_compat import QNativeIpcKey, QSharedMemory, QSystemSemaphore, posix, sysv

#: Increments per process in the contention test (CI: 20,000; a soak: QSHM_SOAK_COUNT=500000).
SOAK_COUNT = int(os.environ.get("QSHM_SOAK_COUNT", "20000"))
COUNTER = struct.Struct("<I")


def fresh(prefix: str = "qshm rel") -> str:
    return f"{prefix} {secrets.token_hex(5)}"


# --- contention ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, qt_peers",
    [("sysv", ("cpp-qt5", "pyqt5")), ("posix", ("pyqt6", "pyside6"))],
)
def test_four_processes_increment_one_counter(family: str, qt_peers: tuple, spawn) -> None:
    """2 Qt peers and 2 qshm_compat processes add 1 under the lock 20,000 times each: exact."""
    count = SOAK_COUNT
    workers = [spawn(name) for name in qt_peers] + [spawn("qshm"), spawn("qshm")]
    if family == "sysv":
        key = fresh()
        owner = QSharedMemory(key)
        for worker in workers:
            worker.ok("key", key=key)
    else:
        ipc_key = QNativeIpcKey(f"qshm_rel_{secrets.token_hex(5)}")
        owner = QSharedMemory(ipc_key)
        for worker in workers:
            worker.ok("ipckey", mode="native", key=ipc_key.nativeKey())
    try:
        assert owner.create(4), owner.errorString()
        for worker in workers:
            worker.ok("attach")
        start_at = time.time() + 1.0
        for worker in workers:
            worker.send("incr", count=count, start_at=start_at)
        answers = [worker.reply(timeout=600) for worker in workers]
        assert all(a["ok"] and a["done"] == count for a in answers), answers
        # All four loops overlapped in time.
        assert max(a["started"] for a in answers) < min(a["finished"] for a in answers)
        with owner.locked(timeout=5):
            assert COUNTER.unpack_from(owner.constData(), 0)[0] == 4 * count
        for worker in workers:
            worker.ok("detach")
    finally:
        owner.close()
        if family == "posix":
            posix.shm_unlink(ipc_key.nativeKey())


def _resources() -> dict:
    """Open file descriptors, mappings of shared memory (System V or /dev/shm) and all mappings
    of this process."""
    with open("/proc/self/maps") as f:
        lines = f.readlines()
    shared = sum(1 for line in lines if "/SYSV" in line or "/dev/shm/" in line)
    return {"fds": len(os.listdir("/proc/self/fd")), "shared_maps": shared, "maps": len(lines)}


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_thousand_create_attach_detach_cycles_leak_nothing(family: str) -> None:
    """1,000 create/attach/detach cycles leave no descriptor, mapping, segment or file behind."""
    cycles = 1000
    gc.collect()  # placeholders of views earlier tests dropped are unmapped at collection
    before = _resources()
    for i in range(cycles):
        if family == "sysv":
            key: object = fresh()
        else:
            key = QNativeIpcKey(f"qshm_cycle_{os.getpid()}_{i}")
        creator = QSharedMemory(key)
        other = QSharedMemory(key)
        assert creator.create(4096), creator.errorString()
        assert other.attach(), other.errorString()
        view = other.data()
        view[0] = i & 0xFF
        assert creator.constData()[0] == i & 0xFF
        del view
        assert other.detach()
        creator.close()
        other.close()
        if family == "posix":
            posix.shm_unlink(key.nativeKey())  # type: ignore[attr-defined]
    gc.collect()
    after = _resources()
    # Every descriptor and every mapping of shared memory is gone.  The count of all mappings
    # also moves with the interpreter's own heap (an arena of 1 MiB more or less, e.g. for
    # the key-name memo filling up), so it gets a margin; a leak would add one a cycle.
    maps_before, maps_after = before.pop("maps"), after.pop("maps")
    assert after == before
    assert abs(maps_after - maps_before) <= 4, (maps_before, maps_after)


# --- crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("victim, survivor", [("cpp-qt5", "qshm"), ("qshm", "cpp-qt5"), ("pyqt6", "qshm")])
def test_sysv_lock_holder_killed(victim: str, survivor: str, spawn, qshm_key: str) -> None:
    """A process killed while holding a System V lock: SEM_UNDO frees it at once, data intact.

    ``qshm_key`` (our pytest plugin) removes what the dead process leaves, as Qt leaves it.
    """
    key = qshm_key
    dead, alive = spawn(victim), spawn(survivor)
    dead.ok("key", key=key)
    dead.ok("create", size=8)
    dead.ok("write", hex="cafebabe")
    alive.ok("key", key=key)
    alive.ok("attach")
    dead.ok("lock")
    alive.send("lock")
    assert not alive.pending(0.3)
    killed_at = time.monotonic()
    dead.kill()
    assert alive.reply(timeout=10)["ok"]
    recovered = time.monotonic() - killed_at
    assert recovered < 1.0
    assert bytes.fromhex(alive.ok("read", length=4)["hex"]) == bytes.fromhex("cafebabe")
    alive.ok("unlock")
    alive.ok("detach")
    alive.ok("destroy")


def test_posix_lock_holder_killed_qt_hangs_we_recover(spawn, qshm_native_key: QNativeIpcKey) -> None:
    """A POSIX lock holder killed: a Qt 6 peer's attach() hangs; ours, while that Qt waiter
    maps the semaphore, times out and says why, and once it is gone recovers the lock."""
    ipc_key = qshm_native_key  # the plugin unlinks what Qt leaves in /dev/shm
    holder, qt_survivor = spawn("pyside6"), spawn("pyqt6")
    holder.ok("ipckey", mode="native", key=ipc_key.nativeKey())
    holder.ok("create", size=8)
    holder.ok("write", hex="0102")
    holder.ok("lock")
    holder.kill()
    qt_survivor.ok("ipckey", mode="native", key=ipc_key.nativeKey())
    qt_survivor.send("attach")
    assert not qt_survivor.pending(1.0), "Qt got past an abandoned POSIX lock"
    with QSharedMemory(ipc_key) as shm:
        # A live process that maps the semaphore (here a waiter) might hold it: left alone.
        started = time.monotonic()
        assert not shm.attach(timeout=1.5)
        assert time.monotonic() - started < 3.0
        assert "looks abandoned" in shm.errorString()
    qt_survivor.kill()  # it would wait for ever
    with QSharedMemory(ipc_key) as shm:
        started = time.monotonic()
        assert shm.attach(timeout=5), shm.errorString()
        assert time.monotonic() - started < 2.5
        assert bytes(shm.constData()[:2]) == b"\x01\x02"
        assert shm.lock(timeout=1) and shm.unlock()


@pytest.mark.parametrize("creator", ["cpp-qt6", "qshm"])
def test_creator_killed_while_attached(creator: str, spawn, qshm_key: str) -> None:
    """The creator dies while attached: the attached survivor keeps its data, and its detach
    removes the segment and key file as the last one out, as in Qt."""
    key = qshm_key
    dead = spawn(creator)
    dead.ok("key", key=key)
    dead.ok("create", size=16)
    dead.ok("write", hex="00112233")
    with QSharedMemory(key) as shm:
        assert shm.attach(timeout=5)
        dead.kill()
        assert bytes(shm.constData()[:4]) == bytes.fromhex("00112233")
        native = shm.nativeKey()
        assert shm.detach()
        assert not os.path.exists(native)


@pytest.mark.parametrize("stack", ["cpp-qt5", "qshm"])
def test_release_then_exit_is_undone_on_system_v(stack: str, spawn) -> None:
    """A System V release() by a process that exits is taken back (SEM_UNDO), in Qt and in us."""
    key = fresh("qshm relsem")
    with QSystemSemaphore(key, 0, QSystemSemaphore.AccessMode.Create) as sem:
        if stack == "qshm":
            code = (
                "import sys; from qshm_compat import QSystemSemaphore as S; "
                f"s = S({key!r}); assert s.release(1); sys.exit(0)"
            )
            subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        else:
            peer = spawn(stack)
            peer.ok("sem_open", key=key, initial=0, mode="open")
            peer.ok("sem_release", n=1)
            peer.kill()
        assert not sem.acquire(timeout=0.3), "the release of a dead process was kept"


# --- hostile and broken input ---------------------------------------------------------------------

HOSTILE_KEYS = [
    "x" * 10_000,
    "\0\0\0",
    "a\0b",
    "\ud800 lone surrogate",
    "../../../etc/passwd",
    "/",
    "a/b/../c",
    "%s%n%x",
    "\n\r\t",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
def test_hostile_string_keys(key: str) -> None:
    """Odd string keys either work like any key or fail with Qt's error; nothing lands outside
    the temp dir (the key never becomes part of the path: only its letters and SHA-1 do)."""
    tmp = os.environ["TMPDIR"]
    with QSharedMemory(key) as shm:
        native = shm.nativeKey()
        assert os.path.dirname(native) == os.path.realpath(tmp)
        if shm.create(16):
            assert shm.data() is not None
        else:
            assert shm.error() == QSharedMemory.KeyError  # the name is longer than NAME_MAX
    assert not os.path.exists(native)


@pytest.mark.parametrize("name", ["a\0b", "\ud800", "qshm_\ud83d"])
def test_native_keys_the_os_cannot_name(name: str) -> None:
    """A native key with a NUL or an unencodable character is refused with a ValueError naming
    it (Qt hands it to the OS, which cuts the name at the NUL and opens another object)."""
    for key in (QNativeIpcKey(name), QNativeIpcKey(name, QNativeIpcKey.Type.SystemV)):
        with QSharedMemory(key) as shm:
            with pytest.raises(ValueError, match="native key"):
                shm.create(16)


@pytest.mark.parametrize("size", [0, -1, -(2**63)])
def test_sizes_qt_rejects(size: int, key: str) -> None:
    """create() with a size of 0 or less fails with InvalidSize and creates nothing."""
    with QSharedMemory(key) as shm:
        assert not shm.create(size)
        assert shm.error() == QSharedMemory.InvalidSize
        assert not os.path.exists(shm.nativeKey())


def test_sizes_no_segment_can_have(key: str) -> None:
    """A size past what the system allows fails with Qt's error; one past qsizetype is an
    OverflowError at once; a non-integer is a TypeError."""
    with QSharedMemory(key) as shm:
        assert not shm.create(2**62)
        assert shm.error() in (QSharedMemory.InvalidSize, QSharedMemory.OutOfResources)
        with pytest.raises(OverflowError):
            shm.create(2**64)
        with pytest.raises(TypeError):
            shm.create(1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            shm.create(True)


def test_symlinked_key_file_is_refused(key: str, tmp_path) -> None:
    """A key file planted as a symlink is refused (Qt follows it); allow_foreign follows it."""
    target = tmp_path / "victim"
    target.write_text("")
    shm = QSharedMemory(key)
    os.symlink(target, shm.nativeKey())
    try:
        assert not shm.create(16)
        assert shm.error() == QSharedMemory.KeyError
        assert "symbolic link" in shm.errorString() and shm.nativeKey() in shm.errorString()
        assert not shm.attach()
        assert "symbolic link" in shm.errorString()
        shm.close()
        with QSharedMemory(key, allow_foreign=True) as trusting:
            assert trusting.create(16), trusting.errorString()
    finally:
        if os.path.lexists(shm.nativeKey()):
            os.unlink(shm.nativeKey())
    assert target.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_segment_of_another_user_with_open_modes_is_refused(key: str) -> None:
    """A segment another user made (here root, mode 0666) for our key is refused by a non-root
    qshm_compat unless allow_foreign=True; the key file of another user too."""
    with QSharedMemory(key) as planted:
        assert planted.create(16)
        native = planted.nativeKey()
        sem_file = QSystemSemaphore.legacyNativeKey(key).nativeKey()
        os.chmod(native, 0o666)
        os.chmod(sem_file, 0o666)
        shmid = sysv.shm_get(sysv.ftok(native), True, native)
        _chmod_ipc("-m", shmid, 0o666)
        semid = sysv.sem_find(sysv.ftok(sem_file), sem_file)
        _chmod_ipc("-s", semid, 0o666)

        def attach_as_nobody(allow: bool) -> tuple:
            shm = QSharedMemory(key, allow_foreign=allow)
            ok = shm.attach()
            result = (ok, int(shm.error()), shm.errorString())
            shm.close()
            return result

        from test_errors import _as_other_user

        refused = _as_other_user(lambda: attach_as_nobody(False))
        assert refused[0] is False and refused[1] == int(QSharedMemory.PermissionDenied)
        assert "belongs to uid 0" in refused[2]
        accepted = _as_other_user(lambda: attach_as_nobody(True))
        assert accepted[0] is True, accepted


def _chmod_ipc(kind: str, ident: int, mode: int) -> None:
    from qshm_compat._native import ffi, lib

    if kind == "-m":
        ds = ffi.new("struct shmid_ds *")
        assert lib.shmctl(ident, lib.IPC_STAT, ds) == 0
        ds.shm_perm.mode = mode
        assert lib.shmctl(ident, lib.IPC_SET, ds) == 0
    else:
        ds = ffi.new("struct semid_ds *")
        assert lib.qshm_semctl_stat(ident, ds) == 0
        ds.sem_perm.mode = mode
        assert lib.qshm_semctl_set(ident, ds) == 0


def test_missing_tmpdir_puts_nothing_in_root(key: str, tmp_path) -> None:
    """With $TMPDIR missing, Qt <= 6.9.1 would put key files in /: we refuse with KeyError."""
    saved = os.environ["TMPDIR"]
    os.environ["TMPDIR"] = str(tmp_path / "missing")
    try:
        with QSharedMemory(key) as shm:
            assert shm.nativeKey().startswith("/qipc_sharedmemory_")
            assert not shm.create(16)
            assert shm.error() == QSharedMemory.KeyError
            assert "$TMPDIR does not exist" in shm.errorString()
            assert not os.path.exists(shm.nativeKey())
        with QSharedMemory(key, qt_version="6.11") as shm:  # >= 6.9.2 keeps the missing path
            assert not shm.create(16)
            assert shm.error() == QSharedMemory.KeyError
    finally:
        os.environ["TMPDIR"] = saved
    assert not any(name.startswith("qipc_") for name in os.listdir("/"))


def test_unwritable_tmpdir(key: str, tmp_path) -> None:
    """An unwritable $TMPDIR gives Qt's KeyError, not a crash (checked as another user)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    from test_errors import _as_other_user

    locked_dir = tmp_path / "ro"
    locked_dir.mkdir(mode=0o555)
    os.chmod(tmp_path, 0o755)

    def create_there() -> tuple:
        os.environ["TMPDIR"] = str(locked_dir)
        shm = QSharedMemory(key)
        ok = shm.create(16)
        return ok, int(shm.error()), shm.errorString()

    ok, code, text = _as_other_user(create_there)
    assert (ok, code) == (False, int(QSharedMemory.KeyError))
    assert "unable to" in text


# --- signals, removal under a waiter, exhausted resources ------------------------------------------


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_signals_while_blocked_in_lock(family: str, spawn) -> None:
    """Signals arriving while lock() waits (EINTR) run their handlers; the wait goes on, then
    succeeds when the holder lets go, and a timeout still ends on time."""
    if family == "sysv":
        key: object = fresh()
        holder = spawn("cpp-qt5")
        holder.ok("key", key=key)
    else:
        key = QNativeIpcKey(f"qshm_rel_{secrets.token_hex(5)}")
        holder = spawn("pyqt6")
        holder.ok("ipckey", mode="native", key=key.nativeKey())  # type: ignore[attr-defined]
    holder.ok("create", size=4)
    handled = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: handled.append(1))
    stop = threading.Event()

    def pester() -> None:
        while not stop.wait(0.02):
            os.kill(os.getpid(), signal.SIGUSR1)

    pesterer = threading.Thread(target=pester)
    try:
        with QSharedMemory(key) as shm:
            assert shm.attach(timeout=5)
            holder.ok("lock")
            pesterer.start()
            started = time.monotonic()
            assert not shm.lock(timeout=0.5)
            assert 0.45 < time.monotonic() - started < 2.0
            threading.Timer(0.5, lambda: holder.send("unlock")).start()
            assert shm.lock()  # no timeout: EINTR is retried until the holder unlocks
            assert handled, "no signal arrived during the wait"
            shm.unlock()
            assert holder.reply()["ok"]
            holder.ok("detach")
    finally:
        stop.set()
        if pesterer.is_alive():
            pesterer.join()
        signal.signal(signal.SIGUSR1, previous)
        if family == "posix":
            posix.shm_unlink(key.nativeKey())  # type: ignore[attr-defined]


def test_lock_semaphore_removed_while_waiting(spawn, key: str) -> None:
    """The lock's owner removes it while we wait (Qt's destructor does): we re-make it and get
    the lock, as Qt does (EIDRM)."""
    with QSharedMemory(key) as shm:
        assert shm.create(4)
        holder = spawn("qshm")
        holder.ok("key", key=key)
        holder.ok("attach")
        holder.ok("lock")
        sem_file = QSystemSemaphore.legacyNativeKey(key).nativeKey()
        semid = sysv.sem_find(sysv.ftok(sem_file), sem_file)
        threading.Timer(0.3, lambda: sysv.Semaphore(semid, sem_file).remove()).start()
        assert shm.lock(timeout=5), shm.errorString()
        assert shm.unlock()
        holder.kill()


def test_out_of_file_descriptors() -> None:
    """With no descriptor left (a low ulimit -n), create() fails with Qt's error, no crash."""
    code = r"""
import json, resource, secrets
from qshm_compat import QSharedMemory, QNativeIpcKey, posix
results = {}
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
import os
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used - 1, hard))  # listdir's own fd is closed
for family in ("sysv", "posix"):
    key = f"qshm emfile {secrets.token_hex(4)}"
    if family == "posix":
        key = QNativeIpcKey("qshm_emfile_" + secrets.token_hex(4))
    shm = QSharedMemory(key)
    ok = shm.create(16)
    results[family] = [ok, int(shm.error()), shm.errorString()]
    shm.close()
    if family == "posix":
        try:
            posix.shm_unlink(key.nativeKey())
        except OSError:
            pass
print(json.dumps(results))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json

    results = json.loads(out.stdout)
    for family, (ok, error, text) in results.items():
        assert ok is False, family
        assert error in (int(QSharedMemory.KeyError), int(QSharedMemory.OutOfResources)), (family, text)
        assert text, family


# --- the same scenario with Qt and with qshm_compat ---------------------------------------------


def test_failed_create_breaks_qt_lock_but_not_ours(spawn, qshm_key_factory) -> None:
    """While a process holds the lock, a second create() of the same key: both answer
    AlreadyExists at once, but Qt's resets the lock and lets a third process in (two holders);
    ours leaves the lock alone."""
    for second in ("pyqt5", "qshm"):
        key = qshm_key_factory()
        holder, creator, third = spawn("cpp-qt5"), spawn(second), spawn("cpp-qt6")
        holder.ok("key", key=key)
        holder.ok("create", size=8)
        holder.ok("lock")
        creator.ok("key", key=key)
        answer = creator.request("create", size=8, lock_timeout=0.3)
        third.ok("key", key=key)
        third.send("attach")  # attach takes the lock
        got_in = third.pending(0.5)
        assert answer["error"] == int(QSharedMemory.AlreadyExists)
        if second == "pyqt5":
            assert got_in, "Qt kept the lock (it did not on any stack observed)"
        else:
            assert not got_in, "qshm_compat's failed create() broke the lock"
        holder.ok("unlock")
        assert third.reply()["ok"]
        for peer in (third, creator, holder):
            peer.close()


def test_forked_child_does_not_take_the_parents_objects(key: str) -> None:
    """A forked child that exits does not remove the lock and key files its parent owns, nor
    release the lock the parent holds (its copies are disowned at fork)."""
    with QSharedMemory(key) as shm:
        assert shm.create(16)
        sem_file = QSystemSemaphore.legacyNativeKey(key).nativeKey()
        assert shm.lock()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child closes what it inherited, as atexit would
            try:
                shm.close(timeout=0.5)  # the parent holds the lock: only unmap
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert os.path.exists(sem_file) and os.path.exists(shm.nativeKey())
        other = QSharedMemory(key)
        assert other.attach(timeout=0.5) is False  # attach takes the lock: the parent still has it
        assert other.error() == QSharedMemory.LockError
        assert shm.unlock()
        assert other.attach(timeout=5)
        other.close()
    assert not os.path.exists(sem_file)


def test_close_at_exit_does_not_hang_on_an_abandoned_lock(qshm_native_key: QNativeIpcKey, spawn) -> None:
    """A process exiting while a POSIX lock is abandoned does not hang in its atexit close."""
    holder = spawn("pyside6")
    holder.ok("ipckey", mode="native", key=qshm_native_key.nativeKey())
    holder.ok("create", size=8)
    code = (
        "import sys\n"
        "from qshm_compat import QNativeIpcKey, QSharedMemory\n"
        f"shm = QSharedMemory(QNativeIpcKey({qshm_native_key.nativeKey()!r}))\n"
        "assert shm.attach(timeout=5), shm.errorString()\n"
        "print('attached', flush=True)\n"
        "sys.stdin.readline()\n"  # the lock is abandoned meanwhile; then exit with it attached
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "attached"
    holder.ok("lock")
    holder.kill()
    started = time.monotonic()
    child.stdin.close()
    assert child.wait(timeout=30) == 0
    assert time.monotonic() - started < 15


def _kill_inside_create(victim: Peer, key_request: dict, rng: random.Random) -> None:
    """Key the victim, send it create(64) and SIGKILL it within the next millisecond."""
    cmd = key_request.pop("cmd")
    victim.ok(cmd, **key_request)
    victim.send("create", size=64)
    time.sleep(rng.uniform(0, 0.001))
    victim.kill()


@pytest.mark.parametrize("victim", ["cpp-qt5", "qshm"])
def test_killed_inside_create(victim: str, spawn, qshm_key_factory) -> None:
    """A creator SIGKILLed at a random moment inside create(), 10 times: the survivor never hangs
    and never crashes; within its timeout it creates or attaches, and reads what it wrote."""
    rng = random.Random(1234)
    for _ in range(10):
        key = qshm_key_factory()  # the plugin removes whatever the dead creator left
        _kill_inside_create(spawn(victim), {"cmd": "key", "key": key}, rng)
        with QSharedMemory(key) as shm:
            started = time.monotonic()
            done = shm.create(64, timeout=2) or shm.attach(timeout=2)
            assert time.monotonic() - started < 5
            assert done, shm.errorString()
            with shm.locked(timeout=2):
                shm.data()[:4] = b"live"
                assert bytes(shm.constData()[:4]) == b"live"


@pytest.mark.parametrize("call", ["create", "attach"])
def test_lock_never_initialized_by_a_dead_creator(call: str, qshm_key: str) -> None:
    """A creator killed between semget() and SETVAL leaves the lock at 0, never used: we give it
    its 1 back (sem_otime is 0, so nobody can hold it) instead of waiting for ever; create()
    then succeeds, and attach() reports NotFound (Qt's attach() waits for ever here)."""
    sem_file = QSystemSemaphore.legacyNativeKey(qshm_key).nativeKey()
    sysv.create_key_file(sem_file)
    semid = sysv.sem_get(sysv.ftok(sem_file), True, sem_file)  # value 0, as semget leaves it
    assert sysv.Semaphore(semid, sem_file).value() == 0
    with QSharedMemory(qshm_key) as shm:
        if call == "create":
            assert shm.create(8, timeout=2), shm.errorString()
            assert shm.lock(timeout=2) and shm.unlock()
        else:
            assert not shm.attach(timeout=2)
            assert shm.error() == QSharedMemory.NotFound, shm.errorString()


@pytest.mark.parametrize("victim", ["pyside6", "qshm"])
def test_killed_inside_create_posix(victim: str, spawn, qshm_native_key_factory) -> None:
    """The same on POSIX keys, where a lock has no undo: the survivor never hangs; it creates or
    attaches, or (the victim died holding the lock) says within its timeout that the lock looks
    abandoned."""
    import glob

    rng = random.Random(4321)
    outcomes = set()
    before = set(glob.glob("/dev/shm/sem.??????"))
    for _ in range(10):
        key = qshm_native_key_factory("posix")
        _kill_inside_create(spawn(victim), {"cmd": "ipckey", "mode": "native", "key": key.nativeKey()}, rng)
        with QSharedMemory(key) as shm:
            started = time.monotonic()
            done = shm.create(64, timeout=1) or shm.attach(timeout=1)
            assert time.monotonic() - started < 5
            if done:
                outcomes.add("works")
                with shm.locked(timeout=1):
                    shm.data()[:4] = b"live"
            else:
                outcomes.add(shm.error().name)
                # UnknownError: the lock was recovered (the victim died holding it) and the
                # object it left has no size yet: Qt's own attach() fails on it the same way.
                assert shm.error() in (
                    QSharedMemory.LockError, QSharedMemory.AlreadyExists, QSharedMemory.UnknownError
                ), shm.errorString()
                if shm.error() == QSharedMemory.LockError:
                    assert "looks abandoned" in shm.errorString()
                if shm.error() == QSharedMemory.UnknownError:
                    assert "attach (mmap)" in shm.errorString(), shm.errorString()
    assert outcomes  # each of the ten ended one way or the other, none hung
    # glibc's sem_open makes a temporary sem.XXXXXX and links it into place: a victim killed
    # between the two leaves that file. It is no semaphore of anyone's: remove what appeared.
    for orphan in set(glob.glob("/dev/shm/sem.??????")) - before:
        os.unlink(orphan)


@pytest.mark.parametrize("creator", ["pyqt6", "qshm"])
def test_creator_killed_while_attached_posix(creator: str, spawn, qshm_native_key: QNativeIpcKey) -> None:
    """A POSIX creator dies while attached: the survivor keeps its data and detaches cleanly;
    the object stays in /dev/shm, as Qt always leaves it (the plugin removes it)."""
    dead = spawn(creator)
    dead.ok("ipckey", mode="native", key=qshm_native_key.nativeKey())
    dead.ok("create", size=16)
    dead.ok("write", hex="a1b2c3d4")
    with QSharedMemory(qshm_native_key) as shm:
        assert shm.attach(timeout=5)
        dead.kill()
        assert bytes(shm.constData()[:4]) == bytes.fromhex("a1b2c3d4")
        assert shm.detach(timeout=5)
    assert posix.shm_exists(qshm_native_key.nativeKey())


def test_a_timed_out_lock_leaves_no_error_behind(spawn, key: str) -> None:
    """After lock(timeout) ran out, the next detach()/attach() work (a stale timeout error on the
    lock semaphore would make Qt's initKey() check fail)."""
    holder = spawn("cpp-qt5")
    holder.ok("key", key=key)
    holder.ok("create", size=8)
    with QSharedMemory(key) as shm:
        assert shm.attach(timeout=5)
        holder.ok("lock")
        assert not shm.lock(timeout=0.2)
        assert not shm.detach(timeout=0.2)  # detach takes the lock too
        holder.ok("unlock")
        assert shm.detach(timeout=5), shm.errorString()
        assert shm.attach(timeout=5), shm.errorString()
        assert shm.error() == QSharedMemory.NoError
    holder.ok("detach")
