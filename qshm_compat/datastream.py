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
"""

from __future__ import annotations

import codecs
import datetime as _dt
import enum
import importlib
import io
import math
import os
import struct
import uuid
import zlib
import zoneinfo
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, TypeVar
from urllib.parse import quote as _url_quote

from .exceptions import DataStreamError, TruncatedError

# The C inner loops (qshm_compat._codec, built with the package) decode the regular cases of the
# hottest loops and hand everything else to the pure-Python code below, which is the
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
_NULL_JD = -(1 << 63)        # QDate::nullJd()
_NULL_TIME = 0xFFFFFFFF      # QTime's null msecs
_MS_PER_DAY = 86_400_000
_JD_OF_ORDINAL_0 = 1_721_425  # Julian day of date.fromordinal(1) is 1_721_426
_MIN_JD = _JD_OF_ORDINAL_0 + 1
_MAX_JD = _JD_OF_ORDINAL_0 + _dt.date.max.toordinal()
_INVALID_ZONE_ID = "-No Time Zone Specified!"  # what Qt writes for an invalid QTimeZone
_OFFSET_ZONE_TAG = "OffsetFromUtc"             # what Qt writes before a UTC-offset QTimeZone


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


# Qt 5 numbered GUI types from 64 (QFont) to 87 (QColorSpace), widgets' QSizePolicy 121 and user
# types from 1024; Qt 6 moved them to 0x1000.., 0x2000 and 65536.  QVariant::save/load map the ids
# when the stream version is below Qt_6_0, whichever Qt writes.
_QT5_FIRST_GUI, _QT5_LAST_GUI, _QT6_FIRST_GUI = 64, 87, 0x1000
_QT5_USER, _QT5_SIZE_POLICY = 1024, 121
# Core types Qt 5 lacks: Qt 6 writes them below Qt_6_0 as user types carrying these names.
_NEWER_CORE_NAMES = {TypeId.Char16: "char16_t", TypeId.Char32: "char32_t"}
_NAMED_BUILTINS = {name: int(tid) for tid, name in _NEWER_CORE_NAMES.items()}


def _type_name(type_id: int) -> str:
    try:
        return TypeId(type_id).name
    except ValueError:
        return "user type" if type_id >= TypeId.User else f"type {type_id}"


# --------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True)
class QPoint:
    """QPoint: two qint32."""

    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class QPointF:
    """QPointF: two doubles."""

    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class QSize:
    """QSize: two qint32 (Qt's invalid size is -1 x -1)."""

    width: int = -1
    height: int = -1


@dataclass(frozen=True)
class QSizeF:
    """QSizeF: two doubles."""

    width: float = -1.0
    height: float = -1.0


@dataclass(frozen=True)
class QRect:
    """QRect(x, y, width, height); the stream holds left, top, right, bottom (right = x + w - 1)."""

    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class QRectF:
    """QRectF(x, y, width, height): four doubles, in that order."""

    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass(frozen=True)
class QLine:
    """QLine: four qint32, x1 y1 x2 y2."""

    x1: int = 0
    y1: int = 0
    x2: int = 0
    y2: int = 0


@dataclass(frozen=True)
class QLineF:
    """QLineF: four doubles, x1 y1 x2 y2."""

    x1: float = 0.0
    y1: float = 0.0
    x2: float = 0.0
    y2: float = 0.0


class ColorSpec(enum.IntEnum):
    """QColor::Spec."""

    Invalid = 0
    Rgb = 1
    Hsv = 2
    Cmyk = 3
    Hsl = 4
    ExtendedRgb = 5


@dataclass(frozen=True)
class QColor:
    """QColor as it is streamed: ``qint8 spec`` and five ``quint16`` fields.

    The fields are kept raw so every spec round-trips.  For ``Rgb`` they are alpha, red, green,
    blue, 0, each an 8-bit value times 0x101; ``Hsv``/``Hsl`` keep the hue in centi-degrees;
    ``Cmyk`` uses ``c4`` for black; ``ExtendedRgb`` holds half floats.  Use :meth:`from_rgb` and
    :meth:`rgba` for the common case.
    """

    spec: int = ColorSpec.Invalid
    alpha: int = 0xFFFF
    c1: int = 0
    c2: int = 0
    c3: int = 0
    c4: int = 0

    @classmethod
    def from_rgb(cls, r: int, g: int, b: int, a: int = 255) -> QColor:
        """The same as ``QColor(r, g, b, a)`` with 8-bit channels."""
        _check_8bit(r, g, b, a)
        return cls(ColorSpec.Rgb, a * 0x101, r * 0x101, g * 0x101, b * 0x101, 0)

    @classmethod
    def from_hsv(cls, h: int, s: int, v: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromHsv(h, s, v, a)``: hue in degrees (-1 = achromatic)."""
        return cls(ColorSpec.Hsv, *_hue_fields(h, s, v, a))

    @classmethod
    def from_hsl(cls, h: int, s: int, lightness: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromHsl(h, s, l, a)``: hue in degrees (-1 = achromatic)."""
        return cls(ColorSpec.Hsl, *_hue_fields(h, s, lightness, a))

    @classmethod
    def from_cmyk(cls, c: int, m: int, y: int, k: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromCmyk(c, m, y, k, a)`` with 8-bit components."""
        _check_8bit(c, m, y, k, a)
        return cls(ColorSpec.Cmyk, a * 0x101, c * 0x101, m * 0x101, y * 0x101, k * 0x101)

    @classmethod
    def invalid(cls) -> QColor:
        """The same as ``QColor()``: Qt streams it as spec 0, alpha 0xFFFF and zeros."""
        return cls()

    def is_valid(self) -> bool:
        """QColor::isValid()."""
        return self.spec != ColorSpec.Invalid

    def rgba(self) -> tuple[int, int, int, int]:
        """(red, green, blue, alpha) in 8 bits; only for the Rgb spec."""
        if self.spec != ColorSpec.Rgb:
            raise ValueError(f"rgba() needs an Rgb colour, this one has spec {self.spec}")
        return (_div257(self.c1), _div257(self.c2), _div257(self.c3), _div257(self.alpha))


def _div257(v: int) -> int:
    return (v + 128) // 257


def _check_8bit(*values: int) -> None:
    for v in values:
        if not 0 <= v <= 255:
            raise ValueError(f"colour component {v} is outside 0..255")


def _hue_fields(h: int, s: int, v: int, a: int) -> tuple[int, int, int, int, int]:
    _check_8bit(s, v, a)
    if h < -1:
        raise ValueError(f"hue {h} is below -1")
    # Qt stores the hue in centi-degrees, and an achromatic hue (-1) as 0xFFFF.
    hue = 0xFFFF if h == -1 else (h % 360) * 100
    return (a * 0x101, hue, s * 0x101, v * 0x101, 0)


class QtOffsetZone(_dt.tzinfo):
    """A QTimeZone made from a fixed UTC offset, as Qt 6 streams it (also ``QTimeZone::utc()``).

    Qt writes such a zone as the string ``"OffsetFromUtc"`` followed by its id, offset, name,
    abbreviation, territory and comment; this tzinfo keeps all of them so the bytes round-trip.
    """

    __slots__ = ("id", "offset", "name", "abbreviation", "territory", "comment")

    def __init__(self, id: str, offset: int, name: str | None = None,
                 abbreviation: str | None = None, territory: int = 0,
                 comment: str | None = None) -> None:
        if not -86400 < offset < 86400:
            raise ValueError(f"UTC offset {offset} s is outside a day")
        self.id = id
        self.offset = offset
        self.name = name
        self.abbreviation = abbreviation
        self.territory = territory
        self.comment = comment

    def _key(self) -> tuple[Any, ...]:
        return (self.id, self.offset, self.name, self.abbreviation, self.territory, self.comment)

    def utcoffset(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return _dt.timedelta(seconds=self.offset)

    def dst(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return _dt.timedelta(0)

    def tzname(self, dt: _dt.datetime | None) -> str:
        return self.abbreviation or self.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QtOffsetZone) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "QtOffsetZone(" + ", ".join(repr(v) for v in self._key()) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        return (QtOffsetZone, self._key())


@dataclass
class QVariant:
    """A QVariant: Qt 6 type id, value, and for user types the registered type name.

    ``type_id`` uses Qt 6's numbering (:class:`TypeId`) whatever the stream version, so a QColor is
    always ``0x1003`` and a user type ``65536``.  ``is_null`` is the flag Qt streams (set by
    ``QVariant(QMetaType)``, not by a null value).  Containers hold QVariants (or plain values when
    you build them), so a tree read from a stream writes back to the same bytes.  The value of an
    unregistered user type is its raw payload ``bytes``.
    """

    type_id: int
    value: Any = None
    type_name: str | None = None
    is_null: bool = False

    @classmethod
    def of(cls, value: Any) -> QVariant:
        """Wrap a plain Python value in the QVariant type Qt would give it (see :func:`unwrap`)."""
        if isinstance(value, QVariant):
            return value
        return cls(_infer_type_id(value), value)

    @classmethod
    def user(cls, type_name: str, payload: bytes) -> QVariant:
        """A user-type QVariant whose payload is written verbatim."""
        return cls(TypeId.User, payload, type_name)

    @classmethod
    def invalid(cls) -> QVariant:
        """QVariant(): streamed as id 0 and isNull 1."""
        return cls(TypeId.Invalid, None, None, True)

    def is_valid(self) -> bool:
        """QVariant::isValid()."""
        return self.type_id != TypeId.Invalid


def unwrap(value: Any) -> Any:
    """Turn a QVariant tree into plain Python values (an invalid QVariant becomes ``None``).

    User-type QVariants are kept as they are, since their name is all that says what they are.
    """
    if isinstance(value, QVariant):
        if value.type_id >= TypeId.User:
            return value
        value = value.value
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

_SIMPLE_TYPE_IDS: dict[type, int] = {
    bool: TypeId.Bool, float: TypeId.Double, str: TypeId.QString, bytes: TypeId.QByteArray,
    bytearray: TypeId.QByteArray, memoryview: TypeId.QByteArray, list: TypeId.QVariantList,
    tuple: TypeId.QVariantList, dict: TypeId.QVariantMap, _dt.datetime: TypeId.QDateTime,
    _dt.date: TypeId.QDate, _dt.time: TypeId.QTime, uuid.UUID: TypeId.QUuid,
    QPoint: TypeId.QPoint, QPointF: TypeId.QPointF, QSize: TypeId.QSize,
    QSizeF: TypeId.QSizeF, QRect: TypeId.QRect, QRectF: TypeId.QRectF, QLine: TypeId.QLine,
    QLineF: TypeId.QLineF, QColor: TypeId.QColor, type(None): TypeId.Invalid,
}


def _int_type_id(value: int) -> int:
    if _INT32_MIN <= value <= _INT32_MAX:
        return TypeId.Int
    if _INT64_MIN <= value <= _INT64_MAX:
        return TypeId.LongLong
    if 0 <= value <= _UINT64_MAX:
        return TypeId.ULongLong
    raise DataStreamError(f"QVariant: integer {value} does not fit in 64 bits")


def _infer_type_id(value: Any) -> int:
    tid = _SIMPLE_TYPE_IDS.get(type(value))
    if tid is not None:
        return tid
    if isinstance(value, bool):
        return TypeId.Bool
    if isinstance(value, int):
        return _int_type_id(value)
    for cls in type(value).__mro__:
        tid = _SIMPLE_TYPE_IDS.get(cls)
        if tid is not None:
            return tid
    if _is_pil_image(value):
        return TypeId.QImage
    raise TypeError(f"QVariant: no Qt type for a Python {type(value).__name__}")


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save")


# --------------------------------------------------------------------------------------------
# Precompiled structs, one set per byte order.


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
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHUNK_HEAD = struct.Struct(">I4s")   # PNG is big-endian whatever the stream's byte order
_PNG_U32 = struct.Struct(">I")


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


def _png_end(buf: Any, start: int, size: int, what: str) -> int:
    """Offset just past the IEND chunk of the PNG file at ``start``, found by walking its chunks.

    Qt reads the image with libpng, which stops after IEND and its CRC, so nothing else (no length
    prefix exists) says where the PNG ends.  Critical chunks must have a correct CRC, as libpng
    demands by default.
    """
    if size - start < 8:
        raise _truncated(what, start, 8, size - start)
    if bytes(buf[start:start + 8]) != _PNG_SIGNATURE:
        raise _corrupt(what, start, "the image is not a PNG file (bad signature)")
    mv = memoryview(buf)
    pos = start + 8
    first = True
    while True:
        if size - pos < 12:
            raise _truncated(f"{what} PNG chunk", pos, 12, size - pos)
        length, ctype = _PNG_CHUNK_HEAD.unpack_from(buf, pos)
        length = int(length)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise _corrupt(what, pos, f"PNG chunk {ctype!r} of length {length} is invalid")
        if first and ctype != b"IHDR":
            raise _corrupt(what, pos, f"the PNG starts with {ctype!r} instead of IHDR")
        first = False
        end = pos + 12 + length
        if end > size:
            raise _truncated(f"{what} PNG chunk {ctype.decode('ascii')}", pos, 12 + length,
                             size - pos)
        if not ctype[0] & 0x20:  # critical chunk (upper-case first letter)
            (crc,) = _PNG_U32.unpack_from(buf, pos + 8 + length)
            if zlib.crc32(mv[pos + 4:pos + 8 + length]) != crc:
                raise _corrupt(what, pos, f"PNG chunk {ctype.decode('ascii')} has a bad CRC")
        pos = end
        if ctype == b"IEND":
            return pos


def _load_pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("decoding a QImage needs Pillow (pip install pillow); "
                          "pass decode=False to get the PNG bytes instead") from exc
    return Image


def _pillow_available() -> bool:
    try:
        _load_pil()
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return True


def _decode_png(png: bytes, what: str, pos: int) -> Any:
    Image = _load_pil()
    try:
        img = Image.open(io.BytesIO(png), formats=["PNG"])
        if _C is not None:
            fast = _decode_png_pixels(Image, img, png)
            if fast is not None:
                return fast
        img.load()
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, bomb errors...)
        raise _corrupt(what, pos, f"Pillow cannot decode the PNG: {exc}") from exc
    return img


# PNG colour type (8 bits per sample, as Qt writes them) -> (Pillow mode, bytes per pixel).
_PNG_PLAIN_MODES = {6: ("RGBA", 4), 2: ("RGB", 3), 0: ("L", 1), 4: ("LA", 2)}
_PNG_IHDR = struct.Struct(">IIBBBBB")


def _decode_png_pixels(Image: Any, img: Any, png: bytes) -> Any:
    """The pixels of a plain PNG, inflated in one call and unfiltered in C; None otherwise.

    Pillow has parsed the header (``img``: mode, size, info, its size limits), so what is left is
    what Pillow's decoder would do, only faster: one inflate of all IDAT data (zlib-ng when it is
    installed) and the row filters in ``_codec.png_unfilter``.  Only 8-bit, non-interlaced
    RGBA/RGB/L/LA images whose chunks after the first IDAT are IDATs and IEND take this path; for
    anything else, and for any data that does not inflate to exactly the rows the header
    announces, Pillow decodes (and reports the error) as before.
    """
    width, height, depth, ctype, _comp, _filt, interlace = _PNG_IHDR.unpack_from(png, 16)
    plain = _PNG_PLAIN_MODES.get(ctype)
    if (plain is None or depth != 8 or interlace or img.mode != plain[0]
            or "transparency" in img.info or img.size != (width, height) or not width):
        return None
    mode, bpp = plain
    mv = memoryview(png)
    parts: list[memoryview] = []
    pos = 8
    while pos + 12 <= len(png):
        length, ctype_ = _PNG_CHUNK_HEAD.unpack_from(png, pos)
        if ctype_ == b"IDAT":
            parts.append(mv[pos + 8:pos + 8 + length])
        elif ctype_ == b"IEND":
            break
        elif parts:
            return None  # a chunk after the image data: Pillow reads it into info
        pos += 12 + length
    try:
        from zlib_ng import zlib_ng as inflater  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the stdlib's zlib is no faster than Pillow's decoder
        return None
    error: Any = inflater.error
    rowbytes = width * bpp
    # Inflate a few rows at a time (cache-sized pieces) and unfilter them straight into place.
    step = max(1, (1 << 17) // (rowbytes + 1)) * (rowbytes + 1)
    pixels = _C.new_bytearray(height * rowbytes)
    d = inflater.decompressobj()
    data: Any = b"".join(parts)
    y = 0
    try:
        while y < height:
            raw = d.decompress(data, min(step, (height - y) * (rowbytes + 1)))
            data = d.unconsumed_tail
            if not raw or len(raw) % (rowbytes + 1):
                return None
            y += _C.png_unfilter(raw, pixels, y, rowbytes, bpp)
        if not d.eof and d.decompress(data, 1):
            return None  # more data than the rows
        if not d.eof or d.unused_data:
            return None
    except (error, ValueError):
        return None
    out = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    out.info = dict(img.info)
    img.close()
    return out


# --------------------------------------------------------------------------------------------
# Reader

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class Reader:
    """A QDataStream reading from a bytes-like object in place.

    A bytearray or memoryview is not copied, so it must not be resized while the reader is in
    use.  ``version`` must be the one the writer used.  ``pos`` is the offset of the next byte; set it to
    walk a segment.  ``user_types`` maps a QVariant user type name to a function reading its value;
    ``decode_images`` sets what QImage values become (see :meth:`read_qimage`).
    """

    __slots__ = ("_buf", "_mv", "_size", "_pos", "_s", "_depth", "version", "byteorder",
                 "floating_point_precision", "max_depth", "user_types", "decode_images",
                 "_real", "_real2", "_real4", "_qt6_ids", "_sizes64", "_single", "_vhead",
                 "_u32", "_i32", "_i8", "_dec", "_real_size", "_c", "_little")

    def __init__(self, data: bytes | bytearray | memoryview, version: int = DEFAULT_VERSION,
                 byteorder: Literal["big", "little"] = "big", *,
                 floating_point_precision: Literal["double", "single"] = "double",
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 user_types: Mapping[str, Callable[[Reader], Any]] | None = None,
                 decode_images: bool | None = None) -> None:
        self._s = _check_options(version, byteorder, floating_point_precision)
        self.version = version
        self.byteorder = byteorder
        self.floating_point_precision = floating_point_precision
        self.max_depth = max_depth
        self.user_types = dict(user_types or {})
        self.decode_images = decode_images
        if isinstance(data, bytes):
            self._buf: Any = data
            self._mv: memoryview | None = None
        else:
            mv = memoryview(data)
            if mv.format != "B" or mv.ndim != 1:
                mv = mv.cast("B")
            self._buf = self._mv = mv
        self._size = len(self._buf)
        self._pos = 0
        self._depth = 0
        single = self._single = floating_point_precision == "single"
        s = self._s
        real = s.f32 if single else s.f64
        self._real = real.unpack_from
        self._real_size = real.size
        self._vhead = s.variant_head.unpack_from
        self._u32 = s.u32.unpack_from
        self._i32 = s.i32.unpack_from
        self._i8 = s.i8.unpack_from
        self._dec = s.decode
        self._real2 = s.f32x2 if single else s.f64x2
        self._real4 = s.f32x4 if single else s.f64x4
        self._qt6_ids = version >= Qt_6_0
        self._sizes64 = version >= Qt_6_7
        self._c = _C
        self._little = byteorder == "little"

    # -- position -------------------------------------------------------------------------------

    @property
    def pos(self) -> int:
        """Offset of the next byte to read."""
        return self._pos

    @pos.setter
    def pos(self, value: int) -> None:
        if not 0 <= value <= self._size:
            raise ValueError(f"position {value} is outside 0..{self._size}")
        self._pos = value

    def remaining(self) -> int:
        """Number of bytes not read yet."""
        return self._size - self._pos

    def at_end(self) -> bool:
        """QDataStream::atEnd()."""
        return self._pos >= self._size

    def _view(self) -> memoryview:
        if self._mv is None:
            self._mv = memoryview(self._buf)
        return self._mv

    def _need(self, n: int, what: str) -> int:
        pos = self._pos
        if n < 0:
            raise ValueError(f"{what}: negative length {n}")
        if n > self._size - pos:
            raise _truncated(what, pos, n, self._size - pos)
        return pos

    def _unpack(self, st: struct.Struct, what: str) -> tuple[Any, ...]:
        pos = self._pos
        try:
            v = st.unpack_from(self._buf, pos)
        except struct.error:
            raise _truncated(what, pos, st.size, self._size - pos) from None
        self._pos = pos + st.size
        return v

    def _enter(self, what: str) -> None:
        self._depth += 1
        if self._depth > self.max_depth:
            self._depth -= 1
            raise _corrupt(what, self._pos, f"nested deeper than {self.max_depth} levels")

    # -- raw bytes ------------------------------------------------------------------------------

    def read_raw(self, n: int, *, copy: bool = True) -> bytes | memoryview:
        """QDataStream::readRawData(): the next ``n`` bytes, copied or as a memoryview."""
        pos = self._need(n, "raw data")
        self._pos = pos + n
        if copy:
            return bytes(self._buf[pos:pos + n])
        return self._view()[pos:pos + n]

    def skip(self, n: int) -> None:
        """QDataStream::skipRawData()."""
        self._pos = self._need(n, "raw data") + n

    # -- scalars --------------------------------------------------------------------------------

    def read_int8(self) -> int:
        """QDataStream::operator>>(qint8&)."""
        return int(self._unpack(self._s.i8, "qint8")[0])

    def read_uint8(self) -> int:
        """QDataStream::operator>>(quint8&)."""
        return int(self._unpack(self._s.u8, "quint8")[0])

    def read_int16(self) -> int:
        """QDataStream::operator>>(qint16&)."""
        return int(self._unpack(self._s.i16, "qint16")[0])

    def read_uint16(self) -> int:
        """QDataStream::operator>>(quint16&)."""
        return int(self._unpack(self._s.u16, "quint16")[0])

    def read_int32(self) -> int:
        """QDataStream::operator>>(qint32&)."""
        return int(self._unpack(self._s.i32, "qint32")[0])

    def read_uint32(self) -> int:
        """QDataStream::operator>>(quint32&)."""
        return int(self._unpack(self._s.u32, "quint32")[0])

    def read_int64(self) -> int:
        """QDataStream::operator>>(qint64&)."""
        return int(self._unpack(self._s.i64, "qint64")[0])

    def read_uint64(self) -> int:
        """QDataStream::operator>>(quint64&)."""
        return int(self._unpack(self._s.u64, "quint64")[0])

    def read_bool(self) -> bool:
        """QDataStream::operator>>(bool&): any non-zero byte is true."""
        return bool(self._unpack(self._s.i8, "bool")[0])

    def read_double(self) -> float:
        """QDataStream::operator>>(double&): 8 bytes, or 4 under single precision."""
        return float(self._unpack(self._s.f32 if self._single else self._s.f64, "double")[0])

    def read_float(self) -> float:
        """QDataStream::operator>>(float&): 8 bytes rounded to single precision, or 4 bytes."""
        v = float(self._unpack(self._s.f32 if self._single else self._s.f64, "float")[0])
        return v if self.floating_point_precision == "single" else _round_f32(v)

    def read_size(self, what: str = "size") -> int | None:
        """QDataStream::readQSizeType(): a size or count, ``None`` for the null marker.

        From Qt_6_7 the marker 0xFFFFFFFE announces a qint64 size; before, it is a plain value.
        """
        pos = self._pos
        try:
            (n,) = self._s.u32.unpack_from(self._buf, pos)
        except struct.error:
            raise _truncated(what, pos, 4, self._size - pos) from None
        self._pos = pos + 4
        if n < _EXTENDED_SIZE:
            return int(n)
        if n == _NULL_SIZE:
            return None
        if not self._sizes64:
            return int(n)
        (n,) = self._unpack(self._s.i64, f"{what} (64-bit)")
        if n < 0:
            raise _corrupt(what, pos, f"negative 64-bit size {n}")
        return int(n)

    def _read_count(self, what: str, min_item: int) -> int:
        """A container's element count, checked against the bytes left."""
        pos = self._pos
        n = self.read_size(what)
        if n is None:
            # Qt 6 reports SizeLimitExceeded for a null container size at every version.
            raise _corrupt(what, pos, "a container size cannot be the null marker 0xFFFFFFFF")
        if n * min_item > self._size - self._pos:
            raise _truncated(what, pos, n * min_item, self._size - self._pos)
        return n

    def _read_len(self, what: str) -> tuple[int, int] | None:
        """A byte length followed by that many bytes: (start, end), or None for null."""
        pos = self._pos
        n = self.read_size(what)
        if n is None:
            return None
        start = self._pos
        if n > self._size - start:
            raise _truncated(what, pos, start - pos + n, self._size - pos)
        self._pos = start + n
        return start, start + n

    # -- byte arrays and strings ----------------------------------------------------------------

    def read_qbytearray(self, *, copy: bool = True) -> bytes | memoryview | None:
        """QDataStream::operator>>(QByteArray&): ``None`` for null, ``b""`` for empty.

        With ``copy=False`` the value is a zero-copy memoryview into the input.
        """
        span = self._read_len("QByteArray")
        if span is None:
            return None
        if copy:
            return bytes(self._buf[span[0]:span[1]])
        return self._view()[span[0]:span[1]]

    def read_cstring(self) -> bytes | None:
        """QDataStream::operator>>(char*&): the bytes without the final NUL; None for length 0."""
        span = self._read_len("char*")
        if span is None or span[0] == span[1]:
            return None
        data = bytes(self._buf[span[0]:span[1]])
        return data[:-1] if data.endswith(b"\0") else data

    def read_qstring(self) -> str | None:
        """QDataStream::operator>>(QString&): UTF-16 in the stream byte order; None for null."""
        pos = self._pos
        span = self._read_len("QString")
        if span is None:
            return None
        start, end = span
        if (end - start) & 1:
            raise _corrupt("QString", pos, f"odd byte length {end - start}")
        return str(self._s.decode(self._buf[start:end], "surrogatepass", True)[0])

    def read_qchar(self) -> str:
        """QDataStream::operator>>(QChar&): one UTF-16 code unit."""
        return chr(self._unpack(self._s.u16, "QChar")[0])

    def read_qstringlist(self) -> list[str | None]:
        """QDataStream::operator>>(QStringList&)."""
        n = self._read_count("QStringList", 4)
        if self._c is not None:
            fast = self._c.read_strings(self._buf, self._pos, n, self._little)
            if fast is not None:
                items, self._pos = fast
                return items  # type: ignore[no-any-return]
        buf, size, pos = self._buf, self._size, self._pos
        unpack_from = self._s.u32.unpack_from
        decode = self._s.decode
        out: list[str | None] = []
        append = out.append
        first = pos
        # The hot loop checks nothing it does not have to: a length running past the end leaves a
        # short slice, caught after the loop (or by the next unpack); an odd length fails to
        # decode.  Either way the list is then re-read slowly to raise the precise error.
        try:
            for _ in range(n):
                (ln,) = unpack_from(buf, pos)
                if ln >= _EXTENDED_SIZE:
                    self._pos = pos
                    append(self.read_qstring())
                    pos = self._pos
                    continue
                start = pos + 4
                pos = start + ln
                append(decode(buf[start:pos], "surrogatepass", True)[0])
        except (struct.error, UnicodeDecodeError):
            pos = size + 1
        if pos > size:
            self._pos = first
            for _ in range(n):
                self.read_qstring()
            raise _corrupt("QStringList", first, "unreadable item")  # pragma: no cover
        self._pos = pos
        return out

    def read_qbytearraylist(self) -> list[bytes | None]:
        """QDataStream::operator>>(QByteArrayList&)."""
        n = self._read_count("QByteArrayList", 4)
        return [self.read_qbytearray() for _ in range(n)]  # type: ignore[misc]

    def read_qbitarray(self) -> list[bool]:
        """QDataStream::operator>>(QBitArray&): quint32 bit count (qint64 from Qt_6_0), bytes."""
        pos = self._pos
        if self._qt6_ids:
            (n,) = self._unpack(self._s.i64, "QBitArray")
            if n < 0:
                raise _corrupt("QBitArray", pos, f"negative size {n}")
        else:
            (n,) = self._unpack(self._s.u32, "QBitArray")
        nbytes = (n + 7) >> 3
        start = self._need(nbytes, "QBitArray")
        data = self._buf[start:start + nbytes]
        self._pos = start + nbytes
        return [bool(data[i >> 3] & (1 << (i & 7))) for i in range(n)]

    # -- generic containers ---------------------------------------------------------------------

    def read_qlist(self, item: Callable[[Reader], T]) -> list[T]:
        """QList<T> / QVector<T>: a size, then each element read by ``item(reader)``."""
        n = self._read_count("QList", 1)
        self._enter("QList")
        try:
            out = [item(self) for _ in range(n)]
        finally:
            self._depth -= 1
        return out

    def read_qmap(self, key: Callable[[Reader], K], value: Callable[[Reader], V]) -> dict[K, V]:
        """QMap<K, V>: a size, then key/value pairs; the dict keeps the stream order.

        Qt 5 writes descending keys, Qt 6 ascending.  A repeated key (a QMultiMap) keeps its last
        value, which is the one ``QMap::value()`` returns in Qt.
        """
        return self._read_pairs("QMap", key, value)

    def read_qhash(self, key: Callable[[Reader], K], value: Callable[[Reader], V]) -> dict[K, V]:
        """QHash<K, V>: like QMap, in the hash order the writer happened to have."""
        return self._read_pairs("QHash", key, value)

    def _read_pairs(self, what: str, key: Callable[[Reader], K],
                    value: Callable[[Reader], V]) -> dict[K, V]:
        n = self._read_count(what, 2)
        self._enter(what)
        try:
            out: dict[K, V] = {}
            for _ in range(n):
                k = key(self)
                out[k] = value(self)
        finally:
            self._depth -= 1
        return out

    # -- QVariant -------------------------------------------------------------------------------

    def read_qvariant(self, *, unwrap: bool = False) -> Any:
        """QDataStream::operator>>(QVariant&): a :class:`QVariant`, or its plain value.

        With ``unwrap=True`` the result is the plain Python value (``None`` for an invalid
        variant) and containers hold plain values too; a user type becomes the value its
        ``user_types`` reader returns, or stays a QVariant (raw payload) when it has none.
        """
        return self._read_variant(unwrap)

    def _read_variant(self, unwrap: bool) -> Any:
        if self._c is not None:
            value, self._pos = self._c.read_variants(
                0, self._buf, self._pos, 0, self._little, self._single, unwrap, self._depth,
                self.max_depth, QVariant, self._fallback)
            return value
        return self._read_variant_py(unwrap)

    def _fallback(self, kind: int, pos: int, depth: int, unwrap: bool) -> tuple[Any, int]:
        """For the C loops: the pure reader at ``pos`` for one variant (kind 0) or map key."""
        saved = self._depth
        self._pos = pos
        self._depth = depth
        try:
            if kind == 0:
                value = self._read_variant_py(unwrap)
            else:
                value = self._read_key("QVariantMap" if kind == 1 else "QVariantHash")
        finally:
            self._depth = saved
        return value, self._pos

    def _read_variant_py(self, unwrap: bool) -> Any:
        buf = self._buf
        pos = self._pos
        try:
            tid, is_null = self._vhead(buf, pos)
        except struct.error:
            raise _truncated("QVariant", pos, 5, self._size - pos) from None
        p = pos + 5
        # Inline fast paths for the commonest types; ids below 64 are the same in Qt 5 and 6.
        try:
            if tid == 10:
                (ln,) = self._u32(buf, p)
                end = p + 4 + ln
                if ln >= _EXTENDED_SIZE or end > self._size or ln & 1:
                    self._pos = p
                    value: Any = self.read_qstring()
                else:
                    value = self._dec(buf[p + 4:end], "surrogatepass", True)[0]
                    self._pos = end
            elif tid == 2:
                (value,) = self._i32(buf, p)
                self._pos = p + 4
            elif tid == 6:
                (value,) = self._real(buf, p)
                self._pos = p + self._real_size
            elif tid == 8:
                self._pos = p
                value = self._read_variant_dict("QVariantMap", unwrap)
            elif tid == 9:
                self._pos = p
                value = self.read_qvariantlist(unwrap=unwrap)
            elif tid == 1:
                (value,) = self._i8(buf, p)
                value = value != 0
                self._pos = p + 1
            else:
                self._pos = p
                return self._read_variant_slow(pos, tid, is_null, unwrap)
        except struct.error:
            raise _truncated(f"QVariant {_type_name(tid)}", p, 4, self._size - p) from None
        if unwrap:
            return value
        return QVariant(tid, value, None, is_null != 0)

    def _read_variant_slow(self, pos: int, tid: int, is_null: int, unwrap: bool) -> Any:
        type_name: str | None = None
        if not self._qt6_ids:
            if _QT5_FIRST_GUI <= tid <= _QT5_LAST_GUI:
                tid += _QT6_FIRST_GUI - _QT5_FIRST_GUI
            elif tid == _QT5_SIZE_POLICY:
                tid = TypeId.QSizePolicy
            elif tid >= _QT5_USER:
                tid = TypeId.User
        elif tid > TypeId.User:
            tid = TypeId.User
        tid = int(tid)
        if tid == TypeId.Invalid:
            # From Qt_5_0 an invalid variant has no payload.
            return None if unwrap else QVariant(0, None, None, bool(is_null))
        if tid == TypeId.User:
            raw_name = self.read_cstring()
            if not raw_name:
                raise _corrupt("QVariant", pos, "user type without a name")
            type_name = raw_name.decode("latin-1")
            builtin = _NAMED_BUILTINS.get(type_name)
            if builtin is not None:
                tid, type_name = builtin, None
            else:
                value = self._read_user_value(pos, type_name)
                if unwrap and type_name in self.user_types:
                    return value
                return QVariant(tid, value, type_name, bool(is_null))
        container = _VARIANT_CONTAINERS.get(tid)
        if container is not None:
            value = container(self, unwrap)
        else:
            reader = _VARIANT_READERS.get(tid)
            if reader is None:
                raise _corrupt("QVariant", pos, f"cannot read a {_type_name(tid)} "
                               f"(type id {tid}): no decoder, so its length is unknown")
            value = reader(self)
        if unwrap:
            return value
        return QVariant(tid, value, type_name, bool(is_null))

    def _read_user_value(self, pos: int, type_name: str) -> Any:
        reader = self.user_types.get(type_name)
        if reader is not None:
            return reader(self)
        # Qt itself cannot read an unregistered user type: nothing says where it ends.  At the top
        # level the payload is taken to be the rest of the input.
        if self._depth:
            raise _corrupt("QVariant", pos, f"user type {type_name!r} inside a container has no "
                           "reader in user_types, so its length is unknown")
        return self.read_raw(self._size - self._pos)

    def read_qvariantlist(self, *, unwrap: bool = True) -> list[Any]:
        """QVariantList (QList<QVariant>)."""
        n = self._read_count("QVariantList", 5)
        self._enter("QVariantList")
        try:
            if self._c is not None:
                items, self._pos = self._c.read_variants(
                    3, self._buf, self._pos, n, self._little, self._single, unwrap,
                    self._depth, self.max_depth, QVariant, self._fallback)
                return items  # type: ignore[no-any-return]
            rv = self._read_variant
            out = [rv(unwrap) for _ in range(n)]
        finally:
            self._depth -= 1
        return out

    def read_qvariantmap(self, *, unwrap: bool = True) -> dict[str, Any]:
        """QVariantMap (QMap<QString, QVariant>), in stream order; a null key reads as ``""``."""
        return self._read_variant_dict("QVariantMap", unwrap)

    def read_qvarianthash(self, *, unwrap: bool = True) -> dict[str, Any]:
        """QVariantHash (QHash<QString, QVariant>)."""
        return self._read_variant_dict("QVariantHash", unwrap)

    def _read_variant_dict(self, what: str, unwrap: bool) -> dict[str, Any]:
        n = self._read_count(what, 9)
        self._enter(what)
        try:
            if self._c is not None:
                pairs, self._pos = self._c.read_variants(
                    1 if what == "QVariantMap" else 2, self._buf, self._pos, n, self._little,
                    self._single, unwrap, self._depth, self.max_depth, QVariant, self._fallback)
                return pairs  # type: ignore[no-any-return]
            rv = self._read_variant
            key = self._read_key
            out: dict[str, Any] = {}
            for _ in range(n):
                k = key(what)
                out[k] = rv(unwrap)
        finally:
            self._depth -= 1
        return out

    def _read_key(self, what: str) -> str:
        """A QVariantMap/Hash key: a QString, with a null key read as ``""``."""
        buf, pos = self._buf, self._pos
        try:
            (ln,) = self._u32(buf, pos)
        except struct.error:
            raise _truncated(f"{what} key", pos, 4, self._size - pos) from None
        end = pos + 4 + ln
        if ln >= _EXTENDED_SIZE or end > self._size or ln & 1:
            return self.read_qstring() or ""
        self._pos = end
        return str(self._dec(buf[pos + 4:end], "surrogatepass", True)[0])

    # -- geometry and colour --------------------------------------------------------------------

    def read_qpoint(self) -> QPoint:
        """QDataStream::operator>>(QPoint&)."""
        return QPoint(*self._unpack(self._s.i32x2, "QPoint"))

    def read_qpointf(self) -> QPointF:
        """QDataStream::operator>>(QPointF&)."""
        return QPointF(*self._unpack(self._real2, "QPointF"))

    def read_qsize(self) -> QSize:
        """QDataStream::operator>>(QSize&)."""
        return QSize(*self._unpack(self._s.i32x2, "QSize"))

    def read_qsizef(self) -> QSizeF:
        """QDataStream::operator>>(QSizeF&)."""
        return QSizeF(*self._unpack(self._real2, "QSizeF"))

    def read_qrect(self) -> QRect:
        """QDataStream::operator>>(QRect&): left, top, right, bottom."""
        x1, y1, x2, y2 = self._unpack(self._s.i32x4, "QRect")
        return QRect(x1, y1, x2 - x1 + 1, y2 - y1 + 1)

    def read_qrectf(self) -> QRectF:
        """QDataStream::operator>>(QRectF&): x, y, width, height."""
        return QRectF(*self._unpack(self._real4, "QRectF"))

    def read_qline(self) -> QLine:
        """QDataStream::operator>>(QLine&)."""
        return QLine(*self._unpack(self._s.i32x4, "QLine"))

    def read_qlinef(self) -> QLineF:
        """QDataStream::operator>>(QLineF&)."""
        return QLineF(*self._unpack(self._real4, "QLineF"))

    def read_qcolor(self) -> QColor:
        """QDataStream::operator>>(QColor&): spec and five raw 16-bit fields."""
        return QColor(*self._unpack(self._s.color, "QColor"))

    # -- dates and times ------------------------------------------------------------------------

    def read_qdate(self) -> _dt.date | None:
        """QDataStream::operator>>(QDate&): a qint64 Julian day; ``None`` for a null date."""
        pos = self._pos
        (jd,) = self._unpack(self._s.i64, "QDate")
        return _date_from_jd(jd, pos)

    def read_qtime(self) -> _dt.time | None:
        """QDataStream::operator>>(QTime&): quint32 msecs; ``None`` for null or invalid."""
        (ms,) = self._unpack(self._s.u32, "QTime")
        return _time_from_ms(ms)

    def read_qtimezone(self) -> _dt.tzinfo | None:
        """QDataStream::operator>>(QTimeZone&): a ZoneInfo, a QtOffsetZone, or None (invalid)."""
        pos = self._pos
        zone_id = self.read_qstring()
        if zone_id == _OFFSET_ZONE_TAG:
            zid = self.read_qstring() or ""
            offset = self.read_int32()
            name = self.read_qstring()
            abbreviation = self.read_qstring()
            territory = self.read_int32()
            comment = self.read_qstring()
            try:
                return QtOffsetZone(zid, offset, name, abbreviation, territory, comment)
            except ValueError as exc:
                raise _corrupt("QTimeZone", pos, str(exc)) from None
        if zone_id is None or zone_id == _INVALID_ZONE_ID:
            return None
        try:
            return zoneinfo.ZoneInfo(zone_id)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise _corrupt("QTimeZone", pos, f"unknown time zone id {zone_id!r} ({exc})") from None

    def read_qdatetime(self) -> _dt.datetime | None:
        """QDataStream::operator>>(QDateTime&): an aware or naive datetime; None if invalid.

        Qt_5_2 and later: date, time, time spec and the offset or zone.  Qt_5_0 stored the UTC
        time and the spec (UTC, offset and zone come back in UTC, as Qt 6 reads them); Qt_5_1
        stored the wall time with Qt 4's spec codes (-1/0/1 local, 2 UTC, 3 offset, 4 zone).
        """
        pos = self._pos
        jd, ms, spec = self._unpack(self._s.datetime_head, "QDateTime")
        version = self.version
        tz: _dt.tzinfo | None
        if version >= Qt_5_2:
            if spec == 0:
                tz = None
            elif spec == 1:
                tz = _dt.timezone.utc
            elif spec == 2:
                offset = self.read_int32()
                if not -86400 < offset < 86400:
                    raise _corrupt("QDateTime", pos, f"UTC offset {offset} s is outside a day")
                tz = _dt.timezone(_dt.timedelta(seconds=offset))
            elif spec == 3:
                tz = self.read_qtimezone()
                if tz is None:
                    return None  # Qt: a datetime in an invalid zone is invalid
            else:
                # Qt 5 reads an unknown spec as UTC and Qt 6 as local time: call it corrupt.
                raise _corrupt("QDateTime", pos, f"unknown time spec {spec}")
        elif version == Qt_5_1:
            if spec in (-1, 0, 1, 4):
                tz = None
            elif spec in (2, 3):  # Qt reads an offset as UTC with the same wall time
                tz = _dt.timezone.utc
            else:
                raise _corrupt("QDateTime", pos, f"unknown Qt 4 time spec {spec}")
        else:
            if not 0 <= spec <= 3:
                raise _corrupt("QDateTime", pos, f"unknown time spec {spec}")
            tz = _dt.timezone.utc
        date = _date_from_jd(jd, pos)
        if date is None:
            return None
        time = _time_from_ms(ms) or _dt.time()  # Qt treats a null or invalid time as midnight
        value = _dt.datetime.combine(date, time, tz)
        if version == Qt_5_0 and spec == 0:
            try:
                value = value.astimezone().replace(tzinfo=None)
            except (OverflowError, ValueError, OSError) as exc:
                raise _corrupt("QDateTime", pos, f"cannot convert to local time: {exc}") from None
        return value

    # -- other value types ----------------------------------------------------------------------

    def read_quuid(self) -> uuid.UUID:
        """QDataStream::operator>>(QUuid&): 16 bytes, fields swapped in little-endian streams."""
        raw = self.read_raw(16)
        assert isinstance(raw, bytes)
        return uuid.UUID(bytes=raw) if self.byteorder == "big" else uuid.UUID(bytes_le=raw)

    def read_qurl(self) -> str:
        """QDataStream::operator>>(QUrl&): the encoded URL (a QByteArray); ``""`` for null."""
        raw = self.read_qbytearray()
        assert not isinstance(raw, memoryview)
        return raw.decode("latin-1") if raw else ""

    def read_qimage(self, *, decode: bool | None = None) -> Any:
        """QDataStream::operator>>(QImage&): ``qint32`` marker, then a whole PNG file.

        A null image (marker 0) reads as ``None``.  The PNG's end is found by walking its chunks
        through IEND and its CRC.  ``decode=True`` returns a loaded ``PIL.Image.Image``,
        ``decode=False`` the PNG ``bytes``; ``None`` (the default) uses the reader's
        ``decode_images``, and if that is ``None`` too, a PIL image when Pillow is installed and
        the PNG bytes when it is not.  The image's pixels are always loaded: 8-bit RGBA, RGB, L
        and LA PNGs come back as a plain ``PIL.Image.Image`` decoded by the C path (with
        zlib-ng), others as the ``PngImageFile`` Pillow decoded; mode, size, pixels and
        ``info`` are the same either way.
        """
        pos = self._pos
        (marker,) = self._unpack(self._s.i32, "QImage")
        if marker == 0:
            return None
        start = self._pos
        end = _png_end(self._buf, start, self._size, "QImage")
        png = bytes(self._buf[start:end])
        self._pos = end
        if decode is None:
            decode = self.decode_images
        if decode is None:
            decode = _pillow_available()
        return _decode_png(png, "QImage", pos) if decode else png

    def read_qpixmap(self, *, decode: bool | None = None) -> Any:
        """QDataStream::operator>>(QPixmap&): streamed as its QImage."""
        return self.read_qimage(decode=decode)


def _date_from_jd(jd: int, pos: int) -> _dt.date | None:
    if jd == _NULL_JD:
        return None
    if not _MIN_JD <= jd <= _MAX_JD:
        raise _corrupt("QDate", pos, f"Julian day {jd} is outside what datetime.date holds "
                       "(years 1 to 9999)")
    return _dt.date.fromordinal(jd - _JD_OF_ORDINAL_0)


def _time_from_ms(ms: int) -> _dt.time | None:
    if ms >= _MS_PER_DAY:  # null (0xFFFFFFFF) or invalid
        return None
    s, milli = divmod(ms, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return _dt.time(h, m, s, milli * 1000)


def _read_char16(r: Reader) -> int:
    return r.read_uint16()


def _read_nothing(r: Reader) -> None:
    """std::nullptr_t: no payload (what QJsonValue::toVariant() makes of JSON null)."""
    return None


def _write_nothing(w: Writer, value: Any) -> None:
    if value is not None:
        raise TypeError(f"QVariant Nullptr holds None, not {type(value).__name__}")


_VARIANT_CONTAINERS: dict[int, Callable[[Reader, bool], Any]] = {
    TypeId.QVariantList: lambda r, u: r.read_qvariantlist(unwrap=u),
    TypeId.QVariantMap: lambda r, u: r.read_qvariantmap(unwrap=u),
    TypeId.QVariantHash: lambda r, u: r.read_qvarianthash(unwrap=u),
}


# --------------------------------------------------------------------------------------------
# Writer


class Writer:
    """A QDataStream writing into a growing buffer; :meth:`getvalue` returns the bytes.

    ``qmap_order`` decides the key order of QMaps: Qt 5 writes descending keys, Qt 6 ascending,
    whatever the stream version, so ``None`` (the default) picks descending for versions up to
    Qt_5_15 (only Qt 5 defaults to them) and ascending from Qt_6_0.  Pass ``"ascending"`` to
    imitate Qt 6 writing an old version.  ``user_types`` maps a QVariant user type name to a
    function writing its value (otherwise the value must be the raw payload bytes).  After an
    exception the buffer may end with part of the value that failed.
    """

    __slots__ = ("_buf", "_s", "_depth", "version", "byteorder", "floating_point_precision",
                 "qmap_order", "max_depth", "user_types", "_single", "_qt6_ids", "_sizes64",
                 "_c", "_little")

    def __init__(self, version: int = DEFAULT_VERSION,
                 byteorder: Literal["big", "little"] = "big", *,
                 floating_point_precision: Literal["double", "single"] = "double",
                 qmap_order: Literal["ascending", "descending"] | None = None,
                 max_depth: int = DEFAULT_MAX_DEPTH,
                 user_types: Mapping[str, Callable[[Writer, Any], None]] | None = None) -> None:
        self._s = _check_options(version, byteorder, floating_point_precision)
        if qmap_order not in (None, "ascending", "descending"):
            raise ValueError(f"qmap_order must be 'ascending' or 'descending', not {qmap_order!r}")
        self.version = version
        self.byteorder = byteorder
        self.floating_point_precision = floating_point_precision
        if qmap_order is None:
            qmap_order = "ascending" if version >= Qt_6_0 else "descending"
        self.qmap_order = qmap_order
        self.max_depth = max_depth
        self.user_types = dict(user_types or {})
        self._buf = bytearray()
        self._depth = 0
        self._single = floating_point_precision == "single"
        self._qt6_ids = version >= Qt_6_0
        self._sizes64 = version >= Qt_6_7
        # The C loops write double precision only; single precision streams use the pure code.
        self._c = None if self._single else _C
        self._little = byteorder == "little"

    def getvalue(self) -> bytes:
        """Everything written so far."""
        return bytes(self._buf)

    def getbuffer(self) -> memoryview:
        """A memoryview of the internal buffer, without copying (no writes while it is held)."""
        return memoryview(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def _pack(self, st: struct.Struct, value: Any, what: str) -> None:
        try:
            self._buf += st.pack(value)
        except (struct.error, TypeError, OverflowError) as exc:
            raise _bad_value(what, value, exc) from None

    def _enter(self, what: str) -> None:
        self._depth += 1
        if self._depth > self.max_depth:
            self._depth -= 1
            raise DataStreamError(f"{what}: nested deeper than {self.max_depth} levels "
                                  "(a container that contains itself?)")

    # -- raw bytes and scalars ------------------------------------------------------------------

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        """QDataStream::writeRawData()."""
        self._buf += data

    def write_int8(self, value: int) -> None:
        """QDataStream::operator<<(qint8)."""
        self._pack(self._s.i8, value, "qint8")

    def write_uint8(self, value: int) -> None:
        """QDataStream::operator<<(quint8)."""
        self._pack(self._s.u8, value, "quint8")

    def write_int16(self, value: int) -> None:
        """QDataStream::operator<<(qint16)."""
        self._pack(self._s.i16, value, "qint16")

    def write_uint16(self, value: int) -> None:
        """QDataStream::operator<<(quint16)."""
        self._pack(self._s.u16, value, "quint16")

    def write_int32(self, value: int) -> None:
        """QDataStream::operator<<(qint32)."""
        self._pack(self._s.i32, value, "qint32")

    def write_uint32(self, value: int) -> None:
        """QDataStream::operator<<(quint32)."""
        self._pack(self._s.u32, value, "quint32")

    def write_int64(self, value: int) -> None:
        """QDataStream::operator<<(qint64)."""
        self._pack(self._s.i64, value, "qint64")

    def write_uint64(self, value: int) -> None:
        """QDataStream::operator<<(quint64)."""
        self._pack(self._s.u64, value, "quint64")

    def write_bool(self, value: bool) -> None:
        """QDataStream::operator<<(bool): one byte, 0 or 1."""
        self._buf += b"\x01" if value else b"\x00"

    def write_double(self, value: float) -> None:
        """QDataStream::operator<<(double): 8 bytes, or 4 under single precision."""
        if self._single:
            self._pack(self._s.f32, _round_f32(_as_float(value, "double")), "double")
        else:
            self._pack(self._s.f64, value, "double")

    def write_float(self, value: float) -> None:
        """QDataStream::operator<<(float): the value rounded to single precision, 8 or 4 bytes."""
        v = _round_f32(_as_float(value, "float"))
        self._pack(self._s.f32 if self._single else self._s.f64, v, "float")

    def write_size(self, n: int | None) -> None:
        """QDataStream::writeQSizeType(): ``None`` writes the null marker.

        From Qt_6_7 a size of 0xFFFFFFFE or more is the marker 0xFFFFFFFE and a qint64; before,
        only 0xFFFFFFFE itself fits (as Qt, anything larger is a SizeLimitExceeded error).
        """
        if n is None:
            self._buf += b"\xff\xff\xff\xff"
        elif 0 <= n < _EXTENDED_SIZE:
            self._buf += self._s.u32.pack(n)
        elif n < 0:
            raise DataStreamError(f"size {n} is negative")
        elif self._sizes64:
            self._buf += b"\xff\xff\xff\xfe"
            self._pack(self._s.i64, n, "size")
        elif n == _EXTENDED_SIZE:
            self._buf += b"\xff\xff\xff\xfe"
        else:
            raise DataStreamError(f"size {n} does not fit in a version {self.version} stream "
                                  "(64-bit sizes need Qt_6_7)")

    # -- byte arrays and strings ----------------------------------------------------------------

    def write_qbytearray(self, value: bytes | bytearray | memoryview | None) -> None:
        """QDataStream::operator<<(const QByteArray&): ``None`` writes a null QByteArray."""
        if value is None:
            self._buf += b"\xff\xff\xff\xff"
            return
        if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"QByteArray needs bytes, not {type(value).__name__}")
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        self.write_size(n)
        self._buf += value

    def write_cstring(self, value: bytes | None) -> None:
        """QDataStream::operator<<(const char*): length with the NUL, bytes, NUL; None = 0."""
        if value is None:
            self.write_size(0)
            return
        self.write_size(len(value) + 1)
        self._buf += value
        self._buf += b"\0"

    def write_qstring(self, value: str | None) -> None:
        """QDataStream::operator<<(const QString&): ``None`` writes a null QString."""
        if value is None:
            self._buf += b"\xff\xff\xff\xff"
            return
        if not isinstance(value, str):
            raise TypeError(f"QString needs str, not {type(value).__name__}")
        data = self._s.encode(value, "surrogatepass")[0]
        self.write_size(len(data))
        self._buf += data

    def write_qchar(self, value: str) -> None:
        """QDataStream::operator<<(QChar): one UTF-16 code unit."""
        if not isinstance(value, str) or len(value) != 1 or ord(value) > 0xFFFF:
            raise DataStreamError(f"QChar needs one UTF-16 code unit, not {value!r}")
        self._buf += self._s.u16.pack(ord(value))

    def write_qstringlist(self, values: Sequence[str | None]) -> None:
        """QDataStream::operator<<(const QStringList&)."""
        self.write_size(len(values))
        if self._c is not None and self._c.write_strings(self._buf, values, self._little):
            return
        data = self._encode_strings(values)
        if data is not None:
            self._buf += data
            return
        for s in values:
            self.write_qstring(s)

    def _encode_strings(self, values: Sequence[str | None]) -> bytes | None:
        """The whole QStringList body in one encoder call, or None when that cannot work.

        Each length prefix becomes two UTF-16 code units of one big str, so a single encode
        produces prefixes and strings together.  Lengths are counted in code points, which equal
        code units unless a string needs surrogate pairs; the encoded size proves they did not.
        """
        hi_first = self._s.len_hi_first
        prefixes: dict[int, str] = {}

        def prefix(n: int) -> str:
            p = prefixes.get(n)
            if p is None:
                hi, lo = chr((n << 1) >> 16), chr((n << 1) & 0xFFFF)
                p = prefixes[n] = hi + lo if hi_first else lo + hi
            return p

        try:
            if None in values:
                parts = []
                for s in values:
                    if s is None:
                        parts.append("\uffff\uffff")
                    else:
                        parts.append(prefix(len(s)))
                        parts.append(s)
            else:
                lengths = list(map(len, values))  # type: ignore[arg-type]
                if lengths and max(lengths) >= _EXTENDED_SIZE >> 1:
                    return None
                parts = [""] * (2 * len(lengths))
                parts[0::2] = map(prefix, lengths)
                parts[1::2] = values  # type: ignore[assignment]
            joined = "".join(parts)
        except TypeError:  # not all str: the slow path raises the proper error
            return None
        data: bytes = self._s.encode(joined, "surrogatepass")[0]
        return data if len(data) == 2 * len(joined) else None

    def write_qbytearraylist(self, values: Sequence[bytes | None]) -> None:
        """QDataStream::operator<<(const QByteArrayList&)."""
        self.write_size(len(values))
        for v in values:
            self.write_qbytearray(v)

    def write_qbitarray(self, bits: Sequence[bool]) -> None:
        """QDataStream::operator<<(const QBitArray&): bit count (qint64 from Qt_6_0), bytes."""
        n = len(bits)
        if self._qt6_ids:
            self._buf += self._s.i64.pack(n)
        else:
            self._pack(self._s.u32, n, "QBitArray size")
        data = bytearray((n + 7) >> 3)
        for i, bit in enumerate(bits):
            if bit:
                data[i >> 3] |= 1 << (i & 7)
        self._buf += data

    # -- generic containers ---------------------------------------------------------------------

    def write_qlist(self, values: Sequence[T], item: Callable[[Writer, T], None]) -> None:
        """QList<T>: the size, then ``item(writer, element)`` for each element."""
        self.write_size(len(values))
        self._enter("QList")
        try:
            for v in values:
                item(self, v)
        finally:
            self._depth -= 1

    def write_qmap(self, mapping: Mapping[K, V], key: Callable[[Writer, K], None],
                   value: Callable[[Writer, V], None]) -> None:
        """QMap<K, V>: the size, then the pairs in Qt's key order (see ``qmap_order``).

        String keys are ordered as QString compares them, by UTF-16 code unit.
        """
        self.write_size(len(mapping))
        self._enter("QMap")
        try:
            for k in self._map_keys(mapping):
                key(self, k)
                value(self, mapping[k])
        finally:
            self._depth -= 1

    def write_qhash(self, mapping: Mapping[K, V], key: Callable[[Writer, K], None],
                    value: Callable[[Writer, V], None]) -> None:
        """QHash<K, V>: the size, then the pairs in the mapping's own order."""
        self.write_size(len(mapping))
        self._enter("QHash")
        try:
            for k, v in mapping.items():
                key(self, k)
                value(self, v)
        finally:
            self._depth -= 1

    def _map_keys(self, mapping: Mapping[Any, Any]) -> list[Any]:
        keys = sorted(mapping)
        if keys and isinstance(keys[0], str):
            joined = "".join(keys)
            if not joined.isascii() and max(joined) > "\uffff":
                # Code point order differs from QString's UTF-16 order once surrogates appear.
                keys.sort(key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        if self.qmap_order == "descending":
            keys.reverse()
        return keys

    # -- QVariant -------------------------------------------------------------------------------

    def write_qvariant(self, value: Any) -> None:
        """QDataStream::operator<<(const QVariant&): a :class:`QVariant` or a plain value.

        Plain values get the type Qt gives them (int: Int, LongLong or ULongLong by range; float:
        Double; str: QString; bytes: QByteArray; list/tuple: QVariantList; dict: QVariantMap;
        None: an invalid QVariant; date, time, datetime, UUID, the geometry classes, QColor and PIL
        images their Qt types).
        """
        if self._c is not None:
            self._c.write_variants(0, self._buf, value, None, self._little,
                                   self.qmap_order == "descending", self._depth, self.max_depth,
                                   self._fallback)
        else:
            self._write_qvariant_py(value)

    def _fallback(self, value: Any, depth: int) -> None:
        """For the C loops: the pure writer for one variant (or, with depth -1, one key)."""
        if depth < 0:
            self.write_qstring(value)
            return
        saved = self._depth
        self._depth = depth
        try:
            self._write_qvariant_py(value)
        finally:
            self._depth = saved

    def _write_qvariant_py(self, value: Any) -> None:
        tp = type(value)
        buf = self._buf
        s = self._s
        # Fast paths for the commonest plain values.
        if tp is str:
            data = s.encode(value, "surrogatepass")[0]
            if len(data) < _EXTENDED_SIZE:
                buf += s.head_string
                buf += s.u32.pack(len(data))
                buf += data
                return
        elif tp is int:
            if _INT32_MIN <= value <= _INT32_MAX:
                buf += s.head_int
                buf += s.i32.pack(value)
                return
        elif tp is float:
            if not self._single:
                buf += s.head_double
                buf += s.f64.pack(value)
                return
        elif tp is dict:
            buf += s.head_map
            self.write_qvariantmap(value)
            return
        elif tp is list:
            buf += s.head_list
            self.write_qvariantlist(value)
            return
        elif tp is bool:
            buf += s.head_true if value else s.head_false
            return
        if tp is QVariant:
            self._write_variant(value.type_id, value.value, value.type_name, value.is_null)
        else:
            self._write_variant(_infer_type_id(value), value, None, False)

    def _write_variant(self, tid: int, value: Any, type_name: str | None, is_null: bool) -> None:
        if tid == TypeId.Invalid:
            # QVariant() streams as id 0 with isNull set and no payload.
            self._buf += self._s.variant_head.pack(0, 1)
            return
        if tid >= TypeId.User:
            tid = TypeId.User
            if not type_name:
                raise DataStreamError("QVariant: a user type needs its type_name")
        else:
            type_name = None
        stream_id = tid
        if not self._qt6_ids:
            if _QT6_FIRST_GUI <= tid <= _QT6_FIRST_GUI + _QT5_LAST_GUI - _QT5_FIRST_GUI:
                stream_id = tid - _QT6_FIRST_GUI + _QT5_FIRST_GUI
            elif tid == TypeId.QSizePolicy:
                stream_id = _QT5_SIZE_POLICY
            elif tid == TypeId.User:
                stream_id = _QT5_USER
            elif tid in _NEWER_CORE_NAMES:
                # Qt 6 writes core types Qt 5 lacks as user types named after the C++ type.
                stream_id, type_name = _QT5_USER, _NEWER_CORE_NAMES[TypeId(tid)]
        writer_fn = _VARIANT_WRITERS.get(tid)
        if writer_fn is None and tid != TypeId.User:
            raise DataStreamError(f"QVariant: cannot write a {_type_name(tid)} (type id {tid})")
        try:
            self._buf += self._s.variant_head.pack(stream_id, 1 if is_null else 0)
        except struct.error as exc:
            raise _bad_value("QVariant type id", tid, exc) from None
        if type_name is not None:
            self.write_cstring(type_name.encode("latin-1"))
        if tid == TypeId.User:
            assert type_name is not None
            writer = self.user_types.get(type_name)
            if writer is not None:
                writer(self, value)
            elif isinstance(value, (bytes, bytearray, memoryview)):
                self._buf += value
            else:
                raise TypeError(f"QVariant user type {type_name!r}: the value must be the raw "
                                f"payload bytes or user_types must have a writer, got "
                                f"{type(value).__name__}")
            return
        assert writer_fn is not None
        writer_fn(self, value)

    def write_qvariantlist(self, values: Sequence[Any]) -> None:
        """QVariantList: elements are QVariants or plain values."""
        self.write_size(len(values))
        self._enter("QVariantList")
        try:
            if self._c is not None:
                self._c.write_variants(3, self._buf, values, None, self._little,
                                       self.qmap_order == "descending", self._depth,
                                       self.max_depth, self._fallback)
                return
            wv = self.write_qvariant
            for v in values:
                wv(v)
        finally:
            self._depth -= 1

    def write_qvariantmap(self, mapping: Mapping[str, Any]) -> None:
        """QVariantMap: keys in Qt's order (see ``qmap_order``), values QVariants or plain."""
        self.write_size(len(mapping))
        self._enter("QVariantMap")
        try:
            self._write_variant_pairs(self._map_keys(mapping), mapping)
        finally:
            self._depth -= 1

    def write_qvarianthash(self, mapping: Mapping[str, Any]) -> None:
        """QVariantHash: the pairs in the mapping's own order."""
        self.write_size(len(mapping))
        self._enter("QVariantHash")
        try:
            self._write_variant_pairs(mapping, mapping)
        finally:
            self._depth -= 1

    def _write_variant_pairs(self, keys: Iterable[str], mapping: Mapping[str, Any]) -> None:
        if self._c is not None:
            keys = list(keys)
            if all(type(k) is str for k in keys):
                self._c.write_variants(1, self._buf, mapping, keys, self._little,
                                       self.qmap_order == "descending", self._depth,
                                       self.max_depth, self._fallback)
                return
        encode = self._s.encode
        u32 = self._s.u32.pack
        wv = self.write_qvariant
        buf = self._buf
        for k in keys:
            if type(k) is not str and not isinstance(k, str):
                raise TypeError(f"QVariantMap keys must be str, not {type(k).__name__}")
            data = encode(k, "surrogatepass")[0]
            if len(data) < _EXTENDED_SIZE:
                buf += u32(len(data))
                buf += data
            else:
                self.write_qstring(k)
            wv(mapping[k])

    # -- geometry and colour --------------------------------------------------------------------

    def write_qpoint(self, value: QPoint) -> None:
        """QDataStream::operator<<(QPoint)."""
        self._pack_many(self._s.i32x2, (value.x, value.y), "QPoint")

    def write_qpointf(self, value: QPointF) -> None:
        """QDataStream::operator<<(QPointF)."""
        self._write_reals((value.x, value.y), "QPointF")

    def write_qsize(self, value: QSize) -> None:
        """QDataStream::operator<<(QSize)."""
        self._pack_many(self._s.i32x2, (value.width, value.height), "QSize")

    def write_qsizef(self, value: QSizeF) -> None:
        """QDataStream::operator<<(QSizeF)."""
        self._write_reals((value.width, value.height), "QSizeF")

    def write_qrect(self, value: QRect) -> None:
        """QDataStream::operator<<(QRect): left, top, right, bottom."""
        self._pack_many(self._s.i32x4, (value.x, value.y, value.x + value.width - 1,
                                        value.y + value.height - 1), "QRect")

    def write_qrectf(self, value: QRectF) -> None:
        """QDataStream::operator<<(QRectF): x, y, width, height."""
        self._write_reals((value.x, value.y, value.width, value.height), "QRectF")

    def write_qline(self, value: QLine) -> None:
        """QDataStream::operator<<(QLine)."""
        self._pack_many(self._s.i32x4, (value.x1, value.y1, value.x2, value.y2), "QLine")

    def write_qlinef(self, value: QLineF) -> None:
        """QDataStream::operator<<(QLineF)."""
        self._write_reals((value.x1, value.y1, value.x2, value.y2), "QLineF")

    def write_qcolor(self, value: QColor) -> None:
        """QDataStream::operator<<(QColor): spec and five raw 16-bit fields."""
        if not isinstance(value, QColor):
            raise TypeError(f"QColor needs a QColor, not {type(value).__name__}")
        self._pack_many(self._s.color, (value.spec, value.alpha, value.c1, value.c2, value.c3,
                                        value.c4), "QColor")

    def _pack_many(self, st: struct.Struct, values: tuple[Any, ...], what: str) -> None:
        try:
            self._buf += st.pack(*values)
        except (struct.error, TypeError, OverflowError) as exc:
            raise _bad_value(what, values, exc) from None

    def _write_reals(self, values: tuple[float, ...], what: str) -> None:
        if self._single:
            values = tuple(_round_f32(_as_float(v, what)) for v in values)
            st = self._s.f32x2 if len(values) == 2 else self._s.f32x4
        else:
            st = self._s.f64x2 if len(values) == 2 else self._s.f64x4
        self._pack_many(st, values, what)

    # -- dates and times ------------------------------------------------------------------------

    def write_qdate(self, value: _dt.date | None) -> None:
        """QDataStream::operator<<(QDate): a qint64 Julian day; ``None`` writes a null date."""
        if isinstance(value, _dt.datetime):
            raise TypeError("QDate needs a datetime.date, not a datetime.datetime")
        self._buf += self._s.i64.pack(_jd(value))

    def write_qtime(self, value: _dt.time | None) -> None:
        """QDataStream::operator<<(QTime): msecs since midnight (microseconds are dropped)."""
        self._buf += self._s.u32.pack(_ms(value))

    def write_qtimezone(self, zone: _dt.tzinfo | None) -> None:
        """QDataStream::operator<<(QTimeZone): an IANA id, or Qt's UTC-offset form."""
        if zone is None:
            self.write_qstring(_INVALID_ZONE_ID)
        elif isinstance(zone, QtOffsetZone):
            self.write_qstring(_OFFSET_ZONE_TAG)
            self.write_qstring(zone.id)
            self.write_int32(zone.offset)
            self.write_qstring(zone.name)
            self.write_qstring(zone.abbreviation)
            self.write_int32(zone.territory)
            self.write_qstring(zone.comment)
        elif isinstance(zone, zoneinfo.ZoneInfo) and zone.key:
            self.write_qstring(zone.key)
        else:
            raise TypeError(f"QTimeZone needs a zoneinfo.ZoneInfo with a key or a QtOffsetZone, "
                            f"not {zone!r}")

    def write_qdatetime(self, value: _dt.datetime | None) -> None:
        """QDataStream::operator<<(QDateTime); ``None`` writes an invalid QDateTime.

        The time spec follows the tzinfo: none is local time, ``timezone.utc`` UTC, another
        ``datetime.timezone`` an offset from UTC (whole seconds), a ``ZoneInfo`` or
        :class:`QtOffsetZone` a time zone.  Qt_5_0 streams store the UTC time (naive values are
        converted with this machine's local zone, as Qt does); Qt_5_1 streams Qt 4 spec codes.
        """
        if value is not None and not isinstance(value, _dt.datetime):
            raise TypeError(f"QDateTime needs a datetime.datetime, not {type(value).__name__}")
        tz = None if value is None else value.tzinfo
        if tz is None:
            spec = 0
        elif tz is _dt.timezone.utc:
            spec = 1
        elif isinstance(tz, _dt.timezone):
            spec = 2
        elif isinstance(tz, (zoneinfo.ZoneInfo, QtOffsetZone)):
            spec = 3
        else:
            raise TypeError(f"QDateTime: cannot stream tzinfo {tz!r}; use datetime.timezone, "
                            "zoneinfo.ZoneInfo or QtOffsetZone")
        version = self.version
        if value is None:
            self._buf += self._s.datetime_head.pack(_NULL_JD, _NULL_TIME,
                                                    -1 if version == Qt_5_1 else 0)
            return
        if version == Qt_5_0:
            try:
                utc = value.astimezone(_dt.timezone.utc)
            except (OverflowError, ValueError, OSError) as exc:
                raise DataStreamError(f"QDateTime: cannot convert {value} to UTC: {exc}") from None
            self._buf += self._s.datetime_head.pack(_jd(utc.date()), _ms(utc.time()), spec)
            return
        if version == Qt_5_1:
            qt4_spec = (-1, 2, 3, 4)[spec]
            self._buf += self._s.datetime_head.pack(_jd(value.date()), _ms(value.time()),
                                                    qt4_spec)
            return
        self._buf += self._s.datetime_head.pack(_jd(value.date()), _ms(value.time()), spec)
        if spec == 2:
            offset = value.utcoffset()
            assert offset is not None
            if offset.microseconds:
                raise DataStreamError(f"QDateTime: UTC offset {offset} is not whole seconds")
            self.write_int32(offset.days * 86400 + offset.seconds)
        elif spec == 3:
            self.write_qtimezone(tz)

    # -- other value types ----------------------------------------------------------------------

    def write_quuid(self, value: uuid.UUID) -> None:
        """QDataStream::operator<<(QUuid): 16 bytes, fields swapped in little-endian streams."""
        self._buf += value.bytes if self.byteorder == "big" else value.bytes_le

    def write_qurl(self, value: str) -> None:
        """QDataStream::operator<<(QUrl): the encoded URL as a QByteArray; ``""`` is null.

        Characters a fully encoded URL may not hold (non-ASCII, space, quotes, ...) are
        percent-encoded as UTF-8, as ``QUrl::toEncoded()`` does; nothing else is normalised.
        """
        if not isinstance(value, str):
            raise TypeError(f"QUrl needs str, not {type(value).__name__}")
        if not value:
            self.write_qbytearray(None)
            return
        encoded = _url_quote(value, safe="!#$%&'()*+,/:;=?@[]~", errors="surrogatepass")
        self.write_qbytearray(encoded.encode("ascii"))

    def write_qimage(self, image: Any) -> None:
        """QDataStream::operator<<(QImage): ``qint32 1`` and a PNG file; ``None`` writes ``0``.

        ``image`` is a ``PIL.Image.Image`` (saved as PNG by Pillow) or the bytes of one complete
        PNG file, which are checked and written unchanged.
        """
        if image is None:
            self._buf += self._s.i32.pack(0)
            return
        if isinstance(image, (bytes, bytearray, memoryview)):
            png = bytes(image)
            if _png_end(png, 0, len(png), "QImage") != len(png):
                raise DataStreamError("QImage: bytes follow the PNG's IEND chunk")
        elif _is_pil_image(image):
            out = io.BytesIO()
            try:
                image.save(out, format="PNG")
            except (OSError, ValueError, KeyError) as exc:
                raise DataStreamError(f"QImage: Pillow cannot save this image as PNG "
                                      f"(mode {getattr(image, 'mode', '?')}): {exc}") from exc
            png = out.getvalue()
        else:
            raise TypeError(f"QImage needs a PIL image or PNG bytes, not {type(image).__name__}")
        self._buf += self._s.i32.pack(1)
        self._buf += png

    def write_qpixmap(self, image: Any) -> None:
        """QDataStream::operator<<(QPixmap): streamed as its QImage."""
        self.write_qimage(image)


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


def _jd(value: _dt.date | None) -> int:
    if value is None:
        return _NULL_JD
    if not isinstance(value, _dt.date):
        raise TypeError(f"QDate needs a datetime.date, not {type(value).__name__}")
    return value.toordinal() + _JD_OF_ORDINAL_0


def _ms(value: _dt.time | None) -> int:
    if value is None:
        return _NULL_TIME
    if not isinstance(value, _dt.time):
        raise TypeError(f"QTime needs a datetime.time, not {type(value).__name__}")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def _write_char16(w: Writer, value: int) -> None:
    w.write_uint16(value)


# What each QVariant type id reads and writes: one row per wire format.  (The containers
# QVariantList/Map/Hash read with an ``unwrap`` flag, so _VARIANT_CONTAINERS has their readers.)
_VARIANT_CODECS: dict[int, tuple[Callable[[Reader], Any] | None, Callable[[Writer, Any], None]]] = {
    TypeId.Nullptr: (_read_nothing, _write_nothing),
    TypeId.Bool: (Reader.read_bool, Writer.write_bool),
    TypeId.Int: (Reader.read_int32, Writer.write_int32),
    TypeId.UInt: (Reader.read_uint32, Writer.write_uint32),
    TypeId.LongLong: (Reader.read_int64, Writer.write_int64),
    TypeId.ULongLong: (Reader.read_uint64, Writer.write_uint64),
    TypeId.Double: (Reader.read_double, Writer.write_double),
    TypeId.QChar: (Reader.read_qchar, Writer.write_qchar),
    TypeId.QString: (Reader.read_qstring, Writer.write_qstring),
    TypeId.QStringList: (Reader.read_qstringlist, Writer.write_qstringlist),
    TypeId.QByteArray: (Reader.read_qbytearray, Writer.write_qbytearray),
    TypeId.QBitArray: (Reader.read_qbitarray, Writer.write_qbitarray),
    TypeId.QDate: (Reader.read_qdate, Writer.write_qdate),
    TypeId.QTime: (Reader.read_qtime, Writer.write_qtime),
    TypeId.QDateTime: (Reader.read_qdatetime, Writer.write_qdatetime),
    TypeId.QUrl: (Reader.read_qurl, Writer.write_qurl),
    TypeId.QRect: (Reader.read_qrect, Writer.write_qrect),
    TypeId.QRectF: (Reader.read_qrectf, Writer.write_qrectf),
    TypeId.QSize: (Reader.read_qsize, Writer.write_qsize),
    TypeId.QSizeF: (Reader.read_qsizef, Writer.write_qsizef),
    TypeId.QLine: (Reader.read_qline, Writer.write_qline),
    TypeId.QLineF: (Reader.read_qlinef, Writer.write_qlinef),
    TypeId.QPoint: (Reader.read_qpoint, Writer.write_qpoint),
    TypeId.QPointF: (Reader.read_qpointf, Writer.write_qpointf),
    TypeId.QUuid: (Reader.read_quuid, Writer.write_quuid),
    # long is streamed as a qint64 on every platform (Qt 5 and Qt 6 both widen it).
    TypeId.Long: (Reader.read_int64, Writer.write_int64),
    TypeId.ULong: (Reader.read_uint64, Writer.write_uint64),
    TypeId.Short: (Reader.read_int16, Writer.write_int16),
    TypeId.UShort: (Reader.read_uint16, Writer.write_uint16),
    TypeId.Char: (Reader.read_int8, Writer.write_int8),
    TypeId.SChar: (Reader.read_int8, Writer.write_int8),
    TypeId.UChar: (Reader.read_uint8, Writer.write_uint8),
    TypeId.Float: (Reader.read_float, Writer.write_float),
    TypeId.QByteArrayList: (Reader.read_qbytearraylist, Writer.write_qbytearraylist),
    TypeId.Char16: (_read_char16, _write_char16),
    TypeId.Char32: (Reader.read_uint32, Writer.write_uint32),
    TypeId.QColor: (Reader.read_qcolor, Writer.write_qcolor),
    TypeId.QImage: (lambda r: r.read_qimage(), Writer.write_qimage),
    TypeId.QPixmap: (lambda r: r.read_qpixmap(), Writer.write_qpixmap),
    TypeId.QVariantList: (None, Writer.write_qvariantlist),
    TypeId.QVariantMap: (None, Writer.write_qvariantmap),
    TypeId.QVariantHash: (None, Writer.write_qvarianthash),
}
_VARIANT_READERS = {tid: rd for tid, (rd, _) in _VARIANT_CODECS.items() if rd is not None}
_VARIANT_WRITERS = {tid: wr for tid, (_, wr) in _VARIANT_CODECS.items()}


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
