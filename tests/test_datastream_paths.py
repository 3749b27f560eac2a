"""The codec's C inner loops (``qshm_compat._codec``) against its pure-Python specification.

Every input runs through both paths in this process: the C path as installed, and the pure path
with the module's ``_C`` set to ``None`` (what ``QSHM_PLAIN=1`` does at import).  The results
must be identical: the same value (compared by ``repr``, images by mode, size, pixels and info)
and the same end position, or the same exception class and message.  Inputs are the codec's case
table (and every truncation of each case), the golden vectors real Qt wrote (and truncations and
mutations of them), and hypothesis-made random and mutated bytes and random value trees for the
writer.  The C helper must also never crash: the fuzzer feeds it hostile lengths.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localtime import local_timezone
from qshm_compat import datastream as ds
from qshm_compat.datastream import Reader, Writer
from test_datastream import CASES, Case, read_value, write_value
from test_datastream_fuzz import READERS, inputs

VECTORS_FILE = Path(__file__).parent / "data" / "datastream_vectors.json"
DOCUMENT = json.loads(VECTORS_FILE.read_text())
VECTORS = [v for v in DOCUMENT["vectors"] if v.get("hex")]
EXAMPLES = int(os.environ.get("QSHM_FUZZ_EXAMPLES", "5000"))
PLAIN = os.environ.get("QSHM_PLAIN", "") not in ("", "0")


@pytest.fixture(autouse=True, scope="module")
def berlin_time() -> Iterator[None]:
    """Local time as the vectors were made (Qt_5_0 streams convert through it)."""
    with local_timezone(DOCUMENT["header"]["environment"]["TZ"]):
        yield


@contextmanager
def plain() -> Iterator[None]:
    saved = ds._C
    ds._C = None
    try:
        yield
    finally:
        ds._C = saved


def canon(v: Any) -> Any:
    if hasattr(v, "getdata") and hasattr(v, "mode"):  # a PIL image
        return ("image", v.mode, v.size, v.tobytes(), sorted(v.info.items()))
    if isinstance(v, memoryview):
        return ("memoryview", bytes(v))
    if isinstance(v, ds.QVariant):
        return ("QVariant", v.type_id, canon(v.value), v.type_name, v.is_null)
    if isinstance(v, (list, tuple)):
        return (type(v).__name__, [canon(x) for x in v])
    if isinstance(v, dict):
        return ("dict", [(repr(k), canon(x)) for k, x in v.items()])
    return repr(v)


def outcome(run: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        value, pos = run()
    except Exception as exc:  # every exception: the class and message must match
        # (Pillow's messages name a BytesIO by its address, different on every call)
        return ("raised", type(exc), re.sub(r" at 0x[0-9a-f]+", " at 0x...", str(exc)))
    return ("value", canon(value), pos)


def both(run: Callable[[], Any]) -> tuple[Any, ...]:
    """The outcome of run() on the C path and on the pure path, asserted identical."""
    fast = outcome(run)
    with plain():
        slow = outcome(run)
    assert fast == slow
    return fast


def test_the_c_helper_is_active_in_the_installed_copy() -> None:
    """A missing _codec in an installed package is a packaging bug: the C path must be in use."""
    if PLAIN:
        assert ds.BACKEND == "python" and ds._C is None
        return
    assert "site-packages" in ds.__file__, ds.__file__
    assert ds.BACKEND == "c" and ds._C is not None
    assert Reader(b"")._c is ds._C and Writer()._c is ds._C


@pytest.mark.parametrize("value, backend", [("1", "python"), ("", "c"), ("0", "c")])
def test_qshm_plain_selects_the_pure_codec(value: str, backend: str) -> None:
    env = dict(os.environ, QSHM_PLAIN=value)
    out = subprocess.run(
        [sys.executable, "-c", "from qshm_compat import datastream as d; print(d.BACKEND)"],
        env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == backend


def _read_case(case: Case, data: bytes) -> Callable[[], Any]:
    def run() -> Any:
        value, r = read_value(case, data)
        return value, r.pos
    return run


@pytest.mark.parametrize("case", CASES, ids=[c.id() for c in CASES])
def test_case_table_reads_alike_whole_and_truncated(case: Case) -> None:
    data = case.data
    assert both(_read_case(case, data))[0] == "value"
    for cut in range(len(data)):
        assert both(_read_case(case, data[:cut]))[0] == "raised"
    both(_read_case(case, data + b"\xa5\x5a\x00\xff\x01"))


@pytest.mark.parametrize("case", CASES, ids=[c.id() for c in CASES])
def test_case_table_writes_alike(case: Case) -> None:
    assert both(lambda: (write_value(case), 0))[0] == "value"


def _reader(vec: dict[str, Any], data: bytes) -> Reader:
    return Reader(data, vec["version"], vec["byteorder"],
                  floating_point_precision=vec["precision"],
                  user_types={"PyQt_PyObject": lambda r: r.read_qbytearray()})


def _read_vector(vec: dict[str, Any], data: bytes, unwrap: bool) -> Callable[[], Any]:
    type_ = vec["type"]

    def run() -> Any:
        r = _reader(vec, data)
        if type_ in ("qimage", "qpixmap"):
            value = getattr(r, "read_" + type_)(decode=True)
        elif type_ in ("qvariant", "qvariantlist", "qvariantmap", "qvarianthash"):
            value = getattr(r, "read_" + type_)(unwrap=unwrap)
        else:
            value = getattr(r, "read_" + type_)()
        return value, r.pos
    return run


@pytest.mark.parametrize("vec", VECTORS, ids=[v["id"] for v in VECTORS])
def test_golden_vectors_read_and_write_alike(vec: dict[str, Any]) -> None:
    data = bytes.fromhex(vec["hex"])
    for unwrap in (False, True):
        both(_read_vector(vec, data, unwrap))
    # Truncations (a sample of the cut points for the long ones) and one corrupt byte each.
    cuts = range(len(data)) if len(data) < 300 else range(0, len(data), len(data) // 97 + 1)
    for cut in cuts:
        both(_read_vector(vec, data[:cut], False))
        if cut < len(data):
            bad = bytearray(data)
            bad[cut] ^= 0x80
            both(_read_vector(vec, bytes(bad), True))
    # Writing back what was read, with the writer options of the Qt that wrote it.
    if vec["direction"] != "write" or vec["type"] == "size":
        return
    with plain():
        value, _ = _read_vector(vec, data, False)()
    order = "descending" if vec["qt"].startswith("5.") else "ascending"

    def write() -> Any:
        w = Writer(vec["version"], vec["byteorder"], floating_point_precision=vec["precision"],
                   qmap_order=order,
                   user_types={"PyQt_PyObject": lambda w, v: w.write_qbytearray(v)})
        getattr(w, "write_" + vec["type"])(value)
        return w.getvalue(), len(w)
    both(write)


@given(inputs(), st.sampled_from(READERS), st.sampled_from([13, 17, 19, 20, 21, 22, 24]),
       st.booleans(), st.booleans(), st.integers(1, 6))
@settings(max_examples=EXAMPLES, deadline=4000, suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_input_reads_alike(data: bytes, method: str, version: int, little: bool,
                                  single: bool, depth: int) -> None:
    def run() -> Any:
        r = Reader(data, version, "little" if little else "big", decode_images=False,
                   floating_point_precision="single" if single else "double", max_depth=depth)
        return getattr(r, method)(), r.pos
    both(run)


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats()
    | st.text(max_size=8) | st.binary(max_size=4) | st.just("\ud800") | st.just("\U0001f600"),
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=4) | st.just("\U0001f600") | st.integers(0, 3),
                      children, max_size=4),
    max_leaves=20)


@given(plain_values, st.sampled_from(["write_qvariant", "write_qvariantlist",
                                      "write_qvariantmap", "write_qvarianthash",
                                      "write_qstringlist"]),
       st.sampled_from([13, 19, 20, 24]), st.booleans(), st.booleans(), st.integers(1, 5),
       st.sampled_from([None, "ascending", "descending"]))
@settings(max_examples=EXAMPLES // 2, deadline=4000,
          suppress_health_check=[HealthCheck.too_slow])
def test_fuzzed_values_write_alike(value: Any, method: str, version: int, little: bool,
                                   single: bool, depth: int, order: Any) -> None:
    if method in ("write_qvariantmap", "write_qvarianthash") and not isinstance(value, dict):
        value = {"k": value}
    if method in ("write_qvariantlist", "write_qstringlist") and not isinstance(value, list):
        value = [value, "s", None]

    def run() -> Any:
        w = Writer(version, "little" if little else "big", max_depth=depth, qmap_order=order,
                   floating_point_precision="single" if single else "double")
        try:
            getattr(w, method)(value)
        except Exception as exc:  # what was written before the error must match too
            return ("raised", type(exc), str(exc), w.getvalue()), len(w)
        return w.getvalue(), len(w)
    both(run)


def test_hostile_requests_to_the_c_helper_raise_and_never_crash() -> None:
    c = ds._C
    if c is None:
        pytest.skip("QSHM_PLAIN=1: no C helper in use")
    data = b"\x00\x00\x00\x08" + b"\xff" * 12
    for args in [(data, -1, 1, False), (data, 0, 10**9, False), (data, 99, 0, False)]:
        with pytest.raises(ValueError):
            c.read_strings(*args)
    with pytest.raises(ValueError):
        c.read_variants(1, data, 0, 10**9, False, False, True, 0, 64, ds.QVariant, None)
    with pytest.raises(ValueError):
        c.png_unfilter(b"\x05" + b"\x00" * 4, bytearray(4), 0, 4, 4)
    with pytest.raises(ValueError):
        c.png_unfilter(b"\x00" * 10, bytearray(4), 0, 4, 4)
    with pytest.raises(ValueError):
        c.png_unfilter(b"\x00" * 5, bytearray(4), 1, 4, 4)
    out = bytearray(8)
    assert c.png_unfilter(b"\x01\x01\x01\x01\x01\x02\x01\x01\x01\x01", out, 0, 4, 1) == 2
    assert out == bytearray([1, 2, 3, 4, 2, 3, 4, 5])  # Sub, then Up


def _png_with_every_filter(width: int, height: int, ctype: int, bpp: int) -> bytes:
    """A PNG whose rows use filter types 0-4 in turn (written here, so all five are covered)."""
    import random
    import struct
    import zlib

    rnd = random.Random(width * 7 + ctype)
    rows = [bytes(rnd.randrange(256) if rnd.random() < 0.3 else (x * 3 + y) & 0xFF
                  for x in range(width * bpp)) for y in range(height)]

    def paeth(a: int, b: int, c: int) -> int:
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    raw = bytearray()
    prev = bytes(width * bpp)
    for y, row in enumerate(rows):
        f = y % 5
        raw.append(f)
        for i, v in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) >> 1, paeth(a, b, c))[f]
            raw.append((v - pred) & 0xFF)
        prev = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, ctype, 0, 0, 0)
    body = zlib.compress(bytes(raw))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body[:len(body) // 2])
            + chunk(b"IDAT", body[len(body) // 2:]) + chunk(b"IEND", b""))


@pytest.mark.parametrize("ctype, bpp", [(6, 4), (2, 3), (0, 1), (4, 2)])
@pytest.mark.parametrize("width, height", [(1, 1), (37, 11), (301, 64)])
def test_png_fast_path_decodes_every_filter_like_pillow(ctype: int, bpp: int, width: int,
                                                        height: int) -> None:
    pytest.importorskip("zlib_ng")
    png = _png_with_every_filter(width, height, ctype, bpp)
    data = b"\x00\x00\x00\x01" + png
    result = both(lambda: (Reader(data, 19).read_qimage(decode=True), 0))
    assert result[0] == "value" and result[1][1] == {6: "RGBA", 2: "RGB", 0: "L", 4: "LA"}[ctype]
    if ds._C is not None:  # the fast path made it (a plain Image, not Pillow's PngImageFile)
        assert type(Reader(data, 19).read_qimage(decode=True)).__name__ == "Image"
    # Damaged image data (a bad filter byte, a cut zlib stream) fails or decodes just as Pillow does.
    for cut in (len(png) - 20, len(png) - 16):
        both(lambda: (ds._decode_png(png[:cut] + png[-12:], "QImage", 0), 0))
