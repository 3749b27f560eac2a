/* Fixed-signature shims around the libc calls that are variadic or take a union.
 *
 * cffi calls a variadic function through its declared prototype, which is an ABI trap on some
 * platforms (arguments passed in the wrong registers), and cannot pass `union semun` by value
 * portably.  Each shim below has one fixed signature and does nothing but forward the call.
 * errno is left as the libc call set it; cffi reads it with ffi.errno.
 */
#ifndef QSHM_NATIVE_H
#define QSHM_NATIVE_H

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#  define QSHM_HAVE_SEMTIMEDOP 1
#else
#  define QSHM_HAVE_SEMTIMEDOP 0
#endif

#if defined(__APPLE__)
#  define QSHM_HAVE_SEM_TIMEDWAIT 0
#else
#  define QSHM_HAVE_SEM_TIMEDWAIT 1
#endif

/* glibc does not declare union semun; the caller must (semctl(2)). */
union qshm_semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

static int qshm_open(const char *path, int flags, int mode)
{
    return open(path, flags, (mode_t)mode);
}

static int qshm_semctl_setval(int semid, int semnum, int value)
{
    union qshm_semun arg;
    arg.val = value;
    return semctl(semid, semnum, SETVAL, arg);
}

/* For the commands that take no fourth argument: GETVAL, GETPID, GETNCNT, GETZCNT, IPC_RMID. */
static int qshm_semctl_cmd(int semid, int semnum, int cmd)
{
    return semctl(semid, semnum, cmd);
}

static int qshm_semctl_stat(int semid, struct semid_ds *buf)
{
    union qshm_semun arg;
    arg.buf = buf;
    return semctl(semid, 0, IPC_STAT, arg);
}

static int qshm_semctl_set(int semid, struct semid_ds *buf)
{
    union qshm_semun arg;
    arg.buf = buf;
    return semctl(semid, 0, IPC_SET, arg);
}

static int qshm_semtimedop(int semid, struct sembuf *ops, size_t nops, long sec, long nsec)
{
#if QSHM_HAVE_SEMTIMEDOP
    struct timespec timeout;
    timeout.tv_sec = (time_t)sec;
    timeout.tv_nsec = nsec;
    return semtimedop(semid, ops, nops, &timeout);
#else
    (void)semid; (void)ops; (void)nops; (void)sec; (void)nsec;
    errno = ENOSYS;
    return -1;
#endif
}

static int qshm_shm_open(const char *name, int flags, int mode)
{
    return shm_open(name, flags, (mode_t)mode);
}

/* sem_open returns SEM_FAILED, which is not NULL on every platform: map it to NULL. */
static sem_t *qshm_sem_open(const char *name, int flags, int mode, unsigned int value)
{
    sem_t *sem = (flags & O_CREAT) ? sem_open(name, flags, (mode_t)mode, value)
                                   : sem_open(name, flags);
    return sem == SEM_FAILED ? NULL : sem;
}

/* sem_timedwait takes an absolute CLOCK_REALTIME deadline. */
static int qshm_sem_timedwait(sem_t *sem, long sec, long nsec)
{
#if QSHM_HAVE_SEM_TIMEDWAIT
    struct timespec deadline;
    deadline.tv_sec = (time_t)sec;
    deadline.tv_nsec = nsec;
    return sem_timedwait(sem, &deadline);
#else
    (void)sem; (void)sec; (void)nsec;
    errno = ENOSYS;
    return -1;
#endif
}

static long long qshm_fstat_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

static long long qshm_fstat_uid(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    return (long long)st.st_uid;
}

/* mmap returns MAP_FAILED, not NULL, on failure: map it to NULL. */
static void *qshm_mmap(void *addr, size_t length, int prot, int flags, int fd, long long offset)
{
    void *p = mmap(addr, length, prot, flags, fd, (off_t)offset);
    return p == MAP_FAILED ? NULL : p;
}

/* shmat returns (void *)-1, not NULL, on failure: map it to NULL. */
static void *qshm_shmat(int shmid, int flags)
{
    void *p = shmat(shmid, NULL, flags);
    return p == (void *)-1 ? NULL : p;
}

/* The uncontended lock fast path: one semop of -1 / +1 with SEM_UNDO on semaphore 0.  A single
 * int argument keeps the cffi call as cheap as a call can be. */
static int qshm_sem_take(int semid)
{
    struct sembuf op = {0, -1, SEM_UNDO};
    return semop(semid, &op, 1);
}

static int qshm_sem_give(int semid)
{
    struct sembuf op = {0, 1, SEM_UNDO};
    return semop(semid, &op, 1);
}

#endif
