"""``QSystemSemaphore``, with Qt's names, and the System V protocol behind it.

The class keeps Qt's camelCase method names and enum names and values on purpose, so PyQt code
ports by changing one import (as Python's own ``unittest`` keeps its foreign camelCase).
Additions of our own are snake_case or keyword-only: ``acquire(timeout=...)``, ``close()`` and the
context manager.

The protocol follows Qt 5.15.8 / 6.4.2 ``qsystemsemaphore.cpp`` and
``qsystemsemaphore_systemv.cpp`` (spec §4.3): the key file is created ``O_CREAT|O_EXCL`` 0640, the
semaphore is ``semget(ftok(file, 'Q'), 1, 0600|IPC_CREAT|IPC_EXCL)`` (else opened), a new or
``Create``-mode semaphore is set to the initial value, ``acquire``/``release`` are ``semop`` with
``SEM_UNDO``, a removed semaphore is re-made and the operation retried, and the process that
created it (or opened it with ``Create``) removes it and its key file when the object goes.
"""

from __future__ import annotations

import errno
from typing import Optional, Tuple, Union

from . import _registry, keys, sysv
from .errors import QtVersion, SemaphoreAccessMode, SystemSemaphoreError, sem_error

_QSS = "QSystemSemaphore"


class SemaphoreFailure(Exception):
    """Internal: a step of the semaphore protocol failed; translated into Qt's error at the edge."""

    def __init__(self, error: SystemSemaphoreError, text: str):
        super().__init__(text)
        self.error = error
        self.text = text

    @classmethod
    def from_oserror(cls, exc: OSError, function: str, qt: QtVersion) -> "SemaphoreFailure":
        return cls(*sem_error(exc.errno or 0, function, qt))


class SysVSemaphoreHandle:
    """One Qt system semaphore on System V: its key file, ``key_t``, id and ownership flags."""

    kind = "System V"

    def __init__(self, file_name: str, initial_value: int, qt: QtVersion, project_id: int = 0x51):
        self.file_name = file_name
        self.initial_value = initial_value
        self.qt = qt
        self.project_id = project_id
        self.unix_key = -1
        self.sem: Optional["sysv.Semaphore"] = None
        self.created_file = False
        self.created_semaphore = False

    def describe(self) -> str:
        if self.unix_key != -1:
            return f"System V semaphore key 0x{self.unix_key & 0xFFFFFFFF:08x} (key file {self.file_name})"
        return f"System V semaphore of key file {self.file_name}"

    def handle(self, mode: SemaphoreAccessMode) -> None:
        """Make sure the semaphore exists and is open (Qt's ``handle(mode)``)."""
        if self.unix_key != -1:
            return
        if not self.file_name:
            raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle:: key is empty")
        try:
            self.created_file = sysv.create_key_file(self.file_name)
        except OSError:
            raise SemaphoreFailure(
                SystemSemaphoreError.KeyError, f"{_QSS}::handle:: unable to make key"
            ) from None
        try:
            self.unix_key = sysv.ftok(self.file_name, self.project_id)
        except OSError:
            self.unix_key = -1
            raise SemaphoreFailure(SystemSemaphoreError.KeyError, f"{_QSS}::handle:: ftok failed") from None
        name = self.describe()
        try:
            try:
                semid = sysv.sem_get(self.unix_key, True, name)
                # A semaphore this call made: it owns it, and the key file with it (Qt removes a
                # key file left over from a crash this way).
                self.created_semaphore = self.created_file = True
            except FileExistsError:
                semid = sysv.sem_get(self.unix_key, False, name)
        except OSError as exc:
            self.clean()
            raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None
        self.sem = sysv.Semaphore(semid, name)
        if mode == SemaphoreAccessMode.Create:
            self.created_semaphore = self.created_file = True
        if self.created_semaphore and self.initial_value >= 0:
            try:
                self.sem.set_value(self.initial_value)
            except OSError as exc:
                self.clean()
                raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::handle", self.qt) from None

    def clean(self) -> None:
        """Forget the handle; remove the key file and the semaphore if this object owns them."""
        self.unix_key = -1
        if self.created_file:
            sysv.remove_key_file(self.file_name)
            self.created_file = False
        if self.created_semaphore:
            if self.sem is not None:
                try:
                    self.sem.remove()
                except OSError:
                    pass  # already gone: another owner removed it
            self.created_semaphore = False
        self.sem = None

    def modify(self, count: int, timeout: Optional[float]) -> bool:
        """``semop`` by ``count`` with ``SEM_UNDO``; False only when ``timeout`` ran out."""
        self.handle(SemaphoreAccessMode.Open)
        sem = self.sem
        assert sem is not None
        try:
            return sem.modify(count, timeout)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                # Removed under us (its owner went away): make it again and retry, as Qt does.
                self.sem = None
                self.clean()
                self.handle(SemaphoreAccessMode.Open)
                return self.modify(count, timeout)
            raise SemaphoreFailure.from_oserror(exc, f"{_QSS}::modifySemaphore", self.qt) from None

    def value(self) -> int:
        self.handle(SemaphoreAccessMode.Open)
        assert self.sem is not None
        return self.sem.value()


class QSystemSemaphore:
    """``QSystemSemaphore``: a counting semaphore shared between processes, under Qt's names.

    ``QSystemSemaphore(key, initialValue=0, mode=AccessMode.Open)`` opens (or creates) the same
    OS semaphore a Qt program does for ``key``.  ``acquire(timeout=None)`` and ``release(n=1)``
    return False on failure, with ``error()`` and ``errorString()`` as Qt gives them;
    ``acquire`` also returns False when a ``timeout`` (seconds) runs out.
    """

    AccessMode = SemaphoreAccessMode
    SystemSemaphoreError = SystemSemaphoreError
    Open = SemaphoreAccessMode.Open
    Create = SemaphoreAccessMode.Create
    NoError = SystemSemaphoreError.NoError
    PermissionDenied = SystemSemaphoreError.PermissionDenied
    KeyError = SystemSemaphoreError.KeyError
    AlreadyExists = SystemSemaphoreError.AlreadyExists
    NotFound = SystemSemaphoreError.NotFound
    OutOfResources = SystemSemaphoreError.OutOfResources
    UnknownError = SystemSemaphoreError.UnknownError

    _close_order = 2

    def __init__(
        self,
        key: Optional[str] = "",
        initialValue: int = 0,
        mode: Union[SemaphoreAccessMode, int] = SemaphoreAccessMode.Open,
        *,
        qt_version: Union[str, Tuple[int, ...], None] = None,
    ):
        self._qt = keys.parse_qt_version(qt_version)
        self._key: Optional[str] = None
        self._handle: Optional[SysVSemaphoreHandle] = None
        self._error = SystemSemaphoreError.NoError
        self._error_string = ""
        self._timed_out = False
        _registry.register(self)
        self.setKey(key, initialValue, mode)

    # -- Qt's API ---------------------------------------------------------------------------

    def setKey(
        self,
        key: Optional[str],
        initialValue: int = 0,
        mode: Union[SemaphoreAccessMode, int] = SemaphoreAccessMode.Open,
    ) -> None:
        """``QSystemSemaphore::setKey``: forget the old semaphore (removing it if this object owns
        it) and open or create the one for ``key``."""
        key = _check_key(key)
        mode = SemaphoreAccessMode(mode)
        if key == self._key and mode == SemaphoreAccessMode.Open:
            return
        self._clear_error()
        handle = self._handle
        if key == self._key and handle is not None and handle.created_semaphore and handle.created_file:
            # Qt's System V shortcut: same key, Create mode, and this object owns it -> just
            # reset the value instead of removing and re-making the semaphore.
            handle.initial_value = initialValue
            handle.unix_key = -1
            self._run_handle(mode)
            return
        self._clean()
        self._key = key
        file_name = keys.legacy_platform_safe_key(key or "", keys.SEM_PREFIX, 0x51, keys.KeyContext(qt_version=self._qt))
        self._handle = SysVSemaphoreHandle(file_name, initialValue, self._qt)
        self._run_handle(mode)

    def key(self) -> str:
        """``QSystemSemaphore::key``."""
        return self._key or ""

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """``QSystemSemaphore::acquire``; with ``timeout`` (seconds), False once it runs out."""
        return self._modify(-1, timeout)

    def release(self, n: int = 1) -> bool:
        """``QSystemSemaphore::release(n)``."""
        if not isinstance(n, int):
            raise TypeError(f"release() takes an int, not {type(n).__name__}")
        if n == 0:
            return True
        if n < 0:
            return False  # Qt warns "QSystemSemaphore::release: n is negative." and fails
        return self._modify(n, None)

    def error(self) -> SystemSemaphoreError:
        """``QSystemSemaphore::error``."""
        return self._error

    def errorString(self) -> str:
        """``QSystemSemaphore::errorString``."""
        return self._error_string

    # -- Python additions -------------------------------------------------------------------

    def close(self) -> None:
        """What Qt's destructor does: remove the semaphore and key file if this object owns them."""
        self._clean()
        self._key = None
        _registry.unregister(self)

    def __enter__(self) -> "QSystemSemaphore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._clean()
        except Exception:
            pass

    def __repr__(self) -> str:
        where = self._handle.describe() if self._handle else "no key"
        return f"<QSystemSemaphore key={self.key()!r} {where}>"

    # -- internals --------------------------------------------------------------------------

    def _clear_error(self) -> None:
        self._error = SystemSemaphoreError.NoError
        self._error_string = ""

    def _set_failure(self, failure: SemaphoreFailure) -> None:
        self._error = failure.error
        self._error_string = failure.text

    def _clean(self) -> None:
        if self._handle is not None:
            self._handle.clean()

    def _run_handle(self, mode: SemaphoreAccessMode) -> bool:
        assert self._handle is not None
        try:
            self._handle.handle(mode)
        except SemaphoreFailure as failure:
            self._set_failure(failure)
            return False
        return True

    def _fast_semaphore(self) -> Optional["sysv.Semaphore"]:
        """The backend semaphore in use now, for a caller's uncontended fast path."""
        return self._handle.sem if self._handle is not None else None

    def _modify(self, count: int, timeout: Optional[float]) -> bool:
        handle = self._handle
        if handle is None:
            self._error = SystemSemaphoreError.KeyError
            self._error_string = f"{_QSS}::handle:: key is empty"
            return False
        self._timed_out = False
        try:
            done = handle.modify(count, timeout)
        except SemaphoreFailure as failure:
            self._set_failure(failure)
            return False
        if not done:
            self._timed_out = True
            self._error = SystemSemaphoreError.UnknownError
            self._error_string = (
                f"{_QSS}::acquire: timed out after {timeout:g} s waiting for key {self.key()!r} "
                f"({handle.describe()})"
            )
            return False
        self._clear_error()
        return True


def _check_key(key: Optional[str]) -> Optional[str]:
    if key is None:
        return None
    if not isinstance(key, str):
        raise TypeError(f"a key is a str, not {type(key).__name__}")
    # Qt treats "" like a null key: it maps to an empty native key.
    return key or None
