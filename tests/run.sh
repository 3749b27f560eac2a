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
set -euo pipefail
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
echo "== pip install qshm_compat from this tree"
$PIP install "cffi>=1.15" setuptools wheel
$PIP install --force-reinstall --no-deps --no-build-isolation "$ROOT"

echo "== building the C++ peers"
bash interop_fixtures/build.sh

echo "== pytest"
# The pytest script (not "python -m pytest") keeps the source tree off sys.path, and
# PYTHONSAFEPATH keeps it off for the processes the tests start (python -c ..., python -m
# qshm_compat, run from this directory): everything imports the installed copy.
export PYTHONSAFEPATH=1
exec "$VENV/bin/pytest" "$@"
