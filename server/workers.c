// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The I/O worker pool: requests run against the vdisk files in parallel,
 * so one slow disk or vdisk does not hold up the others.
 *
 * Work is queued per session, and sessions with work take turns: a worker
 * takes up to BATCH requests of the session at the head of the line, and
 * the session goes to the back. No session is served by more than half
 * the workers at once, so one peer cannot occupy them all. A batch's
 * answers leave together (one send for many small ones), but never wait
 * for a request that may block (flush, zeroing, opening a vdisk): what is
 * answered goes first. Zeroing runs in pieces, each a turn of its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "vxhsd.h"

#define BATCH 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
/* Sessions with work waiting and room for one more worker. Each queued
 * request holds a reference on its session, which keeps it alive here. */
static struct list_head runnable = { &runnable, &runnable };
static pthread_t *threads;
static unsigned int nr_threads, per_session;
static bool stop;

/* Caller holds lock. */
static void make_runnable(struct session *s)
{
	if (list_empty(&s->work) || list_linked(&s->work_link) ||
	    s->nr_running >= per_session)
		return;
	list_add_tail(&s->work_link, &runnable);
	pthread_cond_signal(&cond);
}

/* Caller holds lock: the next session's turn, or NULL to stop. */
static struct session *take_turn(struct list_head *batch)
{
	struct session *s;

	while (list_empty(&runnable) && !stop)
		pthread_cond_wait(&cond, &lock);
	if (list_empty(&runnable))
		return NULL;
	s = list_first_entry(&runnable, struct session, work_link);
	list_del(&s->work_link);
	for (int n = 0; n < BATCH && !list_empty(&s->work); n++) {
		struct request *r =
			list_first_entry(&s->work, struct request, link);

		list_del(&r->link);
		list_add_tail(&r->link, batch);
	}
	s->nr_running++;
	make_runnable(s); /* more work: to the back of the line */
	atomic_fetch_add(&s->refs, 1);
	return s;
}

static void run_batch(struct session *s, struct list_head *batch,
		      struct list_head *again)
{
	struct list_head done;

	list_init(&done);
	while (!list_empty(batch)) {
		struct request *r =
			list_first_entry(batch, struct request, link);

		list_del(&r->link);
		if (request_may_block(r))
			session_answer(s, &done);
		if (request_execute(r))
			list_add_tail(&r->link, &done);
		else
			list_add_tail(&r->link, again);
	}
	session_answer(s, &done);
}

static void *worker(void *arg)
{
	for (;;) {
		struct list_head batch, again;
		struct session *s;

		list_init(&batch);
		list_init(&again);
		pthread_mutex_lock(&lock);
		s = take_turn(&batch);
		pthread_mutex_unlock(&lock);
		if (!s)
			return NULL;
		run_batch(s, &batch, &again);
		pthread_mutex_lock(&lock);
		s->nr_running--;
		list_splice_tail(&again, &s->work);
		make_runnable(s);
		pthread_mutex_unlock(&lock);
		session_put(s);
	}
}

void workers_queue(struct session *s, struct list_head *reqs)
{
	if (list_empty(reqs))
		return;
	pthread_mutex_lock(&lock);
	list_splice_tail(reqs, &s->work);
	make_runnable(s);
	pthread_mutex_unlock(&lock);
}

void workers_forget(struct session *s, struct list_head *out)
{
	pthread_mutex_lock(&lock);
	list_splice_tail(&s->work, out);
	if (list_linked(&s->work_link))
		list_del(&s->work_link);
	pthread_mutex_unlock(&lock);
}

int workers_start(unsigned int n)
{
	sigset_t all, old;
	int ret = 0;

	threads = calloc(n, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	per_session = n > 1 ? n / 2 : 1;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; nr_threads < n; nr_threads++) {
		ret = -pthread_create(&threads[nr_threads], NULL, worker, NULL);
		if (ret)
			break;
		pthread_setname_np(threads[nr_threads], "vxhsd-io");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/* Runs what is queued, then ends the threads. */
void workers_stop(void)
{
	pthread_mutex_lock(&lock);
	stop = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (unsigned int i = 0; i < nr_threads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
	nr_threads = 0;
}
