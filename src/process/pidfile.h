/* pidfile.h — the pid file ternd holds while it runs, and how ternctl tells whether it does.
 *
 * ternd keeps a write lock on the whole file for its lifetime; the lock, not the file's
 * existence or its content, is what "running" means, so a stale file left by kill -9 or a power
 * cut never fools anyone. The lock is an open-file-description lock (F_OFD_SETLK): it belongs to
 * the descriptor returned by pidfile_acquire, survives other descriptors of the same file being
 * closed, and is dropped by the kernel when the process dies. */
#ifndef TERN_PIDFILE_H
#define TERN_PIDFILE_H

#include <stddef.h>

/* Creates (mode 0644) or opens `path`, locks it and writes the caller's pid. Returns the
 * descriptor, which the caller keeps open until it exits (it is close-on-exec), or -1 with a
 * reason in err, e.g. "ternd is already running (pid 1234): /var/lib/tern/ternd.pid is locked".
 * Call it after daemonising: the pid written is getpid(). The folder must exist. */
int pidfile_acquire(const char *path, char *err, size_t err_len);

/* 1 if a process holds the lock on `path` (*pid is its pid, or 0 if it could not be read),
 * 0 if not (also when the file does not exist), -1 if the file cannot be opened (errno set). */
int pidfile_check(const char *path, long *pid);

/* On a clean exit: removes the file, then closes fd (which drops the lock). */
void pidfile_release(int fd, const char *path);

#endif
