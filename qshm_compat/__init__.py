"""qshm_compat: Qt's QSharedMemory and QSystemSemaphore, reproduced exactly, without Qt.

A process that imports this package creates, attaches, locks, reads and writes the same shared
memory segments and semaphores as Qt 5.15 and Qt 6 programs, under the same OS names and the
same lock, so those programs see it as one of their own.

The names are imported lazily (PEP 562): ``import qshm_compat`` loads neither the native
extension nor any Qt binding, and the pure modules (``qshm_compat.keys``,
``qshm_compat.datastream``) import on machines where the extension was never built.  A compiled
module that cannot be found (a source tree nobody built, e.g. ``python -m qshm_compat`` run from
the clone root, which puts the clone first on ``sys.path``) raises
:class:`NativeExtensionMissing`, saying what happened and what to run instead.
"""

from __future__ import annotations

import sys

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

__all__ = sorted(_LAZY) + ["NativeExtensionMissing", "__version__"]


class NativeExtensionMissing(ImportError):
    """A compiled module of qshm_compat (``qshm_compat._native``...) is not there.

    Raised instead of a bare ``ModuleNotFoundError``, with a one-line message that tells a source
    tree nobody built (import the installed copy, or build in place) from a broken install.
    """


def _explain_missing(fullname: str) -> str:
    import os  # already loaded by the interpreter at startup: costs nothing

    package = sys.modules.get(__name__)
    here = os.path.dirname(os.path.abspath(getattr(package, "__file__", None) or __file__))
    root = os.path.dirname(here)
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(os.path.join(root, "native")):
        return (
            f"{fullname} is not built: this qshm_compat is the source tree {here} (the current or "
            f"the script's directory comes first on sys.path); install it (pip install {root}) and "
            f"run from another directory or with python -P, or build it in place "
            f"(cd {root} && python setup.py build_ext --inplace)"
        )
    return (
        f"{fullname} is missing from {here} (no compiled module for this platform and "
        f"Python {sys.version_info[0]}.{sys.version_info[1]}): reinstall qshm_compat "
        f"(pip install --force-reinstall qshm_compat)"
    )


class _ExplainMissingExtension:
    """The last finder on ``sys.meta_path``: asked only once every other finder found nothing.

    It answers only for a private module of this package (``qshm_compat._<name>``, the compiled
    ones), and answers by raising :class:`NativeExtensionMissing`.
    """

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> None:
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name.startswith("_"):
            raise NativeExtensionMissing(_explain_missing(fullname), name=fullname)
        return None


if not any(type(f).__name__ == "_ExplainMissingExtension" for f in sys.meta_path):
    sys.meta_path.append(_ExplainMissingExtension())


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qshm_compat' has no attribute {name!r}")
    __import__(module)  # not importlib.import_module: importing importlib costs 0.5 ms
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
