// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Where a write payload goes as it arrives: its buffer, or for large
 * payloads on plaintext connections a chain of pipes the socket's pages
 * are spliced into (payload_pipe.c), so the data is copied once, into the
 * page cache. The spill policy lives here: when the pipes cannot take a
 * piece (packet-sized pieces fill every slot, or the socket cannot
 * splice), what they hold moves into the buffer, the rest follows it
 * there, and that connection's later payloads skip pipes.
 */
#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "vxhsd.h"

/* Below this, a payload is read with the bytes around it, not alone. */
#define DIRECT_MIN (16 * 1024)

void sink_open(struct payload_sink *k, struct session *s, uint8_t *buf,
	       uint64_t len)
{
	k->buf = buf;
	k->len = len;
	k->got = 0;
	/* Failing to open pipes is fine: the buffer takes the payload. */
	if (!s->tls && !s->no_pipes)
		payload_pipe_open(&k->pipe, len);
}

void sink_close(struct payload_sink *k)
{
	payload_pipe_close(&k->pipe);
}

/* Moves what the pipes hold into the buffer, for the rest to follow. */
static int spill(struct payload_sink *k, struct session *s, uint64_t held)
{
	int ret = payload_pipe_take(&k->pipe, k->buf, held);

	payload_pipe_close(&k->pipe);
	if (!s->no_pipes)
		vlog(LOG_INFO,
		     "%s: a payload did not fit its pipes (small pieces, or no splice); buffering this connection's payloads",
		     s->peer);
	s->no_pipes = true;
	return ret;
}

int sink_put(struct payload_sink *k, struct session *s, const void *p, size_t n)
{
	size_t piped = 0;

	if (payload_pipe_active(&k->pipe)) {
		piped = payload_pipe_put(&k->pipe, p, n);
		if (piped < n && spill(k, s, k->got + piped))
			return -EIO;
	}
	memcpy(k->buf + k->got + piped, (const uint8_t *)p + piped, n - piped);
	k->got += n;
	return 0;
}

bool sink_wants_direct(const struct payload_sink *k)
{
	return payload_pipe_active(&k->pipe) || k->len - k->got >= DIRECT_MIN;
}

ssize_t sink_fill(struct payload_sink *k, struct session *s)
{
	ssize_t n = 0;

	if (payload_pipe_active(&k->pipe)) {
		n = payload_pipe_fill(&k->pipe, s->fd, k->len - k->got);
		/* Pipes full, or a socket that cannot splice: the buffer
		 * takes the rest. */
		if (n == -ENOBUFS || n == -EINVAL)
			n = spill(k, s, k->got);
		if (n < 0) {
			errno = (int)-n;
			return -1;
		}
	}
	if (!payload_pipe_active(&k->pipe))
		n = session_recv(s, k->buf + k->got, k->len - k->got);
	if (n > 0)
		k->got += (uint64_t)n;
	return n;
}

int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* From pipes: spliced into the file, or through the buffer where the file
 * system takes no splice. */
int sink_to_buffer(struct payload_sink *k)
{
	int ret;

	if (!payload_pipe_active(&k->pipe))
		return 0;
	ret = payload_pipe_take(&k->pipe, k->buf, k->len);
	payload_pipe_close(&k->pipe);
	return ret;
}

int sink_write_to(struct payload_sink *k, int fd, uint64_t off)
{
	uint64_t done = 0;
	int ret;

	if (!payload_pipe_active(&k->pipe))
		return pwrite_all(fd, k->buf, k->len, off);
	ret = payload_pipe_to_file(&k->pipe, fd, off, k->len, &done);
	if (ret != -EINVAL)
		return ret;
	ret = payload_pipe_take(&k->pipe, k->buf, k->len - done);
	if (ret)
		return ret;
	return pwrite_all(fd, k->buf, k->len - done, off + done);
}
