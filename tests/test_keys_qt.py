"""qshm_compat.keys against real Qt: the same names, temp paths and key strings as the peers.

Each peer (PyQt5, PyQt6, PySide6 and the two C++ programs) is started once per environment case
and asked, with the ``keyinfo`` and ``parse`` requests, which create nothing, for the names its Qt
derives from a varied set of keys. Every peer gets ``XDG_RUNTIME_DIR`` pointing at a 0700 dir
inside the test's temp dir, so ``platformSafeKey(k, SystemV)`` makes Qt create nothing elsewhere.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peers import ALL_PEERS, QT66_PEERS, Peer, start_peer
from qshm_compat.keys import (
    KeyContext,
    QNativeIpcKey,
    make_legacy_native_key,
    make_platform_safe_key,
    parse_qt_version,
    temp_path,
)

T = QNativeIpcKey.Type
TYPES: dict[str, int | None] = {
    "default": None, "systemv": T.SystemV, "posix": T.PosixRealtime, "windows": T.Windows,
}

# Keys sent to every peer. (A key starting with U+FEFF is left out: PyQt and PySide turn a Python
# str that starts with a byte order mark into a byte-swapped or shortened QString.)
KEYS = [
    "QSharedMemoryExample",
    "key123",
    "123",
    "a b/c-d_e",
    "my key/ä%#?&=+",
    "Hello World! ÄÖ 123",
    "日本語キー",
    "emoji \U0001f600 astral \U00010000",
    "",
    " ",
    "/absolute/path",
    "//double",
    "Global\\app",
    "Local\\app",
    "?#",
    "%41%zz",
    "a%2Fb",
    "tab\tnewline\ncontrol\x01\x7f",
    "".join(chr(c) for c in range(0x20, 0x7F)),
    "\xa0\xe9\u20ac\ufffd",
    ("abcdefghijklmnopqrstuvwxyz0123456789" * 9)[:300],
]

# Strings for fromString beyond those the peers' own toString() produce.
PARSE_STRINGS = [
    "", "81", "-81", "posix", "posix:", "POSIX:/x", "systemv-81:", "systemv-009:", "systemv-0:",
    "systemv-1:", "systemv-255:x", "systemv-256", "systemv+255", "systemv--255:", "systemv-0x01:",
    "systemv-32769:", "systemv-4294967297:", "systemv255", "SYSTEMV-7:x", "windows:Global\\x",
    "invalidprefix:", "junk:posix:", "file:/x", " posix:/x", "posix:/x ", "posix:a:b",
    "posix:%2f%66o%6f", "posix:%C4%80.%E2%80%80.%F0%90%80%80", "posix:/foo#bar", "posix:/foo#bar?baz",
    "posix:/foo?bar", "posix:/foo?bar#baz", "posix:/foo?x=1", "posix://", "posix:///", "posix:////foo",
    "posix://@/x", "posix://:/x", "posix://@:/x", "posix://h/x", "posix://user@/x", "posix://:0/x",
    "posix://[::1]/x", "posix:/a%2Fb", "posix:/%2F/foo", "posix:/%41%", "posix:%uFFFF", "posix:/%00",
    "posix:/%e9", "posix:%C2%80", "posix:%EF%BB%BF", "posix:%C0%80", "posix:%ED%A0%80",
    "posix:%EF%BF%BE", "posix:%EF%B7%90", "posix:%F4%90%80%80", "posix:%E2%82", "posix:/foo?",
    "posix:/foo?&", "posix:/foo?&legacyKey=a", "posix:/foo?legacyKey=a&", "posix:/foo?legacyKey=a&&",
    "posix:/foo?=x", "posix:/foo?LEGACYKEY=1", "posix:/foo?legacyKey", "posix:/foo?legacyKey=",
    "posix:/foo?legacyKey=a=b", "posix:/foo?legacyKey=1&legacyKey=2", "posix:/foo?legacy%4Bey=x",
    "posix:/foo?legacyKey=%", "posix:/foo?legacyKey=%41&legacyKey=%", "posix:/foo?legacyKey=a+b%2B",
    "posix:/foo?legacyKey=%EF%BB%BFx", "posix:/foo?legacyKey=%EF%BF%BE", "posix:/foo?legacyKey=%C0%80",
    "posix:?legacyKey=x", "systemv:/tmp/qipc_sharedmemory_x?legacyKey=my key/ä%25%23?%26%3D+",
]


@dataclass(frozen=True)
class Case:
    """One environment given to every peer: TMPDIR (None = unset) and the peer's cwd."""

    name: str
    tmpdir: str | None


CASES = [
    Case("unset", None),
    Case("trailing-slash", "@/real/"),
    Case("symlink", "@/link"),
    Case("dotdot", "@/link/../real/./"),
    Case("missing", "@/missing"),
    Case("relative", "real"),
]


@dataclass
class Setup:
    peer: Peer
    ctx: KeyContext


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp dir with real/, link -> real and xdg/ (mode 0700, the peers' XDG_RUNTIME_DIR)."""
    path = tmp_path_factory.mktemp("keys-qt").resolve()
    (path / "real").mkdir()
    (path / "link").symlink_to(path / "real")
    (path / "xdg").mkdir()
    (path / "xdg").chmod(0o700)
    return path


def _start(name: str, env: dict[str, str], unset: list[str], cwd: Path) -> Peer:
    """Start a peer with ``env`` on top of this process's environment, minus ``unset``."""
    saved = {var: os.environ.pop(var) for var in unset if var in os.environ}
    try:
        return start_peer(name, env=env, cwd=cwd)
    finally:
        os.environ.update(saved)


def _setup_id(pc: Any) -> str:
    return f"{pc[0]}-{pc[1].name}"


@pytest.fixture(scope="module", params=[(p, c) for c in CASES for p in ALL_PEERS], ids=_setup_id)
def setup(request: pytest.FixtureRequest, base: Path) -> Iterator[Setup]:
    """One peer per (stack, environment case), and the KeyContext that describes it."""
    name, case = request.param
    env = {"XDG_RUNTIME_DIR": str(base / "xdg")}
    if case.tmpdir is not None:
        env["TMPDIR"] = case.tmpdir.replace("@", str(base))
    peer = _start(name, env, [] if case.tmpdir is not None else ["TMPDIR"], base)
    ctx = KeyContext(platform="linux", qt_version=parse_qt_version(peer.qt), environ=env, cwd=str(base))
    yield Setup(peer, ctx)
    peer.close()


@pytest.fixture(scope="module", params=QT66_PEERS)
def qt66(request: pytest.FixtureRequest, base: Path) -> Iterator[Peer]:
    """A Qt >= 6.6 peer with the default environment, for parse."""
    peer = _start(request.param, {"XDG_RUNTIME_DIR": str(base / "xdg")}, [], base)
    yield peer
    peer.close()


def keyinfo(peer: Peer, keys: list[str]) -> list[dict[str, Any]]:
    answer = peer.ok("keyinfo", keys=keys)
    infos: list[dict[str, Any]] = answer["keys"]
    assert [info["key"] for info in infos] == keys, peer.describe()
    return infos


def test_temp_path_matches(setup: Setup) -> None:
    """temp_path() equals the peer's QDir::tempPath() for its Qt version and environment."""
    assert temp_path(setup.ctx) == setup.peer.hello["tempPath"], setup.peer.describe()


def test_legacy_native_keys_match(setup: Setup) -> None:
    """QSharedMemory(key).nativeKey() of every peer equals our legacy key, for every key."""
    for info in keyinfo(setup.peer, KEYS):
        ours = make_legacy_native_key(info["key"], "shm", ctx=setup.ctx).nativeKey()
        assert ours == info["shmNativeKey"], (info["key"], setup.peer.describe())


@pytest.mark.parametrize(
    "setup", [(p, c) for c in CASES for p in QT66_PEERS], ids=_setup_id, indirect=True, scope="module"
)
def test_qnativeipckey_strings_match(setup: Setup) -> None:
    """On Qt >= 6.6 every toString() of keyinfo (native, platformSafe, legacy) equals ours."""
    assert setup.peer.hello["nativeIpcKey"]
    ctx = setup.ctx
    for info in keyinfo(setup.peer, KEYS):
        key = info["key"]
        ours: dict[str, Any] = {
            "native": {
                "default": QNativeIpcKey(key).toString(),
                "systemv": QNativeIpcKey(key, T.SystemV).toString(),
                "posix": QNativeIpcKey(key, T.PosixRealtime).toString(),
            }
        }
        for kind in ("shm", "sem"):
            ours[kind] = {
                "platformSafe": {
                    t: make_platform_safe_key(key, kind, v, ctx).toString() for t, v in TYPES.items()
                },
                "legacy": {
                    t: make_legacy_native_key(key, kind, v, ctx).toString() for t, v in TYPES.items()
                },
            }
        theirs = {part: info[part] for part in ("native", "shm", "sem")}
        assert ours == theirs, (key, setup.peer.describe())


def _parsed(text: str) -> dict[str, Any]:
    key = QNativeIpcKey.fromString(text)
    return {"valid": key.isValid(), "type": int(key.type()), "nativeKey": key.nativeKey(),
            "toString": key.toString()}


def test_parse_matches(qt66: Peer) -> None:
    """QNativeIpcKey.fromString() of Qt's own strings and of tricky ones agrees with ours."""
    strings = list(PARSE_STRINGS)
    for info in keyinfo(qt66, KEYS):
        strings.append(info["native"]["default"])
        for kind in ("shm", "sem"):
            for group in info[kind].values():
                strings.extend(group.values())
    strings = list(dict.fromkeys(strings))
    theirs = qt66.ok("parse", strings=strings)["keys"]
    assert len(theirs) == len(strings)
    mismatches = [(s, t, _parsed(s)) for s, t in zip(strings, theirs) if _parsed(s) != t]
    assert not mismatches, (mismatches[:10], qt66.describe())


# Characters that exercise QUrl: every ASCII character, C1, non-characters, BOM, astral.
_ALPHABET = [chr(c) for c in range(0x80)] + list(
    "\x80\x9f\xa0é€日\ufdd0\ufffe\uffff\ufeff\U0001f600\U0001fffe"
)
_ESCAPES = ["%", "%2", "%zz", "%41", "%2f", "%25", "%C3%A9", "%c3%a9", "%C3", "%C0%80", "%E2%82", "%ED%A0%80",
            "%EF%BB%BF", "%EF%BF%BE", "%EF%B7%90", "%F0%9F%98%80", "%F4%90%80%80", "%FF", "%C2%80", "%00"]
_SCHEMES = ["posix", "POSIX", "systemv", "windows", "systemv-7", "systemv-009", "systemv-0", "systemv-256",
            "systemv-+7", "systemv7", "foo", ""]
_QUERIES = ["legacyKey=", "legacyKey", "legacy%4Bey=", "x=1", "&legacyKey=", "legacyKey=a&legacyKey=",
            "legacykey="]


def _random_text(rng: random.Random, n: int, escapes: bool) -> str:
    parts = [
        rng.choice(_ESCAPES) if escapes and rng.random() < 0.25 else rng.choice(_ALPHABET) for _ in range(n)
    ]
    return "".join(parts).lstrip("\ufeff\ufffe")  # see KEYS: the bindings mangle a leading BOM


def _random_url(rng: random.Random) -> str:
    body = _random_text(rng, rng.randint(0, 12), True)
    if rng.random() < 0.2:
        body = "//" + _random_text(rng, rng.randint(0, 3), True) + "/" + body
    if rng.random() < 0.4:
        body += "?" + rng.choice(_QUERIES) + _random_text(rng, rng.randint(0, 6), True)
    if rng.random() < 0.1:
        body += "#" + _random_text(rng, 3, True)
    scheme = rng.choice(_SCHEMES)
    return f"{scheme}:{body}" if scheme else body.lstrip("\ufeff\ufffe")


def test_random_strings_match(qt66: Peer, base: Path) -> None:
    """Seeded random keys and key strings: Qt's toString() and fromString() agree with ours."""
    rng = random.Random(20261127)
    keys = list(dict.fromkeys(_random_text(rng, rng.randint(1, 10), rng.random() < 0.3) for _ in range(400)))
    ctx = KeyContext(platform="linux", qt_version=parse_qt_version(qt66.qt),
                     environ={"XDG_RUNTIME_DIR": str(base / "xdg"), "TMPDIR": os.environ.get("TMPDIR", "")})
    for info in keyinfo(qt66, keys):
        key = info["key"]
        assert info["native"]["default"] == QNativeIpcKey(key).toString(), key
        legacy = make_legacy_native_key(key, "shm", T.PosixRealtime, ctx)
        assert info["shm"]["legacy"]["posix"] == legacy.toString(), key
    strings = [_random_url(rng) for _ in range(2000)]
    theirs = qt66.ok("parse", strings=strings)["keys"]
    mismatches = [(s, t, _parsed(s)) for s, t in zip(strings, theirs) if _parsed(s) != t]
    assert not mismatches, (mismatches[:10], qt66.describe())
