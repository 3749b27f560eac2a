"""QDataStream's QVariant: the :class:`QVariant` value class, Qt 5 / Qt 6 type ids, and the
QVariantList / QVariantMap / QVariantHash containers.

A variant's payload is read and written by the row of the codec's table registered for its type
id (:data:`~qshm_compat._datastream_base.VARIANT_CODECS`), so a type added to any family module
is streamable inside a QVariant at once.  The commonest payloads (QString, int, double, bool and
the containers) are inlined here, and the C inner loops (``qshm_compat._codec``) take regular
trees whole, calling back into the pure functions below (``_fallback``) for anything else.
Facts: Qt's ``qvariant.cpp`` (``QVariant::save`` / ``load``) and ``qmetatype.h``.
"""

from __future__ import annotations

import datetime as _dt
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from . import _datastream_base as _base
from ._datastream_base import (
    _EXTENDED_SIZE, Codec, TypeId, _bad_value, _corrupt, _truncated, register,
)
from .exceptions import DataStreamError
from ._datastream_geometry import (
    QColor, QLine, QLineF, QPoint, QPointF, QRect, QRectF, QSize, QSizeF,
)
from ._datastream_image import _is_pil_image

if TYPE_CHECKING:
    from ._datastream_stream import Reader, Writer

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


# The table's rows by type id, under names bound here: CPython 3.11 compiles a method call on a
# name bound by an import (``VARIANT_READERS.get(tid)``) without LOAD_METHOD, a bound method each.
_VARIANT_READERS = _base.VARIANT_READERS
_VARIANT_CONTAINERS = _base.VARIANT_CONTAINER_READERS
_VARIANT_WRITERS = _base.VARIANT_WRITERS

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


# --------------------------------------------------------------------------------------------
# Read and write


def read_qvariant(self: Reader, *, unwrap: bool = False) -> Any:
    """QDataStream::operator>>(QVariant&): a :class:`QVariant`, or its plain value.

    With ``unwrap=True`` the result is the plain Python value (``None`` for an invalid
    variant) and containers hold plain values too; a user type becomes the value its
    ``user_types`` reader returns, or stays a QVariant (raw payload) when it has none.
    """
    return _read_variant(self, unwrap)


def write_qvariant(self: Writer, value: Any) -> None:
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
        _write_qvariant_py(self, value)


def _read_variant(self: Reader, unwrap: bool) -> Any:
    if self._c is not None:
        value, self._pos = self._c.read_variants(
            0, self._buf, self._pos, 0, self._little, self._single, unwrap, self._depth,
            self.max_depth, QVariant, self._fallback)
        return value
    return _read_variant_py(self, unwrap)


def _read_fallback(self: Reader, kind: int, pos: int, depth: int,
                   unwrap: bool) -> tuple[Any, int]:
    """For the C loops: the pure reader at ``pos`` for one variant (kind 0) or map key."""
    saved = self._depth
    self._pos = pos
    self._depth = depth
    try:
        if kind == 0:
            value = _read_variant_py(self, unwrap)
        else:
            value = _read_key(self, "QVariantMap" if kind == 1 else "QVariantHash")
    finally:
        self._depth = saved
    return value, self._pos


def _write_fallback(self: Writer, value: Any, depth: int) -> None:
    """For the C loops: the pure writer for one variant (or, with depth -1, one key)."""
    if depth < 0:
        self.write_qstring(value)
        return
    saved = self._depth
    self._depth = depth
    try:
        _write_qvariant_py(self, value)
    finally:
        self._depth = saved


def _read_variant_py(self: Reader, unwrap: bool) -> Any:
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
            value = _read_variant_dict(self, "QVariantMap", unwrap)
        elif tid == 9:
            self._pos = p
            value = self.read_qvariantlist(unwrap=unwrap)
        elif tid == 1:
            (value,) = self._i8(buf, p)
            value = value != 0
            self._pos = p + 1
        else:
            self._pos = p
            return _read_variant_slow(self, pos, tid, is_null, unwrap)
    except struct.error:
        raise _truncated(f"QVariant {_type_name(tid)}", p, 4, self._size - p) from None
    if unwrap:
        return value
    return QVariant(tid, value, None, is_null != 0)


def _write_qvariant_py(self: Writer, value: Any) -> None:
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
        _write_variant(self, value.type_id, value.value, value.type_name, value.is_null)
    else:
        _write_variant(self, _infer_type_id(value), value, None, False)


def _read_variant_slow(self: Reader, pos: int, tid: int, is_null: int, unwrap: bool) -> Any:
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
            value = _read_user_value(self, pos, type_name)
            if unwrap and type_name in self.user_types:
                return value
            return QVariant(tid, value, type_name, bool(is_null))
    container = _VARIANT_CONTAINERS.get(tid)
    if container is not None:
        value = container(self, unwrap=unwrap)
    else:
        reader = _VARIANT_READERS.get(tid)
        if reader is None:
            raise _corrupt("QVariant", pos, f"cannot read a {_type_name(tid)} "
                           f"(type id {tid}): no decoder, so its length is unknown")
        value = reader(self)
    if unwrap:
        return value
    return QVariant(tid, value, type_name, bool(is_null))


def _write_variant(self: Writer, tid: int, value: Any, type_name: str | None,
                   is_null: bool) -> None:
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


def _read_user_value(self: Reader, pos: int, type_name: str) -> Any:
    reader = self.user_types.get(type_name)
    if reader is not None:
        return reader(self)
    # Qt itself cannot read an unregistered user type: nothing says where it ends.  At the top
    # level the payload is taken to be the rest of the input.
    if self._depth:
        raise _corrupt("QVariant", pos, f"user type {type_name!r} inside a container has no "
                       "reader in user_types, so its length is unknown")
    return self.read_raw(self._size - self._pos)


def read_qvariantlist(self: Reader, *, unwrap: bool = True) -> list[Any]:
    """QVariantList (QList<QVariant>)."""
    n = self._read_count("QVariantList", 5)
    self._enter("QVariantList")
    try:
        if self._c is not None:
            items, self._pos = self._c.read_variants(
                3, self._buf, self._pos, n, self._little, self._single, unwrap,
                self._depth, self.max_depth, QVariant, self._fallback)
            return items  # type: ignore[no-any-return]
        rv = _read_variant
        out = [rv(self, unwrap) for _ in range(n)]
    finally:
        self._depth -= 1
    return out


def write_qvariantlist(self: Writer, values: Sequence[Any]) -> None:
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


def read_qvariantmap(self: Reader, *, unwrap: bool = True) -> dict[str, Any]:
    """QVariantMap (QMap<QString, QVariant>), in stream order; a null key reads as ``""``."""
    return _read_variant_dict(self, "QVariantMap", unwrap)


def write_qvariantmap(self: Writer, mapping: Mapping[str, Any]) -> None:
    """QVariantMap: keys in Qt's order (see ``qmap_order``), values QVariants or plain."""
    self.write_size(len(mapping))
    self._enter("QVariantMap")
    try:
        _write_variant_pairs(self, self._map_keys(mapping), mapping)
    finally:
        self._depth -= 1


def read_qvarianthash(self: Reader, *, unwrap: bool = True) -> dict[str, Any]:
    """QVariantHash (QHash<QString, QVariant>)."""
    return _read_variant_dict(self, "QVariantHash", unwrap)


def write_qvarianthash(self: Writer, mapping: Mapping[str, Any]) -> None:
    """QVariantHash: the pairs in the mapping's own order."""
    self.write_size(len(mapping))
    self._enter("QVariantHash")
    try:
        _write_variant_pairs(self, mapping, mapping)
    finally:
        self._depth -= 1


def _read_variant_dict(self: Reader, what: str, unwrap: bool) -> dict[str, Any]:
    n = self._read_count(what, 9)
    self._enter(what)
    try:
        if self._c is not None:
            pairs, self._pos = self._c.read_variants(
                1 if what == "QVariantMap" else 2, self._buf, self._pos, n, self._little,
                self._single, unwrap, self._depth, self.max_depth, QVariant, self._fallback)
            return pairs  # type: ignore[no-any-return]
        rv = _read_variant
        key = _read_key
        out: dict[str, Any] = {}
        for _ in range(n):
            k = key(self, what)
            out[k] = rv(self, unwrap)
    finally:
        self._depth -= 1
    return out


def _write_variant_pairs(self: Writer, keys: Iterable[str], mapping: Mapping[str, Any]) -> None:
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


def _read_key(self: Reader, what: str) -> str:
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


def _read_nothing(r: Reader) -> None:
    """std::nullptr_t: no payload (what QJsonValue::toVariant() makes of JSON null)."""
    return None


def _write_nothing(w: Writer, value: Any) -> None:
    if value is not None:
        raise TypeError(f"QVariant Nullptr holds None, not {type(value).__name__}")


register(
    Codec("qvariant", (), read_qvariant, write_qvariant),
    Codec("qvariantlist", (TypeId.QVariantList,), read_qvariantlist, write_qvariantlist,
          unwraps=True),
    Codec("qvariantmap", (TypeId.QVariantMap,), read_qvariantmap, write_qvariantmap,
          unwraps=True),
    Codec("qvarianthash", (TypeId.QVariantHash,), read_qvarianthash, write_qvarianthash,
          unwraps=True),
    Codec(None, (TypeId.Nullptr,), _read_nothing, _write_nothing),
)
