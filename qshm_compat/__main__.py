"""``python -m qshm_compat``: the ``qshm`` command line."""

import sys

from . import NativeExtensionMissing

try:
    from .cli import main

    status = main()
except NativeExtensionMissing as exc:  # a source tree nobody built: say so in one line
    print(f"qshm: {exc}", file=sys.stderr)
    status = 1
raise SystemExit(status)
