// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One client connection. The loop thread reads and parses; workers send the
 * answers. A session is freed when the loop has let go of it and the last
 * request that points at it is gone, so its descriptor is never reused
 * while a worker may still write to it.
 *
 * Limits, each affecting only the connection that reaches it: requests in
 * flight (stop reading until answers drain), buffer memory shared by all
 * connections (same), payload larger than --max-io (answer EMSGSIZE and
 * close: the stream cannot be trusted to resynchronise), a bad marker
 * (close).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define RX_BUF_SIZE	(64 * 1024)
#define DIRECT_MIN	(16 * 1024)
#define TX_IOV_MAX	128
#define READS_PER_EVENT 16
#define DENIALS_LOGGED	16

/* Who the peer is: its uid on the UNIX socket, else TLS tells later. */
static int identify(struct session *s, enum session_kind kind)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char name[32];

	if (kind == SESSION_TCP) {
		if (tls_server_enabled()) {
			s->ident.kind = IDENT_TLS;
			return session_tls_start(s);
		}
		s->ident.kind = IDENT_PLAIN;
		snprintf(s->ident.label, sizeof(s->ident.label), "plaintext");
		return 0;
	}
	s->ident.kind = IDENT_UNIX;
	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	snprintf(name, sizeof(name), "uid:%u", (unsigned int)cred.uid);
	s->ident.names[0] = strdup(name);
	if (!s->ident.names[0])
		return -ENOMEM;
	s->ident.nr_names = 1;
	snprintf(s->ident.label, sizeof(s->ident.label), "%s", name);
	return 0;
}

static void free_session(struct session *s)
{
	session_tls_end(s);
	for (unsigned int i = 0; i < s->ident.nr_names; i++)
		free(s->ident.names[i]);
	pthread_mutex_destroy(&s->tx_lock);
	free(s->rxbuf);
	free(s);
}

struct session *session_new(int fd, const char *peer, enum session_kind kind)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->rxbuf = malloc(RX_BUF_SIZE);
	if (!s->rxbuf) {
		free(s);
		return NULL;
	}
	s->fd = fd;
	atomic_init(&s->refs, 1);
	atomic_init(&s->nr_reqs, 0);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	pthread_mutex_init(&s->tx_lock, NULL);
	list_init(&s->txq);
	list_init(&s->ready);
	list_init(&s->for_workers);
	list_init(&s->link);
	list_init(&s->again_link);
	s->last_rx = s->started = vxhs_now_ns();
	if (identify(s, kind)) {
		free_session(s);
		return NULL;
	}
	return s;
}

void session_put(struct session *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	close(s->fd);
	free_session(s);
}

/* Caller holds tx_lock. */
static void update_watch(struct session *s)
{
	uint32_t ev = 0;

	if (s->closing)
		return;
	if (s->handshaking) {
		loop_watch(s, session_tls_wants_write(s) ? EPOLLOUT : EPOLLIN);
		return;
	}
	if (!s->throttled && !atomic_load(&draining))
		ev |= EPOLLIN;
	/* A failed socket is always ready for writing: the next event
	 * closes the session, whether or not it is still reading. */
	if (s->tx_blocked || atomic_load(&s->tx_failed))
		ev |= EPOLLOUT;
	loop_watch(s, ev);
}

static void answer_sent(struct session *s, struct request *r)
{
	list_del(&r->link);
	request_free(r);
	atomic_fetch_sub(&s->nr_reqs, 1);
	loops_request_done();
	session_put(s);
}

static uint64_t answer_payload(const struct request *r)
{
	return r->err ? 0 : r->out_payload;
}

/* The rest of a read answer that goes from the page cache. */
static ssize_t send_from_cache(struct session *s, struct request *r)
{
	uint64_t done = r->sent - VXHS_HDR_SIZE;
	off_t off = (off_t)(r->hdr.io_offset + done);
	ssize_t n = sendfile(s->fd, r->vd->fd, &off,
			     (size_t)(r->out_payload - done));

	if (n == 0) {
		/* Only if the file shrank under the read: the answer
		 * cannot be finished, so the connection cannot go on. */
		vlog(LOG_WARNING, "%s: vdisk %s shrank under a read", s->peer,
		     r->hdr.target);
		errno = EIO;
		return -1;
	}
	return n;
}

/* Header and payload iovecs of the queue, up to a payload from the cache. */
static int tx_gather(struct session *s, struct iovec *iov)
{
	struct request *r;
	int cnt = 0;

	list_for_each_entry (r, &s->txq, link) {
		if (cnt + 2 > TX_IOV_MAX)
			break;
		if (r->sent < VXHS_HDR_SIZE) {
			iov[cnt].iov_base = r->out + r->sent;
			iov[cnt++].iov_len = VXHS_HDR_SIZE - r->sent;
		}
		if (r->out_file && answer_payload(r))
			break;
		if (answer_payload(r)) {
			uint64_t done = r->sent > VXHS_HDR_SIZE ?
						r->sent - VXHS_HDR_SIZE :
						0;

			iov[cnt].iov_base = r->buf + done;
			iov[cnt++].iov_len = answer_payload(r) - done;
		}
	}
	return cnt;
}

/* Caller holds tx_lock. Sends as much of the queue as the socket takes. */
static void tx_flush_locked(struct session *s)
{
	struct iovec iov[TX_IOV_MAX];
	bool was_blocked = s->tx_blocked;

	while (!list_empty(&s->txq) && !atomic_load(&s->tx_failed)) {
		struct request *head =
			list_first_entry(&s->txq, struct request, link);
		ssize_t n;

		if (head->out_file && answer_payload(head) &&
		    head->sent >= VXHS_HDR_SIZE)
			n = send_from_cache(s, head);
		else
			n = session_send(s, iov, tx_gather(s, iov));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				s->tx_blocked = true;
				break;
			}
			vlog(LOG_INFO, "%s: send failed: %m", s->peer);
			shutdown(s->fd, SHUT_RDWR);
			s->tx_blocked = false;
			atomic_store(&s->tx_failed, true);
			update_watch(s);
			break;
		}
		while (n > 0) {
			struct request *r2 =
				list_first_entry(&s->txq, struct request, link);
			uint64_t total = VXHS_HDR_SIZE + answer_payload(r2);
			uint64_t step = MIN((uint64_t)n, total - r2->sent);

			r2->sent += step;
			n -= (ssize_t)step;
			if (r2->sent == total)
				answer_sent(s, r2);
		}
		s->tx_blocked = false;
	}
	if (s->tx_blocked != was_blocked)
		update_watch(s);
}

/*
 * Answers from a worker batch: queued per session with one flush each. The
 * sessions are noted first, because a flush may free the requests it sent.
 */
void session_send_batch(struct request **reqs, unsigned int n)
{
	struct session *sess[n];

	for (unsigned int i = 0; i < n; i++)
		sess[i] = reqs[i]->s;
	for (unsigned int i = 0; i < n; i++) {
		struct session *s = sess[i];

		if (!s)
			continue;
		pthread_mutex_lock(&s->tx_lock);
		for (unsigned int j = i; j < n; j++) {
			if (sess[j] != s)
				continue;
			sess[j] = NULL;
			if (s->closing) {
				list_init(&reqs[j]->link);
				answer_sent(s, reqs[j]);
			} else {
				list_add_tail(&reqs[j]->link, &s->txq);
			}
		}
		if (!s->closing && !s->tx_blocked)
			tx_flush_locked(s);
		pthread_mutex_unlock(&s->tx_lock);
	}
}

void session_close(struct session *s, const char *why)
{
	struct request *r, *next;

	pthread_mutex_lock(&s->tx_lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->tx_lock);
		return;
	}
	loop_watch(s, 0);
	s->closing = true;
	list_for_each_entry_safe (r, next, &s->txq, link)
		answer_sent(s, r);
	list_for_each_entry_safe (r, next, &s->ready, link)
		answer_sent(s, r);
	pthread_mutex_unlock(&s->tx_lock);

	vlog(LOG_INFO, "%s: connection closed (%s)", s->peer, why);
	if (s->rx_req) {
		struct request *req = s->rx_req;

		s->rx_req = NULL;
		list_init(&req->link);
		pthread_mutex_lock(&s->tx_lock);
		answer_sent(s, req);
		pthread_mutex_unlock(&s->tx_lock);
	}
	list_del(&s->link);
	list_del(&s->again_link);
	atomic_fetch_sub(&s->loop->nr_sessions, 1);
	session_put(s);
}

static void set_throttled(struct session *s, bool on)
{
	pthread_mutex_lock(&s->tx_lock);
	s->throttled = on;
	update_watch(s);
	pthread_mutex_unlock(&s->tx_lock);
}

/*
 * Hands a fully received request on. Errors, and I/O the page cache serves
 * at once, are answered here; their answers leave together after the
 * current batch of input is parsed (session_send_ready).
 */
static void submit(struct session *s, struct request *r)
{
	if (r->err) {
		request_execute(r);
		list_add_tail(&r->link, &s->ready);
	} else if (request_try_inline(r)) {
		list_add_tail(&r->link, &s->ready);
	} else {
		list_add_tail(&r->link, &s->for_workers);
		s->nr_for_workers++;
	}
}

/* After a batch of input: hand work over, send what is answered. */
void session_send_ready(struct session *s)
{
	workers_queue(&s->for_workers, s->nr_for_workers);
	s->nr_for_workers = 0;
	if (list_empty(&s->ready))
		return;
	pthread_mutex_lock(&s->tx_lock);
	if (s->closing) {
		while (!list_empty(&s->ready))
			answer_sent(s, list_first_entry(&s->ready,
							struct request, link));
	} else {
		list_splice_tail(&s->ready, &s->txq);
		if (!s->tx_blocked)
			tx_flush_locked(s);
	}
	pthread_mutex_unlock(&s->tx_lock);
}

/* One line per denial, up to a limit per connection (a peer must not
 * be able to flood the log). */
static void audit_denial(struct session *s, const struct vxhs_hdr *h)
{
	if (s->denials++ < DENIALS_LOGGED)
		vlog(LOG_WARNING,
		     "audit: denied %s of vdisk '%s' to %s (%s, %s rights)",
		     vxhs_opcode_name(h->opcode), h->target, s->ident.label,
		     s->peer, s->acl_right == ACL_RO ? "read-only" : "no");
	else if (s->denials == DENIALS_LOGGED + 1)
		vlog(LOG_WARNING,
		     "audit: %s (%s): further denials on this connection are not logged",
		     s->ident.label, s->peer);
}

/*
 * Takes the header at raw. Returns 1 when consumed, 0 when the session must
 * wait (limits), -1 when it was closed.
 */
static int begin_request(struct session *s, const uint8_t *raw)
{
	struct vxhs_hdr h;
	struct request *r;
	uint64_t buf_len;
	const char *why;
	int32_t err;
	int ret;

	ret = vxhs_hdr_decode(raw, &h);
	if (ret == -EBADMSG) {
		vlog(LOG_WARNING, "%s: bad marker %#x; closing the connection",
		     s->peer,
		     raw[0] | raw[1] << 8 | raw[2] << 16 |
			     (unsigned int)raw[3] << 24);
		session_close(s, "protocol error");
		return -1;
	}
	if (atomic_load(&s->nr_reqs) >= config.max_reqs_per_conn)
		return 0;

	err = request_admit(s, &h, ret, &why, &buf_len);
	/* This connection's share first, then everyone's. */
	if (buf_len && atomic_load(&s->nr_reqs) &&
	    atomic_load(&s->buffered) + buf_len > config.max_conn_buffer)
		return 0;
	if (buf_len && !mem_reserve(buf_len))
		return 0;

	r = calloc(1, sizeof(*r));
	if (r && buf_len) {
		r->buf = malloc(buf_len);
		if (!r->buf) {
			free(r);
			r = NULL;
		}
	}
	if (!r) {
		mem_release(buf_len);
		return 0;
	}
	r->hdr = h;
	r->err = err;
	r->buf_len = buf_len;
	/* Large plaintext payloads go into pipes if they can (failing
	 * that, into buf). */
	if (!err && h.opcode == VXHS_OP_WRITE && !s->tls && !s->no_pipes)
		payload_pipe_open(&r->pipe, h.payload_size);
	atomic_fetch_add(&s->buffered, buf_len);
	r->s = s;
	list_init(&r->link);
	atomic_fetch_add(&s->refs, 1);
	atomic_fetch_add(&s->nr_reqs, 1);
	loops_request_started();

	if (err == EACCES)
		audit_denial(s, &h);
	else if (err)
		vlog(LOG_WARNING,
		     "%s: rejecting %s (opcode %#x) for vdisk '%.63s': %s",
		     s->peer, vxhs_opcode_name(h.opcode), h.opcode, h.target,
		     why);
	if (h.payload_size > config.max_io) {
		/* We will not read that much to find the next header. */
		r->err = EMSGSIZE;
		submit(s, r);
		session_send_ready(s);
		session_close(s, "payload larger than --max-io");
		return -1;
	}
	if (h.payload_size) {
		s->rx_req = r;
		s->rx_left = h.payload_size;
		s->rx_discard = r->err != 0;
	} else {
		submit(s, r);
	}
	return 1;
}

/*
 * Moves the len bytes the pipes hold into the buffer, for the rest of the
 * payload to follow them there; this connection's payloads then skip pipes.
 */
static int spill(struct session *s, struct request *r, uint64_t len)
{
	int ret = payload_pipe_take(&r->pipe, r->buf, len);

	payload_pipe_close(&r->pipe);
	if (!s->no_pipes)
		vlog(LOG_INFO,
		     "%s: a payload did not fit its pipes (small pieces, or no splice); buffering this connection's payloads",
		     s->peer);
	s->no_pipes = true;
	return ret;
}

static bool take_payload(struct session *s, const uint8_t *p, size_t n)
{
	struct request *r = s->rx_req;
	uint64_t at = r->buf_len - s->rx_left; /* payload bytes before p */
	size_t piped = 0;

	if (payload_pipe_active(&r->pipe)) {
		piped = payload_pipe_put(&r->pipe, p, n);
		if (piped < n && spill(s, r, at + piped)) {
			session_close(s, "payload pipe failed");
			return false;
		}
	}
	if (!s->rx_discard && piped < n)
		memcpy(r->buf + at + piped, p + piped, n - piped);
	s->rx_left -= n;
	if (!s->rx_left) {
		s->rx_req = NULL;
		submit(s, r);
	}
	return true;
}

/* Returns false when the session is closed or must wait. */
static bool parse(struct session *s)
{
	for (;;) {
		size_t avail = s->rx_end - s->rx_start;
		int ret;

		if (s->rx_req) {
			size_t n = (size_t)MIN((uint64_t)avail, s->rx_left);

			if (!n)
				return true;
			s->rx_start += n;
			if (!take_payload(s, s->rxbuf + s->rx_start - n, n))
				return false;
			continue;
		}
		if (avail < VXHS_HDR_SIZE)
			return true;
		ret = begin_request(s, s->rxbuf + s->rx_start);
		if (ret < 0)
			return false;
		if (ret == 0) {
			set_throttled(s, true);
			return false;
		}
		s->rx_start += VXHS_HDR_SIZE;
	}
}

static ssize_t read_direct(struct session *s)
{
	struct request *r = s->rx_req;
	uint64_t got = r->buf_len - s->rx_left;
	ssize_t n = 0;

	if (payload_pipe_active(&r->pipe)) {
		n = payload_pipe_fill(&r->pipe, s->fd, s->rx_left);
		/* Pipes full, or a socket that cannot splice: the buffer
		 * takes the rest. */
		if (n == -ENOBUFS || n == -EINVAL)
			n = spill(s, r, got);
		if (n < 0) {
			errno = (int)-n;
			return -1;
		}
	}
	if (!payload_pipe_active(&r->pipe))
		n = session_recv(s, r->buf + got, s->rx_left);
	if (n > 0) {
		s->rx_left -= (uint64_t)n;
		if (!s->rx_left) {
			s->rx_req = NULL;
			submit(s, r);
		}
	}
	return n;
}

/* Starts or stops the clock on a header that has not fully arrived. */
static void note_partial_header(struct session *s)
{
	if (s->rx_req || s->rx_start == s->rx_end)
		s->header_since = 0;
	else if (!s->header_since)
		s->header_since = s->last_rx;
}

/*
 * Reads and parses up to READS_PER_EVENT times, then answers. With TLS, one
 * read is one record: the answers to records already read ahead wait for
 * them, to leave in one send. Input still buffered when the turn ends gets
 * another turn after the other sessions (loop_again), so that a client
 * that never pauses cannot keep its network thread to itself.
 */
static void rx(struct session *s)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n;
		bool ok;

		if (s->closing || s->throttled)
			return;
		/* A payload pipe takes the rest of its payload directly:
		 * only the bytes that came with the header are put in. */
		if (s->rx_req && !s->rx_discard && s->rx_start == s->rx_end &&
		    (s->rx_left >= DIRECT_MIN ||
		     payload_pipe_active(&s->rx_req->pipe))) {
			n = read_direct(s);
		} else {
			if (s->rx_start == s->rx_end) {
				s->rx_start = s->rx_end = 0;
			} else if (s->rx_end == RX_BUF_SIZE) {
				memmove(s->rxbuf, s->rxbuf + s->rx_start,
					s->rx_end - s->rx_start);
				s->rx_end -= s->rx_start;
				s->rx_start = 0;
			}
			n = session_recv(s, s->rxbuf + s->rx_end,
					 RX_BUF_SIZE - s->rx_end);
			if (n > 0)
				s->rx_end += (size_t)n;
		}
		if (n <= 0)
			session_send_ready(s); /* what earlier reads asked */
		if (n == 0) {
			session_close(
				s, s->rx_start == s->rx_end && !s->rx_req ?
					   "closed by the client" :
					   "closed by the client mid-message");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				char why[64];

				snprintf(why, sizeof(why), "receive: %s",
					 strerror(errno));
				session_close(s, why);
			}
			return;
		}
		s->last_rx = vxhs_now_ns();
		ok = parse(s);
		note_partial_header(s);
		if (ok && !s->throttled && i + 1 < READS_PER_EVENT &&
		    session_tls_has_pending(s))
			continue;
		session_send_ready(s);
		if (!ok)
			return;
	}
	if (!s->closing && !s->throttled && session_tls_has_pending(s))
		loop_again(s);
}

/* TLS first; requests only once the client has shown its certificate. */
static void handshake(struct session *s)
{
	int ret = session_tls_handshake(s);

	if (ret < 0) {
		session_close(s, "TLS handshake failed");
		return;
	}
	if (ret > 0)
		s->last_rx = vxhs_now_ns();
	pthread_mutex_lock(&s->tx_lock);
	update_watch(s);
	pthread_mutex_unlock(&s->tx_lock);
	/* The first requests may have come with the last handshake bytes. */
	if (ret > 0)
		rx(s);
}

void session_on_events(struct session *s, uint32_t events)
{
	if (s->closing)
		return;
	/* Closing below drops the loop's reference; keep s alive. */
	atomic_fetch_add(&s->refs, 1);
	if (s->handshaking) {
		handshake(s);
		session_put(s);
		return;
	}
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&s->tx_lock);
		s->tx_blocked = false;
		tx_flush_locked(s);
		pthread_mutex_unlock(&s->tx_lock);
	}
	/* Set here or by a worker's flush, whose thread may not close. */
	if (atomic_load(&s->tx_failed)) {
		session_close(s, "send failed");
		session_put(s);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rx(s);
	if (!s->closing && (events & (EPOLLHUP | EPOLLERR)) &&
	    !(events & EPOLLIN))
		session_close(s, "connection reset");
	session_put(s);
}

/* Called by the loop's tick: lifts a throttle once there is room again. */
void session_resume(struct session *s)
{
	if (s->closing || !s->throttled)
		return;
	if (atomic_load(&s->nr_reqs) >= config.max_reqs_per_conn)
		return;
	atomic_fetch_add(&s->refs, 1);
	s->throttled = false;
	if (parse(s)) {
		set_throttled(s, false);
		/* What TLS read ahead raises no socket event: read it now. */
		if (session_tls_has_pending(s))
			rx(s);
	}
	session_send_ready(s);
	session_put(s);
}

/* True when the session should be closed for silence or slowness. */
bool session_idle(struct session *s)
{
	uint64_t now = vxhs_now_ns(), quiet = now - s->last_rx;
	uint64_t header_timeout = config.header_timeout_s * NSEC_PER_SEC;

	/* A handshake or a header must be complete within the timeout of
	 * its first byte, however slowly the bytes trickle in (slowloris). */
	if (s->handshaking && now - s->started > header_timeout)
		return true;
	if (s->header_since && now - s->header_since > header_timeout)
		return true;
	/* Part of a payload and then nothing (that request counts in
	 * nr_reqs, so this comes first). */
	if (s->rx_req && quiet > header_timeout)
		return true;
	if (atomic_load(&s->nr_reqs))
		return false;
	return config.idle_timeout_s &&
	       quiet > config.idle_timeout_s * NSEC_PER_SEC;
}
