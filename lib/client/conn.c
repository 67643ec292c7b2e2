// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One connection to an agent: DOWN -> CONNECTING -> UP -> DOWN.
 *
 * Sending: requests queue on conn->tx and leave in batches through writev,
 * headers and write payloads straight from the callers' buffers.
 * Receiving: bytes land in a buffer and are parsed header by header; large
 * read payloads go straight into the callers' buffers. Every answer is
 * checked against the request it claims to answer before a byte of payload
 * is placed; anything the protocol does not allow drops the connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"
#include "transport.h"

#define TX_IOV_MAX	256
#define RX_IOV_MAX	64
#define READS_PER_EVENT 16

struct vxhs_conn *conn_new(struct vxhs_loop *loop, struct vxhs_agent *agent)
{
	struct vxhs_conn *conn = calloc(1, sizeof(*conn));

	if (!conn)
		return NULL;
	conn->rxbuf = malloc(RX_BUF_SIZE);
	if (!conn->rxbuf) {
		free(conn);
		return NULL;
	}
	conn->loop = loop;
	conn->agent = agent;
	conn->fd = -1;
	conn->tp = &transport_plain;
	conn->zc_pipe[0] = conn->zc_pipe[1] = -1;
	conn->state = CONN_DOWN;
	list_init(&conn->tx);
	list_init(&conn->inflight);
	list_init(&conn->dirty_link);
	list_init(&conn->ready_link);
	return conn;
}

static void set_tcp_options(int fd)
{
	int on = 1, idle = 10, intvl = 5, cnt = 3;

	/* Notice a vanished peer even when no request is outstanding. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* Room for a whole large request per system call, both ways. */
static void set_buffers(int fd)
{
	int size = 4 << 20;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static uint32_t wanted_events(struct vxhs_conn *conn)
{
	if (conn->state == CONN_CONNECTING)
		return EPOLLOUT;
	if (conn->state == CONN_HANDSHAKE)
		return conn->tp->wants_write(conn) ? EPOLLOUT : EPOLLIN;
	return EPOLLIN | (list_empty(&conn->tx) ? 0 : EPOLLOUT);
}

int conn_update_events(struct vxhs_conn *conn)
{
	return loop_epoll_set(conn->loop, conn->fd, &conn->events,
			      wanted_events(conn), conn);
}

void conn_up(struct vxhs_conn *conn)
{
	conn->state = CONN_UP;
	/* A new socket: the agent holds no region of ours on it. */
	conn->shm_added = conn->shm_refused = 0;
	loop_log(conn->loop, LOG_DEBUG, "agent %s: connection up",
		 conn->agent->name);
	conn_flush(conn);
}

/* A step of the transport's handshake, and what its result means. */
static void handshake(struct vxhs_conn *conn)
{
	int ret = conn->tp->handshake(conn);

	if (ret == -EAGAIN) {
		if (conn_update_events(conn))
			conn_fail(conn, -EIO, "cannot watch the socket");
		return;
	}
	if (ret) {
		conn_fail(conn, ret, conn->tp->name);
		return;
	}
	conn_up(conn);
}

/* The socket is connected: over TLS, the handshake comes first. */
static void connected(struct vxhs_conn *conn)
{
	int ret = conn->tp->start(conn);

	if (!ret) {
		conn_up(conn);
		return;
	}
	if (ret != -EINPROGRESS) {
		conn_fail(conn, ret, "cannot start the transport");
		return;
	}
	conn->state = CONN_HANDSHAKE;
	conn->connect_deadline =
		vxhs_now_ns() + conn->agent->connect_timeout_ms * NSEC_PER_MSEC;
	handshake(conn);
}

int conn_start(struct vxhs_conn *conn)
{
	struct vxhs_agent *agent = conn->agent;
	struct vxhs_resolved *res = &agent->res;
	unsigned int i = agent->sa_next % res->nr;
	const struct sockaddr *sa = (const struct sockaddr *)&res->sa[i];
	bool connected_now = false;
	int fd, ret;

	conn->retry_at = vxhs_now_ns() + CONN_RETRY_NS;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		ret = -errno;
		loop_log(conn->loop, LOG_ERR, "agent %s: socket: %s",
			 agent->name, strerror(-ret));
		return ret;
	}
	if (sa->sa_family != AF_UNIX)
		set_tcp_options(fd);
	set_buffers(fd);

	conn->fd = fd;
	conn->events = 0;
	conn->answered = false;
	/* TLS does not apply to UNIX sockets (agent_get drops it there):
	 * the agent knows its peer from SO_PEERCRED. */
	conn->tp = agent->tls ? &transport_tls : &transport_plain;
	conn->rx_start = conn->rx_end = 0;
	conn->rx_in_payload = false;
	conn->state = CONN_CONNECTING;
	conn->connect_deadline =
		vxhs_now_ns() + agent->connect_timeout_ms * NSEC_PER_MSEC;
	if (connect(fd, sa, res->sa_len[i]) == 0) {
		connected_now = true;
	} else if (errno != EINPROGRESS) {
		/* A missing UNIX socket means nobody listens, as a refusal. */
		ret = errno == ENOENT ? -ECONNREFUSED : -errno;
		agent->sa_next++;
		loop_log_limited(conn->loop, &agent->notes->log_conn, LOG_INFO,
				 "agent %s: connect: %s", agent->name,
				 strerror(-ret));
		close(fd);
		conn->fd = -1;
		conn->state = CONN_DOWN;
		return ret;
	}
	ret = conn_update_events(conn);
	if (ret) {
		close(fd);
		conn->fd = -1;
		conn->state = CONN_DOWN;
		return ret;
	}
	if (connected_now)
		connected(conn);
	return 0;
}

static void mark_dirty(struct vxhs_conn *conn)
{
	if (!list_linked(&conn->dirty_link))
		list_add_tail(&conn->dirty_link, &conn->loop->dirty);
}

int conn_queue_io(struct vxhs_conn *conn, struct vxhs_io *io)
{
	struct vxhs_req *req = io->req;
	struct vxhs_hdr hdr;
	uint64_t cookie;
	bool by_ref;
	int ret;

	/* First: a REGION_ADD it needs goes ahead of it. */
	by_ref = region_use(conn, io);
	ret = loop_slot_get(conn->loop, io, &cookie);
	if (ret)
		return ret;
	/* Probes go out as synchronous requests, as the original sends them:
	 * real agents answer those with SYNC_RESP. */
	ret = vxhs_hdr_init_request(&hdr, req->opcode, req->vd->id, cookie,
				    io->offset, io->len, req->probe);
	if (ret) {
		loop_slot_put(conn->loop, io->slot);
		return ret;
	}
	if (req->opcode == VXHS_OP_FLUSH)
		hdr.io_offset = hdr.io_size = 0;
	if (req->opcode == VXHS_OP_LOCK_ACQUIRE)
		hdr.io_size = 0; /* io_offset: the tag; payload: the owner */
	/* The pattern, or the source: not io_size bytes. */
	if (req->opcode == VXHS_OP_WRITE_SAME || req->opcode == VXHS_OP_COPY)
		hdr.payload_size = req->iov[0].iov_len;
	hdr.io_remote_hdl = req->epoch;
	if (conn->agent->tls_packs)
		hdr.flags |= VXHS_FLAG_TLS_PACKS;
	if (by_ref) {
		hdr.flags |= VXHS_FLAG_BY_REF;
		hdr.payload_size = req->ref_iov.iov_len;
	}
	vxhs_hdr_encode(&hdr, io->hdr);

	io->conn = conn;
	io->hdr_sent = 0;
	io->moved = 0;
	io->by_copy = false;
	io->by_ref = by_ref;
	io->cur.iov = by_ref ? &req->ref_iov : req->iov;
	io->cur.cnt = by_ref ? 1 : req->iovcnt;
	io->cur.idx = by_ref ? 0 : io->first_idx;
	io->cur.off = by_ref ? 0 : io->first_off;
	/* A probe is a trivial request: do not let a hung agent hold a
	 * failover for a whole I/O timeout. */
	io->deadline = vxhs_now_ns() +
		       (req->probe ? MIN(req->vd->opts.io_timeout_ms,
					 req->vd->opts.connect_timeout_ms) :
				     req->vd->opts.io_timeout_ms) *
			       NSEC_PER_MSEC;
	list_add_tail(&io->link, &conn->inflight);
	io->load = io_data_bytes(io, by_ref);
	conn->nr_ios++;
	conn->io_bytes += io->load;
	list_add_tail(&io->tx_link, &conn->tx);
	mark_dirty(conn);
	return 0;
}

static uint64_t tx_payload_len(const struct vxhs_io *io)
{
	if (io->by_ref) /* the segment list */
		return io->req->ref_iov.iov_len;
	switch (io->req->opcode) {
	case VXHS_OP_WRITE:
		return io->len;
	case VXHS_OP_COMPARE_AND_WRITE: /* compared, then written */
		return 2 * io->len;
	case VXHS_OP_LOCK_ACQUIRE: /* the owner's name */
		return io->len;
	case VXHS_OP_WRITE_SAME: /* the pattern */
	case VXHS_OP_COPY:	 /* the source */
		return io->req->iov[0].iov_len;
	}
	return 0;
}

/* Accounts n payload bytes the head io sent from its pages. */
static void tx_advance_zc(struct vxhs_conn *conn, size_t n)
{
	struct vxhs_io *io =
		list_first_entry(&conn->tx, struct vxhs_io, tx_link);

	io->moved += n;
	if (io->moved == tx_payload_len(io))
		list_del(&io->tx_link);
}

/* Accounts n sent bytes to the queued requests in order. */
static void tx_advance(struct vxhs_conn *conn, size_t n)
{
	while (n && !list_empty(&conn->tx)) {
		struct vxhs_io *io =
			list_first_entry(&conn->tx, struct vxhs_io, tx_link);
		uint64_t step;

		if (io->hdr_sent < VXHS_HDR_SIZE) {
			step = MIN(n, VXHS_HDR_SIZE - io->hdr_sent);
			io->hdr_sent += step;
			n -= step;
		}
		step = MIN(n, tx_payload_len(io) - io->moved);
		iov_cursor_advance(&io->cur, step);
		io->moved += step;
		n -= step;
		if (io->hdr_sent == VXHS_HDR_SIZE &&
		    io->moved == tx_payload_len(io))
			list_del(&io->tx_link);
	}
}

static bool pages_wanted(struct vxhs_conn *conn, const struct vxhs_io *io)
{
	return conn->tp->pages_wanted && conn->tp->pages_wanted(conn, io);
}

void conn_flush(struct vxhs_conn *conn)
{
	struct iovec iov[TX_IOV_MAX];

	if (conn->dead || conn->state != CONN_UP)
		return;
	while (!list_empty(&conn->tx)) {
		struct vxhs_io *io =
			list_first_entry(&conn->tx, struct vxhs_io, tx_link);
		int n = 0;
		ssize_t sent;

		/* Its descriptor goes with its header, alone. */
		if (io->req->opcode == VXHS_OP_REGION_ADD && !io->hdr_sent) {
			sent = region_send_add(conn, io);
			if (sent > 0) {
				tx_advance(conn, (size_t)sent);
				continue;
			}
			if (sent == -EINTR)
				continue;
			if (sent == -EAGAIN)
				break;
			conn_fail(conn, (int)sent, "send failed");
			return;
		}
		if (io->hdr_sent == VXHS_HDR_SIZE && pages_wanted(conn, io)) {
			/* splice has no MSG_NOSIGNAL: SIGPIPE is blocked only
			 * on the I/O thread, which sends the pages. */
			if (conn->loop->submitting_inline) {
				mark_dirty(conn);
				break;
			}
			sent = conn->tp->send_pages(conn, io);
			if (sent >= 0) {
				tx_advance_zc(conn, (size_t)sent);
				continue;
			}
			if (sent == -EINTR)
				continue;
			if (sent == -EAGAIN)
				break;
			if (sent != -ENOTSUP) {
				conn_fail(conn, (int)sent, "send failed");
				return;
			}
		}
		list_for_each_entry (io, &conn->tx, tx_link) {
			uint64_t bytes;

			if (n >= TX_IOV_MAX - 1 ||
			    (n && io->req->opcode == VXHS_OP_REGION_ADD &&
			     !io->hdr_sent))
				break;
			if (io->hdr_sent < VXHS_HDR_SIZE) {
				iov[n].iov_base = io->hdr + io->hdr_sent;
				iov[n].iov_len = VXHS_HDR_SIZE - io->hdr_sent;
				n++;
			}
			/* Its payload goes from its pages, above. */
			if (pages_wanted(conn, io))
				break;
			n += iov_cursor_fill(&io->cur, iov + n, TX_IOV_MAX - n,
					     tx_payload_len(io) - io->moved,
					     &bytes);
			if (conn->tp->one_message_per_send(conn))
				break;
		}
		sent = conn->tp->sendv(conn, iov, n);
		if (sent == -EINTR)
			continue;
		if (sent == -EAGAIN)
			break;
		if (sent < 0) {
			conn_fail(conn, (int)sent, "send failed");
			return;
		}
		tx_advance(conn, (size_t)sent);
	}
	if (conn_update_events(conn))
		conn_fail(conn, -EIO, "cannot watch the socket");
}

static void protocol_error(struct vxhs_conn *conn, const char *why)
{
	loop_log(conn->loop, LOG_ERR,
		 "agent %s: protocol error: %s; dropping the connection",
		 conn->agent->name, why);
	conn_fail(conn, -EPROTO, why);
}

/* An answer is complete: hand it to the request layer. */
static void finish_answer(struct vxhs_conn *conn)
{
	struct vxhs_io *io = conn->rx_io;
	int32_t err = conn->rx_hdr.err;
	uint8_t *kv = conn->rx_kv;

	if (!vxhs_wire_err_known(err) && !vxhs_wire_err_known(-err) &&
	    !conn->agent->notes->odd_err_logged) {
		conn->agent->notes->odd_err_logged = true;
		loop_log(
			conn->loop, LOG_WARNING,
			"agent %s: answered error %d, which the protocol does not define; taken as EIO (logged once)",
			conn->agent->name, err);
	}
	conn->rx_in_payload = false;
	conn->rx_io = NULL;
	conn->rx_kv = NULL;
	conn->answered = true;
	/* Checked in begin_answer: within the range compared. */
	if (err == EILSEQ && io->req->miscompare && !io->orphan)
		*io->req->miscompare = conn->rx_hdr.io_nbytes;
	io_answered(io, vxhs_wire_err_to_errno(err), kv, conn->rx_kv_len);
	free(kv);
}

/*
 * Checks a decoded header against the request its cookie names. Returns
 * false (connection dropped) when the answer is not one the protocol allows.
 */
static bool begin_answer(struct vxhs_conn *conn, const uint8_t *raw)
{
	struct vxhs_hdr *h = &conn->rx_hdr;
	struct vxhs_io *io;
	uint64_t expect = 0;
	char why[160];
	int ret;

	ret = vxhs_hdr_decode(raw, h);
	if (ret == -EBADMSG) {
		protocol_error(conn, "bad marker in an answer header");
		return false;
	}
	io = loop_slot_lookup(conn->loop, h->cookie);
	if (!io || io->conn != conn) {
		snprintf(why, sizeof(why), "answer with unknown cookie %#llx",
			 (unsigned long long)h->cookie);
		protocol_error(conn, why);
		return false;
	}
	if (h->opcode != io->req->opcode) {
		snprintf(why, sizeof(why), "%s answer to a %s request",
			 vxhs_opcode_name(h->opcode),
			 vxhs_opcode_name(io->req->opcode));
		protocol_error(conn, why);
		return false;
	}
	if (list_linked(&io->tx_link)) {
		protocol_error(conn, "answer before the request was sent");
		return false;
	}
	if (!h->err && io->req->opcode == VXHS_OP_READ && !io->by_ref)
		expect = io->len;
	if (h->err == EILSEQ && (io->req->opcode != VXHS_OP_COMPARE_AND_WRITE ||
				 h->io_nbytes >= io->len)) {
		snprintf(why, sizeof(why),
			 "%s answer: data differing at %llu of %llu bytes",
			 vxhs_opcode_name(h->opcode),
			 (unsigned long long)h->io_nbytes,
			 (unsigned long long)io->len);
		protocol_error(conn, why);
		return false;
	}
	if (!h->err && vxhs_opcode_answers_kvset(io->req->opcode)) {
		if (h->payload_size < 12 ||
		    h->payload_size > STAT_PAYLOAD_MAX) {
			snprintf(why, sizeof(why), "%s answer of %llu bytes",
				 vxhs_opcode_name(h->opcode),
				 (unsigned long long)h->payload_size);
			protocol_error(conn, why);
			return false;
		}
		expect = h->payload_size;
	}
	if (h->payload_size != expect) {
		snprintf(why, sizeof(why),
			 "%s answer (err %d) carries %llu bytes, expected %llu",
			 vxhs_opcode_name(h->opcode), h->err,
			 (unsigned long long)h->payload_size,
			 (unsigned long long)expect);
		protocol_error(conn, why);
		return false;
	}

	conn->rx_io = io;
	conn->rx_left = h->payload_size;
	if (vxhs_opcode_answers_kvset(io->req->opcode) && expect) {
		conn->rx_kv = malloc(expect);
		conn->rx_kv_len = 0;
		if (!conn->rx_kv) {
			conn_fail(conn, -ENOMEM, "out of memory");
			return false;
		}
	}
	if (!conn->rx_left) {
		finish_answer(conn);
		return true;
	}
	conn->rx_in_payload = true;
	return true;
}

/* Places n payload bytes from buf where the current answer's data goes. */
static void take_payload(struct vxhs_conn *conn, const uint8_t *buf, size_t n)
{
	struct vxhs_io *io = conn->rx_io;

	if (conn->rx_kv) {
		memcpy(conn->rx_kv + conn->rx_kv_len, buf, n);
		conn->rx_kv_len += n;
	} else if (!io->orphan) {
		iov_cursor_copy_in(&io->cur, buf, n);
		io->moved += n;
	}
	conn->rx_left -= n;
	if (!conn->rx_left)
		finish_answer(conn);
}

static void parse_buffer(struct vxhs_conn *conn)
{
	while (!conn->dead && conn->state == CONN_UP) {
		size_t avail = conn->rx_end - conn->rx_start;
		const uint8_t *p = conn->rxbuf + conn->rx_start;

		if (conn->rx_in_payload) {
			size_t n = (size_t)MIN((uint64_t)avail, conn->rx_left);

			if (!n)
				return;
			conn->rx_start += n;
			take_payload(conn, p, n);
			continue;
		}
		if (avail < VXHS_HDR_SIZE)
			return;
		conn->rx_start += VXHS_HDR_SIZE;
		if (!begin_answer(conn, p))
			return;
	}
}

/* Reads a large read payload straight into the caller's buffers. */
static ssize_t read_direct(struct vxhs_conn *conn)
{
	struct vxhs_io *io = conn->rx_io;
	struct iovec iov[RX_IOV_MAX];
	uint64_t bytes;
	int n = iov_cursor_fill(&io->cur, iov, RX_IOV_MAX, conn->rx_left,
				&bytes);
	ssize_t got = conn->tp->recvv(conn, iov, n);

	if (got > 0) {
		iov_cursor_advance(&io->cur, (uint64_t)got);
		io->moved += (uint64_t)got;
		conn->rx_left -= (uint64_t)got;
		if (!conn->rx_left)
			finish_answer(conn);
	}
	return got;
}

/* Reads into the receive buffer and parses what arrived. */
static ssize_t read_buffered(struct vxhs_conn *conn, size_t *asked)
{
	struct iovec one;
	ssize_t got;

	if (conn->rx_start == conn->rx_end) {
		conn->rx_start = conn->rx_end = 0;
	} else if (conn->rx_end == RX_BUF_SIZE) {
		memmove(conn->rxbuf, conn->rxbuf + conn->rx_start,
			conn->rx_end - conn->rx_start);
		conn->rx_end -= conn->rx_start;
		conn->rx_start = 0;
	}
	one.iov_base = conn->rxbuf + conn->rx_end;
	one.iov_len = RX_BUF_SIZE - conn->rx_end;
	*asked = one.iov_len;
	got = conn->tp->recvv(conn, &one, 1);
	if (got > 0) {
		conn->rx_end += (size_t)got;
		parse_buffer(conn);
	}
	return got;
}

void conn_read(struct vxhs_conn *conn)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		size_t asked = 0;
		ssize_t got;

		if (conn->dead || conn->state != CONN_UP)
			return;
		if (conn->rx_in_payload && conn->rx_start == conn->rx_end &&
		    !conn->rx_kv && !conn->rx_io->orphan &&
		    conn->rx_left >= DIRECT_READ_MIN) {
			/* A large payload streams in: read on while it
			 * comes, a short read notwithstanding. */
			got = read_direct(conn);
		} else {
			got = read_buffered(conn, &asked);
		}
		if (got == 0) {
			conn_fail(conn, -ECONNRESET, "closed by the agent");
			return;
		}
		if (got == -EINTR)
			continue;
		if (got < 0) {
			if (got != -EAGAIN)
				conn_fail(conn, (int)got, "receive failed");
			return;
		}
		/* The next read would say EAGAIN: a system call saved per
		 * event. */
		if (asked && conn->tp->drained(conn, (size_t)got, asked))
			break;
	}
	/* GnuTLS may hold decrypted bytes the socket no longer signals: they
	 * are read after every other connection of the loop had its turn. */
	if (conn->tp->has_pending(conn) && !list_linked(&conn->ready_link))
		list_add_tail(&conn->ready_link, &conn->loop->rx_ready);
}

static void finish_connect(struct vxhs_conn *conn)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn->agent->sa_next++;
		conn_fail(conn, -err, "connect failed");
		return;
	}
	connected(conn);
}

void conn_handle_events(struct vxhs_conn *conn, uint32_t events)
{
	if (conn->dead)
		return;
	if (conn->state == CONN_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			finish_connect(conn);
		return;
	}
	if (conn->state == CONN_HANDSHAKE) {
		handshake(conn);
		return;
	}
	if (conn->state != CONN_UP)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(conn);
	if ((events & EPOLLOUT) && !conn->dead && conn->state == CONN_UP)
		conn_flush(conn);
}

void conn_fail(struct vxhs_conn *conn, int err, const char *why)
{
	struct vxhs_io *io, *next;
	unsigned int n = 0;

	if (conn->state == CONN_DOWN)
		return;
	err = conn->tp->explain_loss(conn, err);
	conn->tp->end(conn);
	if (conn->fd >= 0 && region_park(conn, err))
		conn->fd = -1; /* epoll no longer watches it */
	if (conn->fd >= 0) {
		loop_epoll_set(conn->loop, conn->fd, &conn->events, 0, conn);
		close(conn->fd);
		conn->fd = -1;
	}
	conn->state = CONN_DOWN;
	conn->retry_at = vxhs_now_ns() + CONN_RETRY_NS;
	conn->rx_in_payload = false;
	conn->rx_io = NULL;
	conn->rx_start = conn->rx_end = 0;
	free(conn->rx_kv);
	conn->rx_kv = NULL;
	if (list_linked(&conn->dirty_link) && !conn->dead)
		list_del(&conn->dirty_link);
	if (list_linked(&conn->ready_link))
		list_del(&conn->ready_link);

	list_for_each_entry (io, &conn->inflight, link)
		n++;
	if (err != -ECANCELED)
		loop_log_limited(conn->loop, &conn->agent->notes->log_conn,
				 n ? LOG_WARNING : LOG_INFO,
				 "agent %s: connection lost (%s: %s)%s",
				 conn->agent->name, why, strerror(-err),
				 n ? "; its requests go to the retry queue" :
				     "");
	list_for_each_entry_safe (io, next, &conn->inflight, link)
		io_transport_error(io, err);
}

void conn_check_timeouts(struct vxhs_conn *conn, uint64_t now)
{
	struct vxhs_io *io;

	if (conn->state == CONN_CONNECTING && now > conn->connect_deadline) {
		conn->agent->sa_next++;
		conn_fail(conn, -ETIMEDOUT, "connect timed out");
		return;
	}
	if (conn->state == CONN_HANDSHAKE && now > conn->connect_deadline) {
		conn_fail(conn, -ETIMEDOUT, "TLS handshake timed out");
		return;
	}
	list_for_each_entry (io, &conn->inflight, link) {
		if (now > io->deadline) {
			conn_fail(conn, -ETIMEDOUT, "request timed out");
			return;
		}
	}
}

/* Connections die inside their own event handlers; free them afterwards. */
void conn_free(struct vxhs_conn *conn)
{
	if (conn->dead)
		return;
	conn_fail(conn, -ECANCELED, "closed");
	conn->dead = true;
	if (list_linked(&conn->dirty_link))
		list_del(&conn->dirty_link);
	list_add_tail(&conn->dirty_link, &conn->loop->graveyard);
}

void conn_destroy_dead(struct vxhs_loop *loop)
{
	while (!list_empty(&loop->graveyard)) {
		struct vxhs_conn *conn = list_first_entry(
			&loop->graveyard, struct vxhs_conn, dirty_link);

		list_del(&conn->dirty_link);
		free(conn->rxbuf);
		free(conn);
	}
}
