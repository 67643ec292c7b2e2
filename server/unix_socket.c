// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* Listening UNIX sockets: the agent's own, its status and control ones. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "vxhsd.h"

/*
 * A listening UNIX socket at path, its mode set by umask_bits from its
 * creation (no window between bind and a chmod); what names it in
 * messages. The fd, or a negative errno after a message.
 */
int listen_unix_mode(const char *path, mode_t umask_bits, int backlog,
		     const char *what)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		vlog(LOG_ERR, "%s path '%s' is too long", what, path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	/* A socket left by an earlier run would make bind fail; anything
	 * else there is not ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vlog(LOG_ERR, "%s %s exists and is not a socket", what,
			     path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(umask_bits);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, backlog) < 0) {
		ret = -errno;
		umask(old);
		vlog(LOG_ERR, "cannot listen on %s %s: %s", what, path,
		     strerror(-ret));
		close(fd);
		return ret;
	}
	umask(old);
	return fd;
}

int listen_unix_private(const char *path, const char *what)
{
	return listen_unix_mode(path, 0177, 8, what);
}
