// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One I/O thread of a context: an epoll loop over its connections, the
 * submission queue callers feed (or the request a caller sends itself while
 * the thread waits), its table of requests in flight, and the periodic
 * tick that drives timeouts and failover. Nothing here is shared with the
 * context's other loops.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"

#define MAX_EVENTS 64

void loop_log(struct vxhs_loop *loop, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > loop->opts.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (loop->opts.log)
		loop->opts.log(loop->opts.log_opaque, level, msg);
	else
		fprintf(stderr, "vxhs: %s\n", msg);
}

void loop_log_limited(struct vxhs_loop *loop, struct log_limit *l, int level,
		      const char *fmt, ...)
{
	uint64_t now = vxhs_now_ns();
	char msg[1024];
	va_list ap;

	if (level > loop->opts.log_level)
		return;
	if (now < l->until) {
		l->missed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->missed)
		loop_log(loop, level,
			 "%s (and %u more like it in the last %llu s)", msg,
			 l->missed,
			 (unsigned long long)(LOG_LIMIT_NS / NSEC_PER_SEC));
	else
		loop_log(loop, level, "%s", msg);
	l->until = now + LOG_LIMIT_NS;
	l->missed = 0;
}

int loop_epoll_set(struct vxhs_loop *loop, int fd, uint32_t *cur,
		   uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };
	int op;

	if (*cur == events)
		return 0;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = *cur ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
		return -errno;
	*cur = events;
	return 0;
}

int loop_slot_get(struct vxhs_loop *loop, struct vxhs_io *io, uint64_t *cookie)
{
	uint32_t i;

	if (loop->free_slot == UINT32_MAX) {
		uint32_t n = loop->nr_slots ? loop->nr_slots * 2 : 256;
		struct slot *s;

		if (n > (1u << 24))
			return -ENOMEM;
		s = realloc(loop->slots, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (i = loop->nr_slots; i < n; i++) {
			s[i].io = NULL;
			s[i].gen = 1;
			s[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		loop->free_slot = loop->nr_slots;
		loop->slots = s;
		loop->nr_slots = n;
	}
	i = loop->free_slot;
	loop->free_slot = loop->slots[i].next_free;
	loop->slots[i].io = io;
	io->slot = i;
	*cookie = (uint64_t)loop->slots[i].gen << 32 | i;
	return 0;
}

void loop_slot_put(struct vxhs_loop *loop, uint32_t i)
{
	loop->slots[i].io = NULL;
	loop->slots[i].gen++;
	loop->slots[i].next_free = loop->free_slot;
	loop->free_slot = i;
}

struct vxhs_io *loop_slot_lookup(struct vxhs_loop *loop, uint64_t cookie)
{
	uint32_t i = (uint32_t)cookie, gen = (uint32_t)(cookie >> 32);

	if (i >= loop->nr_slots || loop->slots[i].gen != gen)
		return NULL;
	return loop->slots[i].io;
}

/* Set on each I/O thread: the sync calls must not wait there. */
static __thread bool on_io_thread;

bool loop_on_io_thread(void)
{
	return on_io_thread;
}

static void wake(struct vxhs_loop *loop)
{
	uint64_t one = 1;

	/* Only fails with EAGAIN when the counter is saturated: still awake. */
	if (write(loop->wakefd, &one, sizeof(one)) < 0)
		return;
}

static void handle_msg(struct vxhs_loop *loop, struct vxhs_msg *msg);
static void flush_dirty(struct vxhs_loop *loop);

/*
 * The I/O thread is waiting for events and nothing is queued before this
 * request: the caller dispatches and sends it from its own thread, saving
 * the wake-up of the I/O thread, one thread switch per request. What
 * needs the I/O thread afterwards (callbacks of requests that ended here,
 * connections that failed) wakes it.
 */
static void submit_inline(struct vxhs_loop *loop, struct vxhs_msg *msg)
{
	bool wanted;

	loop->submitting_inline = true;
	handle_msg(loop, msg);
	flush_dirty(loop);
	loop->submitting_inline = false;
	wanted = !list_empty(&loop->deferred) ||
		 !list_empty(&loop->deferred_vds) ||
		 !list_empty(&loop->dirty) || !list_empty(&loop->graveyard) ||
		 !list_empty(&loop->troubled);
	pthread_mutex_unlock(&loop->work_lock);
	if (wanted)
		wake(loop);
}

void loop_submit(struct vxhs_loop *loop, struct vxhs_msg *msg)
{
	bool was_empty;

	pthread_mutex_lock(&loop->subq_lock);
	was_empty = list_empty(&loop->subq);
	if (msg->type == MSG_REQ && was_empty && !on_io_thread &&
	    !pthread_mutex_trylock(&loop->work_lock)) {
		pthread_mutex_unlock(&loop->subq_lock);
		submit_inline(loop, msg);
		return;
	}
	list_add_tail(&msg->link, &loop->subq);
	pthread_mutex_unlock(&loop->subq_lock);
	/* The I/O thread takes the whole queue at once after each wake-up, so
	 * only the first message into an empty queue needs to wake it, and
	 * only if it waits: awake, it looks at the queue before it waits
	 * (io_thread), which saves a system call and a wake-up. */
	if (was_empty && atomic_load(&loop->sleeping))
		wake(loop);
}

void loop_submit_wait(struct vxhs_loop *loop, struct vxhs_msg *msg)
{
	msg->done = false;
	loop_submit(loop, msg);
	pthread_mutex_lock(&loop->subq_lock);
	while (!msg->done)
		pthread_cond_wait(&loop->subq_cond, &loop->subq_lock);
	pthread_mutex_unlock(&loop->subq_lock);
}

/* Tells a thread in loop_submit_wait() that its message was handled. */
void loop_msg_complete(struct vxhs_loop *loop, struct vxhs_msg *msg)
{
	pthread_mutex_lock(&loop->subq_lock);
	msg->done = true;
	pthread_cond_broadcast(&loop->subq_cond);
	pthread_mutex_unlock(&loop->subq_lock);
}

static void handle_open(struct vxhs_loop *loop, struct vxhs_vdisk *vd)
{
	const struct vxhs_open_opts *o = &vd->opts;

	for (unsigned int i = 0; i < o->nr_agents; i++) {
		int ret = agent_get(loop, o, i, &vd->res[i], vd->tls,
				    &vd->agents[i]);

		if (ret) {
			while (i--)
				agent_put(vd->agents[i]);
			vd->open_result = ret;
			loop_msg_complete(loop, vd->open_msg);
			return;
		}
	}
	list_add_tail(&vd->link, &loop->vdisks);
	region_id_get(vd);
	vd->trouble_start = vxhs_now_ns();
	vd->next_probe_at = vd->trouble_start;
	vd->probes_left = vd->nr_agents;
	list_add_tail(&vd->trouble_link, &loop->troubled);
	vd_step(vd, vd->trouble_start);
}

static void handle_close(struct vxhs_loop *loop, struct vxhs_vdisk *vd)
{
	struct vxhs_agent *agent;

	struct vxhs_conn *probe = vd->probe;

	vd_set_state(vd, VD_CLOSED);
	vd->probe = NULL;
	if (probe)
		conn_free(probe);
	vd_fail_waiting(vd, -ECANCELED);

	/* Answers to what is still on the wire are read and dropped. */
	list_for_each_entry (agent, &loop->agents, link) {
		for (unsigned int i = 0; i < agent->nr_conns; i++) {
			struct vxhs_io *io;

			list_for_each_entry (io, &agent->conns[i]->inflight,
					     link)
				if (io->req->vd == vd && !io->orphan)
					io_orphan(io);
		}
	}
	region_orphan_parked(loop, vd);
	if (list_linked(&vd->trouble_link))
		list_del(&vd->trouble_link);
	list_del(&vd->link);
	region_id_put(vd);
	for (unsigned int i = 0; i < vd->nr_agents; i++)
		agent_put(vd->agents[i]);
}

static void handle_msg(struct vxhs_loop *loop, struct vxhs_msg *msg)
{
	switch (msg->type) {
	case MSG_REQ:
		req_dispatch(msg->req);
		break;
	case MSG_OPEN:
		handle_open(loop, msg->vd);
		/* completed by vd_step once a probe settles the open */
		break;
	case MSG_CLOSE:
		handle_close(loop, msg->vd);
		loop_msg_complete(loop, msg);
		break;
	}
}

static void drain_subq(struct vxhs_loop *loop)
{
	struct list_head q;
	struct vxhs_msg *msg, *next;

	list_init(&q);
	pthread_mutex_lock(&loop->subq_lock);
	list_splice_tail(&loop->subq, &q);
	pthread_mutex_unlock(&loop->subq_lock);

	list_for_each_entry_safe (msg, next, &q, link) {
		list_del(&msg->link);
		handle_msg(loop, msg);
	}
}

static void tick(struct vxhs_loop *loop, uint64_t now)
{
	struct vxhs_agent *agent;
	struct vxhs_vdisk *vd, *next;

	list_for_each_entry (agent, &loop->agents, link)
		for (unsigned int i = 0; i < agent->nr_conns; i++)
			conn_check_timeouts(agent->conns[i], now);
	region_check_parks(loop);
	list_for_each_entry_safe (vd, next, &loop->troubled, trouble_link) {
		if (vd->probe)
			conn_check_timeouts(vd->probe, now);
		vd_step(vd, now);
	}
	loop->next_tick = now + TICK_NS;
}

/* Each connection once: one an inline submitter cannot finish (pages to
 * splice) marks itself dirty again for the I/O thread. */
static void flush_dirty(struct vxhs_loop *loop)
{
	struct list_head q;

	list_init(&q);
	list_splice_tail(&loop->dirty, &q);
	while (!list_empty(&q)) {
		struct vxhs_conn *conn =
			list_first_entry(&q, struct vxhs_conn, dirty_link);

		list_del(&conn->dirty_link);
		conn_flush(conn);
	}
}

static void read_ready(struct vxhs_loop *loop)
{
	struct list_head q;

	list_init(&q);
	list_splice_tail(&loop->rx_ready, &q);
	while (!list_empty(&q)) {
		struct vxhs_conn *conn =
			list_first_entry(&q, struct vxhs_conn, ready_link);

		list_del(&conn->ready_link);
		conn_read(conn);
	}
}

static bool subq_pending(struct vxhs_loop *loop)
{
	bool pending;

	pthread_mutex_lock(&loop->subq_lock);
	pending = !list_empty(&loop->subq);
	pthread_mutex_unlock(&loop->subq_lock);
	return pending;
}

static void *io_thread(void *arg)
{
	struct vxhs_loop *loop = arg;
	struct epoll_event evs[MAX_EVENTS];

	on_io_thread = true;
	pthread_mutex_lock(&loop->work_lock);
	while (!atomic_load(&loop->stop)) {
		uint64_t now = vxhs_now_ns();
		int timeout = 0, n;

		if (loop->next_tick > now && list_empty(&loop->rx_ready))
			timeout =
				(int)((loop->next_tick - now) / NSEC_PER_MSEC) +
				1;
		/* Callers may submit inline while this waits. Announced
		 * before the queue is looked at, so a message queued after
		 * the look sees it and wakes this thread (loop_submit). */
		pthread_mutex_unlock(&loop->work_lock);
		atomic_store(&loop->sleeping, true);
		if (subq_pending(loop))
			timeout = 0;
		n = epoll_wait(loop->epfd, evs, MAX_EVENTS, timeout);
		atomic_store(&loop->sleeping, false);
		pthread_mutex_lock(&loop->work_lock);
		/* First what inline submissions left, in order: events, then
		 * completions (a FAILED event comes before the requests it
		 * fails), before a close can end their vdisk. */
		vd_notify_deferred(loop);
		req_finish_deferred(loop);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;

				if (read(loop->wakefd, &v, sizeof(v)) < 0)
					continue;
				continue;
			}
			/* A connection freed by an earlier event of this
			 * batch is only marked dead until the loop ends. */
			conn_handle_events(evs[i].data.ptr, evs[i].events);
		}
		read_ready(loop);
		drain_subq(loop);
		now = vxhs_now_ns();
		if (now >= loop->next_tick)
			tick(loop, now);
		/* A connection's failure may requeue on another. */
		while (!list_empty(&loop->dirty))
			flush_dirty(loop);
		conn_destroy_dead(loop);
	}
	pthread_mutex_unlock(&loop->work_lock);
	return NULL;
}

int loop_init(struct vxhs_loop *loop, const struct vxhs_ctx_opts *opts,
	      unsigned int idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	char name[16];
	sigset_t all, old;
	int ret;

	loop->opts = *opts;
	list_init(&loop->subq);
	list_init(&loop->agents);
	list_init(&loop->agent_notes);
	list_init(&loop->vdisks);
	list_init(&loop->troubled);
	list_init(&loop->dirty);
	list_init(&loop->rx_ready);
	list_init(&loop->graveyard);
	list_init(&loop->parks);
	loop->free_slot = UINT32_MAX;
	list_init(&loop->deferred);
	list_init(&loop->deferred_vds);
	req_pool_init(&loop->req_pool);
	pthread_mutex_init(&loop->work_lock, NULL);
	pthread_mutex_init(&loop->subq_lock, NULL);
	pthread_cond_init(&loop->subq_cond, NULL);

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: epoll_create1: %m");
		goto destroy_locks;
	}
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wakefd < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: eventfd: %m");
		goto close_epfd;
	}
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: epoll_ctl: %m");
		goto close_wakefd;
	}

	/* The I/O thread inherits a mask with every signal blocked, so the
	 * application's handlers never run on it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&loop->thread, NULL, io_thread, loop);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		set_error(ret, "vxhs_ctx_new: cannot start an I/O thread: %s",
			  strerror(-ret));
		goto close_wakefd;
	}
	snprintf(name, sizeof(name), "vxhs-io%u", idx);
	pthread_setname_np(loop->thread, name);
	return 0;

close_wakefd:
	close(loop->wakefd);
close_epfd:
	close(loop->epfd);
destroy_locks:
	pthread_cond_destroy(&loop->subq_cond);
	pthread_mutex_destroy(&loop->subq_lock);
	pthread_mutex_destroy(&loop->work_lock);
	obj_pool_fini(&loop->req_pool);
	return ret;
}

void loop_fini(struct vxhs_loop *loop)
{
	atomic_store(&loop->stop, true);
	wake(loop);
	pthread_join(loop->thread, NULL);
	if (!list_empty(&loop->vdisks))
		loop_log(loop, LOG_ERR, "context freed with vdisks still open");
	close(loop->wakefd);
	close(loop->epfd);
	agent_notes_free(loop);
	region_parks_free(loop);
	req_finish_deferred(loop);
	free(loop->slots);
	obj_pool_fini(&loop->req_pool);
	pthread_cond_destroy(&loop->subq_cond);
	pthread_mutex_destroy(&loop->subq_lock);
	pthread_mutex_destroy(&loop->work_lock);
}
