"""The pytest plugin (qshm_compat.pytest_plugin) and its helpers (qshm_compat.testing), used the
way a project testing its own Qt program would: inner pytest runs (pytester, in subprocesses)
whose tests start the real PyQt5 and PyQt6 peers as the programs under test.

Each inner test records its keys, its TMPDIR and the pids of its programs in a JSON file; after
the inner run the outer test checks that nothing of them is left: no process, no segment or
semaphore made by them, no key file, no ``/dev/shm`` object.
"""

from __future__ import annotations

import configparser
import glob
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import pytest

import leftovers
import qshm_compat
from conftest import SESSION_TMPDIR
from peers import FIXTURES, ROOT
from qshm_compat import QSharedMemory, testing

pytest_plugins = ["pytester"]

PLUGIN = "qshm_compat.pytest_plugin"
#: Where qshm_compat is imported from (the source tree here, site-packages under CI).
PACKAGE_PARENT = str(Path(qshm_compat.__file__).resolve().parent.parent)

# The top of every inner test module: the peers as programs under test, and record().
INNER_HEADER = f'''
import json, os, shlex, sys, tempfile, time
import pytest
from qshm_compat import QNativeIpcKey, QSharedMemory
from qshm_compat.testing import assert_no_leftovers, snapshot, wait_for_change, wait_for_segment

PEER = {str(FIXTURES / "peer.py")!r}
READY = r'"ready": true'
FACTS = os.environ["QSHM_PLUGIN_FACTS"]
ORIGINAL_TMPDIR = os.environ.get("TMPDIR")


def peer(stack):
    return [sys.executable, PEER, stack]


def record(name, keys, procs=(), pids=()):
    facts = {{"test": name, "keys": [k if isinstance(k, str) else k.toString() for k in keys],
             "tmpdir": os.environ["TMPDIR"], "pids": [p.pid for p in procs] + list(pids),
             "pytest_pid": os.getpid(), "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}}
    with open(os.path.join(FACTS, name + ".json"), "w") as f:
        json.dump(facts, f)
'''


class Inner:
    """Runs an inner test module in a pytest subprocess with the plugin loaded by ``-p``."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, facts: Path) -> None:
        self.pytester = pytester
        self.facts_dir = facts
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
        monkeypatch.setenv("QSHM_PLUGIN_FACTS", str(facts))

    def run(self, source: str, *args: str, plugin: bool = True) -> Tuple[pytest.RunResult, List[Dict[str, Any]]]:
        self.pytester.makepyfile(test_inner=INNER_HEADER + textwrap.dedent(source))
        load = ("-p", PLUGIN) if plugin else ()
        result = self.pytester.runpytest_subprocess(*load, "-p", "no:cacheprovider", *args, timeout=240)
        facts = [json.loads(p.read_text()) for p in sorted(self.facts_dir.glob("*.json"))]
        return result, facts


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Inner:
    return Inner(pytester, monkeypatch, tmp_path_factory.mktemp("facts"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def assert_left_nothing(facts: List[Dict[str, Any]], other_files: Sequence[str] = ()) -> None:
    """No program of the inner tests runs, and nothing of their keys or processes is left."""
    assert facts, "the inner tests recorded nothing"
    pids = set()
    for fact in facts:
        pids.update(fact["pids"])
        pids.add(fact["pytest_pid"])
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if _alive(pid)], "a program under test outlived its test"
    names = [k.rpartition("/")[2].rpartition(":")[2] for fact in facts for k in fact["keys"]]
    for fact in facts:
        testing.assert_no_leftovers(fact["keys"], tmpdir=fact["tmpdir"])
        # Key files anywhere in its TMPDIR (the runtime dir is in there too).
        qt_files = [os.path.join(d, n) for d, _, files in os.walk(fact["tmpdir"]) for n in files
                    if (n.startswith("qipc_") or any(name in n for name in names)) and n not in other_files]
        assert not qt_files, f"{fact['test']} left key files in its TMPDIR: {qt_files}"
    # Whatever the programs (or the inner pytest) made, under any name.
    left = leftovers.snapshot(pids, {fact["tmpdir"] for fact in facts})
    left_files = {f for f in left.files if os.path.basename(f) not in other_files}
    assert not (left.segments or left.semaphores or left_files), f"left behind: {left.describe()}"
    in_dev_shm = [n for n in os.listdir("/dev/shm") if any(name in n for name in names)]
    assert not in_dev_shm, f"left in /dev/shm: {in_dev_shm}"


# ----- the fixtures --------------------------------------------------------------------------


PASSING = r'''
def test_drive_pyqt5(qt_process, qshm_key, qshm_tmpdir):
    proc = qt_process(peer("pyqt5"), ready=READY)
    hello = json.loads(proc.lines()[0])
    assert hello["tempPath"] == os.environ["TMPDIR"] == str(qshm_tmpdir)
    assert proc.request({"cmd": "key", "key": qshm_key})["nativeKey"] == QSharedMemory(qshm_key).nativeKey()
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    with wait_for_segment(qshm_key, 10) as shm:
        proc.send({"cmd": "write", "hex": b"hello".hex()})
        assert wait_for_change(shm, 10, (0, 5), baseline=bytes(5)) == b"hello"
        assert json.loads(proc.next_line())["ok"]
        with shm.locked(timeout=5):
            shm.data()[8:10] = b"hi"
        assert proc.request({"cmd": "read", "offset": 8, "length": 2})["hex"] == b"hi".hex()
    snap = snapshot(qshm_key)
    assert snap.verdict == "live" and snap.locked and snap.data[:5] == b"hello" and snap.size == 64
    assert snap.row.ref.family == "legacy-sysv"
    record("test_drive_pyqt5", [qshm_key], [proc])


def test_segment_made_at_start(qt_process, qshm_native_key):
    # A program that makes its segment as it starts: ready once the segment exists.  Its Qt
    # process is the child of a shell, so killing it takes the whole process group.
    requests = [{"cmd": "ipckey", "mode": "fromString", "key": qshm_native_key.toString()},
                {"cmd": "create", "size": 32}, {"cmd": "write", "hex": b"qt6".hex()}]
    feed = "; ".join("echo " + shlex.quote(json.dumps(r)) for r in requests)
    proc = qt_process(["sh", "-c", f"({feed}; sleep 120) | {shlex.quote(sys.executable)} {shlex.quote(PEER)} pyqt6"],
                      ready_segment=qshm_native_key)
    qt_pid = json.loads(proc.wait_for_line(READY).string)["pid"]
    with wait_for_segment(qshm_native_key, 10) as shm:
        data = bytes(3)
        while data != b"qt6":  # the peer writes without the lock: a partial write can be seen
            data = wait_for_change(shm, 10, (0, 3), baseline=data)
    record("test_segment_made_at_start", [qshm_native_key], [proc], pids=[qt_pid])


def test_zz_tmpdir_restored():
    assert os.environ.get("TMPDIR") == ORIGINAL_TMPDIR
    assert "qshm-tmpdir" not in tempfile.gettempdir()
'''


def test_passing_test_leaves_nothing(inner: Inner) -> None:
    """A passing test drives a Qt 5 and a Qt 6 program through shared memory and leaves nothing."""
    result, facts = inner.run(PASSING)
    result.assert_outcomes(passed=3)
    assert len(facts) == 2
    assert_left_nothing(facts)


FAILING_AND_KILLED = r'''
def test_fails_while_its_program_holds_the_lock(qt_process, qshm_key):
    proc = qt_process(peer("pyqt5"), ready=READY)
    for request in ({"cmd": "key", "key": qshm_key}, {"cmd": "create", "size": 64}, {"cmd": "lock"}):
        assert proc.request(request)["ok"]
    record("test_fails_while_its_program_holds_the_lock", [qshm_key], [proc])
    assert False, "deliberate failure"


def test_program_killed_holding_the_lock(qt_process, qshm_key):
    proc = qt_process(peer("pyqt5"), ready=READY)
    for request in ({"cmd": "key", "key": qshm_key}, {"cmd": "create", "size": 64},
                    {"cmd": "write", "hex": b"abc".hex()}, {"cmd": "lock"}):
        assert proc.request(request)["ok"]
    proc.kill()
    snap = snapshot(qshm_key)
    assert snap.verdict == "stale" and snap.data[:3] == b"abc", snap.describe()
    assert snapshot(qshm_key).exists  # looking did not remove it
    record("test_program_killed_holding_the_lock", [qshm_key], [proc])


@pytest.mark.parametrize("qshm_native_key", ["posix", "systemv"], indirect=True)
def test_qt6_program_killed_holding_the_lock(qt_process, qshm_native_key):
    proc = qt_process(peer("pyqt6"), ready=READY)
    for request in ({"cmd": "ipckey", "mode": "fromString", "key": qshm_native_key.toString()},
                    {"cmd": "create", "size": 16}, {"cmd": "write", "hex": b"xyz".hex()}, {"cmd": "lock"}):
        assert proc.request(request)["ok"], request
    proc.kill()
    snap = snapshot(qshm_native_key)
    assert snap.data[:3] == b"xyz", snap.describe()
    name = "posix" if qshm_native_key.type() == QNativeIpcKey.Type.PosixRealtime else "systemv"
    record(f"test_qt6_program_killed_holding_the_lock_{name}", [qshm_native_key], [proc])


def test_every_family_killed(qt_process, qshm_key):
    # One Qt program per key family, each holding its lock when it is killed.
    families = [{"cmd": "ipckey", "mode": "legacy", "key": qshm_key, "type": "systemv"},
                {"cmd": "ipckey", "mode": "legacy", "key": qshm_key, "type": "posix"},
                {"cmd": "ipckey", "mode": "native", "key": qshm_key, "type": "posix"},
                {"cmd": "ipckey", "mode": "platformSafe", "key": qshm_key, "type": "systemv"}]
    procs = [qt_process(peer("pyqt6"), ready=READY) for _ in families]
    for proc, family in zip(procs, families):
        for request in (family, {"cmd": "create", "size": 8}, {"cmd": "lock"}):
            assert proc.request(request)["ok"], request
    present = [row.ref.family for row in snapshot(qshm_key, lock=False).rows if row.segment.exists]
    assert sorted(present) == ["legacy-posix", "legacy-sysv", "posix", "sysv"], present
    for proc in procs:
        proc.kill()
    record("test_every_family_killed", [qshm_key], procs)


def test_program_never_ready(qt_process, qshm_key):
    qt_process(peer("pyqt5"), ready="a line that never comes", timeout=2)
'''


def test_failing_test_and_killed_program_leave_nothing(inner: Inner) -> None:
    """A failing test, programs killed holding their locks (in every key family) and a program
    that never gets ready leave nothing; the failures show the program's command line and output."""
    result, facts = inner.run(FAILING_AND_KILLED)
    result.assert_outcomes(passed=4, failed=2)
    out = result.stdout.str()
    assert "deliberate failure" in out
    # The failed test's report shows its program: command line, status and output.
    assert "qt_process pid" in out and "stdout and stderr" in out
    assert "peer.py pyqt5" in out and '"ready": true' in out
    result.stdout.fnmatch_lines(["*no line of *'s stdout matched 'a line that never comes' within 2 s*"])
    assert len(facts) == 5
    assert_left_nothing(facts)


PARALLEL = r'''
BARRIER = os.environ["QSHM_PLUGIN_BARRIER"]
SHARED_KEY = "qshm-same-key-" + os.environ["QSHM_PLUGIN_RUN"]


def _both_running(name, other):
    open(os.path.join(BARRIER, name), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(BARRIER, other)):
        assert time.monotonic() < deadline, "the other test never ran alongside this one"
        time.sleep(0.05)


def _test(name, other, qt_process, qshm_key_factory, qshm_native_key):
    key = qshm_key_factory(SHARED_KEY)  # the same Qt key in both tests: their TMPDIRs keep it apart
    qt5 = qt_process(peer("pyqt5"), ready=READY)
    qt6 = qt_process(peer("pyqt6"), ready=READY)
    assert qt5.request({"cmd": "key", "key": key})["ok"]
    assert qt5.request({"cmd": "create", "size": 16})["ok"]
    assert qt5.request({"cmd": "write", "hex": name.encode().hex()})["ok"]
    assert qt6.request({"cmd": "ipckey", "mode": "fromString", "key": qshm_native_key.toString()})["ok"]
    assert qt6.request({"cmd": "create", "size": 16})["ok"]
    assert qt6.request({"cmd": "write", "hex": name.encode().hex()})["ok"]
    _both_running(name, other)
    for k in (key, qshm_native_key):
        with wait_for_segment(k, 10) as shm:
            assert bytes(shm.constData()[:len(name)]) == name.encode()
    record(name, [key, qshm_native_key], [qt5, qt6])


def test_one(qt_process, qshm_key_factory, qshm_native_key):
    _test("one", "two", qt_process, qshm_key_factory, qshm_native_key)


def test_two(qt_process, qshm_key_factory, qshm_native_key):
    _test("two", "one", qt_process, qshm_key_factory, qshm_native_key)
'''


def test_parallel_tests_do_not_collide(inner: Inner, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two tests running at once under pytest-xdist, with the same Qt key and two real Qt programs
    each, see their own segments only, and leave nothing."""
    import xdist  # noqa: F401  (required: tests/run.sh installs pytest-xdist)

    monkeypatch.setenv("QSHM_PLUGIN_BARRIER", str(tmp_path_factory.mktemp("barrier")))
    monkeypatch.setenv("QSHM_PLUGIN_RUN", testing.random_key("run"))
    result, facts = inner.run(PARALLEL, "-n", "2", "--dist", "load")
    result.assert_outcomes(passed=2)
    assert {f["worker"] for f in facts} == {"gw0", "gw1"}
    assert len({f["tmpdir"] for f in facts}) == 2
    assert len({f["pytest_pid"] for f in facts}) == 2
    assert_left_nothing(facts)


LEAKS = r'''
@pytest.mark.qshm_no_leftovers
def test_killed_program_leaks(qt_process, qshm_key):
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": qshm_key})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    proc.kill()
    record("test_killed_program_leaks", [qshm_key], [proc])


@pytest.mark.qshm_no_leftovers
def test_program_exiting_cleanly_leaves_nothing(qt_process, qshm_key):
    # Still running when the test ends: end of input on stdin lets it exit, destructors and all;
    # the test's own attachment, left open, is closed before that.
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": qshm_key})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    shm = wait_for_segment(qshm_key, 10)
    record("test_program_exiting_cleanly_leaves_nothing", [qshm_key], [proc])


@pytest.mark.qshm_no_leftovers
def test_program_stopped_while_the_test_is_attached(qt_process, qshm_key):
    # The test is the last one attached: its detach removes the segment, as Qt's last one does.
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": qshm_key})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    shm = wait_for_segment(qshm_key, 10)
    assert proc.stop() == 0 and proc.how_stopped == "exited"
    assert snapshot(qshm_key).exists
    shm.close()
    record("test_program_stopped_while_the_test_is_attached", [qshm_key], [proc])


@pytest.mark.qshm_no_leftovers
def test_fixed_key_in_tmpdir_leaks(qt_process):
    # A key the test never named: its key files are in the test's TMPDIR, so they are found.
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": "QSharedMemoryExample"})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    proc.kill()
    record("test_fixed_key_in_tmpdir_leaks", [], [proc])


@pytest.mark.qshm_no_leftovers
def test_qt_never_unlinks_posix_shm(qt_process, qshm_native_key):
    proc = qt_process(peer("pyqt6"), ready=READY)
    assert proc.request({"cmd": "ipckey", "mode": "fromString", "key": qshm_native_key.toString()})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    proc.request({"cmd": "exit"})
    proc.wait()
    record("test_qt_never_unlinks_posix_shm", [qshm_native_key], [proc])


@pytest.mark.qshm_no_leftovers(ignore=["posix-shm"])
def test_posix_shm_ignored(qt_process, qshm_native_key_factory):
    key = qshm_native_key_factory("posix")
    proc = qt_process(peer("pyqt6"), ready=READY)
    assert proc.request({"cmd": "ipckey", "mode": "fromString", "key": key.toString()})["ok"]
    assert proc.request({"cmd": "create", "size": 64})["ok"]
    proc.stop()
    assert proc.how_stopped == "exited"
    record("test_posix_shm_ignored", [key], [proc])
'''


def test_leak_check_names_the_objects(inner: Inner) -> None:
    """With the leak check on, a test whose program leaves its objects fails naming each one
    (System V segment, semaphore and key files; the POSIX segment Qt never unlinks; a key file of
    a key the test never named); a program that exits cleanly passes; all is removed after."""
    result, facts = inner.run(LEAKS)
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    failed = {line.split("::")[1].split()[0] for line in out.splitlines() if line.startswith("FAILED ")}
    assert failed == {"test_killed_program_leaks", "test_fixed_key_in_tmpdir_leaks", "test_qt_never_unlinks_posix_shm"}
    # Once per failing test in its report, and again in the short summary when it is not cut.
    assert out.count("IPC object(s) behind (removed after the test):") in (3, 6)
    by_test = {f["test"]: f for f in facts}
    key = by_test["test_killed_program_leaks"]["keys"][0]
    tmpdir = by_test["test_killed_program_leaks"]["tmpdir"]
    assert f"key {key!r} (legacy System V" in out
    assert "System V segment shmid" in out and "System V semaphore semid" in out
    assert f"key file {tmpdir}/qipc_sharedmemory_qshmtest" in out and f"key file {tmpdir}/qipc_systemsem_qshmtest" in out
    assert "stale, nobody attached and its creator, pid" in out
    posix = by_test["test_qt_never_unlinks_posix_shm"]["keys"][0]
    assert f"POSIX shared memory /dev/shm/{posix.rpartition('/')[2]}" in out
    assert "qipc_sharedmemory_QSharedMemoryExample" in out
    assert_left_nothing(facts)


UNMARKED_LEAK = r'''
def test_unmarked(qt_process, qshm_key):
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": qshm_key})["ok"]
    assert proc.request({"cmd": "create", "size": 8})["ok"]
    proc.kill()
    record("test_unmarked", [qshm_key], [proc])
'''


@pytest.mark.parametrize("how", ["option", "ini"])
def test_leak_check_for_every_test(inner: Inner, how: str) -> None:
    """``--qshm-check-leaks`` and the ini option ``qshm_check_leaks`` check unmarked tests too."""
    if how == "ini":
        inner.pytester.makeini("[pytest]\nqshm_check_leaks = true\n")
        result, facts = inner.run(UNMARKED_LEAK)
    else:
        result, facts = inner.run(UNMARKED_LEAK, "--qshm-check-leaks")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["the test left 4 IPC object(s) behind (removed after the test):"])
    assert_left_nothing(facts)


SHARED_TMPDIR_CONFTEST = r'''
import os
from pathlib import Path

import pytest


@pytest.fixture
def qshm_tmpdir():
    return Path(os.environ["QSHM_SHARED_TMPDIR"])  # where long-lived programs keep their key files
'''

SHARED_TMPDIR = r'''
@pytest.mark.qshm_no_leftovers(ignore=["sysv-segment", "sysv-semaphore", "key-file"])
def test_in_a_shared_tmpdir(qt_process, qshm_key):
    assert os.environ["TMPDIR"] == os.environ["QSHM_SHARED_TMPDIR"]
    proc = qt_process(peer("pyqt5"), ready=READY)
    assert proc.request({"cmd": "key", "key": qshm_key})["ok"]
    assert proc.request({"cmd": "create", "size": 8})["ok"]
    proc.kill()
    record("test_in_a_shared_tmpdir", [qshm_key], [proc])
'''


def test_shared_tmpdir_cleans_only_the_tests_keys(inner: Inner, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """With ``qshm_tmpdir`` overridden to a directory shared with other programs, a test's keys are
    cleaned there and the other programs' key files and segments are left alone."""
    shared = str(tmp_path_factory.mktemp("shared"))
    monkeypatch.setenv("QSHM_SHARED_TMPDIR", shared)
    monkeypatch.setenv("TMPDIR", shared)
    other = QSharedMemory(testing.random_key("qshm-other"))  # a long-lived program's segment
    monkeypatch.setenv("TMPDIR", SESSION_TMPDIR)
    try:
        assert other.create(8), other.errorString()
        inner.pytester.makeconftest(SHARED_TMPDIR_CONFTEST)
        result, facts = inner.run(SHARED_TMPDIR)
        result.assert_outcomes(passed=1)
        assert other.isAttached() and os.path.exists(other.nativeKey())
        assert testing.leftovers(other.key(), tmpdir=shared)  # all there: segment, lock, key files
        assert_left_nothing(facts, other_files=[os.path.basename(p) for p in glob.glob(f"{shared}/qipc_*")])
    finally:
        other.close()
    assert [n for n in os.listdir(shared) if n != "runtime-root"] == []  # runtime-root: Qt's RuntimeLocation


# ----- loading the plugin --------------------------------------------------------------------


def _entry_point() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [line.strip() for line in cfg["options.entry_points"]["pytest11"].splitlines() if line.strip()]
    assert lines == [f"{PLUGIN} = {PLUGIN}"], lines
    return lines[0]


def test_entry_point_and_p_option_together(inner: Inner, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """The setup.cfg entry point loads the plugin, and ``-p qshm_compat.pytest_plugin`` next to it
    (a source-tree habit kept after installing) registers it once instead of failing."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "qshm_plugin_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: qshm-plugin-probe\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[pytest11]\n{_entry_point()}\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ["PYTHONPATH"]]))
    source = r'''
    def test_key(qshm_key, qshm_tmpdir):
        assert os.environ["TMPDIR"] == str(qshm_tmpdir) and qshm_key.startswith("qshm-test-")
        record("test_key", [qshm_key])
    '''
    for plugin in (True, False):
        result, facts = inner.run(source, plugin=plugin)
        result.assert_outcomes(passed=1)
    assert_left_nothing(facts)


def test_import_loads_neither_pytest_nor_the_plugin() -> None:
    """``import qshm_compat`` (and its helpers module) imports no pytest and no plugin."""
    code = ("import json, sys, qshm_compat, qshm_compat.testing\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest', 'pluggy')"
            " or m == 'qshm_compat.pytest_plugin')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PYTHONPATH": PACKAGE_PARENT})
    assert json.loads(out.stdout) == []


# ----- the helpers without pytest ------------------------------------------------------------


def test_waits_name_the_key_and_the_program() -> None:
    """Waits give up at their deadline with a TimeoutError naming the key (or the program), and a
    program that exits first is reported with its exit status and output."""
    key = testing.random_key()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=f"no segment of key '{key}' could be attached within 0.3 s") as info:
        testing.wait_for_segment(key, 0.3)
    assert time.monotonic() - start < 5
    assert "qipc_sharedmemory_qshmtest" in str(info.value) and f"/{key}" in str(info.value)
    testing.assert_no_leftovers(key)

    with testing.QtProcess(["sh", "-c", "echo starting; echo oops >&2; exit 3"]) as proc:
        with pytest.raises(testing.ProgramExitedError, match="exited \\(status exit code 3\\) before a line") as exited:
            proc.wait_for_line("ready", timeout=10)
        assert "--- stdout (1 lines) ---\nstarting" in str(exited.value) and "oops" in str(exited.value)
    with testing.QtProcess(["sleep", "60"], stdin=False) as proc:
        with pytest.raises(TimeoutError, match="no segment of key 'never' appeared within 0.2 s"):
            proc.wait_ready(ready_segment="never", timeout=0.2)
        assert proc.kill() == -9 and proc.status() == "killed by SIGKILL"


def test_helpers_on_a_segment_of_our_own() -> None:
    """On a segment made here: a quiet region times out naming the key, the snapshot reads under
    the lock, and assert_no_leftovers lists the segment, its lock and key files until it is gone."""
    key = testing.random_key()
    with QSharedMemory(key) as owner:
        assert owner.create(32), owner.errorString()
        with testing.wait_for_segment(key, 5) as shm:
            with pytest.raises(TimeoutError, match=f"bytes 0..4 of key '{key}' did not change within 0.2 s"):
                testing.wait_for_change(shm, 0.2, (0, 4))
            seen = testing.snapshot(key)
            assert seen.locked and seen.data == bytes(32) and seen.verdict == "live"
        with pytest.raises(AssertionError) as left:
            testing.assert_no_leftovers(key)
        kinds = sorted(step.kind for step in left.value.objects)  # type: ignore[attr-defined]
        assert kinds == ["key-file", "key-file", "sysv-segment", "sysv-semaphore"]
        assert f"key '{key}' (legacy System V" in str(left.value)
    testing.assert_no_leftovers(key)
