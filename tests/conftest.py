"""Fixtures shared by the test modules: real Qt peers, fresh keys, and the leak guard.

Every test runs under the leak guard: the IPC objects on the machine are listed before and after
it, and anything the test left (a segment, a semaphore, a key file, a ``/dev/shm`` object) is
removed and fails the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

import leftovers
from peers import ALL_PEERS, QT66_PEERS, STARTED_PIDS, Peer, PeerError, start_peer

# qshm_compat's own pytest plugin (qshm_key, qt_process...): registered by its entry point when
# the package is installed (CI); named here for the source tree.  The same name both ways, so it
# is registered once.
pytest_plugins = ["qshm_compat.pytest_plugin"]

# The whole run, and every peer it starts, uses a temp dir of its own: Qt key files land there,
# so the leak guard sees exactly what the tests made, and nothing of other programs.
SESSION_TMPDIR = tempfile.mkdtemp(prefix="qshm-tests-")
os.chmod(SESSION_TMPDIR, 0o1777)  # like /tmp: the other-user tests need it
os.environ["TMPDIR"] = SESSION_TMPDIR
tempfile.tempdir = None

# A run started in the background of a script (`bash tests/run.sh &`) has SIGINT ignored, and every
# process it starts inherits that: the tests that end a hold with Ctrl-C (SIGINT), or raise
# KeyboardInterrupt by it, would then wait out their timeouts.  A handler of our own is not
# inherited across exec: the children get SIGINT's default back, and Python its KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config: pytest.Config) -> List[str]:
    import qshm_compat

    return [
        f"qshm_compat {qshm_compat.__version__} imported from {os.path.dirname(qshm_compat.__file__)}",
        f"TMPDIR for this run: {SESSION_TMPDIR}",
    ]


def pytest_unconfigure(config: pytest.Config) -> None:
    # pytest's own tmp_path folders live here too; anything else is a leak.
    left = [n for n in os.listdir(SESSION_TMPDIR) if not n.startswith(("pytest-of-", "runtime-"))] if os.path.isdir(SESSION_TMPDIR) else []
    shutil.rmtree(SESSION_TMPDIR, ignore_errors=True)
    if left:
        print(f"\nleft in the session TMPDIR (removed now): {sorted(left)}")


class PeerPool:
    """One long-lived peer per stack, reset after each test; restarted if it died."""

    def __init__(self) -> None:
        self._peers: Dict[str, Peer] = {}

    def get(self, name: str) -> Peer:
        peer = self._peers.get(name)
        if peer is None or peer.proc.poll() is not None:
            peer = start_peer(name)
            self._peers[name] = peer
        return peer

    def reset(self) -> None:
        """Destroy what each peer holds (its destructors run); drop peers that do not answer."""
        for name, peer in list(self._peers.items()):
            try:
                if peer.proc.poll() is not None:
                    raise PeerError("exited")
                for cmd in ("sem_destroy", "destroy"):
                    peer.send(cmd)
                    peer.reply(timeout=10)
            except PeerError:
                peer.kill()
                peer.close()
                del self._peers[name]

    def close(self) -> None:
        for peer in self._peers.values():
            peer.close()
        self._peers.clear()


@pytest.fixture(scope="session")
def peer_pool() -> Iterator[PeerPool]:
    pool = PeerPool()
    yield pool
    pool.close()


@pytest.fixture(autouse=True)
def leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves an IPC object behind (after removing it), counting semaphores
    made meanwhile that nobody set or used (they have no pid to tell whose they are)."""
    dirs = {SESSION_TMPDIR}
    before = leftovers.snapshot(_our_pids(), dirs)
    semids_before = leftovers.semids()
    yield
    if "peer_pool" in request.fixturenames:
        request.getfixturevalue("peer_pool").reset()
    left = leftovers.snapshot(_our_pids(), dirs) - before
    left = left.with_semaphores(leftovers.unset_semaphores(semids_before, dirs))
    if left:
        leftovers.remove(left)
        pytest.fail(f"the test left IPC objects behind: {left.describe()}", pytrace=False)


def _our_pids() -> set:
    return STARTED_PIDS | {os.getpid()}


@pytest.fixture(params=ALL_PEERS)
def peer(request: pytest.FixtureRequest, peer_pool: PeerPool) -> Peer:
    """Each of the five real Qt peers in turn (pooled; reset after the test)."""
    return peer_pool.get(request.param)


@pytest.fixture(params=QT66_PEERS)
def qt66_peer(request: pytest.FixtureRequest, peer_pool: PeerPool) -> Peer:
    """Each real Qt >= 6.6 peer in turn (QNativeIpcKey)."""
    return peer_pool.get(request.param)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Peer]]:
    """Start a fresh peer with its own environment; it is closed (or killed) after the test."""
    started: List[Peer] = []

    def _spawn(
        name: str, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None, user: Optional[int] = None
    ) -> Peer:
        peer = start_peer(name, env=env, cwd=cwd, user=user)
        started.append(peer)
        return peer

    yield _spawn
    for peer in started:
        peer.close()


@pytest.fixture
def qshm_tmpdir() -> Path:
    """The plugin's fixtures share the session TMPDIR, where the pooled peers keep their key files
    (a TMPDIR per test would give the test other names than the peers it talks to)."""
    return Path(SESSION_TMPDIR)


@pytest.fixture
def key() -> str:
    """A fresh random Qt key with letters, digits, a space and punctuation in it."""
    return f"qshm test {secrets.token_hex(6)}/#1"
