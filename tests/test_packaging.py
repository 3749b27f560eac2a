"""What the installed package promises: no Qt at run time, a compiled cffi extension, lazy names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import qshm_compat

ROOT = Path(__file__).resolve().parent.parent


def _in_fresh_interpreter(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_import_loads_no_qt_binding() -> None:
    """Importing qshm_compat and using QSharedMemory imports no Qt binding at all."""
    loaded = _in_fresh_interpreter(
        "import json, sys, qshm_compat\n"
        "from qshm_compat import QSharedMemory, QSystemSemaphore, QNativeIpcKey\n"
        "QSharedMemory('qshm packaging probe').nativeKey()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PyQt5', 'PyQt6', 'PySide6', 'PySide2', 'shiboken6', 'sip'))))"
    )
    assert loaded == []


def test_import_is_lazy() -> None:
    """A bare ``import qshm_compat`` loads neither the native extension nor the codec."""
    loaded = _in_fresh_interpreter(
        "import json, sys, qshm_compat\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('qshm_compat'))))"
    )
    assert loaded == ["qshm_compat"]


def test_native_extension_is_compiled_api_mode() -> None:
    """The cffi extension is a compiled module whose constants come from the system headers."""
    from qshm_compat import _native

    assert _native.__file__.endswith(".so")
    assert _native.lib.IPC_CREAT == 0o1000 and _native.lib.SEM_UNDO == 0x1000  # glibc values
    assert _native.ffi.sizeof("struct sembuf") == 6


def test_ci_tests_the_installed_package() -> None:
    """Under CI the tests import the installed package, not the source tree by accident."""
    package_dir = Path(qshm_compat.__file__).resolve().parent
    if os.environ.get("CI"):
        assert package_dir != ROOT / "qshm_compat", f"imported from the source tree: {package_dir}"
    assert (package_dir / "py.typed").exists()
