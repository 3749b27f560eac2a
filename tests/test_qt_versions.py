"""Where Qt versions behave differently, ``qt_version`` makes qshm_compat behave like that Qt.

Each scenario is played once by a real Qt peer and once by qshm_compat with ``qt_version`` set to
that peer's Qt version, and the two must agree.
"""

from __future__ import annotations

import os
from typing import Callable, List, Tuple

import pytest

from peers import ALL_PEERS, Peer
from qshm_compat import QSharedMemory

Outcome = List[Tuple[bool, int, str]]


def _crash_a_creator(spawn: Callable[..., Peer], key: str) -> None:
    """Leave what a crashed Qt creator leaves: a segment nobody is attached to, and key files."""
    creator = spawn("cpp-qt5")
    creator.ok("key", key=key)
    creator.ok("create", size=16)
    creator.ok("write", hex="feed")
    creator.kill()


@pytest.mark.parametrize("name", ALL_PEERS)
def test_stale_segment_after_a_crash_per_qt_version(name: str, spawn, peer_pool, key: str) -> None:
    """create() then attach() over a crashed creator's segment: Qt <= 6.5 attaches to it,
    Qt >= 6.6 deletes it and reports NotFound; we do what the targeted version does."""
    peer = peer_pool.get(name)
    _crash_a_creator(spawn, key)
    peer.ok("key", key=key)
    theirs: Outcome = []
    for cmd in ("create", "attach"):
        answer = peer.request(cmd, **({"size": 16} if cmd == "create" else {}))
        theirs.append((answer["ok"], answer["error"], answer["errorString"]))
    peer.request("detach")
    peer.ok("destroy")

    _crash_a_creator(spawn, key + "!")
    ours: Outcome = []
    with QSharedMemory(key + "!", qt_version=peer.qt) as shm:
        ours.append((shm.create(16), int(shm.error()), shm.errorString()))
        ours.append((shm.attach(), int(shm.error()), shm.errorString()))
        if shm.isAttached():
            assert bytes(shm.constData()[:2]) == bytes.fromhex("feed")

    assert ours == theirs
    if peer.qt_version >= (6, 6):
        assert theirs[1][0] is False and theirs[1][1] == int(QSharedMemory.NotFound)
    else:
        assert theirs[1][0] is True


def test_symlinked_tmpdir_per_qt_version(spawn, tmp_path) -> None:
    """A symlinked TMPDIR is resolved by Qt <= 6.9.1 and kept by Qt >= 6.9.2, and both reach the
    same segment (ftok follows the link): we name it like each and attach to either's segment."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    env = {"TMPDIR": str(link)}
    old, new = spawn("cpp-qt5", env=env), spawn("pyqt6", env=env)
    key = "qshm symlinked tmpdir"
    saved = os.environ["TMPDIR"]
    os.environ["TMPDIR"] = str(link)
    try:
        for peer in (old, new):
            answer = peer.ok("key", key=key)
            with QSharedMemory(key, qt_version=peer.qt) as shm:
                assert shm.nativeKey() == answer["nativeKey"]
        assert old.ok("key", key=key)["nativeKey"].startswith(str(real) + "/")
        assert new.ok("key", key=key)["nativeKey"].startswith(str(link) + "/")
        old.ok("create", size=8)
        old.ok("write", hex="01020304")
        with QSharedMemory(key, qt_version="6.11") as shm:
            assert shm.attach(timeout=5)
            assert bytes(shm.constData()[:4]) == bytes.fromhex("01020304")
        old.ok("detach")
    finally:
        os.environ["TMPDIR"] = saved
