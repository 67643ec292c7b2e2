// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Network threads. Each owns the sessions the acceptor hands it and does
 * all their reading; a tick runs each session's timers and lifts its
 * throttle (session_tick).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define MAX_EVENTS 64
#define TICK_MS	   20

static struct loop *loops;
static unsigned int nr_loops, next_loop;
static atomic_bool stopping;
atomic_bool draining;

static void wake(struct loop *l)
{
	uint64_t one = 1;

	if (write(l->wakefd, &one, sizeof(one)) < 0)
		return; /* counter saturated: already awake */
}

int loop_watch(struct session *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };
	int op;

	if (events == s->events)
		return 0;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = s->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	/* A session with nothing to watch is deregistered; re-adding it is
	 * an ADD again. */
	if (epoll_ctl(s->loop->epfd, op, s->fd, &ev) < 0)
		return -errno;
	s->events = events;
	return 0;
}

void loop_again(struct session *s)
{
	if (!list_linked(&s->again_link))
		list_add_tail(&s->again_link, &s->loop->again);
}

/* One more turn for each session that had input left over. */
static void run_again(struct loop *l)
{
	struct list_head q;

	list_init(&q);
	list_splice_tail(&l->again, &q);
	while (!list_empty(&q)) {
		struct session *s =
			list_first_entry(&q, struct session, again_link);

		list_del(&s->again_link);
		/* Draining: no new requests, as for those with EPOLLIN off. */
		if (!atomic_load(&draining))
			session_on_events(s, EPOLLIN);
	}
}

static void take_inbox(struct loop *l)
{
	struct list_head in;

	list_init(&in);
	pthread_mutex_lock(&l->inbox_lock);
	list_splice_tail(&l->inbox, &in);
	pthread_mutex_unlock(&l->inbox_lock);

	while (!list_empty(&in)) {
		struct session *s = list_first_entry(&in, struct session, link);

		list_del(&s->link);
		list_add_tail(&s->link, &l->sessions);
		pthread_mutex_lock(&s->tx_lock);
		if (loop_watch(s, EPOLLIN) < 0) {
			pthread_mutex_unlock(&s->tx_lock);
			session_close(s, "cannot watch the socket");
			continue;
		}
		pthread_mutex_unlock(&s->tx_lock);
	}
}

static void tick(struct loop *l)
{
	struct session *s, *next;
	uint64_t now = vxhs_now_ns();

	list_for_each_entry_safe (s, next, &l->sessions, link)
		session_tick(s, now);
}

static void *loop_thread(void *arg)
{
	struct loop *l = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next_tick = 0;

	l->reads = ring_reads_new();
	while (!atomic_load(&stopping)) {
		int n = epoll_wait(l->epfd, evs, MAX_EVENTS,
				   list_empty(&l->again) ? TICK_MS : 0);
		uint64_t now;

		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;

				if (read(l->wakefd, &v, sizeof(v)) < 0)
					continue;
				take_inbox(l);
				continue;
			}
			session_on_events(evs[i].data.ptr, evs[i].events);
		}
		run_again(l);
		now = vxhs_now_ns();
		if (now >= next_tick) {
			tick(l);
			next_tick = now + TICK_MS * NSEC_PER_MSEC;
		}
	}
	while (!list_empty(&l->sessions))
		session_close(list_first_entry(&l->sessions, struct session,
					       link),
			      "agent stopping");
	ring_reads_free(l->reads);
	l->reads = NULL;
	return NULL;
}

int loops_start(unsigned int n)
{
	sigset_t all, old;
	int ret = 0;

	loops = calloc(n, sizeof(*loops));
	if (!loops)
		return -ENOMEM;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned int i = 0; i < n; i++) {
		struct loop *l = &loops[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		list_init(&l->sessions);
		list_init(&l->inbox);
		list_init(&l->again);
		pthread_mutex_init(&l->inbox_lock, NULL);
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (l->epfd < 0 || l->wakefd < 0 ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
			ret = -errno;
			break;
		}
		ret = -pthread_create(&l->thread, NULL, loop_thread, l);
		if (ret)
			break;
		pthread_setname_np(l->thread, "vxhsd-net");
		nr_loops++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

void loops_stop(void)
{
	atomic_store(&stopping, true);
	for (unsigned int i = 0; i < nr_loops; i++) {
		wake(&loops[i]);
		pthread_join(loops[i].thread, NULL);
		close(loops[i].epfd);
		close(loops[i].wakefd);
	}
	free(loops);
	loops = NULL;
	nr_loops = 0;
}

void loops_add_session(struct session *s)
{
	struct loop *l = &loops[next_loop++ % nr_loops];

	s->loop = l;
	atomic_fetch_add(&l->nr_sessions, 1);
	pthread_mutex_lock(&l->inbox_lock);
	list_add_tail(&s->link, &l->inbox);
	pthread_mutex_unlock(&l->inbox_lock);
	wake(l);
}

unsigned int loops_nr_sessions(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < nr_loops; i++)
		n += atomic_load(&loops[i].nr_sessions);
	return n;
}

void loops_drain(void)
{
	atomic_store(&draining, true);
	for (unsigned int i = 0; i < nr_loops; i++)
		wake(&loops[i]);
}

/* Requests still being executed or answered, over all sessions. */
static atomic_uint outstanding;

bool loops_drained(void)
{
	return atomic_load(&outstanding) == 0;
}

void loops_request_started(void)
{
	atomic_fetch_add(&outstanding, 1);
}

void loops_request_done(void)
{
	atomic_fetch_sub(&outstanding, 1);
}
