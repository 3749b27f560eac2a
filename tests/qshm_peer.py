"""A qshm_compat process that speaks the peers' line protocol (interop_fixtures/PROTOCOL.md).

Not a Qt peer: it lets a test put qshm_compat in a separate process too, next to the Qt peers
(several writers at once, a qshm_compat process killed mid-operation).  It implements the
shared-memory subset of the protocol: key, ipckey (native, fromString), create, attach, detach,
lock, unlock, state, read, write, incr, destroy, exit.  ``create``, ``attach`` and ``lock`` also take
``lock_timeout`` (seconds), qshm_compat's addition.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

from qshm_compat import QNativeIpcKey, QSharedMemory


def main() -> int:
    shm: QSharedMemory | None = None
    out = sys.stdout
    out.write(json.dumps({"ready": True, "stack": "qshm", "qt": "5.15.0", "pid": os.getpid(),
                          "tempPath": os.environ.get("TMPDIR", "/tmp"), "datastreamVersion": 19,
                          "nativeIpcKey": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req.get("cmd")
        answer: dict = {"ok": True}
        if cmd == "exit":
            if shm is not None:
                shm.close()
            out.write(json.dumps(answer) + "\n")
            out.flush()
            return 0
        if cmd == "key":
            if shm is not None:
                shm.close()
            shm = QSharedMemory(req["key"], qt_version=req.get("qt_version"))
        elif cmd == "ipckey":
            if shm is not None:
                shm.close()
            text = req["key"]
            key = QNativeIpcKey.fromString(text) if req["mode"] == "fromString" else QNativeIpcKey(text)
            shm = QSharedMemory(key)
        elif cmd == "destroy":
            if shm is not None:
                shm.close()
            shm = None
        elif shm is None:
            answer = {"ok": False, "unsupported": "no shm object"}
        elif cmd == "create":
            answer["ok"] = shm.create(req["size"], timeout=req.get("lock_timeout"))
        elif cmd == "attach":
            mode = QSharedMemory.ReadOnly if req.get("readonly") else QSharedMemory.ReadWrite
            answer["ok"] = shm.attach(mode, timeout=req.get("lock_timeout"))
        elif cmd == "detach":
            answer["ok"] = shm.detach()
        elif cmd == "lock":
            answer["ok"] = shm.lock(req.get("lock_timeout"))
        elif cmd == "unlock":
            answer["ok"] = shm.unlock()
        elif cmd == "read":
            data = shm.constData()
            offset = req.get("offset", 0)
            length = req.get("length", shm.size() - offset)
            answer["hex"] = bytes(data[offset:offset + length]).hex() if data is not None else ""
        elif cmd == "write":
            raw = bytes.fromhex(req["hex"])
            offset = req.get("offset", 0)
            data = shm.data()
            if data is None or offset + len(raw) > shm.size():
                answer["ok"] = False
            else:
                data[offset:offset + len(raw)] = raw
        elif cmd == "incr":
            while time.time() < req.get("start_at", 0):
                time.sleep(0.001)
            counter = struct.Struct("<I")
            offset = req.get("offset", 0)
            data = shm.data()
            done, value, started = 0, None, time.time()
            t0 = time.perf_counter()
            for _ in range(req["count"]):
                if not shm.lock():
                    break
                value = counter.unpack_from(data, offset)[0] + 1
                counter.pack_into(data, offset, value)
                shm.unlock()
                done += 1
            answer.update(ok=done == req["count"], done=done, value=value, started=started,
                          elapsed=time.perf_counter() - t0, finished=time.time())
        elif cmd != "state":
            answer = {"ok": False, "unsupported": f"unknown command {cmd!r}"}
        if shm is not None and "unsupported" not in answer:
            answer.update(error=int(shm.error()), errorString=shm.errorString(), size=shm.size(),
                          nativeKey=shm.nativeKey(), isAttached=shm.isAttached())
        out.write(json.dumps(answer) + "\n")
        out.flush()
    if shm is not None:
        shm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
