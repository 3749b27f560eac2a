"""Qt's Shared Memory Example (spec §10) between qshm_compat and real Qt, both buttons, both ways.

The peers' ``image_put`` and ``image_get`` requests are the example's "Load Image From File" and
"Load Image From Shared Memory" done with Qt's own QImage, QBuffer and QDataStream (PROTOCOL.md).
Our side is :func:`qshm_compat.write_image` / :func:`qshm_compat.read_image`.  The test picture
is 7x5 RGBA with opaque, half-transparent and fully transparent pixels.  The PNG bytes differ
between Qt versions (and from Pillow's), so pixels are compared, never PNG bytes.

String keys are the Qt 5 / Qt 6.0-6.5 example (System V, all five stacks); ``QNativeIpcKey`` is
the Qt 6.8 example (POSIX, the Qt >= 6.6 stacks).  Fresh random keys keep clear of a real example;
one test uses the literal native key ``QSharedMemoryExample`` when nothing else holds it.  Qt never
unlinks POSIX shared memory, so those tests unlink what they caused.  The last tests run ``python
-m qshm_compat demo`` and check that a Qt program of every stack can load the demo's picture while
the demo holds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import leftovers
from peers import ALL_PEERS, STARTED_PIDS, Peer
from qshm_compat import IpcError, QNativeIpcKey, QSharedMemory, posix, read_image, write_image
from qshm_compat.example import EXAMPLE_KEY

Image = pytest.importorskip("PIL.Image")

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "qshm_compat" / "data" / "qt-example.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

COLOURS = [
    (255, 0, 0, 255),
    (0, 255, 0, 255),
    (0, 0, 255, 255),
    (255, 255, 255, 128),
    (10, 20, 30, 0),  # fully transparent, with a colour Qt must keep (no premultiplying)
    (200, 100, 50, 77),
]
WIDTH, HEIGHT = 7, 5


def make_image(shift: int = 0, size: tuple = (WIDTH, HEIGHT)) -> "Image.Image":
    width, height = size
    image = Image.new("RGBA", size)
    image.putdata([COLOURS[(x + 2 * y + shift) % len(COLOURS)] for y in range(height) for x in range(width)])
    return image


def rgba(image: "Image.Image") -> bytes:
    return image.convert("RGBA").tobytes()


def fresh_native_name() -> str:
    return f"qshm_example_{secrets.token_hex(5)}"


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """The test picture saved as a PNG file by Pillow."""
    path = tmp_path / "picture.png"
    make_image().save(path)
    return path


@pytest.fixture
def unlink_posix() -> Iterator[Callable[[str], None]]:
    """Unlink, after the test, the POSIX shared memory objects registered (Qt never does)."""
    names: List[str] = []
    yield names.append
    for name in names:
        posix.shm_unlink(name)


# ----- string key: the Qt 5.15 / Qt 6.0-6.5 example, all five stacks -----------------------------


def test_qt_loads_from_file_python_loads_from_memory(peer: Peer, key: str, picture: Path) -> None:
    """An image a Qt program put in the segment with the example's code reads back pixel-exact."""
    peer.ok("key", key=key)
    put = peer.ok("image_put", path=str(picture))
    assert put["created"] and put["width"] == WIDTH and put["height"] == HEIGHT, put
    assert put["segmentSize"] == put["size"], "the example's segment is exactly the stream's size"
    image = read_image(key, timeout=5)
    assert image.size == (WIDTH, HEIGHT)
    assert rgba(image) == rgba(make_image())
    png = read_image(key, decode=False, timeout=5)
    assert png.startswith(PNG_SIGNATURE) and len(png) == put["size"] - 4  # qint32 1, then the PNG
    peer.ok("detach")


@pytest.mark.parametrize("source", ["pil", "png-bytes", "path"])
def test_python_loads_from_file_qt_loads_from_memory(peer: Peer, key: str, picture: Path, source: str) -> None:
    """An image write_image put in the segment is read by Qt's ``in >> image`` pixel-exact."""
    image = {"pil": make_image(), "png-bytes": picture.read_bytes(), "path": picture}[source]
    shm = write_image(key, image, timeout=5)
    try:
        assert shm.isAttached()
        if source != "pil":  # PNG bytes go into the stream unchanged
            assert shm.size() == 4 + len(picture.read_bytes())
        peer.ok("key", key=key)
        got = peer.ok("image_get")
        assert (got["width"], got["height"], got["isNull"]) == (WIDTH, HEIGHT, False), got
        assert got["size"] == shm.size()
        assert bytes.fromhex(got["rgba"]) == rgba(make_image())
        state = peer.ok("state")
        assert not state["isAttached"], "image_get detaches, as the example does"
    finally:
        shm.close()


def test_write_image_falls_back_to_attach_like_qt_6_8(peer: Peer, key: str, tmp_path: Path) -> None:
    """When Qt's segment exists, write_image attaches and overwrites it, as the 6.8 example does."""
    big = tmp_path / "big.png"
    make_image(size=(40, 30)).save(big)
    peer.ok("key", key=key)
    put = peer.ok("image_put", path=str(big))
    replacement = make_image(shift=3)
    shm = write_image(key, replacement, timeout=5)
    try:
        assert shm.size() == put["size"], "attached to Qt's segment, not a new one"
        assert shm.error() == QSharedMemory.NoError, "cleared after the fallback, as in Qt"
        assert rgba(read_image(key, timeout=5)) == rgba(replacement)
    finally:
        shm.close()
    peer.ok("detach")


def test_write_image_refuses_a_segment_too_small(peer: Peer, key: str, picture: Path) -> None:
    """A Qt segment too small for the image is left intact, not filled with a truncated PNG."""
    peer.ok("key", key=key)
    peer.ok("image_put", path=str(picture))
    with pytest.raises(IpcError, match="needs"):
        write_image(key, make_image(size=(64, 64)), timeout=5)
    assert rgba(read_image(key, timeout=5)) == rgba(make_image())
    peer.ok("detach")


def test_qt_falls_back_to_attach_on_python_segment(peer: Peer, key: str, picture: Path) -> None:
    """The peer's image_put attaches to a segment we made (6.8 fallback) and overwrites it."""
    shm = write_image(key, make_image(size=(40, 30)), timeout=5)
    try:
        peer.ok("key", key=key)
        put = peer.ok("image_put", path=str(picture))
        assert not put["created"] and put["segmentSize"] == shm.size(), put
        # create() failed with AlreadyExists; the attach and lock that follow clear error().
        assert put["error"] == int(QSharedMemory.NoError), put
        assert rgba(read_image(key, timeout=5)) == rgba(make_image())
        peer.ok("detach")
    finally:
        shm.close()


def test_read_image_without_a_segment(key: str) -> None:
    """read_image of a key nobody published raises IpcError naming Qt's NotFound, and leaves nothing."""
    with pytest.raises(IpcError, match="NotFound"):
        read_image(key, timeout=5)


# ----- native key: the Qt 6.8 example, Qt >= 6.6 stacks ------------------------------------------


def test_native_key_qt_to_python(qt66_peer: Peer, picture: Path, unlink_posix) -> None:
    """The Qt 6.8 example's native-key segment made by Qt reads back through QNativeIpcKey."""
    name = fresh_native_name()
    unlink_posix(name)
    made = qt66_peer.ok("ipckey", mode="native", key=name)
    assert made["toString"] == QNativeIpcKey(name).toString() == f"posix:{name}"
    qt66_peer.ok("image_put", path=str(picture))
    assert os.path.exists(f"/dev/shm/{name}")
    assert rgba(read_image(QNativeIpcKey(name), timeout=5)) == rgba(make_image())
    qt66_peer.ok("detach")


def test_native_key_python_to_qt(qt66_peer: Peer, unlink_posix) -> None:
    """write_image(QNativeIpcKey(name)) is what the Qt 6.8 example's loadFromMemory reads."""
    name = fresh_native_name()
    unlink_posix(name)
    shm = write_image(QNativeIpcKey(name), make_image(), timeout=5)
    try:
        qt66_peer.ok("ipckey", mode="native", key=name)
        got = qt66_peer.ok("image_get")
        assert bytes.fromhex(got["rgba"]) == rgba(make_image())
    finally:
        shm.close()
    assert os.path.exists(f"/dev/shm/{name}"), "POSIX shared memory outlives everyone, as in Qt"


def test_literal_qt_6_8_example_key(qt66_peer: Peer, picture: Path) -> None:
    """The Qt 6.8 example's own key, /dev/shm/QSharedMemoryExample, both ways (when it is free)."""
    for path in (f"/dev/shm/{EXAMPLE_KEY}", f"/dev/shm/sem.{EXAMPLE_KEY}"):
        if os.path.exists(path):
            pytest.skip(f"{path} exists: a real Qt example (or someone) is using it")
    ipc_key = QNativeIpcKey(EXAMPLE_KEY)
    assert ipc_key.toString() == "posix:QSharedMemoryExample"
    try:
        qt66_peer.ok("ipckey", mode="native", key=EXAMPLE_KEY)
        qt66_peer.ok("image_put", path=str(picture))
        assert rgba(read_image(ipc_key, timeout=5)) == rgba(make_image())
        qt66_peer.ok("detach")
        # Qt left the object behind; the next "Load Image From File" reuses it (6.8 fallback).
        shm = write_image(ipc_key, make_image(shift=1), timeout=5)
        try:
            qt66_peer.ok("ipckey", mode="native", key=EXAMPLE_KEY)
            got = qt66_peer.ok("image_get")
            assert bytes.fromhex(got["rgba"]) == rgba(make_image(shift=1))
        finally:
            shm.close()
    finally:
        qt66_peer.ok("destroy")
        posix.shm_unlink(EXAMPLE_KEY)


# ----- the demo --------------------------------------------------------------------------------

CHECKSUM = re.compile(r"sha1 ([0-9a-f]{40})")
PIDS = re.compile(r"\(pid (\d+)\)")


def _assert_demo_left_nothing(output: str) -> None:
    pids = {int(p) for p in PIDS.findall(output)}
    assert pids, output
    STARTED_PIDS.update(pids)  # the leak guard now attributes their objects to this test too
    left = leftovers.snapshot(pids, {os.environ["TMPDIR"]})
    assert not left.segments and not left.semaphores, left.describe()
    assert not [f for f in left.files if f.startswith(os.environ["TMPDIR"])], left.describe()


@pytest.mark.parametrize("pillow", [True, False], ids=["pillow", "no-pillow"])
def test_demo_round_trip_leaves_nothing(pillow: bool, tmp_path: Path) -> None:
    """``python -m qshm_compat demo`` exits 0, both sides agree on the picture, nothing is left."""
    env = dict(os.environ)
    argv = [sys.executable, "-m", "qshm_compat", "demo"]
    if not pillow:
        # A PIL package that cannot be imported: the default install has no Pillow.
        fake = tmp_path / "nopil" / "PIL"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("raise ImportError('no Pillow in this test')\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake.parent), env.get("PYTHONPATH")]))
        argv += ["--key", f"qshm demo {secrets.token_hex(4)}"]
    # With pillow: the example's own key.  TMPDIR is this run's own, so a real Qt example (whose
    # key file is in /tmp) is not disturbed.
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    report = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, report
    sums = CHECKSUM.findall(done.stdout)
    assert len(sums) == 2 and sums[0] == sums[1], report
    if pillow:
        assert "QSharedMemoryExample" in done.stdout and "pixels (RGBA) sha1" in done.stdout, report
        expected = hashlib.sha1(rgba(Image.open(PICTURE))).hexdigest()
    else:
        assert "PNG bytes sha1" in done.stdout and "no Pillow" in done.stdout, report
        expected = hashlib.sha1(PICTURE.read_bytes()).hexdigest()
    assert sums[0] == expected, report
    assert "128x96 RGBA" in done.stdout, report
    _assert_demo_left_nothing(done.stdout)


def test_demo_leaves_a_running_example_alone(peer_pool, key: str, picture: Path) -> None:
    """The demo refuses a key whose segment a Qt program holds, and leaves that image intact."""
    peer = peer_pool.get("cpp-qt5")
    peer.ok("key", key=key)
    peer.ok("image_put", path=str(picture))
    done = subprocess.run([sys.executable, "-m", "qshm_compat", "demo", "--key", key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done
    assert "exists already" in done.stderr, done
    assert rgba(read_image(key, timeout=5)) == rgba(make_image())
    peer.ok("destroy")  # its lock's key file goes with the object
    _assert_demo_left_nothing(done.stdout + done.stderr)


def test_qt_shows_the_demo_picture_while_it_holds(peer_pool, key: str) -> None:
    """While the demo holds its segment, every Qt stack's "Load Image From Shared Memory" gets it."""
    code = "import sys; from qshm_compat import demo; sys.exit(demo.run(sys.argv[1], hold=60))"
    proc = subprocess.Popen([sys.executable, "-c", code, key], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: List[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "holding the segment" in line:
                break
        assert lines and "holding the segment" in lines[-1], "".join(lines)
        expected = rgba(Image.open(PICTURE))
        for name in ALL_PEERS:
            peer = peer_pool.get(name)
            peer.ok("key", key=key)
            got = peer.ok("image_get")
            assert (got["width"], got["height"]) == (128, 96), (name, got)
            assert bytes.fromhex(got["rgba"]) == expected, name
        proc.send_signal(signal.SIGINT)  # ends the hold early
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    output = "".join(lines) + out
    assert proc.returncode == 0, f"{output}\nstderr:\n{err}"
    assert "interrupted" in output
    _assert_demo_left_nothing(output)
