"""Qt's own QSharedMemory autotest, translated to pytest and run on every implementation.

Sources (qt/qtbase, read, not copied):

- Qt 5.15: ``tests/auto/corelib/kernel/qsharedmemory/test/tst_qsharedmemory.cpp`` and its helper
  ``sharedmemoryhelper/main.cpp`` (class ``TestQt515``; runs on qshm_compat and PyQt5);
- Qt 6 (the ipc/ layout of Qt >= 6.6, newest stored revision): ``tests/auto/corelib/ipc/qsharedmemory/tst_qsharedmemory.cpp``, the
  revision with ``attachBeforeCreate`` and ``createWithSameKey``, with ``../ipctestcommon.h``
  (the key-type rows) and the helper ``producerconsumer/main.cpp`` (class ``TestQt6``; runs on
  qshm_compat, PyQt6 and PySide6).

One test per Qt test function, one parameter per data row (and, in Qt 6, per global key-type
row: ``POSIX``, ``SystemV-Q``, ``SystemV-T``; Qt's ``Windows`` row is not added on Linux), the
same checks in the same order.  Qt's ``init()``/``cleanup()`` are the ``tst`` fixtures.  The
implementation is ``$QSHM_QT_IMPL`` (qtimpl.py); the bindings run in subprocesses of their own
(test_qt_autotests.py).  Where qshm_compat deliberately differs from Qt (a read-only
segment written to), the test says so and checks each side's documented behaviour.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from typing import Any, Iterator, List, Optional

import pytest

import qtimpl
from qtimpl import Impl, Process

IMPL = qtimpl.selected()
EXISTING_SHARE = "existing"
EXISTING_SIZE = 1024
LOCK_WARNING = "QSharedMemory::lock: already locked"
READ_ONLY_DIFFERENCE = "a write to a read-only segment raises TypeError (exit status 1) where Qt dies of SIGSEGV"

#: useTooMuchMemory: Qt creates 32 MiB segments until the kernel says no.  On this machine the
#: kernel would say no at SHMMNI (4096 System V segments, machine-wide) or at vm.max_map_count
#: (65,530 mappings, POSIX), starving every other process; the translation lowers this process's
#: address-space limit (RLIMIT_AS) to this much above what it uses, so the kernel says no after
#: about 20 segments.  Same loop, same checks.
TOO_MUCH_MEMORY_HEADROOM = 640 * 1024 * 1024

branch_515 = pytest.mark.skipif("5.15" not in qtimpl.BRANCHES[IMPL], reason=f"{IMPL} has no Qt 5.15")
branch_6 = pytest.mark.skipif("6" not in qtimpl.BRANCHES[IMPL], reason=f"{IMPL} is Qt 5")


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


class _AddressSpaceLimit:
    """RLIMIT_AS lowered to the current size plus ``headroom`` for the block (see above)."""

    def __init__(self, headroom: int):
        self.headroom = headroom

    def __enter__(self) -> None:
        self.saved = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + self.headroom, self.saved[1]))

    def __exit__(self, *exc: object) -> None:
        resource.setrlimit(resource.RLIMIT_AS, self.saved)


def _is_null(view: Optional[memoryview]) -> bool:
    return view is None


# ================================================================================================
# Qt 5.15
# ================================================================================================


class Tst515:
    """``tst_QSharedMemory`` of Qt 5.15: its members, init(), cleanup(), remove()."""

    def __init__(self, impl: Impl):
        self.impl = impl
        self.keys: List[str] = []
        self.jail: List[Any] = []
        self.existing: Any = None

    def helper(self, *args: str) -> List[str]:
        return qtimpl.helper_command(self.impl, "sharedmemoryhelper", *args)

    def init(self) -> None:
        self.existing = self.impl.QSharedMemory(EXISTING_SHARE)
        if not self.existing.create(EXISTING_SIZE):
            assert self.existing.error() == self.impl.AlreadyExists

    def cleanup(self) -> None:
        impl = self.impl
        impl._delete(self.existing)
        for sm in self.jail:
            impl._delete(sm)
        self.jail.clear()
        self.keys.append(EXISTING_SHARE)
        for key in self.keys:
            sm = impl.shm(key)
            if not sm.create(1024):
                sm.attach()
                sm.detach()
                self.remove(key)
            impl.delete(sm)

    def remove(self, key: str) -> None:
        """The segment a crashed run may have left: ftok of the key file, IPC_RMID, unlink."""
        if not key:
            return
        probe = self.impl.QSharedMemory(key)  # makePlatformSafeKey(key): Qt's own key file name
        key_file = probe.nativeKey()
        self.impl._delete(probe)
        qtimpl.remove_sysv_segment(key_file)

    def rememberKey(self, key: str) -> str:
        if key == EXISTING_SHARE:
            return key
        if key not in self.keys:
            self.keys.append(key)
            self.remove(key)
        return key


@pytest.fixture
def tst515() -> Iterator[Tst515]:
    impl = Impl(IMPL, "5.15")
    t = Tst515(impl)
    t.init()
    try:
        yield t
    finally:
        qtimpl.close_processes()
        impl.delete_all()  # locals of the test function
        t.cleanup()
        impl.delete_all()


class Consumer515(threading.Thread):
    """The test's ``Consumer`` QThread (Qt 5.15)."""

    def __init__(self, impl: Impl, failures: qtimpl.ThreadFailures, key: Any = "market"):
        super().__init__(daemon=True)
        self.impl, self.failures, self.key = impl, failures, key

    def run(self) -> None:
        impl, check = self.impl, self.failures.check
        consumer = impl.QSharedMemory(self.key)
        try:
            while not consumer.attach():
                if not check(consumer.error() in (impl.NotFound, impl.KeyError),
                             f"consumer: failed to connect {consumer.error()} {consumer.errorString()}"):
                    return
                time.sleep(0.001)
            memory = impl.buffer(consumer)
            assert memory is not None
            i = 0
            while True:
                if not consumer.lock():
                    break
                if memory[0] == ord("Q"):
                    i += 1
                    memory[0] = i & 0xFF
                if memory[0] == ord("E"):
                    memory[1] = (memory[1] + 1) & 0xFF
                    check(consumer.unlock(), "consumer.unlock()")
                    break
                if not check(consumer.unlock(), "consumer.unlock()"):
                    return
                time.sleep(0.001)
            check(consumer.detach(), "consumer.detach()")
        finally:
            impl._delete(consumer)


class Producer515(threading.Thread):
    """The test's ``Producer`` QThread: creates the market in its constructor (Qt 5.15)."""

    def __init__(self, impl: Impl, failures: qtimpl.ThreadFailures, key: Any = "market"):
        super().__init__(daemon=True)
        self.impl, self.failures = impl, failures
        self.producer = impl.shm(key)
        size = 1024
        if not self.producer.create(size):
            if self.producer.error() == impl.AlreadyExists:  # left over from a crash
                self.producer.attach()
                self.producer.detach()
                failures.check(self.producer.create(size), "producer.create(size)")

    def run(self) -> None:
        producer, check = self.producer, self.failures.check
        memory = self.impl.buffer(producer)
        assert memory is not None
        memory[1] = ord("0")
        start = time.monotonic()
        i = 0
        while i < 5 and time.monotonic() - start < 5.0:
            if not check(producer.lock(), "producer.lock()"):
                return
            if memory[0] == ord("Q"):
                if not check(producer.unlock(), "producer.unlock()"):
                    return
                time.sleep(0.001)
                continue
            i += 1
            memory[0] = ord("Q")
            if not check(producer.unlock(), "producer.unlock()"):
                return
            time.sleep(0.001)
        # tell everyone to quit
        if not check(producer.lock(), "producer.lock()"):
            return
        memory[0] = ord("E")
        check(producer.unlock(), "producer.unlock()")


KEY_ROWS = [
    ("null, null, null", "", "", ""),
    ("one, null, null", "one", "", ""),
    ("null, one, null", "", "one", ""),
    ("null, null, one", "", "", "one"),
    ("one, two, null", "one", "two", ""),
    ("one, null, two", "one", "", "two"),
    ("null, one, two", "", "one", "two"),
    ("one, two, three", "one", "two", "three"),
    ("invalid", "o/e", "t/o", "|x"),
]
UNIQUE_KEY_ROWS = [
    ("null == null", "", ""),
    ("key == key", "key", "key"),
    ("key1 == key1", "key1", "key1"),
    ("key != key1", "key", "key1"),
    ("ke1y != key1", "ke1y", "key1"),
    ("key1 != key2", "key1", "key2"),
    ("Noël -> Nol", "N\u00ebl", "Nol"),
]
THREADED_ROWS = [
    (f"{name} ({n})", is_thread, threads)
    for n in range(5)
    for name, is_thread, threads in (
        ("1 consumer, producer is thread", True, 1),
        ("1 consumer, producer is this", False, 1),
        ("5 consumers, producer is thread", True, 5),
        ("5 consumers, producer is this", False, 5),
    )
]
PROCESS_ROWS = [(f"{name} ({n})", processes) for n in range(5)
                for name, processes in (("1 process", 1), ("5 processes", 5))]


def _ids(rows: List[tuple]) -> List[str]:
    return [row[0] for row in rows]


@branch_515
class TestQt515:
    """tst_qsharedmemory.cpp, Qt 5.15 branch."""

    def test_constructor(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, constructor(): the default values."""
        impl = tst515.impl
        sm = impl.shm()
        assert sm.key() == ""
        assert not sm.isAttached()
        assert _is_null(impl.buffer(sm))
        assert sm.size() == 0
        assert sm.error() == impl.NoError
        assert sm.errorString() == ""

    @pytest.mark.parametrize("row, constructorKey, setKey, setNativeKey", KEY_ROWS, ids=_ids(KEY_ROWS))
    def test_key(self, tst515: Tst515, row: str, constructorKey: str, setKey: str, setNativeKey: str) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, key(): key()/nativeKey() after the constructor,
        setKey() and setNativeKey()."""
        impl = tst515.impl
        sm = impl.shm(constructorKey)
        assert sm.key() == constructorKey
        assert (sm.nativeKey() == "") == (constructorKey == "")
        sm.setKey(setKey)
        assert sm.key() == setKey
        assert (sm.nativeKey() == "") == (setKey == "")
        sm.setNativeKey(setNativeKey)
        assert sm.key() == ""  # QString::isNull(): Python has no null str
        assert sm.nativeKey() == setNativeKey
        assert sm.isAttached() is False

        assert sm.error() == impl.NoError
        assert sm.errorString() == ""
        assert _is_null(impl.buffer(sm))
        assert sm.size() == 0

        assert sm.detach() is False

    CREATE_ROWS = [
        ("null key", "", 1024, False, "KeyError"),
        ("-1 size", "negsize", -1, False, "InvalidSize"),
        ("nor size", "norsize", 1024, True, "NoError"),
        ("already exists", EXISTING_SHARE, EXISTING_SIZE, False, "AlreadyExists"),
    ]

    @pytest.mark.parametrize("row, key, size, canCreate, error", CREATE_ROWS, ids=_ids(CREATE_ROWS))
    def test_create(self, tst515: Tst515, row: str, key: str, size: int, canCreate: bool, error: str) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, create(): null key, size -1, a good size, an existing
        segment (Qt only prints the error when it differs; so do we)."""
        impl = tst515.impl
        sm = impl.shm(tst515.rememberKey(key))
        assert sm.create(size) == canCreate
        if sm.error() != getattr(impl, error):
            print(sm.errorString())
        assert sm.key() == key
        if canCreate:
            assert sm.errorString() == ""
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
        else:
            assert _is_null(impl.buffer(sm))
            assert sm.errorString() != ""

    ATTACH_ROWS = [
        ("null key", "", False, "KeyError"),
        ("doesn't exists", "doesntexists", False, "NotFound"),
        ("already exists", EXISTING_SHARE, True, "NoError"),
    ]

    @pytest.mark.parametrize("row, key, exists, error", ATTACH_ROWS, ids=_ids(ATTACH_ROWS))
    def test_attach(self, tst515: Tst515, row: str, key: str, exists: bool, error: str) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, attach(): attach, detach and attach again."""
        impl = tst515.impl
        sm = impl.shm(key)
        assert sm.attach() == exists
        assert sm.isAttached() == exists
        assert sm.error() == getattr(impl, error)
        assert sm.key() == key
        if exists:
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
            assert sm.errorString() == ""
            assert sm.detach()
            # detach() must not keep us from attaching again
            assert sm.attach()
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
            assert sm.detach()
            assert sm.size() == 0
            assert _is_null(impl.buffer(sm))
        else:
            assert _is_null(impl.buffer(sm))
            assert sm.size() == 0
            assert sm.errorString() != ""
            assert not sm.detach()

    def test_lock(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, lock(): no key, a key but no segment, then a second
        lock() that warns "already locked" (and the destructor warns once more)."""
        impl = tst515.impl
        shm = impl.shm()
        assert not shm.lock()
        assert shm.error() == impl.LockError

        shm.setKey("qsharedmemory")

        assert not shm.lock()
        assert shm.error() == impl.LockError

        assert shm.create(100)
        assert shm.lock()
        with impl.messages() as seen:  # QTest::ignoreMessage: the warning must come
            assert shm.lock()
        assert LOCK_WARNING in seen
        with impl.messages() as seen:  # the destructor's detach() warns too
            impl.delete(shm)
        assert LOCK_WARNING in seen

    def test_removeWhileAttached(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, removeWhileAttached(): once the creator and a second
        attacher are gone, a third cannot attach (NotFound)."""
        impl = tst515.impl
        tst515.rememberKey("one")

        smOne = impl.shm("one")
        assert smOne.create(1024)
        assert smOne.isAttached()

        smTwo = impl.shm("one")
        assert smTwo.attach()
        assert smTwo.isAttached()

        impl.delete(smOne)
        impl.delete(smTwo)

        smThree = impl.shm("one")
        assert not smThree.attach()
        assert smThree.error() == impl.NotFound

    def test_emptyMemory(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, emptyMemory(): a new segment is all zeros."""
        impl = tst515.impl
        sm = impl.shm(tst515.rememberKey("voidland"))
        size = 1024
        assert sm.create(size, impl.ReadOnly)
        get = impl.buffer(sm)
        assert get is not None
        for i in range(size):
            assert get[i] == 0

    def test_readOnly(self, tst515: Tst515, record_property: Any) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, readOnly(): the helper creates a read-only segment and
        writes to it.  Qt: the helper crashes (SIGSEGV).  qshm_compat differs by design (README
        "Safer than Qt"): the write raises TypeError, so the helper exits with status 1."""
        impl = tst515.impl
        tst515.rememberKey("readonly_segfault")
        p = Process(tst515.helper("readonly_segfault"))
        p.waitForFinished()
        if impl.is_qshm:
            record_property("differs_by_design", READ_ONLY_DIFFERENCE)
            assert p.normal_exit() and p.exit_code() == 1, p.proc.returncode  # TypeError
        else:
            assert p.crashed(), p.proc.returncode  # QProcess::Crashed

    def test_useTooMuchMemory(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, useTooMuchMemory(): 32 MiB segments until the kernel
        refuses; the failed one is OutOfResources (or LockError) and not attached.  The kernel's
        limit is this process's address space, lowered for the loop (TOO_MUCH_MEMORY_HEADROOM)."""
        impl = tst515.impl
        success = True
        count = 0
        with _AddressSpaceLimit(TOO_MUCH_MEMORY_HEADROOM):
            while success:
                key = f"maxmemorytest_{count}"
                count += 1
                sm = impl.QSharedMemory(tst515.rememberKey(key))
                tst515.jail.append(sm)
                size = 32768 * 1024
                success = sm.create(size)
                if not success and sm.error() == impl.AlreadyExists:  # left over from a crash
                    sm.attach()
                    sm.detach()
                    success = sm.create(size)
                if not success:
                    assert not sm.isAttached()
                    assert sm.key() == key
                    assert sm.size() == 0
                    assert _is_null(impl.buffer(sm))
                    if sm.error() != impl.OutOfResources:
                        print(sm.error(), sm.errorString())
                    assert sm.error() in (impl.OutOfResources, impl.LockError)
                    assert sm.errorString() != ""
                    assert not sm.attach()
                    assert not sm.detach()
                else:
                    assert sm.isAttached()
        assert count > 1, "the first 32 MiB segment already failed"

    def test_attachTooMuch(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, attachTooMuch(): Qt skips it ("disabled"), so do we."""
        pytest.skip("QSKIP in Qt: disabled")

    @pytest.mark.parametrize("mode", ["readonly", "readwrite"])
    def test_simpleProducerConsumer(self, tst515: Tst515, mode: str) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, simpleProducerConsumer(): what the creator writes, an
        attacher (read-only or read-write) sees at once, through another mapping."""
        impl = tst515.impl
        access = impl.ReadOnly if mode == "readonly" else impl.ReadWrite
        tst515.rememberKey("market")
        producer = impl.shm("market")
        consumer = impl.shm("market")
        size = 512
        assert producer.create(size)
        assert consumer.attach(access)

        put = impl.buffer(producer)
        get = impl.buffer(consumer)
        assert put is not None and get is not None
        assert impl.address(put) != impl.address(get)
        for i in range(size):
            put[i] = ord("Q")
            assert get[i] == ord("Q")
        del put, get
        assert consumer.detach()

    def test_simpleDoubleProducerConsumer(self, tst515: Tst515) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, simpleDoubleProducerConsumer(): create, detach, create
        again, and another object attaches."""
        impl = tst515.impl
        tst515.rememberKey("market")
        producer = impl.shm("market")
        size = 512
        assert producer.create(size)
        assert producer.detach()
        assert producer.create(size)

        consumer = impl.shm("market")
        assert consumer.attach()
        impl.delete(consumer)

    @pytest.mark.parametrize("row, producerIsThread, threads", THREADED_ROWS, ids=_ids(THREADED_ROWS))
    def test_simpleThreadedProducerConsumer(self, tst515: Tst515, row: str, producerIsThread: bool,
                                            threads: int) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, simpleThreadedProducerConsumer(): a producer (a thread
        or the test itself) hands out five items under the lock to 1 or 5 consumer threads."""
        impl = tst515.impl
        tst515.rememberKey("market")
        failures = qtimpl.ThreadFailures()
        p = Producer515(impl, failures)
        assert p.producer.isAttached()
        if producerIsThread:
            p.start()
        consumers = []
        for _ in range(threads):
            consumers.append(Consumer515(impl, failures))
            consumers[-1].start()
        if not producerIsThread:
            p.run()
        if producerIsThread:
            p.join(5.0)
        for c in consumers:
            c.join(5.0)
            assert not c.is_alive()
        assert failures.failures == []

    @pytest.mark.parametrize("row, processes", PROCESS_ROWS, ids=_ids(PROCESS_ROWS))
    def test_simpleProcessProducerConsumer(self, tst515: Tst515, row: str, processes: int) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, simpleProcessProducerConsumer(): a producer process
        hands out five items to 1 or 5 consumer processes.  Qt skips it ("This test is
        unstable: QTBUG-25655"); we run it."""
        tst515.rememberKey("market")
        _process_producer_consumer(tst515.helper("producer"), tst515.helper("consumer"), processes)

    @pytest.mark.parametrize("row, key1, key2", UNIQUE_KEY_ROWS, ids=_ids(UNIQUE_KEY_ROWS))
    def test_uniqueKey(self, tst515: Tst515, row: str, key1: str, key2: str) -> None:
        """Qt 5.15 tst_qsharedmemory.cpp, uniqueKey(): equal keys give equal native keys, and
        different keys (also "Noël" and "Nol") different ones."""
        impl = tst515.impl
        sm1 = impl.shm(key1)
        sm2 = impl.shm(key2)
        setEqual = key1 == key2
        keyEqual = sm1.key() == sm2.key()
        nativeEqual = sm1.nativeKey() == sm2.nativeKey()
        assert keyEqual == setEqual
        assert nativeEqual == setEqual


def _process_producer_consumer(producer_argv: List[str], consumer_argv: List[str], processes: int) -> None:
    """The body of simpleProcessProducerConsumer(), the same in Qt 5.15 and Qt 6."""
    producer = Process(producer_argv, read_stdout=True)
    assert producer.waitForStarted(), "Could not start helper binary"
    assert producer.waitForReadyRead(), "Helper process failed to create shared memory segment"

    consumers = []
    failedProcesses = 0
    for _ in range(processes):
        p = Process(consumer_argv)
        if p.waitForStarted():
            consumers.append(p)
        else:
            failedProcesses += 1

    consumerFailed = False
    for c in consumers:
        assert c.waitForFinished(3000)
        if c.running() or not c.normal_exit() or c.exit_code() != 0:
            consumerFailed = True
    assert consumerFailed is False
    assert failedProcesses == 0

    producer.write(b"\0")  # tell the producer to exit now
    assert producer.waitForFinished(5000)


# ================================================================================================
# Qt 6
# ================================================================================================

KEY_TYPE_ROWS = ["POSIX", "SystemV-Q", "SystemV-T"]  # Qt's "Windows" row needs Windows
_seq = [0]


class Tst6:
    """``tst_QSharedMemory`` of Qt 6: its members, init(), cleanup(), remove(), key helpers."""

    def __init__(self, impl: Impl, key_type_row: str):
        self.impl = impl
        self.keyType = impl.KEY_TYPES[key_type_row]
        self.keys: List[Any] = []
        self.jail: List[Any] = []
        self.existing: Any = None

    def helper(self, *args: str) -> List[str]:
        return qtimpl.helper_command(self.impl, "producerconsumer", *args)

    def supported_key_types(self) -> List[Any]:
        """IpcTestCommon::supportedKeyTypes: the global rows this system has, in row order."""
        return [t for name, t in self.impl.KEY_TYPES.items()
                if self.impl.QSharedMemory.isKeyTypeSupported(t)]

    def nextKeyType(self, t: Any) -> Any:
        types = self.supported_key_types()
        return types[(types.index(t) + 1) % len(types)]

    def mangleKey(self, key: str) -> str:
        # Qt: tstshm_<pid>-<seq>_<key>; "qshm" in front lets the leak guard see the /dev/shm names.
        if not key:
            return key
        return f"qshm_tstshm_{os.getpid()}-{_seq[0]}_{key}"

    def platformSafeKey(self, key: str) -> Any:
        return self.impl.QSharedMemory.platformSafeKey(self.mangleKey(key), self.keyType)

    def rememberKey(self, key: str) -> Any:
        ipcKey = self.platformSafeKey(key)
        if ipcKey not in self.keys:
            self.keys.append(ipcKey)
            self.remove(ipcKey)
        return ipcKey

    def init(self) -> None:
        key = self.platformSafeKey("existing")
        self.existing = self.impl.QSharedMemory(key)
        if not self.existing.create(EXISTING_SIZE):
            assert self.existing.error() == self.impl.AlreadyExists
        self.keys.append(key)

    def cleanup(self) -> None:
        impl = self.impl
        impl._delete(self.existing)
        for sm in self.jail:
            impl._delete(sm)
        self.jail.clear()
        for key in self.keys:
            sm = impl.shm(key)
            if not sm.create(1024):
                sm.attach()
                sm.detach()
            impl.delete(sm)
            self.remove(key)
        _seq[0] += 1

    def remove(self, key: Any) -> None:
        if key.isEmpty():
            return
        T = self.impl.QNativeIpcKey.Type
        if key.type() == T.Windows:
            return
        if key.type() == T.PosixRealtime:
            qtimpl.remove_posix_segment(key.nativeKey())
            return
        qtimpl.remove_sysv_segment(key.nativeKey(), _type_value(key.type()))


def _type_value(t: Any) -> int:
    return int(getattr(t, "value", t))


@pytest.fixture(params=KEY_TYPE_ROWS)
def tst6(request: pytest.FixtureRequest) -> Iterator[Tst6]:
    impl = Impl(IMPL, "6")
    t = Tst6(impl, request.param)
    t.init()
    try:
        yield t
    finally:
        qtimpl.close_processes()
        impl.delete_all()
        t.cleanup()
        impl.delete_all()


ATTACH6_ROWS = [
    ("null", "", False, "KeyError"),
    ("doesntexists", "doesntexist", False, "NotFound"),
    ("existing", "existing", True, "NoError"),
]


@branch_6
class TestQt6:
    """tst_qsharedmemory.cpp, Qt 6 (ipc/, Qt >= 6.6, newest stored revision)."""

    def test_initTestCase(self) -> None:
        """Qt 6 tst_qsharedmemory.cpp, initTestCase() / IpcTestCommon::addGlobalTestRows():
        the default and the legacy key types are supported on Linux; Windows is not (so its row
        is not added), POSIX, SystemV-Q and SystemV-T are."""
        impl = Impl(IMPL, "6")
        K, S = impl.QNativeIpcKey, impl.QSharedMemory
        assert S.isKeyTypeSupported(K.DefaultTypeForOs)
        assert S.isKeyTypeSupported(K.legacyDefaultTypeForOs())
        supported = [name for name, t in impl.KEY_TYPES.items() if S.isKeyTypeSupported(t)]
        assert supported == KEY_TYPE_ROWS

    def test_constructor(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, constructor(): the default values."""
        impl = tst6.impl
        sm = impl.shm()
        assert not sm.isAttached()
        assert _is_null(impl.buffer(sm))
        assert sm.nativeKey() == ""
        assert sm.nativeIpcKey() == impl.QNativeIpcKey()
        assert sm.size() == 0
        assert sm.error() == impl.NoError
        assert sm.errorString() == ""
        assert sm.key() == ""

    @pytest.mark.parametrize("row, constructorKey, setKey, setNativeKey", KEY_ROWS, ids=_ids(KEY_ROWS))
    def test_nativeKey(self, tst6: Tst6, row: str, constructorKey: str, setKey: str, setNativeKey: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, nativeKey(): nativeIpcKey()/nativeKey() after the
        constructor and setNativeKey(), then after changing to the next key type."""
        impl = tst6.impl
        constructorIpcKey = tst6.platformSafeKey(constructorKey)
        setIpcKey = tst6.platformSafeKey(setKey)

        sm = impl.shm(constructorIpcKey)
        assert sm.nativeIpcKey() == constructorIpcKey
        assert sm.nativeKey() == constructorIpcKey.nativeKey()
        sm.setNativeKey(setIpcKey)
        assert sm.nativeIpcKey() == setIpcKey
        assert sm.nativeKey() == setIpcKey.nativeKey()

        assert sm.isAttached() is False

        assert sm.error() == impl.NoError
        assert sm.errorString() == ""
        assert _is_null(impl.buffer(sm))
        assert sm.size() == 0

        assert sm.detach() is False

        nextKeyType = tst6.nextKeyType(setIpcKey.type())
        if nextKeyType != setIpcKey.type():
            setIpcKey2 = impl.QSharedMemory.platformSafeKey(setKey, nextKeyType)
            sm.setNativeKey(setIpcKey2)

            assert sm.nativeIpcKey() == setIpcKey2
            assert sm.nativeKey() == setIpcKey2.nativeKey()

            assert sm.isAttached() is False

            assert sm.error() == impl.NoError
            assert sm.errorString() == ""
            assert _is_null(impl.buffer(sm))
            assert sm.size() == 0

            assert sm.detach() is False

    @pytest.mark.parametrize("row, constructorKey, setKey, setNativeKey", KEY_ROWS, ids=_ids(KEY_ROWS))
    def test_legacyKey(self, tst6: Tst6, row: str, constructorKey: str, setKey: str, setNativeKey: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, legacyKey(): Qt 5's key()/setKey()/setNativeKey(QString)."""
        impl = tst6.impl
        sm = impl.shm(constructorKey)
        assert sm.key() == constructorKey
        assert (sm.nativeKey() == "") == (constructorKey == "")
        sm.setKey(setKey)
        assert sm.key() == setKey
        assert (sm.nativeKey() == "") == (setKey == "")
        sm.setNativeKey(setNativeKey)
        assert sm.key() == ""
        assert sm.nativeKey() == setNativeKey
        assert sm.isAttached() is False

        assert sm.error() == impl.NoError
        assert sm.errorString() == ""
        assert _is_null(impl.buffer(sm))
        assert sm.size() == 0

        assert sm.detach() is False

    CREATE6_ROWS = [
        ("null key", "", 1024, False, "KeyError"),
        ("-1 size", "negsize", -1, False, "InvalidSize"),
        ("nor size", "norsize", 1024, True, "NoError"),
        ("existing", "existing", EXISTING_SIZE, False, "AlreadyExists"),
    ]

    @pytest.mark.parametrize("row, key, size, canCreate, error", CREATE6_ROWS, ids=_ids(CREATE6_ROWS))
    def test_create(self, tst6: Tst6, row: str, key: str, size: int, canCreate: bool, error: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, create(): null key, size -1, a good size, an existing
        segment (Qt only prints the error when it differs; so do we)."""
        impl = tst6.impl
        nativeKey = tst6.rememberKey(key)
        sm = impl.shm(nativeKey)
        assert sm.create(size) == canCreate
        if sm.error() != getattr(impl, error):
            print(sm.errorString())
        assert sm.nativeIpcKey() == nativeKey
        if canCreate:
            assert sm.errorString() == ""
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
        else:
            assert _is_null(impl.buffer(sm))
            assert sm.errorString() != ""

    @pytest.mark.parametrize("row, key, exists, error", ATTACH6_ROWS, ids=_ids(ATTACH6_ROWS))
    def test_attach(self, tst6: Tst6, row: str, key: str, exists: bool, error: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, attach(): attach, detach and attach again."""
        impl = tst6.impl
        nativeKey = tst6.platformSafeKey(key)
        sm = impl.shm(nativeKey)
        assert sm.attach() == exists
        assert sm.isAttached() == exists
        assert sm.error() == getattr(impl, error)
        assert sm.nativeIpcKey() == nativeKey
        if exists:
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
            assert sm.errorString() == ""
            assert sm.detach()
            assert sm.attach()
            assert not _is_null(impl.buffer(sm))
            assert sm.size() != 0
            assert sm.detach()
            assert sm.size() == 0
            assert _is_null(impl.buffer(sm))
        else:
            assert _is_null(impl.buffer(sm))
            assert sm.size() == 0
            assert sm.errorString() != ""
            assert not sm.detach()

    @pytest.mark.parametrize("row, key, exists, error", ATTACH6_ROWS, ids=_ids(ATTACH6_ROWS))
    def test_changeKeyType(self, tst6: Tst6, row: str, key: str, exists: bool, error: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, changeKeyType(): the same name with the next key type is
        another segment (NotFound), and setNativeKey() detaches."""
        impl = tst6.impl
        nativeKey = tst6.platformSafeKey(key)
        nextKeyType = tst6.nextKeyType(nativeKey.type())
        if nextKeyType == nativeKey.type():
            pytest.skip("System only supports one key type")

        sm = impl.shm(nativeKey)
        assert sm.attach() == exists
        assert sm.error() == getattr(impl, error)

        nextKey = impl.QSharedMemory.platformSafeKey(tst6.mangleKey(key), nextKeyType)
        sm.setNativeKey(nextKey)
        assert sm.isAttached() is False
        assert not sm.attach()

        if exists:
            assert sm.error() == impl.NotFound
        else:
            assert sm.error() == getattr(impl, error)

    def test_lock(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, lock(): no key, a key but no segment, then a second
        lock() that warns "already locked" (and the destructor warns once more)."""
        impl = tst6.impl
        shm = impl.shm()
        assert not shm.lock()
        assert shm.error() == impl.LockError

        shm.setNativeKey(tst6.rememberKey("qsharedmemory"))

        assert not shm.lock()
        assert shm.error() == impl.LockError

        assert shm.create(100)
        assert shm.lock()
        with impl.messages() as seen:
            assert shm.lock()
        assert LOCK_WARNING in seen
        with impl.messages() as seen:
            impl.delete(shm)
        assert LOCK_WARNING in seen

    def test_removeWhileAttached(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, removeWhileAttached(): once the creator and a second
        attacher are gone (and, POSIX, the name unlinked), a third cannot attach (NotFound)."""
        impl = tst6.impl
        tst6.rememberKey("one")

        keyOne = tst6.platformSafeKey("one")
        smOne = impl.shm(keyOne)
        assert smOne.create(1024)
        assert smOne.isAttached()

        smTwo = impl.shm(tst6.platformSafeKey("one"))
        assert smTwo.attach()
        assert smTwo.isAttached()

        impl.delete(smOne)
        impl.delete(smTwo)

        if keyOne.type() == impl.QNativeIpcKey.Type.PosixRealtime:
            tst6.remove(keyOne)  # POSIX does not promise that the memory is gone

        smThree = impl.shm(keyOne)
        assert not smThree.attach()
        assert smThree.error() == impl.NotFound

    def test_emptyMemory(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, emptyMemory(): a new segment is all zeros."""
        impl = tst6.impl
        sm = impl.shm(tst6.rememberKey("voidland"))
        size = 1024
        assert sm.create(size, impl.ReadOnly)
        get = impl.buffer(sm)
        assert get is not None
        for i in range(size):
            assert get[i] == 0

    def test_readOnly(self, tst6: Tst6, record_property: Any) -> None:
        """Qt 6 tst_qsharedmemory.cpp, readOnly(): the helper creates a read-only segment and
        writes to it.  Qt: the helper crashes (SIGSEGV).  qshm_compat differs by design (README
        "Safer than Qt"): the write raises TypeError, so the helper exits with status 1."""
        impl = tst6.impl
        key = tst6.rememberKey("readonly_segfault")
        p = Process(tst6.helper("readonly_segfault", key.toString()))
        p.waitForFinished()
        if impl.is_qshm:
            record_property("differs_by_design", READ_ONLY_DIFFERENCE)
            assert p.normal_exit() and p.exit_code() == 1, p.proc.returncode
        else:
            assert p.crashed(), p.proc.returncode

    @pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "non-legacy"])
    def test_attachBeforeCreate(self, tst6: Tst6, legacy: bool) -> None:
        """Qt 6 tst_qsharedmemory.cpp, attachBeforeCreate(): a failed attach() does not keep
        the next create() from working, with a legacy and with a platform-safe key."""
        impl = tst6.impl
        keyStr = "test"
        if legacy:
            key = impl.QSharedMemory.legacyNativeKey(keyStr, tst6.keyType)
            if key not in tst6.keys:
                tst6.keys.append(key)
                tst6.remove(key)
        else:
            key = tst6.rememberKey(keyStr)
        sz = 100
        mem = impl.shm(key)
        assert not mem.attach()
        assert mem.create(sz)

    def test_useTooMuchMemory(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, useTooMuchMemory(): 32 MiB segments until the kernel
        refuses; the failed one is OutOfResources (or LockError) and not attached.  The kernel's
        limit is this process's address space, lowered for the loop (TOO_MUCH_MEMORY_HEADROOM)."""
        impl = tst6.impl
        success = True
        count = 0
        with _AddressSpaceLimit(TOO_MUCH_MEMORY_HEADROOM):
            while success:
                key = f"maxmemorytest_{count}"
                count += 1
                nativeKey = tst6.rememberKey(key)
                sm = impl.QSharedMemory(nativeKey)
                tst6.jail.append(sm)
                size = 32768 * 1024
                success = sm.create(size)
                if not success and sm.error() == impl.AlreadyExists:
                    sm.attach()
                    sm.detach()
                    success = sm.create(size)
                if not success:
                    assert not sm.isAttached()
                    assert sm.nativeIpcKey() == nativeKey
                    assert sm.size() == 0
                    assert _is_null(impl.buffer(sm))
                    if sm.error() != impl.OutOfResources:
                        print(sm.error(), sm.errorString())
                    assert sm.error() in (impl.OutOfResources, impl.LockError)
                    assert sm.errorString() != ""
                    assert not sm.attach()
                    assert not sm.detach()
                else:
                    assert sm.isAttached()
        assert count > 1, "the first 32 MiB segment already failed"

    def test_attachTooMuch(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, attachTooMuch(): Qt skips it ("disabled"), so do we."""
        pytest.skip("QSKIP in Qt: disabled")

    @pytest.mark.parametrize("mode", ["readonly", "readwrite"])
    def test_simpleProducerConsumer(self, tst6: Tst6, mode: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, simpleProducerConsumer(): what the creator writes, an
        attacher (read-only or read-write) sees at once, through another mapping."""
        impl = tst6.impl
        access = impl.ReadOnly if mode == "readonly" else impl.ReadWrite
        tst6.rememberKey("market")
        producer = impl.shm(tst6.platformSafeKey("market"))
        consumer = impl.shm(tst6.platformSafeKey("market"))
        size = 512
        assert producer.create(size)
        assert consumer.attach(access)

        put = impl.buffer(producer)
        get = impl.buffer(consumer)
        assert put is not None and get is not None
        assert impl.address(put) != impl.address(get)
        for i in range(size):
            put[i] = ord("Q")
            assert get[i] == ord("Q")
        del put, get
        assert consumer.detach()

    def test_simpleDoubleProducerConsumer(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, simpleDoubleProducerConsumer(): create, detach (and,
        POSIX, unlink), create again, and another object attaches."""
        impl = tst6.impl
        nativeKey = tst6.rememberKey("market")
        producer = impl.shm(nativeKey)
        size = 512
        assert producer.create(size)
        assert producer.detach()

        if nativeKey.type() == impl.QNativeIpcKey.Type.PosixRealtime:
            tst6.remove(nativeKey)

        assert producer.create(size)

        consumer = impl.shm(nativeKey)
        assert consumer.attach()
        impl.delete(consumer)

    @pytest.mark.parametrize("row, producerIsThread, threads", THREADED_ROWS, ids=_ids(THREADED_ROWS))
    def test_simpleThreadedProducerConsumer(self, tst6: Tst6, row: str, producerIsThread: bool,
                                            threads: int) -> None:
        """Qt 6 tst_qsharedmemory.cpp, simpleThreadedProducerConsumer(): a producer (a thread
        or the test itself) hands out five items under the lock to 1 or 5 consumer threads."""
        impl = tst6.impl
        nativeKey = tst6.rememberKey("market")
        failures = qtimpl.ThreadFailures()
        p = Producer515(impl, failures, nativeKey)
        assert p.producer.isAttached()
        if producerIsThread:
            p.start()
        consumers = []
        for _ in range(threads):
            consumers.append(Consumer515(impl, failures, nativeKey))
            consumers[-1].start()
        if not producerIsThread:
            p.run()
        if producerIsThread:
            p.join(5.0)
        for c in consumers:
            c.join(5.0)
            assert not c.is_alive()
        assert failures.failures == []

    @pytest.mark.parametrize("row, processes", PROCESS_ROWS, ids=_ids(PROCESS_ROWS))
    def test_simpleProcessProducerConsumer(self, tst6: Tst6, row: str, processes: int) -> None:
        """Qt 6 tst_qsharedmemory.cpp, simpleProcessProducerConsumer(): a producer process
        hands out five items to 1 or 5 consumer processes.  Qt skips it ("This test is
        unstable: QTBUG-25655"); we run it."""
        nativeKey = tst6.rememberKey("market")
        _process_producer_consumer(tst6.helper("producer", nativeKey.toString()),
                                   tst6.helper("consumer", nativeKey.toString()), processes)

    @pytest.mark.parametrize("row, key1, key2", UNIQUE_KEY_ROWS, ids=_ids(UNIQUE_KEY_ROWS))
    def test_uniqueKey(self, tst6: Tst6, row: str, key1: str, key2: str) -> None:
        """Qt 6 tst_qsharedmemory.cpp, uniqueKey(): equal keys give equal native keys, and
        different keys (also "Noël" and "Nol") different ones."""
        impl = tst6.impl
        sm1 = impl.shm(tst6.platformSafeKey(key1))
        sm2 = impl.shm(tst6.platformSafeKey(key2))
        setEqual = key1 == key2
        keyEqual = sm1.nativeIpcKey() == sm2.nativeIpcKey()
        nativeEqual = sm1.nativeKey() == sm2.nativeKey()
        assert keyEqual == setEqual
        assert nativeEqual == setEqual

    def test_createWithSameKey(self, tst6: Tst6) -> None:
        """Qt 6 tst_qsharedmemory.cpp, createWithSameKey() (QTBUG-111855): with a legacy key, a
        second and a third object each fail create() and then attach()."""
        impl = tst6.impl
        key = "legacy_key"
        sz = 100
        mem1 = impl.shm(key)
        assert mem1.create(sz)

        mem2 = impl.shm(key)
        assert not mem2.create(sz)
        assert mem2.attach()
        impl.delete(mem2)
        # and the second create() fails as well (QTBUG-111855)
        mem2 = impl.shm(key)
        assert not mem2.create(sz)
        assert mem2.attach()
        impl.delete(mem2)
