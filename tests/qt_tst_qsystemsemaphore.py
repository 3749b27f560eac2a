"""Qt's own QSystemSemaphore autotest, translated to pytest and run on every implementation.

Sources (qt/qtbase, read, not copied):

- Qt 5.15: ``tests/auto/corelib/kernel/qsystemsemaphore/test/tst_qsystemsemaphore.cpp`` and its
  helper ``systemsemaphorehelper/main.cpp`` (class ``TestQt515``; qshm_compat and PyQt5);
- Qt 6 (the ipc/ layout of Qt >= 6.6, newest stored revision): ``tests/auto/corelib/ipc/qsystemsemaphore/tst_qsystemsemaphore.cpp``
  with ``../ipctestcommon.h`` (the key-type rows) and the helper ``acquirerelease/main.cpp``
  (class ``TestQt6``; qshm_compat, PyQt6 and PySide6).

One test per Qt test function, one parameter per data row (and per global key-type row in
Qt 6), the same checks in the same order.  One deliberate change of scale: Qt waits
``HELPERWAITTIME`` (10 s) both for a helper that should end and, in basicProcesses() and
initialValue(), for a helper that should stay blocked in acquire(); the first wait ends as soon
as the helper does, the second always lasts the full time.  We keep 10 s for the first and watch
a blocked helper for ``BLOCKED_WATCH`` (1 s), or the nine runs of each would cost minutes.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, List

import pytest

import qtimpl
from qtimpl import Impl, Process

IMPL = qtimpl.selected()
HELPERWAITTIME = 10000  # ms, for a helper that should finish
BLOCKED_WATCH = 1000  # ms, for a helper that should still be blocked (Qt: HELPERWAITTIME)

branch_515 = pytest.mark.skipif("5.15" not in qtimpl.BRANCHES[IMPL], reason=f"{IMPL} has no Qt 5.15")
branch_6 = pytest.mark.skipif("6" not in qtimpl.BRANCHES[IMPL], reason=f"{IMPL} is Qt 5")

PROCESS_ROWS = [(f"{n} process ({i})", n) for i in range(5) for n in (1, 3, 10)]


def _ids(rows: List[tuple]) -> List[str]:
    return [row[0] for row in rows]


def _basic_processes(acquire_argv: List[str], release_argv: List[str]) -> None:
    acquire = Process(acquire_argv)
    assert acquire.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(BLOCKED_WATCH)
    assert acquire.running()  # QProcess::Running: blocked in acquire()
    acquire.kill()
    release = Process(release_argv)
    assert release.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(HELPERWAITTIME)
    release.waitForFinished(HELPERWAITTIME)
    assert not acquire.running()


def _processes(argv: List[str], processes: int) -> None:
    consumers = [Process(argv) for _ in range(processes)]
    for p in consumers:
        p.waitForFinished()
        assert p.normal_exit()
        assert p.exit_code() == 0


def _undo(acquire_argv: List[str]) -> None:
    acquire = Process(acquire_argv)
    assert acquire.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(HELPERWAITTIME)
    assert not acquire.running()
    # the kernel undid its acquire() when it exited (SEM_UNDO), so a second one gets through
    acquire = Process(acquire_argv)
    assert acquire.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(HELPERWAITTIME)
    assert not acquire.running()


def _initial_value(acquire_argv: List[str], release_argv: List[str]) -> None:
    acquire = Process(acquire_argv)
    assert acquire.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(HELPERWAITTIME)
    assert not acquire.running()

    acquire = Process(acquire_argv + ["2"])
    assert acquire.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(BLOCKED_WATCH)
    assert acquire.running()
    acquire.kill()

    release = Process(release_argv)
    assert release.waitForStarted(), "Could not start helper binary"
    acquire.waitForFinished(HELPERWAITTIME)
    release.waitForFinished(HELPERWAITTIME)
    assert not acquire.running()


def _acquire_release_sequence(impl: Impl, sem: Any, steps: str) -> None:
    """``QVERIFY(sem.acquire()/release()); QCOMPARE(sem.error(), NoError)`` for each step."""
    for step in steps:
        assert (sem.acquire() if step == "a" else sem.release())
        assert sem.error() == impl.SemNoError
    assert sem.errorString() == ""


# ================================================================================================
# Qt 5.15
# ================================================================================================


@pytest.fixture
def impl515() -> Iterator[Impl]:
    impl = Impl(IMPL, "5.15")
    existingLock = impl.QSystemSemaphore("existing", 1, impl.Create)  # init()
    try:
        yield impl
    finally:
        qtimpl.close_processes()
        impl.delete_all()
        impl._delete(existingLock)  # cleanup()


def _helper515(impl: Impl, *args: str) -> List[str]:
    return qtimpl.helper_command(impl, "systemsemaphorehelper", *args)


KEY515_ROWS = [("null, null", "", ""), ("null, one", "", "one"), ("one, two", "one", "two")]


@branch_515
class TestQt515:
    """tst_qsystemsemaphore.cpp, Qt 5.15 branch."""

    @pytest.mark.parametrize("row, constructorKey, setKey", KEY515_ROWS, ids=_ids(KEY515_ROWS))
    def test_key(self, impl515: Impl, row: str, constructorKey: str, setKey: str) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, key(): key() after the constructor and setKey(),
        with no error."""
        impl = impl515
        sem = impl.sem(constructorKey)
        assert sem.key() == constructorKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

        sem.setKey(setKey)
        assert sem.key() == setKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

    def test_basicacquire(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, basicacquire(): acquire and release a count of 1."""
        sem = impl515.sem("QSystemSemaphore_basicacquire", 1, impl515.Create)
        _acquire_release_sequence(impl515, sem, "ar")

    def test_complexacquire(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, complexacquire(): a count of 2, taken one and two
        at a time."""
        sem = impl515.sem("QSystemSemaphore_complexacquire", 2, impl515.Create)
        _acquire_release_sequence(impl515, sem, "araraarr")

    def test_release(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, release(): from 0, two releases allow two acquires."""
        sem = impl515.sem("QSystemSemaphore_release", 0, impl515.Create)
        _acquire_release_sequence(impl515, sem, "rraarr")

    def test_basicProcesses(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, basicProcesses(): a helper blocks in acquire() on a
        count of 0 until another helper releases."""
        impl515.sem("store", 0, impl515.Create)
        _basic_processes(_helper515(impl515, "acquire"), _helper515(impl515, "release"))

    @pytest.mark.parametrize("row, processes", PROCESS_ROWS, ids=_ids(PROCESS_ROWS))
    def test_processes(self, impl515: Impl, row: str, processes: int) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, processes(): 1, 3 or 10 helpers acquire and release
        a count of 1; all exit with status 0."""
        impl515.sem("store", 1, impl515.Create)
        _processes(_helper515(impl515, "acquirerelease"), processes)

    def test_undo(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, undo() (System V only): a helper's acquire() is
        undone when it exits, so a second helper gets the count of 1 too."""
        impl515.sem("store", 1, impl515.Create)
        _undo(_helper515(impl515, "acquire"))

    def test_initialValue(self, impl515: Impl) -> None:
        """Qt 5.15 tst_qsystemsemaphore.cpp, initialValue(): a count of 1 lets one acquire()
        through, a second helper wanting two blocks until a release."""
        impl515.sem("store", 1, impl515.Create)
        _initial_value(_helper515(impl515, "acquire"), _helper515(impl515, "release"))


# ================================================================================================
# Qt 6
# ================================================================================================

KEY_TYPE_ROWS = ["POSIX", "SystemV-Q", "SystemV-T"]  # Qt's "Windows" row needs Windows
_seq = [0]


class Tst6:
    """``tst_QSystemSemaphore`` of Qt 6: key helpers, init() and cleanup()."""

    def __init__(self, impl: Impl, key_type_row: str):
        self.impl = impl
        self.keyType = impl.KEY_TYPES[key_type_row]

    def mangleKey(self, key: str) -> str:
        # Qt: tstsyssem_<pid>-<seq>_<key>; "qshm" in front lets the leak guard see /dev/shm names.
        if not key:
            return key
        return f"qshm_tstsyssem_{os.getpid()}-{_seq[0]}_{key}"

    def platformSafeKey(self, key: str) -> Any:
        return self.impl.QSystemSemaphore.platformSafeKey(self.mangleKey(key), self.keyType)

    def nextKeyType(self, t: Any) -> Any:
        types = [t2 for t2 in self.impl.KEY_TYPES.values() if self.impl.QSystemSemaphore.isKeyTypeSupported(t2)]
        return types[(types.index(t) + 1) % len(types)]

    def helper(self, *args: str) -> List[str]:
        return qtimpl.helper_command(self.impl, "acquirerelease", *args)


@pytest.fixture(params=KEY_TYPE_ROWS)
def tst6(request: pytest.FixtureRequest) -> Iterator[Tst6]:
    impl = Impl(IMPL, "6")
    t = Tst6(impl, request.param)
    existingLock = impl.QSystemSemaphore(t.platformSafeKey("existing"), 1, impl.Create)  # init()
    try:
        yield t
    finally:
        qtimpl.close_processes()
        impl.delete_all()
        impl._delete(existingLock)  # cleanup()
        _seq[0] += 1


@branch_6
class TestQt6:
    """tst_qsystemsemaphore.cpp, Qt 6 (ipc/, Qt >= 6.6, newest stored revision)."""

    def test_initTestCase(self) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, initTestCase() / IpcTestCommon::addGlobalTestRows():
        the default and legacy key types are supported on Linux; of the rows, Windows is not."""
        impl = Impl(IMPL, "6")
        K, S = impl.QNativeIpcKey, impl.QSystemSemaphore
        assert S.isKeyTypeSupported(K.DefaultTypeForOs)
        assert S.isKeyTypeSupported(K.legacyDefaultTypeForOs())
        supported = [name for name, t in impl.KEY_TYPES.items() if S.isKeyTypeSupported(t)]
        assert supported == KEY_TYPE_ROWS

    @pytest.mark.parametrize("row, constructorKey, setKey", KEY515_ROWS, ids=_ids(KEY515_ROWS))
    def test_nativeKey(self, tst6: Tst6, row: str, constructorKey: str, setKey: str) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, nativeKey(): nativeIpcKey() after the constructor,
        setNativeKey() and a change to the next key type, with no error."""
        impl = tst6.impl
        constructorIpcKey = tst6.platformSafeKey(constructorKey)
        setIpcKey = tst6.platformSafeKey(setKey)

        sem = impl.sem(constructorIpcKey)
        assert sem.nativeIpcKey() == constructorIpcKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

        sem.setNativeKey(setIpcKey)
        assert sem.nativeIpcKey() == setIpcKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

        nextKeyType = tst6.nextKeyType(setIpcKey.type())
        if nextKeyType != setIpcKey.type():
            setIpcKey2 = impl.QSystemSemaphore.platformSafeKey(setKey, nextKeyType)
            sem.setNativeKey(setIpcKey2)
            assert sem.nativeIpcKey() == setIpcKey2

    @pytest.mark.parametrize("row, constructorKey, setKey", KEY515_ROWS, ids=_ids(KEY515_ROWS))
    def test_legacyKey(self, tst6: Tst6, row: str, constructorKey: str, setKey: str) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, legacyKey(): Qt 5's key()/setKey(), with no error."""
        impl = tst6.impl
        sem = impl.sem(constructorKey)
        assert sem.key() == constructorKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

        sem.setKey(setKey)
        assert sem.key() == setKey
        assert sem.error() == impl.SemNoError
        assert sem.errorString() == ""

    def test_changeKeyType(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, changeKeyType(): two semaphores swap between a name's
        key of this type and of the next type (Qt checks only that nothing goes wrong)."""
        impl = tst6.impl
        keyName = "changeKeyType"
        key = tst6.platformSafeKey(keyName)
        otherKey = impl.QSystemSemaphore.platformSafeKey(tst6.mangleKey(keyName), tst6.nextKeyType(key.type()))
        if key == otherKey:
            pytest.skip("System only supports one key type")
        sem1 = impl.sem(key, 1, impl.Create)
        sem2 = impl.sem(otherKey)
        sem1.setNativeKey(otherKey)
        sem2.setNativeKey(key)

    def test_basicacquire(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, basicacquire(): acquire and release a count of 1."""
        sem = tst6.impl.sem(tst6.platformSafeKey("basicacquire"), 1, tst6.impl.Create)
        _acquire_release_sequence(tst6.impl, sem, "ar")

    def test_complexacquire(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, complexacquire(): a count of 2, taken one and two at
        a time."""
        sem = tst6.impl.sem(tst6.platformSafeKey("complexacquire"), 2, tst6.impl.Create)
        _acquire_release_sequence(tst6.impl, sem, "araraarr")

    def test_release(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, release(): from 0, two releases allow two acquires."""
        sem = tst6.impl.sem(tst6.platformSafeKey("release"), 0, tst6.impl.Create)
        _acquire_release_sequence(tst6.impl, sem, "rraarr")

    def test_twoSemaphores(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, twoSemaphores(): a second object on the same key
        releases what the first acquired."""
        impl = tst6.impl
        key = tst6.platformSafeKey("twoSemaphores")
        sem1 = impl.sem(key, 1, impl.Create)
        sem2 = impl.sem(key)
        assert sem1.acquire()
        assert sem2.release()
        assert sem1.acquire()
        assert sem2.release()

    def test_basicProcesses(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, basicProcesses(): a helper blocks in acquire() on a
        count of 0 until another helper releases."""
        key = tst6.platformSafeKey("store")
        tst6.impl.sem(key, 0, tst6.impl.Create)
        _basic_processes(tst6.helper("acquire", key.toString()), tst6.helper("release", key.toString()))

    @pytest.mark.parametrize("row, processes", PROCESS_ROWS, ids=_ids(PROCESS_ROWS))
    def test_processes(self, tst6: Tst6, row: str, processes: int) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, processes(): 1, 3 or 10 helpers acquire and release a
        count of 1; all exit with status 0."""
        key = tst6.platformSafeKey("store")
        tst6.impl.sem(key, 1, tst6.impl.Create)
        _processes(tst6.helper("acquirerelease", key.toString()), processes)

    def test_undo(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, undo(): System V only (Qt skips the POSIX row): a
        helper's acquire() is undone when it exits, so a second helper gets the count too."""
        key = tst6.platformSafeKey("store")
        if key.type() in (tst6.impl.QNativeIpcKey.Type.PosixRealtime, tst6.impl.QNativeIpcKey.Type.Windows):
            pytest.skip("QSKIP in Qt: This test only checks a System V behavior.")
        tst6.impl.sem(key, 1, tst6.impl.Create)
        _undo(tst6.helper("acquire", key.toString()))

    def test_initialValue(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsystemsemaphore.cpp, initialValue(): a count of 1 lets one acquire()
        through, a second helper wanting two blocks until a release."""
        key = tst6.platformSafeKey("store")
        tst6.impl.sem(key, 1, tst6.impl.Create)
        _initial_value(tst6.helper("acquire", key.toString()), tst6.helper("release", key.toString()))
