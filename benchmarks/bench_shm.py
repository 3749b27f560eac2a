#!/usr/bin/env python3
"""Speed of qshm_compat against PyQt5 and the other Qt stacks, measured in one run.

    python benchmarks/bench_shm.py            # full run, about 40 s
    python benchmarks/bench_shm.py --quick    # fewer, shorter rounds, about 10 s
    python benchmarks/bench_shm.py --json     # the same results as JSON on stdout
    python benchmarks/bench_shm.py --help     # subsets of stacks and benchmarks, round counts

What is measured (see benchmarks/README.md for the method):

1. ``lock()`` + ``unlock()`` pairs per second, uncontended;
2. ``attach()`` + ``detach()`` cycles per second on a segment another object keeps alive;
3. 64 MiB written into and read out of the segment through ``data()`` / ``constData()``, against
   the same copy done by numpy in private memory;
4. the time of ``import qshm_compat; from qshm_compat import QSharedMemory`` in a fresh
   interpreter, against ``from PyQt5.QtCore import QSharedMemory``.

Every Python stack (qshm_compat, PyQt5, PyQt6, PySide6) runs in a worker process of its own (this
file, started with ``--worker STACK``), so Qt libraries never mix and every stack runs the very
same loop.  The C++ Qt 5 and Qt 6 programs of ``interop_fixtures/`` run their own ``bench_lock`` /
``bench_attach`` loops.  Rounds are interleaved across stacks (in a rotating order) and the median
of the rounds is reported, so a slow moment of the machine hits every stack alike.

Nothing is left behind: keys are fresh and random, key files go to a temporary directory of the
run's own ($TMPDIR of the workers and peers), every worker and peer closes its objects when told
to exit (or at end of input; Ctrl-C and TERM still clean up), and the run checks afterwards that
no System V segment, semaphore or key file of its keys survives (and removes, and reports, any
that does; the exit status is then 2).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import random
import select
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
# Where qshm_compat is imported from: the installed copy, or --qshm-path (to compare a variant).
QSHM_ROOT = ROOT
FIXTURES = ROOT / "interop_fixtures"
BUILD = Path(os.environ.get("QSHM_PEER_BUILD", FIXTURES / "build"))

PY_STACKS = ("qshm", "pyqt5", "pyqt6", "pyside6")
CPP_STACKS = ("cpp-qt5", "cpp-qt6")
ALL_STACKS = PY_STACKS + CPP_STACKS
LABEL = {
    "qshm": "qshm_compat",
    "pyqt5": "PyQt5",
    "pyqt6": "PyQt6",
    "pyside6": "PySide6",
    "cpp-qt5": "C++ Qt5",
    "cpp-qt6": "C++ Qt6",
}
REFERENCE = "pyqt5"

ATTACH_SIZE = 64 * 1024  # the segment of the lock and attach benchmarks
BIG_SIZE = 1 << 30  # the 1 GiB segment of attach_1g (never touched: costs no memory)
DATA_SIZE = 64 * 1024 * 1024

# Targets for qshm_compat (those of the lock / attach / create rows are in GROUPS).
DATA_TARGET = 0.9  # >= 0.9x the numpy copy in private memory
IMPORT_TARGET = 0.5  # <= 0.5x PyQt5


class BenchError(RuntimeError):
    pass


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# =================================================================================================
# Worker side: one Python stack in one process, driven by JSON lines on stdin/stdout.
# =================================================================================================


def _installed_copy() -> Path:
    """The directory holding the qshm_compat this Python would import (not this source tree,
    whose compiled modules are not built); the source tree if there is none."""
    import importlib.util

    spec = importlib.util.find_spec("qshm_compat")
    if spec is None or spec.origin is None:
        return ROOT
    return Path(spec.origin).resolve().parent.parent


class Stack:
    """The few things that differ between qshm_compat, PyQt5, PyQt6 and PySide6."""

    def __init__(self, name: str):
        self.name = name
        if name == "qshm":
            sys.path.insert(0, str(QSHM_ROOT))
            import qshm_compat
            from qshm_compat import QSharedMemory

            self.QSharedMemory = QSharedMemory
            self.version = qshm_compat.__version__
            self.where = os.path.dirname(os.path.abspath(qshm_compat.__file__))
            self.delete: Callable[[Any], None] = lambda obj: obj.close()
            self.rw_view: Callable[[Any], Any] = lambda obj: obj.data()
            self.ro_view: Callable[[Any], Any] = lambda obj: obj.constData()
            return
        if name in ("pyqt5", "pyqt6"):
            if name == "pyqt5":
                from PyQt5 import QtCore, sip
            else:
                from PyQt6 import QtCore, sip  # type: ignore[no-redef]
            self.delete = sip.delete

            # sip.voidptr: give it the size, then it exposes the buffer protocol (no copy).
            def rw_view(obj: Any) -> memoryview:
                ptr = obj.data()
                ptr.setsize(obj.size())
                return memoryview(ptr)

            def ro_view(obj: Any) -> memoryview:
                ptr = obj.constData()
                ptr.setsize(obj.size())
                return memoryview(ptr)

            self.rw_view, self.ro_view = rw_view, ro_view
        elif name == "pyside6":
            from PySide6 import QtCore
            import shiboken6

            self.delete = shiboken6.delete
            self.rw_view = lambda obj: obj.data()  # already a memoryview of size() bytes
            self.ro_view = lambda obj: obj.constData()
        else:
            raise ValueError(name)
        self.QtCore = QtCore
        self.QSharedMemory = QtCore.QSharedMemory
        self.version = QtCore.qVersion()
        self.where = os.path.dirname(os.path.abspath(QtCore.__file__))


def _loop_lock(shm: Any, n: int) -> Tuple[float, int]:
    # The same loop for every Python stack, and the shape of the peers' bench_lock.
    done = 0
    t0 = time.perf_counter()
    for _ in range(n):
        if not shm.lock():
            break
        if not shm.unlock():
            break
        done += 1
    return time.perf_counter() - t0, done


def _loop_attach(shm: Any, n: int) -> Tuple[float, int]:
    done = 0
    t0 = time.perf_counter()
    for _ in range(n):
        if not shm.attach():
            break
        if not shm.detach():
            break
        done += 1
    return time.perf_counter() - t0, done


def _loop_create(shm: Any, n: int, size: int) -> Tuple[float, int]:
    done = 0
    t0 = time.perf_counter()
    for _ in range(n):
        if not shm.create(size):
            break
        if not shm.detach():
            break
        done += 1
    return time.perf_counter() - t0, done


# The scenarios of the lock / attach / create rows.  Each is one kind of key:
#   sysv:   a string key, the default protocol of the stack (qshm_compat: Qt 5.15);
#   qt6:    a string key, qshm_compat mirroring Qt 6.11 (qt_version="6.11");
#   native: setNativeKey(<key file>) (Qt 5's native System V key: no lock);
#   posix:  QNativeIpcKey(<name>, PosixRealtime) (Qt >= 6.6: shm_open + sem_open lock);
#   big:    a string key on a 1 GiB segment (never touched);
#   create: create(64 KiB) + detach() of a segment nobody else keeps.
class Worker:
    def __init__(self, stack: Stack):
        self.stack = stack
        # scenario -> (creator: keeps the segment alive and runs the lock loop, attacher)
        self.objs: Dict[str, Tuple[Any, Any]] = {}
        self.data_shm: Any = None
        self.data: Dict[str, Any] = {}

    def _new(self, scenario: str, key: str) -> Any:
        Q = self.stack.QSharedMemory
        name = self.stack.name
        if scenario in ("sysv", "big", "create"):
            return Q(key)
        if scenario == "qt6":
            if name != "qshm":
                raise BenchError("the qt6 scenario is qshm_compat's qt_version='6.11'")
            return Q(key, qt_version="6.11")
        if scenario == "native":
            obj = Q()
            obj.setNativeKey(key)
            return obj
        if scenario == "posix":
            if name == "qshm":
                from qshm_compat import QNativeIpcKey
            else:
                QNativeIpcKey = self.stack.QtCore.QNativeIpcKey
            return Q(QNativeIpcKey(key, QNativeIpcKey.Type.PosixRealtime))
        raise BenchError(f"unknown scenario {scenario}")

    # -- requests ---------------------------------------------------------------------------

    def cmd_setup(self, scenario: str, key: str, size: int) -> Dict[str, Any]:
        creator = self._new(scenario, key)
        attacher = self._new(scenario, key)
        self.objs[scenario] = (creator, attacher)
        if scenario != "create" and not creator.create(size):
            raise BenchError(f"{scenario}: create({size}) failed: {creator.errorString()}")
        return {"nativeKey": creator.nativeKey()}

    def cmd_run(self, scenario: str, op: str, n: int, size: int = 0) -> Dict[str, Any]:
        creator, attacher = self.objs[scenario]
        if op == "lock":
            obj = creator
            elapsed, done = _loop_lock(creator, n)
        elif op == "attach":
            obj = attacher
            elapsed, done = _loop_attach(attacher, n)
        else:
            obj = creator
            elapsed, done = _loop_create(creator, n, size)
        if done != n:
            raise BenchError(f"{scenario} {op} failed after {done}: {obj.errorString()}")
        return {"elapsed": elapsed, "done": done}

    def cmd_make_data(self, key: str) -> Dict[str, Any]:
        self.data_shm = self.stack.QSharedMemory(key)
        return {"nativeKey": self.data_shm.nativeKey()}

    def cmd_setup_data(self, size: int) -> Dict[str, Any]:
        import numpy as np

        shm = self.data_shm
        if not shm.create(size):
            raise BenchError(f"create({size}) failed: {shm.errorString()}")
        if shm.size() < size:
            raise BenchError(f"segment has {shm.size()} bytes, wanted {size}")
        rng = np.random.default_rng(12345)
        src = rng.integers(0, 256, size, dtype=np.uint8)
        priv = np.empty_like(src)
        priv[:] = src  # fault the pages in
        dst = np.empty_like(src)
        dst[:] = 0
        src_mv = memoryview(src)
        rw, ro = self.stack.rw_view, self.stack.ro_view
        view = rw(shm)
        view[:] = src_mv  # fault the segment's pages in
        del view

        def write_mv() -> None:
            rw(shm)[:] = src_mv

        def write_np() -> None:
            np.copyto(np.frombuffer(rw(shm), np.uint8), src)

        def read_bytes() -> bytes:
            return bytes(ro(shm))

        def read_np() -> Any:
            return np.frombuffer(ro(shm), np.uint8).copy()

        def read_into() -> None:
            np.copyto(dst, np.frombuffer(ro(shm), np.uint8))

        priv_mv = memoryview(priv)
        self.data = {
            "np": np,
            "src": src,
            "priv": priv,
            "dst": dst,
            "ops": {
                # private memory, numpy (the references)
                "base_write": lambda: np.copyto(priv, src),
                "base_read": lambda: priv.copy(),
                "base_read_into": lambda: np.copyto(dst, priv),
                "base_bytes": lambda: bytes(priv_mv),
                # through the segment
                "write_mv": write_mv,
                "write_np": write_np,
                "read_bytes": read_bytes,
                "read_np": read_np,
                "read_into": read_into,
            },
        }
        return {"size": shm.size()}

    def cmd_data(self, reps: int) -> Dict[str, Any]:
        ops = self.data["ops"]
        np = self.data["np"]
        names = list(ops)
        times: Dict[str, List[float]] = {name: [] for name in names}
        for rep in range(reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            for name in order:
                op = ops[name]
                t0 = time.perf_counter()
                result = op()
                times[name].append(time.perf_counter() - t0)
                del result  # freeing a fresh copy is not part of the copy
        # The segment must hold what was written (checked outside the timing).
        check = np.frombuffer(self.stack.ro_view(self.data_shm), np.uint8)
        if not np.array_equal(check, self.data["src"]):
            raise BenchError("the segment does not hold the bytes written into it")
        del check
        return {"times": times}

    def cmd_teardown_data(self) -> Dict[str, Any]:
        self.data = {}
        if self.data_shm is not None:
            shm, self.data_shm = self.data_shm, None
            self.stack.delete(shm)
        return {}

    def cleanup(self) -> None:
        self.cmd_teardown_data()
        objs, self.objs = self.objs, {}
        for creator, attacher in objs.values():
            for obj in (attacher, creator):  # the creator last: it removes segment and lock
                try:
                    self.stack.delete(obj)
                except Exception:
                    traceback.print_exc()


def _emit(obj: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def worker_main(stack_name: str) -> int:
    # Ctrl-C at the terminal is the parent's business; the worker cleans up at end of input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker: Optional[Worker] = None
    try:
        try:
            stack = Stack(stack_name)
        except Exception as exc:
            _emit({"ready": False, "failure": f"{type(exc).__name__}: {exc}"})
            return 1
        worker = Worker(stack)
        _emit({"ready": True, "stack": stack_name, "qt": stack.version, "where": stack.where,
               "pid": os.getpid()})
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            cmd = req.pop("cmd")
            if cmd == "exit":
                worker.cleanup()
                _emit({"ok": True})
                return 0
            try:
                answer = getattr(worker, "cmd_" + cmd)(**req)
                answer["ok"] = True
            except Exception as exc:
                answer = {"ok": False, "failure": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()}
            _emit(answer)
        return 0
    finally:
        if worker is not None:
            worker.cleanup()


# =================================================================================================
# Parent side.
# =================================================================================================


# The key files of this run go to a directory of its own (Qt and qshm_compat put them in
# $TMPDIR), so nothing else on the machine can take them for its own leftovers, and an empty
# directory at the end shows that none was left.
PRIVATE_TMP: Optional[str] = None


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    if PRIVATE_TMP:
        env["TMPDIR"] = PRIVATE_TMP
    return env


class LineProc:
    """A child speaking JSON lines: a Python worker of this file or a C++ peer (PROTOCOL.md)."""

    def __init__(self, name: str, argv: List[str]):
        self.name = name
        self.argv = argv
        self._err = tempfile.TemporaryFile()
        self._buf = b""
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            env=child_env(), cwd=str(ROOT),
            start_new_session=True,  # Ctrl-C must not kill it before it cleans up
        )
        self.hello = self.reply(timeout=60.0)
        if not self.hello.get("ready"):
            self.close()
            raise BenchError(f"{name} did not start: {self.hello.get('failure', self.hello)}"
                             f"{self.stderr_tail()}")

    def stderr_tail(self, lines: int = 15) -> str:
        try:
            self._err.seek(0)
            text = self._err.read().decode("utf-8", "replace").strip().splitlines()[-lines:]
        except (OSError, ValueError):
            return ""
        return ("\n    stderr: " + "\n    ".join(text)) if text else ""

    def reply(self, timeout: float) -> Dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no answer within {timeout:g} s{self.stderr_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise BenchError(f"{self.name} exited (code {self.proc.poll()}){self.stderr_tail()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    def request(self, cmd: str, timeout: float = 120.0, **args: Any) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise BenchError(f"{self.name}: cannot send {cmd}: {exc} (exit code "
                             f"{self.proc.poll()}){self.stderr_tail()}") from None
        answer = self.reply(timeout)
        if not answer.get("ok"):
            why = answer.get("failure") or answer.get("unsupported") or answer.get("errorString") or answer
            raise BenchError(f"{self.name}: {cmd} {args} failed: {why}{self.stderr_tail()}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"cmd": "exit"}\n')
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"warning: {self.name} did not exit; killing it (its objects may be left)")
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._err.close()


def new_key(tag: str) -> str:
    letters = "".join(random.SystemRandom().choice(string.ascii_lowercase + string.digits) for _ in range(12))
    return f"qshm_bench_{os.getpid()}_{letters}_{tag}"


class Subject:
    """One stack under test: a Python worker, or a pair of C++ peers (creator + attacher)."""

    def __init__(self, stack: str, ledger: "KeyLedger"):
        self.stack = stack
        self.ledger = ledger
        self.procs: List[LineProc] = []
        self.ready: set = set()
        if stack in PY_STACKS:
            self.worker: Optional[LineProc] = self._start(
                [sys.executable, str(Path(__file__).resolve()), "--worker", stack,
                 "--qshm-path", str(QSHM_ROOT)])
            self.qt = self.worker.hello["qt"]
            self.where = self.worker.hello.get("where", "")
        else:
            self.worker = None
            exe = BUILD / ("peer-" + stack.split("-", 1)[1])
            if not exe.exists():
                raise BenchError(f"{exe} is missing (build it with interop_fixtures/build.sh)")
            self.creator = self._start([str(exe)])
            self.attacher = self._start([str(exe)])
            self.qt = self.creator.hello["qt"]
            self.where = str(exe)

    def _start(self, argv: List[str]) -> LineProc:
        proc = LineProc(LABEL[self.stack], argv)
        self.procs.append(proc)
        return proc

    def setup(self, scenario: str) -> None:
        """Make (once) the objects of ``scenario`` (see Worker) and create its segment."""
        if scenario in self.ready:
            return
        tag = self.stack.replace("-", "") + scenario
        size = BIG_SIZE if scenario == "big" else ATTACH_SIZE
        if scenario == "native":
            assert PRIVATE_TMP is not None
            key = os.path.join(PRIVATE_TMP, "qipc_sharedmemory_" + new_key(tag))
        elif scenario == "posix":
            key = "/" + new_key(tag)
            self.ledger.posix.append(key)
        else:
            key = new_key(tag)
        if self.worker is not None:
            native = self.worker.request("setup", scenario=scenario, key=key, size=size)["nativeKey"]
            if scenario != "posix":
                self.ledger.record(native)
            self.ledger.refresh()
        else:
            if scenario != "sysv":
                raise BenchError(f"the C++ peers run the sysv scenario only, not {scenario}")
            self.ledger.record(self.creator.request("key", key=key)["nativeKey"])
            with self.ledger.refreshing():
                self.creator.request("create", size=size)
            self.attacher.request("key", key=key)
        self.ready.add(scenario)

    def bench(self, scenario: str, op: str, n: int) -> float:
        """Seconds for ``n`` lock+unlock pairs, attach+detach or create+detach cycles."""
        if self.worker is not None:
            answer = self.worker.request("run", scenario=scenario, op=op, n=n, size=ATTACH_SIZE)
        elif op == "lock":
            answer = self.creator.request("bench_lock", n=n)
        elif op == "attach":
            answer = self.attacher.request("bench_attach", n=n)
        else:
            raise BenchError(f"the C++ peers have no {op} loop")
        if answer.get("done") != n:
            raise BenchError(f"{LABEL[self.stack]}: {scenario} {op} did {answer.get('done')} of {n}")
        return float(answer["elapsed"])

    def close(self) -> None:
        for proc in reversed(self.procs):  # the attacher first, the creator last
            proc.close()
        self.procs = []


# -- leftovers ------------------------------------------------------------------------------------


def _proc_ipc(path: str) -> List[Tuple[int, int]]:
    """(ipc key, id) of each object in /proc/sysvipc/shm or /sem."""
    try:
        with open(path) as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    return [(int(c[0]) & 0xFFFFFFFF, int(c[1])) for c in (r.split() for r in rows) if len(c) > 2]


def ipc_snapshot() -> Dict[str, Any]:
    files = set()
    for d in {"/tmp", tempfile.gettempdir(), PRIVATE_TMP or "/tmp"}:
        files |= set(glob.glob(os.path.join(d, "qipc_*")))
    if os.path.isdir("/dev/shm"):
        files |= {os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm")}
    return {"shm": {i for _, i in _proc_ipc("/proc/sysvipc/shm")},
            "sem": {i for _, i in _proc_ipc("/proc/sysvipc/sem")}, "files": files}


class KeyLedger:
    """What this run made: the key files of its keys and the System V objects seen under them.

    Objects are told apart by id, taken while the run's key files exist (a key file's inode, and
    so its ftok key, can be reused by another process's file once it is gone) and not present
    before the run started.
    """

    def __init__(self, before: Dict[str, Any]) -> None:
        self.before = before
        self.files: List[str] = []
        self.ids: Dict[str, Dict[int, str]] = {"shm": {}, "sem": {}}
        self.posix: List[str] = []  # the run's POSIX names ("/qshm_bench_...")

    def record(self, shm_key_file: str) -> None:
        """Note the key files of a key (before anything is created with it)."""
        base = os.path.basename(shm_key_file)
        if not base.startswith("qipc_sharedmemory_"):
            raise BenchError(f"unexpected native key {shm_key_file!r}")
        sem_file = os.path.join(os.path.dirname(shm_key_file),
                                "qipc_systemsem_" + base[len("qipc_sharedmemory_"):])
        self.files += [shm_key_file, sem_file]

    def refresh(self) -> None:
        """Note the System V objects under the ftok keys of the run's key files that exist now."""
        keys: Dict[int, str] = {}
        for path in self.files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            # glibc ftok(path, 'Q')
            keys[(st.st_ino & 0xFFFF) | ((st.st_dev & 0xFF) << 16) | (0x51 << 24)] = path
        for kind in ("shm", "sem"):
            for key, ident in _proc_ipc(f"/proc/sysvipc/{kind}"):
                if key in keys and ident not in self.before[kind]:
                    self.ids[kind][ident] = f"key 0x{key:08x}, {keys[key]}"

    @contextlib.contextmanager
    def refreshing(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.refresh()

    def _alive(self) -> List[Tuple[str, int, str]]:
        out = []
        for kind in ("shm", "sem"):
            now = {ident for _, ident in _proc_ipc(f"/proc/sysvipc/{kind}")}
            out += [(kind, ident, what) for ident, what in self.ids[kind].items() if ident in now]
        return out

    def leftovers(self) -> List[str]:
        names = {"shm": "segment", "sem": "semaphore"}
        found = [f"System V {names[k]} id {i} ({what})" for k, i, what in self._alive()]
        found += [f"key file {p}" for p in self.files if os.path.exists(p)]
        found += [f"POSIX semaphore {n}" for n in self.posix if os.path.exists("/dev/shm/sem." + n[1:])]
        return found

    def remove_posix_shm(self) -> List[str]:
        """Unlink the run's POSIX shm objects, which Qt by design never unlinks on Linux."""
        gone = []
        for n in self.posix:
            try:
                os.unlink("/dev/shm/" + n[1:])
                gone.append(n)
            except OSError:
                pass
        return gone

    def remove_leftovers(self) -> None:
        for kind, ident, _ in self._alive():
            subprocess.run(["ipcrm", "-m" if kind == "shm" else "-s", str(ident)], check=False)
        for p in self.files + ["/dev/shm/sem." + n[1:] for n in self.posix]:
            try:
                os.unlink(p)
            except OSError:
                pass


# -- statistics and results -----------------------------------------------------------------------


def med(xs: List[float]) -> float:
    return statistics.median(xs)


class Results:
    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []
        self.notes: List[str] = []

    def add(self, group: str, metric: str, stack: str, samples: List[float], unit: str,
            scale: float = 1.0, ref: Optional[Tuple[str, float]] = None,
            target: Optional[Tuple[str, float]] = None, cmp: str = "",
            tag: str = "") -> Dict[str, Any]:
        """One row.  ``samples`` are rates (higher is better) or times (``target`` says which);
        ``ref`` is (its label, its median); ``target`` is (">=" or "<=", factor of ``ref``)."""
        value = med(samples)
        row: Dict[str, Any] = {
            "group": group, "metric": metric, "cmp": cmp or metric, "tag": tag or metric,
            "stack": stack, "label": LABEL.get(stack, stack),
            "unit": unit, "value": value, "scale": scale, "samples": samples, "min": min(samples),
            "max": max(samples), "vs_pyqt5": None, "ref": None, "vs_ref": None, "target": None,
            "result": None,
        }
        if ref is not None and ref[1]:
            row["ref"] = ref[0]
            row["vs_ref"] = value / ref[1]
        if target is not None and row["vs_ref"] is not None:
            op, factor = target
            row["target"] = f"{op} {factor:g}x {row['ref']}"
            ok = row["vs_ref"] >= factor if op == ">=" else row["vs_ref"] <= factor
            row["result"] = "PASS" if ok else "MISS"
        self.rows.append(row)
        return row

    def fill_vs_pyqt5(self) -> None:
        base = {(r["group"], r["cmp"]): r["value"] for r in self.rows if r["stack"] == REFERENCE}
        for r in self.rows:
            b = base.get((r["group"], r["cmp"]))
            if b:
                r["vs_pyqt5"] = r["value"] / b


def fmt_num(x: float) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_value(row: Dict[str, Any]) -> str:
    sc = row["scale"]
    return f"{fmt_num(row['value'] * sc)} [{fmt_num(row['min'] * sc)}-{fmt_num(row['max'] * sc)}]"


def print_table(results: Results, header: Dict[str, Any]) -> None:
    for k, v in header.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items())
        print(f"{k + ':':<8} {v}")
    cols = ["", "stack", "median [min-max]", "unit", "vs PyQt5", "vs ref", "target", "result"]
    table = []
    for r in results.rows:
        table.append([
            r["metric"], r["label"], fmt_value(r), r["unit"],
            f"{r['vs_pyqt5']:.2f}x" if r["vs_pyqt5"] is not None else "",
            f"{r['vs_ref']:.2f}x" if r["vs_ref"] is not None else "",
            r["target"] or "", r["result"] or "",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *table)]
    right = {2, 4, 5}

    def line(cells: List[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    group = None
    for r, cells in zip(results.rows, table):
        if r["group"] != group:
            group = r["group"]
            print()
            print(f"== {group}")
            print(line(cols))
        print(line(cells))
    print()
    print("== targets of qshm_compat")
    for line_ in summary(results):
        print("  " + line_)
    print()
    for note in results.notes:
        print("note:", note)


def summary(results: Results) -> List[str]:
    rows = [r for r in results.rows if r["result"]]
    width = max((len(r["tag"]) for r in rows), default=0)
    out = []
    for r in rows:
        what = r["tag"]
        out.append(f"{r['result']}  {what:<{width}}  {r['vs_ref']:.2f}x {r['ref']}  "
                   f"(target {r['target']})")
    if not rows:
        out.append("(none measured)")
    return out


# -- the benchmarks -------------------------------------------------------------------------------


# The rows of the lock / attach / create benchmarks:
# (name, op, title, unit, [(stack, scenario)], [(reference stack, factor)]); the first entry is
# qshm_compat.  See Worker for the scenarios.
_CPP_SYSV = [("cpp-qt5", "sysv"), ("cpp-qt6", "sysv")]
GROUPS: List[Tuple[str, str, str, str, List[Tuple[str, str]], List[Tuple[str, float]]]] = [
    ("lock", "lock", "System V lock() + unlock() pairs per second, uncontended (string key; "
     "qshm_compat mirrors Qt 5.15)", "pairs/s",
     [("qshm", "sysv"), ("pyqt5", "sysv"), ("pyqt6", "sysv"), ("pyside6", "sysv")] + _CPP_SYSV,
     [("pyqt5", 1.3), ("cpp-qt5", 1.0)]),
    ("lock_posix", "lock", "POSIX lock() + unlock() pairs per second, uncontended "
     "(QNativeIpcKey(name, PosixRealtime): sem_open lock)", "pairs/s",
     [("qshm", "posix"), ("pyqt6", "posix"), ("pyside6", "posix")], [("pyqt6", 3.0)]),
    ("attach", "attach", "attach() + detach() cycles per second, 64 KiB segment kept by another "
     "object (string key; qshm_compat: Qt 5 protocol)", "cycles/s",
     [("qshm", "sysv"), ("pyqt5", "sysv"), ("pyqt6", "sysv"), ("pyside6", "sysv")] + _CPP_SYSV,
     [("pyqt5", 1.3)]),
    ("attach_qt6", "attach", "attach() + detach() cycles per second, string key, qshm_compat "
     "mirroring Qt 6.11 (qt_version='6.11')", "cycles/s",
     [("qshm", "qt6"), ("pyqt5", "sysv"), ("pyqt6", "sysv")], [("pyqt5", 1.3)]),
    ("attach_native", "attach", "attach() + detach() cycles per second, native key "
     "(setNativeKey(<key file>): Qt 5's System V native key, no lock)", "cycles/s",
     [("qshm", "native"), ("pyqt5", "native")], [("pyqt5", 1.3)]),
    ("create", "create", "create(64 KiB) + detach() cycles per second (string key)", "cycles/s",
     [("qshm", "create"), ("pyqt5", "create"), ("pyqt6", "create"), ("pyside6", "create")],
     [("pyqt5", 1.0)]),
    ("attach_1g", "attach", "attach() + detach() cycles per second of a 1 GiB segment "
     "(string key, pages never touched)", "cycles/s",
     [("qshm", "big"), ("pyqt5", "big"), ("pyqt6", "big")], [("pyqt5", 1.0)]),
    # Not a row of issue 12's table: the POSIX family of Qt >= 6.6, held to "faster than the
    # binding".  (No create row: on Linux Qt's detach never unlinks a POSIX segment, so a second
    # create() of the same key fails, in Qt as here.)
    ("attach_posix", "attach", "attach() + detach() cycles per second, POSIX key "
     "(QNativeIpcKey(name, PosixRealtime): shm_open + sem_open lock)", "cycles/s",
     [("qshm", "posix"), ("pyqt6", "posix"), ("pyside6", "posix")], [("pyqt6", 1.0)]),
]
GROUP_OF_ONLY = {"lock": ("lock", "lock_posix"),
                 "attach": ("attach", "attach_qt6", "attach_native", "attach_1g", "attach_posix"),
                 "create": ("create",)}


def bench_group(subjects: Dict[str, Subject], group: Tuple[Any, ...], rounds: int,
                round_time: float, results: Results) -> None:
    """Interleaved rounds of one row group; each row is a rate (operations/s)."""
    name, op, title, unit, entries, targets = group
    entries = [(st, sc) for st, sc in entries if st in subjects]
    if not entries or entries[0][0] != "qshm":
        return
    for st, sc in entries:
        subjects[st].setup(sc)
    probe_n = {"lock": 2000, "attach": 200, "create": 100}[op]
    sizes: Dict[str, int] = {}
    for st, sc in entries:
        per_op = subjects[st].bench(sc, op, probe_n) / probe_n
        sizes[st] = max(50, min(2_000_000, int(round_time / max(per_op, 1e-9))))
        subjects[st].bench(sc, op, sizes[st])  # warm-up at full size
    rates: Dict[str, List[float]] = {st: [] for st, _ in entries}
    for r in range(rounds):
        order = entries[r % len(entries):] + entries[: r % len(entries)]
        for st, sc in order:
            n = sizes[st]
            rates[st].append(n / subjects[st].bench(sc, op, n))
    metric = {"lock": "lock+unlock", "attach": "attach+detach", "create": "create+detach"}[op]
    tag = {"lock": "SysV lock+unlock", "lock_posix": "POSIX lock+unlock",
           "attach": "attach+detach, Qt 5 protocol", "attach_qt6": "attach+detach, Qt 6 protocol",
           "attach_native": "attach+detach, native key", "create": "create+detach",
           "attach_1g": "attach+detach, 1 GiB", "attach_posix": "attach+detach, POSIX"}[name]
    for st, _ in entries:
        if st != "qshm":
            results.add(title, metric, st, rates[st], unit, tag=tag)
            continue
        for ref, factor in targets:
            if ref in rates:
                results.add(title, metric, st, rates[st], unit,
                            ref=(LABEL[ref], med(rates[ref])), target=(">=", factor), tag=tag)
        if not any(ref in rates for ref, _ in targets):
            results.add(title, metric, st, rates[st], unit, tag=tag)


# (group, numpy op in private memory, its description, [(op through the segment, description)])
DATA_GROUPS = [
    ("write 64 MiB into the segment (GiB/s)", "base_write", "np.copyto(private, src)",
     [("write_mv", "data()[:] = src"), ("write_np", "np.copyto(frombuffer(data()), src)")]),
    ("read 64 MiB out of the segment into a new array (GiB/s)", "base_read", "private.copy()",
     [("read_np", "frombuffer(constData()).copy()")]),
    ("read 64 MiB out of the segment into an existing array (GiB/s)", "base_read_into",
     "np.copyto(dst, private)", [("read_into", "np.copyto(dst, frombuffer(constData()))")]),
    ("read 64 MiB out of the segment as bytes (GiB/s; reference: the same on private memory)",
     "base_bytes", "bytes(private)", [("read_bytes", "bytes(constData())")]),
]
DATA_TAGS = {"write_mv": "64 MiB write data()[:] = src", "write_np": "64 MiB write via numpy",
             "read_np": "64 MiB read, new array", "read_into": "64 MiB read, existing array",
             "read_bytes": "64 MiB read as bytes"}


def bench_data(subjects: Dict[str, Subject], rounds: int, results: Results, ledger: KeyLedger) -> None:
    py = {s: subj for s, subj in subjects.items() if subj.worker is not None}
    times: Dict[str, Dict[str, List[float]]] = {}
    try:
        for stack, subj in py.items():
            assert subj.worker is not None
            ledger.record(subj.worker.request("make_data", key=new_key("data" + stack))["nativeKey"])
            with ledger.refreshing():
                subj.worker.request("setup_data", size=DATA_SIZE)
            subj.worker.request("data", reps=1)  # warm-up
            times[stack] = {}
        stacks = list(py)
        for r in range(rounds):
            order = stacks[r % len(stacks):] + stacks[: r % len(stacks)]
            for stack in order:
                worker = py[stack].worker
                assert worker is not None
                for op, ts in worker.request("data", reps=2)["times"].items():
                    times[stack].setdefault(op, []).extend(ts)
    finally:
        for subj in py.values():
            if subj.worker is not None and subj.worker.proc.poll() is None:
                try:
                    subj.worker.request("teardown_data")
                except BenchError as exc:
                    log(f"warning: {exc}")
    if not times:
        return
    gib = DATA_SIZE / float(1 << 30)
    rate = {s: {op: [gib / t for t in ts] for op, ts in per.items()} for s, per in times.items()}
    # The reference row: numpy on private memory, in the qshm_compat worker.  Every stack's ratio
    # is to the same copy measured in its own process (interleaved with its own copies).
    base_stack = "qshm" if "qshm" in rate else next(iter(rate))
    for group, base_op, base_desc, ops in DATA_GROUPS:
        row = results.add(group, base_desc, "numpy", rate[base_stack][base_op], "GiB/s")
        row["label"] = "numpy, private"
        for op, desc in ops:
            for stack in py:
                is_q = stack == "qshm"
                targeted = is_q and base_op != "base_bytes"
                results.add(group, desc, stack, rate[stack][op], "GiB/s",
                            ref=("numpy", med(rate[stack][base_op])),
                            target=(">=", DATA_TARGET) if targeted else None, tag=DATA_TAGS[op])


IMPORTS = {
    "empty": "pass",
    "qshm": "import qshm_compat; from qshm_compat import QSharedMemory",
    "pyqt5": "from PyQt5.QtCore import QSharedMemory",
    "pyqt6": "from PyQt6.QtCore import QSharedMemory",
    "pyside6": "from PySide6.QtCore import QSharedMemory",
}
IMPORT_NAMES = {
    "qshm": "qshm_compat.QSharedMemory",
    "pyqt5": "PyQt5.QtCore.QSharedMemory",
    "pyqt6": "PyQt6.QtCore.QSharedMemory",
    "pyside6": "PySide6.QtCore.QSharedMemory",
}


def bench_import(stacks: List[str], runs: int, results: Results) -> None:
    """Fresh interpreters: the import timed inside (perf_counter), and the whole process's wall
    time minus that of an interpreter importing nothing."""
    targets = ["empty"] + [s for s in stacks if s in IMPORTS]
    inner: Dict[str, List[float]] = {t: [] for t in targets}
    wall: Dict[str, List[float]] = {t: [] for t in targets}
    env = child_env()
    # Imports as from an installed package: with compiled bytecode.  It goes to a directory of
    # the run's own (removed at the end), so the source tree gets no __pycache__, and it is
    # written even where PYTHONDONTWRITEBYTECODE is set (which would compile every module of
    # qshm_compat from source on every import, and nothing of PyQt's).
    pycache = tempfile.mkdtemp(prefix="qshm_bench_pycache_")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    try:
        for r in range(runs + 1):  # the first run warms the page cache and writes the bytecode
            order = targets[r % len(targets):] + targets[: r % len(targets)]
            for t in order:
                code = ("import time; _t0 = time.perf_counter(); " + IMPORTS[t] +
                        "; print(time.perf_counter() - _t0)")
                t0 = time.perf_counter()
                # "-c" puts the working directory first on sys.path: qshm_compat comes from there.
                proc = subprocess.run([sys.executable, "-c", code], cwd=str(QSHM_ROOT), env=env,
                                      capture_output=True, text=True)
                t1 = time.perf_counter()
                if proc.returncode != 0:
                    raise BenchError(f"import for {t} failed: {proc.stderr.strip()[-500:]}")
                if r:
                    inner[t].append(float(proc.stdout.strip().splitlines()[-1]))
                    wall[t].append(t1 - t0)
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
    group_in = ("import QSharedMemory in a fresh interpreter, timed inside it (ms); qshm_compat: "
                "'import qshm_compat; from qshm_compat import QSharedMemory'")
    group_wall = "the same imports: process wall time minus an empty interpreter's (ms)"
    ref_in = med(inner["pyqt5"]) if "pyqt5" in inner else None
    empty = med(wall["empty"])
    extra = {t: [w - empty for w in wall[t]] for t in targets[1:]}
    ref_wall = med(extra["pyqt5"]) if "pyqt5" in extra else None
    for group, data, ref, tag in ((group_in, inner, ref_in, "import time, in process"),
                                  (group_wall, extra, ref_wall, "import time, process wall")):
        for t in targets[1:]:
            is_q = t == "qshm"
            results.add(group, IMPORT_NAMES[t], t, data[t], "ms", scale=1e3,
                        ref=("PyQt5", ref) if (is_q and ref) else None,
                        target=("<=", IMPORT_TARGET) if is_q else None, cmp="import", tag=tag)
    note = (f"imports run with their bytecode cached (PYTHONPYCACHEPREFIX in a temporary "
            f"directory); empty interpreter (python -c pass): {empty * 1e3:.1f} ms wall, "
            f"median of {runs}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        note += ("; PYTHONDONTWRITEBYTECODE is set here, so without this every import of "
                 "qshm_compat from this source tree compiles it afresh")
    results.notes.append(note)


# -- header ---------------------------------------------------------------------------------------


def cpu_info() -> str:
    model, mhz = "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("cpu MHz") and not mhz:
                    mhz = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    text = f"{model or platform.processor() or '?'}, {os.cpu_count()} logical CPUs ({usable} usable)"
    if mhz:
        text += f", {float(mhz):.0f} MHz"
    try:
        load = os.getloadavg()
        text += f", 1-min load {load[0]:.2f} at the end"
    except OSError:
        pass
    return text


def read_first(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def make_header(subjects: Dict[str, Subject], args: argparse.Namespace) -> Dict[str, Any]:
    try:
        import numpy

        np_version = numpy.__version__
    except ImportError:
        np_version = "not installed"
    versions = {}
    for stack, subj in subjects.items():
        versions[LABEL[stack]] = subj.qt if stack != "qshm" else f"{subj.qt} ({subj.where})"
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu_info(),
        "THP": f"anon {read_first('/sys/kernel/mm/transparent_hugepage/enabled')}; "
               f"shmem {read_first('/sys/kernel/mm/transparent_hugepage/shmem_enabled')}",
        "numpy": np_version,
        "stacks": versions,
        "mode": (f"{'quick' if args.quick else 'default'}: {args.rounds} rounds x {args.round_time:g} s "
                 f"(lock, attach), {args.data_rounds}x2 data copies, {args.import_runs} imports; "
                 "value = median, [min..max] over rounds"),
    }


# -- main -----------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds (< 30 s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--stacks", default=",".join(ALL_STACKS),
                        help=f"comma-separated subset of {','.join(ALL_STACKS)}")
    parser.add_argument("--only", default="lock,attach,create,data,import",
                        help="comma-separated subset of lock,attach,create,data,import")
    parser.add_argument("--rounds", type=int, help="rounds of the lock and attach benchmarks")
    parser.add_argument("--round-time", type=float, help="seconds per stack per round")
    parser.add_argument("--data-rounds", type=int, help="rounds of the 64 MiB copies (2 each)")
    parser.add_argument("--import-runs", type=int, help="fresh interpreters per import target")
    parser.add_argument("--qshm-path", type=Path, default=_installed_copy(),
                        help="directory holding the qshm_compat package to measure (default: "
                             "the copy this Python imports, e.g. the one tests/run.sh installed)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global QSHM_ROOT
    QSHM_ROOT = args.qshm_path.resolve()
    if not (QSHM_ROOT / "qshm_compat" / "__init__.py").is_file():
        parser.error(f"no qshm_compat package in {QSHM_ROOT}")
    if args.worker:
        return worker_main(args.worker)

    q = args.quick
    args.rounds = args.rounds or (5 if q else 7)
    args.round_time = args.round_time or (0.04 if q else 0.2)
    args.data_rounds = args.data_rounds or (2 if q else 5)
    args.import_runs = args.import_runs or (5 if q else 11)
    wanted = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = set(wanted) - set(ALL_STACKS)
    if unknown:
        parser.error(f"unknown stacks {sorted(unknown)}")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {"lock", "attach", "create", "data", "import"}
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}")

    # Ctrl-C or kill (TERM) still runs the clean-up below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    global PRIVATE_TMP
    started = time.perf_counter()
    PRIVATE_TMP = tempfile.mkdtemp(prefix="qshm_bench_")
    before = ipc_snapshot()
    ledger = KeyLedger(before)
    results = Results()
    subjects: Dict[str, Subject] = {}
    failed = False
    try:
        try:
            for stack in wanted:
                log(f"starting {LABEL[stack]} ...")
                try:
                    subjects[stack] = Subject(stack, ledger)
                except BenchError as exc:
                    results.notes.append(f"{LABEL[stack]} skipped: {exc}")
                    log(f"warning: {LABEL[stack]} skipped: {exc}")
            for key_, names in GROUP_OF_ONLY.items():
                if key_ not in only:
                    continue
                for group in GROUPS:
                    if group[0] in names:
                        log(f"{group[0]} ...")
                        bench_group(subjects, group, args.rounds, args.round_time, results)
                        ledger.refresh()
            if "data" in only:
                log("64 MiB through data() ...")
                bench_data(subjects, args.data_rounds, results, ledger)
        finally:
            ledger.refresh()
            for subj in subjects.values():
                subj.close()
        if "import" in only:
            log("imports in fresh interpreters ...")
            bench_import([s for s in wanted if s in PY_STACKS], args.import_runs, results)
    except BenchError as exc:
        failed = True
        log(f"error: {exc}")
        results.notes.append(f"error: {exc}")
    except KeyboardInterrupt:
        failed = True
        log("interrupted; cleaning up")
        results.notes.append("interrupted: the results are incomplete")
    finally:
        # Leave nothing behind.  The run's own objects, found by id (see KeyLedger), are removed
        # and reported as a failure; anything else new on the machine is only mentioned.
        ledger.refresh()
        unlinked = ledger.remove_posix_shm()
        if unlinked:
            results.notes.append(f"unlinked {len(unlinked)} POSIX shm object(s) of the run: Qt (and "
                                 "qshm_compat, as Qt) never unlinks one on Linux")
        left = ledger.leftovers()
        if left:
            failed = True
            results.notes.append("LEFT BEHIND by this run (now removed): " + "; ".join(left))
            ledger.remove_leftovers()
        # Qt's QGuiApplication makes its runtime dir (runtime-<user>) in $TMPDIR: not an IPC object.
        stray = [n for n in os.listdir(PRIVATE_TMP) if not n.startswith("runtime-")]
        if stray:
            failed = True
            results.notes.append(f"files left in {PRIVATE_TMP} (now removed): {stray}")
        shutil.rmtree(PRIVATE_TMP, ignore_errors=True)
        after = ipc_snapshot()
        new = {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}
        if not left and not stray:
            results.notes.append("nothing left behind: no System V segment, semaphore or key file "
                                 "of this run's keys exists any more")
        if new:
            results.notes.append(f"new on the machine since the start, not this run's (another "
                                 f"process?): {new}")
    results.notes.append(f"run took {time.perf_counter() - started:.1f} s")
    results.fill_vs_pyqt5()
    header = make_header(subjects, args)
    if args.json:
        json.dump({"header": header, "rows": results.rows, "summary": summary(results),
                   "notes": results.notes, "ok": not failed}, sys.stdout, indent=1)
        print()
    else:
        print_table(results, header)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
