"""What every part of the QDataStream codec shares: versions, QMetaType ids, structs, errors, and
the one table of wire formats.

:mod:`qshm_compat.datastream` is the public face; this module and its ``_datastream_*`` siblings
are its parts.  Each family module (``_core``, ``_geometry``, ``_time``, ``_variant``, ``_image``)
defines its types' read and write functions side by side and registers them here with
:func:`register`, one :class:`Codec` row per wire format.  :data:`CODECS` (by name) is what the
:class:`~qshm_compat.datastream.Reader` and :class:`~qshm_compat.datastream.Writer` methods
``read_<name>`` / ``write_<name>`` are, and :data:`VARIANT_CODECS` (by Qt 6 QMetaType id) is what a
QVariant of that type holds.
"""

from __future__ import annotations

import codecs
import enum
import math
import struct
from typing import Any, Callable

from .exceptions import DataStreamError, TruncatedError

# --------------------------------------------------------------------------------------------
# Stream versions (QDataStream::Version).  Several Qt releases share a number.

Qt_5_0 = 13
Qt_5_1 = 14
Qt_5_2 = Qt_5_3 = 15
Qt_5_4 = Qt_5_5 = 16
Qt_5_6 = Qt_5_7 = Qt_5_8 = Qt_5_9 = Qt_5_10 = Qt_5_11 = 17
Qt_5_12 = 18
Qt_5_13 = Qt_5_14 = Qt_5_15 = 19
Qt_6_0 = Qt_6_1 = Qt_6_2 = Qt_6_3 = Qt_6_4 = Qt_6_5 = 20
Qt_6_6 = 21
Qt_6_7 = Qt_6_8 = Qt_6_9 = 22
Qt_6_10 = 23
Qt_6_11 = Qt_6_12 = 24

MIN_VERSION = Qt_5_0
MAX_VERSION = Qt_6_11
#: The version of the newest Qt known.  A reader must use the version the *writer* used, which is
#: that Qt's default unless the program called setVersion(): 19 for Qt 5.13-5.15, 20 for 6.0-6.5...
DEFAULT_VERSION = Qt_6_11
#: How deeply variants and containers may nest before the reader calls the input corrupt.
DEFAULT_MAX_DEPTH = 64

_NULL_SIZE = 0xFFFFFFFF      # QDataStream::NullCode
_EXTENDED_SIZE = 0xFFFFFFFE  # QDataStream::ExtendedSize (64-bit size follows from Qt_6_7)


class TypeId(enum.IntEnum):
    """QMetaType ids as Qt 6 numbers them; Qt 5 streams are mapped to these on read."""

    Invalid = 0
    Bool = 1
    Int = 2
    UInt = 3
    LongLong = 4
    ULongLong = 5
    Double = 6
    QChar = 7
    QVariantMap = 8
    QVariantList = 9
    QString = 10
    QStringList = 11
    QByteArray = 12
    QBitArray = 13
    QDate = 14
    QTime = 15
    QDateTime = 16
    QUrl = 17
    QLocale = 18
    QRect = 19
    QRectF = 20
    QSize = 21
    QSizeF = 22
    QLine = 23
    QLineF = 24
    QPoint = 25
    QPointF = 26
    QVariantHash = 28
    QEasingCurve = 29
    QUuid = 30
    Long = 32
    Short = 33
    Char = 34
    ULong = 35
    UShort = 36
    UChar = 37
    Float = 38
    SChar = 40
    QRegularExpression = 44
    QJsonValue = 45
    QJsonObject = 46
    QJsonArray = 47
    QJsonDocument = 48
    QByteArrayList = 49
    Nullptr = 51
    QCborValue = 53
    QCborArray = 54
    QCborMap = 55
    Char16 = 56
    Char32 = 57
    QFont = 0x1000
    QPixmap = 0x1001
    QBrush = 0x1002
    QColor = 0x1003
    QPalette = 0x1004
    QIcon = 0x1005
    QImage = 0x1006
    QPolygon = 0x1007
    QRegion = 0x1008
    QBitmap = 0x1009
    QCursor = 0x100A
    QKeySequence = 0x100B
    QPen = 0x100C
    QTransform = 0x1010
    QSizePolicy = 0x2000
    User = 65536


# --------------------------------------------------------------------------------------------
# The one table: a row per wire format, registered by the module that implements it.


class Codec:
    """One wire format: its read and write functions and the QVariant type ids that use it.

    ``name`` is the method suffix (``Reader.read_<name>``, ``Writer.write_<name>``), or ``None``
    for a format only a QVariant holds.  ``read`` takes the reader (and ``unwrap=`` when
    ``unwraps``, for the QVariant containers); ``write`` takes the writer and the value.
    (A plain class: a NamedTuple would add a sixth of a millisecond to the import.)
    """

    __slots__ = ("name", "type_ids", "read", "write", "unwraps")

    def __init__(self, name: str | None, type_ids: tuple[int, ...], read: Callable[..., Any],
                 write: Callable[..., None], unwraps: bool = False) -> None:
        self.name = name
        self.type_ids = type_ids
        self.read = read
        self.write = write
        self.unwraps = unwraps

    def __repr__(self) -> str:
        return f"Codec({self.name!r}, {self.type_ids!r}, {self.read.__qualname__}, " \
               f"{self.write.__qualname__})"


#: Every named format, by name: what the Reader's and Writer's type methods are.
CODECS: dict[str, Codec] = {}
#: The format of each QVariant type id (Qt 6 numbering) the codec reads and writes.
VARIANT_CODECS: dict[int, Codec] = {}
# The same rows as plain functions by type id, for the QVariant loops: readers taking the reader,
# readers also taking ``unwrap`` (the QVariant containers), writers.
VARIANT_READERS: dict[int, Callable[..., Any]] = {}
VARIANT_CONTAINER_READERS: dict[int, Callable[..., Any]] = {}
VARIANT_WRITERS: dict[int, Callable[..., None]] = {}


def register(*rows: Codec) -> None:
    """Add rows to the table (each name and type id at most once)."""
    for row in rows:
        if row.name is not None:
            if row.name in CODECS:
                raise RuntimeError(f"datastream: two codecs named {row.name!r}")
            CODECS[row.name] = row
        for tid in row.type_ids:
            if tid in VARIANT_CODECS:
                raise RuntimeError(f"datastream: two codecs for type id {tid}")
            VARIANT_CODECS[tid] = row
            (VARIANT_CONTAINER_READERS if row.unwraps else VARIANT_READERS)[tid] = row.read
            VARIANT_WRITERS[tid] = row.write


# --------------------------------------------------------------------------------------------
# Precompiled structs, one set per byte order, and the errors.


class _Structs:
    def __init__(self, byteorder: str) -> None:
        p = ">" if byteorder == "big" else "<"
        S = struct.Struct
        self.i8, self.u8 = S(p + "b"), S(p + "B")
        self.i16, self.u16 = S(p + "h"), S(p + "H")
        self.i32, self.u32 = S(p + "i"), S(p + "I")
        self.i64, self.u64 = S(p + "q"), S(p + "Q")
        self.f32, self.f64 = S(p + "f"), S(p + "d")
        self.i32x2, self.i32x4 = S(p + "ii"), S(p + "iiii")
        self.f32x2, self.f32x4 = S(p + "ff"), S(p + "ffff")
        self.f64x2, self.f64x4 = S(p + "dd"), S(p + "dddd")
        self.variant_head = S(p + "IB")      # type id, isNull
        self.color = S(p + "bHHHHH")         # spec, alpha, c1, c2, c3, pad
        self.datetime_head = S(p + "qIb")    # Julian day, msecs, time spec
        head = self.variant_head.pack
        self.head_string, self.head_int, self.head_double = head(10, 0), head(2, 0), head(6, 0)
        self.head_map, self.head_list = head(8, 0), head(9, 0)
        self.head_true, self.head_false = head(1, 0) + b"\x01", head(1, 0) + b"\x00"
        self.decode = codecs.utf_16_be_decode if p == ">" else codecs.utf_16_le_decode
        self.encode = codecs.utf_16_be_encode if p == ">" else codecs.utf_16_le_encode
        # A QString's length in the stream byte order, as two UTF-16 code units, for the
        # one-shot QStringList encoder.
        self.len_hi_first = p == ">"


_STRUCTS = {"big": _Structs("big"), "little": _Structs("little")}
_F32 = struct.Struct("<f")


def _round_f32(value: float) -> float:
    """What a C++ float holds after ``float f = value``: overflow gives infinity, not an error."""
    try:
        return float(_F32.unpack(_F32.pack(value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _check_options(version: int, byteorder: str, precision: str) -> _Structs:
    if not isinstance(version, int) or not MIN_VERSION <= version <= MAX_VERSION:
        raise ValueError(f"stream version {version!r} is outside {MIN_VERSION}..{MAX_VERSION}")
    if precision not in ("double", "single"):
        raise ValueError("floating_point_precision must be 'double' or 'single', "
                         f"not {precision!r}")
    try:
        return _STRUCTS[byteorder]
    except KeyError:
        raise ValueError(f"byteorder must be 'big' or 'little', not {byteorder!r}") from None


def _truncated(what: str, pos: int, need: int, left: int) -> TruncatedError:
    return TruncatedError(f"{what} at offset {pos}: needs {need} bytes, {max(left, 0)} left")


def _corrupt(what: str, pos: int, why: str) -> DataStreamError:
    return DataStreamError(f"{what} at offset {pos}: {why}")


def _as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} needs a number, not {type(value).__name__}") from None


def _bad_value(what: str, value: Any, exc: BaseException) -> Exception:
    values = value if isinstance(value, tuple) else (value,)
    if all(isinstance(v, (int, float)) for v in values):
        return DataStreamError(f"{what}: {value!r} is out of range ({exc})")
    return TypeError(f"{what}: cannot write {value!r} ({exc})")
