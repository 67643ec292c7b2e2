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
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdpass.h"
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
	/* O_NONBLOCK: a FIFO put in the vdisk's place must not hang this
	 * thread in open (the check below refuses it); reads of a regular
	 * file ignore the flag. */
	fd = openat(store_dirfd(), r->hdr.target,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
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
	ssize_t n = fd_send(s->fd, r->out, VXHS_HDR_SIZE, r->out_fd);

	/* The descriptor went with the first byte. */
	if (n > 0) {
		close(r->out_fd);
		r->out_fd = -1;
	}
	return n;
}
