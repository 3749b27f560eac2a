"""Qt's error enums, and the one place where an ``OSError`` becomes Qt's ``error()`` and
``errorString()``.

The enum names and values are Qt's (``qsharedmemory.h``, ``qsystemsemaphore.h``; the same in 5.15
and 6.x).  The errno tables and message texts follow Qt 5.15.8 ``qsharedmemory_unix.cpp`` /
``qsystemsemaphore_unix.cpp`` ``setErrorString`` and Qt 6.8 ``qsharedmemory.cpp`` /
``qsystemsemaphore.cpp`` ``setUnixErrorString`` (spec §7).  Where the versions differ, the text
follows the Qt version the caller targets.
"""

from __future__ import annotations

import errno
import os
from enum import IntEnum

#: A Qt version as ``(major, minor, patch)``.
QtVersion = tuple[int, int, int]


class AccessMode(IntEnum):
    """``QSharedMemory::AccessMode``."""

    ReadOnly = 0
    ReadWrite = 1


class SharedMemoryError(IntEnum):
    """``QSharedMemory::SharedMemoryError``."""

    NoError = 0
    PermissionDenied = 1
    InvalidSize = 2
    KeyError = 3
    AlreadyExists = 4
    NotFound = 5
    LockError = 6
    OutOfResources = 7
    UnknownError = 8


class SemaphoreAccessMode(IntEnum):
    """``QSystemSemaphore::AccessMode``."""

    Open = 0
    Create = 1


class SystemSemaphoreError(IntEnum):
    """``QSystemSemaphore::SystemSemaphoreError``."""

    NoError = 0
    PermissionDenied = 1
    KeyError = 2
    AlreadyExists = 3
    NotFound = 4
    OutOfResources = 5
    UnknownError = 6


def _unknown(function: str, code: int, qt: QtVersion) -> str:
    # Qt <= 6.5 prints the errno number; 6.6 switched to qt_error_string(), i.e. strerror's text.
    if qt >= (6, 6, 0):
        return f"{function}: unknown error: {os.strerror(code)}"
    return f"{function}: unknown error {code}"


def shm_error(code: int, function: str, qt: QtVersion) -> tuple[SharedMemoryError, str]:
    """The ``QSharedMemory`` error and text for ``errno`` ``code`` raised inside ``function``."""
    if code == errno.EACCES:
        return SharedMemoryError.PermissionDenied, f"{function}: permission denied"
    if code == errno.EEXIST:
        return SharedMemoryError.AlreadyExists, f"{function}: already exists"
    if code == errno.ENOENT:
        return SharedMemoryError.NotFound, f"{function}: doesn't exist"
    if code in (errno.EMFILE, errno.ENOMEM, errno.ENOSPC):
        return SharedMemoryError.OutOfResources, f"{function}: out of resources"
    return SharedMemoryError.UnknownError, _unknown(function, code, qt)


def sem_error(code: int, function: str, qt: QtVersion) -> tuple[SystemSemaphoreError, str]:
    """The ``QSystemSemaphore`` error and text for ``errno`` ``code`` raised inside ``function``."""
    if code in (errno.EPERM, errno.EACCES):
        return SystemSemaphoreError.PermissionDenied, f"{function}: permission denied"
    if code == errno.EEXIST:
        return SystemSemaphoreError.AlreadyExists, f"{function}: already exists"
    if code == errno.ENOENT:
        return SystemSemaphoreError.NotFound, f"{function}: does not exist"
    if code in (errno.ERANGE, errno.ENOSPC) or (code == errno.EMFILE and qt >= (6, 6, 0)):
        return SystemSemaphoreError.OutOfResources, f"{function}: out of resources"
    if code == errno.ENAMETOOLONG and qt >= (6, 6, 0):
        return SystemSemaphoreError.KeyError, f"{function}: key too long"
    return SystemSemaphoreError.UnknownError, _unknown(function, code, qt)


#: How ``QSharedMemoryPrivate::initKey`` turns the lock semaphore's error into its own.
SEM_TO_SHM = {
    SystemSemaphoreError.NoError: SharedMemoryError.NoError,
    SystemSemaphoreError.PermissionDenied: SharedMemoryError.PermissionDenied,
    SystemSemaphoreError.KeyError: SharedMemoryError.KeyError,
    SystemSemaphoreError.AlreadyExists: SharedMemoryError.AlreadyExists,
    SystemSemaphoreError.NotFound: SharedMemoryError.NotFound,
    SystemSemaphoreError.OutOfResources: SharedMemoryError.OutOfResources,
    SystemSemaphoreError.UnknownError: SharedMemoryError.UnknownError,
}
