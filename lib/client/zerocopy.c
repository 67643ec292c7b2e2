// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Large write payloads sent from the caller's pages without a copy:
 * vmsplice hands references to the pages to a pipe, splice hands them on
 * to the socket. writev would copy every byte into the socket's buffers.
 *
 * The pages must not change until the write completes, which is already
 * the contract of an asynchronous write. After completion the kernel may
 * still hold references to them (an unacknowledged segment), but the agent
 * has answered, so it received those bytes and never takes them again.
 *
 * The plain transport's (GnuTLS encrypts from user memory), and on UNIX
 * sockets only: splicing into TCP hands the stack a few pages per call,
 * each batch transmitted on its own, which measured slower than writev
 * (performance.md, "Splicing into TCP"). Where the kernel refuses (memory
 * vmsplice cannot pin, a pipe it will not give), the connection goes back
 * to writev for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"

#define ZC_MIN	(512u * 1024)
#define ZC_PIPE (1u << 20) /* fs.pipe-max-size's default */
#define ZC_IOV	256
/* Every piece takes a pipe slot here and at the agent: a payload in small
 * pieces goes by copy. */
#define ZC_PIECE 4096

static void zc_give_up(struct vxhs_conn *conn, int err)
{
	if (!conn->zc_off)
		loop_log(conn->loop, LOG_DEBUG,
			 "agent %s: sending payloads by copy (%s)",
			 conn->agent->name, strerror(-err));
	conn->zc_off = true;
	zc_end(conn);
}

bool zc_wanted(struct vxhs_conn *conn, const struct vxhs_io *io)
{
	if (conn->zc_held)
		return true;
	if (conn->zc_off || !conn->agent->addr.is_unix || io->by_copy ||
	    io->by_ref || io->req->opcode != VXHS_OP_WRITE || io->len < ZC_MIN)
		return false;
	if (conn->zc_pipe[0] >= 0)
		return true;
	if (pipe2(conn->zc_pipe, O_NONBLOCK | O_CLOEXEC)) {
		zc_give_up(conn, -errno);
		return false;
	}
	if (fcntl(conn->zc_pipe[1], F_SETPIPE_SZ, ZC_PIPE) < 0) {
		zc_give_up(conn, -errno); /* closes the pipe */
		return false;
	}
	return true;
}

ssize_t zc_send(struct vxhs_conn *conn, struct vxhs_io *io)
{
	uint64_t left = io->len - io->moved, bytes;
	struct iovec iov[ZC_IOV];
	unsigned int flags = SPLICE_F_NONBLOCK;
	ssize_t n;

	if (!conn->zc_held) {
		int cnt = iov_cursor_fill(&io->cur, iov, ZC_IOV,
					  MIN(left, ZC_PIPE), &bytes);

		if (bytes < (uint64_t)cnt * ZC_PIECE && bytes < left) {
			io->by_copy = true;
			return -ENOTSUP;
		}
		n = vmsplice(conn->zc_pipe[1], iov, (unsigned long)cnt,
			     SPLICE_F_NONBLOCK);
		if (n <= 0) {
			/* Nothing is held: writev takes over here. */
			zc_give_up(conn, n < 0 ? -errno : -EIO);
			return -ENOTSUP;
		}
		iov_cursor_advance(&io->cur, (uint64_t)n);
		conn->zc_held = (uint64_t)n;
	}
	if (conn->zc_held < left)
		flags |= SPLICE_F_MORE;
	n = splice(conn->zc_pipe[0], NULL, conn->fd, NULL, conn->zc_held,
		   flags);
	if (n < 0)
		return -errno;
	conn->zc_held -= (uint64_t)n;
	return n;
}

void zc_end(struct vxhs_conn *conn)
{
	if (conn->zc_pipe[0] >= 0) {
		close(conn->zc_pipe[0]);
		close(conn->zc_pipe[1]);
	}
	conn->zc_pipe[0] = conn->zc_pipe[1] = -1;
	conn->zc_held = 0;
}
