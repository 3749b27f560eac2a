"""A real Qt application we did not write, driven from Python: WSJT-X 2.6.1's jt9 decoder.

The signals are made by WSJT-X's own ``ft8sim`` (known messages, several SNRs); the example
(``qshm_compat.examples.wsjtx_jt9``) feeds them to ``jt9 -s KEY`` through the segment, as the
WSJT-X GUI does, and the messages must come back.  jt9 links Debian's Qt 5.15.8: it is a real
Qt peer, attaching to our segment with Qt's names and taking Qt's lock.  The unhappy paths (jt9
killed mid-decode, a segment of the wrong size, a crashed run's stale segment, an orphaned jt9)
must end in clear errors with nothing left.  Also here: the library pieces the example needs
(``StructView``, ``create_or_take_over``) against real Qt peers, and ``qChecksum`` against
PyQt5's and PyQt6's.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest

from qshm_compat import QSharedMemory
from qshm_compat.checksum import ChecksumType, qChecksum
from qshm_compat.examples import wsjtx_jt9
from qshm_compat.examples.wsjtx_jt9 import DEC_DATA_SIZE, DecData, Jt9, Jt9Error, decode_wav, read_wav
from qshm_compat.structview import SegmentInUseError, StructView, create_or_take_over
from qshm_compat.testing import WaitTimeoutError, assert_no_leftovers

import peers


class Signal(NamedTuple):
    message: str
    freq: int  # Hz
    snr: int  # dB in 2500 Hz


SIGNALS = [
    Signal("CQ K1ABC FN42", 1500, -10),
    Signal("K1ABC W9XYZ EN37", 1000, -16),
    Signal("W9XYZ K1ABC R-12", 2200, -4),
]


def _required(program: str) -> str:
    path = shutil.which(program)
    if path is None:  # a missing peer fails, it is never skipped
        pytest.fail(f"{program} is not installed: tests/run.sh installs the Debian package wsjtx", pytrace=False)
    return path


def _ft8sim(directory: Path, sig: Signal) -> Path:
    """One 15 s FT8 .wav from WSJT-X's own simulator (it writes 000000_000001.wav in its cwd)."""
    directory.mkdir(parents=True)
    subprocess.run([_required("ft8sim"), sig.message, str(sig.freq), "0.0", "0.0", "0.0", "1", str(sig.snr)],
                   cwd=directory, check=True, capture_output=True, timeout=60)
    return directory / "000000_000001.wav"


def _mix(paths: List[Path], out: Path) -> Path:
    import numpy

    total = sum(numpy.frombuffer(read_wav(str(p)), dtype="<i2").astype(numpy.int32) for p in paths)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(12000)
        w.writeframes(numpy.clip(total, -32768, 32767).astype("<i2").tobytes())
    return out


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """ft8sim's signals: one file per signal, two of them mixed in one file, and noise alone."""
    base = tmp_path_factory.mktemp("ft8sim")
    files = {sig.message: _ft8sim(base / f"s{i}", sig) for i, sig in enumerate(SIGNALS)}
    files["mix"] = _mix([files[SIGNALS[0].message], files[SIGNALS[2].message]], base / "mix.wav")
    files["noise"] = _ft8sim(base / "noise", Signal("CQ K1ABC FN42", 1500, -40))
    return files


def _track(jt9: Jt9) -> None:
    """Let the leak guard see objects jt9 used last (it attributes them by pid)."""
    peers.STARTED_PIDS.add(jt9.pid)


def _jt9_file_decode(path: Path, tmp: Path) -> List[str]:
    """jt9 reading the file itself (no shared memory), deep decoding: its messages."""
    out = subprocess.run([_required("jt9"), "-8", "-d", "3", "-a", str(tmp), "-t", str(tmp), str(path)],
                         cwd=tmp, capture_output=True, text=True, timeout=120, check=True).stdout
    return sorted(d.message for d in map(wsjtx_jt9.parse_decode, out.splitlines()) if d is not None)


# ----- jt9 decodes what we put in its segment --------------------------------------------------


def test_dec_data_layout_is_jt9s() -> None:
    """The struct is the size jt9 2.6.1 allocates and has its params where jt9's code reads them."""
    assert ctypes.sizeof(DecData) == DEC_DATA_SIZE == 0x2E09F3C
    assert DecData.params.offset == 0x2E09E58
    code = subprocess.run(["objdump", "-d", _required("jt9")], capture_output=True, text=True, check=True).stdout
    assert "$0x2e09f3c," in code  # allocate(shared_data): sizeof(dec_data)
    nzhsym = DecData.params.offset + wsjtx_jt9.Params.nzhsym.offset
    for passes in ("0x29", "0x2f", "0x32"):  # FT8's 41, 47, 50 half-symbol passes set in jt9a
        assert f"movl   ${passes},{nzhsym:#x}(" in code


@pytest.mark.timeout(240)
def test_jt9_decodes_ft8sim_messages_fed_through_the_segment(wavs: Dict[str, Path], qshm_key: str,
                                                             tmp_path: Path) -> None:
    """Each ft8sim message, at -16 to -4 dB, comes back from jt9 fed by Python alone, as jt9 decodes the file."""
    with Jt9(qshm_key, workdir=str(tmp_path / "jt9")) as jt9:
        _track(jt9)
        assert jt9.shm is not None and jt9.shm.size() == DEC_DATA_SIZE
        for sig in SIGNALS:
            path = wavs[sig.message]
            decodes = jt9.decode(read_wav(str(path)), utc=1)
            got = {d.message: d for d in decodes}
            assert sig.message in got, (sig, decodes)
            assert abs(got[sig.message].freq - sig.freq) <= 5
            assert abs(got[sig.message].snr - sig.snr) <= 4
            assert got[sig.message].utc == "000001" and got[sig.message].mode == "~"
            assert sorted(got) == _jt9_file_decode(path, tmp_path)
        mixed = {d.message for d in jt9.decode(read_wav(str(wavs["mix"])))}
        assert {SIGNALS[0].message, SIGNALS[2].message} <= mixed
        assert jt9.decode(read_wav(str(wavs["noise"]))) == []
        # Everything happened under Qt's handshake: jt9 has reset both flags.
        assert jt9.view is not None and jt9.view.get("ipc[1]") == 0 and jt9.view.get("ipc[2]") == 0
        pid = jt9.pid
    assert jt9.proc is not None and jt9.proc.returncode == 0  # it quit on ipc[1] = 999
    assert_no_leftovers(qshm_key)
    assert not _running(pid)


def test_the_example_command_prints_the_messages(wavs: Dict[str, Path], qshm_key: str) -> None:
    """``python -m qshm_compat.examples.wsjtx_jt9 FILE.wav`` prints jt9's message and leaves nothing."""
    files = [str(wavs[s.message]) for s in SIGNALS[:2]]
    out = subprocess.run([sys.executable, "-m", "qshm_compat.examples.wsjtx_jt9", "--key", qshm_key, *files],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert SIGNALS[0].message in out.stdout and SIGNALS[1].message in out.stdout
    assert "1 message(s) in" in out.stdout
    assert_no_leftovers(qshm_key)


def test_decode_wav_refuses_a_wav_jt9_cannot_take(tmp_path: Path) -> None:
    """A 44.1 kHz stereo .wav is refused before any segment is made, naming what jt9 takes."""
    path = tmp_path / "cd.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(400))
    with pytest.raises(ValueError, match="44100 Hz, 16-bit, 2 channel.*12000 Hz 16-bit mono"):
        decode_wav(str(path), key="qshm-never-made")


# ----- unhappy paths -------------------------------------------------------------------------------


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(120)
def test_jt9_killed_mid_decode_is_a_clear_error_and_nothing_is_left(wavs: Dict[str, Path], qshm_key: str,
                                                                   tmp_path: Path) -> None:
    """jt9 SIGKILLed after taking the samples: results() names the signal; close() leaves nothing."""
    jt9 = Jt9(qshm_key, workdir=str(tmp_path / "jt9")).start()
    try:
        _track(jt9)
        jt9.submit(read_wav(str(wavs[SIGNALS[1].message])))  # returns once jt9 took the job
        os.kill(jt9.pid, signal.SIGKILL)
        with pytest.raises(Jt9Error, match=rf"jt9 \(pid {jt9.pid}\) was killed by SIGKILL while decoding"):
            jt9.results()
    finally:
        jt9.close()
    assert_no_leftovers(qshm_key)


def test_jt9_that_never_takes_the_job_times_out_naming_the_field(wavs: Dict[str, Path], qshm_key: str,
                                                                 tmp_path: Path) -> None:
    """A jt9 stopped (SIGSTOP) before the job: submit() fails at the deadline naming ipc[1] and the key."""
    jt9 = Jt9(qshm_key, workdir=str(tmp_path / "jt9"), timeout=1.5).start()
    try:
        _track(jt9)
        os.kill(jt9.pid, signal.SIGSTOP)
        with pytest.raises(WaitTimeoutError, match=rf"field ipc\[1\] of segment of key '{qshm_key}'.*still 1"):
            jt9.submit(read_wav(str(wavs[SIGNALS[0].message])))
    finally:
        os.kill(jt9.pid, signal.SIGCONT)
        jt9.close()
    assert_no_leftovers(qshm_key)


@pytest.mark.parametrize("peer_name", ["cpp-qt5", "pyqt5"])
def test_a_segment_of_the_wrong_size_is_refused_and_left_untouched(peer_name: str, spawn, qshm_key: str) -> None:
    """A live Qt program holding the key with 4096 bytes: a clear error, and its bytes stay as they were."""
    peer = spawn(peer_name)
    peer.ok("key", key=qshm_key)
    peer.ok("create", size=4096)
    before = bytes(range(256)) * 16
    peer.ok("write", hex=before.hex())
    with pytest.raises(Jt9Error, match=rf"is 4096 bytes; DecData at offset 0 needs exactly {DEC_DATA_SIZE}"):
        Jt9(qshm_key).start()
    assert bytes.fromhex(peer.ok("read")["hex"]) == before  # no 999 written into someone else's segment
    peer.ok("destroy")
    assert_no_leftovers(qshm_key)


def test_jt9_itself_dies_on_a_segment_smaller_than_dec_data(qshm_key: str, tmp_path: Path) -> None:
    """Why the size is checked: jt9 attaches to a 4096-byte segment, is told to decode, and dies of SIGSEGV."""
    shm = QSharedMemory(qshm_key)
    assert shm.create(4096), shm.errorString()
    try:
        with shm.locked(timeout=5):
            shm.data()[4:8] = (1).to_bytes(4, "little")  # ipc[1] = 1: decode
        proc = subprocess.Popen([_required("jt9"), "-s", qshm_key, "-w", "1", "-m", "1", "-a", str(tmp_path),
                                 "-t", str(tmp_path)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        peers.STARTED_PIDS.add(proc.pid)
        try:
            assert proc.wait(timeout=60) == -signal.SIGSEGV
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finally:
        shm.close()
    assert_no_leftovers(qshm_key)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("peer_name", ["cpp-qt5", "pyqt5"])
def test_a_crashed_runs_stale_segment_is_taken_over(peer_name: str, spawn, wavs: Dict[str, Path],
                                                    qshm_key: str, tmp_path: Path) -> None:
    """A Qt creator of the dec_data segment killed (SIGKILL): the next run takes it over and decodes."""
    peer = spawn(peer_name)
    peer.ok("key", key=qshm_key)
    peer.ok("create", size=DEC_DATA_SIZE)
    peer.ok("write", hex=(1).to_bytes(4, "little").hex(), offset=4)  # a half-done "decode" flag
    peer.kill()
    with Jt9(qshm_key, workdir=str(tmp_path / "jt9")) as jt9:
        _track(jt9)
        assert jt9.view is not None and jt9.view.get("ipc[1]") == 0  # a fresh, zeroed segment
        decodes = jt9.decode(read_wav(str(wavs[SIGNALS[0].message])))
        assert SIGNALS[0].message in {d.message for d in decodes}
    assert_no_leftovers(qshm_key)


@pytest.mark.timeout(120)
def test_an_orphaned_jt9_of_a_killed_driver_is_told_to_quit(wavs: Dict[str, Path], qshm_key: str,
                                                           tmp_path: Path) -> None:
    """The driver SIGKILLed while its jt9 runs: the next run writes 999 as the GUI does, jt9 exits, decoding works."""
    script = ("import sys, time\nfrom qshm_compat.examples.wsjtx_jt9 import Jt9\n"
              "j = Jt9(sys.argv[1], workdir=sys.argv[2]).start()\nprint(j.pid, flush=True)\ntime.sleep(120)\n")
    driver = subprocess.Popen([sys.executable, "-c", script, qshm_key, str(tmp_path / "first")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        orphan = int(driver.stdout.readline())
        peers.STARTED_PIDS.update({driver.pid, orphan})
        time.sleep(0.5)  # jt9 attaches
    finally:
        driver.kill()
        driver.wait(timeout=10)
    assert _running(orphan)
    try:
        with Jt9(qshm_key, workdir=str(tmp_path / "second")) as jt9:
            _track(jt9)
            assert not _running(orphan)
            assert SIGNALS[2].message in {d.message for d in jt9.decode(read_wav(str(wavs[SIGNALS[2].message])))}
    finally:
        if _running(orphan):
            os.kill(orphan, signal.SIGKILL)
    assert_no_leftovers(qshm_key)


def test_a_missing_jt9_is_a_clear_error(qshm_key: str) -> None:
    """No such program: Jt9Error says what to install, and no segment is made."""
    with pytest.raises(Jt9Error, match="not found: install WSJT-X"):
        Jt9(qshm_key, jt9="/nonexistent/jt9")
    assert_no_leftovers(qshm_key)


# ----- the library pieces, against real Qt peers ---------------------------------------------------


class Header(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_char * 4), ("count", ctypes.c_uint32), ("flags", ctypes.c_uint16 * 3),
                ("ok", ctypes.c_bool), ("value", ctypes.c_double)]


@pytest.mark.parametrize("peer_name", ["cpp-qt5", "cpp-qt6", "pyqt6"])
def test_struct_view_reads_and_writes_a_qt_programs_struct(peer_name: str, spawn, qshm_key: str) -> None:
    """A StructView over a Qt program's segment: its bytes as fields, our writes seen by it, waits on a field."""
    peer = spawn(peer_name)
    peer.ok("key", key=qshm_key)
    peer.ok("create", size=64)
    raw = Header(b"QTHD", 7, (1, 2, 3), True, 2.5)
    peer.ok("write", hex=bytes(raw).hex(), offset=8)
    shm = QSharedMemory(qshm_key)
    assert shm.attach(timeout=5), shm.errorString()
    try:
        with StructView(shm, Header, offset=8) as view:
            assert view.get("magic") == b"QTHD" and view.get("count") == 7 and view.get("flags") == [1, 2, 3]
            assert view.get("flags[2]") == 3 and view.get("ok") is True and view.get("value") == 2.5
            assert view.field("value").offset == 8 + Header.value.offset
            view.set({"count": 8, "flags[0]": 9})
            got = bytes.fromhex(peer.ok("read", offset=8, length=ctypes.sizeof(Header))["hex"])
            assert Header.from_buffer_copy(got).count == 8 and list(Header.from_buffer_copy(got).flags) == [9, 2, 3]
            peer.ok("write", hex=(41).to_bytes(4, "little").hex(), offset=8 + Header.count.offset)
            assert view.wait_for("count", lambda v: v == 41, timeout=5) == 41
            with pytest.raises(WaitTimeoutError, match=rf"field count of segment of key '{qshm_key}'.*still 41"):
                view.wait_for("count", timeout=0.3)
            with pytest.raises(KeyError, match="no field 'nope'"):
                view.field("nope")
            with pytest.raises(IndexError):
                view.field("flags[3]")
            with view.locked(timeout=5) as header:
                assert header.magic == b"QTHD"
            assert view.array("flags").tolist() == [9, 2, 3]
        with pytest.raises(ValueError, match=r"is 64 bytes; Header at offset 41 needs at least 65"):
            StructView(shm, Header, offset=41)
        with pytest.raises(ValueError, match="needs exactly 24 \\(sizeof 24\\)"):
            StructView(shm, Header, exact=True)
    finally:
        shm.close()
    peer.ok("destroy")
    assert_no_leftovers(qshm_key)


def test_create_or_take_over_leaves_a_live_segment_alone(spawn, qshm_key: str) -> None:
    """A Qt peer attached: SegmentInUseError says who, and the peer's segment is still there."""
    peer = spawn("cpp-qt5")
    peer.ok("key", key=qshm_key)
    peer.ok("create", size=128)
    with pytest.raises(SegmentInUseError, match=r"already exists and is not stale: .*1 process\(es\) attached"):
        create_or_take_over(qshm_key, 128)
    assert peer.ok("state")["isAttached"]
    peer.ok("destroy")
    assert_no_leftovers(qshm_key)


@pytest.mark.parametrize("peer_name", ["cpp-qt5", "pyqt6"])
def test_create_or_take_over_replaces_a_killed_creators_segment(peer_name: str, spawn, qshm_key: str) -> None:
    """A Qt creator killed: one call removes its stale segment and makes ours; a Qt peer then attaches to ours."""
    peer = spawn(peer_name)
    peer.ok("key", key=qshm_key)
    peer.ok("create", size=100)
    peer.kill()
    shm = create_or_take_over(qshm_key, 200)
    try:
        assert shm.size() == 200
        other = spawn(peer_name)
        other.ok("key", key=qshm_key)
        assert other.ok("attach")["size"] == 200
        other.ok("destroy")
    finally:
        shm.close()
    assert_no_leftovers(qshm_key)


# ----- qChecksum against Qt's ------------------------------------------------------------------


_QT_CHECKSUM = """
import json, sys
from {binding}.QtCore import Qt, qChecksum
kinds = [Qt.ChecksumType.ChecksumIso3309, Qt.ChecksumType.ChecksumItuV41]
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    print(json.dumps([qChecksum(data, kind) for kind in kinds]), flush=True)
"""


@pytest.mark.parametrize("binding", ["PyQt5", "PyQt6"])
def test_qchecksum_equals_qts(binding: str) -> None:
    """qChecksum of random inputs (0-300 bytes) and the check string equals Qt's, for both checksum types."""
    rng = random.Random(15)
    inputs = [b"", b"123456789", bytes(range(256))] + [rng.randbytes(rng.randrange(0, 300)) for _ in range(300)]
    out = subprocess.run([sys.executable, "-c", _QT_CHECKSUM.format(binding=binding)], capture_output=True,
                         text=True, timeout=60, input="".join(d.hex() + "\n" for d in inputs))
    assert out.returncode == 0, out.stderr
    qt = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(qt) == len(inputs)
    ours = [[qChecksum(d), qChecksum(d, ChecksumType.ChecksumItuV41)] for d in inputs]
    assert ours == qt
    assert qt[1] == [0x906E, 0xBF05]  # the CRC catalogue's check values for X.25 and ISO 14443-A
    assert qChecksum(memoryview(inputs[5])) == qt[5][0]
