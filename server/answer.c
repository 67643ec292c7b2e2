// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Answers and their sending. An answer is a header and a payload that is
 * either in the request's buffer or, for a read whose pages are all
 * cached on a plaintext connection, a range of the vdisk file that goes
 * with sendfile (no copy into a buffer and none out of it). A session's
 * answers queue on txq and leave in as few system calls as the socket
 * takes: header and buffer payloads of many answers in one writev, up to
 * the next answer from the page cache.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define TX_IOV_MAX 128

/*
 * Reads this large whose pages are all in the page cache go from there.
 * (Pages evicted between the check and the send make that one send wait
 * for the disk, on whichever thread sends.) Not on TCP unless asked:
 * splicing into TCP hands the stack a few pages per call, each batch
 * transmitted on its own, which measured slower than a copy
 * (performance.md, "Splicing into TCP").
 */
#define SENDFILE_MIN (64u * 1024)
#define SENDFILE_MAX (4u << 20)

int answer_from_cache(struct request *r)
{
	const struct vxhs_hdr *h = &r->hdr;

	if (r->s->tls || (!r->s->is_unix && !config.tcp_sendfile) ||
	    h->io_size < SENDFILE_MIN || h->io_size > SENDFILE_MAX)
		return 0;
	if (!vxhs_range_cached(r->vd->map, r->vd->map_len, h->io_offset,
			       h->io_size))
		return -1;
	r->out_file = true;
	fault_count_sendfile();
	return 1;
}

static uint64_t answer_payload(const struct request *r)
{
	return r->err ? 0 : r->out_payload;
}

/* Bytes of r that go on the wire: a truncated answer is half a header. */
static uint64_t answer_total(const struct request *r)
{
	return r->truncate ? VXHS_HDR_SIZE / 2 :
			     VXHS_HDR_SIZE + answer_payload(r);
}

/* The request is answered (or will never be): let go of it. */
void answer_release(struct session *s, struct request *r)
{
	list_del(&r->link);
	request_free(r);
	atomic_fetch_sub(&s->nr_reqs, 1);
	loops_request_done();
	session_put(s);
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
		slog(s, r->hdr.target, r->hdr.opcode, LOG_WARNING,
		     "%s: vdisk %s shrank under a read", s->peer,
		     r->hdr.target);
		errno = EIO;
		return -1;
	}
	return n;
}

/* Header and payload iovecs of the queue, up to a payload from the cache
 * or a truncated answer. */
static int gather(struct session *s, struct iovec *iov)
{
	struct request *r;
	int cnt = 0;

	list_for_each_entry (r, &s->txq, link) {
		uint64_t hdr_end = MIN(answer_total(r), VXHS_HDR_SIZE);

		/* A descriptor goes with a send of its own, at the head
		 * (local_send_answer; a truncated answer goes without). */
		if (cnt + 2 > TX_IOV_MAX || (cnt && r->out_fd[0] >= 0))
			break;
		if (r->sent < hdr_end) {
			iov[cnt].iov_base = r->out + r->sent;
			iov[cnt++].iov_len = hdr_end - r->sent;
		}
		if (r->truncate || (r->out_file && answer_payload(r)))
			break;
		if (answer_payload(r)) {
			uint64_t done = r->sent > VXHS_HDR_SIZE ?
						r->sent - VXHS_HDR_SIZE :
						0;

			iov[cnt].iov_base = r->buf + done;
			iov[cnt++].iov_len = answer_payload(r) - done;
		}
		/* Original clients read one message per socket event and
		 * never look for a second in the same TLS record. */
		if (s->tls && !atomic_load(&s->peer_packs))
			break;
	}
	return cnt;
}

static void fail_send(struct session *s)
{
	session_shutdown(s);
	s->tx_blocked = false;
	atomic_store(&s->tx_failed, true);
	session_update_watch(s);
}

/* Credits n bytes sent to the answers at the head of the queue. */
static void account_sent(struct session *s, uint64_t n)
{
	while (n > 0) {
		struct request *r =
			list_first_entry(&s->txq, struct request, link);
		uint64_t step = MIN(n, answer_total(r) - r->sent);

		r->sent += step;
		n -= step;
		if (r->sent < answer_total(r))
			continue;
		if (r->truncate) {
			vlog(LOG_NOTICE,
			     "%s: fault injection: answer cut short", s->peer);
			fail_send(s);
		}
		answer_release(s, r);
	}
}

void answers_flush_locked(struct session *s)
{
	struct iovec iov[TX_IOV_MAX];
	bool was_blocked = s->tx_blocked;

	while (!list_empty(&s->txq) && !atomic_load(&s->tx_failed) &&
	       !fault_paused()) {
		struct request *head =
			list_first_entry(&s->txq, struct request, link);
		ssize_t n;

		if (head->out_fd[0] >= 0 && !head->truncate)
			n = local_send_answer(s, head);
		else if (head->out_file && answer_payload(head) &&
			 head->sent >= VXHS_HDR_SIZE)
			n = send_from_cache(s, head);
		else
			n = session_send(s, iov, gather(s, iov));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				s->tx_blocked = true;
				break;
			}
			vlog(LOG_INFO, "%s: send failed: %m", s->peer);
			fail_send(s);
			break;
		}
		account_sent(s, (uint64_t)n);
		s->tx_blocked = false;
	}
	/* The send-progress clock: runs while answers wait. */
	if (list_empty(&s->txq) || !s->tx_blocked)
		atomic_store(&s->tx_stall_since, 0);
	else if (!atomic_load(&s->tx_stall_since))
		atomic_store(&s->tx_stall_since, vxhs_now_ns());
	if (s->tx_blocked != was_blocked)
		session_update_watch(s);
}

void answers_queue_locked(struct session *s, struct list_head *reqs)
{
	if (s->state == RX_CLOSING) {
		while (!list_empty(reqs))
			answer_release(s, list_first_entry(reqs, struct request,
							   link));
		return;
	}
	list_splice_tail(reqs, &s->txq);
	if (!s->tx_blocked)
		answers_flush_locked(s);
}

void answers_drop_locked(struct session *s)
{
	while (!list_empty(&s->txq))
		answer_release(s,
			       list_first_entry(&s->txq, struct request, link));
}

/* s may be freed by the release of its last answer: hold it meanwhile. */
void session_answer(struct session *s, struct list_head *reqs)
{
	if (list_empty(reqs))
		return;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_lock(&s->tx_lock);
	answers_queue_locked(s, reqs);
	pthread_mutex_unlock(&s->tx_lock);
	session_put(s);
}
