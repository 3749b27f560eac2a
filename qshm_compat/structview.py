"""Another program's C struct in its shared memory, as a typed Python object, under Qt's lock.

What every driver of a Qt program it did not write needs, beyond ``QSharedMemory`` itself:

* :class:`StructView`: a ``ctypes.Structure`` laid over the segment with no copy
  (``Structure.from_buffer`` over ``QSharedMemory.data()``); the struct's size is checked
  against the segment's when the view is made, field paths (``"params.nutc"``, ``"ipc[1]"``)
  resolve to offsets inside it, and reads, writes and waits take the segment's lock, as the Qt
  program does around its own accesses.
* :meth:`StructView.wait_for`: poll a field under the lock until it changes, or until a
  condition holds, with a deadline (built on :func:`qshm_compat.testing.wait_for_change`).
* :func:`create_or_take_over`: ``create()``, and when a crashed run left a stale segment of the
  key (nobody attached, its creator gone), remove it the way ``qshm clean KEY`` would (the same
  facts and the same rules: :mod:`qshm_compat.inspect`) and create again.  A live segment is
  never touched.

ctypes lays a Structure out as the platform's C compiler does (natural alignment, ``c_bool``
one byte), which is what a C or C++ Qt program with default packing shares.  numpy is optional:
:meth:`StructView.array` gives a zero-copy ``ndarray`` over an array field.
"""

from __future__ import annotations

import ctypes
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from . import inspect as qinspect
from .errors import AccessMode, SharedMemoryError
from .exceptions import QshmError
from .keys import QNativeIpcKey
from .sharedmemory import QSharedMemory

__all__ = ["StructView", "Field", "SegmentInUseError", "create_or_take_over"]

S = TypeVar("S", bound=ctypes.Structure)

_PATH_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class SegmentInUseError(QshmError, FileExistsError):
    """A segment of the key exists and is not provably stale: it was left alone."""


@dataclass(frozen=True)
class Field:
    """Where a field is: ``offset`` bytes from the start of the segment, ``size`` bytes, its ctypes type."""

    path: str
    offset: int
    size: int
    ctype: Any

    def decode(self, raw: bytes) -> Any:
        """The Python value of the field's bytes: int/float/bool/bytes, a list, or a Structure copy."""
        value = self.ctype.from_buffer_copy(raw)
        return _python_value(value)


def _python_value(value: Any) -> Any:
    if isinstance(value, ctypes.Array):
        if getattr(value, "_type_", None) is ctypes.c_char:
            return bytes(value)  # the whole array, NULs included: C strings here are fixed-width
        return [_python_value(item) for item in value]
    if isinstance(value, ctypes._SimpleCData):
        return value.value
    return value  # a Structure (a copy) or a plain Python value from an array of simple types


def _resolve(struct: Any, path: str) -> Tuple[int, Any]:
    """The offset of ``path`` inside ``struct`` and the field's ctypes type."""
    offset, ctype, pos = 0, struct, 0
    if not path:
        raise ValueError("an empty field path")
    for match in _PATH_PART.finditer(path):
        if match.start() != pos:
            break
        pos = match.end()
        name, index = match.groups()
        if name is not None:
            fields = dict((f[0], f[1]) for f in getattr(ctype, "_fields_", ()))
            if name not in fields:
                raise KeyError(f"{ctype.__name__} has no field {name!r} (in path {path!r})")
            offset += getattr(ctype, name).offset
            ctype = fields[name]
        else:
            length = getattr(ctype, "_length_", None)
            if length is None:
                raise TypeError(f"{path!r}: {ctype.__name__} is not an array")
            i = int(index)
            if i >= length:
                raise IndexError(f"{path!r}: index {i} out of range for an array of {length}")
            ctype = ctype._type_
            offset += i * ctypes.sizeof(ctype)
    if pos != len(path):
        raise ValueError(f"cannot parse field path {path!r} at {path[pos:]!r}")
    return offset, ctype


class StructView(Generic[S]):
    """A ``ctypes.Structure`` over a ``QSharedMemory`` segment, no copy.

    ``StructView(shm, MyStruct, offset=0)`` needs ``shm`` attached and ``offset +
    sizeof(MyStruct)`` bytes in it (``exact=True``: exactly that many, as when the program
    creates the segment with ``sizeof`` its struct); otherwise ``ValueError`` naming the key,
    both sizes and the native key.  ``view.fields`` is the struct itself, living in the segment
    (writes go straight to the other program); access it inside ``with view.locked():`` as the
    Qt program takes ``lock()`` around its own accesses.  Close the view (or use it in ``with``)
    before the segment is detached: ``detach()`` otherwise keeps a private copy of the pages
    under the view instead of unmapping them.
    """

    def __init__(self, shm: QSharedMemory, struct: Type[S], offset: int = 0, *, exact: bool = False):
        if not (isinstance(struct, type) and issubclass(struct, ctypes.Structure)):
            raise TypeError(f"struct must be a ctypes.Structure subclass, not {struct!r}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        data = shm.data()
        if data is None:
            raise ValueError(f"{_describe(shm)} is not attached")
        need = offset + ctypes.sizeof(struct)
        have = shm.size()
        if (exact and have != need) or have < need:
            rule = "exactly" if exact else "at least"
            raise ValueError(
                f"{_describe(shm)} is {have} bytes; {struct.__name__} at offset {offset} needs {rule} "
                f"{need} (sizeof {ctypes.sizeof(struct)}): another program, or another version of it, "
                f"made this segment")
        if data.readonly:
            raise ValueError(f"{_describe(shm)} is attached read-only; a StructView needs ReadWrite "
                             "(use snapshot bytes and Field.decode to read a read-only segment)")
        self.shm = shm
        self.struct = struct
        self.offset = offset
        self._fields: Optional[S] = struct.from_buffer(data, offset)

    # -- the struct -------------------------------------------------------------------------

    @property
    def fields(self) -> S:
        """The struct in the segment (no copy).  Hold the lock while using it."""
        if self._fields is None:
            raise ValueError(f"the StructView of {_describe(self.shm)} is closed")
        return self._fields

    def field(self, path: str) -> Field:
        """Where ``path`` (``"params.nutc"``, ``"ipc[1]"``, ``"d2"``) is in the segment."""
        offset, ctype = _resolve(self.struct, path)
        return Field(path, self.offset + offset, ctypes.sizeof(ctype), ctype)

    def buffer(self, path: str) -> memoryview:
        """A writable ``memoryview`` of the bytes of field ``path`` (no copy; hold the lock)."""
        f = self.field(path)
        data = self.shm.data()
        if data is None:
            raise ValueError(f"{_describe(self.shm)} is not attached")
        return data[f.offset:f.offset + f.size]

    def array(self, path: str) -> Any:
        """A zero-copy ``numpy.ndarray`` over array field ``path`` (needs numpy; hold the lock)."""
        import numpy

        offset, ctype = _resolve(self.struct, path)
        if getattr(ctype, "_length_", None) is None:
            raise TypeError(f"{path!r} is a {ctype.__name__}, not an array")
        return numpy.ctypeslib.as_array(ctype.from_buffer(self.fields, offset))

    # -- under the lock ---------------------------------------------------------------------

    @contextmanager
    def locked(self, timeout: Optional[float] = 5.0) -> Iterator[S]:
        """``with view.locked(timeout=5) as s:`` the struct, under the segment's lock.

        Raises ``LockTimeoutError`` (a ``TimeoutError``) when the lock is not had in time.
        """
        with self.shm.locked(timeout=timeout):
            yield self.fields

    def get(self, path: str, timeout: Optional[float] = 5.0) -> Any:
        """The value of field ``path``, read under the lock (see :meth:`Field.decode`)."""
        f = self.field(path)
        with self.shm.locked(timeout=timeout):
            raw = bytes(self.buffer(path))
        return f.decode(raw)

    def set(self, values: Mapping[str, Any], timeout: Optional[float] = 5.0) -> None:
        """Write ``{path: value}`` under one taking of the lock, in the order given."""
        targets = [(self._parent(path), value) for path, value in values.items()]
        with self.shm.locked(timeout=timeout):
            for (obj, last), value in targets:
                if isinstance(last, int):
                    obj[last] = value
                else:
                    setattr(obj, last, value)

    def _parent(self, path: str) -> Tuple[Any, Union[str, int]]:
        self.field(path)  # validates the whole path first
        obj: Any = self.fields
        parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(path)]
        for name, index in parts[:-1]:
            obj = getattr(obj, name) if name is not None else obj[int(index)]
        name, index = parts[-1]
        return obj, (name if name is not None else int(index))

    def wait_for(
        self,
        path: str,
        until: Optional[Callable[[Any], bool]] = None,
        timeout: float = 10.0,
        *,
        check: Optional[Callable[[], None]] = None,
        interval: float = 0.01,
    ) -> Any:
        """Wait until field ``path`` changes (``until`` None) or ``until(value)`` is true; its value.

        Polls under the segment's lock (:func:`qshm_compat.testing.wait_for_change`).  ``check``
        runs between polls and may raise, e.g. when the other program died.  Raises
        :class:`qshm_compat.testing.WaitTimeoutError` (a ``TimeoutError``) naming the field, the
        key and the last value seen.
        """
        from .testing import WaitTimeoutError, wait_for_change

        f = self.field(path)
        deadline = time.monotonic() + timeout
        with self.shm.locked(timeout=timeout):
            seen = bytes(self.buffer(path))
        start = f.decode(seen)
        if until is not None and until(start):
            return start
        while True:
            if check is not None:
                check()
            left = deadline - time.monotonic()
            if left <= 0:
                want = "to change" if until is None else "to meet the condition"
                raise WaitTimeoutError(f"field {path} of {_describe(self.shm)} did not come {want} within "
                                       f"{timeout:g} s (still {f.decode(seen)!r})")
            try:
                seen = wait_for_change(self.shm, min(left, 0.2), region=(f.offset, f.size),
                                       baseline=seen, interval=interval)
            except WaitTimeoutError:
                continue  # nothing yet: check again, until the deadline
            value = f.decode(seen)
            if until is None or until(value):
                return value

    # -- life -------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the view of the segment (before ``detach()``, so that it can unmap)."""
        self._fields = None

    def __enter__(self) -> StructView[S]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fields is None else f"{self.shm.size()} bytes"
        return f"<StructView {self.struct.__name__} at {self.offset} of {_describe(self.shm)}, {state}>"


def _describe(shm: QSharedMemory) -> str:
    key = shm.key()
    native = shm.nativeKey()
    return f"segment of key {key!r} ({native})" if key else f"segment {native!r}"


# ----- a crashed run's segment ---------------------------------------------------------------


def create_or_take_over(
    key: Union[str, QNativeIpcKey],
    size: int,
    *,
    mode: AccessMode = AccessMode.ReadWrite,
    timeout: float = 5.0,
    qt_version: Union[str, Tuple[int, ...], None] = None,
) -> QSharedMemory:
    """``QSharedMemory(key).create(size)``; a stale segment of a crashed run is removed first.

    When ``create()`` fails with AlreadyExists, the key's objects are looked at as ``qshm probe
    KEY`` does.  If the segment is stale (nobody attached, its creator gone) it is removed, with
    its lock semaphore and key files, by the rules of ``qshm clean KEY``, and ``create()`` runs
    again.  Anything else (a process attached, a creator still running, another user's object)
    raises :class:`SegmentInUseError` saying who uses it; nothing is touched.  Other failures
    raise ``IpcError`` with Qt's ``errorString()``.  Returns the attached ``QSharedMemory``.
    """
    from .exceptions import IpcError
    from .testing import key_refs

    shm = QSharedMemory(key, qt_version=qt_version)
    if shm.create(size, mode, timeout=timeout):
        return shm
    if shm.error() != SharedMemoryError.AlreadyExists:
        message = shm.errorString()
        shm.close()
        raise IpcError(f"create({size}) of key {_show_key(key)}: {message}")
    refs = key_refs(key, qt_version=qt_version)
    machine = qinspect.Machine()
    rows = [qinspect.inspect_ref(ref, machine) for ref in refs]
    target = shm.nativeKey()
    rows = [row for row in rows if row.segment.exists and row.ref.shm().nativeKey() == target]
    steps = qinspect.plan_clean(rows, min_age=0.0)  # never plans for a live key: it is kept whole
    kept = [f"{row.verdict}: {row.reason}" for row in rows if row.verdict == "live"]
    kept += [f"{s.name}: {s.reason}" for s in steps if s.action == "keep" and s.kind in ("sysv-segment", "posix-shm")]
    if kept or not rows:
        why = "; ".join(kept) or "it is no longer there to look at"
        shm.close()
        raise SegmentInUseError(f"a segment of key {_show_key(key)} ({target}) already exists and is not stale: "
                                f"{why}; it was left alone")
    errors: List[str] = []
    for step in steps:
        if step.action == "remove":
            error = qinspect.apply_step(step)
            if error:
                errors.append(error)
    if errors:
        shm.close()
        raise SegmentInUseError(f"taking over the stale segment of key {_show_key(key)} failed: "
                                + "; ".join(errors))
    if shm.create(size, mode, timeout=timeout):
        return shm
    message = shm.errorString()
    shm.close()
    raise IpcError(f"create({size}) of key {_show_key(key)} after removing its stale segment: {message}")


def _show_key(key: Union[str, QNativeIpcKey]) -> str:
    return repr(key.toString()) if isinstance(key, QNativeIpcKey) else repr(key)
