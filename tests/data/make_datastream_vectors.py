#!/usr/bin/env python3
"""Regenerate ``tests/data/datastream_vectors.json``: QDataStream bytes written and read by real Qt.

Run from the project root::

    .venv/bin/python tests/data/make_datastream_vectors.py            # about 30 s, 4.5 GB of RAM
    .venv/bin/python tests/data/make_datastream_vectors.py --skip-huge  # without the 4 GiB vectors

The script starts itself once per Qt binding, each in its own process (PyQt5 and the Qt 6 bindings
cannot share one): PyQt5 (Qt 5.15), PyQt6 and PySide6 (Qt 6).  Every child runs with
``TZ=Europe/Berlin`` (local-time vectors depend on it), ``QT_QPA_PLATFORM=offscreen`` and
``QT_HASH_SEED=0``, serialises each case in CASES with Qt's own ``QDataStream`` at the listed stream
versions, and prints JSON; the parent merges it into the vector file.  Nothing here imports
qshm_compat: the vectors record only what Qt does.

Vector kinds:

* ``"direction": "write"``: Qt wrote ``value`` (described in JSON; the docstring of
  ``tests/test_datastream_golden.py`` says how each description becomes a Python value) and
  produced ``hex``.
* ``"direction": "read"``: Qt was given ``hex`` and reported ``status`` (``Ok``, ``ReadPastEnd``,
  ``ReadCorruptData``, ``SizeLimitExceeded``), the value it read and how many bytes it ``consumed``.
* ``"type": "size"``: the size prefix Qt writes before a 4 GiB QByteArray (``writeBytes``), or the
  status when the size does not fit the version; only the first bytes are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "datastream_vectors.json"
BINDINGS = ("pyqt5", "pyqt6", "pyside6")

# Stream versions per binding: the binding's default first, then a few older ones.
BASIC = {"pyqt5": [19], "pyqt6": [24, 19], "pyside6": [24]}
ONLY_QT5 = {"pyqt5": [19]}
WIDE = {"pyqt5": [19, 17, 13], "pyqt6": [24, 22, 21, 20, 19, 13], "pyside6": [24]}
DATETIME = {"pyqt5": [19, 15, 14, 13], "pyqt6": [24, 22, 20, 19, 15, 14, 13], "pyside6": [24]}
VARIANT = {"pyqt5": [19, 13], "pyqt6": [24, 20, 19], "pyside6": [24]}
QT6_ONLY = {"pyqt6": [24, 19], "pyside6": [24]}


def case(type_: str, value: object, versions: dict[str, list[int]] | None = None,
         **extra: object) -> dict[str, object]:
    return {"type": type_, "value": value, "versions": versions or BASIC, **extra}


def img(w: int, h: int, fmt: str, fill: int, pixels: list[list[int]]) -> dict[str, object]:
    return {"w": w, "h": h, "format": fmt, "fill": fill, "pixels": pixels}


def var(t: str, v: object = None, **extra: object) -> dict[str, object]:
    return {"t": t, "v": v, **extra}


IMAGE_RGB = img(3, 2, "RGB32", 0xFF0A141E, [[1, 1, 0xFFFF0000], [2, 0, 0xFF00FF00]])
IMAGE_ARGB = img(2, 2, "ARGB32", 0x80102030, [[0, 0, 0x00000000], [1, 1, 0xFFFFFFFF]])
IMAGE_GRAY = img(4, 1, "Grayscale8", 0xFF000000, [[1, 0, 0xFF404040], [3, 0, 0xFFFFFFFF]])

DT = "2020-01-02"
DT_SUMMER = "2020-07-02"
TM = "03:04:05.006"

CASES: list[dict[str, object]] = [
    # -- scalars --------------------------------------------------------------------------
    case("int8", -128), case("int8", 127), case("uint8", 255),
    case("int16", -2), case("uint16", 65535),
    case("int32", -1), case("int32", 2147483647), case("uint32", 4294967295),
    case("int64", -(1 << 63)), case("uint64", (1 << 64) - 1),
    case("bool", True), case("bool", False),
    case("float", 1.5), case("float", 0.1), case("double", 0.1), case("double", -0.0),
    case("double", "inf"), case("double", "-inf"), case("double", "nan"),
    case("float", 1.5, BASIC, precision="single"), case("double", 0.1, BASIC, precision="single"),
    case("int32", 1, BASIC, byteorder="little"), case("double", 1.5, BASIC, byteorder="little"),
    case("uint64", 0x0102030405060708, BASIC, byteorder="little"),
    # -- byte arrays and strings ----------------------------------------------------------
    case("qbytearray", None, WIDE), case("qbytearray", "", WIDE),
    case("qbytearray", "616263", WIDE), case("qbytearray", bytes(range(256)).hex()),
    case("qstring", None, WIDE), case("qstring", "", WIDE), case("qstring", "a\u00e9\u20ac", WIDE),
    case("qstring", "\U0001F600"), case("qstring", "a\x00b"),
    case("qstring", "a\u00e9", BASIC, byteorder="little"),
    case("qstringlist", []), case("qstringlist", ["a", "b"], WIDE),
    case("qstringlist", ["", "x\u20ac", "\U0001F600"]),
    case("qstringlist", ["x", "yz"], BASIC, byteorder="little"),
    # (PySide6's writeQChar() writes a C char, not a QChar; QChar comes through QVariant below.)
    # -- geometry and colour --------------------------------------------------------------
    case("qpoint", [1, -2]), case("qpointf", [1.5, -2.25]),
    case("qpointf", [1.5, -2.25], BASIC, precision="single"),
    case("qsize", [3, 4]), case("qsize", [-1, -1]), case("qsizef", [1.5, 2.5]),
    case("qrect", [0, 0, 10, 20]), case("qrect", [-5, 3, 0, 0]),
    case("qrectf", [1.5, 2.0, 3.0, 4.0]),
    case("qrectf", [1.5, 2.0, 3.0, 4.0], BASIC, precision="single"),
    case("qline", [1, 2, 3, 4]), case("qlinef", [1.0, 2.5, 3.0, 4.5]),
    case("qcolor", ["rgb", 255, 0, 0, 255]), case("qcolor", ["rgb", 1, 2, 3, 4]),
    case("qcolor", ["invalid"]), case("qcolor", ["hsv", 100, 50, 25, 255]),
    case("qcolor", ["hsv", -1, 0, 128, 255]), case("qcolor", ["hsl", 200, 100, 50, 128]),
    case("qcolor", ["cmyk", 10, 20, 30, 40, 255]), case("qcolor", ["rgbf", 0.5, 1.5, -0.25, 1.0]),
    case("qcolor", ["rgb", 1, 2, 3, 4], BASIC, byteorder="little"),
    # -- dates and times ------------------------------------------------------------------
    case("qdate", DT, DATETIME), case("qdate", None, DATETIME),
    case("qdate", "0001-01-01"), case("qdate", "9999-12-31"),
    case("qtime", TM, DATETIME), case("qtime", None, DATETIME),
    case("qtime", "00:00:00.000"), case("qtime", "23:59:59.999"),
    case("qdatetime", {"date": DT, "time": TM, "spec": "utc"}, DATETIME),
    case("qdatetime", {"date": DT, "time": TM, "spec": "local"}, DATETIME),
    case("qdatetime", {"date": DT_SUMMER, "time": TM, "spec": "local"}, DATETIME),
    case("qdatetime", {"date": DT, "time": TM, "spec": "offset", "offset": 3600}, DATETIME),
    case("qdatetime", {"date": DT, "time": TM, "spec": "offset", "offset": -12600}),
    case("qdatetime", {"date": DT, "time": TM, "spec": "zone", "zone": "America/New_York"},
         DATETIME),
    case("qdatetime", {"date": DT_SUMMER, "time": TM, "spec": "zone", "zone": "Europe/Berlin"}),
    case("qdatetime", {"date": DT, "time": TM, "spec": "offsetzone", "make": "custom",
                       "id": "Custom/Zone", "offset": 3600, "name": "Name",
                       "abbreviation": "ABR", "territory": 0, "comment": "Comment"},
         {"pyqt5": [19], "pyqt6": [24, 20], "pyside6": [24]}),
    case("qdatetime", {"date": DT, "time": TM, "spec": "offsetzone", "make": "utc()", "id": "UTC",
                       "offset": 0, "name": "UTC", "abbreviation": "UTC", "territory": 0,
                       "comment": "UTC"}, QT6_ONLY),
    case("qdatetime", {"date": DT, "time": TM, "spec": "offsetzone", "make": "seconds",
                       "id": "UTC+01:00", "offset": 3600, "name": "UTC+01:00",
                       "abbreviation": "UTC+01:00", "territory": 0, "comment": "UTC+01:00"},
         QT6_ONLY),
    case("qdatetime", None, DATETIME),
    # -- other value types ----------------------------------------------------------------
    case("quuid", "00112233-4455-6677-8899-aabbccddeeff"),
    case("quuid", "00000000-0000-0000-0000-000000000000"),
    case("quuid", "00112233-4455-6677-8899-aabbccddeeff", BASIC, byteorder="little"),
    case("qurl", "http://a/%C3%A9%20b"), case("qurl", ""),
    case("qurl", "https://user@example.com:8080/p/a%20th?q=1&r=%C3%A9#frag"),
    case("qimage", IMAGE_RGB, WIDE, trailer_int32=7), case("qimage", IMAGE_ARGB, trailer_int32=7),
    case("qimage", IMAGE_GRAY), case("qimage", None, WIDE),
    case("qpixmap", IMAGE_RGB, trailer_int32=7), case("qpixmap", None),
    # -- QVariant -------------------------------------------------------------------------
    case("qvariant", var("Invalid"), VARIANT),
    case("qvariant", var("Int", 5), VARIANT), case("qvariant", var("Int", -7)),
    case("qvariant", var("UInt", 4000000000), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("LongLong", -(1 << 40)), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("LongLong", 1 << 40), {"pyside6": [24]}),
    case("qvariant", var("ULongLong", (1 << 64) - 1), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("Double", 1.5), VARIANT), case("qvariant", var("Bool", True), VARIANT),
    case("qvariant", var("Float", 1.5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("Float", 1.5), {"pyqt6": [24]}, precision="single"),
    case("qvariant", var("Double", 1.5), {"pyqt6": [24]}, precision="single"),
    case("qvariant", var("Short", -5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("UShort", 65535), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("Char", 5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("UChar", 200), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("SChar", -5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("Long", -5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("ULong", 5), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QChar", "\u20ac"), {"pyqt5": [19], "pyqt6": [24, 19]}),
    case("qvariant", var("QString", "a"), VARIANT), case("qvariant", var("QString", ""), VARIANT),
    case("qvariant", var("QString", None, null=True), ONLY_QT5),
    case("qvariant", var("QByteArray", None, null=True), ONLY_QT5),
    case("qvariant", var("QByteArray", "616263"), {"pyqt5": [19], "pyqt6": [24, 19]}),
    case("qvariant", var("QStringList", ["a", "b"]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QVariantList", [var("Int", 1), var("QString", "x")]), VARIANT),
    case("qvariant", var("QVariantMap", {"b": var("Int", 1), "a": var("Int", 2)}), VARIANT),
    case("qvariant", var("QVariantHash", {"k": var("QString", "v")}),
         {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QVariantMap", {"outer": var("QVariantList", [
        var("QVariantMap", {"i": var("Int", 1), "s": var("QString", "t")}),
        var("QVariantList", []), var("Double", 2.5)])}), VARIANT),
    case("qvariant", var("QDate", DT), VARIANT), case("qvariant", var("QTime", TM), VARIANT),
    case("qvariant", var("QDateTime", {"date": DT, "time": TM, "spec": "utc"}), VARIANT),
    case("qvariant", var("QUrl", "http://a/b"), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QUuid", "00112233-4455-6677-8899-aabbccddeeff"),
         {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QRect", [0, 0, 10, 20]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QRectF", [1.5, 2.0, 3.0, 4.0]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QSize", [3, 4]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QSizeF", [1.5, 2.5]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QLine", [1, 2, 3, 4]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QLineF", [1.0, 2.0, 3.0, 4.0]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QPoint", [1, -2]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QPointF", [1.5, -2.25]), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QBitArray", "1000000001"), {"pyqt5": [19], "pyqt6": [24, 20, 19]}),
    case("qvariant", var("QBitArray", ""), {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariant", var("QColor", ["rgb", 255, 0, 0, 255]), VARIANT),
    case("qvariant", var("QImage", IMAGE_RGB), {"pyqt5": [19], "pyqt6": [24, 19]},
         trailer_int32=7),
    case("qvariant", var("QPixmap", IMAGE_RGB), {"pyqt5": [19], "pyqt6": [24, 19]}),
    case("qvariant", var("User", name="PyQt_PyObject", pickled=[1, 2]),
         {"pyqt5": [19], "pyqt6": [24, 19]}),
    case("qvariantlist", [var("User", name="PyQt_PyObject", pickled=[3]), var("Int", 1)],
         {"pyqt5": [19], "pyqt6": [24]}),
    # -- containers: QMap order (Qt 5 descending, Qt 6 ascending at every version) ----------
    case("qvariantmap", {"b": var("Int", 1), "a": var("Int", 2), "c": var("Int", 3)},
         {"pyqt5": [19, 13], "pyqt6": [24, 20, 19, 13], "pyside6": [24, 19]}),
    case("qvariantmap", {"\uffff": var("Int", 1), "\U0001F600": var("Int", 2)},
         {"pyqt5": [19], "pyqt6": [24], "pyside6": [24]}),
    case("qvariantmap", {}, {"pyqt5": [19], "pyqt6": [24]}),
    case("qvariantmap", {"k": var("QString", "v")}, BASIC, byteorder="little"),
    case("qvariantlist", [var("Int", 1), var("QString", "x"), var("Double", 0.5)], VARIANT),
    case("qvarianthash", {"k": var("Int", 1)}, {"pyqt5": [19], "pyqt6": [24]}),
    # More than one entry: Qt's hash order cannot be reproduced, so only decoding is compared.
    case("qvarianthash", {"a": var("Int", 1), "b": var("Int", 2), "c": var("Int", 3)},
         {"pyqt5": [19], "pyqt6": [24]}, exact=False),
]

# Bytes handed to Qt to read.  64-bit sizes exist from Qt_6_7 (22); before, 0xFFFFFFFE is a size.
EXT = "fffffffe"
READ_CASES: list[dict[str, object]] = [
    {"type": "qbytearray", "hex": EXT + "0000000000000003" + "616263", "versions": [21, 22, 24]},
    {"type": "qstring", "hex": EXT + "0000000000000006" + "006100620063", "versions": [21, 22, 24]},
    {"type": "qstringlist", "hex": EXT + "0000000000000002" + "00000002006100000002" + "0062",
     "versions": [21, 22, 24]},
    {"type": "qstringlist", "hex": "ffffffff", "versions": [21, 24]},
    {"type": "qvariantmap", "hex": EXT + "0000000000000001" + "000000020061" + "0000000a00" + EXT
     + "0000000000000002" + "0062", "versions": [22, 24]},
    {"type": "qvariant", "hex": "0000000700" + "20ac", "versions": [19, 24]},
    {"type": "qvariant", "hex": "0000000000", "versions": [19, 24]},
    {"type": "qdatetime", "hex": "00000000002584e3" + "ffffffff" + "01", "versions": [19, 24]},
    {"type": "qdatetime", "hex": "00000000002584e3" + "055265c0" + "01", "versions": [19, 24]},
    {"type": "qbytearray", "hex": "00000005" + "616263", "versions": [19, 24]},
    {"type": "qstring", "hex": "00000003" + "006100", "versions": [19, 24]},
]


# ------------------------------------------------------------------------------------------
# Child side: one binding


def child(binding: str, skip_huge: bool) -> None:
    if binding == "pyqt5":
        from PyQt5 import QtCore, QtGui
        binding_version = QtCore.PYQT_VERSION_STR
    elif binding == "pyqt6":
        from PyQt6 import QtCore, QtGui  # type: ignore[no-redef]
        binding_version = QtCore.PYQT_VERSION_STR
    else:
        import PySide6
        from PySide6 import QtCore, QtGui  # type: ignore[no-redef]
        binding_version = PySide6.__version__
    app = QtGui.QGuiApplication([sys.argv[0]])  # noqa: F841 - QImage/QPixmap/QColor need it
    qt5 = binding == "pyqt5"
    pyside = binding == "pyside6"

    def enum(scope: object, scoped: str, name: str) -> object:
        try:
            return getattr(getattr(scope, scoped), name)
        except AttributeError:
            return getattr(scope, name)

    Q = QtCore
    write_only = enum(Q.QIODevice, "OpenModeFlag", "WriteOnly")

    def status_name(s: object) -> str:
        names = {0: "Ok", 1: "ReadPastEnd", 2: "ReadCorruptData", 3: "WriteFailed",
                 4: "SizeLimitExceeded"}
        value = getattr(s, "value", s)
        return names[int(value)]  # type: ignore[arg-type]

    def stream(ba: object, version: int, opts: dict[str, object]) -> object:
        s = Q.QDataStream(ba, write_only)
        s.setVersion(version)
        if opts.get("byteorder") == "little":
            s.setByteOrder(enum(Q.QDataStream, "ByteOrder", "LittleEndian"))
        if opts.get("precision") == "single":
            s.setFloatingPointPrecision(enum(Q.QDataStream, "FloatingPointPrecision",
                                             "SinglePrecision"))
        return s

    def qdate(d: str | None) -> object:
        if d is None:
            return Q.QDate()
        y, m, dd = (int(x) for x in d.split("-"))
        return Q.QDate(y, m, dd)

    def qtime(t: str | None) -> object:
        if t is None:
            return Q.QTime()
        hms, ms = t.split(".")
        h, mi, sec = (int(x) for x in hms.split(":"))
        return Q.QTime(h, mi, sec, int(ms))

    def qdatetime(d: dict[str, object] | None) -> object:
        if d is None:
            return Q.QDateTime()
        date, time, spec = qdate(d["date"]), qtime(d["time"]), d["spec"]  # type: ignore[arg-type]
        if spec == "local":
            return Q.QDateTime(date, time)
        if spec == "utc":
            if qt5:
                return Q.QDateTime(date, time, Q.Qt.UTC)
            return Q.QDateTime(date, time, Q.QTimeZone(Q.QTimeZone.Initialization.UTC))
        if spec == "offset":
            if qt5:
                return Q.QDateTime(date, time, Q.Qt.OffsetFromUTC, d["offset"])
            return Q.QDateTime(date, time, Q.QTimeZone.fromSecondsAheadOfUtc(d["offset"]))
        if spec == "zone":
            return Q.QDateTime(date, time, Q.QTimeZone(str(d["zone"]).encode()))
        assert spec == "offsetzone"
        if d["make"] == "utc()":
            zone = Q.QTimeZone.utc()
        elif d["make"] == "seconds":
            zone = Q.QTimeZone(d["offset"])
        else:
            territory = enum(Q.QLocale, "Country", "AnyCountry")
            zone = Q.QTimeZone(str(d["id"]).encode(), d["offset"], d["name"], d["abbreviation"],
                               territory, d["comment"])
        return Q.QDateTime(date, time, zone)

    def qcolor(c: list[object]) -> object:
        kind, *args = c
        if kind == "rgb":
            return QtGui.QColor(*args)
        if kind == "invalid":
            return QtGui.QColor()
        if kind == "rgbf":
            return QtGui.QColor.fromRgbF(*args)
        return getattr(QtGui.QColor, {"hsv": "fromHsv", "hsl": "fromHsl",
                                      "cmyk": "fromCmyk"}[kind])(*args)

    def qimage(d: dict[str, object] | None) -> object:
        if d is None:
            return QtGui.QImage()
        fmt = enum(QtGui.QImage, "Format", "Format_" + str(d["format"]))
        image = QtGui.QImage(d["w"], d["h"], fmt)
        image.fill(QtGui.QColor.fromRgba(d["fill"]))
        for x, y, argb in d["pixels"]:  # type: ignore[union-attr]
            if d["format"] == "Grayscale8":
                image.setPixelColor(x, y, QtGui.QColor.fromRgba(argb))
            else:
                image.setPixel(x, y, argb)
        return image

    def metatype(name: str) -> object:
        if qt5:
            return getattr(Q.QMetaType, name)
        return Q.QMetaType(getattr(Q.QMetaType.Type, name).value)

    def qvariant(d: dict[str, object]) -> object:
        """A QVariant of the described type (PyQt only; PySide6 converts plain values)."""
        t, v = d["t"], d.get("v")
        if pyside:
            return plain(d)
        if t == "Invalid":
            return Q.QVariant()
        if d.get("null"):
            return Q.QVariant(getattr(Q.QVariant, {"QString": "String",
                                                   "QByteArray": "ByteArray"}[str(t)]))
        if t == "User":
            return Q.QVariant(set(d["pickled"]))  # type: ignore[call-overload]
        if t in ("Int", "Double", "Bool", "QString"):
            return Q.QVariant(v)
        if t == "QChar":
            out = Q.QVariant(ord(str(v)))
            assert out.convert(metatype("QChar"))
            return out
        if t in ("UInt", "LongLong", "ULongLong", "Float", "Short", "UShort", "Char", "UChar",
                 "SChar", "Long", "ULong", "QStringList"):
            out = Q.QVariant(v)
            assert out.convert(metatype(str(t))), t
            return out
        if t == "QVariantList":
            return Q.QVariant([qvariant(x) for x in v])  # type: ignore[union-attr]
        if t in ("QVariantMap", "QVariantHash"):
            out = Q.QVariant({k: qvariant(x) for k, x in v.items()})  # type: ignore[union-attr]
            if t == "QVariantHash":
                assert out.convert(metatype("QVariantHash"))
            return out
        if t == "QBitArray":
            bits = Q.QBitArray(len(v))  # type: ignore[arg-type]
            for i, ch in enumerate(str(v)):
                bits.setBit(i, ch == "1")
            return Q.QVariant(bits)
        return Q.QVariant(qt_value(str(t).lower(), v))

    def plain(d: dict[str, object]) -> object:
        """The Python value PySide6 turns into the described QVariant."""
        t, v = d["t"], d.get("v")
        if t == "Invalid":
            return None
        if t in ("Int", "LongLong", "Double", "Bool", "QString"):
            return v
        if t == "QVariantList":
            return [plain(x) for x in v]  # type: ignore[union-attr]
        if t == "QVariantMap":
            return {k: plain(x) for k, x in v.items()}  # type: ignore[union-attr]
        return qt_value(str(t).lower(), v)

    def qt_value(type_: str, v: object) -> object:
        if type_ == "qbytearray":
            return Q.QByteArray() if v is None else Q.QByteArray(bytes.fromhex(str(v)))
        if type_ in ("qpoint", "qpointf", "qsize", "qsizef", "qrect", "qrectf", "qline",
                     "qlinef"):
            cls = getattr(Q, {"qpointf": "QPointF", "qsizef": "QSizeF", "qrectf": "QRectF",
                              "qlinef": "QLineF"}.get(type_, "Q" + type_[1:].capitalize()))
            return cls(*v)  # type: ignore[misc]
        if type_ == "qcolor":
            return qcolor(v)  # type: ignore[arg-type]
        if type_ == "qdate":
            return qdate(v)  # type: ignore[arg-type]
        if type_ == "qtime":
            return qtime(v)  # type: ignore[arg-type]
        if type_ == "qdatetime":
            return qdatetime(v)  # type: ignore[arg-type]
        if type_ == "quuid":
            return Q.QUuid("{" + str(v) + "}")
        if type_ == "qurl":
            return Q.QUrl(v)
        if type_ == "qimage":
            return qimage(v)  # type: ignore[arg-type]
        if type_ == "qpixmap":
            return QtGui.QPixmap() if v is None else QtGui.QPixmap.fromImage(qimage(v))
        raise ValueError(type_)

    def number(v: object) -> float:
        return float(v) if isinstance(v, str) else v  # type: ignore[return-value]

    def write_payload(s: object, value: object) -> None:
        """PySide6 has no writeQVariantList/Map: write a QVariant's payload, without its header."""
        ba = Q.QByteArray()
        inner = Q.QDataStream(ba, write_only)
        inner.setVersion(s.version())  # type: ignore[attr-defined]
        inner.setByteOrder(s.byteOrder())  # type: ignore[attr-defined]
        inner.writeQVariant(value)
        s.writeRawData(bytes(ba)[5:])  # type: ignore[attr-defined]

    def write(s: object, type_: str, v: object) -> None:
        scalar = {"int8": "writeInt8", "uint8": "writeUInt8", "int16": "writeInt16",
                  "uint16": "writeUInt16", "int32": "writeInt32", "uint32": "writeUInt32",
                  "int64": "writeInt64", "uint64": "writeUInt64", "bool": "writeBool"}
        if type_ in scalar:
            getattr(s, scalar[type_])(v)
        elif type_ == "float":
            s.writeFloat(number(v))  # type: ignore[attr-defined]
        elif type_ == "double":
            s.writeDouble(number(v))  # type: ignore[attr-defined]
        elif type_ == "qstring":
            s.writeQString(v)  # type: ignore[attr-defined]
        elif type_ == "qstringlist":
            s.writeQStringList(v)  # type: ignore[attr-defined]
        elif type_ == "qchar":
            s.writeQChar(v)  # type: ignore[attr-defined]
        elif type_ == "qvariant":
            s.writeQVariant(qvariant(v))  # type: ignore[arg-type, attr-defined]
        elif type_ == "qvariantlist":
            values = [qvariant(x) for x in v]  # type: ignore[union-attr]
            if pyside:
                write_payload(s, values)
            else:
                s.writeQVariantList(values)  # type: ignore[attr-defined]
        elif type_ in ("qvariantmap", "qvarianthash"):
            values = {k: qvariant(x) for k, x in v.items()}  # type: ignore[union-attr]
            if pyside:
                write_payload(s, values)
            elif type_ == "qvariantmap":
                s.writeQVariantMap(values)  # type: ignore[attr-defined]
            else:
                s.writeQVariantHash(values)  # type: ignore[attr-defined]
        else:
            s << qt_value(type_, v)  # type: ignore[operator]

    vectors: list[dict[str, object]] = []
    label = {"pyqt5": "PyQt5", "pyqt6": "PyQt6", "pyside6": "PySide6"}[binding]
    who = {"binding": f"{label} {binding_version}", "qt": Q.qVersion()}
    for index, c in enumerate(CASES):
        versions = c["versions"].get(binding, [])  # type: ignore[union-attr]
        for version in versions:
            opts = {k: c[k] for k in ("byteorder", "precision") if k in c}
            if pyside and c["type"] in ("qvariantlist",) and any(
                    x.get("t") == "User" for x in c["value"]):  # type: ignore[union-attr]
                continue
            ba = Q.QByteArray()
            s = stream(ba, version, opts)
            write(s, str(c["type"]), c["value"])
            if "trailer_int32" in c:
                s.writeInt32(c["trailer_int32"])  # type: ignore[attr-defined]
            assert status_name(s.status()) == "Ok", (c, version)  # type: ignore[attr-defined]
            vec = {"id": f"{binding}/{version}/{c['type']}/{index}", **who,
                   "direction": "write", "type": c["type"], "value": c["value"],
                   "version": version, "byteorder": opts.get("byteorder", "big"),
                   "precision": opts.get("precision", "double"), "hex": bytes(ba).hex()}
            for key in ("trailer_int32", "exact"):
                if key in c:
                    vec[key] = c[key]
            vectors.append(vec)

    if binding in ("pyqt5", "pyqt6"):
        vectors.extend(read_vectors(Q, binding, who, status_name, qdatetime_desc))
    if binding == "pyqt6" and not skip_huge:
        vectors.extend(huge_vectors(Q, who, write_only, status_name))
    print(json.dumps({"binding": who["binding"], "qt": who["qt"],
                      "default_version": Q.QDataStream().version(), "vectors": vectors}))


def qdatetime_desc(Q: object, dt: object) -> object:
    if not dt.isValid():  # type: ignore[attr-defined]
        return None
    spec = dt.timeSpec()  # type: ignore[attr-defined]
    spec = int(getattr(spec, "value", spec))
    text = dt.toString("yyyy-MM-dd HH:mm:ss.zzz")  # type: ignore[attr-defined]
    date, time = text.split(" ")
    return {"date": date, "time": time, "spec": {0: "local", 1: "utc"}[spec]}


def read_vectors(Q: object, binding: str, who: dict[str, object], status_name: object,
                 qdatetime_desc: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for index, c in enumerate(READ_CASES):
        for version in c["versions"]:  # type: ignore[attr-defined]
            if binding == "pyqt5" and version > 19:
                continue
            raw = bytes.fromhex(str(c["hex"]))
            ba = Q.QByteArray(raw)  # type: ignore[attr-defined]
            s = Q.QDataStream(ba)  # type: ignore[attr-defined]
            s.setVersion(version)
            t = c["type"]
            if t == "qbytearray":
                v = Q.QByteArray()  # type: ignore[attr-defined]
                s >> v
                value: object = bytes(v).hex() if not v.isNull() else None
            elif t == "qstring":
                value = s.readQString()
            elif t == "qstringlist":
                value = s.readQStringList()
            elif t == "qvariantmap":
                value = {k: {"t": "QString", "v": x} for k, x in s.readQVariantMap().items()}
            elif t == "qvariant":
                x = s.readQVariant()
                value = {"t": "Invalid", "v": None} if x is None else {"t": "QChar", "v": x}
            elif t == "qdatetime":
                v = Q.QDateTime()  # type: ignore[attr-defined]
                s >> v
                value = qdatetime_desc(Q, v)  # type: ignore[operator]
            else:
                raise ValueError(t)
            status = status_name(s.status())  # type: ignore[operator]
            out.append({"id": f"{binding}/{version}/read-{t}/{index}", **who, "direction": "read",
                        "type": t, "hex": c["hex"], "version": version, "byteorder": "big",
                        "precision": "double", "status": status,
                        "value": value if status == "Ok" else None,
                        "consumed": s.device().pos()})
    return out


def huge_vectors(Q: object, who: dict[str, object], write_only: object,
                 status_name: object) -> list[dict[str, object]]:
    """The size prefix Qt writes before 0xFFFFFFFE and 0xFFFFFFFF bytes (needs ~4.3 GB)."""
    import gc
    out: list[dict[str, object]] = []
    for n in (0xFFFFFFFE, 0xFFFFFFFF):
        big = bytes(n)  # calloc'ed: untouched pages cost nothing
        for version in (21, 22):
            buf = Q.QBuffer()  # type: ignore[attr-defined]
            buf.open(write_only)
            s = Q.QDataStream(buf)  # type: ignore[attr-defined]
            s.setVersion(version)
            s.writeBytes(big)
            data = buf.data()
            status = status_name(s.status())  # type: ignore[operator]
            prefix = bytes(data[:12] if version >= 22 else data[:4]) if data.size() else b""
            out.append({"id": f"pyqt6/{version}/size/{n:x}", **who, "direction": "write",
                        "type": "size", "value": n, "version": version, "byteorder": "big",
                        "precision": "double", "status": status, "hex": prefix.hex(),
                        "note": "size prefix of QDataStream::writeBytes() on "
                                f"{n} bytes; total written {data.size()}"})
            del data, s, buf
            gc.collect()
        del big
    return out


# ------------------------------------------------------------------------------------------
# Parent side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binding", choices=BINDINGS, help=argparse.SUPPRESS)
    parser.add_argument("--skip-huge", action="store_true",
                        help="skip the 4 GiB QByteArray size vectors (they need ~4.5 GB RAM)")
    args = parser.parse_args()
    if args.binding:
        child(args.binding, args.skip_huge)
        return
    env = dict(os.environ, TZ="Europe/Berlin", QT_QPA_PLATFORM="offscreen", QT_HASH_SEED="0")
    writers, vectors = [], []
    for binding in BINDINGS:
        cmd = [sys.executable, __file__, "--binding", binding]
        if args.skip_huge:
            cmd.append("--skip-huge")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
        result = json.loads(proc.stdout)
        vectors.extend(result.pop("vectors"))
        writers.append(result)
    if args.skip_huge and OUTPUT.exists():
        # Keep the 4 GiB vectors of the previous run rather than dropping them.
        old = json.loads(OUTPUT.read_text())
        vectors.extend(v for v in old["vectors"] if v["type"] == "size")
    document = {
        "header": {
            "what": "QDataStream bytes written and read by real Qt, "
                    "for tests/test_datastream_golden.py",
            "writers": writers,
            "environment": {"TZ": "Europe/Berlin", "QT_QPA_PLATFORM": "offscreen",
                            "QT_HASH_SEED": "0", "python": platform.python_version(),
                            "platform": platform.platform()},
            "regenerate": ".venv/bin/python tests/data/make_datastream_vectors.py "
                          "(add --skip-huge to keep the 4 GiB size vectors from the last run)",
            "value_descriptions": "see the docstring of tests/test_datastream_golden.py",
        },
        "vectors": vectors,
    }
    OUTPUT.write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n")
    print(f"wrote {len(vectors)} vectors to {OUTPUT}")


if __name__ == "__main__":
    main()
