"""Worked examples: real Qt applications driven from Python through their shared memory.

* :mod:`qshm_compat.examples.wsjtx_jt9`: WSJT-X's ``jt9`` decoder fed a .wav through the
  segment the WSJT-X GUI shares with it (``python -m qshm_compat.examples.wsjtx_jt9 FILE.wav``).
"""
