"""The QDataStream :class:`Reader` and :class:`Writer`: the stream machinery, and the codec's
table turned into methods.

A Reader or Writer holds the buffer, the position, the options and the precompiled structs, and
does what every type needs (sizes, bounds checks, nesting depth).  Its ``read_<name>`` /
``write_<name>`` methods are the functions the family modules register in the codec's table
(:data:`~qshm_compat._datastream_base.CODECS`): one line per row below, checked against the table
when this module loads.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Literal, Mapping

from . import _datastream_core as _core
from . import _datastream_geometry as _geometry
from . import _datastream_image as _image
from . import _datastream_time as _time
from . import _datastream_variant as _variant
from ._datastream_base import (
    _EXTENDED_SIZE, _NULL_SIZE, CODECS, DEFAULT_MAX_DEPTH, DEFAULT_VERSION, Qt_6_0, Qt_6_7,
    _as_float, _bad_value, _check_options, _corrupt, _round_f32, _truncated,
)
from .exceptions import DataStreamError

# --------------------------------------------------------------------------------------------
# Reader


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
        self._c = _facade._C
        self._little = byteorder == "little"

    # -- position ----------------------------------------------------------------------------------

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

    # -- raw bytes and sizes -----------------------------------------------------------------------

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

    # -- the types: a row of the codec's table each (see its family module) ------------------------

    read_int8 = _core.read_int8
    read_uint8 = _core.read_uint8
    read_int16 = _core.read_int16
    read_uint16 = _core.read_uint16
    read_int32 = _core.read_int32
    read_uint32 = _core.read_uint32
    read_int64 = _core.read_int64
    read_uint64 = _core.read_uint64
    read_bool = _core.read_bool
    read_double = _core.read_double
    read_float = _core.read_float
    read_qbytearray = _core.read_qbytearray
    read_cstring = _core.read_cstring
    read_qstring = _core.read_qstring
    read_qchar = _core.read_qchar
    read_qstringlist = _core.read_qstringlist
    read_qbytearraylist = _core.read_qbytearraylist
    read_qbitarray = _core.read_qbitarray
    read_qlist = _core.read_qlist
    read_qmap = _core.read_qmap
    read_qhash = _core.read_qhash
    read_quuid = _core.read_quuid
    read_qurl = _core.read_qurl

    read_qvariant = _variant.read_qvariant
    read_qvariantlist = _variant.read_qvariantlist
    read_qvariantmap = _variant.read_qvariantmap
    read_qvarianthash = _variant.read_qvarianthash
    _fallback = _variant._read_fallback  # what the C loops call back

    read_qpoint = _geometry.read_qpoint
    read_qpointf = _geometry.read_qpointf
    read_qsize = _geometry.read_qsize
    read_qsizef = _geometry.read_qsizef
    read_qrect = _geometry.read_qrect
    read_qrectf = _geometry.read_qrectf
    read_qline = _geometry.read_qline
    read_qlinef = _geometry.read_qlinef
    read_qcolor = _geometry.read_qcolor

    read_qdate = _time.read_qdate
    read_qtime = _time.read_qtime
    read_qtimezone = _time.read_qtimezone
    read_qdatetime = _time.read_qdatetime

    read_qimage = _image.read_qimage
    read_qpixmap = _image.read_qpixmap


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
        self._c = None if self._single else _facade._C
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

    # -- raw bytes, sizes and packing --------------------------------------------------------------

    def write_raw(self, data: bytes | bytearray | memoryview) -> None:
        """QDataStream::writeRawData()."""
        self._buf += data

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

    # -- the types: a row of the codec's table each (see its family module) ------------------------

    write_int8 = _core.write_int8
    write_uint8 = _core.write_uint8
    write_int16 = _core.write_int16
    write_uint16 = _core.write_uint16
    write_int32 = _core.write_int32
    write_uint32 = _core.write_uint32
    write_int64 = _core.write_int64
    write_uint64 = _core.write_uint64
    write_bool = _core.write_bool
    write_double = _core.write_double
    write_float = _core.write_float
    write_qbytearray = _core.write_qbytearray
    write_cstring = _core.write_cstring
    write_qstring = _core.write_qstring
    write_qchar = _core.write_qchar
    write_qstringlist = _core.write_qstringlist
    write_qbytearraylist = _core.write_qbytearraylist
    write_qbitarray = _core.write_qbitarray
    write_qlist = _core.write_qlist
    write_qmap = _core.write_qmap
    write_qhash = _core.write_qhash
    write_quuid = _core.write_quuid
    write_qurl = _core.write_qurl

    write_qvariant = _variant.write_qvariant
    write_qvariantlist = _variant.write_qvariantlist
    write_qvariantmap = _variant.write_qvariantmap
    write_qvarianthash = _variant.write_qvarianthash
    _fallback = _variant._write_fallback  # what the C loops call back

    write_qpoint = _geometry.write_qpoint
    write_qpointf = _geometry.write_qpointf
    write_qsize = _geometry.write_qsize
    write_qsizef = _geometry.write_qsizef
    write_qrect = _geometry.write_qrect
    write_qrectf = _geometry.write_qrectf
    write_qline = _geometry.write_qline
    write_qlinef = _geometry.write_qlinef
    write_qcolor = _geometry.write_qcolor

    write_qdate = _time.write_qdate
    write_qtime = _time.write_qtime
    write_qtimezone = _time.write_qtimezone
    write_qdatetime = _time.write_qdatetime

    write_qimage = _image.write_qimage
    write_qpixmap = _image.write_qpixmap


def _check_methods() -> None:
    """Every named row of the table is a method of both classes, and looks like one.

    The functions live in the family modules; they take the name a method has (``Reader.read_x``
    in ``qshm_compat.datastream``), so help(), tracebacks and pickle see what they always saw.
    """
    for name, row in CODECS.items():
        for cls, method, fn in ((Reader, "read_" + name, row.read),
                                (Writer, "write_" + name, row.write)):
            if cls.__dict__.get(method) is not fn:
                raise RuntimeError(f"datastream: {cls.__name__}.{method} is not the codec "
                                   f"table's {name!r} row")
            fn.__qualname__ = f"{cls.__name__}.{method}"
            fn.__module__ = "qshm_compat.datastream"


_check_methods()

# The codec switch (the C helper, or None for the pure code) is qshm_compat.datastream._C, read
# by each new Reader and Writer.  That module imports this one, so it is imported last (and so,
# whichever of the two is imported first, both load).
from . import datastream as _facade  # noqa: E402
