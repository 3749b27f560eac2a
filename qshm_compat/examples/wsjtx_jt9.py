"""WSJT-X's decoder without its GUI: ``jt9`` fed a .wav through its shared memory, from Python.

The WSJT-X GUI (a Qt 5 program) shares one ``QSharedMemory`` segment with its decoder process,
``jt9 -s <key>``: a C struct, ``dec_data``, holding the audio samples, the decoder's parameters
and three handshake flags.  This module plays the GUI's part, with qshm_compat and no Qt::

    python -m qshm_compat.examples.wsjtx_jt9 FILE.wav       # 15 s, 12 kHz, 16-bit mono (FT8)

or, from Python, ``decode_wav("FILE.wav")`` -> a list of :class:`Decode`.

Facts, for WSJT-X 2.6.1 (Debian 12 package ``wsjtx`` 2.6.1+repack-1), read from its sources
(``commons.h``, ``lib/jt9com.f90``, ``lib/jt9a.f90``, ``lib/decoder.f90``, ``main.cpp``,
``widgets/mainwindow.cpp``) and checked against the installed ``/usr/bin/jt9``:

* key: ``QApplication::applicationName()``, i.e. ``"WSJT-X"`` (``"WSJT-X - <rig>"`` with
  ``--rig-name``), a plain legacy key: System V, key file in ``$TMPDIR``.  jt9 links Debian's
  Qt 5.15.8 and attaches with ``setKey(key)`` + ``attach()``.
* size: ``sizeof(dec_data)`` = 48,275,260 bytes (jt9 allocates exactly that for file input:
  ``mov $0x2e09f3c`` in its code; its ``params`` block starts at 0x2e09e58).  jt9 never checks
  the size: a smaller segment makes it read past the end and crash, so we check.
* handshake (``ipc[3]``), every access under the segment's lock, jt9 polling every 30 ms:
  the GUI writes ``params`` and the samples, then ``ipc[0]`` = half-symbols seen and
  ``ipc[1]`` = 1 ("decode"); jt9 sets ``ipc[1]`` = 0, copies ``params``, decodes, prints one
  line per message and ``<DecodeFinished>`` on stdout, and waits for ``ipc[2]`` = 1 ("seen",
  the GUI's ``decodeDone()``), which it sets back to 0.  ``ipc[1]`` = 999 makes it detach and
  exit.  Before creating the segment the GUI attaches to any it finds and writes 999 there, to
  stop an orphaned jt9 of a crashed run (three tries, a second apart).
* the GUI starts ``jt9 -s KEY -w 1 -m THREADS -e EXE_DIR -a DATA_DIR -t TEMP_DIR`` with
  ``OMP_STACKSIZE=4M``; for a file it sets ``ndiskdat``, and jt9 then makes FT8's early passes
  (41 and 47 half-symbols) itself before the full one (50).  jt9 writes ``decoded.txt`` in
  TEMP_DIR, ``timer.out`` and ``jt9_wisdom.dat`` in DATA_DIR, and looks for
  ``rx_messages.txt`` in its working directory: we run it in a directory of our own.
"""

from __future__ import annotations

import ctypes
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from typing import List, Optional, Sequence

from qshm_compat import QSharedMemory
from qshm_compat.exceptions import QshmError
from qshm_compat.structview import SegmentInUseError, StructView, create_or_take_over

KEY = "WSJT-X"
NSMAX = 6827  # saved spectrum length (commons.h)
NTMAX = 30 * 60  # longest T/R period, seconds
RX_SAMPLE_RATE = 12000
FT8_HALF_SYMBOLS = 50  # m_hsymStop for FT8: the full decode
FT8_NSPS = 6912  # m_nsps in FT8 mode (samples per half-symbol step x 2)


class Params(ctypes.Structure):
    """``dec_data.params``: what the GUI tells the decoder (commons.h)."""

    _fields_ = [
        ("nutc", ctypes.c_int),  # UTC of the period, HHMMSS (HHMM for periods >= 60 s)
        ("ndiskdat", ctypes.c_bool),  # the samples come from a file
        ("ntrperiod", ctypes.c_int),  # T/R period, s
        ("nQSOProgress", ctypes.c_int),
        ("nfqso", ctypes.c_int),  # Rx frequency, Hz
        ("nftx", ctypes.c_int),  # Tx frequency, Hz
        ("newdat", ctypes.c_bool),  # new samples: do the long FFTs
        ("npts8", ctypes.c_int),
        ("nfa", ctypes.c_int),  # lowest frequency decoded, Hz
        ("nfSplit", ctypes.c_int),
        ("nfb", ctypes.c_int),  # highest frequency decoded, Hz
        ("ntol", ctypes.c_int),  # +/- tolerance around nfqso, Hz
        ("kin", ctypes.c_int),  # samples in d2
        ("nzhsym", ctypes.c_int),  # half-symbols received: 50 = the whole FT8 period
        ("nsubmode", ctypes.c_int),
        ("nagain", ctypes.c_bool),
        ("ndepth", ctypes.c_int),  # 1 fast, 2 normal, 3 deep (+ flag bits)
        ("lft8apon", ctypes.c_bool),  # FT8 a-priori decoding
        ("lapcqonly", ctypes.c_bool),
        ("ljt65apon", ctypes.c_bool),
        ("napwid", ctypes.c_int),
        ("ntxmode", ctypes.c_int),
        ("nmode", ctypes.c_int),  # 8 FT8, 5 FT4, 9 JT9, 65 JT65, 66 Q65, 240 FST4 ...
        ("minw", ctypes.c_int),
        ("nclearave", ctypes.c_bool),
        ("minSync", ctypes.c_int),
        ("emedelay", ctypes.c_float),
        ("dttol", ctypes.c_float),
        ("nlist", ctypes.c_int),
        ("listutc", ctypes.c_int * 10),
        ("n2pass", ctypes.c_int),
        ("nranera", ctypes.c_int),
        ("naggressive", ctypes.c_int),
        ("nrobust", ctypes.c_bool),
        ("nexp_decode", ctypes.c_int),
        ("max_drift", ctypes.c_int),
        ("datetime", ctypes.c_char * 20),
        ("mycall", ctypes.c_char * 12),  # blank-padded, not NUL-terminated
        ("mygrid", ctypes.c_char * 6),
        ("hiscall", ctypes.c_char * 12),
        ("hisgrid", ctypes.c_char * 6),
    ]


class DecData(ctypes.Structure):
    """``struct dec_data`` (commons.h), the whole segment."""

    _fields_ = [
        ("ipc", ctypes.c_int * 3),  # [0] half-symbols seen, [1] 1 = decode / 999 = quit, [2] 1 = seen
        ("ss", ctypes.c_float * (184 * NSMAX)),  # symbol spectra (JT9)
        ("savg", ctypes.c_float * NSMAX),
        ("sred", ctypes.c_float * 5760),
        ("d2", ctypes.c_short * (NTMAX * RX_SAMPLE_RATE)),  # the samples, 12 kHz
        ("params", Params),
    ]


DEC_DATA_SIZE = ctypes.sizeof(DecData)
assert DEC_DATA_SIZE == 48_275_260 and DecData.params.offset == 0x2E09E58  # as in /usr/bin/jt9

DECODE_LINE = re.compile(r"^(?P<utc>\d{4,6})\s*(?P<snr>-?\d+)\s+(?P<dt>-?\d+\.\d)\s+(?P<freq>\d+)\s+(?P<mode>\S)\s")


class Jt9Error(QshmError, RuntimeError):
    """jt9 failed, died, or could not be given the segment; the message says which and why."""


@dataclass(frozen=True)
class Decode:
    """One decoded message, as jt9 printed it."""

    utc: str  # HHMMSS of the period
    snr: int  # dB
    dt: float  # time offset, s
    freq: int  # audio frequency, Hz
    mode: str  # "~" FT8, "+" FT4, "`" FST4 ...
    message: str  # "CQ K1ABC FN42"
    line: str  # the whole line


def parse_decode(line: str) -> Optional[Decode]:
    """A line of jt9's output as a :class:`Decode`, or None if it is not a decode."""
    match = DECODE_LINE.match(line)
    if not match:
        return None
    text = line[match.end():]
    message = text[:38].strip()  # a37 after one blank; then an AP annotation ("a1") may follow
    return Decode(match["utc"], int(match["snr"]), float(match["dt"]), int(match["freq"]), match["mode"],
                  message, line)


def read_wav(path: str) -> bytes:
    """The samples of a 12 kHz 16-bit mono .wav (what WSJT-X records and ft8sim writes)."""
    with wave.open(path, "rb") as w:
        shape = (w.getframerate(), w.getsampwidth(), w.getnchannels())
        if shape != (RX_SAMPLE_RATE, 2, 1):
            raise ValueError(f"{path}: {shape[0]} Hz, {8 * shape[1]}-bit, {shape[2]} channel(s); "
                             f"jt9 takes {RX_SAMPLE_RATE} Hz 16-bit mono")
        return w.readframes(w.getnframes())


def utc_of(path: str) -> int:
    """The period's UTC from a WSJT-X file name (``YYMMDD_HHMMSS.wav``), as the GUI reads it; 0 if none."""
    match = re.search(r"_(\d{6})\.wav$", os.path.basename(path), re.IGNORECASE)
    return int(match.group(1)) if match else 0


class Jt9:
    """One ``jt9 -s KEY`` process, fed through one segment exactly as the WSJT-X GUI feeds it.

    ``with Jt9() as jt9: jt9.decode(samples)`` (or :meth:`start` / :meth:`close`).  ``key`` is
    the segment's Qt key: the default is the GUI's, so do not run this beside a running WSJT-X
    with the same ``TMPDIR`` (it would refuse: the key is in use).  ``workdir`` holds jt9's data
    and temp directories (default: a fresh one, removed by :meth:`close`).
    """

    def __init__(self, key: str = KEY, *, jt9: str = "jt9", workdir: Optional[str] = None,
                 threads: Optional[int] = None, timeout: float = 60.0):
        self.key = key
        self.timeout = timeout
        found = shutil.which(jt9)
        if found is None:
            raise Jt9Error(f"{jt9!r} not found: install WSJT-X (Debian: apt-get install wsjtx)")
        self.program = os.path.realpath(found)
        self.threads = threads or min(max((os.cpu_count() or 2) - 1, 1), 3)  # as the GUI picks
        self._own_workdir = workdir is None
        self.workdir = workdir or ""  # made by start()
        self.shm: Optional[QSharedMemory] = None
        self.view: Optional[StructView[DecData]] = None
        self.proc: Optional[subprocess.Popen[str]] = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: List[str] = []

    # -- the segment and the process -------------------------------------------------------

    def start(self) -> Jt9:
        """Create the segment (after stopping an orphaned jt9 of a crashed run), start jt9."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> Jt9:
        self.shm = self._create_segment()
        if self._own_workdir:
            self.workdir = tempfile.mkdtemp(prefix="wsjtx-jt9-")
        self.view = StructView(self.shm, DecData, exact=True)
        with self.view.locked() as d:  # the GUI zeroes it, then to_jt9(0, 0, 0)
            ctypes.memset(ctypes.addressof(d), 0, DEC_DATA_SIZE)
        data_dir, temp_dir = (os.path.join(self.workdir, name) for name in ("data", "temp"))
        for path in (data_dir, temp_dir):
            os.makedirs(path, exist_ok=True)
        argv = [self.program, "-s", self.key, "-w", "1", "-m", str(self.threads),
                "-e", os.path.dirname(self.program), "-a", data_dir, "-t", temp_dir]
        self.proc = subprocess.Popen(argv, cwd=temp_dir, env={**os.environ, "OMP_STACKSIZE": "4M"},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="latin-1")
        for target in (self._pump_stdout, self._pump_stderr):
            threading.Thread(target=target, daemon=True).start()
        return self

    def _create_segment(self) -> QSharedMemory:
        for _ in range(3):  # the GUI's three tries to stop an orphaned jt9
            try:
                return create_or_take_over(self.key, DEC_DATA_SIZE)
            except SegmentInUseError as exc:
                in_use = exc
            self._stop_orphan()
            time.sleep(1)
        raise Jt9Error(f"{in_use}; it is not an orphaned jt9's (a WSJT-X using key {self.key!r} runs?)")

    def _stop_orphan(self) -> None:
        """Write 999 into ``ipc[1]`` of a segment found under our key, as the GUI does at start."""
        shm = QSharedMemory(self.key)
        if not shm.attach(timeout=5):
            return  # gone meanwhile
        try:
            with StructView(shm, DecData, exact=True) as view:
                view.set({"ipc[1]": 999})
        except ValueError as exc:  # the size is not dec_data's: not ours to write into
            raise Jt9Error(f"cannot use key {self.key!r}: {exc}") from None
        finally:
            shm.close()

    def _pump_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\r\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def _alive(self, doing: str) -> None:
        """Raise :class:`Jt9Error` if jt9 has exited."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
            tail = "".join(self._stderr[-5:]).strip()
            raise Jt9Error(f"jt9 (pid {self.proc.pid}) {how} {doing}" + (f"; stderr: {tail}" if tail else ""))

    # -- decoding ----------------------------------------------------------------------------

    def submit(self, samples: bytes, utc: int = 0, *, depth: int = 3, rx_freq: int = 1500,
               freq_range: Sequence[int] = (200, 4000), mycall: str = "", hiscall: str = "") -> None:
        """Write 15 s of FT8 samples (16-bit, 12 kHz) and the GUI's parameters for a file, and
        tell jt9 to decode ("Decode" after "File > Open" in FT8 mode); returns once jt9 took it."""
        assert self.view is not None, "not started"
        period = 15
        count = min(len(samples) // 2, period * RX_SAMPLE_RATE)
        with self.view.locked() as d:
            ctypes.memmove(d.d2, samples, 2 * count)
            ctypes.memset(ctypes.addressof(d.d2) + 2 * count, 0, 2 * (period * RX_SAMPLE_RATE - count))
            p = d.params
            p.nutc, p.ndiskdat, p.newdat, p.nagain, p.kin = utc, True, True, False, count
            p.nmode = p.ntxmode = 8
            p.ntrperiod, p.nzhsym = period, FT8_HALF_SYMBOLS
            p.npts8 = FT8_HALF_SYMBOLS * FT8_NSPS // 16
            p.nfqso = p.nftx = rx_freq
            p.nfa, p.nfb = freq_range
            p.ntol, p.ndepth, p.n2pass, p.nranera = 20, depth, 2, 6
            p.lft8apon, p.napwid, p.dttol = True, 50, 3.0
            p.mycall, p.hiscall = mycall.ljust(12).encode(), hiscall.ljust(12).encode()
            p.mygrid, p.hisgrid = b" " * 6, b" " * 6
            d.ipc[0], d.ipc[1] = FT8_HALF_SYMBOLS, 1  # to_jt9(m_ihsym, 1, -1): decode
        self.view.wait_for("ipc[1]", lambda v: v != 1, timeout=self.timeout,
                           check=lambda: self._alive("before taking the samples"))

    def results(self) -> List[Decode]:
        """jt9's messages for what :meth:`submit` gave it, then the GUI's "seen" handshake."""
        assert self.view is not None, "not started"
        decodes: List[Decode] = []
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise Jt9Error(f"jt9 (pid {self.pid}) did not finish decoding within {self.timeout:g} s") from None
            if line is None:  # end of output: jt9 died or is dying
                assert self.proc is not None
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                self._alive("while decoding")
                raise Jt9Error(f"jt9 (pid {self.pid}) closed its output while decoding")
            if "<DecodeFinished>" in line:
                break
            decode = parse_decode(line)
            if decode is not None:
                decodes.append(decode)
        self.view.set({"ipc[2]": 1})  # decodeDone(): to_jt9(m_ihsym, -1, 1)
        self.view.wait_for("ipc[2]", lambda v: v == 0, timeout=self.timeout,
                           check=lambda: self._alive("after decoding"))
        return decodes

    def decode(self, samples: bytes, utc: int = 0, **params: object) -> List[Decode]:
        """Decode 15 s of FT8 samples: :meth:`submit`, then :meth:`results`."""
        self.submit(samples, utc, **params)  # type: ignore[arg-type]
        return self.results()

    # -- the end ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Tell jt9 to quit (``ipc[1]`` = 999), wait for it (kill it after 5 s), give the segment
        back (the last one out removes it, its lock and key files) and remove our work dir."""
        try:
            if self.proc is not None and self.proc.poll() is None and self.view is not None:
                try:
                    self.view.set({"ipc[1]": 999})
                    self.proc.wait(timeout=5)
                except (TimeoutError, subprocess.TimeoutExpired):
                    self.proc.kill()
            if self.proc is not None:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait(timeout=10)
                for stream in (self.proc.stdout, self.proc.stderr):
                    if stream is not None:
                        stream.close()
        finally:
            if self.view is not None:
                self.view.close()
            if self.shm is not None:
                self.shm.close(timeout=5)
            self.view = self.shm = None
            if self._own_workdir and self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = ""

    def __enter__(self) -> Jt9:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def decode_wav(path: str, key: str = KEY, **options: object) -> List[Decode]:
    """Decode an FT8 .wav with jt9 through the shared memory: its messages."""
    samples = read_wav(path)
    with Jt9(key) as jt9:
        return jt9.decode(samples, utc_of(path), **options)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m qshm_compat.examples.wsjtx_jt9",
                                     description="Decode FT8 .wav files with WSJT-X's jt9, fed through "
                                                 "its shared memory as the WSJT-X GUI feeds it.")
    parser.add_argument("files", nargs="+", metavar="FILE.wav", help="15 s, 12 kHz, 16-bit mono")
    parser.add_argument("--key", default=KEY, help=f"the segment's Qt key (default {KEY!r}, the GUI's)")
    parser.add_argument("--depth", type=int, default=3, choices=(1, 2, 3), help="1 fast, 2 normal, 3 deep")
    args = parser.parse_args(argv)
    try:
        wavs = [(path, read_wav(path)) for path in args.files]
        with Jt9(args.key) as jt9:
            print(f"jt9 pid {jt9.pid}, segment {jt9.shm.nativeKey() if jt9.shm else '?'} "
                  f"({DEC_DATA_SIZE} bytes)")
            for path, samples in wavs:
                start = time.perf_counter()
                decodes = jt9.decode(samples, utc_of(path), depth=args.depth)
                took = time.perf_counter() - start
                print(f"{path}: {len(decodes)} message(s) in {took:.2f} s")
                for d in decodes:
                    print(f"  {d.utc} {d.snr:4d} {d.dt:5.1f} {d.freq:5d} {d.mode}  {d.message}")
    except (Jt9Error, QshmError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
