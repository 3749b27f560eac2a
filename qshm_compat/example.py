"""Qt's Shared Memory Example, both buttons, for a process without Qt.

The example (``examples/corelib/ipc/sharedmemory/dialog.cpp``, spec §10) has two buttons.
"Load Image From File" streams a QImage into a QBuffer with a default-version QDataStream,
``create()``s a segment of exactly the buffer's size, locks it, copies the bytes and unlocks,
and keeps the segment attached so that it lives on.  "Load Image From Shared Memory" attaches,
locks, reads the image back with ``in >> image``, unlocks and detaches.  :func:`write_image` and
:func:`read_image` do the same, under the same names and the same lock, so a Qt example on the
other side of the segment sees one of its own.  The segment holds nothing but the stream:
``qint32 1`` and a PNG file (spec §9.9).

Which example a key reaches:

* a string key, ``"QSharedMemoryExample"``: the Qt 5.15 and Qt 6.0-6.5 example (a legacy key;
  on Linux a System V segment named by a key file in ``QDir::tempPath()``, so both sides need the
  same ``TMPDIR``);
* ``QNativeIpcKey("QSharedMemoryExample")``: the Qt 6.8 example (checked in 6.8.2 and 6.11.2; 6.6
  and 6.7 were not read), a POSIX object ``/dev/shm/QSharedMemoryExample`` on Linux.  Qt never
  unlinks POSIX shared memory, so the object outlives both programs; remove it with
  ``qshm_compat.posix.shm_unlink("QSharedMemoryExample")``.

Where we differ from the example, on purpose:

* every wait (the lock, create's and attach's internal lock) has a timeout;
* when ``create()`` fails with AlreadyExists, :func:`write_image` falls back to ``attach()`` as
  the 6.8 example does (the 5.15 example gives up); if that segment is smaller than the stream,
  we raise instead of copying a truncated image as Qt's ``memcpy(min(size(), bufsize))`` would;
* failures raise :class:`~qshm_compat.exceptions.IpcError` (or ``LockTimeoutError``) with Qt's
  ``errorString()`` instead of showing it in a label.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple, Union

from . import datastream
from .exceptions import IpcError
from .keys import QNativeIpcKey
from .sharedmemory import QSharedMemory

__all__ = ["write_image", "read_image", "EXAMPLE_KEY", "DEFAULT_TIMEOUT"]

#: The key of Qt's Shared Memory Example: a string key in Qt 5 / Qt <= 6.5, and the native key
#: ``QNativeIpcKey(EXAMPLE_KEY)`` in the Qt >= 6.8 example.
EXAMPLE_KEY = "QSharedMemoryExample"
#: Seconds to wait for the lock (Qt waits for ever).
DEFAULT_TIMEOUT = 10.0

Key = Union[str, QNativeIpcKey]
QtVersionArg = Union[str, Tuple[int, ...], None]


def _image_payload(image: Any, version: int) -> bytes:
    """``out << image`` for a PIL image, PNG bytes, or the path of an image file."""
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            raw = f.read()
        if raw.startswith(b"\x89PNG\r\n\x1a\n"):
            image = raw
        else:  # like QImage(path), read any format; PNG is the only one we can without Pillow
            from PIL import Image

            image = Image.open(os.fspath(image))
            image.load()
    return datastream.encode_image(image, version)


def _fail(shm: QSharedMemory, what: str) -> IpcError:
    error = IpcError(f"{what} {shm.nativeKey()!r}: {shm.errorString()} ({shm.error().name})")
    shm.close()
    return error


def write_image(
    key: Key,
    image: Any,
    *,
    version: Optional[int] = None,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    qt_version: QtVersionArg = None,
) -> QSharedMemory:
    """The example's "Load Image From File": put ``image`` in the segment of ``key``.

    ``image`` is a ``PIL.Image.Image``, the bytes of a PNG file (written unchanged; no Pillow
    needed) or the path of an image file.  ``version`` is the QDataStream version (default
    :data:`qshm_compat.datastream.DEFAULT_VERSION`; a QImage streams the same from Qt 5.0 on).
    The segment is created with exactly the stream's size, or, when it already exists, attached
    as the Qt 6.8 example does; then locked, written and unlocked.

    Returns the attached ``QSharedMemory``.  It keeps the segment alive while it lives: keep a
    reference for as long as readers should find the image, then ``close()`` it (on System V the
    last process to let go removes the segment and its key files).
    """
    payload = _image_payload(image, datastream.DEFAULT_VERSION if version is None else version)
    shm = QSharedMemory(key, qt_version=qt_version)
    if not shm.create(len(payload), timeout=timeout):
        if shm.error() != QSharedMemory.AlreadyExists or not shm.attach(timeout=timeout):
            raise _fail(shm, "write_image: cannot create or attach to")
    try:
        if shm.size() < len(payload):
            raise IpcError(
                f"write_image: the existing segment {shm.nativeKey()!r} has {shm.size()} bytes; "
                f"the image needs {len(payload)}"
            )
        with shm.locked(timeout):
            data = shm.data()
            assert data is not None
            data[: len(payload)] = payload
    except BaseException:
        shm.close()
        raise
    return shm


def read_image(
    key: Key,
    *,
    decode: Optional[bool] = None,
    timeout: Optional[float] = DEFAULT_TIMEOUT,
    qt_version: QtVersionArg = None,
) -> Any:
    """The example's "Load Image From Shared Memory": the image in the segment of ``key``.

    Attaches read-only, locks, reads ``in >> image``, unlocks and detaches.  Returns a loaded
    ``PIL.Image.Image``, or the PNG ``bytes`` with ``decode=False`` (and by default when Pillow is
    not installed), or ``None`` for a null image.  Raises ``IpcError`` when there is no segment
    (Qt's "Unable to attach to shared memory segment"), ``DataStreamError`` when it does not hold
    a streamed QImage.
    """
    shm = QSharedMemory(key, qt_version=qt_version)
    if not shm.attach(QSharedMemory.ReadOnly, timeout=timeout):
        raise _fail(shm, "read_image: cannot attach to")
    try:
        with shm.locked(timeout):
            data = shm.constData()
            assert data is not None
            # The PNG is copied out of the segment before it is decoded.
            image = datastream.Reader(data).read_qimage(decode=decode)
            del data
        shm.detach(timeout=timeout)
    finally:
        shm.close()
    return image
