// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads (docs/protocol.md, "Local reads"): a client on this host,
 * over the UNIX socket, asks with LOCAL_OPEN for a vdisk's file opened
 * read-only, and reads it itself instead of sending READs here. Reads are
 * all it gets: every change still comes here and passes the lock's gate
 * (fence.c). Refused over TCP, with --no-local-reads, and while fault
 * injection hides the extension ("hide local-read").
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vxhsd.h"

bool local_reads_offered(void)
{
	return !config.no_local_reads &&
	       (fault_features() & VXHS_FEAT_LOCAL_READ);
}

int local_open_execute(struct request *r)
{
	struct stat ours, theirs;
	int fd;

	if (!r->s->is_unix || !local_reads_offered())
		return -EOPNOTSUPP;
	fd = openat(store_dirfd(), r->hdr.target,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* The file this agent serves, not one put in its place since. */
	if (fstat(fd, &theirs) || fstat(r->vd->fd, &ours) ||
	    theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) {
		close(fd);
		return -ESTALE;
	}
	r->out_fd = fd;
	return 0;
}

ssize_t local_send_answer(struct session *s, struct request *r)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { r->out, VXHS_HDR_SIZE };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &r->out_fd, sizeof(int));
	n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
	/* The descriptor went with the first byte. */
	if (n > 0) {
		close(r->out_fd);
		r->out_fd = -1;
	}
	return n;
}
