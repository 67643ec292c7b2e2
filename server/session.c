// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One client connection: the receive state machine (diagram and timers in
 * vxhsd.h). The loop thread reads and parses; answers leave from whichever
 * thread completes them (answer.c). A session is freed when the loop has
 * let go of it and the last request that points at it is gone, so its
 * descriptor is never reused while a worker may still write to it.
 *
 * Limits that make the session wait (THROTTLED, no receive clock):
 * requests in flight, and the memory budget (budget.c: this connection's
 * share, its identity's share, everyone's). Limits that close it: a
 * payload larger than --max-io (answered EMSGSIZE first: the stream cannot
 * be trusted to resynchronise), a bad marker, and the timers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define RX_BUF_SIZE	(64 * 1024)
#define READS_PER_EVENT 16
#define DENIALS_LOGGED	16

static const char *const state_names[] = {
	[RX_HANDSHAKE] = "HANDSHAKE", [RX_HEADER] = "HEADER",
	[RX_PAYLOAD] = "PAYLOAD",     [RX_DISCARD] = "DISCARD",
	[RX_THROTTLED] = "THROTTLED", [RX_CLOSING] = "CLOSING",
};

/* Who the peer is: its uid on the UNIX socket, else TLS tells later. */
static int identify(struct session *s, enum session_kind kind)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char name[32];

	if (kind == SESSION_TCP) {
		if (tls_server_enabled()) {
			s->ident.kind = IDENT_TLS;
			s->state = RX_HANDSHAKE;
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
	if (s->acct)
		account_put(s->acct);
	for (unsigned int i = 0; i < s->ident.nr_names; i++)
		free(s->ident.names[i]);
	usage_release(s);
	regions_free(s);
	pthread_mutex_destroy(&s->use_lock);
	pthread_mutex_destroy(&s->tx_lock);
	free(s->rxbuf);
	free(s);
}

struct session *session_new(int fd, const char *peer, const char *addr,
			    enum session_kind kind)
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
	s->is_unix = kind == SESSION_UNIX;
	s->pending_fd = -1;
	pthread_mutex_init(&s->region_lock, NULL);
	atomic_init(&s->refs, 1);
	atomic_init(&s->nr_reqs, 0);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	pthread_mutex_init(&s->tx_lock, NULL);
	pthread_mutex_init(&s->use_lock, NULL);
	list_init(&s->txq);
	list_init(&s->ready);
	list_init(&s->for_workers);
	list_init(&s->work);
	list_init(&s->link);
	list_init(&s->again_link);
	list_init(&s->all_link);
	list_init(&s->work_link);
	s->state = RX_HEADER;
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

void session_update_watch(struct session *s)
{
	uint32_t ev = 0;

	switch (s->state) {
	case RX_CLOSING:
		return; /* deregistered for good */
	case RX_HANDSHAKE:
		loop_watch(s, session_tls_wants_write(s) ? EPOLLOUT : EPOLLIN);
		return;
	case RX_HEADER:
	case RX_PAYLOAD:
	case RX_DISCARD:
		if (!atomic_load(&draining) && !atomic_load(&s->stop_reading))
			ev |= EPOLLIN;
		break;
	case RX_THROTTLED:
		break;
	}
	/* A failed socket is always ready for writing: the next event
	 * closes the session, whether or not it is still reading. */
	if (s->tx_blocked || atomic_load(&s->tx_failed))
		ev |= EPOLLOUT;
	loop_watch(s, ev);
}

/* The one place the receive state changes. Caller holds tx_lock. */
static void set_state_locked(struct session *s, enum rx_state to,
			     const char *why)
{
	if (s->state == to)
		return;
	vlog(LOG_DEBUG, "%s: %s -> %s (%s)", s->peer, state_names[s->state],
	     state_names[to], why);
	s->state = to;
	if (to == RX_CLOSING)
		loop_watch(s, 0);
	else
		session_update_watch(s);
}

static void set_state(struct session *s, enum rx_state to, const char *why)
{
	if (s->state == to)
		return;
	pthread_mutex_lock(&s->tx_lock);
	set_state_locked(s, to, why);
	pthread_mutex_unlock(&s->tx_lock);
}

/* Starts receiving a payload: it must all arrive by the deadline. */
static void expect_payload(struct session *s, struct request *r, bool keep)
{
	uint64_t len = r->hdr.payload_size;
	uint64_t rate = MAX(config.min_payload_rate, 1);

	s->rx_req = r;
	s->rx_left = len;
	s->rx_deadline = vxhs_now_ns() +
			 config.header_timeout_s * NSEC_PER_SEC +
			 len * NSEC_PER_SEC / rate;
	if (keep) {
		sink_open(&r->sink, s, r->buf, len);
		set_state(s, RX_PAYLOAD, "payload");
	} else {
		set_state(s, RX_DISCARD, "payload of a refused request");
	}
}

/* Releases a list of requests of a closing session. */
static void release_all(struct session *s, struct list_head *reqs)
{
	while (!list_empty(reqs))
		answer_release(s, list_first_entry(reqs, struct request, link));
}

void session_close(struct session *s, const char *why)
{
	struct list_head queued;

	/* The kernel writes into their buffers until they are made. */
	if (s->ring_bytes)
		ring_reads_make(s->loop->reads);
	pthread_mutex_lock(&s->tx_lock);
	if (s->state == RX_CLOSING) {
		pthread_mutex_unlock(&s->tx_lock);
		return;
	}
	set_state_locked(s, RX_CLOSING, why);
	/* The peer learns at once that its pages are no longer touched
	 * here, whatever workers still hold (region.c). */
	if (s->has_regions)
		session_shutdown(s);
	answers_drop_locked(s);
	release_all(s, &s->ready);
	release_all(s, &s->for_workers);
	if (s->rx_req) {
		list_init(&s->rx_req->link);
		answer_release(s, s->rx_req);
		s->rx_req = NULL;
	}
	pthread_mutex_unlock(&s->tx_lock);

	/* Requests no worker has started are not run at all. */
	list_init(&queued);
	workers_forget(s, &queued);
	pthread_mutex_lock(&s->tx_lock);
	release_all(s, &queued);
	pthread_mutex_unlock(&s->tx_lock);

	slog(s, NULL, -1, LOG_INFO, "%s: connection closed (%s)", s->peer, why);
	list_del(&s->link);
	list_del(&s->again_link);
	atomic_fetch_sub(&s->loop->nr_sessions, 1);
	admit_unregister(s);
	session_put(s);
}

/*
 * Answers ready this long leave before the rest of the batch is parsed:
 * the client takes them in while this thread serves the rest, where one
 * send at the end had the two take turns. Three full TLS records (twelve
 * 4 KiB answers): two, four and eight measured worse. On plaintext
 * sessions only once twelve answers wait too: larger answers each reach
 * the size alone, and a send per 64 KiB answer measured 7-10% slower than
 * one per batch (performance.md, "Answers in step with the client",
 * "ipsec-mb's AES-GCM, and plaintext answers in step").
 */
#define READY_SEND_BYTES (48u * 1024)
#define READY_SEND_PLAIN 12

/* Whether the answers ready or being read should leave now. */
static bool ready_to_send(const struct session *s)
{
	return s->ready_bytes + s->ring_bytes >= READY_SEND_BYTES &&
	       (s->tls || s->ready_count >= READY_SEND_PLAIN);
}

/* r is answered: its answer leaves with the batch's. */
static void ready_add(struct session *s, struct request *r)
{
	list_add_tail(&r->link, &s->ready);
	s->ready_bytes += VXHS_HDR_SIZE + r->out_payload;
	s->ready_count++;
}

/* Called while the ring's reads are reaped: what is answered is sent by
 * the session_send_ready that made them. */
void session_read_done(struct request *r, ssize_t n)
{
	struct session *s = r->s;

	s->ring_bytes -= VXHS_HDR_SIZE + r->hdr.io_size;
	s->ready_count--;
	if (request_read_done(r, n))
		ready_add(s, r);
	else
		list_add_tail(&r->link, &s->for_workers);
}

/*
 * Hands a fully received request on. Errors, and I/O the page cache serves
 * at once, are answered here; their answers leave together after the
 * current batch of input is parsed (session_send_ready), or once
 * READY_SEND_BYTES of them wait. Reads queued into the network thread's
 * ring are made then too, all with one system call.
 */
static void submit(struct session *s, struct request *r)
{
	/* In stream order: a REGION_ADD that follows, replacing the region,
	 * does not change what an earlier request names. */
	if (!r->err && (r->hdr.flags & VXHS_FLAG_BY_REF)) {
		int ret = region_resolve(r);

		if (ret)
			r->err = errno_to_wire(ret);
	}
	/* Reads queued before anything else runs here, as they were asked. */
	if (s->ring_bytes && r->hdr.opcode != VXHS_OP_READ)
		ring_reads_make(s->loop->reads);
	if (r->err) {
		request_execute(r);
		ready_add(s, r);
	} else {
		switch (request_try_inline(r)) {
		case INLINE_ANSWERED:
			ready_add(s, r);
			break;
		case INLINE_QUEUED:
			s->ring_bytes += VXHS_HDR_SIZE + r->hdr.io_size;
			s->ready_count++;
			break;
		case INLINE_NOT:
			list_add_tail(&r->link, &s->for_workers);
			break;
		}
	}
	if (ready_to_send(s))
		session_send_ready(s);
}

/* After a batch of input: make the queued reads, hand work over, send
 * what is answered. */
void session_send_ready(struct session *s)
{
	if (s->ring_bytes)
		ring_reads_make(s->loop->reads);
	workers_queue(s, &s->for_workers);
	if (list_empty(&s->ready))
		return;
	pthread_mutex_lock(&s->tx_lock);
	answers_queue_locked(s, &s->ready);
	pthread_mutex_unlock(&s->tx_lock);
	list_init(&s->ready);
	s->ready_bytes = 0;
	s->ready_count = 0;
}

/* Lines about a connection's refused requests, up to a limit per
 * connection (a peer must not be able to flood the log). */
static bool may_log_refusal(struct session *s)
{
	if (s->denials++ < DENIALS_LOGGED)
		return true;
	if (s->denials == DENIALS_LOGGED + 1)
		vlog(LOG_WARNING,
		     "%s (%s): further refused requests on this connection are not logged",
		     s->ident.label, s->peer);
	return false;
}

static void log_refusal(struct session *s, const struct vxhs_hdr *h,
			int decoded, int32_t err, const char *why)
{
	char id[4 * VXHS_TARGET_SIZE + 1];

	if (!may_log_refusal(s))
		return;
	if (err == EACCES)
		slog(s, h->target, h->opcode, LOG_WARNING,
		     "audit: denied %s of vdisk '%s' to %s (%s, %s rights)",
		     vxhs_opcode_name(h->opcode), h->target, s->ident.label,
		     s->peer, s->acl_right == ACL_RO ? "read-only" : "no");
	else
		slog(s, NULL, h->opcode, LOG_WARNING,
		     "%s: rejecting %s (opcode %#x) for vdisk '%s': %s",
		     s->peer, vxhs_opcode_name(h->opcode), h->opcode,
		     decoded == -ENAMETOOLONG ?
			     "(too long)" :
			     log_escape(h->target, id, sizeof(id)),
		     why);
}

static struct request *new_request(struct session *s, uint64_t buf_len)
{
	uint64_t cost = buf_len + REQUEST_OVERHEAD;
	struct request *r;

	if (!budget_charge(s, cost))
		return NULL;
	r = request_alloc(buf_len);
	if (!r) {
		budget_release(s, cost);
		return NULL;
	}
	r->charged = cost;
	r->s = s;
	list_init(&r->link);
	atomic_fetch_add(&s->refs, 1);
	atomic_fetch_add(&s->nr_reqs, 1);
	loops_request_started();
	return r;
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
		slog(s, NULL, -1, LOG_WARNING,
		     "%s: bad marker %#x; closing the connection", s->peer,
		     raw[0] | raw[1] << 8 | raw[2] << 16 |
			     (unsigned int)raw[3] << 24);
		session_close(s, "protocol error");
		return -1;
	}
	if (atomic_load(&s->nr_reqs) >= config.max_reqs_per_conn)
		return 0;
	if ((h.flags & VXHS_FLAG_TLS_PACKS) && !atomic_load(&s->peer_packs)) {
		atomic_store(&s->peer_packs, true);
		vlog(LOG_DEBUG, "%s: the client takes packed TLS records",
		     s->peer);
	}
	err = request_admit(s, &h, ret, &why, &buf_len);
	if (h.opcode == VXHS_OP_REGION_ADD)
		err = region_add(s, &h, err, &why);
	r = new_request(s, buf_len);
	if (!r)
		return 0;
	r->hdr = h;
	r->err = err;

	if (err)
		log_refusal(s, &h, ret, err, why);
	if (h.payload_size > config.max_io) {
		/* We will not read that much to find the next header. */
		r->err = EMSGSIZE;
		submit(s, r);
		session_send_ready(s);
		session_close(s, "payload larger than --max-io");
		return -1;
	}
	if (h.payload_size)
		expect_payload(s, r, !r->err);
	else
		submit(s, r);
	return 1;
}

/* The payload is in (or dropped): the request goes on. */
static void end_payload(struct session *s)
{
	struct request *r = s->rx_req;

	s->rx_req = NULL;
	set_state(s, RX_HEADER, "payload complete");
	submit(s, r);
}

/* Returns false when the session is closed or must wait. */
static bool parse(struct session *s)
{
	for (;;) {
		size_t avail = s->rx_end - s->rx_start;
		const uint8_t *p = s->rxbuf + s->rx_start;
		size_t n;
		int ret;

		switch (s->state) {
		case RX_PAYLOAD:
			n = (size_t)MIN((uint64_t)avail,
					s->rx_req->sink.len -
						s->rx_req->sink.got);
			if (!n)
				return true;
			s->rx_start += n;
			if (sink_put(&s->rx_req->sink, s, p, n)) {
				session_close(s, "payload pipe failed");
				return false;
			}
			if (sink_done(&s->rx_req->sink))
				end_payload(s);
			break;
		case RX_DISCARD:
			n = (size_t)MIN((uint64_t)avail, s->rx_left);
			if (!n)
				return true;
			s->rx_start += n;
			s->rx_left -= n;
			if (!s->rx_left)
				end_payload(s);
			break;
		case RX_HEADER:
		case RX_THROTTLED:
			if (avail < VXHS_HDR_SIZE)
				return true;
			ret = begin_request(s, p);
			if (ret < 0)
				return false;
			if (ret == 0) {
				set_state(s, RX_THROTTLED, "limits reached");
				return false;
			}
			s->rx_start += VXHS_HDR_SIZE;
			if (s->state == RX_THROTTLED)
				set_state(s, RX_HEADER, "room again");
			break;
		default:
			return false;
		}
	}
}

/* Starts or stops the clock on a header that has not fully arrived. */
static void note_partial_header(struct session *s)
{
	if (s->state != RX_HEADER || s->rx_start == s->rx_end)
		s->header_since = 0;
	else if (!s->header_since)
		s->header_since = s->last_rx;
}

static bool reading(const struct session *s)
{
	return (s->state == RX_HEADER || s->state == RX_PAYLOAD ||
		s->state == RX_DISCARD) &&
	       !atomic_load(&s->stop_reading);
}

/* One receive: straight into the payload's sink, or into rxbuf. *drained
 * says that a plain socket had no more than it gave (a short read; never
 * so for TLS, which gives a record at a time, nor for the sink, whose
 * pipes may take less). */
static ssize_t receive(struct session *s, bool *drained)
{
	size_t asked;
	ssize_t n;

	*drained = false;
	if (s->state == RX_PAYLOAD && s->rx_start == s->rx_end &&
	    sink_wants_direct(&s->rx_req->sink)) {
		n = sink_fill(&s->rx_req->sink, s);
		if (n > 0 && sink_done(&s->rx_req->sink))
			end_payload(s);
		return n;
	}
	if (s->rx_start == s->rx_end) {
		s->rx_start = s->rx_end = 0;
	} else if (s->rx_end == RX_BUF_SIZE) {
		memmove(s->rxbuf, s->rxbuf + s->rx_start,
			s->rx_end - s->rx_start);
		s->rx_end -= s->rx_start;
		s->rx_start = 0;
	}
	asked = RX_BUF_SIZE - s->rx_end;
	n = session_recv(s, s->rxbuf + s->rx_end, asked);
	if (n > 0)
		s->rx_end += (size_t)n;
	*drained = !s->tls && n > 0 && (size_t)n < asked;
	return n;
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
		bool ok, drained;
		ssize_t n;

		if (!reading(s))
			return;
		n = receive(s, &drained);
		if (n <= 0)
			session_send_ready(s); /* what earlier reads asked */
		if (n == 0) {
			session_close(
				s, s->state == RX_HEADER &&
						   s->rx_start == s->rx_end ?
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
		if (ok && reading(s) && i + 1 < READS_PER_EVENT &&
		    session_tls_has_pending(s))
			continue;
		session_send_ready(s);
		/* Level-triggered epoll signals more: the read that would
		 * say EAGAIN is saved. */
		if (!ok || drained)
			return;
	}
	if (reading(s) && session_tls_has_pending(s))
		loop_again(s);
}

/* TLS first; requests only once the client has shown its certificate. */
static void handshake(struct session *s)
{
	const char *why;
	int ret = session_tls_handshake(s);

	if (ret < 0) {
		session_close(s, "TLS handshake failed");
		return;
	}
	if (ret == 0) {
		pthread_mutex_lock(&s->tx_lock);
		session_update_watch(s);
		pthread_mutex_unlock(&s->tx_lock);
		return;
	}
	if (admit_identity(s, &why)) {
		session_close(s, why);
		return;
	}
	s->last_rx = vxhs_now_ns();
	set_state(s, RX_HEADER, "TLS handshake done");
	/* The first requests may have come with the last handshake bytes. */
	rx(s);
}

void session_on_events(struct session *s, uint32_t events)
{
	if (s->state == RX_CLOSING)
		return;
	/* Closing below drops the loop's reference; keep s alive. */
	atomic_fetch_add(&s->refs, 1);
	if (atomic_load(&s->dropped) || atomic_load(&s->revoked)) {
		session_close(s, atomic_load(&s->revoked) ?
					 "no longer allowed after a reload" :
					 "dropped by fault injection");
		session_put(s);
		return;
	}
	if (s->state == RX_HANDSHAKE) {
		handshake(s);
		session_put(s);
		return;
	}
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&s->tx_lock);
		s->tx_blocked = false;
		answers_flush_locked(s);
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
	if (s->state != RX_CLOSING && (events & (EPOLLHUP | EPOLLERR)) &&
	    !(events & EPOLLIN))
		session_close(s, "connection reset");
	session_put(s);
}

/* Why the session must be closed now, or NULL. */
static const char *expired(struct session *s, uint64_t now)
{
	uint64_t header_timeout = config.header_timeout_s * NSEC_PER_SEC;
	uint64_t stall = atomic_load(&s->tx_stall_since);

	/* Answers the peer does not take, whatever it is sending. */
	if (stall && config.send_timeout_s && !fault_paused() &&
	    now - stall > config.send_timeout_s * NSEC_PER_SEC)
		return "answers not read within --send-timeout";
	switch (s->state) {
	case RX_HANDSHAKE:
		/* However slowly the bytes trickle in (slowloris). */
		if (now - s->started > header_timeout)
			return "TLS handshake not done within --header-timeout";
		break;
	case RX_HEADER:
		if (s->header_since && now - s->header_since > header_timeout)
			return "header not complete within --header-timeout";
		if (config.idle_timeout_s && !atomic_load(&s->nr_reqs) &&
		    now - s->last_rx > config.idle_timeout_s * NSEC_PER_SEC)
			return "idle for --idle-timeout";
		break;
	case RX_PAYLOAD:
	case RX_DISCARD:
		if (now > s->rx_deadline)
			return "payload slower than --min-payload-rate";
		break;
	case RX_THROTTLED: /* vxhsd is the one waiting */
	case RX_CLOSING:
		break;
	}
	return NULL;
}

void session_tick(struct session *s, uint64_t now)
{
	const char *why =
		atomic_load(&s->revoked) ? "no longer allowed after a reload" :
		atomic_load(&s->dropped) ? "dropped by fault injection" :
					   expired(s, now);

	if (why) {
		session_close(s, why);
		return;
	}
	if (s->has_regions)
		regions_drop_idle(s, now);
	if (atomic_load(&draining)) {
		/* Half a request will never be finished now. */
		if (s->state == RX_PAYLOAD || s->state == RX_DISCARD) {
			session_close(s, "agent stopping");
			return;
		}
		pthread_mutex_lock(&s->tx_lock);
		session_update_watch(s);
		pthread_mutex_unlock(&s->tx_lock);
		return;
	}
	if (s->state == RX_THROTTLED) {
		atomic_fetch_add(&s->refs, 1);
		if (parse(s) && reading(s) && session_tls_has_pending(s))
			rx(s); /* TLS read ahead raises no socket event */
		note_partial_header(s);
		session_send_ready(s);
		session_put(s);
	} else if (reading(s) && session_tls_has_pending(s)) {
		loop_again(s); /* reading resumed after stop-reading */
	}
}
