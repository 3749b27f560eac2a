"""The QDataStream codec against live Qt, through shared memory: QVariant trees both ways.

Each real Qt stack turns a JSON value into a QVariant (``QJsonValue::toVariant``, or what the
binding does instead), streams it with its own QDataStream into a segment (``variant_put``), and
we decode the segment; then we encode the same value and the stack reads it back
(``variant_get``, answering ``QJsonValue::fromVariant`` of what it read).  The versions are each
stack's default, Qt_5_15 (19) and Qt_5_0 (13).

What Qt does on the way, pinned here (Qt 5.15.8/5.15.19, 6.4.2, 6.11.2; PySide6 6.12.0):

* JSON integers become ``LongLong`` in Qt 5.15 and Qt 6 (even small ones), JSON doubles
  ``Double``; PySide6 has no QVariant in Python, so the value goes through Python objects and
  PySide's own conversion: small ints become ``Int``.
* JSON null becomes ``QVariant::fromValue(nullptr)``, type ``QMetaType::Nullptr`` (51), with
  isNull 0 in Qt 5 and 1 in Qt 6; PySide6 writes Python ``None`` as an invalid QVariant.  We write
  ``None`` as an invalid QVariant, which every stack reads as JSON null.
* QVariantMap keys go out in descending order from Qt 5 and ascending from Qt 6, at every stream
  version; a QVariant tree we decode re-encodes to Qt's exact bytes once we are told the order.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pytest

from peers import Peer
from qshm_compat import QSharedMemory
from qshm_compat import datastream as ds

# A map of lists of strings, ints, doubles, bools (and null, in VALUE_WITH_NULL), nested.
VALUE: dict = {
    "name": "qshm \u00fc\u20ac\U0001F600",
    "list": ["a", "", 0, 1, -2, 2147483647, -2147483648, 1099511627776, -9007199254740992,
             2.5, 0.1, -1e300, True, False, {"nested": [0.125, "x", []]}],
    "empty": {},
    "n": 42,
    "pi": 3.14159,
    "flag": True,
    "Zebra": ["upper case sorts first"],
}
VALUE_WITH_NULL: dict = dict(VALUE, nothing=None, list=VALUE["list"] + [None, {"null": None}])

VERSIONS = [None, ds.Qt_5_15, ds.Qt_5_0]


def canon(value: Any) -> Any:
    """A form that compares JSON values as Qt keeps them: numbers by value (Qt may turn an int
    into a double and back), but never a bool equal to a number."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if value is None:
        return ("null",)
    if isinstance(value, list):
        return ("list", [canon(v) for v in value])
    if isinstance(value, dict):
        return ("map", sorted((k, canon(v)) for k, v in value.items()))
    raise TypeError(f"not a JSON value: {value!r}")


def qt_major(peer: Peer) -> int:
    return peer.qt_version[0]


def stream_version(peer: Peer, version: Optional[int]) -> int:
    """The stream version the peer writes: its default, or the one asked for (for a Qt 5 peer,
    Qt_5_15 asked for explicitly is its default too)."""
    return peer.hello["datastreamVersion"] if version is None else version


def version_args(version: Optional[int]) -> dict:
    return {} if version is None else {"version": version}


def peer_bytes(peer: Peer, key: str, value: Any, version: Optional[int]) -> tuple:
    """Let the peer stream ``value`` into a segment; return (its answer, the segment's bytes)."""
    peer.ok("key", key=key)
    put = peer.ok("variant_put", value=value, **version_args(version))
    assert put["segmentSize"] == put["size"]
    with QSharedMemory(key) as shm:
        assert shm.attach(QSharedMemory.ReadOnly, timeout=5), shm.errorString()
        with shm.locked(timeout=5):
            data = bytes(shm.constData())
    peer.ok("detach")
    return put, data


def qt_reads(peer: Peer, key: str, payload: bytes, **args: Any) -> dict:
    """Put ``payload`` in a new segment under ``key`` and return the peer's ``variant_get``."""
    with QSharedMemory(key) as shm:
        assert shm.create(len(payload), timeout=5), shm.errorString()
        with shm.locked(timeout=5):
            shm.data()[:] = payload
        peer.ok("key", key=key)
        return peer.ok("variant_get", **args)


def decode_whole(data: bytes, version: int, unwrap: bool) -> Any:
    """The one QVariant in ``data`` (Qt's JSON null arrives as QMetaType::Nullptr, id 51)."""
    reader = ds.Reader(data, version)
    value = reader.read_qvariant(unwrap=unwrap)
    assert reader.at_end(), f"{reader.remaining()} bytes left after the QVariant"
    return value


@pytest.mark.parametrize("version", VERSIONS, ids=["default", "Qt_5_15", "Qt_5_0"])
def test_qt_variant_decodes(peer: Peer, key: str, version: Optional[int]) -> None:
    """A QVariantMap tree Qt streamed into a segment decodes to the JSON value it came from."""
    used = stream_version(peer, version)
    put, data = peer_bytes(peer, key, VALUE, version)
    assert (put["version"], put["typeName"]) == (used, "QVariantMap"), put
    assert canon(decode_whole(data, used, unwrap=True)) == canon(VALUE)


@pytest.mark.parametrize("version", VERSIONS, ids=["default", "Qt_5_15", "Qt_5_0"])
@pytest.mark.parametrize("value", [VALUE, VALUE_WITH_NULL], ids=["plain", "with-null"])
def test_qt_variant_re_encodes_to_qt_bytes(peer: Peer, key: str, version: Optional[int], value: dict) -> None:
    """The decoded QVariant tree writes back to Qt's bytes exactly, given Qt's QMap key order."""
    used = stream_version(peer, version)
    _, data = peer_bytes(peer, key, value, version)
    tree = decode_whole(data, used, unwrap=False)
    order = "descending" if qt_major(peer) == 5 else "ascending"
    writer = ds.Writer(used, qmap_order=order)
    writer.write_qvariant(tree)
    assert writer.getvalue().hex() == data.hex()


def test_qt_json_number_types(peer: Peer, key: str) -> None:
    """Qt streams JSON integers as LongLong and doubles as Double; PySide6 small ints as Int."""
    _, data = peer_bytes(peer, key, {"i": [7, -7, 1099511627776], "d": [2.5, 1e300], "b": [True]}, None)
    tree = decode_whole(data, peer.hello["datastreamVersion"], unwrap=False)
    ids = {k: [v.type_id for v in tree.value[k].value] for k in ("i", "d", "b")}
    small_int = ds.TypeId.Int if peer.name == "pyside6" else ds.TypeId.LongLong
    assert ids == {
        "i": [small_int, small_int, ds.TypeId.LongLong],
        "d": [ds.TypeId.Double, ds.TypeId.Double],
        "b": [ds.TypeId.Bool],
    }


def test_qt_variant_with_null_decodes(peer: Peer, key: str) -> None:
    """JSON null, as Qt streams it (Nullptr; PySide6: invalid), decodes to None."""
    used = peer.hello["datastreamVersion"]
    _, data = peer_bytes(peer, key, VALUE_WITH_NULL, None)
    assert canon(decode_whole(data, used, unwrap=True)) == canon(VALUE_WITH_NULL)


@pytest.mark.parametrize("version", VERSIONS, ids=["default", "Qt_5_15", "Qt_5_0"])
@pytest.mark.parametrize("value", [VALUE, VALUE_WITH_NULL], ids=["plain", "with-null"])
def test_python_variant_reads_in_qt(peer: Peer, key: str, version: Optional[int], value: dict) -> None:
    """A QVariant tree we streamed into a segment is what Qt's ``>> QVariant`` reads back."""
    used = stream_version(peer, version)
    writer = ds.Writer(used)  # Qt 5's descending QMap order up to Qt_5_15, Qt 6's above
    writer.write_qvariant(value)
    payload = writer.getvalue()
    got = qt_reads(peer, key, payload, **version_args(version))
    assert (got["version"], got["status"], got["typeName"]) == (used, 0, "QVariantMap"), got
    assert got["size"] == len(payload)
    assert canon(got["value"]) == canon(value)


@pytest.mark.parametrize(
    "value, type_name",
    [(None, None), (True, "bool"), (-5, "int"), (2.5, "double"), ("é", "QString"), ([], "QVariantList")],
    ids=["invalid", "bool", "int", "double", "string", "list"],
)
def test_python_scalar_variants_read_in_qt(peer: Peer, key: str, value: Any, type_name: Optional[str]) -> None:
    """Single QVariants we stream have the Qt type our codec gives them, as Qt itself reads it."""
    writer = ds.Writer(peer.hello["datastreamVersion"])
    writer.write_qvariant(value)
    got = qt_reads(peer, key, writer.getvalue())
    assert got["typeName"] == type_name, got
    assert canon(got["value"]) == canon(value)
    if isinstance(value, float):
        assert math.isclose(got["value"], value)
