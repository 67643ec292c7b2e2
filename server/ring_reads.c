// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Reads the page cache holds, made in batches: a network thread queues
 * the reads of one session's batch of requests into its io_uring and
 * makes them all with one system call, where each was a preadv2 of its
 * own. Each read still says RWF_NOWAIT, so io_uring answers EAGAIN for
 * pages not cached instead of waiting for the disk in a thread of its
 * own: those reads go to the workers, as before.
 *
 * A session's reads are queued and made within its turn on the network
 * thread (session_send_ready, session_close), so the ring never holds
 * another session's reads, nor any once the turn ends. Without io_uring
 * (an old kernel, a seccomp policy, kernel.io_uring_disabled, or
 * --no-io-uring) each read is made at once, as before.
 */
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "vxhsd.h"

struct ring_reads {
	struct io_uring ring;
	unsigned int queued; /* not yet made */
	bool broken;	     /* the kernel refused a batch: not used again */
};

static atomic_bool warned;

struct ring_reads *ring_reads_new(void)
{
	struct ring_reads *rr;
	int ret;

	if (!config.io_uring)
		return NULL;
	rr = calloc(1, sizeof(*rr));
	if (!rr)
		return NULL;
	ret = io_uring_queue_init(RING_READS_MAX, &rr->ring, 0);
	if (ret < 0) {
		if (!atomic_exchange(&warned, true))
			vlog(LOG_NOTICE,
			     "io_uring unavailable (%s): each cached read is a system call of its own",
			     strerror(-ret));
		free(rr);
		return NULL;
	}
	return rr;
}

void ring_reads_free(struct ring_reads *rr)
{
	if (!rr)
		return;
	io_uring_queue_exit(&rr->ring);
	free(rr);
}

bool ring_read_queue(struct ring_reads *rr, struct request *r,
		     const struct iovec *iov, int cnt)
{
	struct io_uring_sqe *sqe;

	if (!rr || rr->broken)
		return false;
	if (rr->queued == RING_READS_MAX)
		ring_reads_make(rr);
	sqe = rr->broken ? NULL : io_uring_get_sqe(&rr->ring);
	if (!sqe)
		return false;
	/* A single buffer goes by address: iov may be on the caller's
	 * stack; several are the request's own (ref_iov), which outlive
	 * the read. */
	if (cnt == 1)
		io_uring_prep_read(sqe, r->vd->fd, iov->iov_base,
				   (unsigned int)iov->iov_len,
				   r->hdr.io_offset);
	else
		io_uring_prep_readv(sqe, r->vd->fd, iov, (unsigned int)cnt,
				    r->hdr.io_offset);
	sqe->rw_flags = RWF_NOWAIT;
	io_uring_sqe_set_data(sqe, r);
	rr->queued++;
	return true;
}

/* Hands each completed read to done; returns how many there were. */
static unsigned int reap(struct ring_reads *rr)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&rr->ring, head, cqe)
	{
		session_read_done(io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&rr->ring, n);
	return n;
}

/*
 * The kernel refused to take reads (out of memory, say). Those it took
 * are awaited, as their buffers are still written; those it did not are
 * handed back unmade (ECANCELED: a worker makes them), and the ring is not
 * used again.
 */
static void give_up(struct ring_reads *rr, unsigned int left, int err)
{
	struct io_uring_sq *sq = &rr->ring.sq;
	unsigned int unmade = io_uring_sq_ready(&rr->ring);
	struct io_uring_cqe *cqe;

	vlog(LOG_ERR,
	     "io_uring: %s; cached reads are made one system call each from now on",
	     strerror(-err));
	rr->broken = true;
	for (unsigned int i = 0; i < unmade; i++) {
		unsigned int idx = sq->array[(*sq->khead + i) & sq->ring_mask];

		session_read_done(
			(struct request *)(uintptr_t)sq->sqes[idx].user_data,
			-ECANCELED);
	}
	left -= unmade;
	while (left) {
		int ret = io_uring_wait_cqe(&rr->ring, &cqe);

		if (ret < 0 && ret != -EINTR) {
			/* Nothing may free what the kernel still writes. */
			vlog(LOG_CRIT, "io_uring: %s with %u reads in flight",
			     strerror(-ret), left);
			abort();
		}
		left -= reap(rr);
	}
}

void ring_reads_make(struct ring_reads *rr)
{
	unsigned int left;

	if (!rr || !rr->queued)
		return;
	left = rr->queued;
	rr->queued = 0;
	while (left) {
		int ret = io_uring_submit_and_wait(&rr->ring, 1);

		if (ret < 0 && ret != -EINTR) {
			give_up(rr, left, ret);
			return;
		}
		left -= reap(rr);
	}
}
