"""Key names computed once, not on every attach/detach.

``QSharedMemory`` re-keys its lock semaphore on every ``create()``/``attach()``/``detach()``, as
Qt does, and each re-key derived the semaphore's legacy name again (a SHA-1, ``$TMPDIR``
resolved, a ``stat``).  That name is a pure function of the key, the key context (Qt version,
platform) and ``$TMPDIR``, so it is remembered under exactly those.  A context with its own
environment or working directory, and a relative ``$TMPDIR``, are never remembered.
"""

from __future__ import annotations

import os

from . import keys
from .keys import QNativeIpcKey

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Tuple

_MEMO: Dict[Tuple[object, ...], QNativeIpcKey] = {}
_MEMO_MAX = 256


def legacy_native_key(key: str, kind: keys.KeyKind, ctx: keys.KeyContext) -> QNativeIpcKey:
    """``keys.make_legacy_native_key(key, kind, None, ctx)``, remembered (a fresh copy each time)."""
    tmp = os.environ.get("TMPDIR")
    if ctx.environ is not None or ctx.cwd is not None or (tmp and not tmp.startswith("/")):
        return keys.make_legacy_native_key(key, kind, None, ctx)
    memo_key = (key, kind, ctx.platform, ctx.qt_version, ctx.sandboxed, ctx.posix_ipc_build, tmp)
    hit = _MEMO.get(memo_key)
    if hit is None:
        hit = keys.make_legacy_native_key(key, kind, None, ctx)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[memo_key] = hit
    copy = QNativeIpcKey(hit.nativeKey(), hit.type())
    copy.legacy_key = hit.legacy_key
    return copy
