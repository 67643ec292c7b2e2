// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Large write payloads carried from the socket to the vdisk file in a pipe.
 * Reading a payload into a buffer and writing it out copies every byte
 * twice; splice moves the socket's pages into the pipe without a copy, and
 * the worker's splice copies them once, into the page cache. TLS payloads
 * are decrypted in user space and never come here.
 *
 * A pipe holds as many pieces as it has pages, whatever their size. From
 * loopback, or a NIC whose driver coalesces what it receives, pieces are a
 * page or larger and the payload fits; pieces of a packet each fill the
 * pipe first. The caller then takes what the pipe holds into the request's
 * buffer ("spills") and goes on without pipes on that connection.
 *
 * Pipes in use are capped: each costs two descriptors, and for an
 * unprivileged user its pages count against fs.pipe-user-pages-soft.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "vxhsd.h"

#define PIPE_PAYLOAD_MIN (512u * 1024)
#define PIPE_PAYLOAD_MAX (4u << 20)
#define PIPES_MAX	 64

static atomic_uint pipes_open;

/* Below half a MiB, setting up a pipe costs more than the copy it saves. */
bool payload_pipe_wanted(uint64_t len)
{
	return len >= PIPE_PAYLOAD_MIN && len <= PIPE_PAYLOAD_MAX;
}

int payload_pipe_open(struct payload_pipe *p, uint64_t len)
{
	int ret;

	if (!payload_pipe_wanted(len))
		return -EINVAL;
	if (atomic_fetch_add(&pipes_open, 1) >= PIPES_MAX) {
		ret = -EBUSY;
		goto out_uncount;
	}
	if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC)) {
		ret = -errno;
		goto out_uncount;
	}
	/* The kernel rounds up to a power of two pages; beyond
	 * fs.pipe-max-size or the user's pipe pages it refuses (EPERM). */
	if (fcntl(p->fd[1], F_SETPIPE_SZ, (int)len) < 0) {
		ret = -errno;
		goto out_close;
	}
	p->open = true;
	return 0;

out_close:
	close(p->fd[0]);
	close(p->fd[1]);
out_uncount:
	atomic_fetch_sub(&pipes_open, 1);
	return ret;
}

void payload_pipe_close(struct payload_pipe *p)
{
	if (!p->open)
		return;
	close(p->fd[0]);
	close(p->fd[1]);
	p->open = false;
	atomic_fetch_sub(&pipes_open, 1);
}

/* True when the pipe has no room for another piece. */
static bool pipe_full(const struct payload_pipe *p)
{
	struct pollfd pfd = { .fd = p->fd[1], .events = POLLOUT };

	return poll(&pfd, 1, 0) == 0;
}

ssize_t payload_pipe_fill(struct payload_pipe *p, int sock, size_t len)
{
	ssize_t n = splice(sock, NULL, p->fd[1], NULL, len, SPLICE_F_NONBLOCK);

	if (n >= 0)
		return n;
	if (errno == EAGAIN && pipe_full(p))
		return -ENOBUFS;
	return -errno;
}

size_t payload_pipe_put(struct payload_pipe *p, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(p->fd[1], (const uint8_t *)buf + done,
				  len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

int payload_pipe_take(struct payload_pipe *p, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(p->fd[0], (uint8_t *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int payload_pipe_to_file(struct payload_pipe *p, int fd, uint64_t off,
			 uint64_t len, uint64_t *done)
{
	loff_t pos = (loff_t)off;

	*done = 0;
	while (*done < len) {
		ssize_t n = splice(p->fd[0], NULL, fd, &pos, len - *done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		/* Everything was in the pipe before we began: an empty
		 * pipe now means it held less than the payload. */
		if (n == 0 || (n < 0 && errno == EAGAIN))
			return -EIO;
		if (n < 0)
			return -errno;
		*done += (uint64_t)n;
	}
	return 0;
}
