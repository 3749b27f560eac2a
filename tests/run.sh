#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian 12 machine, then run them.
#
#   bash tests/run.sh [pytest arguments]
#
# - apt: g++, pkg-config, Qt 5.15 (qtbase5-dev) and Qt 6.4 (qt6-base-dev) for the C++ peers;
# - a virtual environment (.venv, or $QSHM_VENV) with the package itself, installed from this
#   tree (the tests import the installed copy, not the source tree), and the real Qt peers:
#   PyQt5, PyQt6 and PySide6 from PyPI;
# - the C++ peers, built by interop_fixtures/build.sh.
# Every peer is required: a missing one fails the run, it is never skipped.
#
# QSHM_INSTALL=FILE tests a release file instead of the tree (the tests are still this tree's):
# - a wheel (.whl) is installed with pip --only-binary=:all: and no C compiler on PATH (cc, gcc,
#   g++, clang, zig... are hidden while it installs: the C++ peers are built before), so a wheel
#   that would need compiling fails here;
# - an sdist (.tar.gz) is built and installed from that archive (this needs gcc, as any sdist).
set -euo pipefail
# QSHM_INSTALL is relative to where this was started from, not to the tree.
if [ -n "${QSHM_INSTALL:-}" ]; then
    given=$QSHM_INSTALL
    QSHM_INSTALL=$(realpath -e -- "$given" 2>/dev/null) ||
        { echo "tests/run.sh: QSHM_INSTALL=$given: no such file" >&2; exit 1; }
fi
cd "$(dirname "$0")/.."
ROOT=$PWD

APT_PACKAGES="g++ pkg-config qtbase5-dev qt6-base-dev wsjtx"
missing=""
for pkg in $APT_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "== apt-get install:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON=${PYTHON:-python3}
VENV=${QSHM_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
echo "== pip install the peers and test tools"
$PIP install \
    "PyQt5==5.15.11" "PyQt5-Qt5==5.15.19" \
    "PyQt6==6.11.0" "PyQt6-Qt6==6.11.2" \
    "PySide6-Essentials==6.12.0" \
    "pytest>=7" pytest-timeout pytest-xdist hypothesis numpy Pillow zlib-ng
$PIP install "cffi>=1.15" setuptools wheel

echo "== building the C++ peers"
bash interop_fixtures/build.sh

case "${QSHM_INSTALL:-}" in
"")
    echo "== pip install qshm_compat from this tree"
    $PIP install --force-reinstall --no-deps --no-build-isolation "$ROOT"
    ;;
*.whl)
    INSTALL=$QSHM_INSTALL
    echo "== pip install $INSTALL, with no C compiler on PATH"
    # A PATH of links to every program on PATH but the compilers and linkers.
    NOCC=$(mktemp -d /tmp/qshm-nocc.XXXXXX)
    trap 'rm -rf "$NOCC"' EXIT  # if the install fails (exec below would skip the trap)
    IFS=: read -ra dirs <<<"$PATH"
    for dir in "${dirs[@]}"; do
        for prog in "$dir"/*; do
            name=${prog##*/}
            case "$name" in
            cc | c++ | c89* | c99* | cpp* | gcc* | g++* | clang* | zig* | tcc | ld | ld.* | *-gcc* | *-g++* | *-cc | *-c++ | *-ld* | *-cpp*) continue ;;
            esac
            if [ -x "$prog" ] && [ ! -e "$NOCC/$name" ]; then ln -s "$prog" "$NOCC/$name"; fi
        done
    done
    for compiler in cc gcc c++ g++ clang zig ld x86_64-linux-gnu-gcc; do
        if PATH=$NOCC command -v "$compiler" >/dev/null; then
            echo "tests/run.sh: $compiler is still on the no-compiler PATH" >&2
            exit 1
        fi
    done
    $PIP uninstall -y qshm_compat >/dev/null 2>&1 || true
    PATH=$NOCC $PIP install --only-binary=:all: "$INSTALL"
    rm -rf "$NOCC" && trap - EXIT
    ;;
*)
    INSTALL=$QSHM_INSTALL
    echo "== pip install $INSTALL (built from source)"
    $PIP uninstall -y qshm_compat >/dev/null 2>&1 || true
    $PIP install --force-reinstall --no-deps --no-cache-dir "$INSTALL"
    ;;
esac
export QSHM_INSTALL=${INSTALL:-}

echo "== pytest"
# The pytest script (not "python -m pytest") keeps the source tree off sys.path, and
# PYTHONSAFEPATH keeps it off for the processes the tests start (python -c ..., python -m
# qshm_compat, run from this directory): everything imports the installed copy.
export PYTHONSAFEPATH=1
if [ $# -eq 0 ] && [ "${QSHM_PLAIN:-}" != 1 ]; then
    # The whole run (no arguments) also proves the plain path: QSHM_PLAIN=1 turns off every
    # native fast path (the lock's C type, the codec's C loops), and the modules that drive the
    # real Qt peers and the reliability cases must pass on it too (test_fast_paths.py and
    # test_datastream_paths.py run both paths side by side in the main run).
    echo "== pytest, plain path (QSHM_PLAIN=1): interop, reliability and codec modules"
    QSHM_PLAIN=1 "$VENV/bin/pytest" -q \
        tests/test_sysv_interop.py tests/test_native_keys_interop.py tests/test_errors.py \
        tests/test_qt_versions.py tests/test_example_interop.py tests/test_reliability.py \
        tests/test_reliability2.py tests/test_reliability3.py tests/test_reliability4.py tests/test_datastream_live.py
    echo "== pytest, fast path: everything"
fi
exec "$VENV/bin/pytest" "$@"
