"""qshm_compat: Qt's QSharedMemory and QSystemSemaphore, reproduced exactly, without Qt.

A process that imports this package creates, attaches, locks, reads and writes the same shared
memory segments and semaphores as Qt 5.15 and Qt 6 programs, under the same OS names and the
same lock, so those programs see it as one of their own.

The names are imported lazily (PEP 562): ``import qshm_compat`` loads neither the native
extension nor any Qt binding, and the pure modules (``qshm_compat.keys``,
``qshm_compat.datastream``) import on machines where the extension was never built.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "QSharedMemory": "qshm_compat.sharedmemory",
    "QSystemSemaphore": "qshm_compat.semaphore",
    "QNativeIpcKey": "qshm_compat.keys",
    "QshmError": "qshm_compat.exceptions",
    "DataStreamError": "qshm_compat.exceptions",
    "TruncatedError": "qshm_compat.exceptions",
    "LockTimeoutError": "qshm_compat.exceptions",
    "IpcError": "qshm_compat.exceptions",
    "read_image": "qshm_compat.example",
    "write_image": "qshm_compat.example",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qshm_compat' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
