// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* Listening UNIX sockets: the agent's own, its status and control ones. */
#include <errno.h>
#include <stdio.h>
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
 *
 * It is bound under a name of its own and renamed into place once it
 * listens: a client that finds path never meets a socket that refuses
 * it (bind makes the file, listen comes after), and one left by an
 * earlier run is replaced in the same step.
 */
int listen_unix_mode(const char *path, mode_t umask_bits, int backlog,
		     const char *what)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, ret, len;

	len = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.%d", path,
		       (int)getpid());
	if (len < 0 || (size_t)len >= sizeof(sun.sun_path)) {
		vlog(LOG_ERR,
		     "%s path '%s' is too long for a UNIX socket (it is first bound as '%s.%d')",
		     what, path, path, (int)getpid());
		return -ENAMETOOLONG;
	}
	/* rename would replace anything there: only a socket is ours to. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		vlog(LOG_ERR, "%s %s exists and is not a socket", what, path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Left by a run that crashed with this pid. */
	if (lstat(sun.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sun.sun_path);
	old = umask(umask_bits);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		umask(old);
		goto close_socket;
	}
	umask(old);
	if (listen(fd, backlog) < 0 || rename(sun.sun_path, path) < 0) {
		ret = -errno;
		goto remove_name;
	}
	return fd;

remove_name:
	unlink(sun.sun_path);
close_socket:
	vlog(LOG_ERR, "cannot listen on %s %s: %s", what, path, strerror(-ret));
	close(fd);
	return ret;
}

int listen_unix_private(const char *path, const char *what)
{
	return listen_unix_mode(path, 0177, 8, what);
}
