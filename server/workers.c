// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The I/O worker pool: requests run against the vdisk files in parallel,
 * so one slow disk or vdisk does not hold up the others. Also the memory
 * budget for request buffers.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "vxhsd.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct list_head queue = { &queue, &queue };
static pthread_t *threads;
static unsigned int nr_threads;
static bool stop;

static _Atomic uint64_t mem_in_use;

bool mem_reserve(uint64_t bytes)
{
	uint64_t cur = atomic_load(&mem_in_use);

	do {
		/* A lone request always fits, or a huge one could never run. */
		if (cur && cur + bytes > config.memory_limit)
			return false;
	} while (!atomic_compare_exchange_weak(&mem_in_use, &cur, cur + bytes));
	return true;
}

void mem_release(uint64_t bytes)
{
	atomic_fetch_sub(&mem_in_use, bytes);
}

/*
 * A worker takes up to BATCH requests per wake-up and sends their answers
 * once per session at the end: fewer wake-ups, fewer send calls, and fewer
 * threads queueing on one file's inode lock.
 */
#define BATCH 8

static void *worker(void *arg)
{
	for (;;) {
		struct request *batch[BATCH];
		unsigned int n = 0;

		pthread_mutex_lock(&lock);
		while (list_empty(&queue) && !stop)
			pthread_cond_wait(&cond, &lock);
		while (n < BATCH && !list_empty(&queue)) {
			batch[n] =
				list_first_entry(&queue, struct request, link);
			list_del(&batch[n++]->link);
		}
		pthread_mutex_unlock(&lock);
		if (!n)
			return NULL;

		for (unsigned int i = 0; i < n; i++)
			request_execute(batch[i]);
		session_send_batch(batch, n);
	}
}

void workers_queue(struct list_head *reqs, unsigned int n)
{
	if (!n)
		return;
	pthread_mutex_lock(&lock);
	list_splice_tail(reqs, &queue);
	/* One worker per BATCH requests; the rest stay asleep. */
	for (unsigned int i = 0; i < n; i += BATCH)
		pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

int workers_start(unsigned int n)
{
	sigset_t all, old;
	int ret = 0;

	threads = calloc(n, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
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
