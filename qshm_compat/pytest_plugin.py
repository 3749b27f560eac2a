"""pytest fixtures for testing a Qt program through the shared memory it shares.

Registered through the ``pytest11`` entry point ``qshm_compat.pytest_plugin`` (the same name as
the module, so ``-p qshm_compat.pytest_plugin`` loads it from a source tree and is harmless when
the package is installed; ``-p no:qshm_compat.pytest_plugin`` turns it off).  Importing
``qshm_compat`` never imports this module or pytest, and this module loads the rest of the
package (and its C extension) only when a test asks for one of its fixtures.

Fixtures (all function-scoped; every test that uses one runs under a ``TMPDIR`` of its own, set in
``os.environ`` for the test's duration and given to the programs it starts, so that Qt and
qshm_compat compute the same names):

* ``qshm_tmpdir``: that directory (a ``pathlib.Path``, symlinks resolved).  Override it to share
  another directory, such as the one long-lived programs of a session were started with; legacy
  key files found there then count only when they belong to the test's keys.
* ``qshm_key`` / ``qshm_key_factory(key=None)``: a fresh random Qt key (or ``key`` itself,
  tracked); every OS object of it, in every key family, is removed after the test.
* ``qshm_native_key`` / ``qshm_native_key_factory(type="posix")``: the same for a
  ``QNativeIpcKey`` (``@pytest.mark.parametrize("qshm_native_key", ["posix", "systemv"],
  indirect=True)`` picks the type).
* ``qt_process(argv, ready=..., ready_segment=..., timeout=30)``: start the program under test
  (a :class:`qshm_compat.testing.QtProcess`), wait until it is ready, kill it after the test by
  its pid, and show its command line and output when the test failed.

The leak check (``@pytest.mark.qshm_no_leftovers``, or ``--qshm-check-leaks`` / the ini option
``qshm_check_leaks`` for every test using these fixtures) runs when the test body passed: programs
still running get end of input on stdin, then SIGTERM, then SIGKILL (5 s apart), and the test
fails naming every object of its keys (and every Qt key file in its ``TMPDIR``) that is left.
``qshm_no_leftovers(ignore=["posix-shm"])`` leaves kinds out: Qt never unlinks POSIX shared
memory on Linux, so a ``QNativeIpcKey`` program always leaves ``/dev/shm/<name>``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, List, Optional, Sequence, Set, Tuple, Union

import pytest

if TYPE_CHECKING:
    from .keys import QNativeIpcKey
    from .testing import KeyLike, QtProcess

LEAK_MARKER = "qshm_no_leftovers"
#: Seconds a program still running at the leak check gets after each of EOF and SIGTERM.
STOP_GRACE = 5.0

_STATE = pytest.StashKey["_State"]()
_UNSET = object()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qshm_compat", "Qt shared memory (qshm_compat)")
    group.addoption(
        "--qshm-check-leaks", action="store_true", default=None, dest="qshm_check_leaks",
        help="fail a test whose keys (qshm_key, qt_process...) leave IPC objects behind, as the "
             f"{LEAK_MARKER} marker does",
    )
    parser.addini("qshm_check_leaks", type="bool", default=False,
                  help=f"check every test using the qshm fixtures for leftovers (as @{LEAK_MARKER})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{LEAK_MARKER}(ignore=()): fail the test if the IPC objects of its qshm keys (or Qt key files in "
        "its TMPDIR) are left once its programs are gone; ignore: kinds to allow, of sysv-segment, "
        "sysv-semaphore, posix-shm, posix-semaphore, key-file",
    )


class _State:
    """One test's TMPDIR, keys and programs; torn down in one place, in the order that works:
    programs killed, then the test's own attachments closed, then objects removed, then TMPDIR
    restored."""

    def __init__(self, tmpdir: Path, own: bool) -> None:
        self.tmpdir = tmpdir
        self.scan = own  # every Qt key file in tmpdir is the test's
        self.keys: List[KeyLike] = []
        self.procs: List[QtProcess] = []
        from . import testing

        # What the helpers opened before the test (a session fixture's segment) is not the test's.
        self._opened_before = testing.opened()
        self._saved_env = os.environ.get("TMPDIR", _UNSET)
        self._saved_tempdir = tempfile.tempdir
        os.environ["TMPDIR"] = str(tmpdir)
        tempfile.tempdir = None  # gettempdir() follows TMPDIR again

    def new_key(self, key: Optional[str] = None, prefix: str = "qshm-test") -> str:
        from . import testing

        key = testing.random_key(prefix) if key is None else key
        if not isinstance(key, str) or not key:
            raise ValueError(f"a Qt key is a non-empty str, not {key!r}")
        self.keys.append(key)
        return key

    def new_native_key(self, type: Union[str, int] = "posix") -> QNativeIpcKey:
        from . import testing

        key = testing.native_key(type, str(self.tmpdir))
        self.keys.append(key)
        return key

    def start(self, argv: Sequence[Union[str, "os.PathLike[str]"]], **kwargs: Any) -> QtProcess:
        from . import testing

        ready = kwargs.pop("ready", None)
        ready_segment = kwargs.pop("ready_segment", None)
        timeout = kwargs.pop("timeout", 30.0)
        ready_stream = kwargs.pop("ready_stream", "stdout")
        kwargs.setdefault("tmpdir", str(self.tmpdir))
        proc = testing.QtProcess(argv, **kwargs)
        self.procs.append(proc)  # shown on failure even when it never became ready
        proc.wait_ready(ready, ready_segment, timeout, ready_stream)
        return proc

    def check_leaks(self, ignore: Sequence[str]) -> Optional[str]:
        """Stop what still runs, then describe what the test's keys left (None: nothing)."""
        from . import testing

        # The test's own attachments go first, while its programs still hold theirs: then the
        # last one out is a program, as when the test is not there to look.
        testing.close_opened(keep=self._opened_before)
        notes = []
        for proc in self.procs:
            if proc.running():
                proc.stop(STOP_GRACE)
                how = {"exited": "it exited at end of input on stdin",
                       "terminated": "it ignored end of input and exited on SIGTERM",
                       "killed": "it ignored end of input and SIGTERM and was killed"}.get(proc.how_stopped,
                                                                                          "it exited meanwhile")
                notes.append(f"{proc.name} was still running when the test ended: {how} ({proc.status()})")
        found = testing.leftovers(self.keys, tmpdir=str(self.tmpdir), scan=self.scan, ignore=ignore)
        if not found:
            return None
        lines = [f"the test left {len(found)} IPC object(s) behind (removed after the test):",
                 testing.describe_leftovers(found)]
        lines += notes
        return "\n".join(lines)

    def finish(self) -> List[str]:
        """Kill, close, remove, restore; the objects that could not be removed."""
        errors: List[str] = []
        try:
            if self.procs or self.keys or (self.scan and _has_files(self.tmpdir)):
                from . import testing

                for proc in self.procs:
                    proc.close()
                testing.close_opened(keep=self._opened_before)
                errors = testing.remove_leftovers(self.keys, tmpdir=str(self.tmpdir), scan=self.scan)[1]
        finally:
            if self._saved_env is _UNSET:
                os.environ.pop("TMPDIR", None)
            else:
                assert isinstance(self._saved_env, str)
                os.environ["TMPDIR"] = self._saved_env
            tempfile.tempdir = self._saved_tempdir
        return errors


def _has_files(path: Path) -> bool:
    try:
        return any(path.iterdir())
    except OSError:
        return False


class _Factory:
    """A fixture's callable, with a short repr for tracebacks."""

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self._name = name
        self._func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self._name}>"


#: The directories the default ``qshm_tmpdir`` made: only in those is every key file the test's.
_made_here: Set[str] = set()


@pytest.fixture
def qshm_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``TMPDIR`` the test and its programs share: the other qshm fixtures make it ``$TMPDIR``
    while the test runs.

    A fresh directory per test (symlinks resolved).  Override this fixture to share another one,
    e.g. the directory long-lived programs were started with; Qt key files found in such a
    directory are then left alone unless they belong to the test's keys.
    """
    path = Path(os.path.realpath(tmp_path_factory.mktemp("qshm-tmpdir")))
    _made_here.add(str(path))
    yield path
    _made_here.discard(str(path))


@pytest.fixture
def _qshm_state(request: pytest.FixtureRequest, qshm_tmpdir: Path) -> Iterator[_State]:
    state = _State(Path(qshm_tmpdir), own=str(qshm_tmpdir) in _made_here)
    request.node.stash[_STATE] = state
    yield state
    errors = state.finish()
    if errors:
        pytest.fail("qshm_compat could not remove these IPC objects of the test:\n  " + "\n  ".join(errors),
                    pytrace=False)


@pytest.fixture
def qshm_key(_qshm_state: _State) -> str:
    """A fresh random Qt key; all its OS objects, in every family, are removed after the test."""
    return _qshm_state.new_key()


@pytest.fixture
def qshm_key_factory(_qshm_state: _State) -> Callable[..., str]:
    """``make(key=None, prefix="qshm-test")``: a fresh key (or ``key``), cleaned up like ``qshm_key``."""
    return _Factory("qshm_key_factory", _qshm_state.new_key)


@pytest.fixture
def qshm_native_key(request: pytest.FixtureRequest, _qshm_state: _State) -> QNativeIpcKey:
    """A fresh ``QNativeIpcKey`` (POSIX, or the type given as an indirect parameter), cleaned up."""
    return _qshm_state.new_native_key(getattr(request, "param", "posix"))


@pytest.fixture
def qshm_native_key_factory(_qshm_state: _State) -> Callable[..., QNativeIpcKey]:
    """``make(type="posix")``: a fresh ``QNativeIpcKey`` of ``type``, cleaned up after the test."""
    return _Factory("qshm_native_key_factory", _qshm_state.new_native_key)


@pytest.fixture
def qt_process(_qshm_state: _State) -> Callable[..., QtProcess]:
    """``start(argv, ready=None, ready_segment=None, timeout=30, env=None, cwd=None, stdin=True,
    ready_stream="stdout")``: start the program under test with the test's TMPDIR and wait until
    it is ready (a stdout line matching the ``ready`` regex, then a segment of ``ready_segment``);
    it is killed after the test, and its output is shown if the test failed."""
    return _Factory("qt_process", _qshm_state.start)


def _leak_check_options(item: pytest.Item) -> Optional[Tuple[str, ...]]:
    """The kinds to ignore when ``item`` wants the leak check, else None."""
    marker = item.get_closest_marker(LEAK_MARKER)
    if marker is None:
        option = item.config.getoption("qshm_check_leaks")
        if not (option or (option is None and item.config.getini("qshm_check_leaks"))):
            return None
        return ()
    from .testing import LEFTOVER_KINDS

    ignore = marker.kwargs.get("ignore", ())
    kinds = (ignore,) if isinstance(ignore, str) else tuple(ignore)
    unknown = [k for k in kinds if k not in LEFTOVER_KINDS]
    if marker.args or set(marker.kwargs) - {"ignore"} or unknown:
        pytest.fail(f"@{LEAK_MARKER} takes ignore=[kinds] with kinds of {', '.join(LEFTOVER_KINDS)}; "
                    f"got {marker.args!r}, {marker.kwargs!r}", pytrace=False)
    return kinds


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    result = yield  # a test that raised is not checked: it failed already
    state = item.stash.get(_STATE, None)
    if state is not None:
        ignore = _leak_check_options(item)
        if ignore is not None:
            message = state.check_leaks(ignore)
            if message:
                pytest.fail(message, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    state = item.stash.get(_STATE, None)
    if state is not None and report.failed:
        for proc in state.procs:
            if f"pid {proc.pid}, " not in report.longreprtext:  # not in the error message already
                report.sections.append((f"qt_process pid {proc.pid} stdout and stderr", proc.describe()))
    return report
