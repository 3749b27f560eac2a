"""The codec against bytes written and read by real Qt (``tests/data/datastream_vectors.json``).

The vectors were made by ``tests/data/make_datastream_vectors.py`` with PyQt5 5.15.11 (Qt 5.15.19),
PyQt6 6.11.0 (Qt 6.11.2) and PySide6 6.12.0 (Qt 6.12.0); see the file's header.  Each "write"
vector is checked both ways: our decoder must read Qt's bytes as the described value, and our
encoder must produce Qt's bytes (PNG images excepted: their bytes differ between Qt versions, so
decoded pixels are compared).  "read" vectors record what Qt made of given bytes.

How a vector's ``value`` describes a Python value (``to_python``):

* numbers, bools and strings are themselves; ``"nan"``/``"inf"``/``"-inf"`` for float specials;
* QByteArray: hex text; QDate ``"YYYY-MM-DD"``; QTime ``"HH:MM:SS.mmm"``; QUuid and QUrl: text;
* QPoint/QSize/QRect/QLine and their F variants: the constructor arguments, as a list;
* QColor: ``["rgb", r, g, b, a]``, ``["hsv"|"hsl", h, s, v, a]``, ``["cmyk", c, m, y, k, a]``,
  ``["rgbf", r, g, b, a]`` (extended RGB in half floats) or ``["invalid"]``;
* QDateTime: ``{"date", "time", "spec"}``, spec ``local``/``utc``/``offset`` (``offset`` seconds)/
  ``zone`` (IANA ``zone``)/``offsetzone`` (a QTimeZone made from an offset: ``id``, ``offset``,
  ``name``, ``abbreviation``, ``territory``, ``comment``);
* QImage/QPixmap: ``{"w", "h", "format", "fill", "pixels": [[x, y, argb], ...]}``;
* QVariant: ``{"t": TypeId name, "v": value, "null": isNull flag}``; a PyQt ``PyQt_PyObject`` user
  type is ``{"t": "User", "name": ..., "pickled": [items of the pickled set]}``;
* ``null`` is Qt's null value, ``None``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import pickle
import struct
import zoneinfo
from pathlib import Path
from typing import Any, Callable

import pytest

from localtime import local_timezone
from qshm_compat.datastream import (
    QColor, QLine, QLineF, QPoint, QPointF, QRect, QRectF, QSize, QSizeF, QtOffsetZone, QVariant,
    Reader, TypeId, Writer, unwrap,
)
from qshm_compat.exceptions import DataStreamError, TruncatedError

Image = pytest.importorskip("PIL.Image")

VECTORS_FILE = Path(__file__).parent / "data" / "datastream_vectors.json"
DOCUMENT = json.loads(VECTORS_FILE.read_text())
VECTORS = DOCUMENT["vectors"]
WRITES = [v for v in VECTORS if v["direction"] == "write" and v["type"] != "size"]
READS = [v for v in VECTORS if v["direction"] == "read"]
SIZES = [v for v in VECTORS if v["type"] == "size"]
PYOBJECT = "PyQt_PyObject"


@pytest.fixture(autouse=True, scope="module")
def berlin_time() -> Any:
    """Local time as the vectors were made (Qt_5_0 streams store local times converted to UTC)."""
    with local_timezone(DOCUMENT["header"]["environment"]["TZ"]):
        yield


# -- descriptions to Python values -------------------------------------------------------------


def _float(v: Any) -> float:
    return float(v)


def _float32(v: Any) -> float:
    """What a C++ float holds: Qt was handed the value through one."""
    return float(struct.unpack("<f", struct.pack("<f", float(v)))[0])


def _half(v: float) -> int:
    return int(struct.unpack(">H", struct.pack(">e", v))[0])


def color(d: list[Any]) -> QColor:
    kind, *args = d
    if kind == "invalid":
        return QColor()
    if kind == "rgbf":
        r, g, b, a = args
        return QColor(5, _half(a), _half(r), _half(g), _half(b), 0)
    make: dict[str, Callable[..., QColor]] = {
        "rgb": QColor.from_rgb, "hsv": QColor.from_hsv, "hsl": QColor.from_hsl,
        "cmyk": QColor.from_cmyk}
    return make[kind](*args)


def date(d: str | None) -> dt.date | None:
    return None if d is None else dt.date.fromisoformat(d)


def qtime(t: str | None) -> dt.time | None:
    return None if t is None else dt.time.fromisoformat(t)


def datetime(d: dict[str, Any] | None) -> dt.datetime | None:
    if d is None:
        return None
    tz: dt.tzinfo | None
    spec = d["spec"]
    if spec == "local":
        tz = None
    elif spec == "utc":
        tz = dt.timezone.utc
    elif spec == "offset":
        tz = dt.timezone(dt.timedelta(seconds=d["offset"]))
    elif spec == "zone":
        tz = zoneinfo.ZoneInfo(d["zone"])
    else:
        tz = QtOffsetZone(d["id"], d["offset"], d["name"], d["abbreviation"], d["territory"],
                          d["comment"])
    return dt.datetime.combine(date(d["date"]), qtime(d["time"]), tz)  # type: ignore[arg-type]


def image(d: dict[str, Any] | None) -> Any:
    if d is None:
        return None
    def rgba(argb: int) -> tuple[int, int, int, int]:
        return ((argb >> 16) & 255, (argb >> 8) & 255, argb & 255, argb >> 24)
    mode = {"RGB32": "RGB", "ARGB32": "RGBA", "Grayscale8": "L"}[d["format"]]
    def px(argb: int) -> Any:
        r, g, b, a = rgba(argb)
        return {"RGB": (r, g, b), "RGBA": (r, g, b, a), "L": r}[mode]
    im = Image.new(mode, (d["w"], d["h"]), px(d["fill"]))
    for x, y, argb in d["pixels"]:
        im.putpixel((x, y), px(argb))
    return im


def pyobject_payload(items: list[int], framed: bool) -> bytes:
    """PyQt streams a PyQt_PyObject as a QByteArray holding the pickle."""
    data = pickle.dumps(set(items), protocol=4)
    return (len(data).to_bytes(4, "big") + data) if framed else data


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "int8": int, "uint8": int, "int16": int, "uint16": int, "int32": int, "uint32": int,
    "int64": int, "uint64": int, "bool": bool, "float": _float32, "double": _float,
    "qstring": lambda v: v, "qchar": lambda v: v, "qurl": lambda v: v,
    "qstringlist": list, "qbytearray": lambda v: None if v is None else bytes.fromhex(v),
    "qpoint": lambda v: QPoint(*v), "qpointf": lambda v: QPointF(*v),
    "qsize": lambda v: QSize(*v), "qsizef": lambda v: QSizeF(*v),
    "qrect": lambda v: QRect(*v), "qrectf": lambda v: QRectF(*v),
    "qline": lambda v: QLine(*v), "qlinef": lambda v: QLineF(*v),
    "qcolor": color, "qdate": date, "qtime": qtime, "qdatetime": datetime,
    "quuid": lambda v: __import__("uuid").UUID(v), "qimage": image, "qpixmap": image,
}

_VARIANT_TYPES = {
    "Int": "int32", "UInt": "uint32", "LongLong": "int64", "ULongLong": "uint64",
    "Double": "double", "Float": "float", "Bool": "bool", "Short": "int16", "UShort": "uint16",
    "Char": "int8", "UChar": "uint8", "SChar": "int8", "Long": "int64", "ULong": "uint64",
    "QChar": "qchar", "QString": "qstring", "QByteArray": "qbytearray",
    "QStringList": "qstringlist", "QDate": "qdate", "QTime": "qtime", "QDateTime": "qdatetime",
    "QUrl": "qurl", "QUuid": "quuid", "QRect": "qrect", "QRectF": "qrectf", "QSize": "qsize",
    "QSizeF": "qsizef", "QLine": "qline", "QLineF": "qlinef", "QPoint": "qpoint",
    "QPointF": "qpointf", "QColor": "qcolor", "QImage": "qimage", "QPixmap": "qpixmap",
}


def variant(d: dict[str, Any]) -> QVariant:
    t: str = d["t"]
    v: Any = d.get("v")
    if t == "Invalid":
        return QVariant.invalid()
    if t == "User":
        # The tests register a reader for PyQt_PyObject, so the value is the pickle itself.
        return QVariant.user(d["name"], pyobject_payload(d["pickled"], framed=False))
    if t == "QVariantList":
        value: Any = [variant(x) for x in v]
    elif t in ("QVariantMap", "QVariantHash"):
        value = {k: variant(x) for k, x in v.items()}
    elif t == "QBitArray":
        value = [c == "1" for c in v]
    else:
        value = _SIMPLE[_VARIANT_TYPES[t]](v)
    return QVariant(TypeId[t], value, None, bool(d.get("null", False)))


def to_python(type_: str, v: Any) -> Any:
    if type_ == "qvariant":
        return variant(v)
    if type_ == "qvariantlist":
        return [variant(x) for x in v]
    if type_ in ("qvariantmap", "qvarianthash"):
        return {k: variant(x) for k, x in v.items()}
    return _SIMPLE[type_](v)


def decoded_as_qt_reads_it(value: Any, vec: dict[str, Any]) -> Any:
    """What reading gives back for a value Qt wrote: Qt_5_0 and Qt_5_1 lose QDateTime specs,
    single precision loses double bits."""
    version = vec["version"]
    if vec["precision"] == "single" and vec["type"] == "double":
        return _float32(value)
    if not isinstance(value, dt.datetime) or value.tzinfo is None or version > 14:
        return value
    if version == 13:  # the UTC time was stored; Qt 6 reads offset and zone specs back as UTC
        return value.astimezone(dt.timezone.utc)
    if isinstance(value.tzinfo, dt.timezone) and value.tzinfo is not dt.timezone.utc:
        return value.replace(tzinfo=dt.timezone.utc)  # Qt 4 spec 3: the wall time, taken as UTC
    if value.tzinfo is dt.timezone.utc:
        return value
    return value.replace(tzinfo=None)  # Qt 4 spec 4: the wall time, read as local


# -- comparing -----------------------------------------------------------------------------


def canon(v: Any) -> Any:
    """A form in which equal means "the same Qt value": tz kinds, float bits, image pixels."""
    if isinstance(v, QVariant):
        return ("QVariant", int(v.type_id), canon(v.value), v.type_name, v.is_null)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else v.hex())
    if isinstance(v, dt.datetime):
        tz = v.tzinfo
        kind: Any = None
        if isinstance(tz, zoneinfo.ZoneInfo):
            kind = ("zone", tz.key)
        elif tz is dt.timezone.utc:
            kind = "utc"
        elif isinstance(tz, dt.timezone):
            kind = ("offset", tz.utcoffset(None))
        elif tz is not None:
            kind = ("offsetzone", repr(tz))
        return ("datetime", v.replace(tzinfo=None).isoformat(), kind)
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, memoryview):
        return bytes(v)
    if hasattr(v, "convert") and hasattr(v, "tobytes"):
        return ("image", v.size, v.convert("RGBA").tobytes())
    return v


def contains_image(type_: str, value: Any) -> bool:
    return type_ in ("qimage", "qpixmap") or '"QImage"' in json.dumps(value) \
        or '"QPixmap"' in json.dumps(value)


def reader(vec: dict[str, Any], data: bytes | None = None) -> Reader:
    return Reader(bytes.fromhex(vec["hex"]) if data is None else data, vec["version"],
                  vec["byteorder"], floating_point_precision=vec["precision"],
                  user_types={PYOBJECT: lambda r: r.read_qbytearray()})


def writer(vec: dict[str, Any]) -> Writer:
    # QMap key order follows the writing Qt's major version, not the stream version.
    order = "descending" if vec["qt"].startswith("5.") else "ascending"
    return Writer(vec["version"], vec["byteorder"], floating_point_precision=vec["precision"],
                  qmap_order=order,  # type: ignore[arg-type]
                  user_types={PYOBJECT: lambda w, v: w.write_qbytearray(v)})


def read(r: Reader, type_: str) -> Any:
    if type_ in ("qvariantlist", "qvariantmap", "qvarianthash"):
        return getattr(r, "read_" + type_)(unwrap=False)
    if type_ in ("qimage", "qpixmap"):
        return getattr(r, "read_" + type_)(decode=True)
    return getattr(r, "read_" + type_)()


# -- the tests -----------------------------------------------------------------------------


def test_vector_file_has_a_header_naming_the_qt_that_wrote_it() -> None:
    """The vector file says which Qt builds wrote it and how to regenerate it."""
    header = DOCUMENT["header"]
    qts = {w["qt"].split(".")[0] for w in header["writers"]}
    assert qts == {"5", "6"}
    assert "make_datastream_vectors.py" in header["regenerate"]
    assert {w["default_version"] for w in header["writers"]} == {19, 24}


@pytest.mark.parametrize("vec", WRITES, ids=[v["id"] for v in WRITES])
def test_decoder_reads_what_qt_wrote(vec: dict[str, Any]) -> None:
    """Our decoder reads every Qt-written vector as the value Qt was given, and stops at its end."""
    data = bytes.fromhex(vec["hex"])
    r = reader(vec, data)
    got = read(r, vec["type"])
    expected = decoded_as_qt_reads_it(to_python(vec["type"], vec["value"]), vec)
    assert canon(got) == canon(expected)
    if "trailer_int32" in vec:
        assert r.read_int32() == vec["trailer_int32"]
    assert r.at_end(), f"{r.remaining()} bytes left"


@pytest.mark.parametrize("vec", WRITES, ids=[v["id"] for v in WRITES])
def test_encoder_writes_what_qt_wrote(vec: dict[str, Any]) -> None:
    """Our encoder produces Qt's exact bytes (for PNG images and hash order: the same value)."""
    value = to_python(vec["type"], vec["value"])
    w = writer(vec)
    getattr(w, "write_" + vec["type"])(value)
    if "trailer_int32" in vec:
        w.write_int32(vec["trailer_int32"])
    ours = w.getvalue()
    if contains_image(vec["type"], vec["value"]) or vec.get("exact") is False:
        r = reader(vec, ours)
        expected = decoded_as_qt_reads_it(value, vec)
        assert canon(read(r, vec["type"])) == canon(expected)
        if "trailer_int32" in vec:
            assert r.read_int32() == vec["trailer_int32"]
        assert r.at_end()
        assert len(ours) >= 4 and ours[:4] == bytes.fromhex(vec["hex"])[:4]
    else:
        assert ours.hex() == vec["hex"]


@pytest.mark.parametrize("vec", READS, ids=[v["id"] for v in READS])
def test_decoder_agrees_with_what_qt_read(vec: dict[str, Any]) -> None:
    """On bytes handed to Qt, we read the same value and length, or fail where Qt failed."""
    r = reader(vec)
    type_ = vec["type"]
    fn = getattr(r, "read_" + type_)
    if vec["status"] == "ReadPastEnd":
        with pytest.raises(TruncatedError):
            fn()
        return
    if vec["status"] != "Ok":
        with pytest.raises(DataStreamError):
            fn()
        return
    if type_ == "qvariant":
        got = fn(unwrap=True)
        expected = unwrap(to_python(type_, vec["value"]))
    else:
        got = fn()
        expected = unwrap(to_python(type_, vec["value"]))
    assert canon(got) == canon(expected)
    assert r.pos == vec["consumed"]


USER_TOP = [v for v in WRITES if v["type"] == "qvariant" and v["value"]["t"] == "User"]


@pytest.mark.parametrize("vec", USER_TOP, ids=[v["id"] for v in USER_TOP])
def test_unregistered_user_type_passes_through_as_raw_bytes(vec: dict[str, Any]) -> None:
    """A top-level user type with no registered reader reads as its raw payload and writes back."""
    data = bytes.fromhex(vec["hex"])
    got = Reader(data, vec["version"]).read_qvariant()
    assert got.type_id == TypeId.User and got.type_name == PYOBJECT
    assert got.value == pyobject_payload(vec["value"]["pickled"], framed=True)
    w = Writer(vec["version"])
    w.write_qvariant(got)
    assert w.getvalue() == data


@pytest.mark.parametrize("vec", SIZES, ids=[v["id"] for v in SIZES])
def test_64bit_size_prefix_matches_qt(vec: dict[str, Any]) -> None:
    """The size before a 4 GiB QByteArray is written and read as Qt 6.11 does at versions 21/22."""
    w = Writer(vec["version"])
    if vec["status"] != "Ok":
        with pytest.raises(DataStreamError):
            w.write_size(vec["value"])
        return
    w.write_size(vec["value"])
    assert w.getvalue().hex() == vec["hex"]
    assert Reader(bytes.fromhex(vec["hex"]), vec["version"]).read_size() == vec["value"]


def test_vectors_cover_what_the_brief_asks_for() -> None:
    """The vector set includes the cases the codec is most likely to get wrong."""
    def has(pred: Any) -> bool:
        return any(pred(v) for v in VECTORS)
    assert has(lambda v: v["type"] == "qvariantmap" and v["qt"].startswith("5."))
    assert has(lambda v: v["type"] == "qvariantmap" and v["qt"].startswith("6.")
               and v["version"] == 19)
    assert has(lambda v: v["type"] == "qstring" and v["value"] is None)
    assert has(lambda v: v["type"] == "qbytearray" and v["value"] == "")
    assert has(lambda v: v["type"] == "qvariant" and v["value"]["t"] == "QColor"
               and v["version"] == 19 and v["hex"].startswith("00000043"))
    assert has(lambda v: v["type"] == "qvariant" and v["value"]["t"] == "QColor"
               and v["version"] == 24 and v["hex"].startswith("00001003"))
    assert has(lambda v: v["type"] == "qvariant" and v["value"]["t"] == "Invalid")
    for spec in ("utc", "offset", "zone", "offsetzone", "local"):
        assert has(lambda v, s=spec: v["type"] == "qdatetime" and v["value"]
                   and v["value"]["spec"] == s)
    assert has(lambda v: v["direction"] == "read" and v["version"] >= 22
               and v["hex"].startswith("fffffffe") and v["status"] == "Ok")
    assert has(lambda v: v["type"] == "size" and v["version"] == 22)
