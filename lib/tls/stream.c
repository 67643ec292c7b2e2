// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Non-blocking record I/O. Gathering queued bytes into one record turns a
 * batch of small requests or answers into one record and one send; reading
 * ahead turns a burst of records into one receive.
 */
#include <errno.h>
#include <linux/tls.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/tls.h"

#define TLS_RECORD_DATA 23

/*
 * GnuTLS reads each record with two exact reads, its 5-byte header and
 * then its body: two system calls per record, which cost more than the
 * cipher at 4 KiB. Here a read that finds nothing buffered also fills the
 * read-ahead with what follows (the next header, or a burst of small
 * records), and a body that has not arrived is read straight into
 * GnuTLS's buffer rather than through ours.
 */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct vxhs_tls_io *io = ptr;
	size_t have = io->rx_end - io->rx_start;
	struct iovec iov[2];
	ssize_t got;

	if (have) {
		if (have > len)
			have = len;
		memcpy(data, io->rx_ahead + io->rx_start, have);
		io->rx_start += have;
		return (ssize_t)have;
	}
	if (io->exact_reads)
		return read(io->fd, data, len);
	iov[0].iov_base = data;
	iov[0].iov_len = len;
	iov[1].iov_base = io->rx_ahead;
	iov[1].iov_len = sizeof(io->rx_ahead);
	got = readv(io->fd, iov, 2);
	io->rx_dry = got < (ssize_t)(len + sizeof(io->rx_ahead));
	if (got <= (ssize_t)len)
		return got;
	io->rx_start = 0;
	io->rx_end = (size_t)got - len;
	return (ssize_t)len;
}

/* GnuTLS asks this before a blocking read; ours never block. */
static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct vxhs_tls_io *io = ptr;
	struct pollfd p = { .fd = io->fd, .events = POLLIN };

	if (io->rx_end > io->rx_start)
		return 1;
	return poll(&p, 1, (int)ms);
}

/*
 * While vxhs_tls_sendv makes records, they are collected in tx_out and go
 * to the socket together: one system call for several records, as a
 * plaintext writev would. Anything else GnuTLS sends (the handshake) goes
 * straight out.
 */
static ssize_t tls_push(gnutls_transport_ptr_t ptr, const giovec_t *iov, int n)
{
	struct vxhs_tls_io *io = ptr;
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = (size_t)n,
	};
	size_t len = 0;

	/* With the kernel's records or ours, anything GnuTLS would still
	 * send carries a stale sequence number: the peer could not read it. */
	if (io->kernel_tx || io->user_tx) {
		errno = EPROTO;
		return -1;
	}
	if (!io->tx_gather)
		return sendmsg(io->fd, &msg, MSG_NOSIGNAL);
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	/* vxhs_tls_sendv leaves room for a whole record before each. */
	if (len > sizeof(io->tx_out) - io->tx_end) {
		errno = ENOBUFS;
		return -1;
	}
	for (int i = 0; i < n; i++) {
		memcpy(io->tx_out + io->tx_end, iov[i].iov_base,
		       iov[i].iov_len);
		io->tx_end += iov[i].iov_len;
	}
	return (ssize_t)len;
}

struct vxhs_tls_io *vxhs_tls_io_new(gnutls_session_t session, int fd)
{
	struct vxhs_tls_io *io = malloc(sizeof(*io));

	if (!io)
		return NULL;
	io->fd = fd;
	io->kernel_tx = false;
	io->kernel_rx = false;
	io->user_tx = io->user_rx = false;
	io->tx.hd = io->rx.hd = NULL;
	io->tx.gcm = io->rx.gcm = NULL;
	io->exact_reads = false;
	memset(&io->ctl, 0, sizeof(io->ctl));
	io->ctl.alert = -1;
	io->why[0] = '\0';
	io->kernel_key_left = 0;
	io->tx_gather = false;
	io->tx_start = io->tx_end = 0;
	io->nr_recs = io->rec_next = 0;
	io->rx_start = io->rx_end = 0;
	io->rx_plain = io->rx_plain_end = 0;
	io->rx_stop = 0;
	io->rx_dry = false;
	gnutls_transport_set_ptr(session, io);
	gnutls_transport_set_pull_function(session, tls_pull);
	gnutls_transport_set_pull_timeout_function(session, tls_pull_timeout);
	gnutls_transport_set_vec_push_function(session, tls_push);
	return io;
}

void vxhs_tls_io_free(struct vxhs_tls_io *io)
{
	if (!io)
		return;
	vxhs_tls_aead_deinit(&io->tx);
	vxhs_tls_aead_deinit(&io->rx);
	free(io);
}

/* A whole record waits in the read-ahead, not yet opened. */
static bool whole_record(const struct vxhs_tls_io *io)
{
	size_t have = io->rx_end - io->rx_start;
	const uint8_t *h = io->rx_ahead + io->rx_start;

	return have >= VXHS_TLS_HEADER &&
	       have >= VXHS_TLS_HEADER + ((size_t)h[3] << 8 | h[4]);
}

bool vxhs_tls_has_pending(gnutls_session_t session,
			  const struct vxhs_tls_io *io)
{
	/* The kernel's records: the socket announces all there is. */
	if (io->kernel_rx)
		return false;
	if (io->user_rx)
		return io->rx_plain < io->rx_plain_end || whole_record(io) ||
		       io->rx_stop;
	return io->rx_end > io->rx_start ||
	       gnutls_record_check_pending(session) > 0;
}

bool vxhs_tls_drained(gnutls_session_t session, const struct vxhs_tls_io *io)
{
	return io->rx_dry && !vxhs_tls_has_pending(session, io);
}

/*
 * The next record's plaintext for GnuTLS, from skip bytes into iov: in
 * place when one buffer holds a whole record, else gathered into tx_stage.
 */
static size_t next_record(struct vxhs_tls_io *io, const struct iovec *iov,
			  int n, size_t skip, const void **data)
{
	size_t len = 0;
	int i = 0;

	while (i < n && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i < n && iov[i].iov_len - skip >= VXHS_TLS_RECORD_MAX) {
		*data = (const uint8_t *)iov[i].iov_base + skip;
		return VXHS_TLS_RECORD_MAX;
	}
	for (; i < n && len < VXHS_TLS_RECORD_MAX; i++, skip = 0) {
		size_t take = iov[i].iov_len - skip;

		if (take > VXHS_TLS_RECORD_MAX - len)
			take = VXHS_TLS_RECORD_MAX - len;
		memcpy(io->tx_stage + len,
		       (const uint8_t *)iov[i].iov_base + skip, take);
		len += take;
	}
	*data = io->tx_stage;
	return len;
}

/*
 * Our key has protected all it should (RFC 8446, 5.5): GnuTLS, given our
 * sequence number, sends a KeyUpdate (into tx_out, before the next record)
 * and derives the next key, which we take over in turn. Should that fail,
 * GnuTLS goes on making the records.
 */
static int update_key(gnutls_session_t session, struct vxhs_tls_io *io)
{
	uint8_t seq[8];
	char why[128];
	int ret;

	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(io->tx.seq >> (56 - 8 * i));
	vxhs_tls_aead_deinit(&io->tx);
	io->user_tx = false;
	ret = gnutls_record_set_state(session, 0, seq);
	if (ret >= 0)
		ret = gnutls_session_key_update(session, 0);
	if (ret < 0)
		return ret;
	io->user_tx =
		!vxhs_tls_aead_init(&io->tx, session, false, why, sizeof(why));
	return 0;
}

/* One record of up to VXHS_TLS_RECORD_MAX bytes of iov into tx_out. */
static ssize_t make_record(gnutls_session_t session, struct vxhs_tls_io *io,
			   const struct iovec *iov, int n, size_t done)
{
	const void *data;
	size_t len;

	if (io->user_tx) {
		ssize_t made = vxhs_tls_seal(&io->tx, iov, n, done,
					     io->tx_out + io->tx_end);

		if (made < 0)
			return GNUTLS_E_ENCRYPTION_FAILED;
		if (made)
			io->tx_end += VXHS_TLS_HEADER + (size_t)made +
				      VXHS_TLS_SEALED_EXTRA;
		return made;
	}
	len = next_record(io, iov, n, done, &data);
	return len ? gnutls_record_send(session, data, len) : 0;
}

/* Encrypts from iov into tx_out: as many records as fit. */
static int make_records(gnutls_session_t session, struct vxhs_tls_io *io,
			const struct iovec *iov, int n)
{
	size_t done = 0;
	int ret = 0;

	io->tx_start = io->tx_end = 0;
	io->nr_recs = io->rec_next = 0;
	io->tx_gather = true;
	while (io->nr_recs < VXHS_TLS_SEND_RECORDS &&
	       sizeof(io->tx_out) - io->tx_end >= VXHS_TLS_RECORD_ROOM) {
		ssize_t made;

		if (io->user_tx && !io->tx.left) {
			ret = update_key(session, io);
			if (ret < 0)
				break;
		}
		made = make_record(session, io, iov, n, done);
		if (made <= 0) {
			ret = (int)made;
			break;
		}
		done += (size_t)made;
		io->rec_end[io->nr_recs] = io->tx_end;
		io->rec_plain[io->nr_recs++] = (size_t)made;
	}
	io->tx_gather = false;
	return ret;
}

ssize_t vxhs_tls_sendv(gnutls_session_t session, struct vxhs_tls_io *io,
		       const struct iovec *iov, int n, int *gerr)
{
	bool blocked = false;
	size_t whole = 0;

	*gerr = 0;
	if (io->kernel_tx) {
		struct msghdr msg = {
			.msg_iov = (struct iovec *)iov,
			.msg_iovlen = (size_t)n,
		};
		ssize_t sent;

		if (!io->kernel_key_left)
			return -EKEYEXPIRED;
		sent = sendmsg(io->fd, &msg, MSG_NOSIGNAL);
		if (sent < 0)
			return -errno;
		io->kernel_key_left -= (uint64_t)sent < io->kernel_key_left ?
					       (uint64_t)sent :
					       io->kernel_key_left;
		return sent;
	}
	if (!vxhs_tls_send_held(io)) {
		int ret = make_records(session, io, iov, n);

		if (ret < 0) {
			*gerr = ret;
			return -EPIPE;
		}
	}
	while (io->tx_start < io->tx_end) {
		ssize_t sent = send(io->fd, io->tx_out + io->tx_start,
				    io->tx_end - io->tx_start, MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EWOULDBLOCK)
				return -errno;
			blocked = true;
			break;
		}
		io->tx_start += (size_t)sent;
	}
	while (io->rec_next < io->nr_recs &&
	       io->rec_end[io->rec_next] <= io->tx_start)
		whole += io->rec_plain[io->rec_next++];
	if (blocked && !whole)
		return -EAGAIN;
	return (ssize_t)whole;
}

/*
 * Records that are not data one receive goes through before it lets the
 * caller's loop serve others (the socket, level-triggered, calls again).
 */
#define CONTROL_RECORDS_PER_CALL 16

/*
 * With the kernel's records: what it decrypted, straight into iov. Records
 * that are not data come with their type in a control message (without
 * room for one the kernel would fail the read) and are parsed, never
 * handed to the caller.
 */
static ssize_t kernel_recv(struct vxhs_tls_io *io, const struct iovec *iov,
			   int n)
{
	size_t asked = 0;

	for (int i = 0; i < n; i++)
		asked += iov[i].iov_len;
	for (int round = 0; round < CONTROL_RECORDS_PER_CALL; round++) {
		union {
			char buf[CMSG_SPACE(sizeof(uint8_t))];
			struct cmsghdr align;
		} cbuf;
		struct msghdr msg = {
			.msg_iov = (struct iovec *)iov,
			.msg_iovlen = (size_t)n,
			.msg_control = cbuf.buf,
			.msg_controllen = sizeof(cbuf.buf),
		};
		uint8_t type = TLS_RECORD_DATA;
		size_t left;
		ssize_t got;
		int ret = 0;

		got = recvmsg(io->fd, &msg, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
		     c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_TLS &&
			    c->cmsg_type == TLS_GET_RECORD_TYPE)
				type = *CMSG_DATA(c);
		if (type == TLS_RECORD_DATA) {
			/* Only in a handshake message's middle is it wrong. */
			ret = vxhs_tls_ctl_feed(&io->ctl, type, NULL, 0,
						io->why, sizeof(io->why));
			if (ret)
				return ret;
			io->rx_dry = (size_t)got < asked;
			return got;
		}
		left = (size_t)got;
		for (int i = 0; i < n && left && !ret; i++) {
			size_t take = iov[i].iov_len < left ? iov[i].iov_len :
							      left;

			ret = vxhs_tls_ctl_feed(&io->ctl, type, iov[i].iov_base,
						take, io->why, sizeof(io->why));
			left -= take;
		}
		/* close_notify ends the stream as a close does. */
		if (ret)
			return ret > 0 ? 0 : ret;
	}
	return -EAGAIN;
}

/*
 * Opens the next whole record in the read-ahead. Returns true when it
 * holds data (from rx_plain). Else it held something else, or no whole
 * record is there, or the stream stopped (rx_stop).
 */
static bool open_record(struct vxhs_tls_io *io)
{
	uint8_t *rec = io->rx_ahead + io->rx_start;
	size_t have = io->rx_end - io->rx_start;
	size_t len;
	ssize_t size;
	uint8_t type;
	int ret;

	if (have < VXHS_TLS_HEADER)
		return false;
	size = vxhs_tls_record_size(rec, io->why, sizeof(io->why));
	if (size < 0) {
		io->rx_stop = (int)size;
		return false;
	}
	if (have < (size_t)size)
		return false;
	ret = vxhs_tls_open(&io->rx, rec, &len, &type, io->why,
			    sizeof(io->why));
	if (!ret) {
		io->rx_start += (size_t)size;
		/* Data is wrong only inside a handshake message. */
		ret = vxhs_tls_ctl_feed(
			&io->ctl, type,
			type == TLS_RECORD_DATA ? NULL : rec + VXHS_TLS_HEADER,
			type == TLS_RECORD_DATA ? 0 : len, io->why,
			sizeof(io->why));
	}
	if (ret) {
		io->rx_stop = ret;
		return false;
	}
	if (type != TLS_RECORD_DATA)
		return false;
	io->rx_plain = (size_t)(rec + VXHS_TLS_HEADER - io->rx_ahead);
	io->rx_plain_end = io->rx_plain + len;
	return true;
}

/* Reads what the socket has behind the records already buffered. */
static ssize_t read_records(struct vxhs_tls_io *io)
{
	size_t room;
	ssize_t got;

	/* Nothing opened is left to hand over: move a partial record to
	 * the front when a whole one might not fit behind it. */
	if (io->rx_start == io->rx_end) {
		io->rx_start = io->rx_end = 0;
	} else if (sizeof(io->rx_ahead) - io->rx_start <
		   VXHS_TLS_RECORD_WIRE_MAX) {
		memmove(io->rx_ahead, io->rx_ahead + io->rx_start,
			io->rx_end - io->rx_start);
		io->rx_end -= io->rx_start;
		io->rx_start = 0;
	}
	room = sizeof(io->rx_ahead) - io->rx_end;
	do {
		got = read(io->fd, io->rx_ahead + io->rx_end, room);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	io->rx_end += (size_t)got;
	io->rx_dry = (size_t)got < room;
	return got;
}

/*
 * With our own records: one read takes all the socket has, up to the
 * buffer's size, and each record is opened in place and copied out once.
 */
static ssize_t user_recv(struct vxhs_tls_io *io, const struct iovec *iov, int n)
{
	size_t got = 0, off = 0;
	int i = 0, control = 0;

	while (i < n) {
		size_t left = io->rx_plain_end - io->rx_plain;
		ssize_t ret;

		if (left) {
			size_t take = iov[i].iov_len - off;

			if (take > left)
				take = left;
			memcpy((uint8_t *)iov[i].iov_base + off,
			       io->rx_ahead + io->rx_plain, take);
			io->rx_plain += take;
			got += take;
			off += take;
			if (off == iov[i].iov_len) {
				i++;
				off = 0;
			}
			continue;
		}
		if (io->rx_stop)
			break;
		if (open_record(io))
			continue;
		if (whole_record(io) || io->rx_stop) {
			if (++control < CONTROL_RECORDS_PER_CALL)
				continue;
			break;
		}
		if (got)
			break;
		ret = read_records(io);
		if (ret <= 0)
			return ret == -EWOULDBLOCK ? -EAGAIN : ret;
	}
	if (got)
		return (ssize_t)got;
	if (io->rx_stop)
		return io->rx_stop > 0 ? 0 : io->rx_stop;
	return -EAGAIN;
}

ssize_t vxhs_tls_recvv(gnutls_session_t session, struct vxhs_tls_io *io,
		       const struct iovec *iov, int n, int *gerr)
{
	void *buf = iov[0].iov_base;
	size_t len = iov[0].iov_len;
	ssize_t ret;

	*gerr = 0;
	if (io->kernel_rx)
		return kernel_recv(io, iov, n);
	if (io->user_rx)
		return user_recv(io, iov, n);
	/* After a handshake message (an OpenSSL peer's TLS 1.3 session
	 * tickets) GnuTLS answers EAGAIN even when more records wait in our
	 * read-ahead, which no socket event will announce: go on with them.
	 * Each round consumes read-ahead, so this ends. */
	do {
		ret = gnutls_record_recv(session, buf, len);
	} while (ret == GNUTLS_E_AGAIN && io->rx_end > io->rx_start);
	if (ret >= 0)
		return ret;
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		return -EAGAIN;
	/* Peers usually just close: that is an end of stream, not an
	 * attack on it (the protocol's own framing catches truncation). */
	if (ret == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	*gerr = (int)ret;
	return -EPROTO;
}

const char *vxhs_tls_strerror(const struct vxhs_tls_io *io, int gerr)
{
	return gerr ? gnutls_strerror(gerr) : io->why;
}
