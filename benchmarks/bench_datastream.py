#!/usr/bin/env python3
"""QDataStream decode and encode speed of ``qshm_compat.datastream`` against PyQt5 and PyQt6.

    python benchmarks/bench_datastream.py           # about 1 minute
    python benchmarks/bench_datastream.py --quick   # 5 rounds, fewer repeats
    python benchmarks/bench_datastream.py --json

The inputs are written once by real Qt (PyQt5, stream version 19): a 64 MiB QByteArray, a
QStringList of 100,000 strings, a QVariantMap of 10,000 entries (each a small nested
QVariantMap) and two QImages (1920x1080 and 3840x2160, ARGB32, the Shared Memory Example's
format: qint32 1 plus a PNG).  Each stack runs in a worker process of its own (Qt libraries never
share a process with qshm_compat) that stays up for the whole run; every round asks each worker
for every case, in an order that rotates from round to round, so a slow moment of this noisy
machine hits all stacks alike.  A row gives the median over the rounds with [min-max], and the
ratio PyQt5 median / qshm_compat median (higher = we are faster).

Like for like, from bytes in memory to a usable object holding the same information:

* decode: qshm_compat's ``Reader(data, 19).read_<type>()``; Qt's ``QDataStream(QByteArray)``
  then ``>>`` / ``readQStringList()`` / ``readQVariantMap()`` (PyQt5 wraps the input with
  ``QByteArray.fromRawData``, so it copies nothing either; PyQt6 has no fromRawData and copies
  it, which costs it a memcpy).  Images decode to a full pixel buffer on both sides: a
  ``PIL.Image`` in mode RGBA for us, a ``QImage`` in ARGB32 for Qt.  The QByteArray row checks
  that ours is a memoryview into the input (zero-copy); Qt's copies.
* encode: ``Writer(19).write_<type>(value)`` then ``getvalue()`` (bytes); Qt's
  ``QDataStream(QByteArray, WriteOnly) <<`` then ``bytes(QByteArray)``.  The values are the
  decoded ones (Python list / dict / PIL image for us; the same Python list and dict, and the
  QImage, for PyQt).  PNG encoders differ (Pillow's zlib level 6 against Qt's libpng default),
  so the image rows also print the PNG sizes.

``qshm_compat`` is the installed copy (``--qshm-path DIR`` puts DIR first on its path); the
``qshm (plain)`` column is the same code with ``QSHM_PLAIN=1`` (the pure-Python codec alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

DECODE = ("bytearray_64mib", "stringlist_100k", "variantmap_10k", "image_1920x1080",
          "image_3840x2160")
ENCODE = ("stringlist_100k", "variantmap_10k", "image_1920x1080", "image_3840x2160")
CASES = [("decode", c) for c in DECODE] + [("encode", c) for c in ENCODE]
STACKS = ("qshm", "qshm-plain", "pyqt5", "pyqt6")
LABELS = {"qshm": "qshm_compat", "qshm-plain": "qshm (plain)", "pyqt5": "PyQt5", "pyqt6": "PyQt6"}
#: Calls timed per round (their mean is the round's value), by case.
REPEATS = {"bytearray_64mib": 3, "stringlist_100k": 3, "variantmap_10k": 3,
           "image_1920x1080": 3, "image_3840x2160": 1}
TARGET = 1.0  # PyQt5 time / our time must be at least this


def _generate(out_dir: str) -> None:
    """Write the inputs with PyQt5 (run in a worker process)."""
    from PyQt5.QtCore import QBuffer, QByteArray, QDataStream, QIODevice
    from PyQt5.QtGui import QColor, QGuiApplication, QImage

    app = QGuiApplication([])  # noqa: F841 - QImage's PNG writer needs the application

    def stream_bytes(write: Callable[[Any], Any]) -> bytes:
        buf = QBuffer()
        buf.open(QIODevice.WriteOnly)
        out = QDataStream(buf)
        out.setVersion(QDataStream.Qt_5_15)
        write(out)
        return bytes(buf.data())

    def image(width: int, height: int) -> QImage:
        im = QImage(width, height, QImage.Format_ARGB32)
        im.fill(QColor(30, 90, 128, 255))
        for y in range(0, height, 40):  # some structure, so that PNG has work to do
            for x in range(0, width, 64):
                im.setPixel(x, y, QColor((x + y) % 256, x % 256, y % 256).rgba())
        return im

    blobs = {
        "bytearray_64mib": stream_bytes(lambda s: s << QByteArray(os.urandom(64 << 20))),
        "stringlist_100k": stream_bytes(
            lambda s: s.writeQStringList([f"item number {i}" for i in range(100_000)])),
        "variantmap_10k": stream_bytes(lambda s: s.writeQVariantMap(
            {f"key{i:05d}": {"id": i, "name": f"n{i}", "ok": i % 2 == 0, "x": i / 3}
             for i in range(10_000)})),
        "image_1920x1080": stream_bytes(lambda s: s << image(1920, 1080)),
        "image_3840x2160": stream_bytes(lambda s: s << image(3840, 2160)),
    }
    for name, data in blobs.items():
        Path(out_dir, name).write_bytes(data)


def _qshm_cases(inputs: dict[str, bytes]) -> dict[tuple[str, str], Callable[[], Any]]:
    from qshm_compat import datastream as ds
    from qshm_compat.datastream import Reader, Writer

    print(json.dumps({"backend": ds.BACKEND, "module": ds.__file__}), flush=True)
    values = {
        "stringlist_100k": Reader(inputs["stringlist_100k"], 19).read_qstringlist(),
        "variantmap_10k": Reader(inputs["variantmap_10k"], 19).read_qvariantmap(),
        "image_1920x1080": Reader(inputs["image_1920x1080"], 19).read_qimage(decode=True),
        "image_3840x2160": Reader(inputs["image_3840x2160"], 19).read_qimage(decode=True),
    }
    data64 = inputs["bytearray_64mib"]
    view = Reader(data64, 19).read_qbytearray(copy=False)
    zero_copy = isinstance(view, memoryview) and view.obj is data64 and len(view) == 64 << 20
    print(json.dumps({"zero_copy": zero_copy}), flush=True)

    def encoder(case: str, method: str) -> Callable[[], bytes]:
        def run() -> bytes:
            w = Writer(19)
            getattr(w, method)(values[case])
            return w.getvalue()
        return run

    cases: dict[tuple[str, str], Callable[[], Any]] = {
        ("decode", "bytearray_64mib"): lambda: Reader(data64, 19).read_qbytearray(copy=False),
        ("decode", "stringlist_100k"):
            lambda: Reader(inputs["stringlist_100k"], 19).read_qstringlist(),
        ("decode", "variantmap_10k"):
            lambda: Reader(inputs["variantmap_10k"], 19).read_qvariantmap(),
        ("encode", "stringlist_100k"): encoder("stringlist_100k", "write_qstringlist"),
        ("encode", "variantmap_10k"): encoder("variantmap_10k", "write_qvariantmap"),
    }
    for case in ("image_1920x1080", "image_3840x2160"):
        data = inputs[case]
        # The full decode: a PIL image whose pixels are all there (load() is a no-op after).
        cases[("decode", case)] = lambda data=data: Reader(data, 19).read_qimage(decode=True)
        cases[("encode", case)] = encoder(case, "write_qimage")
    return cases


def _qt_cases(stack: str, inputs: dict[str, bytes]) -> dict[tuple[str, str], Callable[[], Any]]:
    module = {"pyqt5": "PyQt5", "pyqt6": "PyQt6"}[stack]
    core = __import__(f"{module}.QtCore", fromlist=["QtCore"])
    gui = __import__(f"{module}.QtGui", fromlist=["QtGui"])
    app = gui.QGuiApplication([])
    wrap = getattr(core.QByteArray, "fromRawData", core.QByteArray)
    write_only = getattr(core.QIODevice, "WriteOnly", None) or core.QIODevice.OpenModeFlag.WriteOnly

    def reader(b: bytes) -> Any:
        s = core.QDataStream(wrap(b))
        s.setVersion(19)
        return s

    def read_into(cls: Any) -> Callable[[bytes], Any]:
        def run(b: bytes) -> Any:
            out = cls()
            reader(b) >> out
            return out
        return run

    def writer(write: Callable[[Any], Any]) -> Callable[[], bytes]:
        def run() -> bytes:
            ba = core.QByteArray()
            s = core.QDataStream(ba, write_only)
            s.setVersion(19)
            write(s)
            return bytes(ba)
        return run

    strings = reader(inputs["stringlist_100k"]).readQStringList()
    mapping = reader(inputs["variantmap_10k"]).readQVariantMap()
    images = {c: read_into(gui.QImage)(inputs[c]) for c in ("image_1920x1080", "image_3840x2160")}
    print(json.dumps({"formats": {c: str(im.format()) for c, im in images.items()}}), flush=True)
    cases: dict[tuple[str, str], Callable[[], Any]] = {
        ("decode", "bytearray_64mib"): lambda: read_into(core.QByteArray)(inputs["bytearray_64mib"]),
        ("decode", "stringlist_100k"): lambda: reader(inputs["stringlist_100k"]).readQStringList(),
        ("decode", "variantmap_10k"): lambda: reader(inputs["variantmap_10k"]).readQVariantMap(),
        ("encode", "stringlist_100k"): writer(lambda s: s.writeQStringList(strings)),
        ("encode", "variantmap_10k"): writer(lambda s: s.writeQVariantMap(mapping)),
    }
    for case, im in images.items():
        cases[("decode", case)] = lambda data=inputs[case]: read_into(gui.QImage)(data)
        cases[("encode", case)] = writer(lambda s, im=im: s << im)
    cases[("_app", "")] = lambda: app
    return cases


def _worker(stack: str, in_dir: str) -> None:
    """Answer one JSON line per request ``[kind, case, repeats]`` with the mean seconds per call."""
    inputs = {c: Path(in_dir, c).read_bytes() for c in DECODE}
    cases = _qshm_cases(inputs) if stack.startswith("qshm") else _qt_cases(stack, inputs)
    sizes = {}
    for kind, case in CASES:
        value = cases[(kind, case)]()  # warm up
        if kind == "encode":
            sizes[case] = len(value)
        del value
    print(json.dumps({"ready": True, "encoded_sizes": sizes}), flush=True)
    for line in sys.stdin:
        kind, case, repeats = json.loads(line)
        run = cases[(kind, case)]
        started = time.perf_counter()
        for _ in range(repeats):
            value = run()
            del value
        print(json.dumps((time.perf_counter() - started) / repeats), flush=True)


class Worker:
    def __init__(self, stack: str, in_dir: str, env: dict[str, str], qshm_path: str | None) -> None:
        env = dict(env)
        if stack == "qshm-plain":
            env["QSHM_PLAIN"] = "1"
        else:
            env.pop("QSHM_PLAIN", None)
        if stack.startswith("qshm") and qshm_path:
            env["PYTHONPATH"] = qshm_path
        self.stack = stack
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", stack, "--in-dir", in_dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def start(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            self.info.update(msg)
            if msg.get("ready"):
                return
        raise RuntimeError(f"worker {self.stack} exited during start-up")

    def measure(self, kind: str, case: str, repeats: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([kind, case, repeats]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.stack} died")
        return float(json.loads(line))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _fmt(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 0.1 else f"{ms:.1f}" if ms >= 100 else f"{ms:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 rounds, one call per round")
    parser.add_argument("--rounds", type=int, help="rounds (default 7, 5 with --quick)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--qshm-path", help="import qshm_compat from this directory")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--in-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(args.generate)
        return 0
    if args.worker:
        _worker(args.worker, args.in_dir)
        return 0
    rounds = args.rounds or (5 if args.quick else 7)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONSAFEPATH="1")
    times: dict[tuple[str, str, str], list[float]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qshm-bench-ds-") as tmp:
        print("writing the inputs with PyQt5...", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--generate", tmp], check=True, env=env)
        workers = [Worker(s, tmp, env, args.qshm_path) for s in STACKS]
        try:
            for w in workers:
                w.start()
            for r in range(rounds):
                print(f"round {r + 1}/{rounds}", file=sys.stderr)
                for i, (kind, case) in enumerate(CASES):
                    repeats = 1 if args.quick else REPEATS[case]
                    shift = (r + i) % len(workers)
                    for w in workers[shift:] + workers[:shift]:
                        times.setdefault((w.stack, kind, case), []).append(
                            w.measure(kind, case, repeats))
        finally:
            for w in workers:
                w.close()
    info = {w.stack: w.info for w in workers}
    if args.json:
        print(json.dumps({"rounds": rounds, "info": info,
                          "times": {"/".join(k): v for k, v in times.items()}}, indent=2))
        return 0
    backend = info["qshm"].get("backend")
    print(f"CPython {sys.version.split()[0]}, {os.cpu_count()} cores; {rounds} rounds, "
          f"median [min-max] in ms; inputs written by PyQt5 at stream version 19; "
          f"qshm_compat backend {backend!r}, plain {info['qshm-plain'].get('backend')!r}; "
          f"{time.monotonic() - started:.0f} s")
    head = f"| {'row':<26} | " + " | ".join(f"{LABELS[s]:<22}" for s in STACKS)
    print(head + " | vs PyQt5 | vs PyQt6 | target >= 1.0x PyQt5 |")
    print("|" + "---|" * (len(STACKS) + 4))
    for kind, case in CASES:
        meds = {s: statistics.median(times[(s, kind, case)]) for s in STACKS}
        cells = []
        for s in STACKS:
            t = times[(s, kind, case)]
            cells.append(f"{_fmt(meds[s])} [{_fmt(min(t))}-{_fmt(max(t))}]")
        r5, r6 = meds["pyqt5"] / meds["qshm"], meds["pyqt6"] / meds["qshm"]
        if kind == "decode" and case == "bytearray_64mib":
            ok = info["qshm"].get("zero_copy")
            verdict = f"zero-copy memoryview: {'met' if ok else 'MISSED'}"
            ratio5, ratio6 = "no copy", "no copy"
        else:
            verdict = "met" if r5 >= TARGET else "MISSED"
            ratio5, ratio6 = f"{r5:.2f}x", f"{r6:.2f}x"
        print(f"| {kind + ' ' + case:<26} | " + " | ".join(f"{c:<22}" for c in cells)
              + f" | {ratio5:>8} | {ratio6:>8} | {verdict} |")
    sizes = {s: info[s].get("encoded_sizes", {}) for s in STACKS}
    print("encoded PNG stream sizes (bytes): " + "; ".join(
        f"{case}: ours {sizes['qshm'].get(case)}, PyQt5 {sizes['pyqt5'].get(case)}"
        for case in ("image_1920x1080", "image_3840x2160")))
    print(f"Qt's decoded QImage formats: {info['pyqt5'].get('formats')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
