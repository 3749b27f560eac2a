"""The exceptions qshm_compat raises of its own.

Qt-observable failures (a ``create()`` that finds the segment already there, a key that cannot be
made) are reported the way Qt reports them, through ``error()`` and ``errorString()``.  The
exceptions here cover what Qt has no word for: the Pythonic additions (timeouts, context managers)
and the QDataStream codec.  Each one also subclasses the builtin it refines, so ``except
ValueError`` or ``except TimeoutError`` keeps working for callers who never heard of qshm_compat.
"""

from __future__ import annotations


class QshmError(Exception):
    """Base class of every exception defined by qshm_compat."""


class DataStreamError(QshmError, ValueError):
    """A QDataStream could not be decoded or encoded (corrupt input, value out of range)."""


class TruncatedError(DataStreamError):
    """The stream ended before the value being read was complete: more bytes are needed."""


class LockTimeoutError(QshmError, TimeoutError):
    """A lock or semaphore was not had within the timeout the caller gave."""


class IpcError(QshmError, OSError):
    """An operation on a named IPC object failed; the message names the key and the OS object."""
