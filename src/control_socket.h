/* control_socket.h — ternd's control socket: how `ternctl module ...` reaches the running server
 * (the only ternctl commands that need it; the others work on storage directly). */
#ifndef TERN_CONTROL_SOCKET_H
#define TERN_CONTROL_SOCKET_H

#include <stddef.h>

/* Listens on the Unix socket `path` (mode 0600; a stale file is replaced) on server.base.
 * -1 with a reason in err. */
int control_open(const char *path, char *err, size_t err_len);
/* Closes the socket and any connection on it, and removes the file. */
void control_close(void);

#endif
