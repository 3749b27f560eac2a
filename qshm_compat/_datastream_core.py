"""QDataStream's core types: integers, bool, floating point, byte arrays, strings and their lists,
QBitArray, the generic QList / QMap / QHash, QUuid and QUrl.

Each type's read and write functions sit side by side; they are the ``Reader.read_<name>`` and
``Writer.write_<name>`` methods (the functions take the stream as ``self``), registered in the
codec's table at the end of the module.  Facts: Qt's ``qdatastream.cpp``, ``qstring.cpp``,
``qbytearray.cpp``, ``qbitarray.cpp``, ``quuid.cpp`` and ``qurl.cpp``, checked against PyQt5,
PyQt6 and PySide6 (the golden vectors).
"""

from __future__ import annotations

import struct
import uuid
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TypeVar

from ._datastream_base import (
    _EXTENDED_SIZE, Codec, TypeId, _as_float, _corrupt, _round_f32, register,
)
from .exceptions import DataStreamError

if TYPE_CHECKING:
    from ._datastream_stream import Reader, Writer

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

# --------------------------------------------------------------------------------------------
# Integers, bool and floating point


def read_int8(self: Reader) -> int:
    """QDataStream::operator>>(qint8&)."""
    return int(self._unpack(self._s.i8, "qint8")[0])


def write_int8(self: Writer, value: int) -> None:
    """QDataStream::operator<<(qint8)."""
    self._pack(self._s.i8, value, "qint8")


def read_uint8(self: Reader) -> int:
    """QDataStream::operator>>(quint8&)."""
    return int(self._unpack(self._s.u8, "quint8")[0])


def write_uint8(self: Writer, value: int) -> None:
    """QDataStream::operator<<(quint8)."""
    self._pack(self._s.u8, value, "quint8")


def read_int16(self: Reader) -> int:
    """QDataStream::operator>>(qint16&)."""
    return int(self._unpack(self._s.i16, "qint16")[0])


def write_int16(self: Writer, value: int) -> None:
    """QDataStream::operator<<(qint16)."""
    self._pack(self._s.i16, value, "qint16")


def read_uint16(self: Reader) -> int:
    """QDataStream::operator>>(quint16&)."""
    return int(self._unpack(self._s.u16, "quint16")[0])


def write_uint16(self: Writer, value: int) -> None:
    """QDataStream::operator<<(quint16)."""
    self._pack(self._s.u16, value, "quint16")


def read_int32(self: Reader) -> int:
    """QDataStream::operator>>(qint32&)."""
    return int(self._unpack(self._s.i32, "qint32")[0])


def write_int32(self: Writer, value: int) -> None:
    """QDataStream::operator<<(qint32)."""
    self._pack(self._s.i32, value, "qint32")


def read_uint32(self: Reader) -> int:
    """QDataStream::operator>>(quint32&)."""
    return int(self._unpack(self._s.u32, "quint32")[0])


def write_uint32(self: Writer, value: int) -> None:
    """QDataStream::operator<<(quint32)."""
    self._pack(self._s.u32, value, "quint32")


def read_int64(self: Reader) -> int:
    """QDataStream::operator>>(qint64&)."""
    return int(self._unpack(self._s.i64, "qint64")[0])


def write_int64(self: Writer, value: int) -> None:
    """QDataStream::operator<<(qint64)."""
    self._pack(self._s.i64, value, "qint64")


def read_uint64(self: Reader) -> int:
    """QDataStream::operator>>(quint64&)."""
    return int(self._unpack(self._s.u64, "quint64")[0])


def write_uint64(self: Writer, value: int) -> None:
    """QDataStream::operator<<(quint64)."""
    self._pack(self._s.u64, value, "quint64")


def read_bool(self: Reader) -> bool:
    """QDataStream::operator>>(bool&): any non-zero byte is true."""
    return bool(self._unpack(self._s.i8, "bool")[0])


def write_bool(self: Writer, value: bool) -> None:
    """QDataStream::operator<<(bool): one byte, 0 or 1."""
    self._buf += b"\x01" if value else b"\x00"


def read_double(self: Reader) -> float:
    """QDataStream::operator>>(double&): 8 bytes, or 4 under single precision."""
    return float(self._unpack(self._s.f32 if self._single else self._s.f64, "double")[0])


def write_double(self: Writer, value: float) -> None:
    """QDataStream::operator<<(double): 8 bytes, or 4 under single precision."""
    if self._single:
        self._pack(self._s.f32, _round_f32(_as_float(value, "double")), "double")
    else:
        self._pack(self._s.f64, value, "double")


def read_float(self: Reader) -> float:
    """QDataStream::operator>>(float&): 8 bytes rounded to single precision, or 4 bytes."""
    v = float(self._unpack(self._s.f32 if self._single else self._s.f64, "float")[0])
    return v if self.floating_point_precision == "single" else _round_f32(v)


def write_float(self: Writer, value: float) -> None:
    """QDataStream::operator<<(float): the value rounded to single precision, 8 or 4 bytes."""
    v = _round_f32(_as_float(value, "float"))
    self._pack(self._s.f32 if self._single else self._s.f64, v, "float")


def _read_char16(r: Reader) -> int:
    return r.read_uint16()


def _write_char16(w: Writer, value: int) -> None:
    w.write_uint16(value)


# --------------------------------------------------------------------------------------------
# Byte arrays and strings


def read_qbytearray(self: Reader, *, copy: bool = True) -> bytes | memoryview | None:
    """QDataStream::operator>>(QByteArray&): ``None`` for null, ``b""`` for empty.

    With ``copy=False`` the value is a zero-copy memoryview into the input.
    """
    span = self._read_len("QByteArray")
    if span is None:
        return None
    if copy:
        return bytes(self._buf[span[0]:span[1]])
    return self._view()[span[0]:span[1]]


def write_qbytearray(self: Writer, value: bytes | bytearray | memoryview | None) -> None:
    """QDataStream::operator<<(const QByteArray&): ``None`` writes a null QByteArray."""
    if value is None:
        self._buf += b"\xff\xff\xff\xff"
        return
    if isinstance(value, str) or not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"QByteArray needs bytes, not {type(value).__name__}")
    n = value.nbytes if isinstance(value, memoryview) else len(value)
    self.write_size(n)
    self._buf += value


def read_cstring(self: Reader) -> bytes | None:
    """QDataStream::operator>>(char*&): the bytes without the final NUL; None for length 0."""
    span = self._read_len("char*")
    if span is None or span[0] == span[1]:
        return None
    data = bytes(self._buf[span[0]:span[1]])
    return data[:-1] if data.endswith(b"\0") else data


def write_cstring(self: Writer, value: bytes | None) -> None:
    """QDataStream::operator<<(const char*): length with the NUL, bytes, NUL; None = 0."""
    if value is None:
        self.write_size(0)
        return
    self.write_size(len(value) + 1)
    self._buf += value
    self._buf += b"\0"


def read_qstring(self: Reader) -> str | None:
    """QDataStream::operator>>(QString&): UTF-16 in the stream byte order; None for null."""
    pos = self._pos
    span = self._read_len("QString")
    if span is None:
        return None
    start, end = span
    if (end - start) & 1:
        raise _corrupt("QString", pos, f"odd byte length {end - start}")
    return str(self._s.decode(self._buf[start:end], "surrogatepass", True)[0])


def write_qstring(self: Writer, value: str | None) -> None:
    """QDataStream::operator<<(const QString&): ``None`` writes a null QString."""
    if value is None:
        self._buf += b"\xff\xff\xff\xff"
        return
    if not isinstance(value, str):
        raise TypeError(f"QString needs str, not {type(value).__name__}")
    data = self._s.encode(value, "surrogatepass")[0]
    self.write_size(len(data))
    self._buf += data


def read_qchar(self: Reader) -> str:
    """QDataStream::operator>>(QChar&): one UTF-16 code unit."""
    return chr(self._unpack(self._s.u16, "QChar")[0])


def write_qchar(self: Writer, value: str) -> None:
    """QDataStream::operator<<(QChar): one UTF-16 code unit."""
    if not isinstance(value, str) or len(value) != 1 or ord(value) > 0xFFFF:
        raise DataStreamError(f"QChar needs one UTF-16 code unit, not {value!r}")
    self._buf += self._s.u16.pack(ord(value))


def read_qstringlist(self: Reader) -> list[str | None]:
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


def write_qstringlist(self: Writer, values: Sequence[str | None]) -> None:
    """QDataStream::operator<<(const QStringList&)."""
    self.write_size(len(values))
    if self._c is not None and self._c.write_strings(self._buf, values, self._little):
        return
    data = _encode_strings(self, values)
    if data is not None:
        self._buf += data
        return
    for s in values:
        self.write_qstring(s)


def _encode_strings(self: Writer, values: Sequence[str | None]) -> bytes | None:
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


def read_qbytearraylist(self: Reader) -> list[bytes | None]:
    """QDataStream::operator>>(QByteArrayList&)."""
    n = self._read_count("QByteArrayList", 4)
    return [self.read_qbytearray() for _ in range(n)]  # type: ignore[misc]


def write_qbytearraylist(self: Writer, values: Sequence[bytes | None]) -> None:
    """QDataStream::operator<<(const QByteArrayList&)."""
    self.write_size(len(values))
    for v in values:
        self.write_qbytearray(v)


def read_qbitarray(self: Reader) -> list[bool]:
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


def write_qbitarray(self: Writer, bits: Sequence[bool]) -> None:
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


# --------------------------------------------------------------------------------------------
# Generic containers: the element readers and writers are the caller's


def read_qlist(self: Reader, item: Callable[[Reader], T]) -> list[T]:
    """QList<T> / QVector<T>: a size, then each element read by ``item(reader)``."""
    n = self._read_count("QList", 1)
    self._enter("QList")
    try:
        out = [item(self) for _ in range(n)]
    finally:
        self._depth -= 1
    return out


def write_qlist(self: Writer, values: Sequence[T], item: Callable[[Writer, T], None]) -> None:
    """QList<T>: the size, then ``item(writer, element)`` for each element."""
    self.write_size(len(values))
    self._enter("QList")
    try:
        for v in values:
            item(self, v)
    finally:
        self._depth -= 1


def read_qmap(self: Reader, key: Callable[[Reader], K], value: Callable[[Reader], V]) -> dict[K, V]:
    """QMap<K, V>: a size, then key/value pairs; the dict keeps the stream order.

    Qt 5 writes descending keys, Qt 6 ascending.  A repeated key (a QMultiMap) keeps its last
    value, which is the one ``QMap::value()`` returns in Qt.
    """
    return _read_pairs(self, "QMap", key, value)


def write_qmap(self: Writer, mapping: Mapping[K, V], key: Callable[[Writer, K], None],
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


def read_qhash(self: Reader, key: Callable[[Reader], K],
               value: Callable[[Reader], V]) -> dict[K, V]:
    """QHash<K, V>: like QMap, in the hash order the writer happened to have."""
    return _read_pairs(self, "QHash", key, value)


def write_qhash(self: Writer, mapping: Mapping[K, V], key: Callable[[Writer, K], None],
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


def _read_pairs(self: Reader, what: str, key: Callable[[Reader], K],
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


# --------------------------------------------------------------------------------------------
# Other value types


def read_quuid(self: Reader) -> uuid.UUID:
    """QDataStream::operator>>(QUuid&): 16 bytes, fields swapped in little-endian streams."""
    raw = self.read_raw(16)
    assert isinstance(raw, bytes)
    return uuid.UUID(bytes=raw) if self.byteorder == "big" else uuid.UUID(bytes_le=raw)


def write_quuid(self: Writer, value: uuid.UUID) -> None:
    """QDataStream::operator<<(QUuid): 16 bytes, fields swapped in little-endian streams."""
    self._buf += value.bytes if self.byteorder == "big" else value.bytes_le


def read_qurl(self: Reader) -> str:
    """QDataStream::operator>>(QUrl&): the encoded URL (a QByteArray); ``""`` for null."""
    raw = self.read_qbytearray()
    assert not isinstance(raw, memoryview)
    return raw.decode("latin-1") if raw else ""


def write_qurl(self: Writer, value: str) -> None:
    """QDataStream::operator<<(QUrl): the encoded URL as a QByteArray; ``""`` is null.

    Characters a fully encoded URL may not hold (non-ASCII, space, quotes, ...) are
    percent-encoded as UTF-8, as ``QUrl::toEncoded()`` does; nothing else is normalised.
    """
    if not isinstance(value, str):
        raise TypeError(f"QUrl needs str, not {type(value).__name__}")
    if not value:
        self.write_qbytearray(None)
        return
    from urllib.parse import quote  # here: with ipaddress, 2 ms of the codec's import

    encoded = quote(value, safe="!#$%&'()*+,/:;=?@[]~", errors="surrogatepass")
    self.write_qbytearray(encoded.encode("ascii"))


register(
    Codec("int8", (TypeId.Char, TypeId.SChar), read_int8, write_int8),
    Codec("uint8", (TypeId.UChar,), read_uint8, write_uint8),
    Codec("int16", (TypeId.Short,), read_int16, write_int16),
    Codec("uint16", (TypeId.UShort,), read_uint16, write_uint16),
    Codec("int32", (TypeId.Int,), read_int32, write_int32),
    Codec("uint32", (TypeId.UInt, TypeId.Char32), read_uint32, write_uint32),
    # long is streamed as a qint64 on every platform (Qt 5 and Qt 6 both widen it).
    Codec("int64", (TypeId.LongLong, TypeId.Long), read_int64, write_int64),
    Codec("uint64", (TypeId.ULongLong, TypeId.ULong), read_uint64, write_uint64),
    Codec("bool", (TypeId.Bool,), read_bool, write_bool),
    Codec("double", (TypeId.Double,), read_double, write_double),
    Codec("float", (TypeId.Float,), read_float, write_float),
    Codec(None, (TypeId.Char16,), _read_char16, _write_char16),
    Codec("qbytearray", (TypeId.QByteArray,), read_qbytearray, write_qbytearray),
    Codec("cstring", (), read_cstring, write_cstring),
    Codec("qstring", (TypeId.QString,), read_qstring, write_qstring),
    Codec("qchar", (TypeId.QChar,), read_qchar, write_qchar),
    Codec("qstringlist", (TypeId.QStringList,), read_qstringlist, write_qstringlist),
    Codec("qbytearraylist", (TypeId.QByteArrayList,), read_qbytearraylist, write_qbytearraylist),
    Codec("qbitarray", (TypeId.QBitArray,), read_qbitarray, write_qbitarray),
    Codec("qlist", (), read_qlist, write_qlist),
    Codec("qmap", (), read_qmap, write_qmap),
    Codec("qhash", (), read_qhash, write_qhash),
    Codec("quuid", (TypeId.QUuid,), read_quuid, write_quuid),
    Codec("qurl", (TypeId.QUrl,), read_qurl, write_qurl),
)
