"""Fail loudly unless a wheel is what a release promises: abi3, manylinux, one architecture.

    python .ci/check-wheel.py --arch x86_64 --glibc 2.17 dist/qshm_compat-...whl

For the wheel's name: a ``cp3X-abi3-manylinux_<floor>_<arch>`` tag.  For every compiled module
(``*.so``) inside it: the ``.abi3.so`` suffix, the ELF machine of ``--arch``, no glibc symbol
version newer than ``--glibc``, and only libraries that manylinux allows (libc, libm, librt,
libpthread, libdl, the loader).  Then ``auditwheel show`` must find the wheel consistent with
manylinux at or below the floor.  Needs auditwheel (which brings pyelftools).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import zipfile

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}
ALLOWED_LIBS = re.compile(
    r"^(libc|libm|librt|libpthread|libdl|libutil|libgcc_s|libresolv)\.so\.\d+$|^ld-linux[-\w]*\.so\.\d+$"
)


def check_so(name: str, data: bytes, arch: str, floor: tuple[int, int]) -> list[str]:
    problems = []
    if not name.endswith(".abi3.so"):
        problems.append(f"{name}: not an abi3 module (its suffix is not .abi3.so)")
    elf = ELFFile(io.BytesIO(data))
    machine = elf.header["e_machine"]
    if machine != MACHINES[arch]:
        problems.append(f"{name}: ELF machine {machine}, expected {MACHINES[arch]}")
    newest = (0, 0)
    needed = []
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            needed += [tag.needed for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
        if isinstance(section, GNUVerNeedSection):
            for _lib, auxes in section.iter_versions():
                for aux in auxes:
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                    if m:
                        version = (int(m.group(1)), int(m.group(2)))
                        newest = max(newest, version)
                        if version > floor:
                            problems.append(f"{name}: needs {aux.name}, newer than glibc {floor[0]}.{floor[1]}")
                    elif not aux.name.startswith("GLIBC_PRIVATE"):
                        problems.append(f"{name}: needs symbol version {aux.name} (not glibc)")
    for lib in needed:
        if not ALLOWED_LIBS.match(lib):
            problems.append(f"{name}: links {lib}, which manylinux does not provide")
    print(f"   {name}: {machine}, needs {', '.join(needed) or 'nothing'}, newest GLIBC_{newest[0]}.{newest[1]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, choices=sorted(MACHINES))
    parser.add_argument("--glibc", default="2.17")
    parser.add_argument("wheel")
    args = parser.parse_args()
    major, minor = (int(p) for p in args.glibc.split("."))
    problems = []
    tag = f"manylinux_{major}_{minor}_{args.arch}"
    if not re.search(rf"-cp3\d+-abi3-[\w.]*{tag}[\w.]*\.whl$", args.wheel):
        problems.append(f"{args.wheel}: not tagged cp3X-abi3-...{tag}")
    with zipfile.ZipFile(args.wheel) as whl:
        modules = [n for n in whl.namelist() if n.endswith(".so") or ".so." in n.rsplit("/", 1)[-1]]
        if not modules:
            problems.append(f"{args.wheel}: no compiled module inside")
        for name in modules:
            problems += check_so(name, whl.read(name), args.arch, (major, minor))
    show = subprocess.run([sys.executable, "-m", "auditwheel", "show", args.wheel],
                          capture_output=True, text=True)
    text = " ".join((show.stdout + show.stderr).split())
    print("   auditwheel show: " + text)
    verdict = re.search(r'consistent with the following platform tag: "manylinux_(\d+)_(\d+)_(\w+)"', text)
    if show.returncode != 0 or not verdict:
        problems.append(f"{args.wheel}: auditwheel show gave no manylinux verdict")
    elif (int(verdict.group(1)), int(verdict.group(2))) > (major, minor) or verdict.group(3) != args.arch:
        problems.append(f"{args.wheel}: auditwheel finds it consistent only with {verdict.group(0).split()[-1]}")
    for problem in problems:
        print(f"check-wheel: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
