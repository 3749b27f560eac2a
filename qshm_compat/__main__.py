"""``python -m qshm_compat``: the ``qshm`` command line."""

from .cli import main

raise SystemExit(main())
