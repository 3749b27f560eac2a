"""The OS names Qt derives from a key: legacy keys, platform-safe keys, ``QNativeIpcKey``.

Qt never uses the key string a program passes to ``QSharedMemory``/``QSystemSemaphore``
directly. It turns it into a *native key* (a file path for System V, a ``shm_open``/``sem_open``
name for POSIX, a kernel object name on Windows) and, from Qt 6.6 on, wraps that in a
``QNativeIpcKey``. This module computes every one of those names, purely, for any Qt version and
platform given in a :class:`KeyContext`:

* :func:`legacy_platform_safe_key` / :func:`make_legacy_native_key`: the Qt 4.4-6.x legacy names
  ``<dir>/qipc_sharedmemory_<ASCII letters><sha1>`` (``QSharedMemory(QString)``, ``setKey``).
* :func:`platform_safe_native_key` / :func:`make_platform_safe_key`: the Qt 6.6 names
  (``platformSafeKey``).
* :func:`temp_path` and :func:`runtime_dir`: ``QDir::tempPath()`` (which changed in 6.9.2) and
  ``QStandardPaths::writableLocation(RuntimeLocation)``. These are the only functions that touch
  the file system, and only as Qt does (``realpath``, ``mkdir`` of the runtime directory, ``lstat``).
* :class:`QNativeIpcKey`, with ``toString()``/``fromString()`` byte-for-byte like Qt's, which go
  through ``QUrl``: the parts of QUrl's tolerant parser that can change a result are reproduced.

``QNativeIpcKey`` keeps Qt's camelCase method names and Qt's enum names and values on purpose,
so PyQt/PySide code ports by changing an import. Everything else here is snake_case.

Where the facts were checked (qt/qtbase source, and runs of real Qt on Linux):

* legacy and platform-safe keys: ``src/corelib/ipc/qtipccommon.cpp``
  (``QtIpcCommon::legacyPlatformSafeKey``, ``platformSafeKey``, read on the 6.x main branch) and
  ``src/corelib/kernel/qsharedmemory.cpp`` ``makePlatformSafeKey`` (5.15, 6.4); run on Qt 5.15.8,
  5.15.19, 6.4.2, 6.11.2 and 6.12.0 (``tests/test_keys_qt.py``).
* ``toString``/``fromString``: ``qtipccommon.cpp``; the ``QUrl``/``QUrlQuery`` behaviour they
  rely on (tolerant parsing, percent-decoding, U+FFFD for bad UTF-8) was pinned by comparing
  with Qt 6.11.2 and 6.12.0 on thousands of generated strings and on the cases of
  ``tests/auto/corelib/ipc/qnativeipckey``, not by reading ``qurl*.cpp``.
* ``QDir::tempPath()``: ``src/corelib/io/qfilesystemengine_unix.cpp`` ``tempPath`` (up to 6.9.1
  canonical, from 6.9.2 absolute); run on 5.15.8, 5.15.19, 6.4.2, 6.11.2 and 6.12.0.
* RuntimeLocation: ``src/corelib/io/qstandardpaths_unix.cpp`` ``checkXdgRuntimeDir`` (6.x);
  run on 6.11.2 and 6.12.0. macOS: ``qstandardpaths_mac.mm`` (source only).
* The lock semaphore: ``qsharedmemory.cpp`` ``semaphoreNativeKey`` and ``initKey`` (6.8), and
  the 6.6.0 bug seen in runs (/work/shared/spec/qt-ipc.md §8).

macOS and Windows rules come from the source only; nothing was run there.
"""

from __future__ import annotations

import os
import stat
import sys
from enum import IntEnum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha1 as _sha1
else:
    try:  # the builtin module: hashlib would load OpenSSL, a tenth of our import time
        from _sha1 import sha1 as _sha1
    except ImportError:  # pragma: no cover - CPython builds without it
        from hashlib import sha1 as _sha1

if TYPE_CHECKING:  # typing costs import time; annotations are strings here
    from collections.abc import Callable, Iterator, Mapping
    from typing import Literal

__all__ = [
    "SHM_PREFIX",
    "SEM_PREFIX",
    "QtVersion",
    "KeyKind",
    "parse_qt_version",
    "default_qt_version",
    "KeyContext",
    "temp_path",
    "runtime_dir",
    "legacy_platform_safe_key",
    "platform_safe_native_key",
    "semaphore_native_key",
    "lock_semaphore_key",
    "QNativeIpcKey",
    "default_type_for_os",
    "make_platform_safe_key",
    "make_legacy_native_key",
    "is_key_type_supported",
]

SHM_PREFIX = "qipc_sharedmemory_"
SEM_PREFIX = "qipc_systemsem_"

QtVersion = tuple[int, int, int]
if TYPE_CHECKING:
    KeyKind = Literal["shm", "sem"]
else:
    KeyKind = str

_DEFAULT_QT_VERSION: QtVersion = (5, 15, 0)
_PREFIXES: dict[str, str] = {"shm": SHM_PREFIX, "sem": SEM_PREFIX}
# Darwin: Qt assumes 30 usable bytes for a POSIX IPC name (qtipccommon.cpp SHM_NAME_MAX).
_DARWIN_SHM_NAME_MAX = 30
_WINDOWS_MAX_PATH = 260


# ----- versions and context --------------------------------------------------------------------


def parse_qt_version(v: str | tuple[int, ...] | None) -> QtVersion:
    """``"5.15"`` -> ``(5, 15, 0)``, ``"6.9.2"`` -> ``(6, 9, 2)``; ``None`` -> the default."""
    if v is None:
        return default_qt_version()
    if isinstance(v, str):
        # "5.15", "6.9.2", "6.12.0", "6.8.2+dfsg": leading dot-separated numbers.
        head = v.strip().split("+", 1)[0].split("-", 1)[0]
        fields = head.split(".")[:3]
        if not fields or not all(f.isdigit() and f.isascii() for f in fields):
            raise ValueError(f"not a Qt version: {v!r}")
        parts = tuple(int(p) for p in fields)
    else:
        parts = tuple(int(p) for p in v)
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"not a Qt version: {v!r}")
    major, minor, patch = (parts + (0, 0))[:3]
    return (major, minor, patch)


def default_qt_version() -> QtVersion:
    """``$QSHM_QT_VERSION`` if set, else Qt 5.15 (the documented default behaviour)."""
    value = os.environ.get("QSHM_QT_VERSION", "")
    return parse_qt_version(value) if value else _DEFAULT_QT_VERSION


class KeyContext:
    """Everything outside the key that changes the names Qt derives from it (immutable)."""

    __slots__ = ("platform", "qt_version", "environ", "sandboxed", "posix_ipc_build", "cwd")

    platform: str
    qt_version: QtVersion
    environ: Mapping[str, str] | None  # None: os.environ at call time
    sandboxed: bool  # an Apple sandboxed application
    posix_ipc_build: bool  # Qt configured with QT_POSIX_IPC (legacy default POSIX)
    cwd: str | None  # resolves a relative TMPDIR; None: os.getcwd() at call time

    def __init__(
        self,
        platform: str = sys.platform,
        qt_version: QtVersion | None = None,
        environ: Mapping[str, str] | None = None,
        sandboxed: bool = False,
        posix_ipc_build: bool = False,
        cwd: str | None = None,
    ) -> None:
        values = (
            platform,
            default_qt_version() if qt_version is None else qt_version,
            environ,
            sandboxed,
            posix_ipc_build,
            cwd,
        )
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyContext is immutable")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyContext) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.platform, self.qt_version, self.sandboxed, self.posix_ipc_build, self.cwd))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"KeyContext({inner})"

    def getenv(self, name: str) -> str:
        """The variable's value in this context's environment, ``""`` when unset."""
        env = os.environ if self.environ is None else self.environ
        return env.get(name, "")

    def getcwd(self) -> str:
        return os.getcwd() if self.cwd is None else self.cwd

    @property
    def is_windows(self) -> bool:
        return self.platform == "win32"

    @property
    def is_darwin(self) -> bool:
        return self.platform == "darwin"


def environ_tmpdir() -> object:
    """``$TMPDIR`` as ``os.environ`` holds it now (bytes on POSIX; None when unset), to tell
    whether it changed since a name was made from it: one dict lookup, where
    ``os.environ.get("TMPDIR")`` costs 0.3-0.7 us (it raises and catches KeyError when unset)."""
    try:
        return os.environ._data.get(b"TMPDIR")  # type: ignore[attr-defined]  # os._Environ's store
    except AttributeError:  # os.environ replaced by another mapping
        return os.environ.get("TMPDIR")


def _ctx(ctx: KeyContext | None) -> KeyContext:
    return KeyContext() if ctx is None else ctx


# ----- directories -----------------------------------------------------------------------------


def _clean_path(path: str) -> str:
    """``QDir::cleanPath`` on Unix (run on 5.15.19, 6.11.2, 6.12.0 with the same results)."""
    if not path:
        return ""
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            # Qt keeps a ".." it cannot resolve, even right after the root: "/.." stays "/..".
            parts.append(segment)
    joined = "/".join(parts)
    if path.startswith("/"):
        return "/" + joined
    return joined or "."


def _absolute_name(path: str, cwd: str) -> str:
    """``QFileSystemEngine::absoluteName`` on Unix: cwd prepended, cleaned, trailing "/" kept."""
    if not path.startswith("/"):
        if path == ".":
            path = cwd
        else:
            path = (cwd if cwd.endswith("/") else cwd + "/") + path
    if path == "/":
        return path
    cleaned = _clean_path(path)
    return cleaned + "/" if path.endswith("/") else cleaned


_CANONICAL: dict[str, tuple[int, int, str]] = {}


def _canonical_path(path: str, cwd: str | None) -> str:
    """``QDir::canonicalPath``: symlinks resolved; ``""`` when the path does not exist.

    ``cwd`` (None: the current directory) only matters for a relative path.  The resolved path
    is remembered with the directory's device and inode, and resolved again when they change.
    """
    full = path if path.startswith("/") else os.path.join(os.getcwd() if cwd is None else cwd, path)
    try:
        st = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except OSError:
        # Qt (run: 5.15.8, 5.15.19, 6.4.2) returns the path as given when realpath() fails on
        # something that exists, such as a symlink loop.
        return path if os.path.lexists(full) else ""
    known = _CANONICAL.get(full)
    if known is not None and known[0] == st.st_dev and known[1] == st.st_ino:
        return known[2]
    resolved = os.path.realpath(full)
    if len(_CANONICAL) >= 64:
        _CANONICAL.clear()
    _CANONICAL[full] = (st.st_dev, st.st_ino, resolved)
    return resolved


def _darwin_temp_dir() -> str:
    """``NSTemporaryDirectory()``: the per-user temp dir, or ``"/tmp/"``."""
    if sys.platform == "darwin" and "CS_DARWIN_USER_TEMP_DIR" in os.confstr_names:
        try:
            value = os.confstr("CS_DARWIN_USER_TEMP_DIR")
        except (OSError, ValueError):
            value = None
        if value:
            return value
    return "/tmp/"


def _windows_temp_path(ctx: KeyContext) -> str:
    """An approximation of ``GetTempPathW``, slashes forward, as ``QDir::tempPath()`` on Windows."""
    temp = ctx.getenv("TMP") or ctx.getenv("TEMP") or ctx.getenv("USERPROFILE")
    temp = temp.rstrip("\\").replace("\\", "/")
    if not temp:
        return "C:/tmp"
    if len(temp) >= 2 and temp[1] == ":":
        temp = temp[0].upper() + temp[1:]
    return temp


def temp_path(ctx: KeyContext | None = None) -> str:
    """``QDir::tempPath()`` of ``ctx.qt_version`` on ``ctx.platform``.

    Up to 6.9.1 the canonical path: symlinks resolved, ``""`` when the directory is missing.
    From 6.9.2 the absolute, cleaned path: no symlink resolution, it need not exist.
    """
    ctx = _ctx(ctx)
    if ctx.is_windows:
        return _windows_temp_path(ctx)
    temp = ctx.getenv("TMPDIR")
    if ctx.qt_version >= (6, 9, 2):
        if not temp and ctx.is_darwin:
            temp = _darwin_temp_dir()
        if not temp:
            return "/tmp"
        # 6.9.2+ strips a single trailing "/", so "/tmp//" gives "/tmp/" (run: 6.11.2, 6.12.0).
        if len(temp) > 1 and temp.endswith("/"):
            temp = temp[:-1]
        return _absolute_name(temp, ctx.getcwd())
    if not temp:
        temp = _darwin_temp_dir() if ctx.is_darwin else "/tmp/"
    return _canonical_path(_clean_path(temp), ctx.cwd)


def _user_name(uid: int) -> str:
    """``QFileSystemEngine::resolveUserName``: the passwd entry's name, ``""`` if none."""
    try:
        import pwd
    except ImportError:  # not on Unix
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _check_runtime_dir(path: str) -> bool:
    """Qt's ``checkXdgRuntimeDir`` (6.8/6.11): mkdir 0700, then a real 0700 dir owned by euid."""
    try:
        os.mkdir(path, 0o700)
        return True  # Qt accepts a directory it has just created without looking at it
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):  # also rejects a symlink, even to a directory
        return False
    return st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o777 == 0o700


def runtime_dir(ctx: KeyContext | None = None) -> str:
    """``QStandardPaths::writableLocation(RuntimeLocation)`` as Qt 6.6+ computes it.

    Linux and other Unix: ``$XDG_RUNTIME_DIR`` if absolute and valid, else
    ``<temp_path>/runtime-<user>`` (created 0700 as Qt does), else ``""``.
    macOS: ``~/Library/Application Support``. Windows: the home directory.
    """
    ctx = _ctx(ctx)
    if ctx.is_windows:
        return ctx.getenv("USERPROFILE").replace("\\", "/")
    if ctx.is_darwin:
        home = _clean_path(ctx.getenv("HOME")) or "/"
        return home.rstrip("/") + "/Library/Application Support"
    xdg = ctx.getenv("XDG_RUNTIME_DIR")
    if xdg.startswith("/") and _check_runtime_dir(xdg):
        return xdg
    fallback = temp_path(ctx) + "/runtime-" + _user_name(os.geteuid())
    return fallback if _check_runtime_dir(fallback) else ""


# ----- key types -------------------------------------------------------------------------------


class _Type(IntEnum):
    """``QNativeIpcKey::Type``: also accepts 1..255 (SysV ``ftok`` ids) and 0 (invalid)."""

    SystemV = 0x51
    PosixRealtime = 0x100
    Windows = 0x101

    @classmethod
    def _missing_(cls, value: object) -> _Type | None:
        if isinstance(value, int) and 0 <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"SystemV_{value}" if value else "Invalid"
            member._value_ = value
            return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]
        return None


_Type.__name__ = "Type"
_Type.__qualname__ = "QNativeIpcKey.Type"


def _is_sysv(t: int) -> bool:
    return 1 <= t <= 0xFF


def _type_compiled_in(t: int, ctx: KeyContext) -> bool:
    """``QtIpcCommon::isIpcSupported``: what the Qt build has (the sandbox is not considered).

    Qt treats every type that is neither PosixRealtime nor Windows as System V, the invalid
    type 0 included (run: 6.11.2 says ``isKeyTypeSupported(Type(0))`` is true on Linux).
    """
    if t == _Type.Windows:
        return ctx.is_windows
    return not ctx.is_windows


def is_key_type_supported(type: int, ctx: KeyContext | None = None) -> bool:
    """``QSharedMemory::isKeyTypeSupported``: what a Qt build would accept on ``ctx.platform``."""
    ctx = _ctx(ctx)
    if type not in (_Type.Windows, _Type.PosixRealtime) and ctx.is_darwin and ctx.sandboxed:
        return False  # System V is not available to sandboxed Apple applications
    return _type_compiled_in(type, ctx)


def default_type_for_os(ctx: KeyContext | None = None) -> _Type:
    """``QNativeIpcKey::DefaultTypeForOs`` of ``ctx.platform``: Windows, else PosixRealtime."""
    return _Type.Windows if _ctx(ctx).is_windows else _Type.PosixRealtime


# ----- native key strings ----------------------------------------------------------------------


def _utf16_left(text: str, n: int) -> str:
    """``QString::left(n)``: n UTF-16 code units (cutting a pair keeps its lone high surrogate)."""
    if len(text) <= n // 2:
        return text
    units = text.encode("utf-16-le", "surrogatepass")[: 2 * n]
    return units.decode("utf-16-le", "surrogatepass")


def _prefix(kind: str) -> str:
    try:
        return _PREFIXES[kind]
    except KeyError:
        raise ValueError(f"kind must be 'shm' or 'sem', not {kind!r}") from None


_LETTERS_AND_HASH: dict[tuple[str, bool], tuple[str, str]] = {}

#: From this Qt on, ``QString::toUtf8()`` drops a lone surrogate; before, it writes ``?``.
#: Seen on the real peers: ``?`` in Qt 5.15.8, 5.15.19 and 6.4.2, dropped in 6.11.2 and 6.12.0;
#: the Qt versions in between were not available to run, so where it changed is not known.
TOUTF8_DROPS_LONE_SURROGATES: QtVersion = (6, 11, 0)


def qt_utf8(text: str, qt_version: QtVersion) -> bytes:
    """``QString::toUtf8()`` of the QString a Python str makes (PyQt and PySide copy its code
    points as UTF-16 units, so a surrogate pair written as two code points is one character)."""
    if text.isascii():
        return text.encode("ascii")
    units = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return units.encode("utf-8", "ignore" if qt_version >= TOUTF8_DROPS_LONE_SURROGATES else "replace")


def _letters_and_hash(key: str, qt_version: QtVersion) -> tuple[str, str]:
    """The two parts of a legacy name that depend on the key alone (memoized: attach() needs
    them every time, as Qt recomputes them)."""
    drops = qt_version >= TOUTF8_DROPS_LONE_SURROGATES
    found = _LETTERS_AND_HASH.get((key, drops))
    if found is None:
        # Only ASCII letters survive: digits, punctuation and all non-ASCII are dropped.
        letters = "".join(ch for ch in key if "a" <= ch <= "z" or "A" <= ch <= "Z")
        digest = _sha1(qt_utf8(key, qt_version)).hexdigest()
        if len(_LETTERS_AND_HASH) >= 1024:
            _LETTERS_AND_HASH.clear()
        found = _LETTERS_AND_HASH[(key, drops)] = (letters, digest)
    return found


def legacy_platform_safe_key(key: str, prefix: str, type: int, ctx: KeyContext | None = None) -> str:
    """The legacy native key (Qt 4.4 to 6.x): ``QtIpcCommon::legacyPlatformSafeKey``.

    ``prefix`` is :data:`SHM_PREFIX` or :data:`SEM_PREFIX`. ``""`` for an empty key or a type
    this Qt build does not have.
    """
    ctx = _ctx(ctx)
    if not key:
        return ""
    letters, hex_digest = _letters_and_hash(key, ctx.qt_version)
    # Darwin POSIX names are at most 30 bytes: Qt (in 6.4.2, not in 5.15.8) uses the hash alone,
    # or the key itself for a sandboxed app. 6.0-6.3 were not read; 6.4.0 is assumed.
    if type == _Type.PosixRealtime and ctx.is_darwin and ctx.qt_version >= (6, 4, 0):
        return key if ctx.sandboxed else "/" + hex_digest[: _DARWIN_SHM_NAME_MAX - 1]
    name = prefix + letters + hex_digest
    if not _type_compiled_in(type, ctx):
        return ""
    if type == _Type.Windows:
        return name  # Qt adds no Global\ or Local\ prefix
    if type == _Type.PosixRealtime:
        return "/" + name
    return temp_path(ctx) + "/" + name


def platform_safe_native_key(
    key: str, prefix_kind: KeyKind, type: int, ctx: KeyContext | None = None
) -> str:
    """The native key of Qt 6.6's ``platformSafeKey(key, type)`` (``QtIpcCommon::platformSafeKey``).

    ``""`` for an empty key or a type this Qt build does not have.
    """
    ctx = _ctx(ctx)
    prefix = _prefix(prefix_kind)
    if not key or not _type_compiled_in(type, ctx):
        return ""
    if type == _Type.PosixRealtime:
        if ctx.is_darwin:
            return "/" + _utf16_left(key, _DARWIN_SHM_NAME_MAX - 1)
        return "/" + key
    if type == _Type.Windows:
        namespace = ""
        for candidate in ("Local\\", "Global\\"):
            if key.startswith(candidate):
                namespace, key = candidate, key[len(candidate) :]
                break
        middle = "shm_" if prefix == SHM_PREFIX else "sem_"
        return _utf16_left(namespace + middle + key, _WINDOWS_MAX_PATH)
    if key.startswith("/"):
        return key
    return runtime_dir(ctx) + "/" + key


# ----- QNativeIpcKey ---------------------------------------------------------------------------

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _is_url_scheme(text: str) -> bool:
    """RFC 3986: ``ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )``, ASCII only."""
    return (
        bool(text)
        and text.isascii()
        and text[0].isalpha()
        and all(ch.isalnum() or ch in "+-." for ch in text)
    )


def _type_to_string(t: int) -> str:
    if t == _Type.SystemV:
        return "systemv"
    if t == _Type.PosixRealtime:
        return "posix"
    if t == _Type.Windows:
        return "windows"
    if _is_sysv(t):
        return f"systemv-{t}"
    return ""


def _string_to_type(scheme: str) -> int:
    """``stringToType`` of ``qtipccommon.cpp``; 0 when not recognised."""
    if scheme == "posix":
        return _Type.PosixRealtime
    if scheme == "windows":
        return _Type.Windows
    if scheme == "systemv":
        return _Type.SystemV
    # "systemv-<n>", n decimal 1..255: Qt negates QString::toInt() of "-<n>", so "+7",
    # "--7", hex, 0, 256 and overflowing numbers are all rejected; zero padding is accepted.
    import re  # only fromString() needs it; keep it out of import time

    match = re.fullmatch(r"systemv-([0-9]+)", scheme)
    if match and 1 <= int(match.group(1)) <= 0xFF:
        return int(match.group(1))
    return 0


def _escape(text: str, specials: str) -> str:
    """Percent-encode ``specials``, the C0 controls and DEL as QUrl's ``toString`` does."""
    out = []
    for ch in text:
        if ch in specials or ch < " " or ch == "\x7f":
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def _fix_bad_escapes(component: str) -> str:
    """QUrl TolerantMode: one malformed ``%`` escape makes every ``%`` of the component literal."""
    n = len(component)
    for i, ch in enumerate(component):
        if ch == "%" and not (
            i + 2 < n and component[i + 1] in _HEX_DIGITS and component[i + 2] in _HEX_DIGITS
        ):
            return component.replace("%", "%25")
    return component


def _tokens(text: str) -> Iterator[int | str]:
    """The characters of a well-encoded component, each ``%XX`` escape as its byte (an int)."""
    i = 0
    while i < len(text):
        if text[i] == "%":
            yield int(text[i + 1 : i + 3], 16)
            i += 3
        else:
            yield text[i]
            i += 1


def _utf8_decode(data: bytes, accept: Callable[[str], bool] = lambda char: True) -> str:
    """UTF-8 as Qt decodes it: every byte that does not start a valid sequence is one U+FFFD."""
    out: list[str] = []
    i = 0
    while i < len(data):
        lead = data[i]
        size = 1 if lead < 0x80 else 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4
        try:
            char = data[i : i + size].decode("utf-8")
        except UnicodeDecodeError:
            char = ""
        if char and accept(char):
            out.append(char)
            i += size
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def _url_accepts(char: str) -> bool:
    """QUrlUtf8Traits: QUrl leaves an escaped Unicode non-character encoded (U+FDD0, U+xFFFE)."""
    code = ord(char)
    return not (0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE)


def _decode_path(path: str) -> str:
    """``QUrl::path(FullyDecoded)`` after a TolerantMode parse (qurlrecode.cpp).

    Runs of escaped bytes are read as UTF-8; a byte that is not part of a valid sequence, or of
    one that encodes a non-character, becomes U+FFFD.
    """
    out: list[str] = []
    run = bytearray()
    for token in _tokens(_fix_bad_escapes(path)):
        if isinstance(token, int):
            run.append(token)
        else:
            out += (_utf8_decode(bytes(run), _url_accepts), token)
            run.clear()
    out.append(_utf8_decode(bytes(run), _url_accepts))
    return "".join(out)


def _decode_query_value(value: str) -> str:
    """``QUrl::fromPercentEncoding`` of a query item, as ``fromString`` reads ``legacyKey``."""
    data = bytearray()
    for token in _tokens(value):
        if isinstance(token, int):
            data.append(token)
        else:
            data += token.encode("utf-8", "surrogatepass")
    if data.startswith(b"\xef\xbb\xbf"):
        del data[:3]  # QString::fromUtf8 drops a leading byte order mark
    return _utf8_decode(bytes(data))


def _authority_is_empty(authority: str) -> bool:
    """True when QUrl finds no user info, no host and no port in ``authority`` (and no error)."""
    at = authority.find("@")
    if at != -1:
        if at > 0:
            return False  # user info present
        authority = authority[at + 1 :]
    # A ":" with nothing after it is no port; anything else is a host, a port or an error.
    return authority in ("", ":")


class QNativeIpcKey:
    """``QNativeIpcKey`` (Qt 6.6+): a native key, its type, and the legacy key it came from."""

    Type = _Type
    DefaultTypeForOs: _Type = _Type.Windows if sys.platform == "win32" else _Type.PosixRealtime

    __slots__ = ("_key", "_type", "_legacy_key")

    def __init__(self, nativeKey: str | int = "", type: int | None = None) -> None:
        """``QNativeIpcKey(key, type = DefaultTypeForOs)``, or ``QNativeIpcKey(type)``."""
        if not isinstance(nativeKey, str):
            if type is not None:
                raise TypeError("QNativeIpcKey(type) takes a single argument")
            type = nativeKey
            nativeKey = ""
        self._key = nativeKey
        self._type = _Type(self.DefaultTypeForOs if type is None else type)
        self._legacy_key = ""

    @staticmethod
    def legacyDefaultTypeForOs(ctx: KeyContext | None = None) -> _Type:
        """``QNativeIpcKey::legacyDefaultTypeForOs()``: the type Qt < 6.6 used on ``ctx``."""
        ctx = _ctx(ctx)
        if ctx.is_windows:
            return _Type.Windows
        if ctx.posix_ipc_build:
            return _Type.PosixRealtime
        if ctx.is_darwin and ctx.sandboxed:
            return _Type.PosixRealtime
        return _Type.SystemV

    def type(self) -> _Type:
        """``QNativeIpcKey::type()``."""
        return self._type

    def setType(self, type: int) -> None:
        """``QNativeIpcKey::setType()`` (keeps the legacy key, as Qt does)."""
        self._type = _Type(type)

    def nativeKey(self) -> str:
        """``QNativeIpcKey::nativeKey()``."""
        return self._key

    def setNativeKey(self, newKey: str) -> None:
        """``QNativeIpcKey::setNativeKey()``: also forgets the legacy key, as Qt does."""
        self._key = newKey
        self._legacy_key = ""

    def legacyKey(self) -> str:
        """The key a legacy native key was made from (Qt's private ``legacyKey_``), or ``""``.

        ``QSharedMemory.key()`` returns it and ``toString()`` writes it as ``?legacyKey=``.
        """
        return self._legacy_key

    @property
    def legacy_key(self) -> str:
        """Read/write access to :meth:`legacyKey` for this library (Qt has no public setter)."""
        return self._legacy_key

    @legacy_key.setter
    def legacy_key(self, value: str) -> None:
        self._legacy_key = value

    def isEmpty(self) -> bool:
        """``QNativeIpcKey::isEmpty()``: the native key is empty."""
        return not self._key

    def isValid(self) -> bool:
        """``QNativeIpcKey::isValid()``: the type is not 0 (the key is not checked)."""
        return self._type != 0

    def toString(self) -> str:
        """``QNativeIpcKey::toString()``: ``"<type>:<key>[?legacyKey=<key>]"``, ``""`` if invalid."""
        scheme = _type_to_string(self._type)
        if not scheme:
            return ""
        path = _escape(self._key, "%#?")
        if path.startswith("//"):
            path = "/%2F" + path[2:]  # Qt's trick so that QUrl does not read an authority
        if self._legacy_key:
            return f"{scheme}:{path}?legacyKey={_escape(self._legacy_key, '%#&=')}"
        return f"{scheme}:{path}"

    @staticmethod
    def fromString(text: str) -> QNativeIpcKey:
        """``QNativeIpcKey::fromString()``: an invalid key (type 0) if ``text`` is not one."""
        invalid = QNativeIpcKey(_Type(0))
        hash_at = text.find("#")
        if hash_at != -1:
            text = text[:hash_at]  # the fragment is ignored
        query: str | None = None
        question = text.find("?")
        if question != -1:
            text, query = text[:question], text[question + 1 :]
        colon = text.find(":")
        if colon == -1 or not _is_url_scheme(text[:colon]):
            return invalid
        type = _string_to_type(text[:colon].lower())
        if not type:
            return invalid
        path = text[colon + 1 :]
        if path.startswith("//"):
            slash = path.find("/", 2)
            authority, path = (path[2:], "") if slash == -1 else (path[2:slash], path[slash:])
            if not _authority_is_empty(authority):
                return invalid
        result = QNativeIpcKey(_decode_path(path), type)
        if query:
            items = _fix_bad_escapes(query).split("&")
            if not items[-1]:
                items.pop()  # QUrlQuery: a trailing "&" ends the list, "&&" makes an empty item
            for item in items:
                name, _, value = item.partition("=")
                if _decode_query_value(name) != "legacyKey":
                    return invalid  # Qt reserves every other query item
                result._legacy_key = _decode_query_value(value)
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QNativeIpcKey):
            return NotImplemented
        return (self._type, self._key, self._legacy_key) == (
            other._type,
            other._key,
            other._legacy_key,
        )

    def __hash__(self) -> int:
        # Qt's qHash leaves the legacy key out on purpose.
        return hash((self._key, int(self._type)))

    def __repr__(self) -> str:
        legacy = f", legacyKey={self._legacy_key!r}" if self._legacy_key else ""
        return f"QNativeIpcKey({self._key!r}, {self._type!r}{legacy})"


def make_platform_safe_key(
    key: str, kind: KeyKind, type: int | None = None, ctx: KeyContext | None = None
) -> QNativeIpcKey:
    """``QSharedMemory::platformSafeKey`` / ``QSystemSemaphore::platformSafeKey`` (Qt 6.6+).

    ``type`` defaults to ``DefaultTypeForOs`` of ``ctx.platform``. A type the build lacks gives
    an empty native key that keeps the type, as in Qt.
    """
    t = default_type_for_os(ctx) if type is None else _Type(type)
    return QNativeIpcKey(platform_safe_native_key(key, kind, t, ctx), t)


def make_legacy_native_key(
    key: str, kind: KeyKind, type: int | None = None, ctx: KeyContext | None = None
) -> QNativeIpcKey:
    """``QSharedMemory::legacyNativeKey`` / ``QSystemSemaphore::legacyNativeKey``.

    ``type`` defaults to :meth:`QNativeIpcKey.legacyDefaultTypeForOs`. The result carries ``key``
    as its legacy key unless its native key is empty.
    """
    t = QNativeIpcKey.legacyDefaultTypeForOs(ctx) if type is None else _Type(type)
    result = QNativeIpcKey(legacy_platform_safe_key(key, _prefix(kind), t, ctx), t)
    if not result.isEmpty():
        result.legacy_key = key
    return result


def semaphore_native_key(shm_key: QNativeIpcKey) -> QNativeIpcKey:
    """``QSharedMemoryPrivate::semaphoreNativeKey`` (6.6+): the lock of a non-legacy key.

    POSIX and System V: the same key (the namespaces are separate). Windows: the first 255
    UTF-16 units of the native key plus ``"_sem"``.
    """
    if shm_key.type() == _Type.Windows:
        suffix = "_sem"
        native = _utf16_left(shm_key.nativeKey(), _WINDOWS_MAX_PATH - len(suffix) - 1)
        return QNativeIpcKey(native + suffix, _Type.Windows)
    copy = QNativeIpcKey(shm_key.nativeKey(), shm_key.type())
    copy.legacy_key = shm_key.legacy_key
    return copy


def lock_semaphore_key(shm_key: QNativeIpcKey, ctx: KeyContext | None = None) -> QNativeIpcKey | None:
    """The semaphore ``QSharedMemory`` locks for ``shm_key`` in ``ctx.qt_version``.

    With a legacy key: ``legacyNativeKey(legacyKey, type)`` of the semaphore (``qipc_systemsem_``),
    except in 6.6.0, whose bug locks the shared memory's own native key. Without one: ``None``
    before 6.6 (Qt does not lock), :func:`semaphore_native_key` from 6.6 on.
    """
    ctx = _ctx(ctx)
    legacy = shm_key.legacyKey()
    if ctx.qt_version == (6, 6, 0):
        return semaphore_native_key(shm_key)
    if legacy:
        return make_legacy_native_key(legacy, "sem", shm_key.type(), ctx)
    if ctx.qt_version < (6, 6, 0):
        return None
    return semaphore_native_key(shm_key)
