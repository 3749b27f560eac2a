"""The ``qshm`` command line (also ``python -m qshm_compat``)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qshm",
        description="Work with Qt's shared memory (QSharedMemory / QSystemSemaphore) without Qt.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="a two-process round trip through a segment, under Qt's names and Qt's lock",
        description="Create a segment as a Qt program would, let a second process attach, read "
        "and answer under the lock, then show what each side saw and that nothing is left behind.",
    )
    demo.add_argument("--key", help="the Qt key to use (default: a fresh random one)")
    demo.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        from . import demo

        if args.child:
            return demo.child(args.key)
        return demo.run(args.key)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
