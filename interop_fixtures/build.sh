#!/usr/bin/env bash
# Builds the C++ interop peers from interop_fixtures/peer.cpp:
#   OUTDIR/peer-qt5  against Qt 5 (Debian: qtbase5-dev)
#   OUTDIR/peer-qt6  against Qt 6 (Debian: qt6-base-dev)
#
# Usage: interop_fixtures/build.sh [OUTDIR]      (default OUTDIR: interop_fixtures/build)
#
# Uses g++ and pkg-config. Fails (non-zero exit) when a compiler, pkg-config or a Qt development
# package is missing. A peer is rebuilt only when it is missing or older than peer.cpp.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/peer.cpp"
outdir="${1:-$here/build}"

die() {
    echo "build.sh: $*" >&2
    exit 1
}

command -v g++ >/dev/null 2>&1 || die "g++ not found (Debian: apt-get install g++)"
command -v pkg-config >/dev/null 2>&1 || die "pkg-config not found (Debian: apt-get install pkg-config)"
[[ -f "$src" ]] || die "missing $src"
mkdir -p "$outdir"

# build NAME PKG-CONFIG-MODULES DEBIAN-PACKAGE
build() {
    local out="$outdir/$1" modules="$2" package="$3" flags
    # Ask pkg-config first, so a missing Qt fails even when the binary is up to date.
    flags="$(pkg-config --cflags --libs $modules)" ||
        die "pkg-config cannot find $modules (Debian: apt-get install $package)"
    if [[ -x "$out" && ! "$src" -nt "$out" ]]; then
        echo "build.sh: $out is up to date"
        return
    fi
    echo "build.sh: building $out"
    # Compile to a temporary name so a failed build never leaves a partial peer and parallel
    # builds do not trip over each other.
    local tmp
    tmp="$(mktemp "$out.XXXXXX")"
    # shellcheck disable=SC2086  # $flags is a word list from pkg-config
    g++ -std=c++17 -fPIC -O2 -Wall -Wextra -o "$tmp" "$src" $flags ||
        { rm -f "$tmp"; die "compiling $out failed"; }
    chmod 755 "$tmp"
    mv -f "$tmp" "$out"
}

build peer-qt5 "Qt5Core Qt5Gui" qtbase5-dev
build peer-qt6 "Qt6Core Qt6Gui" qt6-base-dev
