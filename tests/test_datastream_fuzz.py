"""A time-bounded fuzzer over every reader of ``qshm_compat.datastream``.

Inputs are random bytes and mutations (flipped, inserted, deleted and duplicated bytes) of the
golden vectors real Qt wrote.  Every reader must either decode or raise ``DataStreamError``
(``TruncatedError`` included): no other exception, no hang, and no allocation out of proportion
to the input (a length field never makes it allocate what the bytes do not hold).
``QSHM_FUZZ_EXAMPLES`` raises the number of inputs (the CI default keeps the run to seconds).
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qshm_compat.datastream import Reader
from qshm_compat.exceptions import DataStreamError

EXAMPLES = int(os.environ.get("QSHM_FUZZ_EXAMPLES", "5000"))
VECTORS = [
    bytes.fromhex(v["hex"])
    for v in json.loads((Path(__file__).parent / "data" / "datastream_vectors.json").read_text())["vectors"]
    if v.get("hex") and len(v["hex"]) < 20_000
]
READERS = sorted(
    name
    for name in dir(Reader)
    if name.startswith("read_") and name not in ("read_raw", "read_qlist", "read_qmap", "read_qhash")
)
# Memory a reader may use beyond the size of its input (decoded objects are bigger than bytes).
SLACK = 1 << 20


@st.composite
def inputs(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(VECTORS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup", "size"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "dup":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        else:  # a hostile length field
            data[at:at] = draw(st.sampled_from([b"\xff\xff\xff\xfe", b"\x7f\xff\xff\xff", b"\xff\xff\xff\xfe\x7f\xff\xff\xff\xff\xff\xff\xff"]))
    return bytes(data)


@given(inputs(), st.sampled_from(READERS), st.sampled_from([13, 17, 19, 20, 21, 22, 24]), st.booleans())
@settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
def test_every_reader_decodes_or_raises_data_stream_error(data: bytes, method: str, version: int, little: bool) -> None:
    """Any input either decodes or raises DataStreamError, within bounded memory and time."""
    reader = Reader(data, version, "little" if little else "big", decode_images=False)
    tracemalloc.start()
    try:
        getattr(reader, method)()
    except DataStreamError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= 8 * len(data) + SLACK, f"{method} used {peak} bytes on {len(data)} bytes of input"
    assert 0 <= reader.pos <= len(data)
