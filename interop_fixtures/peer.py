#!/usr/bin/env python3
"""Real-Qt peer for the qshm_compat interop tests, for PyQt5, PyQt6 or PySide6.

Usage:  python interop_fixtures/peer.py pyqt5|pyqt6|pyside6

The peer speaks the JSON-lines protocol described in interop_fixtures/PROTOCOL.md on stdin and
stdout. It owns at most one QSharedMemory and one QSystemSemaphore and does exactly what each
request says with the binding's own Qt API. It holds no test logic. Diagnostics go to stderr only;
stdout carries nothing but protocol lines.
"""

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback

STACKS = ("pyqt5", "pyqt6", "pyside6")

# Requests that work on the shared memory object / on the semaphore. Their answers carry the
# object's error() and errorString() whenever the object exists.
SHM_CMDS = {"key", "native", "ipckey", "create", "attach", "detach", "lock", "unlock", "state",
            "read", "write", "incr", "bench_lock", "bench_attach", "destroy", "image_put",
            "image_get", "variant_put", "variant_get"}
SEM_CMDS = {"sem_open", "sem_native", "sem_acquire", "sem_release", "sem_destroy"}
# Shared memory requests that need an existing shm object (the others make one).
SHM_NEEDS_OBJECT = SHM_CMDS - {"key", "native", "ipckey"}
SEM_NEEDS_OBJECT = {"sem_acquire", "sem_release", "sem_destroy"}

REQUIRED = object()
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# image_get gives the RGBA8888 pixels as hex up to this many bytes, and always their sha1.
MAX_PIXEL_HEX = 65536


class Unsupported(Exception):
    """The peer cannot do the request (bad argument, missing API, no object...)."""


def load_binding(stack):
    """Import the binding; return (QtCore, QtGui, sip module or None, function destroying a
    wrapped C++ object)."""
    if stack == "pyqt5":
        from PyQt5 import QtCore, QtGui, sip
        return QtCore, QtGui, sip, sip.delete
    if stack == "pyqt6":
        from PyQt6 import QtCore, QtGui, sip
        return QtCore, QtGui, sip, sip.delete
    if stack == "pyside6":
        from PySide6 import QtCore, QtGui
        import shiboken6
        return QtCore, QtGui, None, shiboken6.delete
    raise ValueError(stack)


def enum_member(scope, enum_name, member):
    """scope.enum_name.member (PyQt6/PySide6 scoped enums), or scope.member (PyQt5)."""
    group = getattr(scope, enum_name, None)
    if group is not None and hasattr(group, member):
        return getattr(group, member)
    return getattr(scope, member)


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
        self.QtCore, self.QtGui, self.sip, self.delete = load_binding(stack)
        # QImage wants a QGuiApplication for some formats and for the screen's dpi; the tests
        # set QT_QPA_PLATFORM=offscreen, so no display is needed.
        if os.environ.get("QT_QPA_PLATFORM"):
            self.app = self.QtGui.QGuiApplication([sys.argv[0]])
        else:
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

    # ----- QDataStream requests: the Shared Memory Example, and QVariant --------------------

    def io_mode(self, name):
        return enum_member(self.QtCore.QIODevice, "OpenModeFlag", name)

    def stream_out(self, write, version=None):
        """Bytes that `write(QDataStream)` puts in a QBuffer; (bytes, version, status)."""
        Q = self.QtCore
        buf = Q.QBuffer()
        buf.open(self.io_mode("WriteOnly"))
        out = Q.QDataStream(buf)
        if version is not None:
            out.setVersion(version)
        write(out)
        data = bytes(buf.data())
        buf.close()
        return data, out.version(), as_int(out.status())

    def stream_in(self, data, version=None):
        """A QDataStream reading `data` from a QBuffer (returned too: it must stay alive)."""
        Q = self.QtCore
        buf = Q.QBuffer()
        buf.setData(data)
        buf.open(self.io_mode("ReadOnly"))
        stream = Q.QDataStream(buf)
        if version is not None:
            stream.setVersion(version)
        return stream, buf

    @contextlib.contextmanager
    def raw_qvariant(self):
        """PyQt: let Qt calls return QVariant objects instead of Python values, for a while."""
        if self.sip is None:
            yield
            return
        prev = self.sip.enableautoconversion(self.QtCore.QVariant, False)
        try:
            yield
        finally:
            self.sip.enableautoconversion(self.QtCore.QVariant, prev)

    def meta_type_name(self, type_id):
        """QMetaType(type_id).name(), or None for an id Qt does not know."""
        if not 0 < type_id <= 0x7FFFFFFF:
            return None
        meta = self.QtCore.QMetaType(type_id)
        if not meta.isValid():
            return None
        name = meta.name()
        if isinstance(name, (bytes, bytearray)) or type(name).__name__ == "QByteArray":
            name = bytes(name).decode("latin-1")
        return name or None

    def publish(self, payload, fallback):
        """create(len(payload)) (if `fallback`, on AlreadyExists attach() as the 6.8 example
        does), lock, copy min(size(), len(payload)) bytes, unlock. Returns the answer."""
        shm = self.shm
        size = len(payload)
        answer = {"ok": False, "size": size, "created": False}
        created = bool(shm.create(size))
        if not created:
            already = enum_member(self.QtCore.QSharedMemory, "SharedMemoryError", "AlreadyExists")
            if not fallback or as_int(shm.error()) != as_int(already) or not shm.attach():
                answer["segmentSize"] = shm.size()
                return answer
        self.readonly = False
        answer["created"] = created
        answer["segmentSize"] = shm.size()
        if not shm.lock():
            return answer
        try:
            n = min(shm.size(), size)
            with self.segment(True, 0, n) as view:
                view[:] = payload[:n]
        finally:
            answer["ok"] = bool(shm.unlock())
        return answer

    def fetch(self, decode):
        """attach(), lock(), `decode(bytes of the segment)` under the lock, unlock(), detach().
        Returns (answer, decoded value or None)."""
        shm = self.shm
        answer = {"ok": False}
        if not shm.attach():
            return answer, None
        self.readonly = False
        answer["size"] = shm.size()
        if not shm.lock():
            shm.detach()
            return answer, None
        unlocked = detached = False
        try:
            with self.segment(False, 0) as view:
                data = view.tobytes()  # what QBuffer::setData(constData(), size()) copies
            value = decode(data)
        finally:  # also when decode() raised: the request leaves the peer detached
            unlocked = bool(shm.unlock())
            detached = bool(shm.detach())
        answer["ok"] = unlocked and detached
        return answer, value

    def image_pixels(self, image):
        """width, height, format and the RGBA8888 pixels (hex when small, and sha1)."""
        G = self.QtGui
        fields = {"width": image.width(), "height": image.height(),
                  "format": as_int(image.format()), "isNull": bool(image.isNull())}
        pixels = b""
        if not image.isNull():
            conv = image.convertToFormat(enum_member(G.QImage, "Format", "Format_RGBA8888"))
            ptr = conv.constBits()
            total = conv.bytesPerLine() * conv.height()
            if hasattr(ptr, "setsize"):
                ptr.setsize(total)
            raw = bytes(memoryview(ptr)[:total])
            row, stride = conv.width() * 4, conv.bytesPerLine()
            pixels = b"".join(raw[y * stride:y * stride + row] for y in range(conv.height()))
        if len(pixels) <= MAX_PIXEL_HEX:
            fields["rgba"] = pixels.hex()
        fields["rgbaSha1"] = hashlib.sha1(pixels).hexdigest()
        return fields

    def cmd_image_put(self, req):
        path = arg_str(req, "path")
        shm = self.shm
        if shm.isAttached():  # the example lets go of its previous segment first
            shm.detach()
            self.readonly = False
        image = self.QtGui.QImage()
        if not image.load(path):
            raise Unsupported("cannot load an image from %r" % path)
        payload, version, _ = self.stream_out(lambda out: out << image)
        answer = self.publish(payload, fallback=True)
        answer.update(version=version, width=image.width(), height=image.height(),
                      format=as_int(image.format()))
        return answer

    def cmd_image_get(self, req):
        G = self.QtGui

        def decode(data):
            stream, buf = self.stream_in(data)
            image = G.QImage()
            stream >> image
            return image, as_int(stream.status())

        answer, got = self.fetch(decode)
        if got is not None:
            image, status = got
            answer["status"] = status
            answer.update(self.image_pixels(image))
            answer["ok"] = answer["ok"] and status == 0
        return answer

    def cmd_variant_put(self, req):
        if "value" not in req:
            raise Unsupported("bad argument: missing 'value'")
        version = arg_int(req, "version", None)
        Q = self.QtCore
        shm = self.shm
        if shm.isAttached():
            shm.detach()
            self.readonly = False
        with self.raw_qvariant():
            array = Q.QJsonDocument.fromJson(json.dumps([req["value"]]).encode("utf-8")).array()
            json_value = array.at(0) if hasattr(array, "at") else array[0]
            variant = json_value.toVariant()  # PySide6: a Python value (it has no QVariant)
            if self.sip is not None:
                payload, used, status = self.stream_out(lambda out: out << variant, version)
                type_name = variant.typeName()
            else:
                payload, used, status = self.stream_out(
                    lambda out: out.writeQVariant(variant), version)
                type_name = self.meta_type_name(int.from_bytes(payload[:4], "big"))
        if status != 0:
            raise Unsupported("QDataStream status %d after writing the QVariant" % status)
        answer = self.publish(payload, fallback=False)
        answer.update(version=used, typeName=type_name or None)
        return answer

    def cmd_variant_get(self, req):
        version = arg_int(req, "version", None)
        Q = self.QtCore

        def decode(data):
            stream, buf = self.stream_in(data, version)
            with self.raw_qvariant():
                if self.sip is not None:
                    variant = Q.QVariant()
                    stream >> variant
                    type_name = variant.typeName()
                else:
                    try:
                        variant = stream.readQVariant()
                    except Exception as exc:  # PySide cannot turn every QVariant into Python
                        raise Unsupported("PySide6 cannot convert the QVariant it read: %s: %s"
                                          % (type(exc).__name__, exc))
                    type_name = self.meta_type_name(int.from_bytes(data[:4], "big"))
                json_value = Q.QJsonValue.fromVariant(variant)
                if self.sip is not None:  # PyQt maps QJsonArray to a list of QJsonValue
                    document = Q.QJsonDocument([json_value])
                else:
                    array = Q.QJsonArray()
                    array.append(json_value)
                    document = Q.QJsonDocument(array)
                text = bytes(document.toJson(
                    enum_member(Q.QJsonDocument, "JsonFormat", "Compact")))
            return (json.loads(text.decode("utf-8"))[0], type_name or None,
                    as_int(stream.status()), stream.version())

        answer, got = self.fetch(decode)
        if got is not None:
            value, type_name, status, used = got
            answer.update(value=value, typeName=type_name, status=status, version=used)
            answer["ok"] = answer["ok"] and status == 0
        return answer

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
