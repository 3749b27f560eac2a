/* qshm_compat._fast: the lock's uncontended fast path as two small C types.
 *
 * Written against Python's limited API (abi3), so the module ships in the same wheel for every
 * Python >= 3.9.  cffi stays the binding for everything else; these types exist because one
 * call of a method of a C type costs a fraction of a cffi call, and a lock()+unlock() pair is
 * nothing but two such calls around two semaphore operations.
 *
 * SysVLock(semid): take()/give() are one semop(-1 / +1, SEM_UNDO) on semaphore 0.
 * PosixLock(address of a sem_t): take()/give() are sem_trywait/sem_wait and sem_post.
 *
 * Both return 0 when the operation was done and -1 when it was not (errno tells why), exactly
 * like the cffi shims they replace: the caller then takes the long way (which retries EINTR,
 * re-makes a removed semaphore and sets Qt's errors).  `held` is set and cleared in the same C
 * call as the operation that took or gave the semaphore, with no Python code in between, so an
 * exception raised by a signal handler cannot leave the two out of step.  take() waits with the
 * GIL released when the semaphore is taken by someone else; an EINTR returns -1 (not taken) so
 * that the caller runs the signal handlers and retries.  acquire(timeout) is the timed wait
 * (semtimedop / sem_timedwait), retrying EINTR after running the signal handlers: True when
 * taken, False when the timeout ran out; OSError for anything else.
 */
#define _GNU_SOURCE 1
#define Py_LIMITED_API 0x03090000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/types.h>
#include <time.h>

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

static PyObject *sysv_take(PyObject *op, PyObject *unused)
{
    SysVLock *self = (SysVLock *)op;
    int r = sysv_op(self->semid, -1, IPC_NOWAIT);
    if (r == -1 && errno == EAGAIN) {
        Py_BEGIN_ALLOW_THREADS
        r = sysv_op(self->semid, -1, 0);
        Py_END_ALLOW_THREADS
    }
    if (r == 0)
        self->held = 1;
    return PyLong_FromLong(r);
}

static PyObject *sysv_give(PyObject *op, PyObject *unused)
{
    SysVLock *self = (SysVLock *)op;
    int r = sysv_op(self->semid, 1, 0);
    if (r == 0)
        self->held = 0;
    return PyLong_FromLong(r);
}

static PyObject *sysv_acquire(PyObject *op, PyObject *arg)
{
    SysVLock *self = (SysVLock *)op;
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    if (timeout < 0)
        timeout = 0;
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

static PyObject *posix_take(PyObject *op, PyObject *unused)
{
    PosixLock *self = (PosixLock *)op;
    int r;
    if (self->sem == NULL) {
        errno = EINVAL;
        return PyLong_FromLong(-1);
    }
    r = sem_trywait(self->sem);
    if (r == -1 && errno == EAGAIN) {
        sem_t *sem = self->sem;
        Py_BEGIN_ALLOW_THREADS
        r = sem_wait(sem);
        Py_END_ALLOW_THREADS
    }
    if (r == 0)
        self->held = 1;
    return PyLong_FromLong(r);
}

static PyObject *posix_give(PyObject *op, PyObject *unused)
{
    PosixLock *self = (PosixLock *)op;
    int r;
    if (self->sem == NULL) {
        errno = EINVAL;
        return PyLong_FromLong(-1);
    }
    r = sem_post(self->sem);
    if (r == 0)
        self->held = 0;
    return PyLong_FromLong(r);
}

static PyObject *posix_acquire(PyObject *op, PyObject *arg)
{
    PosixLock *self = (PosixLock *)op;
    double timeout = PyFloat_AsDouble(arg);
    if (timeout == -1.0 && PyErr_Occurred())
        return NULL;
    if (self->sem == NULL) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (timeout < 0)
        timeout = 0;
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
    {"take", posix_take, METH_NOARGS, "sem_trywait, else sem_wait: 0 when taken, -1 when not."},
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

/* --- module ------------------------------------------------------------------------------ */

static int fast_exec(PyObject *module)
{
    PyObject *t = PyType_FromSpec(&sysv_spec);
    if (t == NULL || PyModule_AddObject(module, "SysVLock", t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    t = PyType_FromSpec(&posix_spec);
    if (t == NULL || PyModule_AddObject(module, "PosixLock", t) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot fast_slots[] = {
    {Py_mod_exec, fast_exec},
    {0, NULL},
};

static struct PyModuleDef fast_module = {
    PyModuleDef_HEAD_INIT, "qshm_compat._fast",
    "The lock's uncontended fast path in C (limited API); see native/qshm_fast.c.",
    0, NULL, fast_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void)
{
    return PyModuleDef_Init(&fast_module);
}
