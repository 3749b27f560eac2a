"""What the installed package promises: no Qt at run time, a compiled cffi extension, lazy names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# ----- first contact: a source tree, the console script, what tests/run.sh installed ----------


def _tree_copy(dest: Path, source_tree: bool) -> Path:
    """The package's Python files (no compiled module), as a clone nobody built has them."""
    pkg = dest / "qshm_compat"
    (pkg / "data").mkdir(parents=True)
    for f in (ROOT / "qshm_compat").glob("*.py"):
        (pkg / f.name).write_bytes(f.read_bytes())
    for f in (ROOT / "qshm_compat" / "data").iterdir():
        (pkg / "data" / f.name).write_bytes(f.read_bytes())
    if source_tree:
        (dest / "setup.py").write_text((ROOT / "setup.py").read_text())
        (dest / "native").mkdir()
    return dest


def _env_with_cwd_on_path() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONSAFEPATH", None)  # tests/run.sh sets it; a newcomer's shell does not
    env.pop("PYTHONPATH", None)
    return env


def test_source_tree_without_extension_says_what_to_run(tmp_path: Path) -> None:
    """From the root of an unbuilt tree, ``import qshm_compat`` finds the tree: using it raises
    NativeExtensionMissing with a one-line message, never a bare ModuleNotFoundError."""
    tree = _tree_copy(tmp_path / "clone", source_tree=True)
    done = subprocess.run([sys.executable, "-c", "import qshm_compat; qshm_compat.QSharedMemory('k')"],
                          cwd=tree, env=_env_with_cwd_on_path(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"qshm_compat.NativeExtensionMissing: qshm_compat._native is not built: this qshm_compat is the source "
        f"tree {tree / 'qshm_compat'} ("
    ), done.stderr
    assert f"pip install {tree}" in last and "python -P" in last and "build_ext --inplace" in last
    assert "ModuleNotFoundError" not in done.stderr

    # The command line says it in one line on stderr, exit status 1.
    done = subprocess.run([sys.executable, "-m", "qshm_compat", "probe", "qshm-fc-never-made"], cwd=tree,
                          env=_env_with_cwd_on_path(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        "qshm: qshm_compat._native is not built: this qshm_compat is the source tree"), done.stderr

    # The pure modules still import there, and a typo is still an ordinary ModuleNotFoundError.
    done = subprocess.run([sys.executable, "-c", "import qshm_compat.keys, qshm_compat.datastream\n"
                           "try:\n import qshm_compat.no_such_module\nexcept ModuleNotFoundError: print('ok')"],
                          cwd=tree, env=_env_with_cwd_on_path(), capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


def test_installed_copy_without_extension_says_reinstall(tmp_path: Path) -> None:
    """A package directory that is not a source tree but lacks its compiled module: reinstall."""
    site = _tree_copy(tmp_path / "site", source_tree=False)
    done = subprocess.run([sys.executable, "-c", "import qshm_compat.sysv"], cwd=site,
                          env=_env_with_cwd_on_path(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"qshm_compat.NativeExtensionMissing: qshm_compat._native is missing from "
                           f"{site / 'qshm_compat'} "), done.stderr
    assert "pip install --force-reinstall qshm_compat" in last


def test_console_script_demo_works_from_an_unbuilt_tree(tmp_path: Path) -> None:
    """README command 1's last step, ``.../bin/qshm demo``, run in the root of an unbuilt clone:
    the console script keeps the current directory off sys.path, and so does the demo's child."""
    tree = _tree_copy(tmp_path / "clone", source_tree=True)
    qshm = Path(sys.executable).parent / "qshm"
    assert qshm.exists(), "the qshm console script was not installed next to the interpreter"
    env = _env_with_cwd_on_path()
    env["TMPDIR"] = str(tmp_path)
    key = f"qshm fc demo {os.urandom(4).hex()}"
    done = subprocess.run([str(qshm), "demo", "--key", key], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\nboth sides agree: the same picture went through the segment, under Qt's lock\n" in done.stdout
    assert "NativeExtensionMissing" not in done.stderr
    assert not list(tmp_path.glob("qipc_*")), "the demo left key files behind"


def test_installed_from_what_tests_run_sh_was_given() -> None:
    """tests/run.sh installed the tree, or the release file named by QSHM_INSTALL: pip's record
    of where the installed copy came from says which, and a wheel's compiled module is the one
    inside that wheel, tagged abi3 manylinux2014."""
    import zipfile
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    if "QSHM_INSTALL" not in os.environ:
        pytest.skip("not started by tests/run.sh, which says what it installed in QSHM_INSTALL")
    dist = metadata.distribution("qshm_compat")
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    source = Path(unquote(urlparse(origin.get("url", "")).path))
    wanted = os.environ.get("QSHM_INSTALL") or str(ROOT)
    assert source == Path(wanted), f"installed from {origin}, but tests/run.sh was given {wanted}"
    if wanted.endswith(".whl"):
        tags = [line.split(": ", 1)[1] for line in (dist.read_text("WHEEL") or "").splitlines()
                if line.startswith("Tag: ")]
        assert tags and all(t.startswith("cp311-abi3-manylinux") for t in tags), tags
        installed = Path(qshm_compat.__file__).resolve().parent
        with zipfile.ZipFile(wanted) as whl:
            modules = [n for n in whl.namelist() if n.endswith(".so")]
            assert modules
            for name in modules:
                assert name.endswith(".abi3.so")
                assert (installed.parent / name).read_bytes() == whl.read(name), name


def test_readme_two_command_block_is_extracted_as_ci_runs_it(tmp_path: Path) -> None:
    """.ci/run runs what .ci/readme-commands finds in README.md: exactly two commands, the first
    through the console script (no cwd on sys.path), the second the test command."""
    extract = [sys.executable, str(ROOT / ".ci" / "readme-commands")]
    done = subprocess.run(extract + [str(ROOT / "README.md")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    commands = done.stdout.split("\0")[:-1]
    assert len(commands) == 2, commands
    assert commands[0].endswith("/bin/qshm demo") and " -m qshm_compat" not in commands[0]
    assert commands[1].startswith("bash tests/run.sh")

    three = tmp_path / "README.md"
    three.write_text("# x\n\n## Two commands\n\n```sh\n# 1.\necho a && \\\n  echo b\necho c\necho d\n```\n")
    done = subprocess.run(extract + [str(three)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "holds 3 commands, not 2" in done.stderr
