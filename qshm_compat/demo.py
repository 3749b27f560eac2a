"""``python -m qshm_compat demo``: Qt's Shared Memory Example, played by two Python processes.

The parent does the example's "Load Image From File" with :func:`qshm_compat.write_image`: it
streams the picture shipped in ``qshm_compat/data/qt-example.png`` as a QImage into a segment of
exactly the stream's size under the example's key ``"QSharedMemoryExample"`` (a string key, as in
the Qt 5.15 and Qt 6.0-6.5 example).  A second Python process does "Load Image From Shared
Memory" with :func:`qshm_compat.read_image`.  Each side prints the native key, the sizes, the
image's size and mode and a checksum of its pixels (of the PNG bytes when Pillow is not
installed), and the parent checks that they agree.  With ``hold`` the parent keeps the segment for
that many seconds, so that a running Qt example can show the picture; then it lets go and checks
that no segment, semaphore or key file is left.

The Qt 6.8 example uses the native key ``QNativeIpcKey("QSharedMemoryExample")`` instead (POSIX
``/dev/shm/QSharedMemoryExample`` on Linux), which this demo does not touch: Qt never unlinks it,
so a demo that used it could not leave nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
from functools import partial
from typing import Any, Callable, List, Optional, Tuple

from . import __version__, posix, sysv
from .example import EXAMPLE_KEY, read_image, write_image
from .keys import QNativeIpcKey
from .semaphore import QSystemSemaphore
from .sharedmemory import QSharedMemory

TIMEOUT = 10.0
PICTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "qt-example.png")
_PNG_MODES = {(8, 0): "L", (8, 2): "RGB", (8, 3): "P", (8, 4): "LA", (8, 6): "RGBA", (16, 6): "RGBA;16B"}
_CHECKSUM = re.compile(r"sha1 ([0-9a-f]{40})")
_HINTS = (
    "To see it in Qt: start Qt's Shared Memory Example (examples/corelib/ipc/sharedmemory of Qt "
    "5.15 or Qt 6.0-6.5) with the same TMPDIR as this demo (the key files live in "
    "QDir::tempPath()), run `qshm demo --hold 60` and press \"Load Image From "
    "Shared Memory\" while the demo holds the segment.",
    "The Qt 6.8 example uses the native key QNativeIpcKey(\"QSharedMemoryExample\") instead "
    "(POSIX /dev/shm/QSharedMemoryExample on Linux): qshm_compat.write_image(QNativeIpcKey("
    "\"QSharedMemoryExample\"), image) and read_image(...) reach it.  Qt never unlinks that "
    "object; qshm_compat.posix.shm_unlink(\"QSharedMemoryExample\") does.",
)


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _describe(png: bytes) -> Tuple[str, str]:
    """``("128x96 RGBA", "pixels sha1 ...")``: with Pillow the decoded pixels, otherwise what the
    PNG header says and the PNG bytes."""
    Image = _pillow()
    if Image is not None:
        import io

        image = Image.open(io.BytesIO(png))
        image.load()
        rgba = image.convert("RGBA").tobytes()
        return (f"{image.width}x{image.height} {image.mode}",
                f"pixels (RGBA) sha1 {hashlib.sha1(rgba).hexdigest()}")
    width, height, depth, colour = struct.unpack_from(">IIBB", png, 16)  # the IHDR chunk
    mode = _PNG_MODES.get((depth, colour), f"depth {depth} colour type {colour}")
    return (f"{width}x{height} {mode} (PNG header; no Pillow to decode it)",
            f"PNG bytes sha1 {hashlib.sha1(png).hexdigest()}")


def _native_key(key: str) -> str:
    with QSharedMemory(key) as shm:
        return shm.nativeKey()


def _lock_key(key: str) -> QNativeIpcKey:
    return QSystemSemaphore.legacyNativeKey(key)


def child(key: Optional[str]) -> int:
    """The second process: "Load Image From Shared Memory"."""
    key = key or EXAMPLE_KEY
    me = f"child  (pid {os.getpid()})"
    try:
        png = read_image(key, decode=False, timeout=TIMEOUT)
    except OSError as exc:
        print(f"{me}: {exc}", file=sys.stderr)
        return 1
    if png is None:
        print(f"{me}: the segment holds a null image", file=sys.stderr)
        return 1
    shape, checksum = _describe(png)
    print(f"{me}: \"Load Image From Shared Memory\": attach {_native_key(key)}")
    print(f"{me}:   read-only, lock, in >> image ({4 + len(png)} bytes: qint32 1 + a {len(png)} byte PNG), unlock, detach")
    print(f"{me}:   {shape}, {checksum}")
    return 0


def _leftover_checks(shm: QSharedMemory, lock: QNativeIpcKey) -> List[Tuple[str, Callable[[], bool]]]:
    """(what, exists()) for every OS object behind ``shm``, taken while it is attached."""
    checks: List[Tuple[str, Callable[[], bool]]] = []
    for ipc_key, kind in ((shm.nativeIpcKey(), "segment"), (lock, "lock semaphore")):
        name = ipc_key.nativeKey()
        if ipc_key.type() == QNativeIpcKey.Type.PosixRealtime:  # a QT_POSIX_IPC-like setup
            if kind == "segment":
                checks.append((f"POSIX shared memory {name}", partial(posix.shm_exists, name)))
            else:  # Linux keeps named semaphores as /dev/shm/sem.NAME
                path = "/dev/shm/sem." + name.lstrip("/")
                checks.append((f"POSIX semaphore {name}", partial(os.path.exists, path)))
            continue
        checks.append((f"key file {name}", partial(os.path.exists, name)))
        try:
            unix_key = sysv.ftok(name)
        except OSError:
            continue
        get: Callable[[], int]
        if kind == "segment":
            get = partial(sysv.shm_get, unix_key, True, name)
        else:
            get = partial(sysv.sem_find, unix_key, name)
        checks.append((f"System V {kind} (key {unix_key:#x})", partial(_sysv_exists, get)))
    return checks


def _sysv_exists(get: Callable[[], int]) -> bool:
    try:
        get()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EIDRM):
            return False
        raise
    return True


def _already_there(key: str) -> bool:
    probe = QSharedMemory(key)
    try:
        if probe.attach(QSharedMemory.ReadOnly, timeout=TIMEOUT):
            probe.detach()
            return True
        return False
    finally:
        probe.close()


def run(key: Optional[str], hold: Optional[float] = None) -> int:
    """The parent: "Load Image From File", start the child, optionally hold, let go, check."""
    key = key or EXAMPLE_KEY
    me = f"parent (pid {os.getpid()})"
    with open(PICTURE, "rb") as f:
        png = f.read()
    shape, checksum = _describe(png)
    lock = _lock_key(key)
    print(f"Qt's Shared Memory Example, played by two Python processes (qshm_compat {__version__})")
    print(f"key:         {key!r}, a string key as in the Qt 5.15 / Qt 6.0-6.5 example")
    print(f"native key:  {_native_key(key)}")
    print(f"lock:        {lock.nativeKey()}")
    if _already_there(key):
        print(f"{me}: a segment for {key!r} exists already (a running Qt example that loaded an "
              "image?); not touching it: pass --key to use another key", file=sys.stderr)
        return 1
    try:
        shm = write_image(key, png, timeout=TIMEOUT)
    except OSError as exc:
        print(f"{me}: {exc}", file=sys.stderr)
        return 1
    checks = _leftover_checks(shm, lock)
    print(f"{me}: \"Load Image From File\": {os.path.basename(PICTURE)}, a {len(png)} byte PNG, {shape}")
    print(f"{me}:   out << image ({4 + len(png)} bytes), create({shm.size()}), lock, copy, unlock; "
          f"segment kept attached")
    print(f"{me}:   {checksum}")
    sys.stdout.flush()
    status = 0
    try:
        # The child imports this very copy of the package: "python -m qshm_compat" would put its
        # working directory first on sys.path, and in a clone's root that is the source tree.
        # Only the package is taken from here; everything else (Pillow...) the usual way.
        home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (f"import sys; sys.path.insert(0, {home!r}); import qshm_compat; del sys.path[0]; "
                "from qshm_compat.cli import main; raise SystemExit(main())")
        done = subprocess.run(
            [sys.executable, "-c", code, "demo", "--child", "--key", key],
            stdout=subprocess.PIPE, text=True, timeout=60,
        )
        sys.stdout.write(done.stdout)
        theirs = _CHECKSUM.findall(done.stdout)
        if done.returncode != 0:
            print(f"{me}: the child failed (exit {done.returncode})", file=sys.stderr)
            status = 1
        elif theirs != _CHECKSUM.findall(checksum):
            print(f"{me}: the child saw other pixels: {theirs}", file=sys.stderr)
            status = 1
        else:
            print("both sides agree: the same picture went through the segment, under Qt's lock")
        print()
        for paragraph in _HINTS:
            print(textwrap.fill(paragraph, 96))
        if hold and status == 0:
            try:  # a Ctrl-C that comes once the line is out lands in here
                print(f"{me}: holding the segment for {hold:g} s (Ctrl-C to stop early)")
                sys.stdout.flush()
                time.sleep(hold)
            except KeyboardInterrupt:
                print(f"{me}: interrupted")
    finally:
        shm.close()
    left = [what for what, exists in checks if exists()]
    if left:
        print(f"{me}: left behind: {', '.join(left)}", file=sys.stderr)
        return 1
    print(f"{me}: closed; the segment, its lock semaphore and both key files are gone")
    return status
