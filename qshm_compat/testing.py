"""Helpers for tests that start a Qt program and drive or watch it through the memory it shares.

Usable with or without pytest (nothing here imports it); :mod:`qshm_compat.pytest_plugin` builds
its fixtures on them.

* :func:`wait_for_segment`, :func:`wait_for_change` and :func:`snapshot` watch a segment the way a
  Qt peer would: they attach with Qt's names and read under Qt's lock.
* :func:`leftovers`, :func:`assert_no_leftovers` and :func:`remove_leftovers` list, check and
  remove every OS object of a key in every family Qt can use for it (``qshm probe``'s model,
  :mod:`qshm_compat.inspect`).
* :class:`QtProcess` runs the program under test with captured output, a ready condition with a
  deadline, and a kill by its process id.

What a Qt program leaves behind, and when, is Qt's (checked on Qt 5.15.8 to 6.12.0, see
:mod:`qshm_compat.inspect`): on System V the last detach removes the segment and its key file
and the lock's creator removes the lock; a killed program leaves both; and Qt never unlinks
POSIX shared memory on Linux, so a ``QNativeIpcKey`` program always leaves ``/dev/shm/<name>``.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Pattern, Sequence, Tuple, Union
from weakref import WeakSet

from . import inspect as qinspect
from . import sysv
from .exceptions import QshmError
from .inspect import KeyRef, QtKey, Step
from .keys import SEM_PREFIX, SHM_PREFIX, KeyContext, QNativeIpcKey, parse_qt_version
from .sharedmemory import QSharedMemory

__all__ = [
    "KeyLike", "LEFTOVER_KINDS", "WaitTimeoutError", "ProgramExitedError", "LeftoversError",
    "random_key", "native_key", "key_refs", "tmpdir_refs",
    "wait_for_segment", "wait_for_change", "Snapshot", "snapshot", "opened", "close_opened",
    "leftovers", "assert_no_leftovers", "remove_leftovers", "describe_leftovers",
    "QtProcess", "start_qt_process",
]

#: A key as the helpers take it: a plain Qt key (every family Qt can use for it), a
#: ``QNativeIpcKey::toString()`` string or ``QNativeIpcKey`` (that key alone), or a ``KeyRef``.
KeyLike = Union[str, QNativeIpcKey, KeyRef]

#: The kinds of OS objects, as in ``qshm clean`` steps (and the ``ignore=`` arguments here).
LEFTOVER_KINDS = ("sysv-segment", "sysv-semaphore", "posix-shm", "posix-semaphore", "key-file")

_POLL = 0.02

#: QSharedMemory objects the helpers returned, so that a test harness can close the ones a test
#: forgot before it looks for leftovers (:func:`close_opened`).
_opened: "WeakSet[QSharedMemory]" = WeakSet()


class WaitTimeoutError(QshmError, TimeoutError):
    """A segment, a change, a line or a ready condition did not come within the deadline."""


class ProgramExitedError(QshmError, AssertionError):
    """The program under test exited while a test was waiting for it."""


class LeftoversError(QshmError, AssertionError):
    """OS objects of a key are left; ``objects`` lists them as ``qshm clean`` steps."""

    def __init__(self, message: str, objects: Sequence[Step]):
        super().__init__(message)
        self.objects = list(objects)


# ----- keys ------------------------------------------------------------------------------------


def random_key(prefix: str = "qshm-test") -> str:
    """A fresh Qt key, ``<prefix>-<12 hex digits>``: valid in every key family (no ``/``)."""
    if "/" in prefix:
        raise ValueError(f"a key prefix with '/' cannot name a POSIX object: {prefix!r}")
    return f"{prefix}-{secrets.token_hex(6)}"


def native_key(type: Union[str, int] = "posix", directory: Optional[str] = None,
               prefix: str = "qshm-test") -> QNativeIpcKey:
    """A fresh ``QNativeIpcKey`` of ``type`` ("posix", "systemv", "systemv-N" or a number).

    POSIX: ``/<random key>``.  System V: a key file path ``<directory>/<random key>`` (default
    ``$TMPDIR``); Qt >= 6.6 makes the file in ``create()``.
    """
    t = qinspect.parse_type(type) if isinstance(type, str) else int(type)
    name = random_key(prefix)
    if t == QNativeIpcKey.Type.PosixRealtime:
        return QNativeIpcKey("/" + name, t)
    if t == QNativeIpcKey.Type.Windows:
        raise ValueError("Windows keys have no objects on this OS")
    base = directory if directory is not None else os.environ.get("TMPDIR") or "/tmp"
    return QNativeIpcKey(os.path.join(os.path.realpath(base), name), t)


def _context(env: Optional[Mapping[str, str]] = None, tmpdir: Optional[str] = None,
             qt_version: Union[str, Tuple[int, ...], None] = None) -> KeyContext:
    environ: Optional[Dict[str, str]] = None
    if env is not None or tmpdir is not None:
        environ = dict(os.environ if env is None else env)
        if tmpdir is not None:
            environ["TMPDIR"] = os.fspath(tmpdir)
    return KeyContext(qt_version=None if qt_version is None else parse_qt_version(qt_version), environ=environ)


def key_refs(key: KeyLike, *, tmpdir: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
             qt_version: Union[str, Tuple[int, ...], None] = None) -> List[KeyRef]:
    """The families (``KeyRef`` s) ``key`` names, as ``qshm probe KEY`` reads it.

    Names are computed for ``$TMPDIR`` (or ``tmpdir``, or ``env['TMPDIR']``): a Qt program
    finds the same segment only with the same ``TMPDIR``.
    """
    if isinstance(key, KeyRef):
        return [key]
    ctx = _context(env, tmpdir, qt_version)
    if isinstance(key, QNativeIpcKey):
        return [qinspect.ref_for_ipc_key(key, ctx)]
    if not isinstance(key, str):
        raise TypeError(f"a key is a str, QNativeIpcKey or KeyRef, not {type(key).__name__}")
    return qinspect.parse_key_argument(key, ctx=ctx)


def tmpdir_refs(tmpdir: str) -> List[KeyRef]:
    """The legacy System V keys whose key files are in ``tmpdir`` (the plain keys are unknown).

    A per-test ``TMPDIR`` holds only the test's key files, so this finds the keys a program under
    test used without the test knowing them (a key fixed in its source, say).
    """
    try:
        names = sorted(os.listdir(tmpdir))
    except OSError:
        return []
    refs: Dict[Tuple[str, str], KeyRef] = {}
    for name in names:
        for prefix in (SHM_PREFIX, SEM_PREFIX):
            if name.startswith(prefix):
                shm_path = os.path.join(tmpdir, SHM_PREFIX + name[len(prefix):])
                ref = qinspect.ref_for_ipc_key(QNativeIpcKey(shm_path, QNativeIpcKey.Type.SystemV),
                                               api="a key file in the test's TMPDIR")
                refs.setdefault(ref.identity, ref)
    return list(refs.values())


def _names(refs: Iterable[KeyRef]) -> str:
    return "; ".join(ref.shm().nativeKey() for ref in refs)


def _shared_memory(ref: KeyRef, qt_version: Union[str, Tuple[int, ...], None]) -> QSharedMemory:
    """The ``QSharedMemory`` a Qt program of this family uses (the same lock included)."""
    if ref.family == qinspect.LEGACY_SYSV and ref.key is not None and ref.shm().legacyKey():
        return QSharedMemory(ref.key, qt_version=qt_version)
    return QSharedMemory(ref.shm(), qt_version=qt_version)


def _copy(shm: QSharedMemory, part: slice = slice(None)) -> bytes:
    """The bytes of ``part``, with no view left behind: a view alive at ``detach()`` would make
    qshm_compat retire the mapping instead of unmapping it."""
    view = shm.constData()
    if view is None:
        raise ValueError(f"{shm!r} is not attached")
    try:
        return bytes(view[part])
    finally:
        view.release()


def _region(region: Union[slice, Tuple[int, int], None]) -> slice:
    if region is None:
        return slice(None)
    if isinstance(region, slice):
        return region
    offset, length = region
    return slice(offset, offset + length)


# ----- watching a segment ----------------------------------------------------------------------


def wait_for_segment(
    key: KeyLike,
    timeout: float = 10.0,
    *,
    mode: Any = QSharedMemory.ReadWrite,
    qt_version: Union[str, Tuple[int, ...], None] = None,
) -> QSharedMemory:
    """Wait until a segment of ``key`` exists, attach to it and return the ``QSharedMemory``.

    A plain key is looked for in every family (the first that exists is used, with the lock its
    Qt programs take).  Raises :class:`WaitTimeoutError` (a ``TimeoutError``) naming the key and
    the native names looked for.  Close the result (or use it in ``with``) when done: on System V
    the last one to detach removes the segment, as in Qt.
    """
    refs = key_refs(key, qt_version=qt_version)
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        for ref in refs:
            if not qinspect.segment_exists(ref):
                continue
            shm = _shared_memory(ref, qt_version)
            if shm.attach(mode, timeout=max(deadline - time.monotonic(), 0.0)):
                _opened.add(shm)
                return shm
            last_error = shm.errorString()
            shm.close()
        if time.monotonic() >= deadline:
            why = f"; the last attach failed: {last_error}" if last_error else ""
            raise WaitTimeoutError(f"no segment of key {_show(key)} could be attached within {timeout:g} s "
                                   f"(looked for: {_names(refs)}){why}")
        time.sleep(_POLL)


def wait_for_change(
    shm: QSharedMemory,
    timeout: float = 10.0,
    region: Union[slice, Tuple[int, int], None] = None,
    *,
    baseline: Optional[bytes] = None,
    interval: float = 0.01,
) -> bytes:
    """Poll ``shm`` under its lock until ``region`` (a slice or ``(offset, length)``) changes.

    Returns the new bytes of the region.  ``baseline`` is what it is compared with (default: the
    bytes at the call, so a change made just before is missed; pass what you saw to avoid that).
    Raises :class:`WaitTimeoutError` naming the key when nothing changed by the deadline (or the
    lock could not be had).
    """
    if not shm.isAttached():
        raise ValueError(f"{shm!r} is not attached")
    part = _region(region)
    deadline = time.monotonic() + timeout

    def read() -> bytes:
        left = max(deadline - time.monotonic(), 0.0)
        try:
            with shm.locked(timeout=left):
                return _copy(shm, part)
        except TimeoutError:
            raise WaitTimeoutError(f"wait_for_change: the lock of {_show_shm(shm)} was not had within "
                                   f"{timeout:g} s: {shm.errorString()}") from None

    before = read() if baseline is None else bytes(baseline)
    while True:
        now = read()
        if now != before:
            return now
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(f"bytes {_show_slice(part, shm.size())} of {_show_shm(shm)} did not change "
                                   f"within {timeout:g} s (still {_preview(now)})")
        time.sleep(interval)


@dataclass(frozen=True)
class Snapshot:
    """What :func:`snapshot` saw: the segment's bytes and the facts ``qshm probe`` gives."""

    key: str  # the key as given (toString() for a QNativeIpcKey)
    rows: Tuple[QtKey, ...]  # every family of the key, as qshm probe shows them
    row: Optional[QtKey]  # the family whose segment was read (the first that exists)
    data: Optional[bytes]  # None when no segment exists
    locked: bool = False  # read under the segment's lock (see snapshot())

    @property
    def exists(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return 0 if self.data is None else len(self.data)

    @property
    def verdict(self) -> str:
        """``live``, ``stale``, ``broken`` or ``absent`` (the family read, else the worst seen)."""
        if self.row is not None:
            return self.row.verdict
        present = [r.verdict for r in self.rows if r.exists]
        return present[0] if present else "absent"

    def describe(self) -> str:
        lines = [f"key {self.key!r}: {self.verdict}"]
        for row in self.rows:
            if row.exists:
                lines.append(f"  {qinspect.FAMILY_LABELS.get(row.ref.family, row.ref.family)} "
                             f"({row.ref.shm_key}): {row.verdict}, {row.reason}")
        if self.data is not None:
            lines.append(f"  {self.size} bytes: {_preview(self.data)}")
        return "\n".join(lines)


def snapshot(key: KeyLike, timeout: float = 5.0, *, lock: bool = True,
             qt_version: Union[str, Tuple[int, ...], None] = None) -> Snapshot:
    """The bytes of ``key``'s segment (read under its lock) and the probe facts of every family.

    What it looks at stays as it was: a System V segment nobody is attached to (a killed
    creator's) is read without Qt's attach, whose detach would remove it, and a segment whose
    lock is abandoned (verdict ``broken``) is read without the lock.  ``lock=False`` always reads
    that way, for a look while a program holds the lock.  ``Snapshot.locked`` says which way it
    was read.  Raises :class:`WaitTimeoutError` when a lock is not had within ``timeout``.
    """
    refs = key_refs(key, qt_version=qt_version)
    machine = qinspect.Machine()
    rows = tuple(qinspect.inspect_ref(ref, machine) for ref in refs)
    shown = key.toString() if isinstance(key, QNativeIpcKey) else key.shm_key if isinstance(key, KeyRef) else key
    for row in rows:
        if not row.segment.exists:
            continue
        data, locked = _read_row(row, timeout, lock, qt_version)
        if data is not None:
            return Snapshot(shown, rows, row, data, locked)
    return Snapshot(shown, rows, None, None, False)


def _read_row(row: QtKey, timeout: float, lock: bool,
              qt_version: Union[str, Tuple[int, ...], None]) -> Tuple[Optional[bytes], bool]:
    """The segment's bytes (None if it went meanwhile), and whether they were read under the lock."""
    seg = row.segment
    raw = not lock or row.verdict == "broken"
    if seg.backend == "sysv" and (raw or seg.attached == 0) and seg.id is not None and seg.size is not None:
        from . import _memory

        try:
            addr = sysv.shm_attach(seg.id, True, seg.name)  # not Qt's attach: no lock, no removal
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                return None, False  # removed meanwhile
            raise
        try:
            return bytes(_memory.buffer(addr, seg.size)), False
        finally:
            sysv.shm_detach(addr, seg.name)
    if seg.backend == "posix" and raw and seg.path:
        try:
            with open(seg.path, "rb") as f:  # glibc's POSIX shared memory is this tmpfs file
                return f.read(), False
        except FileNotFoundError:
            return None, False
    shm = _shared_memory(row.ref, qt_version)
    try:
        if not shm.attach(QSharedMemory.ReadOnly, timeout=timeout):
            if shm.error() == QSharedMemory.LockError:
                raise WaitTimeoutError(f"snapshot of {row.ref.shm_key}: {shm.errorString()}")
            return None, False  # gone meanwhile
        try:
            with shm.locked(timeout=timeout):
                return _copy(shm), True
        except TimeoutError:
            raise WaitTimeoutError(f"snapshot of {row.ref.shm_key}: {shm.errorString()}") from None
    finally:
        shm.close()


def opened() -> List[QSharedMemory]:
    """The ``QSharedMemory`` objects :func:`wait_for_segment` returned that are still open."""
    return [shm for shm in list(_opened) if shm.isAttached()]


def close_opened(keep: Iterable[QSharedMemory] = ()) -> int:
    """Close every ``QSharedMemory`` :func:`wait_for_segment` returned that is still open, except
    those in ``keep``.

    A harness calls this before :func:`assert_no_leftovers`, so that the test's own attachment
    does not keep a segment alive.  Returns how many were closed.
    """
    spared = {id(shm) for shm in keep}
    closing = [shm for shm in list(_opened) if id(shm) not in spared]
    for shm in closing:
        _opened.discard(shm)
        shm.close()
    return len(closing)


# ----- what a key leaves behind ----------------------------------------------------------------


def _steps_of(row: QtKey) -> List[Step]:
    """One ``remove`` step per object of ``row`` that exists, key files last.

    ``reason`` says which family and what ``qshm probe`` makes of it, ``key`` which key.
    """
    family = qinspect.FAMILY_LABELS.get(row.ref.family, row.ref.family)
    why = f"{family}, {row.ref.api}: {row.verdict}, {row.reason}"
    label = row.ref.label
    steps: List[Step] = []
    seg, lock = row.segment, row.lock
    if seg.exists:
        kind = "sysv-segment" if seg.backend == "sysv" else "posix-shm"
        size = f", {seg.size} bytes" if seg.size is not None else ""
        steps.append(Step("remove", kind, qinspect._object_name(row, True) + size, why, label, seg.name, seg.id))
    if lock is not None and lock.exists:
        value = f", {lock.state}" if lock.state not in ("absent", "unknown") else ""
        steps.append(Step("remove", f"{lock.backend}-semaphore", qinspect._object_name(row, False) + value, why,
                          label, lock.name, lock.id))
    for f in row.key_files:
        if f.exists:
            steps.append(Step("remove", "key-file", f"key file {f.path}", why, label, f.path))
    return steps


def _step_identity(step: Step) -> Tuple[str, str]:
    if step.id is not None:
        return (step.kind, str(step.id))
    if step.kind == "key-file":
        return (step.kind, os.path.realpath(step.target))
    return (step.kind, step.target.lstrip("/"))


def _gather(keys: Iterable[KeyLike], tmpdir: Optional[str], scan: bool, ignore: Iterable[str],
            qt_version: Union[str, Tuple[int, ...], None] = None) -> List[Step]:
    ignored = set(ignore)
    unknown = ignored - set(LEFTOVER_KINDS)
    if unknown:
        raise ValueError(f"unknown object kinds {sorted(unknown)}: use {', '.join(LEFTOVER_KINDS)}")
    refs: Dict[Tuple[str, str], KeyRef] = {}
    for key in keys:
        for ref in key_refs(key, tmpdir=tmpdir, qt_version=qt_version):
            refs.setdefault(ref.identity, ref)
    if tmpdir is not None and scan:
        for ref in tmpdir_refs(tmpdir):
            refs.setdefault(ref.identity, ref)
    machine = qinspect.Machine()
    seen: Dict[Tuple[str, str], Step] = {}
    for ref in refs.values():
        for step in _steps_of(qinspect.inspect_ref(ref, machine)):
            if step.kind not in ignored:
                seen.setdefault(_step_identity(step), step)
    steps = list(seen.values())
    steps.sort(key=lambda s: s.kind == "key-file")  # objects first, their key files after them
    return steps


def _as_keys(key: Union[KeyLike, Iterable[KeyLike]]) -> List[KeyLike]:
    if isinstance(key, (str, QNativeIpcKey, KeyRef)):
        return [key]
    return list(key)


def leftovers(key: Union[KeyLike, Iterable[KeyLike]], *, tmpdir: Optional[str] = None, scan: bool = False,
              ignore: Iterable[str] = (), qt_version: Union[str, Tuple[int, ...], None] = None) -> List[Step]:
    """Every OS object of ``key`` (or of several keys) that exists, in every family.

    ``tmpdir``: compute the names for that ``TMPDIR``; with ``scan``, also every legacy Qt key
    file in it (and its objects), for a directory that is the test's alone.  ``ignore``: kinds
    to leave out (see :data:`LEFTOVER_KINDS`).  Each object is a ``qshm clean``
    :class:`~qshm_compat.inspect.Step` whose ``name`` says what it is and whose ``reason`` gives
    the family and what ``qshm probe`` says about it.
    """
    return _gather(_as_keys(key), tmpdir, scan, ignore, qt_version)


def describe_leftovers(steps: Sequence[Step]) -> str:
    """The objects, indented under their key and family (with what ``qshm probe`` says)."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    for step in steps:
        groups.setdefault((step.key, step.reason), []).append(step.name)
    lines: List[str] = []
    for (key, reason), names in groups.items():
        lines.append(f"  key {key!r} ({reason})")
        lines.extend(f"    {name}" for name in names)
    return "\n".join(lines)


def assert_no_leftovers(key: Union[KeyLike, Iterable[KeyLike]], *, tmpdir: Optional[str] = None,
                        scan: bool = False, ignore: Iterable[str] = (),
                        qt_version: Union[str, Tuple[int, ...], None] = None) -> None:
    """Raise :class:`LeftoversError` (an ``AssertionError``) listing the objects ``key`` left.

    Qt never unlinks POSIX shared memory on Linux: for a program using a POSIX ``QNativeIpcKey``
    pass ``ignore=["posix-shm"]`` unless it unlinks the segment itself.
    """
    keys = _as_keys(key)
    found = _gather(keys, tmpdir, scan, ignore, qt_version)
    if found:
        shown = ", ".join(_show(k) for k in keys) or f"TMPDIR {tmpdir}"
        raise LeftoversError(f"{len(found)} IPC object(s) of {shown} left behind:\n{describe_leftovers(found)}",
                             found)


def remove_leftovers(key: Union[KeyLike, Iterable[KeyLike]], *, tmpdir: Optional[str] = None, scan: bool = False,
                     qt_version: Union[str, Tuple[int, ...], None] = None) -> Tuple[List[Step], List[str]]:
    """Remove every object of ``key`` (see :func:`leftovers`), used or not; (removed, errors).

    Meant for after a test, once its programs are gone: a System V segment still attached is
    marked for removal all the same (its key is freed at once; the memory goes with the last
    detach), and a semaphore is removed even if a process waits for it.
    """
    removed: List[Step] = []
    errors: List[str] = []
    for step in _gather(_as_keys(key), tmpdir, scan, (), qt_version):
        error = qinspect.apply_step(step)
        if error is not None and step.kind in ("sysv-segment", "sysv-semaphore") and step.id is not None:
            error = _force_remove(step)
        if error is None:
            removed.append(step)
        else:
            errors.append(error)
    return removed, errors


def _force_remove(step: Step) -> Optional[str]:
    """``apply_step`` leaves a used System V object alone; after a test we remove it anyway."""
    assert step.id is not None
    try:
        if step.kind == "sysv-segment":
            sysv.shm_remove(step.id, step.name)
        else:
            sysv.Semaphore(step.id, step.name).remove()
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM, errno.ENOENT):
            return None
        return f"{step.name}: {exc.strerror or exc}"
    return None


# ----- the program under test ------------------------------------------------------------------

#: Processes started here and not yet reaped, killed at interpreter exit if still running.
_running: Dict[int, "subprocess.Popen[str]"] = {}

_STREAMS = ("stdout", "stderr")
_SHOWN_LINES = 200


class QtProcess:
    """A program under test: started with captured output, killed by its process id.

    It runs in a session of its own, so :meth:`kill` also reaches the processes it started (a
    shell wrapper's child, say).  The environment is ours plus ``QT_QPA_PLATFORM=offscreen`` and
    ``PYTHONUNBUFFERED=1`` (unless set) plus ``env``; ``tmpdir`` becomes its ``TMPDIR``.
    """

    def __init__(
        self,
        argv: Sequence[Union[str, "os.PathLike[str]"]],
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Union[str, "os.PathLike[str]", None] = None,
        tmpdir: Union[str, "os.PathLike[str]", None] = None,
        stdin: bool = True,
    ) -> None:
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv is a list of arguments, not one string")
        self.argv = [os.fspath(a) for a in argv]
        full = dict(os.environ)
        full.setdefault("QT_QPA_PLATFORM", "offscreen")
        full.setdefault("PYTHONUNBUFFERED", "1")
        if tmpdir is not None:
            full["TMPDIR"] = os.fspath(tmpdir)
        if env:
            full.update(env)
        self.env = full
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.how_stopped = ""  # how stop() ended it: "exited", "terminated" or "killed"
        self._cond = threading.Condition()
        self._lines: Dict[str, List[str]] = {s: [] for s in _STREAMS}
        self._read: Dict[str, int] = {s: 0 for s in _STREAMS}
        self._eof: Dict[str, bool] = {s: False for s in _STREAMS}
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=full, cwd=self.cwd, start_new_session=True, text=True,
            encoding="utf-8", errors="replace", bufsize=1,
        )
        self.pid: int = self.proc.pid
        _running[self.pid] = self.proc
        self._threads = [threading.Thread(target=self._pump, args=(s,), daemon=True, name=f"qt_process {self.pid} {s}")
                         for s in _STREAMS]
        for thread in self._threads:
            thread.start()

    # -- output -----------------------------------------------------------------------------

    def _pump(self, stream: str) -> None:
        pipe = getattr(self.proc, stream)
        try:
            for line in pipe:
                with self._cond:
                    self._lines[stream].append(line.rstrip("\n"))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # closed under us
        with self._cond:
            self._eof[stream] = True
            self._cond.notify_all()

    def lines(self, stream: str = "stdout") -> List[str]:
        """Every line the program wrote on ``stream`` so far."""
        with self._cond:
            return list(self._lines[stream])

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines("stdout"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines("stderr"))

    def next_line(self, timeout: float = 10.0, stream: str = "stdout") -> str:
        """The next line not read yet (by this method or :meth:`wait_for_line`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._read[stream] < len(self._lines[stream]):
                    line = self._lines[stream][self._read[stream]]
                    self._read[stream] += 1
                    return line
                if self._eof[stream]:
                    raise ProgramExitedError(f"{self.name} closed its {stream} (exit status {self.status()})"
                                             f"\n{self.describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeoutError(f"{self.name} wrote no line on {stream} within {timeout:g} s"
                                           f"\n{self.describe()}")
                self._cond.wait(left)

    def wait_for_line(self, pattern: Union[str, Pattern[str]], timeout: float = 10.0,
                      stream: str = "stdout") -> "re.Match[str]":
        """Read lines until one matches ``pattern`` (``re.search``); return the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.next_line(max(deadline - time.monotonic(), 0.0), stream)
            except WaitTimeoutError:
                raise WaitTimeoutError(f"no line of {self.name}'s {stream} matched {regex.pattern!r} within "
                                       f"{timeout:g} s\n{self.describe()}") from None
            except ProgramExitedError:
                raise ProgramExitedError(f"{self.name} exited (status {self.status()}) before a line on {stream} "
                                         f"matched {regex.pattern!r}\n{self.describe()}") from None
            found = regex.search(line)
            if found:
                return found

    # -- input ------------------------------------------------------------------------------

    def send(self, data: Any) -> None:
        """Write a line on its stdin: a str as is, anything else as one JSON line."""
        text = data if isinstance(data, str) else json.dumps(data)
        if not text.endswith("\n"):
            text += "\n"
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            raise ProgramExitedError(f"{self.name}: its stdin is closed\n{self.describe()}")
        try:
            stdin.write(text)
            stdin.flush()
        except (BrokenPipeError, ValueError):
            raise ProgramExitedError(f"{self.name} no longer reads its stdin (status {self.status()})"
                                     f"\n{self.describe()}") from None

    def request(self, data: Any, timeout: float = 10.0) -> Any:
        """For JSON-lines programs: send ``data`` and return the next stdout line, decoded."""
        self.send(data)
        line = self.next_line(timeout)
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"{self.name} answered {data!r} with a line that is not JSON: {line!r}"
                                 f"\n{self.describe()}") from None

    def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    # -- waiting ----------------------------------------------------------------------------

    def wait_ready(
        self,
        ready: Union[str, Pattern[str], None] = None,
        ready_segment: Optional[KeyLike] = None,
        timeout: float = 30.0,
        stream: str = "stdout",
    ) -> None:
        """Wait for a line matching ``ready``, then for a segment of ``ready_segment`` to exist."""
        deadline = time.monotonic() + timeout
        if ready is not None:
            self.wait_for_line(ready, timeout, stream)
        if ready_segment is None:
            return
        refs = key_refs(ready_segment, env=self.env)
        while not any(qinspect.segment_exists(ref) for ref in refs):
            if self.proc.poll() is not None:
                raise ProgramExitedError(f"{self.name} exited (status {self.status()}) before a segment of key "
                                         f"{_show(ready_segment)} appeared\n{self.describe()}")
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"no segment of key {_show(ready_segment)} appeared within {timeout:g} s "
                                       f"(looked for: {_names(refs)})\n{self.describe()}")
            time.sleep(_POLL)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for it to exit; its exit status (negative: the signal that ended it)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeoutError(f"{self.name} did not exit within {timeout:g} s\n{self.describe()}") from None
        finally:
            self._reaped()

    # -- ending it --------------------------------------------------------------------------

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll()

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to its process group, by its id, while it has not been reaped."""
        if self.proc.poll() is None:
            # Not reaped, so the id is still ours (a zombie keeps it) and names its group.
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:  # it left its group and someone else's took the id: only it
                self.proc.send_signal(sig)

    def kill(self) -> int:
        """SIGKILL, as a crash: no destructor runs, so Qt's objects stay (see :func:`remove_leftovers`)."""
        self.signal(signal.SIGKILL)
        return self.wait(30.0)

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except WaitTimeoutError:
            return self.kill()

    def stop(self, grace: float = 5.0) -> int:
        """End it gently: end of input on stdin, then SIGTERM, then SIGKILL, ``grace`` s apart.

        ``how_stopped`` says which one did it.
        """
        if self.proc.poll() is None:
            self.close_stdin()
            try:
                status = self.wait(grace)
                self.how_stopped = "exited"
                return status
            except WaitTimeoutError:
                pass
            self.signal(signal.SIGTERM)
            try:
                status = self.wait(grace)
                self.how_stopped = "terminated"
                return status
            except WaitTimeoutError:
                pass
            self.how_stopped = "killed"
            return self.kill()
        self._reaped()
        return self.proc.returncode

    def close(self) -> None:
        """Kill it if it runs, and release the pipes (the output read stays available)."""
        if self.proc.poll() is None:
            self.kill()
        self._reaped()
        self.close_stdin()
        for thread in self._threads:
            thread.join(2.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    def _reaped(self) -> None:
        if self.proc.returncode is not None:
            _running.pop(self.pid, None)

    def __enter__(self) -> "QtProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reporting --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{os.path.basename(self.argv[0])} (pid {self.pid})"

    def status(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def describe(self, settle: float = 0.2) -> str:
        """Command line, ``TMPDIR``, exit status, and its stdout and stderr (the last 200 lines)."""
        if self.proc.poll() is not None:
            for thread in self._threads:  # an exited program's last lines are still in the pipe
                thread.join(settle)
        parts = [f"command: {shlex.join(self.argv)}",
                 f"pid {self.pid}, {self.status()}, TMPDIR={self.env.get('TMPDIR', '')}"]
        for stream in _STREAMS:
            lines = self.lines(stream)
            cut = lines[-_SHOWN_LINES:]
            more = f", first {len(lines) - len(cut)} not shown" if len(cut) < len(lines) else ""
            parts.append(f"--- {stream} ({len(lines)} lines{more}) ---")
            parts.extend(cut)
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<QtProcess {self.name} {self.status()}>"


def start_qt_process(
    argv: Sequence[Union[str, "os.PathLike[str]"]],
    *,
    ready: Union[str, Pattern[str], None] = None,
    ready_segment: Optional[KeyLike] = None,
    timeout: float = 30.0,
    ready_stream: str = "stdout",
    env: Optional[Mapping[str, str]] = None,
    cwd: Union[str, "os.PathLike[str]", None] = None,
    tmpdir: Union[str, "os.PathLike[str]", None] = None,
    stdin: bool = True,
) -> QtProcess:
    """Start a :class:`QtProcess` and wait for its ready condition (killed if it never comes)."""
    proc = QtProcess(argv, env=env, cwd=cwd, tmpdir=tmpdir, stdin=stdin)
    try:
        proc.wait_ready(ready, ready_segment, timeout, ready_stream)
    except BaseException:
        proc.close()
        raise
    return proc


def _kill_running() -> None:
    for pid, proc in list(_running.items()):
        if proc.poll() is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_running)


# ----- text ------------------------------------------------------------------------------------


def _show(key: Any) -> str:
    if isinstance(key, QNativeIpcKey):
        return repr(key.toString())
    if isinstance(key, KeyRef):
        return repr(key.shm_key)
    return repr(key)


def _show_shm(shm: QSharedMemory) -> str:
    return f"key {shm.key()!r}" if shm.key() else f"key {shm.nativeIpcKey().toString()!r}"


def _show_slice(part: slice, size: int) -> str:
    start, stop, _ = part.indices(size)
    return f"{start}..{stop}"


def _preview(data: bytes, limit: int = 32) -> str:
    text = data[:limit].hex(" ")
    return f"{text} …({len(data)} bytes)" if len(data) > limit else text or "(empty)"
