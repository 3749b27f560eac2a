"""Start and drive the real Qt peers of ``interop_fixtures/`` (see its PROTOCOL.md).

A peer is a separate process running real Qt: PyQt5, PyQt6 or PySide6 through
``interop_fixtures/peer.py``, or the C++ program built against Debian's Qt 5 or Qt 6.  It speaks
JSON lines.  Every wait here has a deadline, and a failure names the peer's command line and
shows what it wrote on stderr, so a broken peer is diagnosed from the test report alone.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "interop_fixtures"
BUILD = Path(os.environ.get("QSHM_PEER_BUILD", FIXTURES / "build"))

PYTHON_PEERS = ("pyqt5", "pyqt6", "pyside6")
CPP_PEERS = ("cpp-qt5", "cpp-qt6")
ALL_PEERS = PYTHON_PEERS + CPP_PEERS
# The peers whose Qt has QNativeIpcKey (Qt >= 6.6).
QT66_PEERS = ("pyqt6", "pyside6")

DEFAULT_TIMEOUT = 20.0

#: Every peer process started by this test run (the leak guard attributes IPC objects by pid).
STARTED_PIDS: set[int] = set()


class PeerError(AssertionError):
    """A peer died, timed out or answered something that is not the protocol."""


def peer_command(name: str) -> list[str]:
    if name == "qshm":  # not Qt: qshm_compat in a process of its own (tests/qshm_peer.py)
        return [sys.executable, str(Path(__file__).resolve().parent / "qshm_peer.py")]
    if name in PYTHON_PEERS:
        return [sys.executable, str(FIXTURES / "peer.py"), name]
    if name in CPP_PEERS:
        return [str(BUILD / ("peer-" + name.split("-", 1)[1]))]
    raise ValueError(f"unknown peer {name!r}")


class Peer:
    """One running peer process; use :func:`start_peer` to make one."""

    def __init__(
        self,
        name: str,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        user: int | None = None,
    ):
        self.name = name
        self.argv = peer_command(name)
        full_env = dict(os.environ)
        full_env.setdefault("QT_QPA_PLATFORM", "offscreen")
        if env:
            full_env.update(env)
        if name == "qshm":
            # The same qshm_compat as this test process (the installed copy under CI).
            import qshm_compat

            full_env["PYTHONPATH"] = str(Path(qshm_compat.__file__).resolve().parent.parent)
        self.env = full_env
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            user=user,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        STARTED_PIDS.add(self.proc.pid)
        self._threads = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.hello = self.reply(timeout=60.0)
        if not self.hello.get("ready"):
            self._fail(f"first line is not the ready line: {self.hello!r}")
        self.pid: int = self.hello["pid"]
        self.qt: str = self.hello["qt"]
        self.qt_version = tuple(int(part) for part in self.qt.split("."))

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def describe(self) -> str:
        stderr = "".join(self._stderr[-60:])
        return (
            f"peer {self.name} (pid {self.proc.pid}, exit {self.proc.poll()})\n"
            f"  command: {' '.join(self.argv)}\n"
            f"  TMPDIR={self.env.get('TMPDIR', '')!r}\n"
            f"  stderr:\n{stderr}"
        )

    def _fail(self, message: str) -> None:
        raise PeerError(f"{message}\n{self.describe()}")

    def send(self, cmd: str, **args: Any) -> None:
        """Send a request without waiting for its answer (for requests that block in Qt)."""
        if self.proc.poll() is not None:
            self._fail(f"cannot send {cmd!r}: the peer has exited")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """The next answer, waiting at most ``timeout`` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"no answer within {timeout} s")
        if line is None:
            self._fail("the peer closed its output")
        try:
            return json.loads(line)  # type: ignore[no-any-return]
        except ValueError:
            self._fail(f"not a JSON line: {line!r}")
        raise AssertionError("unreachable")

    def pending(self, wait: float) -> bool:
        """True when an answer arrives within ``wait`` seconds (it stays queued for :meth:`reply`)."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not self._lines.empty():
                return True
            time.sleep(0.005)
        return not self._lines.empty()

    def request(self, cmd: str, timeout: float = DEFAULT_TIMEOUT, **args: Any) -> dict[str, Any]:
        """Send one request and return its answer; a protocol-level refusal fails the test."""
        self.send(cmd, **args)
        answer = self.reply(timeout)
        if "unsupported" in answer:
            self._fail(f"{cmd} {args} was refused: {answer['unsupported']}")
        return answer

    def ok(self, cmd: str, timeout: float = DEFAULT_TIMEOUT, **args: Any) -> dict[str, Any]:
        """Like :meth:`request`, and the answer must be ok."""
        answer = self.request(cmd, timeout, **args)
        if not answer.get("ok"):
            self._fail(f"{cmd} {args} failed: {answer}")
        return answer

    def kill(self) -> None:
        """SIGKILL: no destructor runs, as in a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Ask the peer to exit (destructors run); kill it if it does not within a deadline."""
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(timeout=10)
            except (PeerError, OSError, subprocess.TimeoutExpired):
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def start_peer(
    name: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: int | None = None,
) -> Peer:
    return Peer(name, env=env, cwd=cwd, user=user)


def increment_alongside(peer: Peer, shm: Any, count: int) -> int:
    """Run the peer's ``incr`` and the same loop on ``shm`` (qshm_compat) at the same moment.

    Both add 1 to the little-endian uint32 at offset 0 under the lock, ``count`` times.  Checks
    that the peer did all its increments and that the two loops overlapped in time, and returns
    the counter's final value (read under the lock).
    """
    import struct

    start_at = time.time() + 0.5
    peer.send("incr", count=count, start_at=start_at)
    while time.time() < start_at:
        time.sleep(0.001)
    started = time.time()
    data = shm.data()
    counter = struct.Struct("<I")
    for _ in range(count):
        shm.lock()
        counter.pack_into(data, 0, counter.unpack_from(data, 0)[0] + 1)
        shm.unlock()
    finished = time.time()
    answer = peer.reply(timeout=120)
    assert answer["ok"] and answer["done"] == count, answer
    # The two loops really ran at the same time.
    assert answer["started"] < finished and started < answer["finished"], (answer, started, finished)
    with shm.locked(timeout=5):
        return int(counter.unpack_from(data, 0)[0])
