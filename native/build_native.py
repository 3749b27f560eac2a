"""cffi build script for ``qshm_compat._native`` (API mode, out of line).

Constants and struct layouts are declared with ``...`` so the C compiler reads them from the
system headers; nothing about the platform is typed into Python.  ``setup.py`` names this file in
``cffi_modules``; running it directly builds the extension in place for development.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
#define IPC_CREAT ...
#define IPC_EXCL ...
#define IPC_NOWAIT ...
#define IPC_RMID ...
#define IPC_STAT ...
#define IPC_SET ...
#define GETVAL ...
#define GETPID ...
#define GETNCNT ...
#define GETZCNT ...
#define SEM_UNDO ...
#define SHM_RDONLY ...
#define O_CREAT ...
#define O_EXCL ...
#define O_RDWR ...
#define O_RDONLY ...
#define O_CLOEXEC ...
#define O_NOFOLLOW ...
#define PROT_READ ...
#define PROT_WRITE ...
#define MAP_SHARED ...
#define MAP_PRIVATE ...
#define MAP_FIXED ...
#define MAP_ANONYMOUS ...
#define QSHM_HAVE_SEMTIMEDOP ...
#define QSHM_HAVE_SEM_TIMEDWAIT ...

typedef int... key_t;
typedef int... pid_t;
typedef int... uid_t;
typedef int... gid_t;
typedef int... mode_t;
typedef int... time_t;
typedef unsigned long... shmatt_t;
typedef struct { ...; } sem_t;

struct ipc_perm { uid_t uid; gid_t gid; uid_t cuid; gid_t cgid; mode_t mode; ...; };
struct shmid_ds {
    struct ipc_perm shm_perm;
    size_t shm_segsz;
    pid_t shm_cpid;
    pid_t shm_lpid;
    shmatt_t shm_nattch;
    time_t shm_atime;
    time_t shm_dtime;
    time_t shm_ctime;
    ...;
};
struct semid_ds { struct ipc_perm sem_perm; time_t sem_otime; time_t sem_ctime; ...; };
struct sembuf { unsigned short sem_num; short sem_op; short sem_flg; ...; };

key_t ftok(const char *path, int proj_id);
int shmget(key_t key, size_t size, int shmflg);
int shmdt(const void *addr);
int shmctl(int shmid, int cmd, struct shmid_ds *buf);
int semget(key_t key, int nsems, int semflg);
int semop(int semid, struct sembuf *sops, size_t nsops);
int close(int fd);
int ftruncate(int fd, long long length);
int munmap(void *addr, size_t length);
int shm_unlink(const char *name);
int sem_close(sem_t *sem);
int sem_unlink(const char *name);
int sem_wait(sem_t *sem);
int sem_trywait(sem_t *sem);
int sem_post(sem_t *sem);
int sem_getvalue(sem_t *sem, int *sval);
long sysconf(int name);
#define _SC_PAGESIZE ...

int qshm_open(const char *path, int flags, int mode);
int qshm_semctl_setval(int semid, int semnum, int value);
int qshm_semctl_cmd(int semid, int semnum, int cmd);
int qshm_semctl_stat(int semid, struct semid_ds *buf);
int qshm_semctl_set(int semid, struct semid_ds *buf);
int qshm_semtimedop(int semid, struct sembuf *ops, size_t nops, long sec, long nsec);
int qshm_shm_open(const char *name, int flags, int mode);
sem_t *qshm_sem_open(const char *name, int flags, int mode, unsigned int value);
int qshm_sem_timedwait(sem_t *sem, long sec, long nsec);
long long qshm_fstat_size(int fd);
long long qshm_fstat_uid(int fd);
void *qshm_mmap(void *addr, size_t length, int prot, int flags, int fd, long long offset);
void *qshm_shmat(int shmid, int flags);
int qshm_sem_take(int semid);
int qshm_sem_give(int semid);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "qshm_compat._native",
    '#include "qshm_native.h"',
    include_dirs=[str(HERE)],
    libraries=["rt", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=False)
