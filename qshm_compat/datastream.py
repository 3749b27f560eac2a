"""QDataStream, read and written byte for byte as Qt does, in pure Python and without I/O.

Qt programs put values into shared memory with ``QDataStream``; this module reads and writes those
bytes so that a non-Qt process can take part.  It is sans-IO: a :class:`Reader` walks a ``bytes``
or ``memoryview`` (a shared-memory segment, say) and a :class:`Writer` builds a ``bytes`` value.
Each Qt type has one ``read_<type>()`` / ``write_<type>(value)`` pair, and every stream version
from Qt 5.0 (13) to Qt 6.11 (24) is supported, with both byte orders and both floating point
precisions.

Facts were taken from the project's spec (``qt-ipc.md`` section 9) and checked by running real Qt
through PyQt5 5.15.11 (Qt 5.15.19), PyQt6 6.11.0 (Qt 6.11.2) and PySide6 6.12.0; the golden vectors
in ``tests/data/datastream_vectors.json`` are the record.  The Qt files behind each format are
``src/corelib/serialization/qdatastream.cpp``, ``kernel/qvariant.cpp``, ``text/qstring.cpp``,
``text/qbytearray.cpp``, ``time/qdatetime.cpp``, ``time/qtimezone.cpp``, ``gui/painting/qcolor.cpp``
and ``gui/image/qimage.cpp``.  No Qt code was copied.

Python types used for Qt values (``None`` is always Qt's *null*):

================  ===============================================================================
Qt                Python
================  ===============================================================================
qint8 ... quint64 ``int`` (range-checked on write)
bool              ``bool`` (any non-zero byte reads as ``True``, as in Qt)
float, double     ``float``; ``float`` values are rounded to single precision, as a C++ float is
QByteArray        ``bytes`` (``None`` = null, ``b""`` = empty); ``memoryview`` with ``copy=False``
QString           ``str`` (``None`` = null, ``""`` = empty); lone surrogates survive
QChar             a one-character ``str``
QStringList       ``list[str | None]``
QList/QMap/QHash  ``list`` / ``dict`` built by the element readers you pass
QVariant          :class:`QVariant` (Qt 6 type id + value: lossless), or with ``unwrap=True`` the
                  plain value; QVariantList/Map/Hash read as plain values unless ``unwrap=False``
QPoint ... QRectF :class:`QPoint`, :class:`QPointF`, :class:`QSize`, :class:`QSizeF`,
                  :class:`QRect`, :class:`QRectF`, :class:`QLine`, :class:`QLineF`
QColor            :class:`QColor` (the raw spec and 16-bit fields, so every spec round-trips)
QDate             ``datetime.date`` (``None`` = null)
QTime             ``datetime.time`` (``None`` = null or invalid); milliseconds only
QDateTime         ``datetime.datetime`` (``None`` = null or invalid): naive = ``Qt::LocalTime``,
                  ``timezone.utc`` = ``Qt::UTC``, any other ``datetime.timezone`` =
                  ``Qt::OffsetFromUTC``, ``zoneinfo.ZoneInfo`` or :class:`QtOffsetZone` =
                  ``Qt::TimeZone``
QUuid             ``uuid.UUID``
QUrl              ``str``: the encoded form, as ``QUrl::toEncoded()`` gives it (``""`` = empty)
QBitArray         ``list[bool]``
QImage, QPixmap   ``PIL.Image.Image`` (or the PNG ``bytes``; see :meth:`Reader.read_qimage`)
================  ===============================================================================

Errors: a stream that ends too early raises :class:`~qshm_compat.exceptions.TruncatedError`, a
corrupt one :class:`~qshm_compat.exceptions.DataStreamError`; both messages name the Qt type and
the offset.  A length is always checked against the bytes left before anything is sliced, loops
are bounded by the input size and nesting by ``max_depth``.  After an exception the reader's
position is unspecified: save ``pos`` first if you want to retry.

The codec is split by family, each type's read and write side by side: ``_datastream_core``
(integers, strings, byte arrays, containers, QUuid, QUrl), ``_datastream_geometry`` (QPoint ...
QColor), ``_datastream_time`` (QDate, QTime, QTimeZone, QDateTime), ``_datastream_variant``
(QVariant) and ``_datastream_image`` (QImage, PNG).  Each registers its types in one table
(``_datastream_base.CODECS`` by name, ``VARIANT_CODECS`` by QMetaType id); ``_datastream_stream``
makes the table's rows the methods of :class:`Reader` and :class:`Writer`.  This module is the
public face: import everything from here.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ._datastream_base import (
    DEFAULT_MAX_DEPTH, DEFAULT_VERSION, MAX_VERSION, MIN_VERSION, Qt_5_0, Qt_5_1, Qt_5_2, Qt_5_3,
    Qt_5_4, Qt_5_5, Qt_5_6, Qt_5_7, Qt_5_8, Qt_5_9, Qt_5_10, Qt_5_11, Qt_5_12, Qt_5_13, Qt_5_14,
    Qt_5_15, Qt_6_0, Qt_6_1, Qt_6_2, Qt_6_3, Qt_6_4, Qt_6_5, Qt_6_6, Qt_6_7, Qt_6_8, Qt_6_9,
    Qt_6_10, Qt_6_11, Qt_6_12, TypeId,
)
from ._datastream_geometry import (
    ColorSpec, QColor, QLine, QLineF, QPoint, QPointF, QRect, QRectF, QSize, QSizeF,
)
from ._datastream_image import _decode_png as _decode_png_with
from ._datastream_image import _pillow_available as _pillow_available  # a switch, see below
from ._datastream_stream import Reader, Writer
from ._datastream_time import QtOffsetZone
from ._datastream_variant import QVariant, unwrap
from .exceptions import DataStreamError, TruncatedError


# The C inner loops (qshm_compat._codec, built with the package) decode the regular cases of the
# hottest loops and hand everything else to the pure-Python code (the _datastream_* modules), the
# specification.  QSHM_PLAIN=1 in the environment (read once, here) selects the pure code alone.
# Without the compiled helper the pure code is used too; an installed copy always has it
# (tests/test_datastream_paths.py checks), so its absence there is a packaging bug.
def _load_codec() -> Any:
    if os.environ.get("QSHM_PLAIN", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("qshm_compat._codec")
    except ImportError:  # pragma: no cover - a source tree that was never built
        return None


# The switches, looked up here when they are needed (_C by each new Reader and Writer,
# _pillow_available by read_qimage), so that a test can flip them: _C = None is the pure path,
# _pillow_available = lambda: False a machine without Pillow.
_C: Any = _load_codec()
#: ``"c"`` when the C inner loops are in use, ``"python"`` for the pure codec alone.
BACKEND = "python" if _C is None else "c"

__all__ = [
    "Qt_5_0", "Qt_5_1", "Qt_5_2", "Qt_5_3", "Qt_5_4", "Qt_5_5", "Qt_5_6", "Qt_5_7", "Qt_5_8",
    "Qt_5_9", "Qt_5_10", "Qt_5_11", "Qt_5_12", "Qt_5_13", "Qt_5_14", "Qt_5_15", "Qt_6_0",
    "Qt_6_1", "Qt_6_2", "Qt_6_3", "Qt_6_4", "Qt_6_5", "Qt_6_6", "Qt_6_7", "Qt_6_8", "Qt_6_9",
    "Qt_6_10", "Qt_6_11", "Qt_6_12", "DEFAULT_VERSION", "MIN_VERSION", "MAX_VERSION",
    "DEFAULT_MAX_DEPTH", "TypeId", "ColorSpec", "QPoint", "QPointF", "QSize", "QSizeF", "QRect",
    "QRectF", "QLine", "QLineF", "QColor", "QtOffsetZone", "QVariant", "Reader", "Writer",
    "encode_image", "decode_image", "unwrap", "DataStreamError", "TruncatedError", "BACKEND",
]


def _decode_png(png: bytes, what: str, pos: int) -> Any:
    """The PNG file ``png`` decoded as a QImage read does, with the codec switch as it is now."""
    return _decode_png_with(png, what, pos, _C)


# --------------------------------------------------------------------------------------------
# The Shared Memory Example's segment


def encode_image(image: Any, version: int = DEFAULT_VERSION) -> bytes:
    """The bytes the Shared Memory Example puts in its segment: ``out << image``.

    That is ``qint32 1`` and a PNG file (``qint32 0`` for ``None``), big-endian, with no header.
    """
    w = Writer(version)
    w.write_qimage(image)
    return w.getvalue()


def decode_image(data: bytes | bytearray | memoryview, version: int = DEFAULT_VERSION, *,
                 decode: bool | None = None) -> Any:
    """What the Shared Memory Example reads from its segment: ``in >> image``.

    Bytes after the PNG (the segment's padding) are ignored.  Returns ``None`` for a null image;
    ``decode`` is as in :meth:`Reader.read_qimage`.
    """
    return Reader(data, version).read_qimage(decode=decode)


# The public classes and functions say they are this module's (reprs, pickles and help() stay
# what they were before the codec was split into its family modules).
for _name in __all__:
    _obj = globals()[_name]
    if callable(_obj) and getattr(_obj, "__module__", "").startswith("qshm_compat._datastream"):
        _obj.__module__ = __name__
del _name, _obj
