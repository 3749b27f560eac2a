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


def run_scenario(family: str, key: str, phase: str, plain: bool) -> Dict[str, Any]:
    env = dict(os.environ, QSHM_PLAIN="1" if plain else "0")
    proc = subprocess.run([sys.executable, "-c", SCENARIO, family, key, phase], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report.pop("plain") is plain
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
