"""The native fast paths (``qshm_compat._fast``) against the plain Python path (``QSHM_PLAIN=1``).

Every scenario runs twice in a fresh process, once on each path, against the same real Qt peer
holding or freeing the lock, and the two reports must be identical: names, results, error codes
and strings, lock state, semaphore values and modes.  Timings are not compared (speed is measured
in benchmarks/), only that a timeout ended within its bounds.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any, Dict

import pytest

from qshm_compat import QNativeIpcKey, QSharedMemory, _plain, posix

from peers import Peer

PLAIN_RUN = _plain.PLAIN

# Run in a fresh interpreter with QSHM_PLAIN set or not; prints one JSON report.  argv: family
# ("sysv" or "posix"), the key, the phase ("held": a peer holds the lock; "free").
SCENARIO = r'''
import json, os, sys, time
from qshm_compat import QNativeIpcKey, QSharedMemory, _plain
family, key, phase = sys.argv[1:4]
k = key if family == "sysv" else QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime)
out = {"plain": _plain.PLAIN, "fast_module": _plain.fast is not None}
shm = QSharedMemory(k)
out["names"] = [shm.key(), shm.nativeKey(), shm.nativeIpcKey().toString()]

def step(name, call):
    started = time.monotonic()
    result = call()
    took = time.monotonic() - started
    out[name] = [result, int(shm.error()), shm.errorString(), shm._locked_by_me]
    return took

def lock_state():
    handle = shm._sem._handle
    sem = handle.sem if handle is not None else None
    value = sem.value() if sem is not None else None
    fast = getattr(sem, "fast", None)
    held = None if fast is None else fast.held
    return [value, held, handle.describe() if handle is not None else None]

if phase == "held":
    took = step("attach_timeout", lambda: shm.attach(timeout=0.3))
    out["attach_took_ok"] = 0.25 < took < 3.0
    shm2 = QSharedMemory(k)
    out["lock_timeout"] = None
    started = time.monotonic()
    out["lock_timeout"] = [shm2.lock(timeout=0.3), int(shm2.error()), shm2.errorString(),
                           shm2._locked_by_me]
    shm2.close()
else:
    step("attach", lambda: shm.attach())
    out["size"] = shm.size()
    step("lock", lambda: shm.lock())
    out["state_locked"] = lock_state()
    shm.data()[:4] = b"fast"
    step("unlock", lambda: shm.unlock())
    out["state_unlocked"] = lock_state()
    step("unlock_again", lambda: shm.unlock())
    step("lock_timed", lambda: shm.lock(timeout=1.0))
    out["state_timed"] = lock_state()
    step("unlock_timed", lambda: shm.unlock())
    timed = []  # the other forms of a timeout: each takes a free lock (or fails) as the long way
    for timeout in ([0], [2], [0.5], [-1.0], [float("nan")], [float("inf")], [True], ["1"], [10**400]):
        try:
            timed.append([repr(timeout), shm.lock(*timeout), shm._locked_by_me, shm.unlock()])
        except Exception as exc:
            timed.append([repr(timeout), type(exc).__name__, shm._locked_by_me])
    timed.append([shm.lock(timeout=3), shm.lock(timeout=0.1), shm.unlock(), shm.unlock()])
    out["timed"] = timed
    step("detach", lambda: shm.detach())
    step("detach_again", lambda: shm.detach())
    missing = QSharedMemory(k if family == "sysv" else k)
    missing.setKey("qshm fast missing " + key) if family == "sysv" else missing.setNativeKey(
        QNativeIpcKey("/qshm_fast_missing_" + key.strip("/"), QNativeIpcKey.Type.PosixRealtime))
    out["missing"] = [missing.attach(), int(missing.error()), missing.errorString()]
    missing.close()
shm.close()
print(json.dumps(out))
'''


def run_script(script: str, plain: bool, *args: str) -> Dict[str, Any]:
    """Run ``script`` in a fresh interpreter on the fast or the plain path: its JSON report."""
    env = dict(os.environ, QSHM_PLAIN="1" if plain else "0")
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("plain") is plain
    return report


def run_scenario(family: str, key: str, phase: str, plain: bool) -> Dict[str, Any]:
    report = run_script(SCENARIO, plain, family, key, phase)
    assert report.pop("fast_module") is not plain, "the fast path is not built into the installed copy"
    return report


def start_holder(spawn: Any, family: str) -> tuple[Peer, str]:
    if family == "sysv":
        key = f"qshm fast {secrets.token_hex(6)}"
        peer = spawn("cpp-qt5")
        peer.ok("key", key=key)
    else:
        key = f"/qshm_fast_{secrets.token_hex(6)}"
        peer = spawn("pyqt6")
        peer.ok("ipckey", mode="native", key=key, type="posix")
    peer.ok("create", size=64)
    return peer, key


def test_fast_path_is_active_in_the_installed_copy(qshm_key: str) -> None:
    """Unless QSHM_PLAIN=1, the lock of the installed copy runs on the C type, and its held
    flag follows lock() and unlock()."""
    assert _plain.PLAIN == (os.environ.get("QSHM_PLAIN", "") not in ("", "0"))
    with QSharedMemory(qshm_key) as shm:
        assert shm.create(16)
        sem = shm._sem._handle.sem  # type: ignore[union-attr]
        if PLAIN_RUN:
            assert _plain.fast is None and sem.fast is None
            return
        from qshm_compat import _fast

        assert _fast.__file__.endswith(".abi3.so")
        assert isinstance(sem.fast, _fast.SysVLock) and sem.fast.semid == sem.semid
        assert shm.lock() and sem.fast.held and shm._locked_by_me
        assert shm.unlock() and not sem.fast.held and not shm._locked_by_me


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_fast_and_plain_give_the_same_results(family: str, spawn) -> None:
    peer, key = start_holder(spawn, family)
    try:
        peer.ok("lock")
        held = {plain: run_scenario(family, key, "held", plain) for plain in (False, True)}
        peer.ok("unlock")
        free = {plain: run_scenario(family, key, "free", plain) for plain in (False, True)}
        assert held[False] == held[True]
        assert free[False] == {**free[True], "state_locked": free[False]["state_locked"],
                               "state_unlocked": free[False]["state_unlocked"],
                               "state_timed": free[False]["state_timed"]}
        for name in ("state_locked", "state_unlocked", "state_timed"):
            fast, slow = free[False][name], free[True][name]
            assert fast[0] == slow[0] and fast[2] == slow[2]  # value and the semaphore's name
            assert slow[1] is None  # no C object on the plain path
        # What both must say (so that two equally wrong reports cannot pass):
        report = held[False]
        assert report["attach_timeout"][:2] == [False, int(QSharedMemory.LockError)]
        assert "timed out after 0.3 s" in report["attach_timeout"][2]
        assert report["lock_timeout"][0] is False and report["attach_took_ok"]
        report = free[False]
        assert report["lock"] == [True, 0, "", True] and report["unlock"] == [True, 0, "", False]
        assert report["state_locked"][:2] == [0, True] and report["state_unlocked"][:2] == [1, False]
        assert report["state_timed"][:2] == [0, True]
        assert report["unlock_again"][0] is False and report["detach_again"][0] is False
        assert report["missing"][:2] == [False, int(QSharedMemory.NotFound)]
        # The peer (the creator, still attached) sees what was written under the lock.
        assert peer.ok("read", length=4)["hex"] == b"fast".hex()
    finally:
        peer.close()
        if family == "posix":
            posix.shm_unlink(key)


HOLD_AND_DIE = r'''
import sys, time
from qshm_compat import QNativeIpcKey, QSharedMemory, _plain
shm = QSharedMemory(sys.argv[1])
assert shm.attach() and shm.lock()
print("locked", _plain.fast is not None, flush=True)
time.sleep(60)
'''


@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_lock_holder_killed_sem_undo(plain: bool, spawn) -> None:
    """A qshm_compat process killed while holding the System V lock: the kernel gives it back
    (SEM_UNDO), on both paths, and the Qt peer gets it at once."""
    peer, key = start_holder(spawn, "sysv")
    env = dict(os.environ, QSHM_PLAIN="1" if plain else "0")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_DIE, key], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().split() == ["locked", str(not plain)]
        holder.kill()
        holder.wait(timeout=10)
        peer.ok("lock", timeout=10)
        peer.ok("unlock")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        peer.close()


SIGINT_WAITER = r'''
import json, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background shell may ignore it
from qshm_compat import QNativeIpcKey, QSharedMemory
family, key = sys.argv[1:3]
k = key if family == "sysv" else QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime)
shm = QSharedMemory(k)
assert shm.attach(timeout=5)
print("attached", flush=True)
sys.stdin.readline()  # the peer has the lock now
print("waiting", flush=True)
try:
    got = shm.lock(timeout=None if sys.argv[3] == "none" else 30.0)
    outcome = "locked" if got else "failed"
except KeyboardInterrupt:
    outcome = "interrupted"
sem = shm._sem._handle.sem
fast = getattr(sem, "fast", None)
print(json.dumps({"outcome": outcome, "locked_by_me": shm._locked_by_me, "value": sem.value(),
                  "held": None if fast is None else fast.held}), flush=True)
if shm._locked_by_me:
    shm.unlock()
shm.close(timeout=0.5)  # the peer still holds the lock: unmap only
'''


@pytest.mark.parametrize("timeout", ["none", "30"])
@pytest.mark.parametrize("family", ["sysv", "posix"])
@pytest.mark.parametrize("plain", [False, True], ids=["fast", "plain"])
def test_sigint_during_a_blocked_lock(plain: bool, family: str, timeout: str, spawn) -> None:
    """Ctrl-C while lock() waits for a Qt peer: KeyboardInterrupt, and the lock is neither held
    nor believed held (the peer still has it)."""
    peer, key = start_holder(spawn, family)
    env = dict(os.environ, QSHM_PLAIN="1" if plain else "0")
    try:
        waiter = subprocess.Popen([sys.executable, "-c", SIGINT_WAITER, family, key, timeout],
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert waiter.stdout is not None and waiter.stdin is not None
            assert waiter.stdout.readline().strip() == "attached"
            peer.ok("lock")
            waiter.stdin.write("go\n")
            waiter.stdin.flush()
            assert waiter.stdout.readline().strip() == "waiting"
            time.sleep(0.4)  # now blocked in semop / sem_wait
            waiter.send_signal(signal.SIGINT)
            out, err = waiter.communicate(timeout=20)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait(timeout=10)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["outcome"] == "interrupted", err
        assert report["locked_by_me"] is False and report["value"] == 0  # the peer holds it
        assert report["held"] is (None if plain else False)
        peer.ok("unlock")
        peer.ok("detach")
    finally:
        peer.close()
        if family == "posix":
            posix.shm_unlink(key)


# attach()/detach() in one C call (qshm_compat._fast.SysVAttach, learned from the first attach
# the long way) against the plain path, for the three System V protocols.  argv: protocol, key
# (a string key, or for "native" the peer's key file), phase.
ATTACH_SCENARIO = r'''
import json, os, sys
from qshm_compat import QSharedMemory, _plain, sysv
protocol, key, phase = sys.argv[1:4]

def new():
    if protocol == "native":
        shm = QSharedMemory()
        shm.setNativeKey(key)
        return shm
    if protocol == "posix":
        from qshm_compat import QNativeIpcKey
        return QSharedMemory(QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime))
    return QSharedMemory(key, qt_version="6.11" if protocol == "qt6" else "5.15")

def state(shm):
    return [shm.isAttached(), shm.size(), int(shm.error()), shm.errorString()]

out = {"plain": _plain.PLAIN, "planned": None}

def planned():
    """Whether the one-call path is ready now (after an attach the long way), first time asked."""
    if out["planned"] is None:
        out["planned"] = shm._plan is not None
    return True

shm = new()
if phase == "cycles":
    rows = []
    for i in range(4):
        rows.append([shm.attach(), state(shm), bytes(shm.constData()[:4]).hex()])
        if i == 3:
            shm.data()[4:8] = b"qshm"
        rows.append([shm.detach(), state(shm), shm.detach(), planned()])
    rows.append([shm.attach(QSharedMemory.ReadOnly), state(shm), shm.data().readonly, shm.detach()])
    out["rows"] = rows
elif phase == "held":
    import threading, time
    rows = [shm.attach(), shm.detach() and planned()]  # the plan is learned
    other = new()
    rows += [other.attach(), other.lock()]
    started = time.monotonic()
    threading.Timer(0.3, other.unlock).start()
    rows.append(shm.attach())  # the one call finds the lock taken: the long way waits for it
    rows += [time.monotonic() - started > 0.25, state(shm), shm.detach()]
    rows += [other.lock(), shm.attach(timeout=0.3), state(shm), other.unlock(), other.detach()]
    other.close()
    out["rows"] = rows
elif phase == "creates":
    lock_file = lambda: shm._sem._handle.file_name if shm._sem._handle else None
    rows = []
    for i in range(4):
        rows.append([shm.create(64), state(shm), planned() if i else True])
        shm.data()[:2] = b"c%d" % i
        other = new()
        rows.append([other.create(64), state(other), other.attach(), bytes(other.constData()[:2]).hex()])
        other.close()
        files = [shm.nativeKey(), lock_file()]
        rows.append([shm.detach(), state(shm), [os.path.exists(f) for f in files if f]])
    rows.append([shm.create(0), state(shm), shm.create(-1), state(shm)])
    shm.close()  # the owner goes: its lock and key file with it
    rows.append([os.path.exists(f) for f in files])
    out["rows"] = rows
elif phase == "gone":
    out["rows"] = [shm.attach(), state(shm), shm.attach(), state(shm), planned()]
elif phase == "replaced":
    # The segment removed (by someone else, while attached) and made anew under the same key:
    # the one call's remembered segment id no longer carries the key, so it asks shmget again.
    def segment_id():
        key_t = sysv.ftok(shm.nativeKey(), shm._segment._project_id())
        return sysv.shm_stat(sysv.shm_get(key_t, True, "segment"), "segment").shm_perm_key if False else sysv.shm_get(key_t, True, "segment")
    first = new()
    assert first.create(64)
    first.data()[:4] = b"one!"
    rows = [shm.attach(), shm.detach(), planned()]
    rows.append([shm.attach(), state(shm), bytes(shm.constData()[:4]).hex()])
    sysv.shm_remove(segment_id(), "segment")  # marked for removal: its key is IPC_PRIVATE now
    second = new()
    rows.append([second.create(128), state(second)])
    second.data()[:4] = b"two!"
    rows.append([shm.detach(), state(shm), first.isAttached(), second.isAttached()])
    rows.append([shm.attach(), state(shm), bytes(shm.constData()[:4]).hex(), shm.detach()])
    rows.append([first.detach(), shm.attach(), state(shm), shm.detach()])  # second's stays
    rows.append([second.detach(), shm.attach(), state(shm), os.path.exists(shm.nativeKey())])
    first.close()
    second.close()
    out["rows"] = rows
elif phase == "last":
    creator = new()
    own_key = key if protocol != "native" else None
    assert creator.create(64) if protocol != "native" else True
    rows = []
    for i in range(3):
        rows.append([shm.attach(), state(shm), shm.detach(), state(shm), planned()])
    rows.append([shm.attach(), state(shm)])
    creator.detach()
    view = shm.data()  # a view left over: the detach must retire the mapping, not unmap it
    rows.append([shm.detach(), state(shm), len(view), bytes(view[:4]).hex()])
    del view
    rows.append([os.path.exists(shm.nativeKey()), shm._sem._handle is None or shm._sem._handle.sem is None])
    rows.append([shm.attach(), state(shm)])
    # Again, with no view left: the last one out detaches in one call, then removes in Python.
    creator.close()
    creator = new()
    assert creator.create(64)
    rows.append([shm.attach(), shm.detach(), shm.attach(), state(shm)])
    creator.detach()
    rows.append([shm.detach(), state(shm), os.path.exists(shm.nativeKey()), shm._held[0] == 0])
    rows.append([shm.attach(), state(shm)])
    out["rows"] = rows
    creator.close()
shm.close()
print(json.dumps(out))
'''


def run_attach_scenario(protocol: str, key: str, phase: str, plain: bool) -> Dict[str, Any]:
    return run_script(ATTACH_SCENARIO, plain, protocol, key, phase)


@pytest.mark.parametrize("protocol", ["qt5", "qt6", "native", "posix"])
def test_attach_detach_in_one_call_matches_the_plain_path(protocol: str, spawn, tmp_path) -> None:
    """The same attach/detach cycles, lock contention, vanished segment and (System V)
    last-one-out removal on both paths, against a real Qt peer that created the segment:
    identical reports, and the one-call path really ran (its plan was learned) on the fast side
    only."""
    peer = spawn("pyqt6" if protocol in ("qt6", "posix") else "cpp-qt5")
    key = f"qshm plan {secrets.token_hex(6)}"
    if protocol == "native":
        key = str(tmp_path / f"qshm_plan_{secrets.token_hex(4)}")
        with open(key, "w"):
            pass
        peer.ok("native", native=key)
    elif protocol == "posix":
        key = f"/qshm_plan_{secrets.token_hex(6)}"
        peer.ok("ipckey", mode="native", key=key, type="posix")
    else:
        peer.ok("key", key=key)
    try:
        peer.ok("create", size=64)
        peer.ok("write", hex=b"peer".hex())
        reports = {plain: run_attach_scenario(protocol, key, "cycles", plain) for plain in (False, True)}
        assert reports[False].pop("planned") is True and reports[True].pop("planned") is False
        assert reports[False] == reports[True]
        first = reports[False]["rows"]
        assert first[0] == [True, [True, 64, 0, ""], b"peer".hex()]
        assert first[1] == [True, [False, 0, 0, ""], False, True]
        assert first[-1][:3] == [True, [True, 64, 0, ""], True]
        assert peer.ok("read", offset=4, length=4)["hex"] == b"qshm".hex()  # written by us
        if protocol != "native":  # a native System V key has no lock
            held = {plain: run_attach_scenario(protocol, key, "held", plain) for plain in (False, True)}
            assert held[False].pop("planned") is True and held[True].pop("planned") is False
            assert held[False] == held[True]
            rows = held[False]["rows"]
            assert rows[:7] == [True, True, True, True, True, True, [True, 64, 0, ""]]
            assert rows[8:10] == [True, False] and rows[10][2] == int(QSharedMemory.LockError)
        peer.ok("detach")  # the last one out: the segment is gone (POSIX: Qt never unlinks it)
        if protocol == "posix":
            assert posix.shm_unlink(key)
        gone = {plain: run_attach_scenario(protocol, key, "gone", plain) for plain in (False, True)}
        assert gone[False].pop("planned") is False  # nothing was ever attached: no plan
        gone[True].pop("planned")
        assert gone[False] == gone[True]
        assert gone[False]["rows"][0] is False and gone[False]["rows"][1][2] == int(QSharedMemory.NotFound)
        if protocol == "posix":
            return  # create/detach cycles and the last one out's removal are System V's
        if protocol != "native":
            creates = {plain: run_attach_scenario(protocol, key + " c", "creates", plain) for plain in (False, True)}
            assert creates[False].pop("planned") is True and creates[True].pop("planned") is False
            assert creates[False] == creates[True]
            rows = creates[False]["rows"]
            for i in range(4):
                assert rows[3 * i][:2] == [True, [True, 64, 0, ""]]
                assert rows[3 * i + 1][:2] == [False, [False, 0, int(QSharedMemory.AlreadyExists),
                                                       "QSharedMemory::create: already exists"]]
                assert rows[3 * i + 1][2:] == [True, (b"c%d" % i).hex()]
                # The segment and its key file are removed; the lock, ours, stays as Qt's owner's
                # does (below), and the next create() uses it.
                assert rows[3 * i + 2] == [True, [False, 0, 0, ""], [False, True]]
            assert rows[12][0] is False and rows[12][1][2] == int(QSharedMemory.InvalidSize)
            assert rows[13] == [False, False]  # close() removed the lock and its key file
            # What the Qt peer does as the last one out of a segment it made: the same.
            qt_segment = peer.ok("key", key=key + " q")["nativeKey"]
            qt_lock = qt_segment.replace("qipc_sharedmemory_", "qipc_systemsem_")
            peer.ok("create", size=64)
            peer.ok("detach")
            assert os.path.exists(qt_lock) and not os.path.exists(qt_segment)
            peer.ok("destroy")
            assert not os.path.exists(qt_lock)
            last = {plain: run_attach_scenario(protocol, key, "last", plain) for plain in (False, True)}
            assert last[False].pop("planned") is True
            last[True].pop("planned")
            assert last[False] == last[True]
            rows = last[False]["rows"]
            assert rows[4][0] is True and rows[4][2] == 64  # the left-over view stays readable
            assert rows[5] == [False, True]  # key file and lock removed by the last one out
            assert rows[6][0] is False and rows[6][1][2] == int(QSharedMemory.NotFound)
            assert rows[7] == [True, True, True, [True, 64, 0, ""]]
            assert rows[8] == [True, [False, 0, 0, ""], False, False]  # removed, lock given back
            assert rows[9][0] is False and rows[9][1][2] == int(QSharedMemory.NotFound)
        other_key = key + "_r" if protocol == "native" else key + " r"
        replaced = {plain: run_attach_scenario(protocol, other_key, "replaced", plain) for plain in (False, True)}
        assert replaced[False].pop("planned") is True and replaced[True].pop("planned") is False
        assert replaced[False] == replaced[True]
        rows = replaced[False]["rows"]
        assert rows[:4] == [True, True, True, [True, [True, 64, 0, ""], b"one!".hex()]]
        assert rows[4:6] == [[True, [True, 128, 0, ""]], [True, [False, 0, 0, ""], True, True]]
        assert rows[6] == [True, [True, 128, 0, ""], b"two!".hex(), True]  # the new segment
        assert rows[7] == [True, True, [True, 128, 0, ""], True]
        assert rows[8][:2] == [True, False] and rows[8][2][2] == int(QSharedMemory.NotFound)
        assert rows[8][3] is False  # the last one out removed the key file
    finally:
        peer.close()


# attach() and detach() are C methods when a plan exists: every form of their arguments, and the
# calls around them that change what they may do, as the plain path answers them.  argv: family,
# key of a segment a Qt peer made.
ARGUMENT_FORMS = r'''
import json, sys, warnings
from qshm_compat import QNativeIpcKey, QSharedMemory
warnings.simplefilter("ignore")  # "already locked", as Qt warns
family, key = sys.argv[1:3]
if family == "posix":
    shm = QSharedMemory(QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime))
else:
    shm = QSharedMemory(key)

def state():
    return [shm.isAttached(), shm.size(), int(shm.error()), shm.errorString()]

def raised(call, *args):
    try:
        return call(*args)
    except Exception as exc:
        return type(exc).__name__

rows = [shm.attach(), state(), shm.detach(), shm.detach(), state()]  # the plan is learned here
planned = shm._plan is not None
rows += [shm.attach(0), state(), shm.data().readonly, shm.detach()]
rows += [shm.attach(True), state(), shm.attach(), state(), shm.detach()]
rows += [shm.attach(mode=QSharedMemory.ReadOnly), state(), shm.detach(timeout=None)]
rows += [shm.attach(timeout=None), state(), shm.detach(timeout=1.0)]
rows += [raised(shm.attach, 5), raised(shm.attach, None), raised(shm.attach, 1, 2), state()]
rows += [shm.lock(), shm.attach(), state(), shm.detach(), shm.unlock()]  # held by us: the long way
rows += [shm.attach(), state()]
view = shm.data()
rows += [shm.detach(), len(view), state()]  # a view left over: the long way retires the mapping
del view
rows += [shm.attach(), shm.detach(), raised(shm.detach, 1), state()]
shm.close()
print(json.dumps({"plain": __import__("qshm_compat")._plain.PLAIN, "planned": planned, "rows": rows}))
'''


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_attach_detach_argument_forms_match_the_plain_path(family: str, spawn) -> None:
    """Positional, keyword, bool and int modes, timeouts, bad arguments, the lock held by the
    caller and a view left over: the C methods answer as the Python ones, on a real Qt peer's
    segment (C++ Qt 5 for System V, PyQt6 for POSIX)."""
    if family == "posix":
        key = f"/qshm_forms_{secrets.token_hex(6)}"
        peer = spawn("pyqt6")
        peer.ok("ipckey", mode="native", key=key, type="posix")
    else:
        key = f"qshm forms {secrets.token_hex(6)}"
        peer = spawn("cpp-qt5")
        peer.ok("key", key=key)
    try:
        peer.ok("create", size=64)
        reports = {plain: run_script(ARGUMENT_FORMS, plain, family, key) for plain in (False, True)}
        assert reports[False].pop("planned") is True and reports[True].pop("planned") is False
        assert reports[False] == reports[True]
        rows = reports[False]["rows"]
        assert rows[:5] == [True, [True, 64, 0, ""], True, False, [False, 0, 0, ""]]
        assert rows[7] is True  # attach(0) is ReadOnly
        assert rows[20:24] == ["ValueError", "ValueError", "TypeError", [False, 0, 0, ""]]
        peer.ok("detach")
    finally:
        peer.close()
        if family == "posix":
            posix.shm_unlink(key)


def test_segment_created_in_one_call_is_a_qt_peers(spawn) -> None:
    """create() done in one C call (the second create of an object, under the lock it kept),
    seen by a real Qt 5 peer: it attaches, reads what we wrote and writes back under the same
    lock; the last one out removes the segment, and close() the lock (on the plain path the
    same test runs the long way)."""
    key = f"qshm create {secrets.token_hex(6)}"
    peer = spawn("cpp-qt5")
    shm = QSharedMemory(key)
    try:
        assert shm.create(64) and shm.detach()  # the long way: the one-call plan is learned
        assert (shm._create_plan is not None) is not PLAIN_RUN
        assert shm.create(64), shm.errorString()
        lock_file = shm._sem._handle.file_name  # type: ignore[union-attr]
        shm.data()[:4] = b"ours"
        peer.ok("key", key=key)
        assert peer.ok("attach")["size"] == 64
        assert peer.ok("read", length=4)["hex"] == b"ours".hex()
        peer.ok("lock")
        assert shm.lock(timeout=0.2) is False  # the peer's lock is ours: the same semaphore
        peer.ok("write", hex=b"qt5!".hex())
        peer.ok("unlock")
        assert shm.lock(timeout=5) and bytes(shm.constData()[:4]) == b"qt5!" and shm.unlock()
        peer.ok("detach")
        assert shm.detach()
        # The last one out removed the segment and its key file; the lock is ours and stays
        # until we go, as a Qt creator's does.
        assert not os.path.exists(shm.nativeKey()) and os.path.exists(lock_file)
        assert shm.create(64) and shm.detach()  # again in one call, under the same lock
        shm.close()
        assert not os.path.exists(lock_file)
    finally:
        shm.close()
        peer.close()


def test_attach_where_the_last_detach_left_or_elsewhere(spawn) -> None:
    """The one-call attach asks shmat for the address the last detach left (the kernel refuses
    it if the range is taken): when something else took that range meanwhile, attach() still
    maps the segment, elsewhere, and reads and writes what a real Qt 5 peer sees, on both paths.
    (Which call mapped it is not visible here: a refused address falls back to shmat(NULL), and
    a failed one-call attach to the long way.)"""
    import ctypes
    import mmap

    key = f"qshm again {secrets.token_hex(6)}"
    peer = spawn("cpp-qt5")
    peer.ok("key", key=key)
    peer.ok("create", size=mmap.PAGESIZE)
    peer.ok("write", hex=b"qt5 wrote".hex())
    shm = QSharedMemory(key)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    map_fixed_noreplace = 0x100000  # Linux 4.17+: fails rather than replacing a mapping
    try:
        addresses = []
        for _ in range(3):  # the first attach learns the plan; then one call each
            assert shm.attach(), shm.errorString()
            assert bytes(shm.constData()[:9]) == b"qt5 wrote"
            addresses.append(shm._addr)
            assert shm.detach()
        assert (shm._plan is not None) is not PLAIN_RUN
        assert addresses[1] == addresses[2]  # mapped again where it was
        taken = libc.mmap(addresses[2], mmap.PAGESIZE, mmap.PROT_READ,
                          mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | map_fixed_noreplace, -1, 0)
        assert taken == addresses[2], os.strerror(ctypes.get_errno())
        try:
            assert shm.attach(), shm.errorString()
            assert shm._addr != taken
            assert bytes(shm.constData()[:9]) == b"qt5 wrote"
            shm.data()[:4] = b"ours"
            assert peer.ok("read", length=4)["hex"] == b"ours".hex()
            assert shm.detach()
        finally:
            libc.munmap(taken, mmap.PAGESIZE)
    finally:
        shm.close()
        peer.close()


def _mapped(page: int) -> bool:
    """Whether the page at this address is mapped in this process (by anything)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(x, 16) for x in line.split(maxsplit=1)[0].split("-"))
            if start <= page < end:
                return True
    return False


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_one_call_detach_guards_the_range_for_the_next_attach(family: str, spawn) -> None:
    """The one-call detach keeps the address and maps a PROT_NONE page of the object's own on each
    free side of the range (see Placement in native/qshm_fast.c), so that the next attach fills the
    range between two mappings; the plain path maps nothing.  The segment stays a real Qt peer's
    (C++ Qt 5 for System V, PyQt6 for POSIX), read and written in place after each attach, and
    close() unmaps the guards again."""
    import mmap

    page = mmap.PAGESIZE
    size, length = 3 * page + 100, 4 * page  # a size that is not whole pages
    if family == "posix":
        key = f"/qshm_guard_{secrets.token_hex(6)}"
        peer = spawn("pyqt6")
        peer.ok("ipckey", mode="native", key=key, type="posix")
        shm = QSharedMemory(QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime))
    else:
        key = f"qshm guard {secrets.token_hex(6)}"
        peer = spawn("cpp-qt5")
        peer.ok("key", key=key)
        shm = QSharedMemory(key)
    try:
        peer.ok("create", size=size)
        assert shm.attach(), shm.errorString()  # the long way: learns the plan
        address = shm._addr
        assert shm.detach()
        # what was on each side before any one-call detach (the long way's detach maps nothing)
        sides = {"below": address - page, "above": address + length}
        was = {name: _mapped(at) for name, at in sides.items()}
        for round_ in range(3):
            assert shm.attach(), shm.errorString()
            assert shm._addr == address  # mapped again where the last detach left
            assert bytes(shm.constData()[:2]) == (b"\0\0" if round_ == 0 else b"r%d" % (round_ - 1))
            shm.data()[:2] = b"r%d" % round_
            assert peer.ok("read", length=2)["hex"] == (b"r%d" % round_).hex()
            assert shm.detach()
        assert (shm._plan is not None) is not PLAIN_RUN
        assert not any(_mapped(at) for at in range(address, address + length, page))
        now = {name: _mapped(at) for name, at in sides.items()}
        assert now == (was if PLAIN_RUN else {"below": True, "above": True})
        shm.close()  # (which may unmap a neighbour too: the POSIX lock's page, say)
        guarded = [name for name in sides if not was[name]]
        assert not any(_mapped(sides[name]) for name in guarded), f"close() left the guard {guarded}"
        peer.ok("detach")
    finally:
        shm.close()
        peer.close()
        if family == "posix":
            posix.shm_unlink(key)
