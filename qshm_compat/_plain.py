"""``QSHM_PLAIN=1`` (read once, at import): turn off every native fast path.

The pure-Python code is the specification of what the fast paths do; with ``QSHM_PLAIN`` set
to anything but ``""`` or ``"0"`` it is what runs, so the two can be compared side by side
(``tests/test_fast_paths.py``).
"""

from __future__ import annotations

import os

PLAIN = os.environ.get("QSHM_PLAIN", "") not in ("", "0")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

fast: Any = None
if not PLAIN:
    try:
        from . import _fast

        fast = _fast
    except ImportError:  # a source tree without the built extension: the plain path
        fast = None
