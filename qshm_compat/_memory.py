"""Views over mapped shared memory, and retiring a mapping that Python objects still use.

Thin: the only module besides the backends that calls into the cffi extension, for the two
operations both backends share (a zero-copy buffer over an address, and swapping a mapping for
private memory so that a late access through a stale ``memoryview`` cannot crash the process).
"""

from __future__ import annotations

import os

from ._native import ffi, lib
from ._plain import fast as _fast

_Mapping = getattr(_fast, "Mapping", None)  # the C buffer type (limited API 3.11), or cffi's

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Tuple

PAGE_SIZE = int(lib.sysconf(lib._SC_PAGESIZE))


def encode_name(name: str) -> bytes:
    """A native key as the bytes the OS gets (``QFile::encodeName``: UTF-8 on Linux).

    Qt passes an embedded NUL on and the OS silently cuts the name there, naming another object;
    we refuse such a name, and one that cannot be encoded, with a ``ValueError`` that names it.
    """
    try:
        data = os.fsencode(name)
    except UnicodeEncodeError as exc:
        raise ValueError(f"native key {name!r} cannot be encoded for the OS: {exc.reason}") from None
    if b"\0" in data:
        raise ValueError(f"native key {name!r} contains a NUL character, which the OS would cut it at")
    return data


def _page_round(size: int) -> int:
    return max(-(-size // PAGE_SIZE) * PAGE_SIZE, PAGE_SIZE)


def pointer(address: int) -> Any:
    """The ``void *`` of an address given as an int (what the C fast paths return)."""
    return ffi.cast("void *", address)


def address(pointer: Any) -> int:
    """The address of a pointer, as an int."""
    return int(ffi.cast("uintptr_t", pointer))


def buffer(addr: Any, size: int) -> Any:
    """A cffi buffer over ``size`` bytes at ``addr`` (no copy); ``memoryview()`` it to use it."""
    return ffi.buffer(ffi.cast("char *", addr), size)


def mapped_buffer(addr: Any, size: int) -> Tuple[Any, List[bool]]:
    """A buffer over a mapping (at ``addr``, a pointer or an int), and the flag ``retire`` sets.

    The buffer keeps a cdata alive whose finalizer frees the private placeholder that ``retire``
    left at ``addr``, so the placeholder goes with the last memoryview over it, even when the
    ``QSharedMemory`` was dropped first.  Before ``retire`` the finalizer does nothing (the owner
    unmaps the shared mapping itself).
    """
    retired = [False]
    if _Mapping is not None:
        # The same in C: no closure, no finalizer, no cdata per mapping.
        return _Mapping(addr if type(addr) is int else address(addr), size, retired), retired
    length = _page_round(size)
    unmap = lib.munmap

    def free_placeholder(ptr: Any) -> None:
        if retired[0]:
            unmap(ptr, length)

    ptr = ffi.gc(ffi.cast("char *", addr), free_placeholder)
    return ffi.buffer(ptr, size), retired


def retire(addr: Any, size: int, name: str, retired: List[bool]) -> None:
    """Replace the mapping at ``addr`` with private anonymous memory (``MAP_FIXED``).

    The kernel drops the shared mapping exactly as ``shmdt``/``munmap`` would (a System V
    segment's attach count goes down), while memoryviews that still point there read and write
    harmless private pages instead of faulting.  ``retired`` is the flag of ``mapped_buffer``:
    the placeholder is then freed with the buffer.
    """
    flags = lib.MAP_PRIVATE | lib.MAP_ANONYMOUS | lib.MAP_FIXED
    if lib.qshm_mmap(addr, _page_round(size), lib.PROT_READ | lib.PROT_WRITE, flags, -1, 0) == ffi.NULL:
        code = ffi.errno
        raise OSError(code, os.strerror(code), name)
    retired[0] = True
