"""Pure tests of qshm_compat.keys: the names Qt derives from a key, on every platform and version.

Expected values come from /work/shared/spec/qt-ipc.md (§2, §3, §6, §8), qt-observed.md (§1, §2),
Qt's own tests/auto/corelib/ipc/qnativeipckey, and runs of Qt 5.15.8, 5.15.19, 6.4.2, 6.11.2 and
6.12.0 (tests/test_keys_qt.py checks the same facts against the real peers). macOS and Windows
rules are checked as pure functions through KeyContext.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qshm_compat.keys import (
    SEM_PREFIX,
    SHM_PREFIX,
    KeyContext,
    QNativeIpcKey,
    default_qt_version,
    is_key_type_supported,
    legacy_platform_safe_key,
    lock_semaphore_key,
    make_legacy_native_key,
    make_platform_safe_key,
    parse_qt_version,
    platform_safe_native_key,
    runtime_dir,
    semaphore_native_key,
    temp_path,
)

T = QNativeIpcKey.Type
QT5 = (5, 15, 19)
QT64 = (6, 4, 2)
QT66 = (6, 6, 0)
QT691 = (6, 9, 1)
QT692 = (6, 9, 2)
QT612 = (6, 12, 0)

EXAMPLE_HASH = "ff77196351dd7c1c8f79461ad32f21726fe31f5b"  # sha1("QSharedMemoryExample")
LONG_KEY = ("abcdefghijklmnopqrstuvwxyz0123456789" * 9)[:300]

needs_unix_ids = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="needs Unix user ids")


def linux(qt: tuple[int, int, int] = QT612, **env: str) -> KeyContext:
    return KeyContext(platform="linux", qt_version=qt, environ=env)


def darwin(qt: tuple[int, int, int] = QT612, sandboxed: bool = False, **env: str) -> KeyContext:
    return KeyContext(platform="darwin", qt_version=qt, environ=env, sandboxed=sandboxed)


def windows(qt: tuple[int, int, int] = QT612, **env: str) -> KeyContext:
    return KeyContext(platform="win32", qt_version=qt, environ=env)


def user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


# ----- versions and context --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [("5.15", (5, 15, 0)), ("6.9.2", (6, 9, 2)), ("6", (6, 0, 0)), ("6.11.2", (6, 11, 2)),
     ((6, 9), (6, 9, 0)), ((5, 15, 8), (5, 15, 8)), ("6.12.0-beta1", (6, 12, 0))],
)
def test_parse_qt_version(text: str | tuple[int, ...], version: tuple[int, int, int]) -> None:
    """Qt version strings and tuples become (major, minor, patch)."""
    assert parse_qt_version(text) == version


@pytest.mark.parametrize("bad", ["", "six", "v6.9", (), (1, 2, 3, 4)])
def test_parse_qt_version_rejects_garbage(bad: str | tuple[int, ...]) -> None:
    """Anything that is not a version is a ValueError."""
    with pytest.raises(ValueError):
        parse_qt_version(bad)


def test_default_qt_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default is Qt 5.15 unless $QSHM_QT_VERSION says otherwise, and None means it."""
    monkeypatch.delenv("QSHM_QT_VERSION", raising=False)
    assert default_qt_version() == (5, 15, 0)
    assert KeyContext().qt_version == (5, 15, 0)
    monkeypatch.setenv("QSHM_QT_VERSION", "6.9.2")
    assert default_qt_version() == (6, 9, 2)
    assert parse_qt_version(None) == (6, 9, 2)
    assert KeyContext().qt_version == (6, 9, 2)


# ----- legacy keys (§2.1, qt-observed §1) ------------------------------------------------------


@pytest.mark.parametrize("qt", [QT5, QT64, QT66, QT612])
@pytest.mark.parametrize(
    ("key", "native"),
    [
        ("QSharedMemoryExample", f"/tmp/qipc_sharedmemory_QSharedMemoryExample{EXAMPLE_HASH}"),
        ("Hello World! ÄÖ 123",
         "/tmp/qipc_sharedmemory_HelloWorldb535e66cdc8401bf838dba9f8e3edf4dbb56823f"),
        ("123", "/tmp/qipc_sharedmemory_40bd001563085fc35165329ea1ff5c5ecbdbbeef"),
        ("key123", "/tmp/qipc_sharedmemory_keye48c47f1431afd3bb030deea266b4309e2228c5b"),
        ("a b/c-d_e", "/tmp/qipc_sharedmemory_abcdef5b1ff8eac7d0615da698a0e2267634b6d7c6819"),
        ("日本語キー", "/tmp/qipc_sharedmemory_9efc7943abbd79bf1f9283845e755b8872c9911c"),
        ("", ""),
    ],
)
def test_legacy_sysv_names_observed(key: str, native: str, qt: tuple[int, int, int]) -> None:
    """QSharedMemory(key).nativeKey() on Linux, TMPDIR unset, is the same in every Qt version."""
    ctx = KeyContext(platform="linux", qt_version=qt, environ={})
    if native and qt < QT692:
        native = os.path.realpath("/tmp") + native[len("/tmp"):]  # canonical (macOS: /private/tmp)
    assert legacy_platform_safe_key(key, SHM_PREFIX, T.SystemV, ctx) == native
    assert make_legacy_native_key(key, "shm", ctx=ctx).nativeKey() == native


def test_legacy_semaphore_uses_its_prefix() -> None:
    """The lock semaphore of a legacy key is the same formula with qipc_systemsem_."""
    ctx = linux()
    assert legacy_platform_safe_key("Hello World! ÄÖ 123", SEM_PREFIX, T.SystemV, ctx) == (
        "/tmp/qipc_systemsem_HelloWorldb535e66cdc8401bf838dba9f8e3edf4dbb56823f"
    )
    assert make_legacy_native_key("QSharedMemoryExample", "sem", ctx=ctx).toString() == (
        f"systemv:/tmp/qipc_systemsem_QSharedMemoryExample{EXAMPLE_HASH}?legacyKey=QSharedMemoryExample"
    )


def test_legacy_long_key_is_not_shortened() -> None:
    """A 300-character key keeps all its 220 letters: a 283-character path (too long for Qt)."""
    native = legacy_platform_safe_key(LONG_KEY, SHM_PREFIX, T.SystemV, linux())
    letters = "".join(c for c in LONG_KEY if c.isalpha())
    assert len(letters) == 220
    assert native == "/tmp/qipc_sharedmemory_" + letters + "ea366c3318db52e009d313c3da9a9761f4571dbf"
    assert len(native) == 283


@given(st.text())
def test_legacy_formula(key: str) -> None:
    """Prefix + the key's ASCII letters + sha1(utf8(key)) in lowercase hex, for any key."""
    native = legacy_platform_safe_key(key, SHM_PREFIX, T.PosixRealtime, linux())
    if not key:
        assert native == ""
        return
    letters = "".join(c for c in key if c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()
    assert native == "/qipc_sharedmemory_" + letters + digest


def test_legacy_posix_example() -> None:
    """The POSIX legacy name is "/" + the name, and toString() escapes the legacy key."""
    key = make_legacy_native_key("my key/ä%#?&=+", "shm", T.PosixRealtime, linux())
    assert key.nativeKey() == "/qipc_sharedmemory_mykey74cd551b3090132b81fff5238de0af03e8998a98"
    assert key.legacyKey() == "my key/ä%#?&=+"
    assert key.toString() == (
        "posix:/qipc_sharedmemory_mykey74cd551b3090132b81fff5238de0af03e8998a98"
        "?legacyKey=my key/ä%25%23?%26%3D+"
    )


def test_legacy_native_key_defaults_and_types() -> None:
    """legacyNativeKey uses the legacy default type, keeps custom SysV ids, empties what Linux lacks."""
    ctx = linux()
    assert make_legacy_native_key("k", "shm", ctx=ctx).type() == T.SystemV
    custom = make_legacy_native_key("k", "shm", 7, ctx)
    assert custom.toString().startswith("systemv-7:/tmp/qipc_sharedmemory_k")
    win = make_legacy_native_key("k", "shm", T.Windows, ctx)
    assert (win.toString(), win.legacyKey(), win.type()) == ("windows:", "", T.Windows)
    empty = make_legacy_native_key("", "shm", T.SystemV, ctx)
    assert (empty.toString(), empty.legacyKey()) == ("systemv:", "")


def test_legacy_key_follows_tmpdir() -> None:
    """The SysV legacy name lives in QDir::tempPath(): TMPDIR with its trailing slash removed."""
    ctx = linux(TMPDIR="/some/where/")
    assert legacy_platform_safe_key("key123", SHM_PREFIX, T.SystemV, ctx) == (
        "/some/where/qipc_sharedmemory_keye48c47f1431afd3bb030deea266b4309e2228c5b"
    )


def test_legacy_key_with_missing_tmpdir_before_692(tmp_path: Path) -> None:
    """Up to 6.9.1 a missing TMPDIR gives tempPath "" and a key file in "/"."""
    ctx = linux(QT5, TMPDIR=str(tmp_path / "missing"))
    assert legacy_platform_safe_key("key123", SHM_PREFIX, T.SystemV, ctx) == (
        "/qipc_sharedmemory_keye48c47f1431afd3bb030deea266b4309e2228c5b"
    )


# ----- Darwin (§2.1 step 3, §2.3; source only) -------------------------------------------------


def test_darwin_posix_legacy_is_29_hex() -> None:
    """Darwin POSIX legacy names are "/" + 29 hex digits, the same for shm and semaphore."""
    for prefix in (SHM_PREFIX, SEM_PREFIX):
        assert legacy_platform_safe_key("QSharedMemoryExample", prefix, T.PosixRealtime, darwin()) == (
            "/ff77196351dd7c1c8f79461ad32f2"
        )
    key = make_legacy_native_key("QSharedMemoryExample", "sem", T.PosixRealtime, darwin(QT64))
    assert (key.nativeKey(), key.legacyKey()) == ("/ff77196351dd7c1c8f79461ad32f2", "QSharedMemoryExample")


def test_darwin_posix_legacy_sandboxed_is_verbatim() -> None:
    """A sandboxed app's Darwin POSIX legacy name is the key itself."""
    ctx = darwin(sandboxed=True)
    assert legacy_platform_safe_key("group.app/x", SHM_PREFIX, T.PosixRealtime, ctx) == "group.app/x"


def test_darwin_posix_legacy_in_qt5_is_long() -> None:
    """Qt 5.15 had no Darwin special case: "/qipc_sharedmemory_..." (too long for macOS)."""
    assert legacy_platform_safe_key("QSharedMemoryExample", SHM_PREFIX, T.PosixRealtime, darwin(QT5)) == (
        f"/qipc_sharedmemory_QSharedMemoryExample{EXAMPLE_HASH}"
    )


def test_darwin_sysv_legacy_uses_tmpdir() -> None:
    """Darwin SysV legacy names live in TMPDIR (6.9.2+: not resolved to /private/var)."""
    ctx = darwin(TMPDIR="/var/folders/xy/abc/T/")
    assert legacy_platform_safe_key("k", SHM_PREFIX, T.SystemV, ctx).startswith("/var/folders/xy/abc/T/qipc_")


def test_darwin_platform_safe_posix_truncates() -> None:
    """Darwin platformSafeKey(POSIX) keeps 29 UTF-16 units of the key, shm and sem alike."""
    key = "a" * 28 + "\U0001f600" + "tail"
    assert platform_safe_native_key("a" * 40, "shm", T.PosixRealtime, darwin()) == "/" + "a" * 29
    assert platform_safe_native_key(key, "sem", T.PosixRealtime, darwin()) == "/" + "a" * 28 + "\ud83d"


def test_darwin_runtime_dir() -> None:
    """macOS RuntimeLocation is ~/Library/Application Support."""
    assert runtime_dir(darwin(HOME="/Users/me")) == "/Users/me/Library/Application Support"
    assert platform_safe_native_key("k", "shm", T.SystemV, darwin(HOME="/Users/me/")) == (
        "/Users/me/Library/Application Support/k"
    )


def test_darwin_types() -> None:
    """Darwin: legacy default SysV (POSIX when sandboxed), no SysV at all when sandboxed."""
    assert QNativeIpcKey.legacyDefaultTypeForOs(darwin()) == T.SystemV
    assert QNativeIpcKey.legacyDefaultTypeForOs(darwin(sandboxed=True)) == T.PosixRealtime
    assert is_key_type_supported(T.SystemV, darwin())
    assert not is_key_type_supported(T.SystemV, darwin(sandboxed=True))
    assert not is_key_type_supported(9, darwin(sandboxed=True))
    assert is_key_type_supported(T.PosixRealtime, darwin(sandboxed=True))
    assert make_platform_safe_key("k", "shm", ctx=darwin()).toString() == "posix:/k"


# ----- Windows (§2.1 step 5, §2.3, §6; source only) --------------------------------------------


def test_windows_legacy_names_have_no_namespace() -> None:
    """Windows legacy names are the bare prefix + letters + hash, no Global\\ or Local\\."""
    ctx = windows()
    assert QNativeIpcKey.legacyDefaultTypeForOs(ctx) == T.Windows
    assert make_legacy_native_key("QSharedMemoryExample", "shm", ctx=ctx).nativeKey() == (
        f"qipc_sharedmemory_QSharedMemoryExample{EXAMPLE_HASH}"
    )
    assert make_legacy_native_key("QSharedMemoryExample", "sem", ctx=ctx).nativeKey() == (
        f"qipc_systemsem_QSharedMemoryExample{EXAMPLE_HASH}"
    )
    assert make_legacy_native_key("k", "shm", T.SystemV, ctx).toString() == "systemv:"


@pytest.mark.parametrize(
    ("key", "kind", "native"),
    [
        ("app", "shm", "shm_app"),
        ("app", "sem", "sem_app"),
        ("Global\\app", "shm", "Global\\shm_app"),
        ("Local\\app", "sem", "Local\\sem_app"),
        ("global\\app", "shm", "shm_global\\app"),  # the prefix test is case-sensitive
        ("Global\\Local\\x", "shm", "Global\\shm_Local\\x"),
        ("", "shm", ""),
    ],
)
def test_windows_platform_safe_key(key: str, kind: str, native: str) -> None:
    """platformSafeKey on Windows: namespace prefix kept in front, then shm_/sem_."""
    result = make_platform_safe_key(key, kind, ctx=windows())  # type: ignore[arg-type]
    assert (result.type(), result.nativeKey()) == (T.Windows, native)


def test_windows_platform_safe_key_max_path() -> None:
    """Windows platform-safe names are cut to MAX_PATH (260) UTF-16 units."""
    assert platform_safe_native_key("x" * 300, "shm", T.Windows, windows()) == "shm_" + "x" * 256
    astral = "x" * 255 + "\U0001f600"  # "shm_" + 255 units, then half of a surrogate pair fits
    assert platform_safe_native_key(astral, "shm", T.Windows, windows()).endswith("x\ud83d")


def test_windows_types() -> None:
    """Windows has only the Windows type; other types give an empty key that keeps its type."""
    ctx = windows()
    assert is_key_type_supported(T.Windows, ctx)
    assert not is_key_type_supported(T.SystemV, ctx)
    assert not is_key_type_supported(T.PosixRealtime, ctx)
    assert make_platform_safe_key("k", "shm", ctx=ctx).toString() == "windows:shm_k"
    assert make_platform_safe_key("k", "shm", T.PosixRealtime, ctx).toString() == "posix:"


def test_semaphore_native_key() -> None:
    """The 6.6+ lock of a native key: the same key, or on Windows <key[:255]>_sem."""
    posix = QNativeIpcKey("/natkey", T.PosixRealtime)
    assert semaphore_native_key(posix) == posix
    sysv = QNativeIpcKey("/tmp/natkey", 7)
    assert semaphore_native_key(sysv) == sysv
    win = semaphore_native_key(QNativeIpcKey("w" * 300, T.Windows))
    assert (win.type(), win.nativeKey()) == (T.Windows, "w" * 255 + "_sem")
    assert semaphore_native_key(QNativeIpcKey("shm_app", T.Windows)).nativeKey() == "shm_app_sem"


def test_lock_semaphore_key_by_version() -> None:
    """QSharedMemory's lock: legacy sem names (6.6.0: the shm name), native keys unlocked before 6.6."""
    def legacy(qt: tuple[int, int, int]) -> QNativeIpcKey:
        return make_legacy_native_key("QSharedMemoryExample", "shm", ctx=linux(qt))

    sem_name = f"/tmp/qipc_systemsem_QSharedMemoryExample{EXAMPLE_HASH}"
    for qt in (QT64, (6, 6, 1), QT612):
        lock = lock_semaphore_key(legacy(qt), linux(qt))
        assert lock is not None and lock.nativeKey() == sem_name
    buggy = lock_semaphore_key(legacy(QT66), linux(QT66))
    assert buggy is not None and buggy.nativeKey() == legacy(QT66).nativeKey()
    native = QNativeIpcKey("/natkey", T.PosixRealtime)
    assert lock_semaphore_key(native, linux(QT64)) is None
    assert lock_semaphore_key(native, linux(QT612)) == native
    posix_legacy = make_legacy_native_key("k", "shm", T.PosixRealtime, linux())
    lock = lock_semaphore_key(posix_legacy, linux())
    assert lock is not None and lock.nativeKey().startswith("/qipc_systemsem_k")


# ----- Linux types and platform-safe keys (§1.2, §2.3) -----------------------------------------


def test_linux_types() -> None:
    """Linux: default POSIX, legacy default SysV (POSIX in a QT_POSIX_IPC build); no Windows."""
    ctx = linux()
    assert QNativeIpcKey.legacyDefaultTypeForOs(ctx) == T.SystemV
    posix_build = KeyContext(platform="linux", posix_ipc_build=True, environ={})
    assert QNativeIpcKey.legacyDefaultTypeForOs(posix_build) == T.PosixRealtime
    assert make_legacy_native_key("k", "shm", ctx=posix_build).nativeKey().startswith("/qipc_sharedmemory_k")
    assert [is_key_type_supported(t, ctx) for t in (T.SystemV, T.PosixRealtime, T.Windows, 1, 255)] == [
        True, True, False, True, True,
    ]


def test_invalid_type_takes_the_sysv_branch() -> None:
    """Qt treats any type but POSIX and Windows as System V, even 0 (run: Qt 6.11.2)."""
    ctx = linux(XDG_RUNTIME_DIR="/run/user/0")
    assert is_key_type_supported(0, ctx) and is_key_type_supported(1000, ctx)
    assert not is_key_type_supported(0, darwin(sandboxed=True))
    legacy = make_legacy_native_key("k", "shm", 0, ctx)
    assert legacy.nativeKey() == "/tmp/qipc_sharedmemory_k13fbd79c3d390e5d6585a21e11ff5ec1970cff0c"
    assert (legacy.isValid(), legacy.toString()) == (False, "")
    assert platform_safe_native_key("/abs", "shm", 0, ctx) == "/abs"


def test_platform_safe_posix() -> None:
    """platformSafeKey(POSIX) is "/" + the key, untouched; empty key stays empty."""
    ctx = linux()
    assert platform_safe_native_key("my key/ä%#?&=+", "shm", T.PosixRealtime, ctx) == "/my key/ä%#?&=+"
    assert make_platform_safe_key("abc", "shm", ctx=ctx).toString() == "posix:/abc"
    assert make_platform_safe_key("a b/c-d_e", "sem", ctx=ctx).toString() == "posix:/a b/c-d_e"
    assert make_platform_safe_key("", "shm", ctx=ctx).toString() == "posix:"
    assert make_platform_safe_key("x", "shm", T.Windows, ctx).toString() == "windows:"


@needs_unix_ids
def test_platform_safe_sysv_uses_runtime_dir(tmp_path: Path) -> None:
    """platformSafeKey(SystemV) puts a relative key in $XDG_RUNTIME_DIR, an absolute one as is."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    xdg.chmod(0o700)
    ctx = linux(XDG_RUNTIME_DIR=str(xdg), TMPDIR=str(tmp_path))
    assert platform_safe_native_key("my key/ä%#?&=+", "shm", T.SystemV, ctx) == f"{xdg}/my key/ä%#?&=+"
    assert make_platform_safe_key("k", "sem", 9, ctx).toString() == f"systemv-9:{xdg}/k"
    bare = linux(TMPDIR=str(tmp_path))
    assert platform_safe_native_key("/abs/key", "shm", T.SystemV, bare) == "/abs/key"
    assert not (tmp_path / f"runtime-{user_name()}").exists()  # an absolute key looks nothing up


# ----- QDir::tempPath() (§2.2) -----------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    """tmp/realdir, tmp/linkdir -> realdir, tmp/loop -> loop."""
    base = tmp_path.resolve()
    (base / "realdir").mkdir()
    (base / "linkdir").symlink_to(base / "realdir")
    (base / "loop").symlink_to(base / "loop")
    return base


# (TMPDIR, <= 6.9.1, >= 6.9.2); "@" is the fixture's directory, also the cwd. Run on Qt 5.15.19,
# 6.4.2, 6.11.2 and 6.12.0 (tests/test_keys_qt.py re-runs the table against the peers).
TEMP_PATH_TABLE = [
    ("@//realdir/../realdir/", "@/realdir", "@/realdir"),
    ("@/realdir/", "@/realdir", "@/realdir"),
    ("@/linkdir", "@/realdir", "@/linkdir"),
    ("@/linkdir/", "@/realdir", "@/linkdir"),
    ("@/nonexistent", "", "@/nonexistent"),
    ("relative/dir", "", "@/relative/dir"),
    ("realdir", "@/realdir", "@/realdir"),
    (".", "@", "@"),
    ("./", "@", "@"),
    ("@/realdir/..", "@", "@"),
    ("@/linkdir/../realdir", "@/realdir", "@/realdir"),
    ("@/realdir//", "@/realdir", "@/realdir/"),  # 6.9.2+ strips only one trailing "/"
    ("realdir//", "@/realdir", "@/realdir/"),
    ("/", "/", "/"),
    ("//", "/", "/"),
    ("///", "/", "//"),
    ("/..", "/", "/.."),  # QDir::cleanPath keeps a ".." it cannot resolve
    ("loop", "loop", "@/loop"),  # realpath() fails on a loop: Qt <= 6.9.1 keeps the cleaned path
]


@pytest.mark.parametrize(("tmpdir", "old", "new"), TEMP_PATH_TABLE)
def test_temp_path_table(dirs: Path, tmpdir: str, old: str, new: str) -> None:
    """QDir::tempPath(): canonical up to 6.9.1, absolute and clean from 6.9.2."""
    base = str(dirs)
    env = {"TMPDIR": tmpdir.replace("@", base)}
    for qt, expected in ((QT5, old), (QT64, old), (QT691, old), (QT692, new), (QT612, new)):
        ctx = KeyContext(platform="linux", qt_version=qt, environ=env, cwd=base)
        assert temp_path(ctx) == expected.replace("@", base), qt


def test_temp_path_unset() -> None:
    """TMPDIR unset or empty: /tmp (canonical up to 6.9.1)."""
    for env in ({}, {"TMPDIR": ""}):
        assert temp_path(KeyContext(platform="linux", qt_version=QT612, environ=env)) == "/tmp"
        old = KeyContext(platform="linux", qt_version=QT5, environ=env)
        assert temp_path(old) == os.path.realpath("/tmp")


def test_temp_path_darwin_692_keeps_var() -> None:
    """macOS 6.9.2+: /var/folders/.../T/ is not resolved to /private/var (no file system access)."""
    ctx = darwin(QT692, TMPDIR="/var/folders/xy/abc/T/")
    assert temp_path(ctx) == "/var/folders/xy/abc/T"


def test_temp_path_windows() -> None:
    """Windows: TMP with forward slashes, no trailing separator, upper-case drive."""
    assert temp_path(windows(TMP="c:\\Users\\me\\AppData\\Local\\Temp\\")) == "C:/Users/me/AppData/Local/Temp"


# ----- RuntimeLocation (§2.3, qstandardpaths_unix.cpp checkXdgRuntimeDir) ------------------------


@pytest.fixture
def rt(tmp_path: Path) -> Path:
    base = tmp_path.resolve()
    (base / "tmp").mkdir()
    (base / "good").mkdir()
    (base / "good").chmod(0o700)
    return base


def rt_ctx(base: Path, xdg: str | None) -> KeyContext:
    env = {"TMPDIR": str(base / "tmp")}
    if xdg is not None:
        env["XDG_RUNTIME_DIR"] = xdg
    return KeyContext(platform="linux", qt_version=QT612, environ=env, cwd=str(base))


@needs_unix_ids
def test_runtime_dir_valid_xdg(rt: Path) -> None:
    """A valid $XDG_RUNTIME_DIR (0700, ours, a real directory) is used verbatim."""
    assert runtime_dir(rt_ctx(rt, str(rt / "good"))) == str(rt / "good")
    assert runtime_dir(rt_ctx(rt, str(rt / "good") + "/")) == str(rt / "good") + "/"
    assert not (rt / "tmp" / f"runtime-{user_name()}").exists()


@needs_unix_ids
def test_runtime_dir_created(rt: Path) -> None:
    """A missing $XDG_RUNTIME_DIR is created with mode 0700 and used."""
    wanted = rt / "new"
    assert runtime_dir(rt_ctx(rt, str(wanted))) == str(wanted)
    assert stat.S_IMODE(wanted.stat().st_mode) & 0o077 == 0


def _bad_xdg(base: Path, kind: str) -> str:
    if kind == "mode-0755":
        (base / "open").mkdir()
        (base / "open").chmod(0o755)
        return str(base / "open")
    if kind == "symlink":
        (base / "link").symlink_to(base / "good")
        return str(base / "link")
    if kind == "broken-symlink":
        (base / "broken").symlink_to(base / "nowhere")
        return str(base / "broken")
    if kind == "file":
        (base / "file").write_text("")
        return str(base / "file")
    if kind == "missing-parent":
        return str(base / "missing" / "new")
    if kind == "relative":
        return "good"
    return ""


@needs_unix_ids
@pytest.mark.parametrize(
    "kind", ["unset", "empty", "mode-0755", "symlink", "broken-symlink", "file", "missing-parent", "relative"]
)
def test_runtime_dir_fallback(rt: Path, kind: str) -> None:
    """An unset or unusable $XDG_RUNTIME_DIR falls back to <tempPath>/runtime-<user>, made 0700."""
    xdg = None if kind == "unset" else _bad_xdg(rt, kind)
    fallback = rt / "tmp" / f"runtime-{user_name()}"
    assert runtime_dir(rt_ctx(rt, xdg)) == str(fallback)
    assert fallback.is_dir() and stat.S_IMODE(fallback.stat().st_mode) & 0o077 == 0
    assert platform_safe_native_key("k", "shm", T.SystemV, rt_ctx(rt, xdg)) == f"{fallback}/k"


@needs_unix_ids
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_runtime_dir_not_owned(rt: Path) -> None:
    """A $XDG_RUNTIME_DIR owned by another user is rejected."""
    os.chown(rt / "good", 65534, 65534)
    assert runtime_dir(rt_ctx(rt, str(rt / "good"))) == str(rt / "tmp" / f"runtime-{user_name()}")


@needs_unix_ids
def test_runtime_dir_all_fail(rt: Path) -> None:
    """When the fallback is unusable too the runtime dir is "" and the SysV key is "/<key>"."""
    fallback = rt / "tmp" / f"runtime-{user_name()}"
    fallback.mkdir()
    fallback.chmod(0o777)
    assert runtime_dir(rt_ctx(rt, None)) == ""
    assert platform_safe_native_key("k", "shm", T.SystemV, rt_ctx(rt, None)) == "/k"
    missing_tmp = KeyContext(platform="linux", qt_version=QT612, environ={"TMPDIR": str(rt / "none")})
    assert runtime_dir(missing_tmp) == ""


# ----- QNativeIpcKey: type, construction, equality (§3) ----------------------------------------


def test_type_enum() -> None:
    """Type has Qt's values, SysV ids 1..255 as pseudo-members and 0 as the invalid type."""
    assert (T.SystemV, T.PosixRealtime, T.Windows) == (0x51, 0x100, 0x101)
    assert T(81) is T.SystemV
    assert T(7) == 7 and T(7) is T(7) and isinstance(T(7), T)
    assert T(0) == 0
    with pytest.raises(ValueError):
        T(256 + 2)
    assert QNativeIpcKey.DefaultTypeForOs in (T.PosixRealtime, T.Windows)


def test_construct() -> None:
    """Constructors and accessors behave like Qt's (tst_qnativeipckey construct, getSetCheck)."""
    assert not QNativeIpcKey(T(0)).isValid()
    key = QNativeIpcKey()
    assert (key.nativeKey(), key.isEmpty(), key.isValid()) == ("", True, True)
    assert key.type() == QNativeIpcKey.DefaultTypeForOs
    key = QNativeIpcKey("key1", T.Windows)
    assert (key.isValid(), key.isEmpty(), key.nativeKey(), key.type()) == (True, False, "key1", T.Windows)
    key.setType(T.SystemV)
    assert key.type() == T.SystemV and key.isValid()
    key.setNativeKey("key2")
    assert key.nativeKey() == "key2"
    assert QNativeIpcKey(7).type() == 7 and QNativeIpcKey(7).nativeKey() == ""
    with pytest.raises(TypeError):
        QNativeIpcKey(7, 7)
    assert "legacyKey='k'" in repr(make_legacy_native_key("k", "shm", ctx=linux()))


def test_equality_and_hash() -> None:
    """Equality compares type, native key and legacy key; the hash ignores the legacy key."""
    key1, key2 = QNativeIpcKey(), QNativeIpcKey()
    assert key1 == key2
    key1.setNativeKey("key1")
    assert key1 != key2
    key2.setType(0)
    key2.setNativeKey("key1")
    assert key1 != key2
    key2.setType(QNativeIpcKey.DefaultTypeForOs)
    assert key1 == key2 and hash(key1) == hash(key2)
    key1 = make_legacy_native_key("key1", "shm", QNativeIpcKey.DefaultTypeForOs, linux())
    assert key1 != key2
    key2 = QNativeIpcKey.fromString(key1.toString())
    assert key1 == key2
    key2.setNativeKey(key1.nativeKey())  # just setting the native key drops the legacy key
    assert key1 != key2 and hash(key1) == hash(key2)
    assert key2.legacyKey() == ""
    key2.legacy_key = "key1"
    assert key1 == key2
    key2.setType(T.SystemV)  # setType keeps the legacy key
    assert key2.legacyKey() == "key1"
    assert QNativeIpcKey("x") != "x"


# ----- toString / fromString (§3, tst_qnativeipckey) -------------------------------------------

# (native key, encoded form): tst_qnativeipckey toString_data, for every type prefix.
TO_STRING_KEYS = [
    ("", ""),
    ("foobar", "foobar"),
    ("/sometext", "/sometext"),
    ("Global\\sometext", "Global\\sometext"),
    (":/", ":/"),
    ("/:", "/:"),
    ("%", "%25"),
    ("?#", "%3F%23"),
    ("#?", "%23%3F"),
    ("//", "/%2F"),
    ("///", "/%2F/"),
    ("\xe9", "\xe9"),
    ("\xa0\xff", "\xa0\xff"),
    ("\u0100.\u2000.\U00010000", "\u0100.\u2000.\U00010000"),
]
TYPE_PREFIXES = [("systemv", T.SystemV), ("posix", T.PosixRealtime), ("windows", T.Windows),
                 ("systemv-1", 1), ("systemv-84", ord("T")), ("systemv-255", 255)]


@pytest.mark.parametrize(("prefix", "type"), TYPE_PREFIXES)
@pytest.mark.parametrize(("native", "encoded"), TO_STRING_KEYS)
def test_to_string_and_back(prefix: str, type: int, native: str, encoded: str) -> None:
    """toString() gives Qt's strings and fromString() reads them back (toString_data)."""
    key = QNativeIpcKey(native, type)
    assert key.toString() == f"{prefix}:{encoded}"
    assert QNativeIpcKey.fromString(f"{prefix}:{encoded}") == key


def test_to_string_invalid() -> None:
    """An invalid key has an empty (Qt: null) string form."""
    assert QNativeIpcKey(T(0)).toString() == ""


def test_to_string_escaping() -> None:
    """Path: only %, #, ?, C0 controls and DEL are escaped; legacyKey also escapes & and =."""
    everything = "".join(chr(c) for c in range(0x80)) + "\xa0\xe4\u20ac\ufeff\U0001f600"
    expected_path = "".join(
        f"%{ord(c):02X}" if c in "%#?" or ord(c) < 0x20 or c == "\x7f" else c for c in everything
    )
    assert QNativeIpcKey(everything, T.PosixRealtime).toString() == "posix:" + expected_path
    key = QNativeIpcKey("/n", T.PosixRealtime)
    key.legacy_key = everything
    expected_query = "".join(
        f"%{ord(c):02X}" if c in "%#&=" or ord(c) < 0x20 or c == "\x7f" else c for c in everything
    )
    assert key.toString() == "posix:/n?legacyKey=" + expected_query
    assert QNativeIpcKey("foo bar", T.PosixRealtime).toString() == "posix:foo bar"
    assert QNativeIpcKey("/a?b#c", T.SystemV).toString() == "systemv:/a%3Fb%23c"


INVALID = (False, 0, "", "")

# tst_qnativeipckey fromString_data (beyond the toString rows): string -> (type, native key).
FROM_STRING_EXTRA = [
    ("systemv-81:", (True, T.SystemV, "", "systemv:")),
    ("systemv-009:", (True, 9, "", "systemv-9:")),
    ("posix:%2f%66o%6f", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:%C4%80.%E2%80%80.%F0%90%80%80", (True, T.PosixRealtime, "\u0100.\u2000.\U00010000",
                                              "posix:\u0100.\u2000.\U00010000")),
    ("posix:/foo#bar", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:/foo#bar?baz", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:/foo?bar", INVALID),
    ("posix:/foo?bar#baz", INVALID),
    ("81", INVALID),
    ("-81", INVALID),
    ("invalidprefix:", INVALID),
    ("systemv255", INVALID),
    ("systemv--255:", INVALID),
    ("systemv+255", INVALID),
    ("systemv-0x01:", INVALID),
    ("systemv-0:", INVALID),
    ("systemv-256", INVALID),
    ("systemv-32769:", INVALID),
    ("systemv-65537:", INVALID),
    ("systemv-2147483649:", INVALID),
    ("systemv-4294967297:", INVALID),
] + [
    row
    for name in ("systemv", "posix", "windows", "systemv-1", "systemv-255")
    for row in ((name, INVALID), (name + "junk", INVALID), (f"junk:{name}:", INVALID))
]

# QUrl's tolerant parser, as seen through fromString (run: Qt 6.11.2 and 6.12.0, same results).
FROM_STRING_QURL = [
    ("POSIX:/x", (True, T.PosixRealtime, "/x", "posix:/x")),  # QUrl lower-cases the scheme
    ("SYSTEMV-7:x", (True, 7, "x", "systemv-7:x")),
    ("systemv-+7:x", INVALID),
    ("systemv-7.0:x", INVALID),
    (" posix:/x", INVALID),
    ("posix:/x ", (True, T.PosixRealtime, "/x ", "posix:/x ")),
    ("posix:", (True, T.PosixRealtime, "", "posix:")),
    ("posix:a:b", (True, T.PosixRealtime, "a:b", "posix:a:b")),
    ("posix:/a\tb", (True, T.PosixRealtime, "/a\tb", "posix:/a%09b")),
    ("file:/x", INVALID),
    # authority: only an empty one (optionally "@" or ":") is accepted
    ("posix://", (True, T.PosixRealtime, "", "posix:")),
    ("posix:///", (True, T.PosixRealtime, "/", "posix:/")),
    ("posix:////foo", (True, T.PosixRealtime, "//foo", "posix:/%2Ffoo")),
    ("posix://@/x", (True, T.PosixRealtime, "/x", "posix:/x")),
    ("posix://:/x", (True, T.PosixRealtime, "/x", "posix:/x")),
    ("posix://@:/x", (True, T.PosixRealtime, "/x", "posix:/x")),
    ("posix://h/x", INVALID),
    ("posix://user@/x", INVALID),
    ("posix://:@/x", INVALID),
    ("posix://:0/x", INVALID),
    ("posix://:65536/x", INVALID),
    ("posix://[::1]/x", INVALID),
    ("posix://%40/x", INVALID),
    # percent-decoding of the path
    ("posix:/a%2Fb", (True, T.PosixRealtime, "/a/b", "posix:/a/b")),
    ("posix:%2F%2Ffoo", (True, T.PosixRealtime, "//foo", "posix:/%2Ffoo")),
    ("posix:/%2F/foo", (True, T.PosixRealtime, "///foo", "posix:/%2F/foo")),
    ("posix:/%41%", (True, T.PosixRealtime, "/%41%", "posix:/%2541%25")),  # one bad escape: all literal
    ("posix:%uFFFF", (True, T.PosixRealtime, "%uFFFF", "posix:%25uFFFF")),
    ("posix:/%00", (True, T.PosixRealtime, "/\x00", "posix:/%00")),
    ("posix:/%e9", (True, T.PosixRealtime, "/\ufffd", "posix:/\ufffd")),  # not UTF-8
    ("posix:%C2%80", (True, T.PosixRealtime, "\x80", "posix:\x80")),
    ("posix:%EF%BB%BF", (True, T.PosixRealtime, "\ufeff", "posix:\ufeff")),
    ("posix:%C0%80", (True, T.PosixRealtime, "\ufffd\ufffd", "posix:\ufffd\ufffd")),  # overlong
    ("posix:%ED%A0%80", (True, T.PosixRealtime, "\ufffd" * 3, "posix:" + "\ufffd" * 3)),  # surrogate
    ("posix:%EF%BF%BE", (True, T.PosixRealtime, "\ufffd" * 3, "posix:" + "\ufffd" * 3)),  # non-character
    ("posix:%EF%B7%90", (True, T.PosixRealtime, "\ufffd" * 3, "posix:" + "\ufffd" * 3)),  # U+FDD0
    ("posix:%F4%90%80%80", (True, T.PosixRealtime, "\ufffd" * 4, "posix:" + "\ufffd" * 4)),
    ("posix:%E2%82", (True, T.PosixRealtime, "\ufffd" * 2, "posix:" + "\ufffd" * 2)),
    # the query: only legacyKey items, last one wins, trailing "&" allowed
    ("posix:/foo?", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:/foo?&", INVALID),
    ("posix:/foo?&legacyKey=a", INVALID),
    ("posix:/foo?legacyKey=a&&", INVALID),
    ("posix:/foo?=x", INVALID),
    ("posix:/foo?LEGACYKEY=1", INVALID),
    ("posix:/foo?legacyKey=x&y", INVALID),
    ("posix:/foo?x=1", INVALID),
    ("posix:/foo?legacyKey", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:/foo?legacyKey=", (True, T.PosixRealtime, "/foo", "posix:/foo")),
    ("posix:/foo?legacyKey=a&", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=a")),
    ("posix:/foo?legacyKey=a=b", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=a%3Db")),
    ("posix:/foo?legacyKey=1&legacyKey=2", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=2")),
    ("posix:/foo?legacy%4Bey=x", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=x")),
    ("posix:/foo?legacyKey=%", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=%25")),
    ("posix:/foo?legacyKey=%41", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=A")),
    ("posix:/foo?legacyKey=%41&legacyKey=%", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=%25")),
    ("posix:/foo?legacyKey=a+b%2B", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=a+b+")),
    ("posix:/foo?legacyKey=%00", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=%00")),
    # QString::fromUtf8 drops a leading byte order mark
    ("posix:/foo?legacyKey=%EF%BB%BFx", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=x")),
    ("posix:/foo?legacyKey=x%EF%BB%BF", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=x\ufeff")),
    ("posix:/foo?legacyKey=%EF%BF%BE", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=\ufffe")),
    ("posix:/foo?legacyKey=%C0%80", (True, T.PosixRealtime, "/foo", "posix:/foo?legacyKey=\ufffd\ufffd")),
    ("posix:?legacyKey=x", (True, T.PosixRealtime, "", "posix:?legacyKey=x")),
    ("posix://?legacyKey=a", (True, T.PosixRealtime, "", "posix:?legacyKey=a")),
]


@pytest.mark.parametrize(("text", "expected"), FROM_STRING_EXTRA + FROM_STRING_QURL)
def test_from_string(text: str, expected: tuple[bool, int, str, str]) -> None:
    """fromString() accepts, rejects and decodes exactly as Qt 6 does."""
    key = QNativeIpcKey.fromString(text)
    assert (key.isValid(), key.type(), key.nativeKey(), key.toString()) == expected
    if not expected[0]:
        assert key == QNativeIpcKey(T(0))


LEGACY_ROUND_TRIP = ["", "foobar", "/sometext", "Global\\sometext", ":/", "/:", "%", "?#", "#?", "//",
                     "///", "\xe9", "\xa0\xff", ":\u0100.\u2000.\U00010000", "my key/ä%#?&=+"]


@pytest.mark.parametrize("type", [T.PosixRealtime, T.SystemV, T.Windows])
@pytest.mark.parametrize("legacy", LEGACY_ROUND_TRIP)
def test_legacy_keys_round_trip(legacy: str, type: int) -> None:
    """A legacy key survives toString()/fromString() (tst_qnativeipckey legacyKeys)."""
    key = make_legacy_native_key(legacy, "shm", type, linux())
    assert key.type() == type
    again = QNativeIpcKey.fromString(key.toString())
    assert again == key and again.legacyKey() == key.legacyKey()


_no_surrogates = st.text(st.characters(exclude_categories=["Cs"]))


@given(_no_surrogates, st.sampled_from([T.SystemV, T.PosixRealtime, T.Windows, T(1), T(200)]))
def test_native_key_round_trip(native: str, type: int) -> None:
    """fromString(toString(k)) == k for any native key."""
    key = QNativeIpcKey(native, type)
    assert QNativeIpcKey.fromString(key.toString()) == key


@given(_no_surrogates, _no_surrogates.filter(lambda s: not s.startswith("\ufeff")))
def test_legacy_key_round_trip_any(native: str, legacy: str) -> None:
    """fromString(toString(k)) == k for any legacy key (Qt drops a leading U+FEFF, so not that)."""
    key = QNativeIpcKey(native, T.PosixRealtime)
    key.legacy_key = legacy
    assert QNativeIpcKey.fromString(key.toString()) == key


def test_legacy_key_leading_bom_is_lost() -> None:
    """Qt's fromString drops a byte order mark at the start of the legacy key (QString::fromUtf8)."""
    key = QNativeIpcKey("/n", T.PosixRealtime)
    key.legacy_key = "\ufeffk"
    assert QNativeIpcKey.fromString(key.toString()).legacyKey() == "k"
