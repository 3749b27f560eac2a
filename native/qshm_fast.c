/* qshm_compat._fast: the hot paths of QSharedMemory in C.
 *
 * Written against Python's limited API (abi3), so the module ships in the same wheel for every
 * Python the wheel's tag allows (setup.py picks the newest limited API that tag permits; built
 * for 3.9/3.10 it lacks Mapping and the C attach()/detach(), and uses METH_VARARGS).  cffi stays
 * the binding for everything else, and the Python code stays the specification: every type here
 * does the usual case only and hands anything else to the Python path (QSHM_PLAIN=1 turns all
 * of it off), and tests/test_fast_paths.py runs both against real Qt peers and compares them.
 *
 * SysVLock(semid), PosixLock(address of a sem_t): take()/give() of one lock semaphore (semop
 *   -1/+1 with SEM_UNDO; sem_trywait and sem_post), 0 when done and -1 when not (errno
 *   tells why), and acquire(timeout), the timed wait, retrying EINTR after running the signal
 *   handlers: True when taken, False when the timeout ran out, OSError for anything else.
 * Held: a lock's state, the one-item deque the Python code records it in.
 * Lockable: the base class of QSharedMemory; its lock() and unlock() take and give the fast
 *   semaphore and record it in Held in one call, else call the Python _lock()/_unlock(); its
 *   attach() and detach() do the call's system calls in one C call when the object has a plan,
 *   else call the Python _attach()/_detach().  The state these four touch is Lockable's.
 * SysVAttach, PosixAttach: the plans of attach() and detach(), learned from the last attach
 *   done the long way (System V; POSIX of Qt 6.6 and later).
 * sysv_create(): create() of a System V segment under the lock its owner kept, as one call.
 * bind_methods(cls): Lockable's C methods as cls's own (CPython specializes their calls then).
 * Mapping: the buffer data() makes its memoryviews from.
 *
 * A semaphore is taken and its state recorded in the same C call, with no Python code in
 * between, so an exception raised by a signal handler (Ctrl-C) cannot leave the two out of
 * step.  A wait for a System V semaphore someone else holds happens with the GIL released
 * (SysVLock.take()); any other wait is left to the Python path (a POSIX lock's wait may have
 * to recover an abandoned lock; the one-call attach/detach/create never wait).
 */
#define _GNU_SOURCE 1
#ifndef Py_LIMITED_API /* setup.py sets the newest the wheel's abi3 tag allows */
#define Py_LIMITED_API 0x03090000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    int semid;
    int held;
} SysVLock;

typedef struct {
    PyObject_HEAD
    sem_t *sem;
    int held;
} PosixLock;

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The end of every dealloc here: free the object, then its reference to its (heap) type. */
static void free_object(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    freefunc free_ = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    free_(op);
    Py_DECREF(tp);
}

/* acquire()'s timeout in seconds, made a time a timespec can hold: a negative one (or NaN) is
 * 0 (one try), one beyond a year is a year (semaphore.py makes an infinite one None first);
 * -1 with an exception set: not a number. */
static double wait_seconds(PyObject *arg)
{
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return -1;
    if (!(timeout > 0))
        return 0;
    return timeout > 31536000.0 ? 31536000.0 : timeout;
}

/* --- System V ---------------------------------------------------------------------------- */

static int sysv_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    int semid;
    if (kwds != NULL && PyObject_Length(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "SysVLock() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "i", &semid))
        return -1;
    ((SysVLock *)self)->semid = semid;
    ((SysVLock *)self)->held = 0;
    return 0;
}

static int sysv_op(int semid, short op, int flags)
{
    struct sembuf sb;
    sb.sem_num = 0;
    sb.sem_op = op;
    sb.sem_flg = (short)(SEM_UNDO | flags);
    return semop(semid, &sb, 1);
}

/* Take: without waiting first, then (taken by someone else) waiting with the GIL released. */
static int sysv_take_raw(SysVLock *self)
{
    int r = sysv_op(self->semid, -1, IPC_NOWAIT);
    if (r == -1 && errno == EAGAIN) {
        Py_BEGIN_ALLOW_THREADS
        r = sysv_op(self->semid, -1, 0);
        Py_END_ALLOW_THREADS
    }
    if (r == 0)
        self->held = 1;
    return r;
}

static int sysv_give_raw(SysVLock *self)
{
    int r = sysv_op(self->semid, 1, 0);
    if (r == 0)
        self->held = 0;
    return r;
}

static PyObject *sysv_take(PyObject *op, PyObject *unused)
{
    return PyLong_FromLong(sysv_take_raw((SysVLock *)op));
}

static PyObject *sysv_give(PyObject *op, PyObject *unused)
{
    return PyLong_FromLong(sysv_give_raw((SysVLock *)op));
}

static PyObject *sysv_acquire(PyObject *op, PyObject *arg)
{
    SysVLock *self = (SysVLock *)op;
    double timeout = wait_seconds(arg);
    if (timeout < 0)
        return NULL;
    double deadline = monotonic_now() + timeout;
    for (;;) {
        double left = deadline - monotonic_now();
        if (left < 0)
            left = 0;
        struct timespec ts;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        struct sembuf sb;
        sb.sem_num = 0;
        sb.sem_op = -1;
        sb.sem_flg = SEM_UNDO;
        int r, code;
        Py_BEGIN_ALLOW_THREADS
        r = semtimedop(self->semid, &sb, 1, &ts);
        code = errno;
        Py_END_ALLOW_THREADS
        if (r == 0) {
            self->held = 1;
            Py_RETURN_TRUE;
        }
        if (code == EAGAIN)
            Py_RETURN_FALSE;
        if (code != EINTR) {
            errno = code;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() != 0)
            return NULL; /* not taken: held is unchanged */
    }
}

static PyObject *sysv_get_held(PyObject *op, void *closure)
{
    return PyBool_FromLong(((SysVLock *)op)->held);
}

static PyObject *sysv_get_semid(PyObject *op, void *closure)
{
    return PyLong_FromLong(((SysVLock *)op)->semid);
}

static PyMethodDef sysv_methods[] = {
    {"take", sysv_take, METH_NOARGS, "semop(-1, SEM_UNDO): 0 when taken, -1 when not (errno)."},
    {"give", sysv_give, METH_NOARGS, "semop(+1, SEM_UNDO): 0 when given, -1 when not (errno)."},
    {"acquire", sysv_acquire, METH_O, "semtimedop(-1) within timeout seconds: True, or False."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sysv_getset[] = {
    {"held", sysv_get_held, NULL, "Whether the last successful take() was not given back.", NULL},
    {"semid", sysv_get_semid, NULL, "The System V semaphore id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot sysv_slots[] = {
    {Py_tp_doc, "The fast path of one System V lock semaphore: SysVLock(semid)."},
    {Py_tp_init, sysv_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_methods, sysv_methods},
    {Py_tp_getset, sysv_getset},
    {0, NULL},
};

static PyType_Spec sysv_spec = {
    "qshm_compat._fast.SysVLock", sizeof(SysVLock), 0, Py_TPFLAGS_DEFAULT, sysv_slots,
};

/* --- POSIX ------------------------------------------------------------------------------- */

static int posix_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    unsigned long long address;
    if (kwds != NULL && PyObject_Length(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "PosixLock() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "K", &address))
        return -1;
    ((PosixLock *)self)->sem = (sem_t *)(uintptr_t)address;
    ((PosixLock *)self)->held = 0;
    return 0;
}

static int posix_take_raw(PosixLock *self)
{
    int r;
    if (self->sem == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* No waiting here: a POSIX lock has no undo, so a wait must be able to find its holder
     * dead and recover the lock (semaphore.py), which the long way does (EAGAIN: take it). */
    r = sem_trywait(self->sem);
    if (r == 0)
        self->held = 1;
    return r;
}

static int posix_give_raw(PosixLock *self)
{
    int r;
    if (self->sem == NULL) {
        errno = EINVAL;
        return -1;
    }
    r = sem_post(self->sem);
    if (r == 0)
        self->held = 0;
    return r;
}

static PyObject *posix_take(PyObject *op, PyObject *unused)
{
    return PyLong_FromLong(posix_take_raw((PosixLock *)op));
}

static PyObject *posix_give(PyObject *op, PyObject *unused)
{
    return PyLong_FromLong(posix_give_raw((PosixLock *)op));
}

static PyObject *posix_acquire(PyObject *op, PyObject *arg)
{
    PosixLock *self = (PosixLock *)op;
    double timeout = wait_seconds(arg);
    if (timeout < 0)
        return NULL;
    if (self->sem == NULL) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* sem_timedwait takes an absolute CLOCK_REALTIME deadline, fixed once. */
    struct timespec now, deadline;
    clock_gettime(CLOCK_REALTIME, &now);
    double end = (double)now.tv_sec + (double)now.tv_nsec * 1e-9 + timeout;
    deadline.tv_sec = (time_t)end;
    deadline.tv_nsec = (long)((end - (double)deadline.tv_sec) * 1e9);
    if (deadline.tv_nsec >= 1000000000L)
        deadline.tv_nsec = 999999999L;
    for (;;) {
        sem_t *sem = self->sem;
        int r, code;
        Py_BEGIN_ALLOW_THREADS
        r = sem_timedwait(sem, &deadline);
        code = errno;
        Py_END_ALLOW_THREADS
        if (r == 0) {
            self->held = 1;
            Py_RETURN_TRUE;
        }
        if (code == ETIMEDOUT)
            Py_RETURN_FALSE;
        if (code != EINTR) {
            errno = code;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (PyErr_CheckSignals() != 0)
            return NULL;
    }
}

static PyObject *posix_forget(PyObject *op, PyObject *unused)
{
    ((PosixLock *)op)->sem = NULL; /* the semaphore is being closed: never touch it again */
    Py_RETURN_NONE;
}

static PyObject *posix_get_held(PyObject *op, void *closure)
{
    return PyBool_FromLong(((PosixLock *)op)->held);
}

static PyMethodDef posix_methods[] = {
    {"take", posix_take, METH_NOARGS, "sem_trywait: 0 when taken, -1 when not (errno)."},
    {"give", posix_give, METH_NOARGS, "sem_post: 0 when given, -1 when not (errno)."},
    {"acquire", posix_acquire, METH_O, "sem_timedwait within timeout seconds: True, or False."},
    {"forget", posix_forget, METH_NOARGS, "Drop the sem_t pointer (before sem_close)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef posix_getset[] = {
    {"held", posix_get_held, NULL, "Whether the last successful take() was not given back.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot posix_slots[] = {
    {Py_tp_doc, "The fast path of one POSIX lock semaphore: PosixLock(address of a sem_t)."},
    {Py_tp_init, posix_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_methods, posix_methods},
    {Py_tp_getset, posix_getset},
    {0, NULL},
};

static PyType_Spec posix_spec = {
    "qshm_compat._fast.PosixLock", sizeof(PosixLock), 0, Py_TPFLAGS_DEFAULT, posix_slots,
};

/* --- Held: a lock's state, as a deque(maxlen=1) of the last outcome ---------------------- */

/* The Python code records a lock's state with `held.extend(calls)` (the call and the store in one
 * C step) and reads it as `held[0]`: 0 (or False: a failed give) means held, anything else
 * (-1, True: given back) means free.  Held is that deque, reduced to what is used, so that the
 * C lock() below can read and write the same state without a Python call. */

typedef struct {
    PyObject_HEAD
    PyObject *last;
} Held;

static PyTypeObject *held_type, *sysv_type, *posix_type, *sysv_attach_type, *posix_attach_type, *lockable_type;
static PyObject *zero, *minus_one, *s_lock, *s_unlock, *s_timeout;

static int held_is_held(PyObject *last)
{
    if (last == zero || last == Py_False)
        return 1;
    if (last == Py_True || last == NULL || !PyLong_Check(last))
        return 0;
    long v = PyLong_AsLong(last);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return v == 0;
}

static void held_set(Held *self, PyObject *value)
{
    PyObject *old = self->last;
    Py_INCREF(value);
    self->last = value;
    Py_XDECREF(old);
}

static PyObject *held_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (!PyArg_ParseTuple(args, ":Held") || (kwds != NULL && PyObject_Length(kwds) > 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Held() takes no arguments");
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    Held *self = (Held *)alloc(type, 0);
    if (self != NULL)
        held_set(self, minus_one);
    return (PyObject *)self;
}

static void held_dealloc(PyObject *op)
{
    Py_CLEAR(((Held *)op)->last);
    free_object(op);
}

static PyObject *held_extend(PyObject *op, PyObject *iterable)
{
    PyObject *it = PyObject_GetIter(iterable), *item;
    if (it == NULL)
        return NULL;
    while ((item = PyIter_Next(it)) != NULL) {
        held_set((Held *)op, item);
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t held_length(PyObject *op)
{
    return 1;
}

static PyObject *held_item(PyObject *op, Py_ssize_t i)
{
    if (i != 0 && i != -1) {
        PyErr_SetString(PyExc_IndexError, "Held index out of range (it keeps one item)");
        return NULL;
    }
    PyObject *last = ((Held *)op)->last;
    Py_INCREF(last);
    return last;
}

static PyObject *held_repr(PyObject *op)
{
    return PyUnicode_FromFormat("Held(%R)", ((Held *)op)->last);
}

static PyMethodDef held_methods[] = {
    {"extend", held_extend, METH_O, "Keep the last item of an iterable (deque(maxlen=1).extend)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot held_slots[] = {
    {Py_tp_doc, "A lock's state: the outcome of its last take or give (a deque of one item)."},
    {Py_tp_new, held_new},
    {Py_tp_dealloc, held_dealloc},
    {Py_tp_methods, held_methods},
    {Py_tp_repr, held_repr},
    {Py_sq_length, held_length},
    {Py_sq_item, held_item},
    {0, NULL},
};

static PyType_Spec held_spec = {
    "qshm_compat._fast.Held", sizeof(Held), 0, Py_TPFLAGS_DEFAULT, held_slots,
};

/* --- Placement: where a detached segment is mapped again ------------------------------------ */

/* The kernel keeps a process's mappings in a tree of address ranges (its maple tree), free ranges
 * included, and where a segment is mapped decides what an attach/detach cycle costs it.  Mapped
 * into the middle of a free range, the segment splits it in two, and the unmap merges them again,
 * rewriting and at times rebalancing the tree's nodes; how often depends on every other mapping
 * of the process (one Python process here: 6.2 to 7.9 us a shmat+shmdt as 1 to 16 small mappings
 * were added).  So a detach keeps the address, and puts a page of its own (PROT_NONE: no memory)
 * on each side of the range that is free; the next attach asks for that address (a hint, never
 * MAP_FIXED) and fills exactly the range between two mappings, which the kernel stores in place:
 * 5.6-5.8 us in that process, whatever else it maps.  Nothing depends on it: a range taken
 * meanwhile means an address elsewhere, and the guards move there. */

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux >= 4.17; older kernels take it as a hint (see guard_at) */
#endif

typedef struct {
    void *last;    /* where the segment was mapped when last detached, or NULL */
    size_t length; /* its length in pages' bytes */
    void *below, *above; /* the guard pages, or NULL */
} Placement;

static size_t page_size(void)
{
    static size_t page;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* A PROT_NONE page of our own at `at`, or NULL: the page is not free (then something is there). */
static void *guard_at(void *at)
{
    void *p = mmap(at, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (p != at) { /* a kernel that took the flag as a hint */
        munmap(p, page_size());
        return NULL;
    }
    return p;
}

static void placement_forget(Placement *p)
{
    if (p->below != NULL)
        munmap(p->below, page_size());
    if (p->above != NULL)
        munmap(p->above, page_size());
    p->last = p->below = p->above = NULL;
    p->length = 0;
}

/* After a detach unmapped `size` bytes at `address`: keep the address, guarded. */
static void placement_keep(Placement *p, void *address, size_t size)
{
    size_t page = page_size(), length = (size + page - 1) / page * page;
    if (p->last == address && p->length == length)
        return;
    placement_forget(p);
    p->last = address;
    p->length = length;
    if ((uintptr_t)address > page)
        p->below = guard_at((char *)address - page);
    p->above = guard_at((char *)address + length);
}

/* Where to ask for a mapping of `size` bytes: the kept address, or NULL (anywhere). */
static void *placement_hint(const Placement *p, size_t size)
{
    size_t page = page_size();
    return p->length == (size + page - 1) / page * page ? p->last : NULL;
}

/* --- Lockable: lock() and unlock() of QSharedMemory, uncontended, in one C call -------------- */

/* QSharedMemory derives from Lockable.  Its Python methods _lock() and _unlock() are the lock's
 * specification (and, with QSHM_PLAIN=1, its only path).  Lockable's lock() and unlock() do the
 * common case in C: when the object has a fast semaphore (`_fastlock`, a SysVLock or PosixLock
 * set by the Python code) and its state (`_held`, a Held) says free, lock() takes it and records
 * it, with no Python frame; unlock() gives it back likewise.  Anything else (a timeout, already
 * held, no semaphore yet, a failed operation) calls the Python method, which retries, re-makes a
 * removed semaphore, warns and sets Qt's errors. */

typedef struct {
    PyObject_HEAD
    PyObject *held;
    PyObject *fastlock;
    /* The state attach() and detach() work on, here so that their one-call path (below, after
     * SysVAttach) reads and writes it without a Python call; the Python code uses the same
     * fields as attributes (_plan, _memory, ...: see lockable_members). */
    PyObject *plan, *plan_attach, *segment, *memory, *addr, *buffer, *retired, *size, *readonly,
        *error, *error_string;
    Placement place; /* where the last one-call detach unmapped the segment (any plan's) */
} Lockable;

static void lockable_dealloc(PyObject *op)
{
    Lockable *self = (Lockable *)op;
    Py_CLEAR(self->held);
    Py_CLEAR(self->fastlock);
    Py_CLEAR(self->plan);
    Py_CLEAR(self->plan_attach);
    Py_CLEAR(self->segment);
    Py_CLEAR(self->memory);
    Py_CLEAR(self->addr);
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->retired);
    Py_CLEAR(self->size);
    Py_CLEAR(self->readonly);
    Py_CLEAR(self->error);
    Py_CLEAR(self->error_string);
    placement_forget(&self->place);
    free_object(op);
}

/* 1: taken and recorded; 0: not done here (take the long way). */
static int lockable_take(Lockable *self, int wait)
{
    PyObject *held = self->held, *lock = self->fastlock;
    int r;
    if (held == NULL || lock == NULL || Py_TYPE(held) != held_type || held_is_held(((Held *)held)->last))
        return 0;
    if (Py_TYPE(lock) == sysv_type) {
        SysVLock *sysv = (SysVLock *)lock;
        r = wait ? sysv_take_raw(sysv) : sysv_op(sysv->semid, -1, IPC_NOWAIT);
        if (r == 0)
            sysv->held = 1;
    }
    else if (Py_TYPE(lock) == posix_type)
        r = posix_take_raw((PosixLock *)lock);
    else
        return 0;
    if (r != 0)
        return 0;
    held_set((Held *)held, zero);
    return 1;
}

static int lockable_give(Lockable *self)
{
    PyObject *held = self->held, *lock = self->fastlock;
    int r;
    if (held == NULL || lock == NULL || Py_TYPE(held) != held_type || !held_is_held(((Held *)held)->last))
        return 0;
    if (Py_TYPE(lock) == sysv_type)
        r = sysv_give_raw((SysVLock *)lock);
    else if (Py_TYPE(lock) == posix_type)
        r = posix_give_raw((PosixLock *)lock);
    else
        return 0;
    if (r != 0)
        return 0;
    held_set((Held *)held, Py_True);
    return 1;
}

static PyObject *call_long_way(PyObject *self, PyObject *name, PyObject *args, PyObject *kwds)
{
    PyObject *method = PyObject_GetAttr(self, name), *result;
    if (method == NULL)
        return NULL;
    result = PyObject_Call(method, args, kwds);
    Py_DECREF(method);
    return result;
}

#if Py_LIMITED_API + 0 >= 0x030A0000
/* The Python method `name` of self, called with a vectorcall's arguments. */
static PyObject *call_long_way_fast(PyObject *op, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames)
{
    PyObject *tuple = PyTuple_New(nargs), *kwds = NULL, *result;
    if (tuple == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SetItem(tuple, i, args[i]);
    }
    if (kwnames != NULL) {
        Py_ssize_t n = PyTuple_Size(kwnames);
        kwds = PyDict_New();
        for (Py_ssize_t i = 0; kwds != NULL && i < n; i++) {
            if (PyDict_SetItem(kwds, PyTuple_GetItem(kwnames, i), args[nargs + i]) < 0)
                Py_CLEAR(kwds);
        }
        if (kwds == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
    }
    result = call_long_way(op, name, tuple, kwds);
    Py_DECREF(tuple);
    Py_XDECREF(kwds);
    return result;
}

/* lock(timeout): None waits in C (System V; POSIX never waits here); a finite number >= 0
 * only takes a free lock here, the long way does any wait, with its timeout.  0: the long way. */
static int lock_timeout(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int *wait)
{
    PyObject *timeout;
    if (nargs + (kwnames == NULL ? 0 : PyTuple_Size(kwnames)) > 1)
        return 0;
    if (kwnames != NULL && PyUnicode_Compare(PyTuple_GetItem(kwnames, 0), s_timeout) != 0) {
        PyErr_Clear();
        return 0;
    }
    timeout = nargs + (kwnames == NULL ? 0 : 1) == 0 ? Py_None : args[0];
    *wait = timeout == Py_None;
    if (*wait)
        return 1;
    if (PyBool_Check(timeout) || !(PyFloat_Check(timeout) || PyLong_Check(timeout)))
        return 0;
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return seconds >= 0.0 && seconds <= 1e300; /* not NaN, not infinite */
}

static PyObject *lockable_lock(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int wait;
    if (lock_timeout(args, nargs, kwnames, &wait) && lockable_take((Lockable *)op, wait))
        Py_RETURN_TRUE;
    return call_long_way_fast(op, s_lock, args, nargs, kwnames);
}
#define LOCK_FLAGS (METH_FASTCALL | METH_KEYWORDS)
#else
static PyObject *lockable_lock(PyObject *op, PyObject *args, PyObject *kwds)
{
    Py_ssize_t nargs = PyTuple_Size(args);
    if ((kwds == NULL || PyObject_Length(kwds) == 0)
        && (nargs == 0 || (nargs == 1 && PyTuple_GetItem(args, 0) == Py_None))
        && lockable_take((Lockable *)op, 1))
        Py_RETURN_TRUE;
    return call_long_way(op, s_lock, args, kwds);
}
#define LOCK_FLAGS (METH_VARARGS | METH_KEYWORDS)
#endif

static PyObject *lockable_unlock(PyObject *op, PyObject *unused)
{
    if (lockable_give((Lockable *)op))
        Py_RETURN_TRUE;
    PyObject *args = PyTuple_New(0), *result;
    if (args == NULL)
        return NULL;
    result = call_long_way(op, s_unlock, args, NULL);
    Py_DECREF(args);
    return result;
}

#if Py_LIMITED_API + 0 >= 0x030B0000
static PyObject *lockable_attach(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
static PyObject *lockable_detach(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
#endif

static PyMethodDef lockable_methods[] = {
    {"lock", (PyCFunction)(void (*)(void))lockable_lock, LOCK_FLAGS,
     "lock(timeout=None): QSharedMemory::lock; with timeout (seconds), False once it runs out.\n\n"
     "An exception raised meanwhile by a signal handler (Ctrl-C) leaves the lock either held,\n"
     "and then unlock() (or close()) gives it back, or free."},
    {"unlock", lockable_unlock, METH_NOARGS,
     "unlock(): QSharedMemory::unlock; False unless this object holds the lock."},
#if Py_LIMITED_API + 0 >= 0x030B0000
    {"attach", (PyCFunction)(void (*)(void))lockable_attach, METH_FASTCALL | METH_KEYWORDS,
     "attach(mode=ReadWrite, *, timeout=None): QSharedMemory::attach, to the segment a Qt\n"
     "program (or we) created; timeout (seconds) bounds the wait for the lock."},
    {"detach", (PyCFunction)(void (*)(void))lockable_detach, METH_FASTCALL | METH_KEYWORDS,
     "detach(*, timeout=None): QSharedMemory::detach; on System V the last one out removes the\n"
     "segment and its key file."},
#endif
    {NULL, NULL, 0, NULL},
};

static PyMemberDef lockable_members[] = {
    {"_held", T_OBJECT_EX, offsetof(Lockable, held), 0, "The lock's state (a Held)."},
    {"_fastlock", T_OBJECT, offsetof(Lockable, fastlock), 0,
     "The semaphore of the fast path (SysVLock or PosixLock), or None."},
    {"_plan", T_OBJECT, offsetof(Lockable, plan), 0, "The one-call attach/detach (a SysVAttach), or None."},
    {"_plan_attach", T_OBJECT, offsetof(Lockable, plan_attach), 0, "The plan may attach (not only detach)."},
    {"_segment", T_OBJECT, offsetof(Lockable, segment), 0, "The OS side (System V or POSIX)."},
    {"_memory", T_OBJECT, offsetof(Lockable, memory), 0, "The mapping (a pointer, or its address), or None."},
    {"_addr", T_OBJECT, offsetof(Lockable, addr), 0, "The mapping's address as an int."},
    {"_buffer", T_OBJECT, offsetof(Lockable, buffer), 0, "What data() makes its views from, or None."},
    {"_retired", T_OBJECT, offsetof(Lockable, retired), 0, "The buffer's retired flag, a list."},
    {"_size", T_OBJECT, offsetof(Lockable, size), 0, "size()."},
    {"_readonly", T_OBJECT, offsetof(Lockable, readonly), 0, "Attached read-only."},
    {"_error", T_OBJECT, offsetof(Lockable, error), 0, "error()."},
    {"_error_string", T_OBJECT, offsetof(Lockable, error_string), 0, "errorString()."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot lockable_slots[] = {
    {Py_tp_doc, "The base of QSharedMemory: lock(), unlock(), attach() and detach() in C (see native/qshm_fast.c)."},
    /* No Py_tp_new: object's own, which (3.11+) gives a Python subclass's instances their
     * attributes inline, so that CPython's specialized loads of them and of methods
     * (LOAD_ATTR_INSTANCE_VALUE, LOAD_METHOD_WITH_VALUES) apply; with PyType_GenericNew every
     * instance got a dictionary, and the slower loads. */
    {Py_tp_dealloc, lockable_dealloc},
    {Py_tp_methods, lockable_methods},
    {Py_tp_members, lockable_members},
    {0, NULL},
};

static PyType_Spec lockable_spec = {
    "qshm_compat._fast.Lockable", sizeof(Lockable), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    lockable_slots,
};

/* --- SysVAttach: attach() and detach() of a System V segment, the usual case, in one call -- */

/* What a QSharedMemory learned from its last attach() the long way, kept so that the next
 * attach() and detach() (Lockable's, below) can do Qt's sequence of system calls in one C call:
 *
 *   attach: [lstat(lock key file): the same file, ours, as when keyed (Qt 5 re-keys its lock on
 *           every attach)] semop(lock -1, undo; and "is 0 now", so a count other than 1 goes the
 *           long way, which repairs it), lstat(segment key file): a regular file of ours, its
 *           ftok key computed as glibc does, shmget, shmctl(IPC_STAT): a segment of ours, shmat,
 *           semop(lock +1).
 *   detach: semop(lock -1, undo, no wait), shmdt, shmget + shmctl(IPC_STAT): still attached
 *           elsewhere, semop(lock +1); or the last one out: shmctl(IPC_RMID), unlink(segment
 *           key file), and the lock with its key file (what the long way's _remove_lock does).
 *
 * The segment id that shmget(key) gave last time is kept, and the shmget is left out while
 * shmctl(IPC_STAT) of that id shows the same key: a segment not marked for removal is the only
 * one with its key, so shmget(key) would give that id again (in attach, shmat then checks the
 * access that shmget's mode would have; a refusal goes the long way).  Any other answer (gone,
 * removed, another key) does the shmget, as Qt does.
 *
 * Anything else (the lock taken by someone, a file or segment changed or gone, an error) undoes
 * what this call did and returns 0 (plan_attach) or -1 (plan_detach) before anything is changed
 * for anyone else: the caller then takes the long way, which waits, re-keys and sets Qt's errors.
 * No Python code runs inside, so a signal handler cannot come between the lock's take and give.
 * semid -1: a key without a lock (Qt 5's native keys). */

typedef struct {
    PyObject_HEAD
    PyObject *lock_file; /* bytes, or NULL: no lock */
    int recheck;         /* attach checks the lock's key file (Qt 5 re-keys its lock on attach) */
    dev_t lock_dev;
    ino_t lock_ino;
    int semid;
    PyObject *seg_file; /* bytes */
    int project_id;
    uid_t euid;
    int shmid; /* what shmget(key) gave last, or -1 */
    PyObject *tmp; /* bytes or NULL: $TMPDIR when the lock's name was made (a lock only) */
    int keep_lock; /* the lock is the object's own: the last one out leaves it to its close() */
} SysVAttach;

static int sysv_attach_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    SysVAttach *self = (SysVAttach *)op;
    PyObject *lock_file, *seg_file, *tmp;
    unsigned long long dev, ino;
    int semid, project_id, recheck, keep_lock = 0;
    unsigned int euid;
    if (kwds != NULL && PyObject_Length(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "SysVAttach() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OKKiSiIpO|p", &lock_file, &dev, &ino, &semid, &seg_file, &project_id, &euid, &recheck,
                          &tmp, &keep_lock))
        return -1;
    if ((lock_file != Py_None && !PyBytes_Check(lock_file)) || (tmp != Py_None && !PyBytes_Check(tmp))) {
        PyErr_SetString(PyExc_TypeError, "SysVAttach(): the lock key file and $TMPDIR are bytes or None");
        return -1;
    }
    PyObject *old_tmp = self->tmp;
    self->tmp = tmp == Py_None ? NULL : tmp;
    Py_XINCREF(self->tmp);
    Py_XDECREF(old_tmp);
    PyObject *old_lock = self->lock_file, *old_seg = self->seg_file;
    if (lock_file != Py_None)
        Py_INCREF(lock_file);
    self->lock_file = lock_file == Py_None ? NULL : lock_file;
    Py_INCREF(seg_file);
    self->seg_file = seg_file;
    Py_XDECREF(old_lock);
    Py_XDECREF(old_seg);
    self->lock_dev = (dev_t)dev;
    self->lock_ino = (ino_t)ino;
    self->semid = semid;
    self->project_id = project_id;
    self->euid = (uid_t)euid;
    self->recheck = recheck && lock_file != Py_None;
    self->keep_lock = keep_lock && lock_file != Py_None;
    self->shmid = -1;
    return 0;
}

static void sysv_attach_dealloc(PyObject *op)
{
    Py_CLEAR(((SysVAttach *)op)->lock_file);
    Py_CLEAR(((SysVAttach *)op)->seg_file);
    Py_CLEAR(((SysVAttach *)op)->tmp);
    free_object(op);
}

static int lock_try(int semid)
{
    struct sembuf ops[2];
    ops[0].sem_num = 0;
    ops[0].sem_op = -1;
    ops[0].sem_flg = SEM_UNDO | IPC_NOWAIT;
    ops[1].sem_num = 0;
    ops[1].sem_op = 0; /* and the count is 0 now: it was exactly 1 */
    ops[1].sem_flg = IPC_NOWAIT;
    return semid == -1 ? 0 : semop(semid, ops, 2);
}

static int lock_give(int semid)
{
    return semid == -1 ? 0 : sysv_op(semid, 1, 0);
}

/* glibc's ftok() of a file, from its stat. */
static key_t ftok_of(const struct stat *st, int project_id)
{
    return (key_t)((st->st_ino & 0xffff) | ((st->st_dev & 0xff) << 16) | ((unsigned)(project_id & 0xff) << 24));
}

/* The id shmget(key, 0, mode) would give now, with the segment's shmid_ds in `ds` (-1: none,
 * errno set by shmget or shmctl).  The kept id is used when it still carries the key (see above). */
static int segment_of_key(SysVAttach *self, key_t key, int mode, struct shmid_ds *ds)
{
#ifdef __GLIBC__
    if (self->shmid != -1 && shmctl(self->shmid, IPC_STAT, ds) == 0 && ds->shm_perm.__key == key && key != IPC_PRIVATE)
        return self->shmid;
#endif
    int shmid = shmget(key, 0, mode);
    if (shmid == -1 || shmctl(shmid, IPC_STAT, ds) != 0)
        return -1;
    self->shmid = shmid;
    return shmid;
}

/* Whether the lock's name would still be made from the same $TMPDIR (the C environment, which
 * os.environ writes through to: a difference only ever sends a call the long way). */
static int same_tmpdir(SysVAttach *self)
{
    if (self->lock_file == NULL)
        return 1;
    const char *now = getenv("TMPDIR");
    if (self->tmp == NULL || now == NULL)
        return self->tmp == NULL && now == NULL;
    return strcmp(now, PyBytes_AsString(self->tmp)) == 0;
}

/* Qt's attach: 1 attached (address, size and ftok key set); 0 nothing done: the long way. */
static int plan_attach(SysVAttach *self, Placement *place, int readonly, void **address, size_t *size, key_t *key)
{
    struct stat st;
    struct shmid_ds ds;
    if (!same_tmpdir(self))
        return 0;
    if (self->recheck) {
        if (lstat(PyBytes_AsString(self->lock_file), &st) != 0 || !S_ISREG(st.st_mode)
            || st.st_dev != self->lock_dev || st.st_ino != self->lock_ino || st.st_uid != self->euid)
            return 0;
    }
    if (lock_try(self->semid) != 0)
        return 0;
    int done = 0;
    if (lstat(PyBytes_AsString(self->seg_file), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == self->euid) {
        *key = ftok_of(&st, self->project_id);
        int shmid = segment_of_key(self, *key, readonly ? 0400 : 0600, &ds);
        if (shmid != -1 && ds.shm_perm.uid == self->euid) {
            /* Where the last detach left (see Placement; if still free: EINVAL if not). */
            int flags = readonly ? SHM_RDONLY : 0;
            void *hint = placement_hint(place, (size_t)ds.shm_segsz);
            *address = hint == NULL ? (void *)-1 : shmat(shmid, hint, flags);
            if (*address == (void *)-1)
                *address = shmat(shmid, NULL, flags);
            *size = (size_t)ds.shm_segsz;
            done = *address != (void *)-1;
        }
    }
    lock_give(self->semid); /* fails only for a semaphore removed under us: nothing held then */
    return done;
}

/* detach(address, key, held): 1 detached (others still attached, or the segment is gone);
 * 2 detached, but the segment could not be looked at (the long way's detach() then returns
 * False too); 3 / 4 detached as the last one out, which removed the segment, its key file (4:
 * the key file was not there any more, so detach() returns False, as the long way's does) and
 * the lock (its key file first, if still the one it was keyed from); 5 / 6 the same, but the
 * lock is the object's own (keep_lock) and stays, given back, as Qt's owner keeps it until it
 * goes; 0 detached as the last one
 * out, but the segment could not be removed: the lock is held (recorded in `held`) for the long
 * way to go on; -1 nothing done: take the long way. */
static int plan_detach(SysVAttach *self, Placement *place, void *address, size_t size, key_t key, Held *held)
{
    struct shmid_ds ds;
    struct stat st;
    if (held_is_held(held->last))
        return -1;
    if (self->semid != -1 && sysv_op(self->semid, -1, IPC_NOWAIT) != 0)
        return -1;
    if (shmdt(address) != 0) {
        lock_give(self->semid);
        return -1;
    }
    placement_keep(place, address, size);
    int shmid = segment_of_key(self, key, 0400, &ds), done = 1;
    if (shmid == -1)
        done = (errno == EINVAL || errno == ENOENT) ? 1 : 2;
    else if (ds.shm_nattch == 0) {
        /* The last one out: remove the segment and its key file, then the lock, under it. */
        if (shmctl(shmid, IPC_RMID, NULL) != 0 && errno != EINVAL) {
            if (self->semid != -1)
                held_set(held, zero);
            return 0;
        }
        done = unlink(PyBytes_AsString(self->seg_file)) == 0 ? 3 : 4;
        if (self->semid == -1)
            return done;
        if (self->keep_lock) {
            lock_give(self->semid);
            return done + 2;
        }
        const char *lock_file = PyBytes_AsString(self->lock_file);
        if (lstat(lock_file, &st) == 0 && st.st_dev == self->lock_dev && st.st_ino == self->lock_ino)
            unlink(lock_file);
        semctl(self->semid, 0, IPC_RMID); /* nothing is held any more */
        self->semid = -1;
        return done;
    }
    lock_give(self->semid);
    return done;
}

static PyType_Slot sysv_attach_slots[] = {
    {Py_tp_doc, "SysVAttach(lock_file or None, dev, ino, semid, segment_file, project_id, euid, recheck, tmpdir):\n"
                "the plan of Lockable.attach() and detach()."},
    {Py_tp_init, sysv_attach_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, sysv_attach_dealloc},
    {0, NULL},
};

static PyType_Spec sysv_attach_spec = {
    "qshm_compat._fast.SysVAttach", sizeof(SysVAttach), 0, Py_TPFLAGS_DEFAULT, sysv_attach_slots,
};

/* --- PosixAttach: attach() and detach() of a POSIX segment (Qt >= 6.6), in one call ------- */

/* The plan of a POSIX key, learned like SysVAttach's.  Qt's sequence, as the long way does it:
 *   attach: [sem_trywait(lock)], shm_open(name, O_RDONLY or O_RDWR, 0400 or 0600), fstat: ours,
 *           of a size > 0, mmap(MAP_SHARED) (the descriptor stays open until detach, as Qt's),
 *           [sem_post(lock)];
 *   detach: [sem_trywait(lock)], munmap, close, [sem_post(lock)]; Qt never unlinks on Linux.
 * The lock is the object's fast semaphore at the time of the call (Lockable's _fastlock, a
 * PosixLock), never one kept here: the long way may re-open it.  Anything else, or a lock held
 * by someone (its wait may have to recover it), goes the long way, before anything changed. */

typedef struct {
    PyObject_HEAD
    PyObject *name; /* bytes: shm_open's name */
    int locks;      /* create/attach/detach take the lock (any Qt 6.6 key that is not empty) */
    uid_t euid;
} PosixAttach;

static int posix_attach_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    PosixAttach *self = (PosixAttach *)op;
    PyObject *name;
    int locks;
    unsigned int euid;
    if (kwds != NULL && PyObject_Length(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "PosixAttach() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "SpI", &name, &locks, &euid))
        return -1;
    PyObject *old = self->name;
    Py_INCREF(name);
    self->name = name;
    Py_XDECREF(old);
    self->locks = locks;
    self->euid = (uid_t)euid;
    return 0;
}

static void posix_attach_dealloc(PyObject *op)
{
    Py_CLEAR(((PosixAttach *)op)->name);
    free_object(op);
}

static PyType_Slot posix_attach_slots[] = {
    {Py_tp_doc, "PosixAttach(name, locks, euid): the plan of Lockable.attach() and detach() on POSIX."},
    {Py_tp_init, posix_attach_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, posix_attach_dealloc},
    {0, NULL},
};

static PyType_Spec posix_attach_spec = {
    "qshm_compat._fast.PosixAttach", sizeof(PosixAttach), 0, Py_TPFLAGS_DEFAULT, posix_attach_slots,
};

/* The lock of a call: 1 taken (*lock set, or NULL for a key without one), 0 not (the long way). */
static int posix_plan_lock(PosixAttach *self, PyObject *fastlock, PosixLock **lock)
{
    *lock = NULL;
    if (!self->locks)
        return 1;
    if (fastlock == NULL || Py_TYPE(fastlock) != posix_type || posix_take_raw((PosixLock *)fastlock) != 0)
        return 0;
    *lock = (PosixLock *)fastlock;
    return 1;
}

/* Qt's attach: 1 attached (address, size and descriptor set); 0 nothing done: the long way. */
static int posix_plan_attach(PosixAttach *self, PyObject *fastlock, Placement *place, int readonly, void **address,
                             size_t *size, int *fd)
{
    PosixLock *lock;
    struct stat st;
    if (!posix_plan_lock(self, fastlock, &lock))
        return 0;
    int done = 0;
    *fd = shm_open(PyBytes_AsString(self->name), (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, readonly ? 0400 : 0600);
    if (*fd != -1) {
        if (fstat(*fd, &st) == 0 && st.st_uid == self->euid && st.st_size > 0) {
            /* where the last detach left, if still free (a hint: elsewhere if not; see Placement) */
            *address = mmap(placement_hint(place, (size_t)st.st_size), (size_t)st.st_size,
                            readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
            *size = (size_t)st.st_size;
            done = *address != MAP_FAILED;
        }
        if (!done)
            close(*fd);
    }
    if (lock != NULL)
        posix_give_raw(lock);
    return done;
}

/* Qt's detach: 1 detached; 0 nothing done: the long way. */
static int posix_plan_detach(PosixAttach *self, PyObject *fastlock, Placement *place, void *address, size_t size,
                             int fd)
{
    PosixLock *lock;
    if (!posix_plan_lock(self, fastlock, &lock))
        return 0;
    int done = munmap(address, size) == 0;
    if (done)
        placement_keep(place, address, size);
    if (done && fd != -1)
        close(fd);
    if (lock != NULL)
        posix_give_raw(lock);
    return done;
}

/* --- Mapping: the buffer over a mapped segment ---------------------------------------- */

/* What data() makes its memoryviews from: `size` bytes at `address`, no copy.  The owner unmaps
 * the segment itself; when views outlive that, the owner first swaps the mapping for private
 * pages (MAP_FIXED, _memory.retire) and sets retired[0] = True, and those pages are freed here,
 * with the last view.  The buffer protocol is in the limited API from 3.11; before, _memory.py
 * makes the same object with cffi. */

#if Py_LIMITED_API + 0 >= 0x030B0000

typedef struct {
    PyObject_HEAD
    void *address;
    Py_ssize_t size;
    PyObject *retired; /* a list: [False], [True] once retired */
} Mapping;

static int mapping_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    Mapping *self = (Mapping *)op;
    unsigned long long address;
    Py_ssize_t size;
    PyObject *retired;
    if (kwds != NULL && PyObject_Length(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "Mapping() takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "KnO!", &address, &size, &PyList_Type, &retired))
        return -1;
    if (self->retired != NULL || size < 0) {
        PyErr_SetString(PyExc_ValueError, "Mapping(): made once, of a size >= 0");
        return -1;
    }
    Py_INCREF(retired);
    self->retired = retired;
    self->address = (void *)(uintptr_t)address;
    self->size = size;
    return 0;
}

static void mapping_dealloc(PyObject *op)
{
    Mapping *self = (Mapping *)op;
    if (self->retired != NULL && PyList_Size(self->retired) > 0 && PyList_GetItem(self->retired, 0) == Py_True) {
        long page = sysconf(_SC_PAGESIZE);
        Py_ssize_t length = self->size > 0 ? (self->size + page - 1) / page * page : page;
        munmap(self->address, (size_t)length);
    }
    PyErr_Clear();
    Py_CLEAR(self->retired);
    free_object(op);
}

static int mapping_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    Mapping *self = (Mapping *)op;
    if (self->retired == NULL) {
        PyErr_SetString(PyExc_ValueError, "Mapping: not initialised");
        return -1;
    }
    return PyBuffer_FillInfo(view, op, self->address, self->size, 0, flags);
}

static Py_ssize_t mapping_length(PyObject *op)
{
    return ((Mapping *)op)->size;
}

static PyType_Slot mapping_slots[] = {
    {Py_tp_doc, "Mapping(address, size, retired): a buffer over a mapped segment."},
    {Py_tp_init, mapping_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, mapping_dealloc},
    {Py_bf_getbuffer, mapping_getbuffer},
    {Py_sq_length, mapping_length},
    {0, NULL},
};

static PyType_Spec mapping_spec = {
    "qshm_compat._fast.Mapping", sizeof(Mapping), 0, Py_TPFLAGS_DEFAULT, mapping_slots,
};

static PyTypeObject *mapping_type;

/* A Mapping over size bytes at address, with its retired flag [False] (a new reference in
 * *retired), or NULL with an exception set. */
static PyObject *new_mapping(void *address, size_t size, PyObject **retired)
{
    *retired = PyList_New(1);
    if (*retired == NULL)
        return NULL;
    Py_INCREF(Py_False);
    PyList_SetItem(*retired, 0, Py_False);
    allocfunc alloc = (allocfunc)PyType_GetSlot(mapping_type, Py_tp_alloc);
    Mapping *mapping = (Mapping *)alloc(mapping_type, 0);
    if (mapping == NULL) {
        Py_CLEAR(*retired);
        return NULL;
    }
    mapping->address = address;
    mapping->size = (Py_ssize_t)size;
    Py_INCREF(*retired);
    mapping->retired = *retired;
    return (PyObject *)mapping;
}

/* --- Lockable.attach() and detach(): the plan's one call, and what it changes --------------- */

/* attach() and detach() of QSharedMemory when it has a plan (a SysVAttach) and the call is the
 * usual one: the plan's system calls (plan_attach/plan_detach above), then the same fields set
 * as the Python code sets them (_memory, _buffer, ..., and its segment's unix_key).  Anything
 * else calls the Python _attach()/_detach(), the long way, which is the specification. */

static PyObject *s_attach, *s_detach, *s_unix_key, *s_fd, *s_removed, *s_detach_last_one, *s_lock_removed,
    *s_no_error, *empty_str, *no_error;

/* Only the keyword timeout=None (or none at all). */
static int no_timeout(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames == NULL)
        return 1;
    return PyTuple_Size(kwnames) == 1 && args[nargs] == Py_None
        && PyUnicode_Compare(PyTuple_GetItem(kwnames, 0), s_timeout) == 0;
}

/* The int attribute `name` of the segment handle (1), or 0: not an int (the long way will tell). */
static int segment_long(Lockable *self, PyObject *name, long *value)
{
    PyObject *v = self->segment == NULL ? NULL : PyObject_GetAttr(self->segment, name);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    *value = PyLong_AsLong(v);
    Py_DECREF(v);
    if (*value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* *field = value, stealing the reference to value. */
static void set_field(PyObject **field, PyObject *value)
{
    PyObject *old = *field;
    *field = value;
    Py_XDECREF(old);
}

/* The plan's kind (sysv_attach_type or posix_attach_type), with the name of the segment
 * handle's attribute that says what it holds (System V: unix_key, 0 when clean; POSIX: fd, -1
 * when closed); NULL: no plan, or the lock is held by this object (the long way warns and goes
 * on without taking it). */
static PyTypeObject *plan_kind(Lockable *self, PyObject **handle_name, long *clean)
{
    if (self->plan == NULL || self->held == NULL || Py_TYPE(self->held) != held_type
        || held_is_held(((Held *)self->held)->last))
        return NULL;
    PyTypeObject *kind = Py_TYPE(self->plan);
    if (kind == sysv_attach_type) {
        *handle_name = s_unix_key;
        *clean = 0;
        return kind;
    }
    if (kind == posix_attach_type) {
        *handle_name = s_fd;
        *clean = -1;
        return kind;
    }
    return NULL;
}

static PyObject *lockable_attach(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Lockable *self = (Lockable *)op;
    int readonly = 0;
    long handle;
    PyObject *handle_name;
    long clean;
    if (nargs == 1 && PyLong_Check(args[0])) { /* AccessMode is an IntEnum: ReadOnly 0, ReadWrite 1 */
        long mode = PyLong_AsLong(args[0]);
        if (mode != 0 && mode != 1) {
            PyErr_Clear();
            goto long_way;
        }
        readonly = mode == 0;
    }
    else if (nargs != 0)
        goto long_way;
    PyTypeObject *kind = plan_kind(self, &handle_name, &clean);
    if (kind == NULL || !no_timeout(args, nargs, kwnames) || self->memory != Py_None || self->plan_attach != Py_True
        || !segment_long(self, handle_name, &handle) || handle != clean)
        goto long_way;
    if (no_error == NULL && (no_error = PyObject_GetAttr((PyObject *)Py_TYPE(op), s_no_error)) == NULL)
        return NULL;
    void *address;
    size_t size;
    if (kind == sysv_attach_type) {
        key_t key;
        if (!plan_attach((SysVAttach *)self->plan, &self->place, readonly, &address, &size, &key))
            goto long_way;
        handle = (long)key;
    }
    else {
        int fd;
        if (!posix_plan_attach((PosixAttach *)self->plan, self->fastlock, &self->place, readonly, &address, &size,
                               &fd))
            goto long_way;
        handle = fd;
    }
    PyObject *addr = PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)address);
    PyObject *size_obj = PyLong_FromSize_t(size), *handle_obj = PyLong_FromLong(handle);
    PyObject *retired = NULL, *buffer = addr == NULL ? NULL : new_mapping(address, size, &retired);
    if (buffer == NULL || size_obj == NULL || handle_obj == NULL
        || PyObject_SetAttr(self->segment, handle_name, handle_obj) < 0) {
        /* nothing recorded yet: as if never attached */
        if (kind == sysv_attach_type)
            shmdt(address);
        else {
            munmap(address, size);
            close((int)handle);
        }
        Py_XDECREF(addr);
        Py_XDECREF(size_obj);
        Py_XDECREF(handle_obj);
        Py_XDECREF(retired);
        Py_XDECREF(buffer);
        return NULL;
    }
    Py_DECREF(handle_obj);
    Py_INCREF(addr);
    set_field(&self->memory, addr);
    set_field(&self->addr, addr);
    set_field(&self->buffer, buffer);
    set_field(&self->retired, retired);
    set_field(&self->size, size_obj);
    Py_INCREF(readonly ? Py_True : Py_False);
    set_field(&self->readonly, readonly ? Py_True : Py_False);
    Py_INCREF(no_error);
    set_field(&self->error, no_error);
    Py_INCREF(empty_str);
    set_field(&self->error_string, empty_str);
    Py_RETURN_TRUE;
long_way:
    return call_long_way_fast(op, s_attach, args, nargs, kwnames);
}

static PyObject *lockable_detach(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Lockable *self = (Lockable *)op;
    long handle;
    PyObject *handle_name;
    long clean;
    PyTypeObject *kind = plan_kind(self, &handle_name, &clean);
    /* A buffer held by nobody else: no view is left that would need the mapping retired. */
    if (kind == NULL || nargs != 0 || !no_timeout(args, nargs, kwnames) || self->memory == NULL
        || self->memory == Py_None || self->buffer == NULL || Py_REFCNT(self->buffer) != 1 || self->addr == NULL
        || !PyLong_Check(self->addr) || self->size == NULL || !PyLong_Check(self->size)
        || !segment_long(self, handle_name, &handle))
        goto long_way;
    unsigned long long address = PyLong_AsUnsignedLongLong(self->addr);
    size_t size = PyLong_AsSize_t(self->size);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        goto long_way;
    }
    int done;
    if (kind == sysv_attach_type)
        done = plan_detach((SysVAttach *)self->plan, &self->place, (void *)(uintptr_t)address, size, (key_t)handle,
                           (Held *)self->held);
    else
        done = posix_plan_detach((PosixAttach *)self->plan, self->fastlock, &self->place, (void *)(uintptr_t)address,
                                 size, (int)handle) ? 1 : -1;
    if (done < 0)
        goto long_way;
    Py_INCREF(Py_None);
    set_field(&self->buffer, Py_None);
    Py_INCREF(Py_None);
    set_field(&self->memory, Py_None);
    Py_INCREF(zero);
    set_field(&self->size, zero);
    if (done == 0) /* the last one out, under the lock: the removal, the long way */
        return PyObject_CallMethodObjArgs(op, s_detach_last_one, NULL);
    if (PyObject_SetAttr(self->segment, handle_name, kind == sysv_attach_type ? zero : minus_one) < 0)
        return NULL;
    if (done >= 3) { /* the segment and its key file are gone, and the lock (3, 4) */
        PyObject *r;
        if (PyObject_SetAttr(self->segment, s_removed, Py_True) < 0)
            return NULL;
        if (done <= 4) {
            if ((r = PyObject_CallMethodObjArgs(op, s_lock_removed, NULL)) == NULL)
                return NULL;
            Py_DECREF(r);
        }
    }
    return PyBool_FromLong(done == 1 || done == 3 || done == 5);
long_way:
    return call_long_way_fast(op, s_detach, args, nargs, kwnames);
}
#endif

/* --- sysv_create: create() of a System V segment under its owner's lock, in one call -------- */

/* Under the lock: the segment key file (O_EXCL), its ftok key, shmget(IPC_CREAT | IPC_EXCL),
 * shmat, shmctl(IPC_STAT), as Qt's create() and attach() (which does its shmget again).  0 done;
 * -1 failed, and what it made is removed again. */
static int make_segment(const char *seg_file, size_t size, int project, void *hint, void **addr, struct shmid_ds *ds,
                        key_t *seg_key)
{
    struct stat st;
    int fd = open(seg_file, O_EXCL | O_CREAT | O_RDWR | O_CLOEXEC, 0640);
    if (fd == -1)
        return -1;
    if (fstat(fd, &st) != 0) {
        close(fd);
        unlink(seg_file);
        return -1;
    }
    close(fd);
    *seg_key = ftok_of(&st, project);
    int shmid = shmget(*seg_key, size, 0600 | IPC_CREAT | IPC_EXCL);
    if (shmid == -1) {
        unlink(seg_file);
        return -1;
    }
    *addr = hint == NULL ? (void *)-1 : shmat(shmid, hint, 0); /* see Placement */
    if (*addr == (void *)-1)
        *addr = shmat(shmid, NULL, 0);
    if (*addr == (void *)-1) {
        shmctl(shmid, IPC_RMID, NULL);
        unlink(seg_file);
        return -1;
    }
    if (shmctl(shmid, IPC_STAT, ds) != 0) {
        shmdt(*addr);
        shmctl(shmid, IPC_RMID, NULL);
        unlink(seg_file);
        return -1;
    }
    return 0;
}

/* sysv_create(lock_file, dev, ino, semid, segment_file, size, segment_project[, owner]): create() by
 * the owner of a lock that is still there (Qt's owner keeps its lock after its last detach):
 * lstat(lock key file): still the file the lock was keyed from, lstat(segment key file): none,
 * semop(lock -1, undo; and "is 0 now"), make_segment, semop(lock +1).  Qt's create() removes
 * that lock and makes a new one of the same name (and count); ours stays, so a process holding
 * it keeps its exclusion, and the cycle makes one key file, not two.  (address, size, segment
 * key), or None: nothing was done (the lock held by someone, a file changed, any error); the
 * long way does it all. */
static PyObject *fast_sysv_create(PyObject *module, PyObject *args)
{
    const char *lock_file, *seg_file;
    unsigned long long dev, ino;
    int semid, seg_project;
    Py_ssize_t size;
    struct stat st;
    struct shmid_ds ds;
    PyObject *owner = NULL;
    if (!PyArg_ParseTuple(args, "yKKiyni|O", &lock_file, &dev, &ino, &semid, &seg_file, &size, &seg_project, &owner))
        return NULL;
    /* the QSharedMemory: the segment goes where its last one-call detach left (see Placement) */
    void *hint = owner != NULL && PyObject_TypeCheck(owner, lockable_type)
        ? placement_hint(&((Lockable *)owner)->place, (size_t)size) : NULL;
    if (size <= 0 || lstat(lock_file, &st) != 0 || st.st_dev != (dev_t)dev || st.st_ino != (ino_t)ino)
        Py_RETURN_NONE;
    if (lstat(seg_file, &st) == 0 || errno != ENOENT || lock_try(semid) != 0)
        Py_RETURN_NONE;
    void *addr;
    key_t seg_key;
    int made = make_segment(seg_file, (size_t)size, seg_project, hint, &addr, &ds, &seg_key);
    lock_give(semid);
    if (made != 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(KKi)", (unsigned long long)(uintptr_t)addr, (unsigned long long)ds.shm_segsz, (int)seg_key);
}

/* bind_methods(cls): give cls, a subclass of Lockable, descriptors of Lockable's C methods of
 * its own.  CPython's specialized calls of a C method (3.11: PRECALL_*_METHOD_DESCRIPTOR_*) take
 * their fast path only when the object's type is exactly the method's class, so on a subclass
 * every lock()/unlock()/attach()/detach() took the generic, slower call. */
static PyObject *fast_bind_methods(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, lockable_type)) {
        PyErr_SetString(PyExc_TypeError, "bind_methods() takes a subclass of Lockable");
        return NULL;
    }
    for (PyMethodDef *def = lockable_methods; def->ml_name != NULL; def++) {
        PyObject *descr = PyDescr_NewMethod((PyTypeObject *)cls, def);
        if (descr == NULL || PyObject_SetAttrString(cls, def->ml_name, descr) < 0) {
            Py_XDECREF(descr);
            return NULL;
        }
        Py_DECREF(descr);
    }
    Py_RETURN_NONE;
}

static PyMethodDef fast_functions[] = {
    {"bind_methods", fast_bind_methods, METH_O,
     "bind_methods(cls): cls's own descriptors of Lockable's C methods (see qshm_fast.c)."},
    {"sysv_create", fast_sysv_create, METH_VARARGS,
     "sysv_create(lock_file, dev, ino, semid, segment_file, size, segment_project, owner=None): see qshm_fast.c."},
    {NULL, NULL, 0, NULL},
};

/* --- module ------------------------------------------------------------------------------ */

static int add_type(PyObject *module, const char *name, PyType_Spec *spec, PyTypeObject **out)
{
    PyObject *t = PyType_FromSpec(spec);
    if (t == NULL)
        return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(module, name, t) < 0) {
        Py_DECREF(t);
        Py_DECREF(t);
        return -1;
    }
    if (out != NULL)
        *out = (PyTypeObject *)t; /* the module keeps it; this reference makes it immortal here */
    else
        Py_DECREF(t);
    return 0;
}

static int fast_exec(PyObject *module)
{
    zero = PyLong_FromLong(0);
    minus_one = PyLong_FromLong(-1);
    s_lock = PyUnicode_InternFromString("_lock");
    s_unlock = PyUnicode_InternFromString("_unlock");
    s_timeout = PyUnicode_InternFromString("timeout");
    if (zero == NULL || minus_one == NULL || s_lock == NULL || s_unlock == NULL || s_timeout == NULL)
        return -1;
#if Py_LIMITED_API + 0 >= 0x030B0000
    s_attach = PyUnicode_InternFromString("_attach");
    s_detach = PyUnicode_InternFromString("_detach");
    s_unix_key = PyUnicode_InternFromString("unix_key");
    s_fd = PyUnicode_InternFromString("fd");
    s_removed = PyUnicode_InternFromString("removed");
    s_detach_last_one = PyUnicode_InternFromString("_detach_last_one");
    s_lock_removed = PyUnicode_InternFromString("_lock_removed");
    s_no_error = PyUnicode_InternFromString("NoError");
    empty_str = PyUnicode_FromString("");
    if (s_attach == NULL || s_detach == NULL || s_unix_key == NULL || s_fd == NULL || s_removed == NULL || s_detach_last_one == NULL
        || s_lock_removed == NULL || s_no_error == NULL || empty_str == NULL)
        return -1;
#endif
    if (add_type(module, "SysVLock", &sysv_spec, &sysv_type) < 0
        || add_type(module, "PosixLock", &posix_spec, &posix_type) < 0
        || add_type(module, "Held", &held_spec, &held_type) < 0
        || add_type(module, "Lockable", &lockable_spec, &lockable_type) < 0
        || add_type(module, "SysVAttach", &sysv_attach_spec, &sysv_attach_type) < 0
        || add_type(module, "PosixAttach", &posix_attach_spec, &posix_attach_type) < 0)
        return -1;
#if Py_LIMITED_API + 0 >= 0x030B0000
    if (add_type(module, "Mapping", &mapping_spec, &mapping_type) < 0)
        return -1;
#endif
    return 0;
}

static PyModuleDef_Slot fast_slots[] = {
    {Py_mod_exec, fast_exec},
    {0, NULL},
};

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "qshm_compat._fast",
    "The lock's uncontended fast path in C (limited API); see native/qshm_fast.c.",
    0, fast_functions, fast_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    return PyModuleDef_Init(&fast_module);
}
