"""Which Qt shared memory objects exist on this machine, and what the OS says about them.

The logic behind ``qshm key``, ``probe``, ``ls``, ``clean`` and ``unlock``, kept free of printing
so that a test plugin can reuse it.  There is one model:

* a :class:`KeyRef` is one Qt key in one key family: the ``QNativeIpcKey`` of the segment and of
  its lock semaphore (as ``toString()`` strings), and the plain Qt key when it is known;
* :func:`inspect_ref` looks the objects up and returns a :class:`QtKey`: the :class:`Segment`,
  the :class:`Lock`, the :class:`KeyFile` s, and a verdict (``live``, ``stale``, ``broken`` or
  ``absent``) with its reason;
* :func:`refs_for_key` gives the refs of every family Qt can use for a plain key (probe),
  :func:`discover` the refs of every Qt object on the machine (ls), and :func:`plan_clean` the
  steps that remove only what is provably dead (clean), which :func:`apply_step` carries out.

Where the facts come from, on Linux: ``/proc/sysvipc/shm`` and ``/proc/sysvipc/sem`` (every
System V object whoever owns it: size, attach count, creator and last pids, owner); ``semctl``
``GETVAL``/``GETPID``/``GETNCNT`` (a lock's count, the last process that operated on it, and its
waiters: when the count is 0 the last operation was the take, so System V names the holder);
``/dev/shm`` (glibc keeps ``shm_open("/x")`` as ``/dev/shm/x`` and ``sem_open("/x")`` as
``/dev/shm/sem.x``); and ``/proc/<pid>/maps``, the only way to learn which processes use a POSIX
object, since POSIX keeps no attach count and a semaphore tells nothing but its value.  Without
``/proc/sysvipc`` (not Linux) the System V facts of the keys asked about come from
``shmctl``/``semctl`` ``IPC_STAT`` and nothing is enumerated.

What Qt makes for a key, and when it removes it, follows the project's spec (``qt-ipc.md`` §2,
§4, §5, §8; ``qt-observed.md`` §1, §2, §4; Qt 5.15.8 to 6.12.0): the last System V detach
removes the segment and its key file, a lock's creator removes the lock, Qt never unlinks POSIX
shared memory on Linux, and a System V lock is given back when its holder dies (``SEM_UNDO``)
while a POSIX one stays taken.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import signal
import stat
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from . import keys, posix, sysv
from .keys import SEM_PREFIX, SHM_PREFIX, KeyContext, QNativeIpcKey

__all__ = [
    "LEGACY_SYSV", "LEGACY_POSIX", "POSIX", "SYSV", "ORPHAN", "FAMILY_LABELS", "KEY_FILE_MIN_AGE",
    "KeyRef", "Pid", "KeyFile", "Segment", "Lock", "QtKey", "NativeName", "Step", "Machine",
    "parse_type", "ipc_key_string", "parse_key_argument", "refs_for_key", "ref_for_ipc_key", "name_of_ref", "native_names",
    "inspect_ref", "segment_exists", "discover", "plan_clean", "apply_step",
]

_T = QNativeIpcKey.Type

#: Key families, as they appear in ``KeyRef.family`` and in ``--json`` output.
LEGACY_SYSV = "legacy-sysv"
LEGACY_POSIX = "legacy-posix"
POSIX = "posix"
SYSV = "sysv"
ORPHAN = "orphan"

FAMILY_LABELS = {
    LEGACY_SYSV: "legacy System V",
    LEGACY_POSIX: "legacy POSIX",
    POSIX: "POSIX",
    SYSV: "System V",
    ORPHAN: "System V, key file not found",
}

#: A key file younger than this (seconds) whose object is missing is left alone: a Qt program
#: may be between making the file and making its segment or semaphore.
KEY_FILE_MIN_AGE = 5.0

#: An unset System V lock (count 0, never used) younger than this (seconds, ``sem_ctime``) is left
#: alone: its creator may be between its ``semget`` and its ``SETVAL``.
UNSET_MIN_AGE = 2.0

DEV_SHM = "/dev/shm"
PROC_SYSVIPC = "/proc/sysvipc"
#: How many files of a directory are tried as the key file of an unclaimed System V object.
_MAX_FILES_TRIED = 5000

Progress = Optional[Callable[[str], None]]


# ----- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRef:
    """One Qt key in one key family: the names Qt uses for the segment and its lock."""

    family: str
    api: str  # how a Qt program comes to use these names, e.g. "QSharedMemory(key)"
    shm_key: str  # QNativeIpcKey::toString() of the segment ("" for an orphan)
    lock_key: Optional[str]  # the same for the lock semaphore; None when there is none
    key: Optional[str] = None  # the plain Qt key, when known
    orphan_key: Optional[int] = None  # ORPHAN: the System V key of objects whose key file is gone

    def shm(self) -> QNativeIpcKey:
        return QNativeIpcKey.fromString(self.shm_key)

    def lock(self) -> Optional[QNativeIpcKey]:
        return None if self.lock_key is None else QNativeIpcKey.fromString(self.lock_key)

    @property
    def label(self) -> str:
        """A short name for tables: the plain key, else the native name."""
        if self.key is not None:
            return self.key
        if self.family == ORPHAN:
            return _hex(self.orphan_key)
        native = self.shm().nativeKey()
        base = native.rpartition("/")[2]
        if base.startswith(SHM_PREFIX) and len(base) >= len(SHM_PREFIX) + 40:
            return base[:-32] + "…"  # the prefix, the key's letters and 8 hex digits of its SHA-1
        return native

    @property
    def identity(self) -> Tuple[str, str]:
        """What names the same OS objects (POSIX "/x" and "x" are one object)."""
        if self.family == ORPHAN:
            return ("orphan", _hex(self.orphan_key))
        shm = self.shm()
        if shm.type() == _T.PosixRealtime:
            return ("posix", shm.nativeKey().lstrip("/"))
        return (f"sysv-{int(shm.type())}", os.path.normpath(os.path.join(os.getcwd(), shm.nativeKey())))


@dataclass(frozen=True)
class Pid:
    """A process id and whether that process is running (None: unknown, e.g. pid 0)."""

    pid: int
    alive: Optional[bool]


@dataclass(frozen=True)
class KeyFile:
    """A System V key file, and which of the key's objects ``ftok`` finds through it."""

    path: str
    role: str  # "segment", "lock" or "segment+lock"
    exists: bool
    uid: Optional[int] = None
    owner: Optional[str] = None
    age: Optional[float] = None  # seconds since it was last modified
    ipc_key: Optional[str] = None  # ftok(path, project id), as ipcs shows it


@dataclass(frozen=True)
class Segment:
    """The shared memory object of a key, and what the OS says about it."""

    backend: str  # "sysv" or "posix"
    name: str  # key file path (System V), shm_open name (POSIX), "" for an orphan
    exists: bool
    id: Optional[int] = None  # shmid
    ipc_key: Optional[str] = None
    path: Optional[str] = None  # /dev/shm/... (POSIX)
    size: Optional[int] = None
    attached: Optional[int] = None  # System V nattch; POSIX: processes seen mapping it
    attached_pids: Tuple[int, ...] = ()  # POSIX only: System V does not say who is attached
    unseen: Optional[bool] = None  # POSIX: used by a process whose mappings cannot be read? (None: unknown)
    uid: Optional[int] = None
    owner: Optional[str] = None
    mode: Optional[int] = None
    creator: Optional[Pid] = None  # System V shm_cpid
    last: Optional[Pid] = None  # System V shm_lpid: the last shmat/shmdt
    note: str = ""  # why a fact is missing


@dataclass(frozen=True)
class Lock:
    """The lock semaphore of a key.  ``state``: free, held, no-exclusion, unknown or absent, and
    on System V unset: count 0 and no process ever set or operated on it (its creator died
    between ``semget`` and ``SETVAL``, or Qt made it in a race), so nobody holds it."""

    backend: str
    name: str
    exists: bool
    id: Optional[int] = None  # semid
    ipc_key: Optional[str] = None
    path: Optional[str] = None
    value: Optional[int] = None
    state: str = "absent"
    holder: Optional[Pid] = None  # System V: the process that took it
    last: Optional[Pid] = None  # System V GETPID: the last process that operated on it
    waiters: Optional[int] = None  # System V GETNCNT
    users: Tuple[int, ...] = ()  # POSIX: processes seen having it open
    unseen: Optional[bool] = None  # POSIX: open in a process whose mappings cannot be read?
    uid: Optional[int] = None
    owner: Optional[str] = None
    mode: Optional[int] = None
    age: Optional[float] = None  # System V: seconds since it was made or last set (sem_ctime)
    note: str = ""


@dataclass(frozen=True)
class QtKey:
    """A Qt key in one family, its objects, their facts, and the verdict on them."""

    ref: KeyRef
    segment: Segment
    lock: Optional[Lock]
    key_files: Tuple[KeyFile, ...]
    verdict: str  # "live", "stale", "broken" or "absent"
    reason: str

    @property
    def exists(self) -> bool:
        return self.verdict != "absent"


@dataclass(frozen=True)
class NativeName:
    """One native name Qt would use for a key: what ``qshm key`` lists."""

    platform: str  # "unix" (this machine), "macos" or "windows"
    family: str
    api: str
    shm: str  # native key of the segment
    lock: str  # native key of its lock semaphore ("" when Qt takes none)
    to_string: str  # QNativeIpcKey::toString() of the segment key ("" before Qt 6.6 only)
    objects: Tuple[str, ...]  # the OS objects these names become


@dataclass(frozen=True)
class Step:
    """One thing ``clean`` removes (``action == "remove"``) or leaves (``"keep"``), and why."""

    action: str
    kind: str  # "sysv-segment", "sysv-semaphore", "posix-shm", "posix-semaphore", "key-file"
    name: str  # the object, for people
    reason: str
    key: str  # the label of the key it belongs to
    target: str  # what apply_step acts on: a path or a POSIX name ("" for System V ids)
    id: Optional[int] = None  # shmid or semid


# ----- small helpers ---------------------------------------------------------------------------


def _hex(key: Optional[int]) -> str:
    return "" if key is None else f"0x{key & 0xFFFFFFFF:08x}"


def _signed(key: int) -> int:
    """A 32-bit System V key as the C ``key_t`` (an int) holds it."""
    key &= 0xFFFFFFFF
    return key - (1 << 32) if key >= 1 << 31 else key


def _owner(uid: Optional[int]) -> Optional[str]:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _dev_shm_name(name: str) -> Optional[str]:
    """glibc's file name for a POSIX name: leading slashes dropped; None if glibc rejects it."""
    stripped = name.lstrip("/")
    if not stripped or "/" in stripped or stripped in (".", ".."):
        return None
    return stripped


def _swap_prefix(path: str, old: str, new: str) -> Optional[str]:
    """``<dir>/<old><rest>`` -> ``<dir>/<new><rest>``; None if the base name lacks ``old``."""
    head, _, base = path.rpartition("/")
    if not base.startswith(old):
        return None
    return (head + "/" if _ else "") + new + base[len(old):]


def parse_type(text: str) -> int:
    """A key type as ``--type`` takes it: systemv, posix, windows, systemv-N or a number."""
    value = text.strip().lower()
    named = {"systemv": _T.SystemV, "sysv": _T.SystemV, "posix": _T.PosixRealtime, "windows": _T.Windows}
    if value in named:
        return int(named[value])
    if value.startswith("systemv-"):
        value = value[len("systemv-"):]
    try:
        number = int(value, 0)
    except ValueError:
        raise ValueError(f"not a key type: {text!r} (systemv, posix, windows, systemv-N or a number)") from None
    if not (1 <= number <= 0xFF or number in (_T.PosixRealtime, _T.Windows)):
        raise ValueError(f"not a key type: {text!r} (System V ids are 1..255)")
    return number


# ----- from a key to its names -----------------------------------------------------------------


def _runtime_dir(ctx: KeyContext) -> str:
    """RuntimeLocation as :func:`keys.runtime_dir` gives it, without making a directory.

    Qt creates ``$XDG_RUNTIME_DIR`` or ``<temp>/runtime-<user>`` when it is missing; a tool that
    only looks must not, and a key file cannot be in a directory that does not exist anyway.
    """
    if ctx.is_windows or ctx.is_darwin:
        return keys.runtime_dir(ctx)
    xdg = ctx.getenv("XDG_RUNTIME_DIR")
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = ""
    fallback = f"{keys.temp_path(ctx)}/runtime-{user}"
    if xdg.startswith("/"):
        if not os.path.isdir(xdg):
            return xdg
    elif not os.path.isdir(fallback):
        return fallback
    return keys.runtime_dir(ctx)


def _native_ctx(ctx: KeyContext) -> KeyContext:
    """A QNativeIpcKey only exists from Qt 6.6 on: mirror at least 6.6.1 for its lock."""
    if ctx.qt_version >= (6, 6, 0):
        return ctx
    return KeyContext(platform=ctx.platform, qt_version=(6, 6, 1), environ=ctx.environ,
                      sandboxed=ctx.sandboxed, posix_ipc_build=ctx.posix_ipc_build, cwd=ctx.cwd)


def ref_for_ipc_key(ipc_key: QNativeIpcKey, ctx: Optional[KeyContext] = None, api: str = "") -> KeyRef:
    """The ref of a ``QNativeIpcKey`` (from ``toString()`` or ``--native``), and its lock.

    A key carrying a legacy key locks ``qipc_systemsem_…`` of it.  A legacy-shaped native name
    without one (``…/qipc_sharedmemory_<x>``) is shown with the lock legacy-key programs take,
    ``qipc_systemsem_<x>``; any other native key locks itself (Qt 6.6+).
    """
    ctx = ctx or KeyContext()
    is_posix = ipc_key.type() == _T.PosixRealtime
    native = ipc_key.nativeKey()
    partner = _swap_prefix(native, SHM_PREFIX, SEM_PREFIX)
    lock: Optional[QNativeIpcKey]
    if ipc_key.legacyKey():
        lock = keys.lock_semaphore_key(ipc_key, ctx)
        family = LEGACY_POSIX if is_posix else LEGACY_SYSV
    elif partner is not None:
        lock = QNativeIpcKey(partner, ipc_key.type())
        family = LEGACY_POSIX if is_posix else LEGACY_SYSV
    else:
        lock = keys.lock_semaphore_key(ipc_key, _native_ctx(ctx))
        family = POSIX if is_posix else SYSV
    return KeyRef(
        family=family,
        api=api or f"QNativeIpcKey::fromString({ipc_key.toString()!r})",
        shm_key=ipc_key.toString(),
        lock_key=None if lock is None else lock.toString(),
        key=ipc_key.legacyKey() or None,
    )


def refs_for_key(key: str, ctx: Optional[KeyContext] = None, types: Optional[Iterable[int]] = None) -> List[KeyRef]:
    """The refs of every family a Qt program can use for the plain key ``key`` on this OS.

    ``types`` limits them to those key types (default: System V ``'Q'`` and POSIX).  Families
    that name the same objects are merged, their APIs joined.
    """
    ctx = ctx or KeyContext()
    wanted = list(types) if types is not None else [int(_T.SystemV), int(_T.PosixRealtime)]
    candidates: List[Tuple[str, QNativeIpcKey]] = []
    # Most used first: Qt 5 / legacy keys, then the Qt >= 6.6 default (POSIX), then the rest.
    for t in wanted:
        if t not in (_T.PosixRealtime, _T.Windows):
            name = "SystemV" if t == _T.SystemV else f"Type({t})"
            api = "QSharedMemory(key) / legacyNativeKey(key, SystemV)" if t == _T.SystemV else f"legacyNativeKey(key, {name})"
            candidates.append((api, keys.make_legacy_native_key(key, "shm", t, ctx)))
    if _T.PosixRealtime in wanted:
        candidates.append(("QNativeIpcKey(key) / platformSafeKey(key), Qt >= 6.6", QNativeIpcKey(key, _T.PosixRealtime)))
        candidates.append(("legacyNativeKey(key, PosixRealtime) / QT_POSIX_IPC builds",
                           keys.make_legacy_native_key(key, "shm", _T.PosixRealtime, ctx)))
    for t in wanted:
        if t not in (_T.PosixRealtime, _T.Windows):
            name = "SystemV" if t == _T.SystemV else f"Type({t})"
            runtime = key if key.startswith("/") else f"{_runtime_dir(ctx)}/{key}"
            candidates.append((f"platformSafeKey(key, {name}), Qt >= 6.6", QNativeIpcKey(runtime, t)))
            if not key.startswith("/"):
                candidates.append((f"QNativeIpcKey(key, {name}) (relative to the current directory)",
                                   QNativeIpcKey(key, t)))
    refs: Dict[Tuple[str, str], KeyRef] = {}
    for api, ipc_key in candidates:
        if ipc_key.isEmpty():
            continue
        ref = ref_for_ipc_key(ipc_key, ctx, api)
        ref = KeyRef(ref.family, ref.api, ref.shm_key, ref.lock_key, key)
        seen = refs.get(ref.identity)
        if seen is None:
            refs[ref.identity] = ref
        elif api not in seen.api:
            refs[ref.identity] = KeyRef(seen.family, f"{seen.api}; {api}", seen.shm_key, seen.lock_key, key)
    return list(refs.values())


def ipc_key_string(text: str) -> Optional[QNativeIpcKey]:
    """``text`` as a ``QNativeIpcKey::toString()`` string, or None when it reads as a plain key."""
    parsed = QNativeIpcKey.fromString(text)
    return parsed if parsed.isValid() and not parsed.isEmpty() else None


def parse_key_argument(
    text: Optional[str],
    *,
    native: Optional[str] = None,
    type: Optional[int] = None,
    plain: bool = False,
    ctx: Optional[KeyContext] = None,
) -> List[KeyRef]:
    """What a KEY argument means: a plain Qt key (every family), a ``QNativeIpcKey::toString()``
    string, or ``native`` + ``type``.  Raises ``ValueError`` for an empty or invalid key."""
    ctx = ctx or KeyContext()
    if native is not None:
        if not native:
            raise ValueError("the native key is empty")
        ipc_key = QNativeIpcKey(native, QNativeIpcKey.DefaultTypeForOs if type is None else type)
        return [ref_for_ipc_key(ipc_key, ctx, f"QNativeIpcKey({native!r}, {ipc_key.type().name})")]
    if not text:
        raise ValueError("the key is empty (Qt refuses an empty key)")
    parsed = None if plain else ipc_key_string(text)
    if parsed is not None:
        if type is not None and parsed.type() != type:
            raise ValueError(f"{text!r} is a {parsed.type().name} key, not of --type {type}")
        return [ref_for_ipc_key(parsed, ctx)]
    return refs_for_key(text, ctx, None if type is None else [type])


def _objects_of(ipc_key: QNativeIpcKey, lock: Optional[QNativeIpcKey], platform: str) -> Tuple[str, ...]:
    out: List[str] = []
    t = ipc_key.type()
    if platform == "windows":
        out.append(f"file mapping {ipc_key.nativeKey()}")
        if lock is not None:
            out.append(f"semaphore {lock.nativeKey()}")
        return tuple(out)
    if t == _T.PosixRealtime:
        dev = platform == "unix" and os.path.isdir(DEV_SHM)
        shm_file = _dev_shm_name(ipc_key.nativeKey())
        out.append(f"{DEV_SHM}/{shm_file}" if dev and shm_file else f"shm_open({ipc_key.nativeKey()!r})")
        if lock is not None:
            sem_file = _dev_shm_name(lock.nativeKey())
            out.append(f"{DEV_SHM}/sem.{sem_file}" if dev and sem_file else f"sem_open({lock.nativeKey()!r})")
        return tuple(out)
    proj = "'Q'" if t == _T.SystemV else str(int(t))
    out.append(f"shmget(ftok({ipc_key.nativeKey()}, {proj}))")
    if lock is not None:
        out.append(f"semget(ftok({lock.nativeKey()}, {proj}))")
    return tuple(out)


def name_of_ref(ref: KeyRef) -> NativeName:
    """The names of one key in one family, on this machine."""
    shm, lock = ref.shm(), ref.lock()
    return NativeName("unix", ref.family, ref.api, shm.nativeKey(), "" if lock is None else lock.nativeKey(),
                      ref.shm_key, _objects_of(shm, lock, "unix"))


def native_names(key: str, ctx: Optional[KeyContext] = None, type: Optional[int] = None) -> List[NativeName]:
    """Every native name Qt uses for the plain key ``key``: this machine's families, then the
    macOS and Windows names (from Qt's source; not run there)."""
    ctx = ctx or KeyContext()
    names = [name_of_ref(ref) for ref in refs_for_key(key, ctx, None if type is None else [type])]
    # Qt 6.9.2 stopped resolving symlinks in the temp dir (spec §2.2): show the other spelling.
    if type in (None, _T.SystemV):
        other = (6, 9, 2) if ctx.qt_version < (6, 9, 2) else (6, 9, 1)
        other_ctx = KeyContext(platform=ctx.platform, qt_version=other, environ=ctx.environ, cwd=ctx.cwd)
        shm = keys.make_legacy_native_key(key, "shm", _T.SystemV, other_ctx)
        if shm.nativeKey() != keys.make_legacy_native_key(key, "shm", _T.SystemV, ctx).nativeKey():
            lock = keys.make_legacy_native_key(key, "sem", _T.SystemV, other_ctx)
            when = "Qt >= 6.9.2" if other >= (6, 9, 2) else "Qt <= 6.9.1"
            names.append(NativeName("unix", LEGACY_SYSV, f"QSharedMemory(key), temp dir as {when} spells it",
                                    shm.nativeKey(), lock.nativeKey(), shm.toString(),
                                    _objects_of(shm, lock, "unix")))
    mac = KeyContext(platform="darwin", qt_version=max(ctx.qt_version, (6, 6, 1)), environ={"HOME": "~"})
    win = KeyContext(platform="win32", qt_version=max(ctx.qt_version, (6, 6, 1)), environ={})
    base = keys.legacy_platform_safe_key(key, SHM_PREFIX, _T.Windows, win)
    sem_base = keys.legacy_platform_safe_key(key, SEM_PREFIX, _T.Windows, win)
    if type in (None, _T.SystemV):
        shm = QNativeIpcKey(f"$TMPDIR/{base}", _T.SystemV)
        lock = QNativeIpcKey(f"$TMPDIR/{sem_base}", _T.SystemV)
        names.append(NativeName("macos", LEGACY_SYSV, "QSharedMemory(key) (default desktop build)",
                                shm.nativeKey(), lock.nativeKey(), "", _objects_of(shm, lock, "macos")))
    if type in (None, _T.PosixRealtime):
        legacy = keys.make_legacy_native_key(key, "shm", _T.PosixRealtime, mac)
        legacy_lock = keys.make_legacy_native_key(key, "sem", _T.PosixRealtime, mac)
        names.append(NativeName("macos", LEGACY_POSIX, "QSharedMemory(key), QT_POSIX_IPC builds, Qt >= 6.4",
                                legacy.nativeKey(), legacy_lock.nativeKey(), legacy.toString(),
                                _objects_of(legacy, legacy_lock, "macos")))
        safe = keys.make_platform_safe_key(key, "shm", _T.PosixRealtime, mac)
        names.append(NativeName("macos", POSIX, "platformSafeKey(key), Qt >= 6.6", safe.nativeKey(),
                                safe.nativeKey(), safe.toString(), _objects_of(safe, safe, "macos")))
    if type in (None, _T.Windows):
        legacy = keys.make_legacy_native_key(key, "shm", _T.Windows, win)
        legacy_lock = keys.make_legacy_native_key(key, "sem", _T.Windows, win)
        names.append(NativeName("windows", "legacy", "QSharedMemory(key)", legacy.nativeKey(),
                                legacy_lock.nativeKey(), legacy.toString(),
                                _objects_of(legacy, legacy_lock, "windows")))
        for api, ipc_key in (("platformSafeKey(key), Qt >= 6.6", keys.make_platform_safe_key(key, "shm", _T.Windows, win)),
                             ("QNativeIpcKey(key), Qt >= 6.6", QNativeIpcKey(key, _T.Windows))):
            lock = keys.semaphore_native_key(ipc_key)
            names.append(NativeName("windows", "native", api, ipc_key.nativeKey(), lock.nativeKey(),
                                    ipc_key.toString(), _objects_of(ipc_key, lock, "windows")))
    return names


# ----- looking at the machine ------------------------------------------------------------------


class Machine:
    """One look at this machine's IPC objects, read lazily and kept for one command."""

    def __init__(self, progress: Progress = None) -> None:
        self.progress = progress
        self.has_sysvipc = os.path.isdir(PROC_SYSVIPC)
        self.has_dev_shm = os.path.isdir(DEV_SHM)
        self._shm: Optional[Dict[int, sysv.SegmentInfo]] = None
        self._sem: Optional[Dict[int, sysv.SemaphoreInfo]] = None
        self._maps: Optional[Tuple[Dict[str, Set[int]], Tuple[int, ...]]] = None
        self._alive: Dict[int, Optional[bool]] = {}

    @staticmethod
    def _table(name: str) -> List[List[str]]:
        with open(os.path.join(PROC_SYSVIPC, name)) as f:
            return [row.split() for row in f.read().splitlines()[1:] if row.strip()]

    def segments(self) -> Dict[int, sysv.SegmentInfo]:
        """Every System V segment with a key, by key (``/proc/sysvipc/shm``)."""
        if self._shm is None:
            self._shm = {}
            if self.has_sysvipc:
                # key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
                for row in self._table("shm"):
                    key = int(row[0]) & 0xFFFFFFFF
                    if key:
                        self._shm[key] = sysv.SegmentInfo(
                            shmid=int(row[1]), size=int(row[3]), nattch=int(row[6]),
                            creator_pid=int(row[4]), last_pid=int(row[5]), uid=int(row[7]),
                            mode=int(row[2], 8) & 0o777)
        return self._shm

    def semaphores(self) -> Dict[int, sysv.SemaphoreInfo]:
        """Every System V semaphore set with a key, by key (``/proc/sysvipc/sem``)."""
        if self._sem is None:
            self._sem = {}
            if self.has_sysvipc:
                # key semid perms nsems uid gid cuid cgid otime ctime
                for row in self._table("sem"):
                    key = int(row[0]) & 0xFFFFFFFF
                    if key:
                        self._sem[key] = sysv.SemaphoreInfo(semid=int(row[1]), uid=int(row[4]),
                                                            mode=int(row[2], 8) & 0o777)
        return self._sem

    def segment(self, key: int, name: str) -> Optional[sysv.SegmentInfo]:
        """The System V segment of ``key``, or None.  May raise ``PermissionError`` off Linux."""
        if self.has_sysvipc:
            return self.segments().get(key & 0xFFFFFFFF)
        try:
            return sysv.shm_stat(sysv.shm_get(_signed(key), True, name), name)
        except FileNotFoundError:
            return None

    def semaphore(self, key: int, name: str) -> Optional[sysv.SemaphoreInfo]:
        """The System V semaphore set of ``key``, or None."""
        if self.has_sysvipc:
            return self.semaphores().get(key & 0xFFFFFFFF)
        try:
            return sysv.sem_stat(sysv.sem_find(_signed(key), name), name)
        except FileNotFoundError:
            return None

    def alive(self, pid: int) -> Optional[bool]:
        """Whether ``pid`` runs (a zombie counts as gone); None for pid 0."""
        if pid <= 0:
            return None
        if pid not in self._alive:
            self._alive[pid] = _process_alive(pid)
        return self._alive[pid]

    def pid(self, pid: int) -> Pid:
        return Pid(pid, self.alive(pid))

    def dev_shm_users(self) -> Tuple[Dict[str, Set[int]], Tuple[int, ...]]:
        """Which processes map each ``/dev/shm`` file, and the processes whose maps are unreadable.

        Read once, from ``/proc/<pid>/maps``: Qt keeps a POSIX segment mapped while attached, and
        glibc maps every open POSIX semaphore.  Even root cannot read the maps of a process that
        made itself non-dumpable (a container's init, setuid programs) without ``CAP_SYS_PTRACE``.
        """
        if self._maps is None:
            users: Dict[str, Set[int]] = {}
            unreadable: List[int] = []
            pids = [entry for entry in os.listdir("/proc") if entry.isdigit()] if os.path.isdir("/proc/self") else []
            for done, entry in enumerate(pids):
                if self.progress and done % 200 == 0:
                    self.progress(f"reading process maps {done}/{len(pids)}")
                try:
                    with open(f"/proc/{entry}/maps", encoding="utf-8", errors="surrogateescape") as f:
                        for line in f:
                            at = line.find(DEV_SHM + "/")
                            if at != -1 and not line.endswith(" (deleted)\n"):
                                users.setdefault(line[at:].rstrip("\n"), set()).add(int(entry))
                except (FileNotFoundError, ProcessLookupError):
                    continue  # exited meanwhile
                except OSError:
                    unreadable.append(int(entry))
            self._maps = (users, tuple(unreadable))
        return self._maps

    def posix_users(self, path: str) -> Tuple[Tuple[int, ...], Optional[bool]]:
        """The processes seen mapping ``path``, and whether one we cannot see uses it.

        The second answer comes from the kernel when some maps are unreadable: it refuses a read
        lease on a file that any process has open or mapped for writing (every Qt user of a POSIX
        lock, and every read-write attacher, has).  None when that cannot be asked.
        """
        users, unreadable = self.dev_shm_users()
        seen = tuple(sorted(users.get(path, ())))
        if not unreadable:
            return seen, False
        if seen:
            return seen, None
        return seen, _open_for_writing(path)


def _open_for_writing(path: str) -> Optional[bool]:
    """Whether any process has ``path`` open or mapped for writing; None if the kernel won't say.

    A read lease (``F_SETLEASE``, Linux) is refused with EAGAIN exactly then.  It is released at
    once; while it is held a writer's open() would wait and we would get SIGIO, ignored here.
    """
    lease = getattr(fcntl, "F_SETLEASE", None)
    if lease is None or threading.current_thread() is not threading.main_thread():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    old = signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        fcntl.fcntl(fd, lease, fcntl.F_RDLCK)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.fcntl(fd, lease, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)
        signal.signal(signal.SIGIO, old)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, and belongs to someone else
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _key_file(path: str, role: str, project_id: int) -> KeyFile:
    try:
        st = os.stat(path)
    except OSError:
        return KeyFile(path, role, False)
    try:
        ipc_key: Optional[str] = _hex(sysv.ftok(path, project_id))
    except OSError:
        ipc_key = None
    return KeyFile(path, role, True, st.st_uid, _owner(st.st_uid), max(time.time() - st.st_mtime, 0.0), ipc_key)


def _lock_state(value: Optional[int]) -> str:
    if value is None:
        return "unknown"
    if value == 0:
        return "held"
    return "free" if value == 1 else "no-exclusion"


def _sysv_segment(machine: Machine, name: str, key_file: Optional[KeyFile], key: Optional[int]) -> Segment:
    if key is None and key_file is not None and key_file.ipc_key:
        key = int(key_file.ipc_key, 16)
    if key is None:
        return Segment("sysv", name, False, note="no key file" if key_file is not None else "")
    try:
        info = machine.segment(key, name)
    except OSError as exc:
        return Segment("sysv", name, False, ipc_key=_hex(key), note=exc.strerror or str(exc))
    if info is None:
        return Segment("sysv", name, False, ipc_key=_hex(key))
    return Segment("sysv", name, True, id=info.shmid, ipc_key=_hex(key), size=info.size,
                   attached=info.nattch, uid=info.uid, owner=_owner(info.uid), mode=info.mode,
                   creator=machine.pid(info.creator_pid), last=machine.pid(info.last_pid))


def _sysv_lock(machine: Machine, name: str, key_file: Optional[KeyFile], key: Optional[int]) -> Lock:
    if key is None and key_file is not None and key_file.ipc_key:
        key = int(key_file.ipc_key, 16)
    if key is None:
        return Lock("sysv", name, False)
    try:
        info = machine.semaphore(key, name)
    except OSError as exc:
        return Lock("sysv", name, False, ipc_key=_hex(key), state="unknown", note=exc.strerror or str(exc))
    if info is None:
        return Lock("sysv", name, False, ipc_key=_hex(key))
    sem = sysv.Semaphore(info.semid, name)
    try:
        value, last, waiters, changed = sem.value(), sem.last_pid(), sem.waiters(), sem.change_time()
    except OSError as exc:
        return Lock("sysv", name, True, id=info.semid, ipc_key=_hex(key), state="unknown", uid=info.uid,
                    owner=_owner(info.uid), mode=info.mode, note=exc.strerror or str(exc))
    # GETPID is 0 only if neither a semop nor a SETVAL ever ran on it.
    unset = value == 0 and last == 0
    last_pid = machine.pid(last)
    return Lock("sysv", name, True, id=info.semid, ipc_key=_hex(key), value=value,
                state="unset" if unset else _lock_state(value),
                holder=last_pid if value == 0 and not unset else None, last=last_pid, waiters=waiters,
                uid=info.uid, owner=_owner(info.uid), mode=info.mode, age=max(time.time() - changed, 0.0))


def _posix_facts(machine: Machine, file_name: str) -> Tuple[Optional[os.stat_result], Tuple[int, ...], Optional[bool]]:
    """stat() of ``/dev/shm/<file_name>``, the processes seen using it, and whether an unseen one does."""
    path = f"{DEV_SHM}/{file_name}"
    try:
        st = os.stat(path)
    except OSError:
        return None, (), False
    return (st,) + machine.posix_users(path)


def _posix_segment(machine: Machine, name: str) -> Segment:
    file_name = _dev_shm_name(name)
    if file_name is None:
        return Segment("posix", name, False, note="not a valid POSIX name")
    if not machine.has_dev_shm:  # not Linux: existence and size only
        try:
            return Segment("posix", name, True, size=posix.shm_size(name))
        except FileNotFoundError:
            return Segment("posix", name, False)
        except OSError as exc:
            return Segment("posix", name, posix.shm_exists(name), note=exc.strerror or str(exc))
    st, users, unseen = _posix_facts(machine, file_name)
    path = f"{DEV_SHM}/{file_name}"
    if st is None:
        return Segment("posix", name, False, path=path)
    return Segment("posix", name, True, path=path, size=st.st_size, attached=len(users), attached_pids=users,
                   unseen=unseen, uid=st.st_uid, owner=_owner(st.st_uid), mode=stat.S_IMODE(st.st_mode),
                   note=_unseen_note(machine, unseen, users))


def _unseen_note(machine: Machine, unseen: Optional[bool], seen: Tuple[int, ...]) -> str:
    if unseen is False or seen:
        return ""
    pids = ", ".join(map(str, machine.dev_shm_users()[1][:5]))
    if unseen:
        return f"open for writing in a process whose mappings cannot be read (pid {pids}...)"
    return f"cannot tell whether pid {pids}, whose mappings cannot be read, uses it"


def _posix_lock(machine: Machine, name: str) -> Lock:
    file_name = _dev_shm_name(name)
    if file_name is None:
        return Lock("posix", name, False, note="not a valid POSIX name")
    path = f"sem.{file_name}"
    st, users, unseen = _posix_facts(machine, path) if machine.has_dev_shm else (None, (), None)
    if machine.has_dev_shm and st is None:
        return Lock("posix", name, False, path=f"{DEV_SHM}/{path}")
    try:
        sem = posix.sem_open_existing(name)
    except FileNotFoundError:
        return Lock("posix", name, False)
    except OSError as exc:
        return Lock("posix", name, True, path=f"{DEV_SHM}/{path}", state="unknown", users=users, unseen=unseen,
                    uid=None if st is None else st.st_uid, owner=None if st is None else _owner(st.st_uid),
                    note=exc.strerror or str(exc))
    try:
        value: Optional[int] = sem.value()
    except OSError:
        value = None
    finally:
        sem.close()  # opened and closed before anyone reads the maps again: we never count
    return Lock("posix", name, True, path=f"{DEV_SHM}/{path}" if st else None, value=value,
                state=_lock_state(value), users=users, unseen=unseen, uid=None if st is None else st.st_uid,
                owner=None if st is None else _owner(st.st_uid),
                mode=None if st is None else stat.S_IMODE(st.st_mode),
                note=_unseen_note(machine, unseen, users) if unseen is None else "")


def segment_exists(ref: KeyRef) -> bool:
    """Quick check, without the facts: does the segment of ``ref`` exist?"""
    if ref.family == ORPHAN:
        return False
    shm = ref.shm()
    name = shm.nativeKey()
    if shm.type() == _T.PosixRealtime:
        return _dev_shm_name(name) is not None and posix.shm_exists(name)
    try:
        sysv.shm_get(sysv.ftok(name, int(shm.type())), True, name)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def inspect_ref(ref: KeyRef, machine: Optional[Machine] = None) -> QtKey:
    """Look up the objects of ``ref``, gather their facts, and judge them."""
    machine = machine or Machine()
    files: List[KeyFile] = []
    lock: Optional[Lock] = None
    if ref.family == ORPHAN:
        segment = _sysv_segment(machine, "", None, ref.orphan_key)
        lock = _sysv_lock(machine, "", None, ref.orphan_key)
    else:
        shm = ref.shm()
        lock_key = ref.lock()
        if shm.type() == _T.PosixRealtime:
            segment = _posix_segment(machine, shm.nativeKey())
            if lock_key is not None:
                lock = _posix_lock(machine, lock_key.nativeKey())
        else:
            same_file = lock_key is not None and lock_key.nativeKey() == shm.nativeKey()
            shm_file = _key_file(shm.nativeKey(), "segment+lock" if same_file else "segment", int(shm.type()))
            files.append(shm_file)
            segment = _sysv_segment(machine, shm.nativeKey(), shm_file, None)
            if lock_key is not None:
                lock_file = shm_file if same_file else _key_file(lock_key.nativeKey(), "lock", int(lock_key.type()))
                if not same_file:
                    files.append(lock_file)
                lock = _sysv_lock(machine, lock_key.nativeKey(), lock_file, None)
    verdict, reason = _judge(ref, segment, lock, files)
    if ref.family == ORPHAN:
        reason += "; its key file is not in the directories searched (gone, or see --tmpdir)"
    return QtKey(ref, segment, lock, tuple(files), verdict, reason)


def _lock_in_use(lock: Lock) -> Optional[str]:
    """Why a lock semaphore is in use by a live process, or None if no one is seen using it."""
    if lock.backend == "sysv":
        if lock.waiters:
            return f"{lock.waiters} process(es) wait for it"
        if lock.last is not None and lock.last.alive:
            return f"pid {lock.last.pid}, which last used it, is running"
        return None
    if lock.users:
        return "open in pid " + ", ".join(map(str, lock.users))
    if lock.unseen:
        return "open for writing in a process whose mappings cannot be read"
    return None


def _waiting(lock: Lock) -> str:
    return f" ({lock.waiters} process(es) wait for it now)" if lock.waiters else ""


def _judge(ref: KeyRef, segment: Segment, lock: Optional[Lock], files: List[KeyFile]) -> Tuple[str, str]:
    lock_there = lock is not None and lock.exists
    if not segment.exists and not lock_there and not any(f.exists for f in files):
        return "absent", "nothing of this key exists"
    problems: List[str] = []
    if lock is not None and lock.exists:
        if lock.state == "no-exclusion":
            problems.append(f"the lock's count is {lock.value}: it no longer excludes anyone")
        elif lock.state == "held" and lock.backend == "posix" and not lock.users and lock.unseen is False:
            problems.append("the lock is taken (value 0) and no process has it open: "
                            "abandoned by a process that died holding it")
        elif lock.state == "held" and lock.holder is not None and lock.holder.alive is False:
            problems.append(f"the lock is held by pid {lock.holder.pid}, which is gone")
        elif lock.state == "unset" and (segment.exists or lock.waiters):
            problems.append("the lock was never set (count 0, no process ever used it), so nobody holds "
                            f"it and Qt's attach() waits on it for ever{_waiting(lock)}")
    if segment.exists and segment.backend == "sysv" and ref.family != ORPHAN and not files[0].exists:
        problems.append("the key file is gone: no new process can find the segment")
    if problems:
        return "broken", "; ".join(problems)
    if segment.exists:
        if segment.attached:
            return "live", f"{segment.attached} process(es) attached"
        if segment.unseen:
            return "live", "in use by a process whose mappings cannot be read"
        if segment.unseen is None and segment.backend == "posix":
            return "stale", "nobody seen attached (some processes' mappings cannot be read)"
        if segment.creator is not None and segment.creator.alive:
            return "stale", f"nobody attached; its creator, pid {segment.creator.pid}, still runs"
        if segment.creator is not None:
            return "stale", f"nobody attached and its creator, pid {segment.creator.pid}, is gone"
        return "stale", "nobody attached"
    if lock_there:
        assert lock is not None
        using = _lock_in_use(lock)
        if using:
            return "live", f"no segment, but the lock semaphore is in use: {using}"
        return "stale", "no segment; the lock semaphore is left over"
    return "stale", "no segment; only key files are left"


# ----- everything on the machine ---------------------------------------------------------------


def _legacy_ref(family: str, shm_name: str, lock_name: str, key_type: int) -> KeyRef:
    return KeyRef(family, "legacy key (the plain key is not known)",
                  QNativeIpcKey(shm_name, key_type).toString(), QNativeIpcKey(lock_name, key_type).toString())


def discover(
    machine: Optional[Machine] = None,
    ctx: Optional[KeyContext] = None,
    tmpdirs: Iterable[str] = (),
    extra: Iterable[KeyRef] = (),
) -> List[KeyRef]:
    """The refs of every Qt shared memory object found on the machine.

    From the key files in ``tmpdirs`` (default: Qt's temp dir), ``/dev/shm``, and every System V
    object keyed with ``'Q'`` that no key file claims: a file of the temp or runtime directory
    whose ``ftok`` matches makes it a native System V key, and what is left is an orphan.
    POSIX objects with a name of their own count as Qt's only with a same-named semaphore
    (Qt's lock while its creator lives); others are left out unless ``extra`` names them.
    """
    machine = machine or Machine()
    ctx = ctx or KeyContext()
    dirs = list(dict.fromkeys(list(tmpdirs) or [keys.temp_path(ctx)]))
    refs: Dict[Tuple[str, str], KeyRef] = {ref.identity: ref for ref in extra}

    def add(ref: KeyRef) -> None:
        refs.setdefault(ref.identity, ref)

    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            for prefix in (SHM_PREFIX, SEM_PREFIX):
                if name.startswith(prefix):
                    rest = name[len(prefix):]
                    add(_legacy_ref(LEGACY_SYSV, f"{d}/{SHM_PREFIX}{rest}", f"{d}/{SEM_PREFIX}{rest}", _T.SystemV))
    if machine.has_dev_shm:
        try:
            shm_names = set(os.listdir(DEV_SHM))
        except OSError:
            shm_names = set()
        for name in sorted(shm_names):
            if name.startswith(SHM_PREFIX) or name.startswith("sem." + SEM_PREFIX):
                rest = name.partition(SHM_PREFIX if name.startswith(SHM_PREFIX) else SEM_PREFIX)[2]
                add(_legacy_ref(LEGACY_POSIX, f"/{SHM_PREFIX}{rest}", f"/{SEM_PREFIX}{rest}", _T.PosixRealtime))
            elif not name.startswith("sem.") and f"sem.{name}" in shm_names:
                ipc_key = QNativeIpcKey(name, _T.PosixRealtime)
                add(KeyRef(POSIX, "QNativeIpcKey(key), Qt >= 6.6", ipc_key.toString(), ipc_key.toString()))
    if machine.has_sysvipc:
        for ref in _unclaimed_sysv(machine, list(refs.values()), dirs + [_runtime_dir(ctx)]):
            add(ref)
    return list(refs.values())


def _claimed_keys(refs: Iterable[KeyRef]) -> Set[int]:
    claimed: Set[int] = set()
    for ref in refs:
        if ref.family == ORPHAN or ref.shm().type() == _T.PosixRealtime:
            continue
        for ipc_key in (ref.shm(), ref.lock()):
            if ipc_key is None:
                continue
            try:
                claimed.add(sysv.ftok(ipc_key.nativeKey(), int(ipc_key.type())) & 0xFFFFFFFF)
            except OSError:
                pass
    return claimed


def _unclaimed_sysv(machine: Machine, refs: List[KeyRef], dirs: List[str]) -> List[KeyRef]:
    """Refs for the ``'Q'``-keyed System V objects no ref claims: native keys, else orphans."""
    claimed = _claimed_keys(refs)
    keyed = set(machine.segments()) | set(machine.semaphores())
    unclaimed = {k for k in keyed if k >> 24 == sysv.QT_PROJECT_ID and k not in claimed}
    found: List[KeyRef] = []
    for d in dict.fromkeys(dirs):
        if not unclaimed:
            break
        try:
            entries = sorted(os.listdir(d))[:_MAX_FILES_TRIED]
        except OSError:
            continue
        for name in entries:
            path = f"{d}/{name}"
            if name.startswith((SHM_PREFIX, SEM_PREFIX)) or not os.path.isfile(path):
                continue
            try:
                k = sysv.ftok(path, sysv.QT_PROJECT_ID) & 0xFFFFFFFF
            except OSError:
                continue
            if k in unclaimed:
                unclaimed.discard(k)
                ipc_key = QNativeIpcKey(path, _T.SystemV)
                found.append(KeyRef(SYSV, "native System V key (platformSafeKey(key, SystemV) or QNativeIpcKey)",
                                    ipc_key.toString(), ipc_key.toString()))
    for k in sorted(unclaimed):
        found.append(KeyRef(ORPHAN, "System V object keyed with ftok(…, 'Q'), key file not found",
                            "", None, orphan_key=k))
    return found


# ----- clean -----------------------------------------------------------------------------------


def plan_clean(
    rows: Iterable[QtKey],
    *,
    any_user: bool = False,
    orphans: bool = False,
    euid: Optional[int] = None,
    min_age: float = KEY_FILE_MIN_AGE,
) -> List[Step]:
    """What ``clean`` removes, and what it leaves and why, for each key that is not live.

    Removed: a System V segment nobody is attached to whose creator is gone; a POSIX segment no
    process maps; a lock semaphore whose segment is gone (or removed here) and that no running
    process uses; a key file whose objects are gone (or removed here) and, when they were already
    gone, that is older than ``min_age``.  Never an object of another user, except with
    ``any_user`` when running as root; never an orphan unless ``orphans``.  Removals come first,
    key files after them.
    """
    euid = os.geteuid() if euid is None else euid
    objects: List[Step] = []
    files: List[Step] = []
    for row in rows:
        if row.verdict in ("absent", "live"):
            continue
        if row.ref.family == ORPHAN and not orphans:
            objects.append(Step("keep", "sysv-segment" if row.segment.exists else "sysv-semaphore",
                                _object_name(row, row.segment.exists), "no key file names it, so it cannot be "
                                "proved to be Qt's: pass --orphans to remove it", row.ref.label, ""))
            continue
        obj_steps, seg_gone, lock_gone = _plan_objects(row, euid, any_user)
        objects += obj_steps
        files += _plan_files(row, seg_gone, lock_gone, euid, any_user, min_age)
    return objects + files


def _object_name(row: QtKey, segment: bool) -> str:
    if segment:
        s = row.segment
        return f"System V segment shmid {s.id} (key {s.ipc_key})" if s.backend == "sysv" else f"POSIX shared memory {s.path or s.name}"
    lock = row.lock
    assert lock is not None
    return f"System V semaphore semid {lock.id} (key {lock.ipc_key})" if lock.backend == "sysv" else f"POSIX semaphore {lock.path or lock.name}"


def _foreign(uid: Optional[int], euid: int, any_user: bool) -> Optional[str]:
    """Why an object of ``uid`` may not be touched, or None."""
    if uid is None or uid == euid or (euid == 0 and any_user):
        return None
    owner = _owner(uid)
    if euid == 0:
        return f"owned by {owner}: pass --any-user to remove other users' objects"
    return f"owned by {owner}, not by you"


def _plan_objects(row: QtKey, euid: int, any_user: bool) -> Tuple[List[Step], bool, bool]:
    """Steps for the segment and the lock; and whether each is gone once they are carried out."""
    steps: List[Step] = []
    label = row.ref.label
    seg, lock = row.segment, row.lock
    seg_gone = not seg.exists
    if seg.exists:
        why_keep: Optional[str]
        if seg.attached is None or (seg.backend == "posix" and seg.unseen is not False):
            why_keep = f"cannot tell who uses it ({seg.note})"
        elif seg.attached:
            why_keep = f"{seg.attached} process(es) attached"
        elif seg.backend == "sysv" and seg.creator is not None and seg.creator.alive:
            why_keep = f"its creator, pid {seg.creator.pid}, still runs"
        elif seg.backend == "posix" and lock is not None and lock.exists and (lock.users or lock.unseen is not False):
            why_keep = "its lock semaphore is (or may be) open in a running process"
        else:
            why_keep = _foreign(seg.uid, euid, any_user)
        name = _object_name(row, True)
        if why_keep:
            steps.append(Step("keep", f"{seg.backend}-{'segment' if seg.backend == 'sysv' else 'shm'}", name,
                              why_keep, label, seg.name, seg.id))
        else:
            if seg.backend == "sysv":
                creator = f"its creator, pid {seg.creator.pid}, is gone" if seg.creator else "no creator known"
                reason = f"no process attached and {creator}"
            else:
                reason = "no process maps it (Qt never unlinks POSIX shared memory)"
            steps.append(Step("remove", "sysv-segment" if seg.backend == "sysv" else "posix-shm", name,
                              reason, label, seg.name, seg.id))
            seg_gone = True
    lock_gone = lock is None or not lock.exists
    if lock is not None and lock.exists and seg_gone:
        name = _object_name(row, False)
        using = _lock_in_use(lock)
        if using:
            why_keep = using
        elif lock.state == "unknown" or (lock.backend == "posix" and lock.unseen is None):
            why_keep = f"cannot tell who uses it ({lock.note})"
        elif lock.backend == "sysv" and lock.state == "held":
            why_keep = "it is held"
        elif lock.state == "unset" and (lock.age or 0.0) < UNSET_MIN_AGE:
            why_keep = "just made: its creator may not have set it yet"
        else:
            why_keep = _foreign(lock.uid, euid, any_user)
        if why_keep:
            steps.append(Step("keep", f"{lock.backend}-semaphore", name, why_keep, label, lock.name, lock.id))
        else:
            what = "no segment" if not seg.exists else "its segment is removed"
            if lock.state == "unset":
                reason = f"{what}; never set or used (count 0), nobody waits for it"
            elif lock.backend == "sysv":
                last = f"; pid {lock.last.pid}, which last used it, is gone" if lock.last else ""
                reason = f"{what}; nobody waits for it{last}"
            else:
                held = " (it was left taken: an abandoned lock)" if lock.state == "held" else ""
                reason = f"{what}; no process has it open{held}"
            steps.append(Step("remove", f"{lock.backend}-semaphore", name, reason, label, lock.name, lock.id))
            lock_gone = True
    return steps, seg_gone, lock_gone


def _plan_files(row: QtKey, seg_gone: bool, lock_gone: bool, euid: int, any_user: bool, min_age: float) -> List[Step]:
    steps: List[Step] = []
    for f in row.key_files:
        if not f.exists:
            continue
        names_segment = "segment" in f.role
        names_lock = "lock" in f.role
        if (names_segment and not seg_gone) or (names_lock and not lock_gone):
            continue  # its object stays: so does the file, silently
        was_gone = (not names_segment or not row.segment.exists) and (
            not names_lock or row.lock is None or not row.lock.exists)
        why_keep = _foreign(f.uid, euid, any_user)
        if why_keep is None and was_gone and f.age is not None and f.age < min_age:
            why_keep = f"made {f.age:.1f} s ago: a Qt program may be creating its object"
        what = {"segment": "segment", "lock": "semaphore", "segment+lock": "segment and semaphore"}[f.role]
        reason = f"its {what} {'are' if f.role == 'segment+lock' else 'is'} gone" if was_gone else f"removed with its {what}"
        steps.append(Step("keep" if why_keep else "remove", "key-file", f"key file {f.path}",
                          why_keep or reason, row.ref.label, f.path))
    return steps


def apply_step(step: Step) -> Optional[str]:
    """Carry out a ``remove`` step after checking again that it still holds; an error or None."""
    if step.action != "remove":
        return None
    try:
        if step.kind == "sysv-segment":
            assert step.id is not None
            info = sysv.shm_stat(step.id, step.name)
            if info.nattch:
                return f"{step.name}: a process attached meanwhile; left alone"
            sysv.shm_remove(step.id, step.name)
        elif step.kind == "sysv-semaphore":
            assert step.id is not None
            sem = sysv.Semaphore(step.id, step.name)
            if sem.waiters():
                return f"{step.name}: a process waits for it now; left alone"
            sem.remove()
        elif step.kind == "posix-shm":
            posix.shm_unlink(step.target)
        elif step.kind == "posix-semaphore":
            posix.sem_unlink(step.target)
        elif step.kind == "key-file":
            os.unlink(step.target)
        else:
            return f"{step.name}: unknown kind {step.kind!r}"
    except FileNotFoundError:
        return None  # gone already: what we wanted
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM) and step.kind.startswith("sysv"):
            return None  # removed by someone else meanwhile
        return f"{step.name}: {exc.strerror or exc}"
    return None
