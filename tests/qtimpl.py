"""One face for the four implementations the translated Qt autotests run on.

The translations of Qt's ``tst_qsharedmemory.cpp`` and ``tst_qsystemsemaphore.cpp``
(``test_qt_tst_*.py``) are written once against :class:`Impl`, which hands out the classes of
the implementation picked by ``$QSHM_QT_IMPL``:

- ``qshm_compat`` (the default): this package, mirroring Qt 5.15 for the 5.15 tests and Qt 6.11
  for the 6.x tests (``qt_version=``);
- ``pyqt5`` (Qt 5.15 tests only), ``pyqt6`` and ``pyside6`` (Qt 6.x tests only): the real Qt.

A process loads at most one Qt binding (PyQt6 and PySide6 ship different Qt 6 libraries), so the
bindings' runs happen in pytest subprocesses of their own (``test_qt_autotests.py``).
The helper programs Qt's tests start (``qt_autotest_helper.py``) import the same implementation.

Only what differs between the Python APIs lives here: how a C++ ``delete`` is spelt, how
``data()`` becomes a buffer (PyQt's ``sip.voidptr`` has no size), scoped enums, and how a Qt
warning is seen (a Qt message handler; ``warnings`` for qshm_compat).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import warnings
from typing import Any, Callable, Iterator, List, Optional

IMPLS = ("qshm_compat", "pyqt5", "pyqt6", "pyside6")
#: Which translated branch each implementation runs.
BRANCHES = {"qshm_compat": ("5.15", "6"), "pyqt5": ("5.15",), "pyqt6": ("6",), "pyside6": ("6",)}
#: The Qt version qshm_compat mirrors in each branch's tests.
QSHM_QT_VERSION = {"5.15": "5.15", "6": "6.11"}


def selected() -> str:
    name = os.environ.get("QSHM_QT_IMPL", "qshm_compat")
    if name not in IMPLS:
        raise RuntimeError(f"QSHM_QT_IMPL={name!r}: expected one of {', '.join(IMPLS)}")
    return name


class Impl:
    """The classes and small differences of one implementation, for one Qt branch's tests."""

    def __init__(self, name: str, branch: str):
        if branch not in BRANCHES[name]:
            raise RuntimeError(f"{name} does not run the Qt {branch} tests")
        self.name = name
        self.branch = branch
        self.is_qshm = name == "qshm_compat"
        self._delete: Callable[[Any], None]
        if name == "qshm_compat":
            import qshm_compat

            version = QSHM_QT_VERSION[branch]
            base_shm, base_sem = qshm_compat.QSharedMemory, qshm_compat.QSystemSemaphore

            class QSharedMemory(base_shm):  # type: ignore[misc,valid-type]
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    kwargs.setdefault("qt_version", version)
                    super().__init__(*args, **kwargs)

            class QSystemSemaphore(base_sem):  # type: ignore[misc,valid-type]
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    kwargs.setdefault("qt_version", version)
                    super().__init__(*args, **kwargs)

            self.QSharedMemory: Any = QSharedMemory
            self.QSystemSemaphore: Any = QSystemSemaphore
            self.QNativeIpcKey: Any = qshm_compat.QNativeIpcKey
            self._delete = lambda obj: obj.close()
            self.version = f"qshm_compat {qshm_compat.__version__} (mirroring Qt {version})"
        else:
            if name == "pyqt5":
                from PyQt5 import QtCore, sip
                self._delete = sip.delete
                self.QNativeIpcKey = None
            elif name == "pyqt6":
                from PyQt6 import QtCore, sip  # type: ignore[no-redef]
                self._delete = sip.delete
                self.QNativeIpcKey = QtCore.QNativeIpcKey
            else:
                import shiboken6
                from PySide6 import QtCore  # type: ignore[no-redef]
                self._delete = shiboken6.delete
                self.QNativeIpcKey = QtCore.QNativeIpcKey
            self.QtCore = QtCore
            self.QSharedMemory = QtCore.QSharedMemory
            self.QSystemSemaphore = QtCore.QSystemSemaphore
            self.version = f"{name} (Qt {QtCore.qVersion()})"
        shm, sem = self.QSharedMemory, self.QSystemSemaphore
        # Scoped enum names work in all four (PyQt5 has them as attributes of the class too).
        self.ReadOnly = _member(shm, "AccessMode", "ReadOnly")
        self.ReadWrite = _member(shm, "AccessMode", "ReadWrite")
        for err in ("NoError", "PermissionDenied", "InvalidSize", "KeyError", "AlreadyExists",
                    "NotFound", "LockError", "OutOfResources", "UnknownError"):
            setattr(self, err, _member(shm, "SharedMemoryError", err))
        self.Open = _member(sem, "AccessMode", "Open")
        self.Create = _member(sem, "AccessMode", "Create")
        self.SemNoError = _member(sem, "SystemSemaphoreError", "NoError")
        if self.QNativeIpcKey is not None:
            T = self.QNativeIpcKey.Type
            self.KEY_TYPES = {"Windows": T.Windows, "POSIX": T.PosixRealtime,
                              "SystemV-Q": T.SystemV, "SystemV-T": T(ord("T"))}
        self._objects: List[Any] = []

    # -- objects and their C++ lifetime ------------------------------------------------------

    def shm(self, *args: Any) -> Any:
        """``new QSharedMemory(args)``; destroyed by :meth:`delete` or at the end of the test."""
        obj = self.QSharedMemory(*args)
        self._objects.append(obj)
        return obj

    def sem(self, *args: Any) -> Any:
        """``new QSystemSemaphore(args)``; destroyed by :meth:`delete` or at the end of the test."""
        obj = self.QSystemSemaphore(*args)
        self._objects.append(obj)
        return obj

    def delete(self, obj: Any) -> None:
        """C++ ``delete obj`` (or obj leaving its scope): Qt's destructor runs now."""
        for i in range(len(self._objects) - 1, -1, -1):
            if self._objects[i] is obj:
                del self._objects[i]
                self._delete(obj)
                return
        # not ours, or already gone (a C++ pointer is deleted once)

    def delete_all(self) -> None:
        """What is still alive goes, newest first, as C++ locals do at the end of a function."""
        while self._objects:
            self._delete(self._objects.pop())

    # -- data() ------------------------------------------------------------------------------

    def buffer(self, sm: Any, const: bool = False) -> Optional[memoryview]:
        """``sm.data()`` as a memoryview of size() bytes; None for Qt's null pointer."""
        ptr = sm.constData() if const else sm.data()
        if ptr is None:
            return None
        if hasattr(ptr, "setsize"):  # sip.voidptr: NULL is a voidptr whose int() is 0
            if int(ptr) == 0:
                return None
            ptr.setsize(sm.size())
        return memoryview(ptr)

    @staticmethod
    def address(view: memoryview) -> int:
        """The address a buffer starts at (the C++ test compares data() pointers)."""
        import numpy

        return int(numpy.frombuffer(view, dtype=numpy.uint8).__array_interface__["data"][0])

    # -- Qt warnings (QTest::ignoreMessage) ---------------------------------------------------

    @contextlib.contextmanager
    def messages(self) -> Iterator[List[str]]:
        """Collect the warnings Qt prints (qWarning) while the block runs."""
        seen: List[str] = []
        if self.is_qshm:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    yield seen
                finally:
                    seen.extend(str(w.message) for w in caught)
            return
        QtCore = self.QtCore

        def handler(mode: Any, context: Any, message: str) -> None:
            seen.append(message)

        previous = QtCore.qInstallMessageHandler(handler)
        try:
            yield seen
        finally:
            QtCore.qInstallMessageHandler(previous)


def _member(scope: Any, enum_name: str, member: str) -> Any:
    group = getattr(scope, enum_name, None)
    if group is not None and hasattr(group, member):
        return getattr(group, member)
    return getattr(scope, member)


# -- the test's own System V / POSIX clean-up (Qt's tst_*::remove), straight to libc -----------

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.ftok.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
_libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
_libc.shm_unlink.argtypes = [ctypes.c_char_p]
IPC_RMID = 0


def remove_sysv_segment(key_file: str, project_id: int = ord("Q")) -> None:
    """What Qt's test ``remove()`` does for System V: ftok, shmget, IPC_RMID, unlink the file."""
    if not key_file or not os.path.exists(key_file):
        return
    unix_key = _libc.ftok(os.fsencode(key_file), project_id)
    if unix_key == -1:
        return
    shmid = _libc.shmget(unix_key, 0, 0o600)
    if shmid == -1:
        return
    if _libc.shmctl(shmid, IPC_RMID, None) == -1:
        return
    with contextlib.suppress(OSError):
        os.remove(key_file)


def remove_posix_segment(name: str) -> None:
    """What Qt's test ``remove()`` does for POSIX: ``shm_unlink`` (ENOENT is fine)."""
    _libc.shm_unlink(os.fsencode(name))


def helper_command(impl: Impl, program: str, *args: str) -> List[str]:
    """argv starting the Python translation of one of Qt's helper programs for ``impl``."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, os.path.join(here, "qt_autotest_helper.py"), impl.name, impl.branch,
            program, *args]


# -- QProcess, as far as the tests use it ---------------------------------------------------------


class Process:
    """A started helper: ``waitForFinished``, ``state()``, ``kill()`` and the exit facts.

    Like ``QProcess::ForwardedChannels``, its stderr goes where ours goes; stdout is a pipe
    only for the producer, whose empty line says that the segment exists.
    """

    def __init__(self, argv: List[str], read_stdout: bool = False):
        import subprocess

        import peers  # the leak guard looks at segments made by the pids in STARTED_PIDS

        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE if read_stdout else None,
            env=env, start_new_session=True,
        )
        peers.STARTED_PIDS.add(self.proc.pid)
        STARTED.append(self)

    def waitForStarted(self) -> bool:
        return self.proc.pid > 0

    def waitForReadyRead(self, msecs: int = 30000) -> bool:
        import select

        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], msecs / 1000)
        if not ready:
            return False
        return self.proc.stdout.read(1) != b""

    def waitForFinished(self, msecs: int = 30000) -> bool:
        import subprocess

        try:
            self.proc.wait(timeout=msecs / 1000)
            return True
        except subprocess.TimeoutExpired:
            return False

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def crashed(self) -> bool:
        """``QProcess::Crashed``: the process ended by a signal."""
        return self.proc.returncode is not None and self.proc.returncode < 0

    def normal_exit(self) -> bool:
        return self.proc.returncode is not None and self.proc.returncode >= 0

    def exit_code(self) -> int:
        return self.proc.returncode if self.normal_exit() else 0

    def close(self) -> None:
        """QProcess's destructor: kill it if it still runs."""
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


STARTED: List[Process] = []


def close_processes() -> None:
    while STARTED:
        STARTED.pop().close()


class ThreadFailures:
    """QVERIFY inside a QThread's run() ends run() and fails the test: collected here."""

    def __init__(self) -> None:
        self.failures: List[str] = []

    def check(self, condition: bool, what: str) -> bool:
        if not condition:
            self.failures.append(what)
        return condition
