// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads and writes (docs/protocol.md, "Local reads", "Local
 * writes"): a client on this host, over the UNIX socket, asks for a
 * vdisk's file and does the I/O itself instead of sending it here.
 *
 * LOCAL_OPEN gives the file read-only. LOCAL_OPEN_RW (write rights, by the
 * access list's default rule for new opcodes) gives it read-write, with
 * the vdisk's lock record opened read-only: the client passes the same
 * gate as this agent's writes (fence.c) and obeys the same epoch. Read-
 * only, the record can carry the client's shared locks but never an
 * exclusive one, nor a new version: only agents change the lock.
 *
 * Refused over TCP, with --no-local-reads or --no-local-writes, and while
 * fault injection hides the extension ("hide local-read", "local-write").
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "vxhsd.h"

uint64_t local_features_offered(void)
{
	uint64_t off = 0;

	if (config.no_local_reads)
		off |= VXHS_FEAT_LOCAL_READ;
	if (config.no_local_writes)
		off |= VXHS_FEAT_LOCAL_WRITE;
	return ~off & (fault_features() |
		       ~(VXHS_FEAT_LOCAL_READ | VXHS_FEAT_LOCAL_WRITE));
}

/* The vdisk's file as this agent serves it, opened anew with mode. */
static int open_served(struct request *r, int mode)
{
	struct stat ours, theirs;
	int fd;

	/* O_NONBLOCK: a FIFO put in the vdisk's place must not hang this
	 * thread in open (the check below refuses it); I/O on a regular
	 * file ignores the flag. */
	fd = openat(store_dirfd(), r->hdr.target,
		    mode | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* The file this agent serves, not one put in its place since. */
	if (fstat(fd, &theirs) || fstat(r->vd->fd, &ours) ||
	    theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int local_open_execute(struct request *r)
{
	bool rw = r->hdr.opcode == VXHS_OP_LOCAL_OPEN_RW;
	uint64_t feat = rw ? VXHS_FEAT_LOCAL_WRITE : VXHS_FEAT_LOCAL_READ;
	int fd, rec;

	if (!r->s->is_unix || !(local_features_offered() & feat))
		return -EOPNOTSUPP;
	fd = open_served(r, rw ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return fd;
	if (rw) {
		struct stat st;

		rec = record_open(r->vd->id, O_RDONLY);
		if (rec >= 0 && (fstat(rec, &st) || !S_ISREG(st.st_mode))) {
			close(rec);
			rec = -EUCLEAN; /* not a record: an operator's to fix */
		}
		if (rec < 0) {
			close(fd);
			return rec;
		}
		r->out_fd[1] = rec;
	}
	r->out_fd[0] = fd;
	return 0;
}

ssize_t local_send_answer(struct session *s, struct request *r)
{
	size_t nfds = r->out_fd[1] >= 0 ? 2 : 1;
	ssize_t n = fd_send(s->fd, r->out, VXHS_HDR_SIZE, r->out_fd, nfds);

	/* The descriptors went with the first byte. */
	if (n > 0)
		for (size_t i = 0; i < nfds; i++) {
			close(r->out_fd[i]);
			r->out_fd[i] = -1;
		}
	return n;
}
