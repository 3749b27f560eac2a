"""Reliability, round 2 (issue 13): one lock that survives Ctrl-C, races, crashes and the garbage
collector, and answers at once where Qt does.

Every test drives the public classes (``QSharedMemory``, ``QSystemSemaphore``), in this process
or in processes of their own, next to real Qt peers where Qt is part of the story.  Counts that
would make a soak are behind ``QSHM_SOAK_COUNT`` (the README gives the numbers of a soak run).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time

import pytest

from qshm_compat import QNativeIpcKey, QSharedMemory

#: Multiplies the trial counts below for a soak (CI: 1).
SOAK = max(1, int(os.environ.get("QSHM_SOAK_COUNT", "20000")) // 20000)


def run_child(code: str, timeout: float = 120, **env: str) -> dict:
    """Run ``code`` in a fresh Python (the installed qshm_compat), return its last stdout line."""
    full_env = dict(os.environ, **env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=full_env,
    )
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- 1. create() on an existing key answers at once -------------------------------------------

CREATE_FAST_CASES = [
    # (holder stack, key family, qt_version of our object)
    ("cpp-qt5", "legacy", "5.15"),
    ("pyqt5", "legacy", "5.15"),
    ("pyqt6", "legacy", "6.8"),
    ("pyside6", "legacy", "6.11"),
    ("cpp-qt6", "legacy", "6.4"),
    ("qshm", "legacy", "5.15"),
    ("qshm", "legacy", "6.8"),
    ("pyqt6", "posix", None),
    ("pyside6", "posix", None),
    ("qshm", "posix", None),
]


@pytest.mark.parametrize("holder_stack, family, qt", CREATE_FAST_CASES)
def test_create_on_existing_key_fails_at_once_while_the_lock_is_held(
    holder_stack: str, family: str, qt, spawn, qshm_key: str, qshm_native_key: QNativeIpcKey
) -> None:
    """Another process created the segment and holds its lock: create() is False with
    AlreadyExists within milliseconds (as every Qt stack answers), and the holder keeps its
    exclusion: a third process cannot get in until it unlocks."""
    holder, third = spawn(holder_stack), spawn("qshm")
    for peer in (holder, third):
        if family == "legacy":
            peer.ok("key", key=qshm_key)
        else:
            peer.ok("ipckey", mode="native", key=qshm_native_key.nativeKey())
    holder.ok("create", size=64)
    third.ok("attach")  # before the lock is taken: attach takes it too
    holder.ok("lock")
    key: object = qshm_key if family == "legacy" else qshm_native_key
    shm = QSharedMemory(key, qt_version=qt)
    try:
        started = time.monotonic()
        created = shm.create(64, timeout=3)
        elapsed = time.monotonic() - started
        assert not created
        assert shm.error() == QSharedMemory.AlreadyExists, shm.errorString()
        assert elapsed < 0.05, f"create() took {elapsed:.3f} s while another process held the lock"
        # The failed create() broke nobody's exclusion: the third process still waits.
        third.send("lock", lock_timeout=0.3)
        assert third.reply()["ok"] is False, "a third process got into a lock another holds"
        # And our object is usable afterwards: attach waits for the lock, which is then free.
        holder.ok("unlock")
        assert shm.attach(timeout=5), shm.errorString()
        assert shm.lock(timeout=5) and shm.unlock()
        assert shm.detach()
        third.ok("detach")
    finally:
        shm.close()
        holder.ok("detach")


# --- 3. exceptions from signal handlers at random moments around the lock ----------------------

SIGNAL_TRIALS_CODE = r"""
import json, os, random, signal, sys
from qshm_compat import QNativeIpcKey, QSharedMemory

family, trials, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
key = QNativeIpcKey(sys.argv[4]) if family == "posix" else sys.argv[4]

class Interrupt(Exception):
    pass

def handler(signum, frame):
    raise Interrupt

signal.signal(signal.SIGALRM, handler)
rng = random.Random(seed)
creator = QSharedMemory(key)
assert creator.create(64), creator.errorString()
shm, probe, probe2 = QSharedMemory(key), QSharedMemory(key), QSharedMemory(key)
assert shm.attach() and probe.attach() and probe2.attach()
patterns = ["try_finally", "with_locked", "lock_unlock", "lock_timeout", "keyboard_interrupt"]
counts = {p: {"trials": 0, "interrupted": 0, "held_known": 0, "free": 0, "forgotten": 0, "doubled": 0}
          for p in patterns}
for trial in range(trials):
    pattern = patterns[trial % len(patterns)]
    c = counts[pattern]
    c["trials"] += 1
    try:
        signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, 3e-4))
        if pattern == "keyboard_interrupt":
            signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
        while True:
            if pattern == "try_finally":
                try:
                    shm.lock()
                    shm.data()[0] = 1
                finally:
                    shm.unlock()
            elif pattern == "with_locked":
                with shm.locked():
                    shm.data()[0] = 2
            elif pattern == "lock_unlock" or pattern == "keyboard_interrupt":
                shm.lock()
                shm.unlock()
            else:
                shm.lock(timeout=5)
                shm.unlock()
    except (Interrupt, KeyboardInterrupt):
        c["interrupted"] += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handler)
    # Held and known to be held (unlock() says True and frees it), or free: never taken but
    # forgotten (then nobody can take it), never given twice (then two could take it).
    known = shm.unlock()
    got = probe.lock(timeout=0)
    second = probe2.lock(timeout=0)
    if got:
        probe.unlock()
    if second:
        probe2.unlock()
    if not got:
        c["forgotten"] += 1
        break  # the lock is stuck; nothing more can be learnt
    if second:
        c["doubled"] += 1
        break
    c["held_known" if known else "free"] += 1
for o in (shm, probe, probe2, creator):
    o.close(timeout=1)  # a forgotten lock must not hang the report
print(json.dumps(counts))
"""


@pytest.mark.parametrize("family", ["sysv", "posix"])
def test_signal_exceptions_around_the_lock_never_lose_it(family: str, qshm_key: str, qshm_native_key) -> None:
    """Thousands of exceptions raised by signal handlers (and Ctrl-C) at random moments in loops of
    lock()/unlock(), try/finally and ``with locked()``: afterwards the lock is either held and
    known to be held, or free; never taken but forgotten, never released twice."""
    trials = 3000 * SOAK
    key = qshm_key if family == "sysv" else qshm_native_key.nativeKey()
    code = SIGNAL_TRIALS_CODE
    out = subprocess.run(
        [sys.executable, "-c", code, family, str(trials), "7", key],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(counts))
    for pattern, c in counts.items():
        assert c["forgotten"] == 0 and c["doubled"] == 0, (pattern, counts)
    total = sum(c["held_known"] + c["free"] for c in counts.values())
    assert total == trials, counts
    assert sum(c["interrupted"] for c in counts.values()) == trials
