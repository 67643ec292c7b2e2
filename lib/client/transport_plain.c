// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The plain transport: the socket itself, TCP or UNIX; large write payloads
 * go from the caller's pages (zerocopy.c).
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "transport.h"

static int plain_start(struct vxhs_conn *conn)
{
	(void)conn;
	return 0;
}

/* MSG_NOSIGNAL: callers submitting inline send from their own thread,
 * where SIGPIPE is not blocked as on the I/O thread. */
static ssize_t plain_sendv(struct vxhs_conn *conn, const struct iovec *iov,
			   int n)
{
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = (size_t)n,
	};
	ssize_t ret = sendmsg(conn->fd, &msg, MSG_NOSIGNAL);

	return ret < 0 ? -errno : ret;
}

static ssize_t plain_recvv(struct vxhs_conn *conn, const struct iovec *iov,
			   int n)
{
	ssize_t ret = readv(conn->fd, iov, n);

	return ret < 0 ? -errno : ret;
}

/* A stream: a read that returns less than asked took all there was. */
static bool plain_drained(const struct vxhs_conn *conn, size_t got,
			  size_t asked)
{
	(void)conn;
	return got < asked;
}

static bool plain_never(const struct vxhs_conn *conn)
{
	(void)conn;
	return false;
}

static int plain_explain_loss(struct vxhs_conn *conn, int err)
{
	(void)conn;
	return err;
}

const struct transport_ops transport_plain = {
	.name = "plain",
	.start = plain_start,
	.sendv = plain_sendv,
	.recvv = plain_recvv,
	.drained = plain_drained,
	.pages_wanted = zc_wanted,
	.send_pages = zc_send,
	.one_message_per_send = plain_never,
	.wants_write = plain_never,
	.has_pending = plain_never,
	.explain_loss = plain_explain_loss,
	.end = zc_end,
};
