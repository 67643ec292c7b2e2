// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Large write payloads carried from the socket to the vdisk file in pipes.
 * Reading a payload into a buffer and writing it out copies every byte
 * twice; splice moves the socket's pages into a pipe without a copy, and
 * the worker's splice copies them once, into the page cache. TLS payloads
 * are decrypted in user space and never come here.
 *
 * A pipe holds as many pieces as it has pages, whatever their size. From
 * loopback, a client that splices page-sized pieces, or a NIC whose driver
 * coalesces what it receives, a payload takes about one slot per page; a
 * payload not aligned to pages, or in packet-sized pieces, takes more. So
 * a payload is a chain of up to PIPES_PER_PAYLOAD pipes, each opened when
 * the one before is full. Beyond that the caller takes what the chain
 * holds into the request's buffer ("spills") and goes on without pipes.
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

/* One more pipe at the end of the chain. */
static int add_pipe(struct payload_pipe *p)
{
	int *fd = p->fd[p->nr];
	int ret;

	if (p->nr == PIPES_PER_PAYLOAD)
		return -ENOBUFS;
	if (atomic_fetch_add(&pipes_open, 1) >= PIPES_MAX) {
		ret = -EBUSY;
		goto out_uncount;
	}
	if (pipe2(fd, O_NONBLOCK | O_CLOEXEC)) {
		ret = -errno;
		goto out_uncount;
	}
	/* The kernel rounds up to a power of two pages; beyond
	 * fs.pipe-max-size or the user's pipe pages it refuses (EPERM). */
	if (fcntl(fd[1], F_SETPIPE_SZ, (int)p->size) < 0) {
		ret = -errno;
		goto out_close;
	}
	p->held[p->nr++] = 0;
	return 0;

out_close:
	close(fd[0]);
	close(fd[1]);
out_uncount:
	atomic_fetch_sub(&pipes_open, 1);
	return ret;
}

int payload_pipe_open(struct payload_pipe *p, uint64_t len)
{
	if (!payload_pipe_wanted(len))
		return -EINVAL;
	p->nr = p->head = 0;
	p->size = len;
	return add_pipe(p);
}

void payload_pipe_close(struct payload_pipe *p)
{
	for (unsigned int i = 0; i < p->nr; i++) {
		close(p->fd[i][0]);
		close(p->fd[i][1]);
		atomic_fetch_sub(&pipes_open, 1);
	}
	p->nr = p->head = 0;
}

/* True when the last pipe has no room for another piece. */
static bool tail_full(const struct payload_pipe *p)
{
	struct pollfd pfd = { .fd = p->fd[p->nr - 1][1], .events = POLLOUT };

	return poll(&pfd, 1, 0) == 0;
}

ssize_t payload_pipe_fill(struct payload_pipe *p, int sock, size_t len)
{
	for (;;) {
		unsigned int t = p->nr - 1;
		ssize_t n = splice(sock, NULL, p->fd[t][1], NULL, len,
				   SPLICE_F_NONBLOCK);
		int err = errno;

		if (n >= 0) {
			p->held[t] += (uint64_t)n;
			return n;
		}
		if (err != EAGAIN || !tail_full(p))
			return -err;
		if (add_pipe(p))
			return -ENOBUFS;
	}
}

size_t payload_pipe_put(struct payload_pipe *p, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		unsigned int t = p->nr - 1;
		ssize_t n = write(p->fd[t][1], (const uint8_t *)buf + done,
				  len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			p->held[t] += (uint64_t)n;
			done += (size_t)n;
		} else if (n == 0 || errno != EAGAIN || add_pipe(p)) {
			break;
		}
	}
	return done;
}

uint64_t payload_pipe_held(const struct payload_pipe *p)
{
	uint64_t sum = 0;

	for (unsigned int i = p->head; i < p->nr; i++)
		sum += p->held[i];
	return sum;
}

/*
 * Empties the chain in order, into buf when given, else spliced into fd at
 * *pos. The chain must hold exactly len bytes; done counts what moved.
 */
static int drain(struct payload_pipe *p, uint64_t len, uint8_t *buf, int fd,
		 loff_t *pos, uint64_t *done)
{
	*done = 0;
	if (payload_pipe_held(p) != len)
		return -EIO;
	for (; p->head < p->nr; p->head++) {
		int rd = p->fd[p->head][0];

		while (p->held[p->head]) {
			size_t want = p->held[p->head];
			ssize_t n = buf ? read(rd, buf + *done, want) :
					  splice(rd, NULL, fd, pos, want, 0);

			if (n < 0 && errno == EINTR)
				continue;
			/* The pipe held these bytes before we began: it
			 * cannot run dry unless the accounting is wrong. */
			if (n == 0 || (n < 0 && errno == EAGAIN))
				return -EIO;
			if (n < 0)
				return -errno;
			p->held[p->head] -= (uint64_t)n;
			*done += (uint64_t)n;
		}
	}
	return 0;
}

int payload_pipe_take(struct payload_pipe *p, void *buf, size_t len)
{
	uint64_t done;

	return drain(p, len, buf, -1, NULL, &done);
}

int payload_pipe_to_file(struct payload_pipe *p, int fd, uint64_t off,
			 uint64_t len, uint64_t *done)
{
	loff_t pos = (loff_t)off;

	return drain(p, len, NULL, fd, &pos, done);
}
