#!/usr/bin/env python3
"""Real-Qt peer for the qshm_compat interop tests, for PyQt5, PyQt6 or PySide6.

Usage:  python interop_fixtures/peer.py pyqt5|pyqt6|pyside6

The peer speaks the JSON-lines protocol described in interop_fixtures/PROTOCOL.md on stdin and
stdout. It owns at most one QSharedMemory and one QSystemSemaphore and does exactly what each
request says with the binding's own Qt API. It holds no test logic. Diagnostics go to stderr only;
stdout carries nothing but protocol lines.
"""

import json
import os
import sys
import time
import traceback

STACKS = ("pyqt5", "pyqt6", "pyside6")

# Requests that work on the shared memory object / on the semaphore. Their answers carry the
# object's error() and errorString() whenever the object exists.
SHM_CMDS = {"key", "native", "ipckey", "create", "attach", "detach", "lock", "unlock", "state",
            "read", "write", "incr", "bench_lock", "bench_attach", "destroy"}
SEM_CMDS = {"sem_open", "sem_native", "sem_acquire", "sem_release", "sem_destroy"}
# Shared memory requests that need an existing shm object (the others make one).
SHM_NEEDS_OBJECT = SHM_CMDS - {"key", "native", "ipckey"}
SEM_NEEDS_OBJECT = {"sem_acquire", "sem_release", "sem_destroy"}

REQUIRED = object()
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class Unsupported(Exception):
    """The peer cannot do the request (bad argument, missing API, no object...)."""


def load_binding(stack):
    """Import the binding; return (QtCore module, function destroying a wrapped C++ object)."""
    if stack == "pyqt5":
        from PyQt5 import QtCore, sip
        return QtCore, sip.delete
    if stack == "pyqt6":
        from PyQt6 import QtCore, sip
        return QtCore, sip.delete
    if stack == "pyside6":
        from PySide6 import QtCore
        import shiboken6
        return QtCore, shiboken6.delete
    raise ValueError(stack)


def as_int(value):
    """Plain int of a Qt enum value (PyQt5 enums are ints, PyQt6/PySide6 ones have .value)."""
    return int(getattr(value, "value", value))


def arg(req, name, kinds, default=REQUIRED):
    """Argument `name` of the request, checked against the JSON types `kinds`."""
    if name not in req:
        if default is REQUIRED:
            raise Unsupported("bad argument: missing %r" % name)
        return default
    value = req[name]
    if isinstance(value, bool) and bool not in kinds:
        raise Unsupported("bad argument: %r must not be a boolean" % name)
    if not isinstance(value, kinds):
        raise Unsupported("bad argument: %r has the wrong type" % name)
    return value


def arg_int(req, name, default=REQUIRED):
    value = arg(req, name, (int, float), default)
    if isinstance(value, float):  # JSON has one number type: accept 5.0 as 5, like the C++ peer
        if not value.is_integer():
            raise Unsupported("bad argument: %r must be an integer" % name)
        value = int(value)
    return value


def arg_str(req, name, default=REQUIRED):
    return arg(req, name, (str,), default)


def arg_bool(req, name, default=REQUIRED):
    return arg(req, name, (bool,), default)


def arg_number(req, name, default=REQUIRED):
    return arg(req, name, (int, float), default)


def arg_str_list(req, name):
    value = arg(req, name, (list,))
    if not all(isinstance(item, str) for item in value):
        raise Unsupported("bad argument: %r must be a list of strings" % name)
    return value


class Peer:
    def __init__(self, stack):
        self.stack = stack
        self.QtCore, self.delete = load_binding(stack)
        self.app = self.QtCore.QCoreApplication([sys.argv[0]])
        self.IpcKey = getattr(self.QtCore, "QNativeIpcKey", None)  # Qt >= 6.6 only
        self.shm = None
        self.sem = None
        self.readonly = False  # mode of the last successful create/attach
        self.exiting = False

    # ----- output -------------------------------------------------------------------------

    @staticmethod
    def emit(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def ready_line(self):
        Q = self.QtCore
        return {"ready": True, "stack": self.stack, "qt": Q.qVersion(), "pid": os.getpid(),
                "tempPath": Q.QDir.tempPath(), "datastreamVersion": Q.QDataStream().version(),
                "nativeIpcKey": self.IpcKey is not None}

    # ----- object lifetime ----------------------------------------------------------------

    def destroy_shm(self):
        if self.shm is not None:
            shm, self.shm = self.shm, None
            self.delete(shm)  # runs ~QSharedMemory now, not at garbage collection
        self.readonly = False

    def destroy_sem(self):
        if self.sem is not None:
            sem, self.sem = self.sem, None
            self.delete(sem)

    def shutdown(self):
        self.destroy_sem()
        self.destroy_shm()

    # ----- helpers --------------------------------------------------------------------------

    def need_ipckey(self, what):
        if self.IpcKey is None:
            raise Unsupported("%s needs QNativeIpcKey (Qt >= 6.6), this is Qt %s"
                              % (what, self.QtCore.qVersion()))

    def ipc_type(self, value):
        """QNativeIpcKey.Type from "systemv"/"posix"/"windows" or an int."""
        Type = self.IpcKey.Type
        names = {"systemv": "SystemV", "posix": "PosixRealtime", "windows": "Windows"}
        if isinstance(value, str) and value in names:
            return getattr(Type, names[value])
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
            try:
                return Type(value)
            except (ValueError, TypeError) as exc:
                raise Unsupported("bad argument: type %d cannot be built in %s: %s"
                                  % (value, self.stack, exc))
        raise Unsupported("bad argument: type %r" % (value,))

    def access_mode(self, readonly):
        mode = self.QtCore.QSharedMemory.AccessMode
        return mode.ReadOnly if readonly else mode.ReadWrite

    def sem_mode(self, req):
        name = arg_str(req, "mode", "open")
        modes = self.QtCore.QSystemSemaphore.AccessMode
        if name == "open":
            return modes.Open
        if name == "create":
            return modes.Create
        raise Unsupported("bad argument: mode %r" % name)

    def shm_key_fields(self):
        fields = {"key": self.shm.key(), "nativeKey": self.shm.nativeKey()}
        if self.IpcKey is not None:
            k = self.shm.nativeIpcKey()
            fields["toString"] = k.toString()
            fields["type"] = as_int(k.type())
        return fields

    def segment(self, writable, offset, length=None):
        """Memoryview of data()/constData()[offset:offset+length], checked against size()."""
        shm = self.shm
        size = shm.size()
        if not shm.isAttached() or size <= 0:
            raise Unsupported("not attached")
        if writable and self.readonly:
            raise Unsupported("attached read-only")
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise Unsupported("range %d+%d is outside the segment (size %d)"
                              % (offset, length, size))
        ptr = shm.data() if writable else shm.constData()
        if ptr is None:
            raise Unsupported("not attached")
        if hasattr(ptr, "setsize"):  # PyQt's sip.voidptr does not know its size
            ptr.setsize(size)
        view = memoryview(ptr)
        if view.nbytes < size:
            raise Unsupported("binding gave a buffer of %d bytes for a %d byte segment"
                              % (view.nbytes, size))
        return view[offset:offset + length]

    # ----- dispatch -------------------------------------------------------------------------

    def handle_line(self, raw):
        try:
            req = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # also UnicodeDecodeError
            return {"ok": False, "unsupported": "bad json: %s" % exc}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "unsupported": "bad request: not an object with a string cmd"}
        cmd = req["cmd"]
        handler = getattr(self, "cmd_" + cmd, None)
        if handler is None:
            return {"ok": False, "unsupported": "unknown command: %s" % cmd}
        try:
            if cmd in SHM_NEEDS_OBJECT and self.shm is None:
                raise Unsupported("no shm object")
            if cmd in SEM_NEEDS_OBJECT and self.sem is None:
                raise Unsupported("no sem object")
            answer = handler(req)
        except Unsupported as exc:
            answer = {"ok": False, "unsupported": str(exc)}
        except (TypeError, ValueError, OverflowError) as exc:
            answer = {"ok": False, "unsupported": "bad argument: %s" % exc}
        except Exception as exc:  # never leave a request unanswered
            traceback.print_exc(file=sys.stderr)
            answer = {"ok": False, "unsupported": "internal error: %r" % exc}
        if cmd in SHM_CMDS and self.shm is not None:
            answer["error"] = as_int(self.shm.error())
            answer["errorString"] = self.shm.errorString()
        elif cmd in SEM_CMDS and self.sem is not None:
            answer["error"] = as_int(self.sem.error())
            answer["errorString"] = self.sem.errorString()
        return answer

    # ----- shared memory requests ------------------------------------------------------------

    def cmd_key(self, req):
        key = arg_str(req, "key")
        self.destroy_shm()
        self.shm = self.QtCore.QSharedMemory(key)
        return dict(ok=True, **self.shm_key_fields())

    def cmd_native(self, req):
        native = arg_str(req, "native")
        args = [native]
        if "type" in req:
            self.need_ipckey("native with a type")
            args.append(self.ipc_type(req["type"]))
        self.destroy_shm()
        self.shm = self.QtCore.QSharedMemory()
        self.shm.setNativeKey(*args)
        return dict(ok=True, **self.shm_key_fields())

    def cmd_ipckey(self, req):
        self.need_ipckey("ipckey")
        mode = arg_str(req, "mode")
        key = arg_str(req, "key")
        type_args = [self.ipc_type(req["type"])] if "type" in req else []
        Q = self.QtCore
        if mode == "native":
            k = self.IpcKey(key, *type_args)
        elif mode == "platformSafe":
            k = Q.QSharedMemory.platformSafeKey(key, *type_args)
        elif mode == "legacy":
            k = Q.QSharedMemory.legacyNativeKey(key, *type_args)
        elif mode == "fromString":
            if type_args:
                raise Unsupported("bad argument: fromString takes no type")
            k = self.IpcKey.fromString(key)
        else:
            raise Unsupported("bad argument: mode %r" % mode)
        self.destroy_shm()
        self.shm = Q.QSharedMemory(k)
        return dict(ok=True, **self.shm_key_fields())

    def cmd_create(self, req):
        size = arg_int(req, "size")
        readonly = arg_bool(req, "readonly", False)
        ok = self.shm.create(size, self.access_mode(readonly))
        if ok:
            self.readonly = readonly
        return {"ok": bool(ok), "size": self.shm.size()}

    def cmd_attach(self, req):
        readonly = arg_bool(req, "readonly", False)
        ok = self.shm.attach(self.access_mode(readonly))
        if ok:
            self.readonly = readonly
        return {"ok": bool(ok), "size": self.shm.size()}

    def cmd_detach(self, req):
        return {"ok": bool(self.shm.detach())}

    def cmd_lock(self, req):
        return {"ok": bool(self.shm.lock())}

    def cmd_unlock(self, req):
        return {"ok": bool(self.shm.unlock())}

    def cmd_state(self, req):
        return dict(ok=True, size=self.shm.size(), isAttached=bool(self.shm.isAttached()),
                    **self.shm_key_fields())

    def cmd_read(self, req):
        offset = arg_int(req, "offset", 0)
        length = arg_int(req, "length", None)
        with self.segment(False, offset, length) as view:
            return {"ok": True, "hex": view.tobytes().hex()}

    def cmd_write(self, req):
        text = arg_str(req, "hex")
        if len(text) % 2 or not all(c in HEX_DIGITS for c in text):
            raise Unsupported("bad argument: 'hex' is not hex")
        data = bytes.fromhex(text)
        offset = arg_int(req, "offset", 0)
        with self.segment(True, offset, len(data)) as view:
            view[:] = data
        return {"ok": True}

    def cmd_incr(self, req):
        count = arg_int(req, "count")
        offset = arg_int(req, "offset", 0)
        start_at = arg_number(req, "start_at", None)
        shm = self.shm
        with self.segment(True, offset, 4) as cell:
            if start_at is not None:
                delay = start_at - time.time()
                if delay > 0:
                    time.sleep(delay)
            done = 0
            value = None
            started = time.time()
            t0 = time.perf_counter()
            for _ in range(count):
                if not shm.lock():
                    break
                value = (int.from_bytes(cell, "little") + 1) & 0xFFFFFFFF
                cell[:] = value.to_bytes(4, "little")
                done += 1
                if not shm.unlock():
                    break
            elapsed = time.perf_counter() - t0
            finished = time.time()
        return {"ok": done == count, "done": done, "value": value, "elapsed": elapsed,
                "started": started, "finished": finished}

    def cmd_bench_lock(self, req):
        n = arg_int(req, "n")
        shm = self.shm
        done = 0
        t0 = time.perf_counter()
        for _ in range(n):
            if not shm.lock():
                break
            if not shm.unlock():
                break
            done += 1
        elapsed = time.perf_counter() - t0
        return {"ok": done == n, "done": done, "elapsed": elapsed}

    def cmd_bench_attach(self, req):
        n = arg_int(req, "n")
        mode = self.access_mode(arg_bool(req, "readonly", False))
        shm = self.shm
        done = 0
        t0 = time.perf_counter()
        for _ in range(n):
            if not shm.attach(mode):
                break
            if not shm.detach():
                break
            done += 1
        elapsed = time.perf_counter() - t0
        return {"ok": done == n, "done": done, "elapsed": elapsed}

    def cmd_destroy(self, req):
        self.destroy_shm()
        return {"ok": True}

    # ----- semaphore requests ----------------------------------------------------------------

    def cmd_sem_open(self, req):
        key = arg_str(req, "key")
        initial = arg_int(req, "initial", 0)
        mode = self.sem_mode(req)
        self.destroy_sem()
        self.sem = self.QtCore.QSystemSemaphore(key, initial, mode)
        return {"ok": as_int(self.sem.error()) == 0, "key": self.sem.key()}

    def cmd_sem_native(self, req):
        self.need_ipckey("sem_native")
        native = arg_str(req, "native")
        type_args = [self.ipc_type(req["type"])] if "type" in req else []
        initial = arg_int(req, "initial", 0)
        mode = self.sem_mode(req)
        k = self.IpcKey(native, *type_args)
        self.destroy_sem()
        self.sem = self.QtCore.QSystemSemaphore(k, initial, mode)
        k = self.sem.nativeIpcKey()
        return {"ok": as_int(self.sem.error()) == 0, "key": self.sem.key(),
                "toString": k.toString(), "type": as_int(k.type())}

    def cmd_sem_acquire(self, req):
        return {"ok": bool(self.sem.acquire())}

    def cmd_sem_release(self, req):
        n = arg_int(req, "n", 1)
        return {"ok": bool(self.sem.release(n))}

    def cmd_sem_destroy(self, req):
        self.destroy_sem()
        return {"ok": True}

    # ----- key computations ------------------------------------------------------------------

    def cmd_keyinfo(self, req):
        keys = arg_str_list(req, "keys")
        Q = self.QtCore
        out = []
        for key in keys:
            shm = Q.QSharedMemory(key)
            info = {"key": key, "shmNativeKey": shm.nativeKey()}
            self.delete(shm)
            if self.IpcKey is not None:
                T = self.IpcKey.Type
                typed = {"systemv": T.SystemV, "posix": T.PosixRealtime, "windows": T.Windows}
                info["native"] = {"default": self.IpcKey(key).toString(),
                                  "systemv": self.IpcKey(key, T.SystemV).toString(),
                                  "posix": self.IpcKey(key, T.PosixRealtime).toString()}
                for name, cls in (("shm", Q.QSharedMemory), ("sem", Q.QSystemSemaphore)):
                    group = {}
                    for kind, func in (("platformSafe", cls.platformSafeKey),
                                       ("legacy", cls.legacyNativeKey)):
                        group[kind] = {"default": func(key).toString()}
                        for tname, t in typed.items():
                            group[kind][tname] = func(key, t).toString()
                    info[name] = group
            out.append(info)
        return {"ok": True, "keys": out}

    def cmd_parse(self, req):
        self.need_ipckey("parse")
        strings = arg_str_list(req, "strings")
        out = []
        for s in strings:
            k = self.IpcKey.fromString(s)
            out.append({"valid": bool(k.isValid()), "type": as_int(k.type()),
                        "nativeKey": k.nativeKey(), "toString": k.toString()})
        return {"ok": True, "keys": out}

    # ----- end ---------------------------------------------------------------------------------

    def cmd_exit(self, req):
        self.shutdown()
        self.exiting = True
        return {"ok": True}

    # ----- main loop -------------------------------------------------------------------------

    def run(self):
        """Serve requests until `exit` or end of input; return the exit status."""
        stdin = sys.stdin.buffer
        try:
            self.emit(self.ready_line())
            while not self.exiting:
                raw = stdin.readline()
                if not raw:  # end of input: behave as `exit`
                    self.emit(self.cmd_exit({}))
                    break
                self.emit(self.handle_line(raw.rstrip(b"\r\n")))
            return 0
        except BrokenPipeError:
            # Nobody reads our answers any more: clean up as `exit` does, quietly.
            self.shutdown()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1


def main(argv):
    if len(argv) != 2 or argv[1] not in STACKS:
        sys.stderr.write("usage: %s %s\n" % (argv[0], "|".join(STACKS)))
        return 2
    return Peer(argv[1]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
