/* pidfile.c — ternd's pid file and its lock (see pidfile.h for why the lock is the truth). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* F_OFD_SETLK, F_OFD_GETLK */
#endif
#include "process/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Open-file-description locks (Linux 3.15+) are tied to our descriptor rather than to the
 * process, so a library that opens and closes the same file cannot drop them by accident, as it
 * would a classic POSIX lock. */
#ifdef F_OFD_SETLK
#define PIDFILE_SETLK F_OFD_SETLK
#define PIDFILE_GETLK F_OFD_GETLK
#else
#define PIDFILE_SETLK F_SETLK
#define PIDFILE_GETLK F_GETLK
#endif

static struct flock whole_file(short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl); /* l_pid must be 0 for OFD requests */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0; /* to the end, however long the file grows */
    return fl;
}

/* The pid written in the file, or 0 if it holds none. */
static long read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

int pidfile_acquire(const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open pid file %s: %s", path, strerror(errno));
        return -1;
    }
    struct flock fl = whole_file(F_WRLCK);
    if (fcntl(fd, PIDFILE_SETLK, &fl) < 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES)
            snprintf(err, err_len, "ternd is already running (pid %ld): %s is locked",
                     read_pid(fd), path);
        else
            snprintf(err, err_len, "cannot lock pid file %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        snprintf(err, err_len, "cannot write pid file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pidfile_check(const char *path, long *pid)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* GETLK only asks; it never takes the lock, so a check cannot make ternd's start fail.
     * The OFD variant also sees a lock held by this very process; l_pid is -1 for an OFD
     * lock, so the pid comes from the file. */
    struct flock fl = whole_file(F_WRLCK);
    int running = 0;
    if (fcntl(fd, PIDFILE_GETLK, &fl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (fl.l_type != F_UNLCK) {
        running = 1;
        *pid = fl.l_pid > 0 ? (long)fl.l_pid : read_pid(fd);
    }
    close(fd);
    return running;
}

void pidfile_release(int fd, const char *path)
{
    if (fd < 0)
        return;
    unlink(path); /* while still locked, so no other ternd can have taken the file over */
    close(fd);
}
