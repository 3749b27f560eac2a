"""The ``qshm`` command line against live segments made by real Qt peers.

Commands run in-process through ``main([...])`` and, where it matters (exit status, pipes,
signals), as ``python -m qshm_compat`` subprocesses.  ``clean`` is always given the test's own
keys (and ``--tmpdir`` the session's temp dir), so it never acts on another process's objects.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import qshm_compat
from peers import Peer
from qshm_compat import QSharedMemory, datastream, inspect, posix
from qshm_compat.cli import main

PACKAGE_ROOT = str(Path(qshm_compat.__file__).resolve().parent.parent)
#: The session's temp dir (conftest sets $TMPDIR before this module is imported).
SESSION_TMPDIR = os.environ["TMPDIR"]


def qshm(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    """Run ``qshm args`` in-process: (exit status, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def qshm_json(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, Any]:
    code, out, err = qshm(capsys, *args, "--json")
    assert out, f"no JSON on stdout (exit {code}); stderr: {err}"
    return code, json.loads(out)


def qshm_proc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qshm_compat args`` with its output piped."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    return subprocess.run([sys.executable, "-m", "qshm_compat", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def family(rows: List[Dict[str, Any]], name: str) -> Dict[str, Any]:
    found = [r for r in rows if r["ref"]["family"] == name]
    assert len(found) == 1, rows
    return found[0]


def posix_name() -> str:
    return f"qshm_cli_{secrets.token_hex(5)}"


def example_bytes() -> Tuple[bytes, Any]:
    """What the Shared Memory Example puts in its segment, and the image it came from."""
    from PIL import Image

    image = Image.new("RGB", (7, 5), (10, 200, 30))
    image.putpixel((3, 2), (255, 0, 0))
    return datastream.encode_image(image), image


def pixels(image: Any) -> List[Any]:
    rgb = image.convert("RGB")
    return [rgb.getpixel((x, y)) for y in range(rgb.height) for x in range(rgb.width)]


# ----- the parser ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["key"], ["probe"], ["ls"], ["clean"], ["read"], ["write"],
                                     ["image"], ["image", "get"], ["image", "put"], ["unlock"], ["demo"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: List[str]) -> None:
    """``--help`` works for every command and exits 0."""
    code, out, _ = qshm(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: qshm")


@pytest.mark.parametrize("argv", [
    [],
    ["probe"],
    ["key", ""],
    ["probe", "k", "--native", "x"],
    ["key", "k", "--type", "nonsense"],
    ["write", "k"],
    ["write", "k", "--hex", "zz"],
    ["read", "k", "--version", "19"],
    ["read", "k", "--offset", "-1"],
    ["unlock", "k"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: List[str]) -> None:
    """A usage error exits 2 and says why on stderr."""
    code, _, err = qshm(capsys, *argv)
    assert code == 2
    assert err


def test_probe_of_a_missing_key_exits_1(capsys: pytest.CaptureFixture[str], key: str) -> None:
    """probe, read and unlock exit 1 when nothing exists for the key."""
    code, rows = qshm_json(capsys, "probe", key)
    assert code == 1 and rows and all(r["verdict"] == "absent" for r in rows)
    assert qshm(capsys, "read", key)[0] == 1
    assert qshm(capsys, "unlock", key, "--force", "--yes")[0] == 1


# ----- key -------------------------------------------------------------------------------------


def test_key_names_are_those_of_a_qt6_peer(capsys: pytest.CaptureFixture[str], peer_pool: Any, key: str) -> None:
    """qshm key prints the native names and toString() forms a Qt 6.12 program computes."""
    qt6 = peer_pool.get("pyside6")
    info = qt6.ok("keyinfo", keys=[key])["keys"][0]
    code, names = qshm_json(capsys, "key", key)
    assert code == 0
    mine = {(n["platform"], n["family"]): n for n in names}
    assert mine["unix", "legacy-sysv"]["to_string"] == info["shm"]["legacy"]["systemv"]
    assert mine["unix", "legacy-sysv"]["shm"] == info["shmNativeKey"]
    assert mine["unix", "legacy-posix"]["to_string"] == info["shm"]["legacy"]["posix"]
    assert mine["unix", "posix"]["to_string"] == info["native"]["posix"]
    sysv = [n["to_string"] for n in names if n["family"] == "sysv"]
    assert info["shm"]["platformSafe"]["systemv"] in sysv
    assert info["native"]["systemv"] in sysv
    assert ("windows", "legacy") in mine and ("macos", "legacy-posix") in mine
    # The lock of a legacy key is the qipc_systemsem_ name of the same key.
    assert mine["unix", "legacy-sysv"]["lock"] == QSharedMemory(key).nativeKey().replace(
        "qipc_sharedmemory_", "qipc_systemsem_")
    code, out, _ = qshm(capsys, "key", info["native"]["posix"])
    assert code == 0 and f"toString  {info['native']['posix']}" in out


# ----- probe, ls, clean ------------------------------------------------------------------------


def test_live_qt5_segment_in_probe_and_ls(capsys: pytest.CaptureFixture[str], spawn: Any, key: str) -> None:
    """A C++ Qt 5 peer's segment shows in probe and ls with its size, attach count, creator and a live verdict."""
    qt5 = spawn("cpp-qt5")
    native = qt5.ok("key", key=key)["nativeKey"]
    qt5.ok("create", size=1234)
    code, rows = qshm_json(capsys, "probe", key)
    assert code == 0
    row = family(rows, "legacy-sysv")
    assert row["verdict"] == "live", row
    seg = row["segment"]
    assert (seg["exists"], seg["size"], seg["attached"], seg["name"]) == (True, 1234, 1, native)
    assert seg["creator"] == {"pid": qt5.pid, "alive": True}
    assert row["lock"]["state"] == "free" and row["lock"]["value"] == 1
    assert all(f["exists"] for f in row["key_files"])
    assert all(r["verdict"] == "absent" for r in rows if r is not row)

    code, listed = qshm_json(capsys, "ls", "--tmpdir", SESSION_TMPDIR)
    assert code == 0
    mine = [r for r in listed if r["segment"]["name"] == native]
    assert len(mine) == 1 and mine[0]["segment"]["size"] == 1234 and mine[0]["verdict"] == "live"

    done = qshm_proc("ls", key, "--tmpdir", SESSION_TMPDIR)  # the table, through a pipe
    assert done.returncode == 0, done.stderr
    assert "FAMILY" in done.stdout and "live" in done.stdout and "1234" in done.stdout
    assert "\r" not in done.stderr  # no progress line when piped
    qt5.ok("detach")


def test_killed_peer_is_stale_and_clean_removes_only_it(capsys: pytest.CaptureFixture[str], spawn: Any) -> None:
    """After SIGKILL a Qt 5 segment is stale; clean --dry-run lists it, clean --yes removes it and
    leaves another peer's live segment alone."""
    dead_key, live_key = (f"qshm cli {secrets.token_hex(4)}" for _ in range(2))
    dead, live = spawn("cpp-qt5"), spawn("pyqt5")
    dead.ok("key", key=dead_key)
    dead.ok("create", size=100)
    live.ok("key", key=live_key)
    live.ok("create", size=64)
    live.ok("write", hex="c0ffee")
    dead.kill()

    code, rows = qshm_json(capsys, "probe", dead_key)
    row = family(rows, "legacy-sysv")
    assert row["verdict"] == "stale" and row["segment"]["attached"] == 0
    assert row["segment"]["creator"] == {"pid": dead.pid, "alive": False}
    code, stale = qshm_json(capsys, "ls", "--stale", "--tmpdir", SESSION_TMPDIR)
    names = {r["segment"]["name"] for r in stale}
    assert QSharedMemory(dead_key).nativeKey() in names
    assert QSharedMemory(live_key).nativeKey() not in names

    shmid = row["segment"]["id"]
    dry = qshm_proc("clean", dead_key, live_key, "--dry-run", "--tmpdir", SESSION_TMPDIR)
    assert dry.returncode == 0, dry.stderr
    assert f"remove  System V segment shmid {shmid}" in dry.stdout
    assert "nothing was removed" in dry.stdout
    assert inspect.segment_exists(inspect.refs_for_key(dead_key)[0])

    code, out, err = qshm(capsys, "clean", dead_key, live_key, "--yes", "--tmpdir", SESSION_TMPDIR)
    assert code == 0, err
    assert f"removed System V segment shmid {shmid}" in out
    removed = [line for line in out.splitlines() if line.startswith("removed ")]
    assert len(removed) == 4, out  # segment, semaphore, two key files
    code, rows = qshm_json(capsys, "probe", dead_key)
    assert code == 1 and family(rows, "legacy-sysv")["verdict"] == "absent"
    code, rows = qshm_json(capsys, "probe", live_key)
    assert family(rows, "legacy-sysv")["verdict"] == "live"
    live.ok("lock")
    assert live.ok("read", length=3)["hex"] == "c0ffee"
    live.ok("unlock")
    live.ok("detach")


def test_clean_keeps_another_users_objects(capsys: pytest.CaptureFixture[str], spawn: Any, key: str) -> None:
    """A dead segment of another user is kept unless root asks with --any-user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a peer as another user")
    other = spawn("cpp-qt5", user=65534)
    other.ok("key", key=key)
    other.ok("create", size=16)
    other.kill()
    code, out, _ = qshm(capsys, "clean", key, "--yes", "--tmpdir", SESSION_TMPDIR)
    assert code == 0 and "pass --any-user" in out and "removed" not in out
    code, rows = qshm_json(capsys, "probe", key)
    assert family(rows, "legacy-sysv")["verdict"] == "stale"
    assert family(rows, "legacy-sysv")["segment"]["owner"] == "nobody"
    code, out, _ = qshm(capsys, "clean", key, "--yes", "--any-user", "--tmpdir", SESSION_TMPDIR)
    assert code == 0 and "removed System V segment" in out
    assert qshm(capsys, "probe", key)[0] == 1


# ----- read, write, image ----------------------------------------------------------------------


def test_read_and_write_round_trip_with_a_peer(capsys: pytest.CaptureFixture[str], peer: Peer, key: str,
                                               tmp_path: Path) -> None:
    """read sees what the Qt peer wrote, the peer sees what write wrote, and write refuses to pass the end."""
    payload = os.urandom(64)
    peer.ok("key", key=key)
    peer.ok("create", size=len(payload))
    peer.ok("write", hex=payload.hex())
    code, out, _ = qshm(capsys, "read", key, "--hex")
    assert code == 0 and bytes.fromhex(out.strip()) == payload
    code, out, _ = qshm(capsys, "read", key, "--offset", "8", "--length", "4", "--hex")
    assert out.strip() == payload[8:12].hex()
    assert qshm(capsys, "write", key, "--hex", "c0ffee", "--offset", "10")[0] == 0
    peer.ok("lock")
    assert peer.ok("read", offset=9, length=5)["hex"] == (payload[9:10] + b"\xc0\xff\xee" + payload[13:14]).hex()
    peer.ok("unlock")
    code, _, err = qshm(capsys, "write", key, "--hex", "c0ffee", "--offset", "62")
    assert code == 1 and "refusing" in err
    assert peer.ok("read", offset=62)["hex"] == payload[62:].hex()
    out_file = tmp_path / "dump.bin"
    done = qshm_proc("read", key, "--out", str(out_file))
    assert done.returncode == 0, done.stderr
    assert out_file.read_bytes()[:10] == payload[:10]
    peer.ok("detach")


def test_read_decodes_a_datastream_value(capsys: pytest.CaptureFixture[str], peer_pool: Any, key: str) -> None:
    """read --decode reads one QDataStream value of the given stream version."""
    qt6 = peer_pool.get("pyqt6")
    writer = datastream.Writer(datastream.Qt_6_11)
    writer.write_qstring("héllo")
    data = writer.getvalue()
    qt6.ok("key", key=key)
    qt6.ok("create", size=len(data) + 4)
    qt6.ok("write", hex=data.hex())
    code, decoded = qshm_json(capsys, "read", key, "--decode", "qstring", "--version", "6.11")
    assert code == 0 and decoded["value"] == "héllo" and decoded["end"] == len(data)
    code, _, err = qshm(capsys, "read", key, "--decode", "nonsense")
    assert code == 2 and "qstring" in err
    qt6.ok("detach")


def test_image_get_reads_what_a_peer_wrote(capsys: pytest.CaptureFixture[str], peer: Peer, key: str,
                                           tmp_path: Path) -> None:
    """image get saves the example's image from a Qt peer's segment (padding after the PNG ignored)."""
    from PIL import Image

    data, image = example_bytes()
    peer.ok("key", key=key)
    peer.ok("create", size=len(data) + 100)
    peer.ok("write", hex=data.hex())
    out = tmp_path / "out.png"
    code, _, err = qshm(capsys, "image", "get", key, str(out))
    assert code == 0, err
    assert pixels(Image.open(out)) == pixels(image)
    peer.ok("detach")


def test_image_put_is_read_by_a_peer(spawn: Any, key: str, tmp_path: Path) -> None:
    """image put makes a segment of exactly the streamed image, which a Qt peer reads; ^C releases it."""
    data, image = example_bytes()
    source = tmp_path / "in.png"
    image.save(source)
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    put = subprocess.Popen([sys.executable, "-m", "qshm_compat", "image", "put", key, str(source), "--hold", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = put.stdout.readline() if put.stdout else ""
        assert line.startswith("wrote the image"), (line, put.stderr.read() if put.poll() is not None else "")
        qt5 = spawn("cpp-qt5")
        qt5.ok("key", key=key)
        size = qt5.ok("attach")["size"]
        qt5.ok("lock")
        written = bytes.fromhex(qt5.ok("read")["hex"])
        qt5.ok("unlock")
        qt5.ok("detach")
        assert size == len(written) == len(data)
        assert written[:4] == b"\x00\x00\x00\x01"
        assert pixels(datastream.decode_image(written)) == pixels(image)
    finally:
        put.send_signal(signal.SIGINT)
        assert put.wait(timeout=20) == 0
    assert not inspect.segment_exists(inspect.refs_for_key(key)[0])


# ----- locks -----------------------------------------------------------------------------------


def test_abandoned_posix_lock_is_diagnosed_and_released(capsys: pytest.CaptureFixture[str], spawn: Any) -> None:
    """A POSIX lock left taken by a killed Qt 6 peer: probe says so, unlock --force --yes frees it,
    Qt works again, and clean removes the objects Qt never unlinks."""
    name = posix_name()
    holder = spawn("pyside6")
    holder.ok("ipckey", mode="native", key=name)
    holder.ok("create", size=8)
    holder.ok("lock")
    holder.kill()
    try:
        code, rows = qshm_json(capsys, "probe", f"posix:{name}")
        row = rows[0]
        assert code == 0 and row["verdict"] == "broken" and "abandoned" in row["reason"]
        assert row["lock"]["value"] == 0 and row["lock"]["users"] == []
        assert row["segment"]["attached"] == 0

        done = qshm_proc("unlock", f"posix:{name}", "--force", "--yes")
        assert done.returncode == 0, done.stderr
        assert "value is now 1" in done.stdout
        code, rows = qshm_json(capsys, "probe", "--native", name, "--type", "posix")
        assert rows[0]["lock"]["state"] == "free"

        qt6 = spawn("pyside6")
        qt6.ok("ipckey", mode="native", key=name)
        qt6.ok("attach")
        qt6.ok("lock")
        qt6.ok("unlock")
        qt6.ok("detach")
        qt6.ok("destroy")

        code, out, _ = qshm(capsys, "clean", f"posix:{name}", "--dry-run", "--tmpdir", SESSION_TMPDIR)
        assert code == 0 and f"/dev/shm/{name}" in out and "nothing was removed" in out
        code, out, err = qshm(capsys, "clean", f"posix:{name}", "--yes", "--tmpdir", SESSION_TMPDIR)
        assert code == 0, err
        assert f"removed POSIX shared memory /dev/shm/{name}" in out
        assert f"removed POSIX semaphore /dev/shm/sem.{name}" in out
        assert not posix.shm_exists(name)
    finally:
        posix.shm_unlink(name)
        posix.sem_unlink(name)


def test_unlock_refuses_a_live_system_v_holder(capsys: pytest.CaptureFixture[str], peer_pool: Any, key: str) -> None:
    """A System V lock held by a running Qt peer is not reset: the kernel frees it if the holder dies."""
    qt5 = peer_pool.get("cpp-qt5")
    qt5.ok("key", key=key)
    qt5.ok("create", size=8)
    qt5.ok("lock")
    code, out, err = qshm(capsys, "unlock", key, "--force", "--yes")
    assert code == 1 and f"pid {qt5.pid}" in err and "SEM_UNDO" in err
    code, rows = qshm_json(capsys, "probe", key)
    lock = family(rows, "legacy-sysv")["lock"]
    assert lock["state"] == "held" and lock["holder"] == {"pid": qt5.pid, "alive": True}
    qt5.ok("unlock")
    qt5.ok("detach")


def _unset_lock(key: str) -> int:
    """The lock of ``key`` as a creator killed between semget and SETVAL leaves it (and as Qt's
    open with IPC_CREAT makes it in a race): count 0, never used, so GETPID is 0."""
    from qshm_compat import QSystemSemaphore, sysv

    sem_file = QSystemSemaphore.legacyNativeKey(key).nativeKey()
    sysv.create_key_file(sem_file)
    return sysv.sem_get(sysv.ftok(sem_file), True, sem_file)


def test_unset_lock_that_hangs_qt_is_diagnosed_and_set(capsys: pytest.CaptureFixture[str], spawn: Any,
                                                       qshm_key: str) -> None:
    """A C++ Qt 5 attach() waits for ever on a lock nobody ever set: probe names it unset (not
    held by pid 0) with the waiter, unlock --force --yes sets it to 1, and Qt's attach() then
    returns (NotFound: there is no segment)."""
    semid = _unset_lock(qshm_key)
    qt5 = spawn("cpp-qt5")
    qt5.ok("key", key=qshm_key)
    qt5.send("attach")
    assert not qt5.pending(1.0), "Qt's attach() returned on a lock at 0"
    code, rows = qshm_json(capsys, "probe", qshm_key)
    row = family(rows, "legacy-sysv")
    lock = row["lock"]
    assert lock["id"] == semid and lock["state"] == "unset" and lock["holder"] is None
    assert lock["waiters"] == 1
    assert row["verdict"] == "broken" and "never set" in row["reason"] and "1 process(es) wait" in row["reason"]
    code, out, err = qshm(capsys, "unlock", qshm_key, "--force", "--yes")
    assert code == 0, err
    assert "released: value is now" in out  # 0 again at once if Qt's waiting semop took it
    answer = qt5.reply()
    assert not answer["ok"] and answer["error"] == QSharedMemory.NotFound, answer
    code, rows = qshm_json(capsys, "probe", qshm_key)
    assert family(rows, "legacy-sysv")["lock"]["state"] == "free"  # Qt's attach() gave it back


def test_clean_removes_an_unset_lock_only_once_it_is_old(capsys: pytest.CaptureFixture[str], qshm_key: str) -> None:
    """An unset lock with no segment is kept while it may be a creator's between semget and
    SETVAL (under 2 s old), and removed with its key file after that."""
    import time

    semid = _unset_lock(qshm_key)
    code, out, err = qshm(capsys, "clean", qshm_key, "--dry-run", "--tmpdir", SESSION_TMPDIR)
    assert code == 0, err
    assert f"keep    System V semaphore semid {semid}" in out and "just made" in out
    time.sleep(inspect.UNSET_MIN_AGE + 1.0)  # sem_ctime counts whole seconds
    code, out, err = qshm(capsys, "clean", qshm_key, "--yes", "--tmpdir", SESSION_TMPDIR)
    assert code == 0, err
    assert f"removed System V semaphore semid {semid}" in out and "never set or used" in out
    code, rows = qshm_json(capsys, "probe", qshm_key)
    assert code == 1 and family(rows, "legacy-sysv")["verdict"] == "absent"


def test_ls_finds_a_posix_key_by_its_lock(capsys: pytest.CaptureFixture[str], peer_pool: Any) -> None:
    """A Qt 6 native POSIX key is listed while its lock semaphore exists; once its creator is gone
    only naming it finds the object Qt leaves behind, which clean then removes."""
    name = posix_name()
    qt6 = peer_pool.get("pyside6")
    try:
        qt6.ok("ipckey", mode="native", key=name)
        qt6.ok("create", size=32)
        code, listed = qshm_json(capsys, "ls", "--tmpdir", SESSION_TMPDIR)
        mine = [r for r in listed if r["segment"]["name"] == name]
        assert len(mine) == 1 and mine[0]["verdict"] == "live" and mine[0]["segment"]["attached"] == 1
        assert mine[0]["segment"]["attached_pids"] == [qt6.pid]
        qt6.ok("destroy")
        assert os.path.exists(f"/dev/shm/{name}")  # Qt never unlinks it
        code, listed = qshm_json(capsys, "ls", "--tmpdir", SESSION_TMPDIR)
        assert not [r for r in listed if r["segment"]["name"] == name]
        code, listed = qshm_json(capsys, "ls", f"posix:{name}")
        assert code == 0 and listed[0]["verdict"] == "stale"
        assert qshm(capsys, "clean", f"posix:{name}", "--yes")[0] == 0
        assert not os.path.exists(f"/dev/shm/{name}")
    finally:
        posix.shm_unlink(name)
        posix.sem_unlink(name)


def test_orphans_are_removed_only_when_asked(spawn: Any, key: str) -> None:
    """Objects of a dead Qt 5 peer whose key files are gone are found by ls as orphans; clean
    leaves them unless asked (checked through qshm_compat.inspect, scoped to those objects)."""
    qt5 = spawn("cpp-qt5")
    qt5.ok("key", key=key)
    qt5.ok("create", size=16)
    qt5.kill()
    row = inspect.inspect_ref(inspect.refs_for_key(key)[0])
    assert row.verdict == "stale" and row.lock is not None
    wanted = {row.segment.ipc_key, row.lock.ipc_key}
    for f in row.key_files:
        os.unlink(f.path)
    machine = inspect.Machine()
    refs = [ref for ref in inspect.discover(machine, tmpdirs=[SESSION_TMPDIR])
            if ref.family == inspect.ORPHAN and ref.label in wanted]
    assert len(refs) == 2
    rows = [inspect.inspect_ref(ref, machine) for ref in refs]
    assert {r.verdict for r in rows} == {"stale"}
    kept = inspect.plan_clean(rows)
    assert [s.action for s in kept] == ["keep", "keep"] and "--orphans" in kept[0].reason
    steps = inspect.plan_clean(rows, orphans=True)
    assert sorted(s.kind for s in steps if s.action == "remove") == ["sysv-segment", "sysv-semaphore"]
    assert [inspect.apply_step(s) for s in steps] == [None, None]
    assert not [r for r in (inspect.inspect_ref(ref) for ref in refs) if r.exists]
