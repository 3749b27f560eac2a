"""The ``qshm`` command line (also ``python -m qshm_compat``).

Commands: ``key`` (every native name Qt uses for a key), ``probe`` (which of them exist, with
their facts and a verdict), ``ls`` (every Qt shared memory object on the machine), ``read`` and
``write`` (under Qt's lock), ``image get``/``image put`` (the Qt Shared Memory Example's two
buttons), ``clean`` (remove what is provably dead), ``unlock --force`` (release a POSIX lock a
dead process left taken) and ``demo``.

Every command prints a table for people, or JSON with ``--json``.  Exit status: 0 on success, 1
when what was asked for is not there or failed, 2 on a usage error.  Progress goes to stderr
only when it is a terminal.  The facts and the rules for "dead" live in
:mod:`qshm_compat.inspect`; this module parses, asks and prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, TextIO

from . import inspect as qinspect
from . import keys
from .inspect import KeyRef, QtKey, Step

DEFAULT_TIMEOUT = 5.0
_EXAMPLE_HELP = (
    "The Qt 5 / Qt <= 6.5 example uses the plain key QSharedMemoryExample; the Qt >= 6.8 example "
    "uses posix:QSharedMemoryExample."
)


class CliError(Exception):
    """A failure to report on stderr with an exit status (1: not there or failed, 2: usage)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _usage(message: str) -> NoReturn:
    raise CliError(message, 2)


# ----- output helpers --------------------------------------------------------------------------


class _Progress:
    """One self-erasing status line on stderr, only when stderr is a terminal."""

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self.stream = stream or sys.stderr
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0

    def __call__(self, text: str) -> None:
        if self.on:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()

    def done(self) -> None:
        if self.on and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _print_json(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = []
    for cells in [list(headers)] + [list(r) for r in rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pid(p: Optional[qinspect.Pid]) -> str:
    if p is None or p.pid <= 0:
        return "-"
    return f"{p.pid} ({'running' if p.alive else 'gone'})"


def _row_json(row: QtKey) -> Dict[str, Any]:
    out: Dict[str, Any] = _jsonable(row)
    out["family_label"] = qinspect.FAMILY_LABELS.get(row.ref.family, row.ref.family)
    return out


# ----- keys and contexts -----------------------------------------------------------------------


def _ctx(args: argparse.Namespace) -> keys.KeyContext:
    return keys.KeyContext(qt_version=_qt_version(args))


def _qt_version(args: argparse.Namespace) -> keys.QtVersion:
    try:
        return keys.parse_qt_version(getattr(args, "qt_version", None))
    except ValueError as exc:
        _usage(str(exc))


def _type_arg(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return qinspect.parse_type(text)
    except ValueError as exc:
        _usage(str(exc))


def _refs(args: argparse.Namespace, key: Optional[str] = None, native: Optional[str] = None) -> List[KeyRef]:
    """The refs KEY (or ``key``) and ``--native`` (or ``native``) name."""
    text = key if key is not None else getattr(args, "key", None)
    native = native if native is not None or key is not None else getattr(args, "native", None)
    if native is not None and text:
        _usage("give KEY or --native NAME, not both")
    if native is None and not text:
        _usage("a KEY (or --native NAME --type TYPE) is required")
    try:
        return qinspect.parse_key_argument(text, native=native, type=_type_arg(getattr(args, "type", None)),
                                           plain=getattr(args, "plain", False), ctx=_ctx(args))
    except ValueError as exc:
        _usage(str(exc))


def _many_refs(args: argparse.Namespace) -> List[KeyRef]:
    refs: List[KeyRef] = []
    for text in args.keys:
        refs += _refs(args, text)
    if args.native is not None:
        refs += _refs(args, "", args.native)
    return refs


def _shared_memory(ref: KeyRef, args: argparse.Namespace) -> Any:
    """The QSharedMemory a Qt program of this family would use for ``ref``."""
    from .sharedmemory import QSharedMemory

    qt = _qt_version(args)
    if ref.family == qinspect.LEGACY_SYSV and ref.key is not None and ref.shm().legacyKey():
        return QSharedMemory(ref.key, qt_version=qt)
    if ref.family in (qinspect.LEGACY_SYSV, qinspect.LEGACY_POSIX) and not ref.shm().legacyKey():
        print(f"qshm: note: {ref.shm_key!r} carries no legacy key, so Qt (and we) lock the segment's own "
              "name, not the qipc_systemsem_ lock of legacy-key programs; give the plain key instead",
              file=sys.stderr)
    return QSharedMemory(ref.shm(), qt_version=qt)


def _pick(args: argparse.Namespace, must_exist: bool = True) -> KeyRef:
    """The family to use for KEY: the first whose segment exists (a plain key may have several)."""
    refs = _refs(args)
    existing = [ref for ref in refs if qinspect.segment_exists(ref)]
    if existing:
        if len(existing) > 1:
            others = ", ".join(r.shm_key for r in existing[1:])
            print(f"qshm: note: using {existing[0].shm_key}; also present: {others}", file=sys.stderr)
        return existing[0]
    if must_exist:
        where = "; ".join(r.shm_key for r in refs)
        raise CliError(f"no segment exists for this key (looked for: {where})")
    return refs[0]


# ----- key -------------------------------------------------------------------------------------


def cmd_key(args: argparse.Namespace) -> int:
    ctx = _ctx(args)
    type_filter = _type_arg(args.type)
    if args.native is not None or (not args.plain and args.key and qinspect.ipc_key_string(args.key)):
        names = [qinspect.name_of_ref(ref) for ref in _refs(args)]  # one key of one family
    else:
        if not args.key:
            _usage("the key is empty (Qt refuses an empty key)")
        names = qinspect.native_names(args.key, ctx, type_filter)
    if args.json:
        _print_json(names)
        return 0
    platforms = {"unix": "this machine", "macos": "macOS (from Qt's source)", "windows": "Windows (from Qt's source)"}
    for platform, title in platforms.items():
        mine = [n for n in names if n.platform == platform]
        if not mine:
            continue
        print(f"== {title}")
        for n in mine:
            print(f"{qinspect.FAMILY_LABELS.get(n.family, n.family)}: {n.api}")
            if n.to_string:
                print(f"  toString  {n.to_string}")
            print(f"  segment   {n.shm}")
            print(f"  lock      {n.lock or '(none: Qt takes no lock)'}")
            print(f"  objects   {'; '.join(n.objects)}")
        print()
    return 0


# ----- probe and ls ----------------------------------------------------------------------------


def _describe(row: QtKey) -> List[str]:
    ref, seg, lock = row.ref, row.segment, row.lock
    title = f"{qinspect.FAMILY_LABELS.get(ref.family, ref.family)} — {ref.api}"
    if not row.exists:
        where = seg.path or seg.name or ref.label
        return [f"{title}", f"  not present ({where})"]
    out = [title]
    if ref.shm_key:
        out.append(f"  key        {ref.shm_key}")
    out.append(f"  verdict    {row.verdict.upper()}: {row.reason}")
    if seg.exists:
        ident = f"shmid {seg.id} (key {seg.ipc_key})" if seg.backend == "sysv" else seg.path or seg.name
        att = "?" if seg.attached is None else str(seg.attached)
        out.append(f"  segment    {ident}: {seg.size} bytes, {att} attached, owner {seg.owner}, "
                   f"mode {seg.mode:04o}" if seg.mode is not None else f"  segment    {ident}: {seg.size} bytes")
        if seg.backend == "sysv":
            out.append(f"             creator pid {_pid(seg.creator)}; last attach/detach pid {_pid(seg.last)}")
        elif seg.attached_pids:
            out.append(f"             mapped by pid {', '.join(map(str, seg.attached_pids))}")
        if seg.note:
            out.append(f"             ({seg.note})")
        elif seg.backend == "posix" and not seg.attached_pids:
            out.append("             mapped by no process")
    else:
        out.append(f"  segment    none{f' ({seg.note})' if seg.note else ''}")
    if lock is not None:
        out.append(f"  lock       {_lock_text(lock)}")
    for i, f in enumerate(row.key_files):
        state = f"{f.owner}, {f.age:.0f} s old" if f.exists and f.age is not None else "missing"
        out.append(f"  {'key files ' if i == 0 else '          '} {f.path} ({state})")
    return out


def _lock_text(lock: qinspect.Lock) -> str:
    if not lock.exists:
        return f"none ({lock.path or lock.name})" + (f" ({lock.note})" if lock.note else "")
    ident = f"semid {lock.id} (key {lock.ipc_key})" if lock.backend == "sysv" else lock.path or lock.name
    value = "?" if lock.value is None else str(lock.value)
    text = f"{ident}: {lock.state} (value {value})"
    if lock.backend == "sysv":
        if lock.holder is not None:
            text += f", held by pid {_pid(lock.holder)}"
        text += f", {lock.waiters or 0} waiting, last used by pid {_pid(lock.last)}"
    else:
        if lock.users:
            text += f", open in pid {', '.join(map(str, lock.users))}"
        elif lock.unseen is None:
            text += ", users unknown"
        elif lock.unseen:
            text += ", open in a process whose mappings cannot be read"
        else:
            text += ", open in no process"
        if lock.state == "held":
            text += " (POSIX does not say who holds it)"
    if lock.note:
        text += f" ({lock.note})"
    return text


def cmd_probe(args: argparse.Namespace) -> int:
    refs = _refs(args)
    progress = _Progress()
    machine = qinspect.Machine(progress)
    rows = [qinspect.inspect_ref(ref, machine) for ref in refs]
    progress.done()
    if args.json:
        _print_json([_row_json(r) for r in rows])
    else:
        ctx = _ctx(args)
        print(f"qt naming {'.'.join(map(str, ctx.qt_version))}, temp dir {keys.temp_path(ctx) or '(none)'}")
        for row in rows:
            print("\n".join(_describe(row)))
    return 0 if any(r.exists for r in rows) else 1


def _lock_cell(lock: Optional[qinspect.Lock]) -> str:
    if lock is None or not lock.exists:
        return "-"
    if lock.state == "held" and lock.holder is not None:
        return f"held by {lock.holder.pid}"
    if lock.state == "no-exclusion":
        return f"count {lock.value}!"
    return lock.state


def _scan(args: argparse.Namespace) -> List[QtKey]:
    """Rows for ls and clean: the given keys, or everything found on the machine."""
    progress = _Progress()
    machine = qinspect.Machine(progress)
    ctx = _ctx(args)
    if args.keys or args.native is not None:
        refs = _many_refs(args)
    else:
        tmpdirs = [keys.temp_path(ctx)] + list(args.tmpdir or [])
        progress("looking for Qt's objects")
        refs = qinspect.discover(machine, ctx, tmpdirs)
    rows = []
    for i, ref in enumerate(refs):
        progress(f"inspecting {i + 1}/{len(refs)}")
        rows.append(qinspect.inspect_ref(ref, machine))
    progress.done()
    return [r for r in rows if r.exists]


def cmd_ls(args: argparse.Namespace) -> int:
    rows = _scan(args)
    if args.stale:
        rows = [r for r in rows if r.verdict in ("stale", "broken")]
    if args.json:
        _print_json([_row_json(r) for r in rows])
    else:
        table = []
        for r in rows:
            seg = r.segment
            owner = seg.owner or (r.lock.owner if r.lock and r.lock.exists else None) or "-"
            table.append([
                qinspect.FAMILY_LABELS.get(r.ref.family, r.ref.family), _short(r.ref.label, 48),
                "-" if seg.size is None else str(seg.size),
                "-" if not seg.exists else ("?" if seg.attached is None else str(seg.attached)),
                owner, _pid(seg.creator), _lock_cell(r.lock), f"{r.verdict}: {r.reason}",
            ])
        if table:
            print(_table(["FAMILY", "KEY", "SIZE", "ATT", "OWNER", "CREATOR", "LOCK", "VERDICT"], table))
        else:
            print("no Qt shared memory objects found" + (" that are stale" if args.stale else ""))
    return 1 if (args.keys or args.native is not None) and not rows else 0


# ----- clean -----------------------------------------------------------------------------------


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        _usage(f"{question} -- not asking: stdin is not a terminal; pass --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def cmd_clean(args: argparse.Namespace) -> int:
    rows = _scan(args)
    steps = qinspect.plan_clean(rows, any_user=args.any_user, orphans=args.orphans)
    removals = [s for s in steps if s.action == "remove"]
    if args.json and (args.dry_run or not removals):
        _print_json({"steps": steps, "removed": [], "errors": [], "dry_run": args.dry_run})
        return 0
    if not args.json:
        _print_steps(steps)
        live = sum(1 for r in rows if r.verdict == "live")
        if live:
            print(f"({live} live key(s) left alone)")
    if not removals:
        if not args.json:
            print("nothing to remove")
        return 0
    if args.dry_run:
        print(f"dry run: {len(removals)} object(s) would be removed; nothing was removed")
        return 0
    if not _confirm(f"remove these {len(removals)} object(s)?", args.yes):
        print("nothing removed")
        return 1
    errors = []
    done: List[Step] = []
    for step in removals:
        error = qinspect.apply_step(step)
        if error:
            errors.append(error)
        else:
            done.append(step)
    if args.json:
        _print_json({"steps": steps, "removed": done, "errors": errors, "dry_run": False})
    else:
        for step in done:
            print(f"removed {step.name}")
        for error in errors:
            print(f"qshm: could not remove {error}", file=sys.stderr)
    return 1 if errors else 0


def _print_steps(steps: List[Step]) -> None:
    for step in steps:
        print(f"{step.action:<6}  {step.name}\n        {step.reason} [key {_short(step.key, 70)}]")


# ----- read, write, image ----------------------------------------------------------------------


def _attach(ref: KeyRef, args: argparse.Namespace, readonly: bool) -> Any:
    from .sharedmemory import QSharedMemory

    shm = _shared_memory(ref, args)
    mode = QSharedMemory.ReadOnly if readonly else QSharedMemory.ReadWrite
    if not shm.attach(mode, timeout=args.timeout):
        error = shm.errorString()
        shm.close()
        raise CliError(f"cannot attach to {ref.shm_key}: {error}")
    return shm


def _copy_out(shm: Any, args: argparse.Namespace, offset: int, length: Optional[int]) -> bytes:
    size = shm.size()
    if offset > size:
        raise CliError(f"offset {offset} is past the end of the segment ({size} bytes)")
    end = size if length is None else offset + length
    if end > size:
        raise CliError(f"{offset} + {length} bytes runs past the end of the segment ({size} bytes)")
    if not shm.lock(args.timeout):
        raise CliError(shm.errorString())
    try:
        return bytes(shm.constData()[offset:end])
    finally:
        shm.unlock()


def _read_segment(args: argparse.Namespace, offset: int = 0, length: Optional[int] = None) -> bytes:
    ref = _pick(args)
    row = qinspect.inspect_ref(ref)
    if row.segment.backend == "sysv" and row.segment.attached == 0:
        print("qshm: note: no process is attached to this segment; as Qt's last detach does, ours "
              "removes it", file=sys.stderr)
    shm = _attach(ref, args, readonly=True)
    try:
        return _copy_out(shm, args, offset, length)
    finally:
        shm.close()


def _hexdump(data: bytes, base: int) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hexes = " ".join(chunk[j : j + 2].hex() for j in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{base + i:08x}: {hexes:<39}  {text}")
    return "\n".join(lines)


def cmd_read(args: argparse.Namespace) -> int:
    if args.offset < 0 or (args.length is not None and args.length < 0):
        _usage("--offset and --length must not be negative")
    if args.version is not None and args.decode is None:
        _usage("--version goes with --decode")
    data = _read_segment(args, args.offset, args.length)
    if args.decode:
        return _decode(data, args)
    if args.out:
        if args.out == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            with open(args.out, "wb") as f:
                f.write(data)
            if not args.json:
                print(f"wrote {len(data)} bytes to {args.out}", file=sys.stderr)
        return 0
    if args.json:
        _print_json({"offset": args.offset, "length": len(data), "hex": data.hex()})
    elif args.hex:
        print(data.hex())
    else:
        print(_hexdump(data, args.offset))
    return 0


_DECODE_SKIP = {"raw", "qlist", "qmap", "qhash"}


def _stream_version(text: Optional[str], args: argparse.Namespace) -> int:
    from . import datastream

    if text is None:
        qt = _qt_version(args)
        return int(getattr(datastream, f"Qt_{qt[0]}_{qt[1]}", datastream.DEFAULT_VERSION))
    if text.isdigit():
        return int(text)
    major, _, minor = text.partition(".")
    version = getattr(datastream, f"Qt_{major}_{minor.split('.')[0]}", None)
    if version is None:
        _usage(f"unknown stream version {text!r} (a number such as 19, or a Qt version such as 5.15)")
    return int(version)


def _decode(data: bytes, args: argparse.Namespace) -> int:
    from . import datastream

    choices = sorted(name[5:] for name in dir(datastream.Reader)
                     if name.startswith("read_") and name[5:] not in _DECODE_SKIP)
    name = args.decode.lower()
    if name not in choices:
        _usage(f"cannot decode {args.decode!r}; types: {', '.join(choices)}")
    try:
        reader = datastream.Reader(data, _stream_version(args.version, args))
    except ValueError as exc:
        _usage(str(exc))
    method = getattr(reader, f"read_{name}")
    try:
        value = method(decode=False) if name in ("qimage", "qpixmap") else method()
    except datastream.DataStreamError as exc:
        raise CliError(f"cannot decode a {name}: {exc}") from None
    if isinstance(value, bytes) and name in ("qimage", "qpixmap"):
        shown: Any = f"PNG image {_png_size(value)}, {len(value)} bytes"
    else:
        shown = value
    if args.json:
        _print_json({"type": name, "version": reader.version, "offset": args.offset,
                     "end": args.offset + reader.pos, "value": shown})
    else:
        print(shown if isinstance(shown, str) and name in ("qimage", "qpixmap") else repr(shown))
    return 0


def _png_size(png: bytes) -> str:
    if len(png) >= 24 and png[12:16] == b"IHDR":
        return f"{int.from_bytes(png[16:20], 'big')}x{int.from_bytes(png[20:24], 'big')}"
    return "?x?"


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        _usage(f"not hex: {text!r}")


def _hold(seconds: Optional[float], what: str) -> None:
    """Keep the process (and so the segment) alive for ``seconds``, or until interrupted."""
    progress = _Progress()
    old: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if in_main:
        old = signal.signal(signal.SIGTERM, _interrupt)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            progress(f"holding {what} " + ("until interrupted (Ctrl-C)" if left is None else f"for {left:.0f} s more"))
            time.sleep(0.2 if left is None else min(0.2, left))
    except KeyboardInterrupt:
        pass
    finally:
        progress.done()
        if in_main:
            signal.signal(signal.SIGTERM, old)


def _create_or_attach(ref: KeyRef, args: argparse.Namespace, size: int) -> Any:
    """Create the segment (``size`` bytes); if it exists already, attach to it (Qt 6.8's example)."""
    from .sharedmemory import QSharedMemory

    shm = _shared_memory(ref, args)
    if shm.create(size, timeout=args.timeout):
        return shm
    if shm.error() != QSharedMemory.AlreadyExists:
        error = shm.errorString()
        shm.close()
        raise CliError(f"cannot create {ref.shm_key}: {error}")
    shm.close()
    return _attach(ref, args, readonly=False)


def _write_and_hold(shm: Any, data: bytes, offset: int, args: argparse.Namespace, ref: KeyRef,
                    what: str = "") -> int:
    try:
        size = shm.size()
        if offset + len(data) > size:
            raise CliError(f"refusing to write {len(data)} bytes at offset {offset}: "
                           f"the segment is {size} bytes")
        if not shm.lock(args.timeout):
            raise CliError(shm.errorString())
        try:
            shm.data()[offset : offset + len(data)] = data
        finally:
            shm.unlock()
        message = f"wrote {what or f'{len(data)} bytes'} at offset {offset} of {ref.shm_key} ({size} bytes)"
        if args.hold is not None:
            message += "; holding it " + ("until interrupted" if args.hold < 0 else f"for {args.hold:g} s")
        if args.json:
            _print_json({"key": ref.shm_key, "offset": offset, "length": len(data), "size": size,
                         "hold": args.hold})
        else:
            print(message)
        sys.stdout.flush()
        if args.hold is not None:
            _hold(None if args.hold < 0 else args.hold, ref.shm_key)
    finally:
        shm.close()
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    if args.offset < 0:
        _usage("--offset must not be negative")
    if args.file is not None:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                with open(args.file, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        data = _parse_hex(args.hex)
    ref = _pick(args, must_exist=not args.create)
    if args.create and not qinspect.segment_exists(ref):
        shm = _create_or_attach(ref, args, args.offset + len(data))
        if ref.shm().type() != keys.QNativeIpcKey.Type.PosixRealtime and args.hold is None:
            print("qshm: note: no --hold: the new segment goes away with our detach (System V's last "
                  "detach removes it)", file=sys.stderr)
    else:
        shm = _attach(ref, args, readonly=False)
    return _write_and_hold(shm, data, args.offset, args, ref)


def cmd_image_get(args: argparse.Namespace) -> int:
    from . import datastream

    data = _read_segment(args)
    try:
        png = datastream.decode_image(data, decode=False)
    except datastream.DataStreamError as exc:
        raise CliError(f"the segment does not hold a streamed QImage: {exc}") from None
    if png is None:
        raise CliError("the segment holds a null image")
    if args.out == "-":
        sys.stdout.buffer.write(png)
        sys.stdout.flush()
    else:
        with open(args.out, "wb") as f:
            f.write(png)
    info = {"key": args.key, "out": args.out, "png_bytes": len(png), "size": _png_size(png)}
    if args.json:
        _print_json(info)
    elif args.out != "-":
        print(f"wrote {args.out}: PNG {info['size']}, {len(png)} bytes")
    return 0


def cmd_image_put(args: argparse.Namespace) -> int:
    from . import datastream

    try:
        with open(args.image, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.image}: {exc.strerror}") from None
    image: Any = raw
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        try:  # the example loads any image Qt reads; we need Pillow for anything but PNG
            from PIL import Image
        except ImportError:
            raise CliError(f"{args.image} is not a PNG file (install Pillow to convert other formats)") from None
        try:
            image = Image.open(args.image)
            image.load()
        except Exception as exc:
            raise CliError(f"cannot read {args.image} as an image: {exc}") from None
    try:
        payload = datastream.encode_image(image)
    except datastream.DataStreamError as exc:
        raise CliError(f"cannot stream {args.image} as a QImage: {exc}") from None
    ref = _pick(args, must_exist=False)
    shm = _create_or_attach(ref, args, len(payload))
    if shm.size() < len(payload):
        size = shm.size()
        shm.close()
        raise CliError(f"the existing segment is {size} bytes; the image needs {len(payload)}")
    args.offset = 0
    if args.hold is None:
        args.hold = -1  # the example keeps the segment while its window is open: until interrupted
    png_size = _png_size(payload[4:])
    return _write_and_hold(shm, payload, 0, args, ref, f"the image {args.image} ({png_size}, {len(payload)} bytes)")


# ----- unlock ----------------------------------------------------------------------------------


def cmd_unlock(args: argparse.Namespace) -> int:
    if not args.force:
        _usage("unlock releases a lock that may belong to a running process: pass --force "
               "(it is meant for a POSIX lock left taken by a process that died)")
    machine = qinspect.Machine(_Progress())
    rows = [qinspect.inspect_ref(ref, machine) for ref in _refs(args)]
    locked = [r for r in rows if r.lock is not None and r.lock.exists]
    if not locked:
        raise CliError("no lock semaphore exists for this key")
    held = [r for r in locked if r.lock is not None and r.lock.state in ("held", "unset")]
    if not held:
        states = ", ".join(f"{r.ref.lock_key}: {r.lock.state}" for r in locked if r.lock)
        raise CliError(f"the lock is not held ({states}); nothing to do")
    row = held[0]
    lock = row.lock
    assert lock is not None
    print(f"lock {row.ref.lock_key}")
    print(f"  {_lock_text(lock)}")
    print(f"  segment: {'none' if not row.segment.exists else f'{row.segment.attached} attached'}; verdict "
          f"{row.verdict}: {row.reason}")
    if lock.backend == "sysv":
        holder = lock.holder
        if holder is not None and holder.alive is not False:
            raise CliError(f"pid {holder.pid}, which holds it, is running; System V locks are given "
                           "back by the kernel when their holder dies (SEM_UNDO), so it is not abandoned")
    elif lock.users:
        print(f"  note: pid {', '.join(map(str, lock.users))} have it open; POSIX cannot say whether one "
              "of them holds it or waits for it. Reset it only if none of them holds it.")
    if not _confirm(f"reset the lock {row.ref.lock_key} to free (value 1)?", args.yes):
        print("left as it is")
        return 1
    try:
        if lock.backend == "posix":
            from . import posix

            sem = posix.sem_open_existing(lock.name)
            try:
                sem.release(1)
                value = sem.value()
            finally:
                sem.close()
        else:
            from . import sysv

            assert lock.id is not None
            sem_v = sysv.Semaphore(lock.id, lock.name)
            sem_v.set_value(1)  # not semop +1 with SEM_UNDO: our exit would take it back
            value = sem_v.value()
    except OSError as exc:
        raise CliError(f"cannot reset {lock.name}: {exc.strerror or exc}") from None
    if args.json:
        _print_json({"lock": row.ref.lock_key, "value": value})
    else:
        print(f"released: value is now {value}")
    return 0


# ----- demo ------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    if args.child:
        return demo.child(args.demo_key)
    return demo.run(args.demo_key, hold=args.hold)


# ----- the parser ------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    p.add_argument("--qt-version", metavar="X.Y[.Z]",
                   help="the Qt whose naming and behaviour to mirror (default $QSHM_QT_VERSION or 5.15)")
    return p


def _key_options(p: argparse.ArgumentParser, positional: str = "one") -> None:
    if positional == "one":
        p.add_argument("key", nargs="?", metavar="KEY",
                       help="a plain Qt key, or a QNativeIpcKey::toString() string such as posix:/name")
    p.add_argument("--native", metavar="NAME", help="a native key instead of KEY (with --type)")
    p.add_argument("--type", metavar="TYPE",
                   help="key type: systemv, posix, windows or systemv-N (default for --native: posix)")
    p.add_argument("--plain", action="store_true",
                   help="take KEY as a plain Qt key even if it reads as a toString() string")


def _timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long to wait for Qt's lock (default {DEFAULT_TIMEOUT:g})")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qshm",
        description="Work with Qt's shared memory (QSharedMemory / QSystemSemaphore) without Qt. "
        "Exit status: 0 success, 1 not there or failed, 2 usage error.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    common = _common()

    p = commands.add_parser("key", parents=[common], help="every native name Qt uses for a key",
                            description="List the native names Qt uses for KEY in every key family: "
                            "legacy System V and POSIX, the Qt 6.6 QNativeIpcKey families, and the macOS "
                            "and Windows names, with QNativeIpcKey::toString(). Creates nothing.")
    _key_options(p)
    p.set_defaults(func=cmd_key)

    p = commands.add_parser("probe", parents=[common], help="which of a key's objects exist, and their state",
                            description="For each key family, show whether the segment, its lock semaphore "
                            "and its key files exist: size, attach count, owner, creator and last pids and "
                            "whether they run, the lock's state, and a verdict (live, stale, broken). "
                            "Exit 1 if nothing exists.")
    _key_options(p)
    p.set_defaults(func=cmd_probe)

    scan = argparse.ArgumentParser(add_help=False)
    scan.add_argument("keys", nargs="*", metavar="KEY", help="only these keys (default: everything found)")
    _key_options(scan, positional="none")
    scan.add_argument("--tmpdir", action="append", metavar="DIR",
                      help="another temp dir to search for Qt key files (repeatable; $TMPDIR is always searched)")

    p = commands.add_parser("ls", parents=[common, scan], help="every Qt shared memory object on the machine",
                            description="List Qt's shared memory objects, found from its key files, System V "
                            "segments and semaphores, and /dev/shm, one row per key, with the facts probe "
                            "gives. POSIX objects with a plain name count as Qt's only while their lock "
                            "semaphore exists, unless named as KEY.")
    p.add_argument("--stale", action="store_true", help="only stale and broken keys")
    p.set_defaults(func=cmd_ls)

    p = commands.add_parser("clean", parents=[common, scan], help="remove what is provably dead",
                            description="Remove only what is provably dead: segments nobody is attached to "
                            "whose creator is gone, POSIX segments no process maps, lock semaphores with no "
                            "segment that no running process uses, and key files whose objects are gone. "
                            "Prints what it removes and why. Never touches an object a running process "
                            "uses, nor another user's object unless run by root with --any-user.")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed, remove nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--any-user", action="store_true", help="as root: also other users' objects")
    p.add_argument("--orphans", action="store_true",
                   help="also System V objects keyed with 'Q' whose key file is gone")
    p.set_defaults(func=cmd_clean)

    p = commands.add_parser("read", parents=[common], help="copy bytes out of a segment, under the lock",
                            description="Attach read-only, take Qt's lock (with a timeout), copy, unlock, "
                            "detach. Prints a hex dump, or --hex, or writes --out FILE, or decodes a "
                            "QDataStream value with --decode TYPE.")
    _key_options(p)
    _timeout(p)
    p.add_argument("--offset", type=int, default=0, metavar="N", help="first byte (default 0)")
    p.add_argument("--length", type=int, metavar="N", help="how many bytes (default: to the end)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--hex", action="store_true", help="print the bytes as one line of hex")
    out.add_argument("--out", metavar="FILE", help="write the raw bytes to FILE ('-': stdout)")
    out.add_argument("--decode", metavar="TYPE",
                     help="decode one QDataStream value: qvariant, qstring, qbytearray, qimage, int32, ...")
    p.add_argument("--version", metavar="V",
                   help="QDataStream version for --decode: a number (19) or a Qt version (5.15); "
                   "default: that of --qt-version")
    p.set_defaults(func=cmd_read)

    p = commands.add_parser("write", parents=[common], help="copy bytes into a segment, under the lock",
                            description="Attach, take Qt's lock, copy, unlock, detach. Refuses to write past "
                            "the end of the segment.")
    _key_options(p)
    _timeout(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--hex", metavar="HEX", help="the bytes, in hex")
    src.add_argument("--file", metavar="FILE", help="the bytes, from FILE ('-': stdin)")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="where to write (default 0)")
    p.add_argument("--create", action="store_true",
                   help="create the segment (offset + length bytes) if it does not exist")
    p.add_argument("--hold", type=float, metavar="SECONDS",
                   help="stay attached this long afterwards (negative: until interrupted)")
    p.set_defaults(func=cmd_write)

    p = commands.add_parser("image", help="the Qt Shared Memory Example's two buttons",
                            description="Read or write the image of Qt's Shared Memory Example: "
                            "QDataStream's qint32 1 followed by a PNG file. " + _EXAMPLE_HELP)
    images = p.add_subparsers(dest="image_command", metavar="ACTION")
    images.required = True
    g = images.add_parser("get", parents=[common], help="'Load Image from Shared Memory': save it as PNG",
                          description="Attach read-only, lock, copy, unlock, detach, and save the image as "
                          "OUT.png ('-': stdout). " + _EXAMPLE_HELP)
    _key_options(g)
    _timeout(g)
    g.add_argument("out", metavar="OUT.png")
    g.set_defaults(func=cmd_image_get)
    g = images.add_parser("put", parents=[common], help="'Load Image from File': put a PNG in a segment",
                          description="Create a segment of exactly the streamed image's size (or attach "
                          "if it exists, as Qt 6.8's example does), lock, copy, unlock, and keep it "
                          "alive for --hold seconds or until interrupted. " + _EXAMPLE_HELP)
    _key_options(g)
    _timeout(g)
    g.add_argument("image", metavar="IN.png", help="a PNG file (other formats need Pillow)")
    g.add_argument("--hold", type=float, metavar="SECONDS",
                   help="how long to keep the segment alive (default: until interrupted)")
    g.set_defaults(func=cmd_image_put)

    p = commands.add_parser("unlock", parents=[common], help="release a lock a dead process left taken",
                            description="For a POSIX lock left taken by a process that died (POSIX has no "
                            "undo): show what is known, then reset it with sem_post once you confirm "
                            "or pass --yes. A System V lock held by a running process is refused: the "
                            "kernel gives back the lock of a process that dies. A System V lock that "
                            "was never set (count 0, never used: its creator died before SETVAL, or Qt "
                            "made it in a race), on which Qt's attach() waits for ever, is set to 1.")
    _key_options(p)
    p.add_argument("--force", action="store_true", help="required: you know the lock may be someone's")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_unlock)

    p = commands.add_parser(
        "demo",
        help="Qt's Shared Memory Example: publish a picture under Qt's names and lock, "
        "read it back from a second process",
        description="Play both sides of Qt's Shared Memory Example: one process publishes a "
        "picture as the example's \"Load Image From File\" does, a second one loads it as "
        "\"Load Image From Shared Memory\" does, and nothing is left behind.",
    )
    p.add_argument("--key", dest="demo_key",
                   help="the Qt key to use (default: QSharedMemoryExample, the Qt 5 example's key)")
    p.add_argument("--hold", type=float, metavar="SECONDS", default=None,
                   help="after the round trip, keep the segment this long (Ctrl-C ends it early) so a "
                   "running Qt example can load it with \"Load Image From Shared Memory\"")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``qshm`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        print(f"qshm {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
