// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The context: one I/O thread running an epoll loop over every connection,
 * the submission queue callers feed, the table of requests in flight, and
 * the periodic tick that drives timeouts and failover.
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

void ctx_log(struct vxhs_ctx *ctx, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > ctx->opts.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctx->opts.log)
		ctx->opts.log(ctx->opts.log_opaque, level, msg);
	else
		fprintf(stderr, "vxhs: %s\n", msg);
}

void ctx_log_limited(struct vxhs_ctx *ctx, struct log_limit *l, int level,
		     const char *fmt, ...)
{
	uint64_t now = vxhs_now_ns();
	char msg[1024];
	va_list ap;

	if (level > ctx->opts.log_level)
		return;
	if (now < l->until) {
		l->missed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->missed)
		ctx_log(ctx, level,
			"%s (and %u more like it in the last %llu s)", msg,
			l->missed,
			(unsigned long long)(LOG_LIMIT_NS / NSEC_PER_SEC));
	else
		ctx_log(ctx, level, "%s", msg);
	l->until = now + LOG_LIMIT_NS;
	l->missed = 0;
}

int ctx_epoll_set(struct vxhs_ctx *ctx, int fd, uint32_t *cur, uint32_t events,
		  void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };
	int op;

	if (*cur == events)
		return 0;
	if (!events)
		op = EPOLL_CTL_DEL;
	else
		op = *cur ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(ctx->epfd, op, fd, &ev) < 0)
		return -errno;
	*cur = events;
	return 0;
}

int ctx_slot_get(struct vxhs_ctx *ctx, struct vxhs_io *io, uint64_t *cookie)
{
	uint32_t i;

	if (ctx->free_slot == UINT32_MAX) {
		uint32_t n = ctx->nr_slots ? ctx->nr_slots * 2 : 256;
		struct slot *s;

		if (n > (1u << 24))
			return -ENOMEM;
		s = realloc(ctx->slots, n * sizeof(*s));
		if (!s)
			return -ENOMEM;
		for (i = ctx->nr_slots; i < n; i++) {
			s[i].io = NULL;
			s[i].gen = 1;
			s[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
		}
		ctx->free_slot = ctx->nr_slots;
		ctx->slots = s;
		ctx->nr_slots = n;
	}
	i = ctx->free_slot;
	ctx->free_slot = ctx->slots[i].next_free;
	ctx->slots[i].io = io;
	io->slot = i;
	*cookie = (uint64_t)ctx->slots[i].gen << 32 | i;
	return 0;
}

void ctx_slot_put(struct vxhs_ctx *ctx, uint32_t i)
{
	ctx->slots[i].io = NULL;
	ctx->slots[i].gen++;
	ctx->slots[i].next_free = ctx->free_slot;
	ctx->free_slot = i;
}

struct vxhs_io *ctx_slot_lookup(struct vxhs_ctx *ctx, uint64_t cookie)
{
	uint32_t i = (uint32_t)cookie, gen = (uint32_t)(cookie >> 32);

	if (i >= ctx->nr_slots || ctx->slots[i].gen != gen)
		return NULL;
	return ctx->slots[i].io;
}

bool ctx_on_io_thread(struct vxhs_ctx *ctx)
{
	return pthread_equal(pthread_self(), ctx->thread);
}

static void wake(struct vxhs_ctx *ctx)
{
	uint64_t one = 1;

	/* Only fails with EAGAIN when the counter is saturated: still awake. */
	if (write(ctx->wakefd, &one, sizeof(one)) < 0)
		return;
}

void ctx_submit(struct vxhs_ctx *ctx, struct vxhs_msg *msg)
{
	bool was_empty;

	pthread_mutex_lock(&ctx->subq_lock);
	was_empty = list_empty(&ctx->subq);
	list_add_tail(&msg->link, &ctx->subq);
	pthread_mutex_unlock(&ctx->subq_lock);
	/* The I/O thread takes the whole queue at once after each wake-up, so
	 * only the first message into an empty queue needs to wake it. */
	if (was_empty)
		wake(ctx);
}

void ctx_submit_wait(struct vxhs_ctx *ctx, struct vxhs_msg *msg)
{
	msg->done = false;
	ctx_submit(ctx, msg);
	pthread_mutex_lock(&ctx->subq_lock);
	while (!msg->done)
		pthread_cond_wait(&ctx->subq_cond, &ctx->subq_lock);
	pthread_mutex_unlock(&ctx->subq_lock);
}

/* Tells a thread in ctx_submit_wait() that its message was handled. */
void ctx_msg_complete(struct vxhs_ctx *ctx, struct vxhs_msg *msg)
{
	pthread_mutex_lock(&ctx->subq_lock);
	msg->done = true;
	pthread_cond_broadcast(&ctx->subq_cond);
	pthread_mutex_unlock(&ctx->subq_lock);
}

static void handle_open(struct vxhs_ctx *ctx, struct vxhs_vdisk *vd)
{
	const struct vxhs_open_opts *o = &vd->opts;

	for (unsigned int i = 0; i < o->nr_agents; i++) {
		int ret = agent_get(ctx, &o->agents[i], &vd->res[i],
				    o->conns_per_agent, o->connect_timeout_ms,
				    vd->tls, &vd->agents[i]);

		if (ret) {
			while (i--)
				agent_put(vd->agents[i]);
			vd->open_result = ret;
			ctx_msg_complete(ctx, vd->open_msg);
			return;
		}
	}
	list_add_tail(&vd->link, &ctx->vdisks);
	vd->trouble_start = vxhs_now_ns();
	vd->next_probe_at = vd->trouble_start;
	vd->probes_left = vd->nr_agents;
	list_add_tail(&vd->trouble_link, &ctx->troubled);
	vd_step(vd, vd->trouble_start);
}

static void handle_close(struct vxhs_ctx *ctx, struct vxhs_vdisk *vd)
{
	struct vxhs_agent *agent;

	struct vxhs_conn *probe = vd->probe;

	vd_set_state(vd, VD_CLOSED);
	vd->probe = NULL;
	if (probe)
		conn_free(probe);
	vd_fail_waiting(vd, -ECANCELED);

	/* Answers to what is still on the wire are read and dropped. */
	list_for_each_entry (agent, &ctx->agents, link) {
		for (unsigned int i = 0; i < agent->nr_conns; i++) {
			struct vxhs_io *io;

			list_for_each_entry (io, &agent->conns[i]->inflight,
					     link)
				if (io->req->vd == vd && !io->orphan)
					io_orphan(io);
		}
	}
	if (list_linked(&vd->trouble_link))
		list_del(&vd->trouble_link);
	list_del(&vd->link);
	for (unsigned int i = 0; i < vd->nr_agents; i++)
		agent_put(vd->agents[i]);
}

static void handle_msg(struct vxhs_ctx *ctx, struct vxhs_msg *msg)
{
	switch (msg->type) {
	case MSG_REQ:
		req_dispatch(msg->req);
		break;
	case MSG_OPEN:
		handle_open(ctx, msg->vd);
		/* completed by vd_step once a probe settles the open */
		break;
	case MSG_CLOSE:
		handle_close(ctx, msg->vd);
		ctx_msg_complete(ctx, msg);
		break;
	}
}

static void drain_subq(struct vxhs_ctx *ctx)
{
	struct list_head q;
	struct vxhs_msg *msg, *next;

	list_init(&q);
	pthread_mutex_lock(&ctx->subq_lock);
	list_splice_tail(&ctx->subq, &q);
	pthread_mutex_unlock(&ctx->subq_lock);

	list_for_each_entry_safe (msg, next, &q, link) {
		list_del(&msg->link);
		handle_msg(ctx, msg);
	}
}

static void tick(struct vxhs_ctx *ctx, uint64_t now)
{
	struct vxhs_agent *agent;
	struct vxhs_vdisk *vd, *next;

	list_for_each_entry (agent, &ctx->agents, link)
		for (unsigned int i = 0; i < agent->nr_conns; i++)
			conn_check_timeouts(agent->conns[i], now);
	list_for_each_entry_safe (vd, next, &ctx->troubled, trouble_link) {
		if (vd->probe)
			conn_check_timeouts(vd->probe, now);
		vd_step(vd, now);
	}
	ctx->next_tick = now + TICK_NS;
}

static void flush_dirty(struct vxhs_ctx *ctx)
{
	while (!list_empty(&ctx->dirty)) {
		struct vxhs_conn *conn = list_first_entry(
			&ctx->dirty, struct vxhs_conn, dirty_link);

		list_del(&conn->dirty_link);
		conn_flush(conn);
	}
}

static void *io_thread(void *arg)
{
	struct vxhs_ctx *ctx = arg;
	struct epoll_event evs[MAX_EVENTS];

	while (!atomic_load(&ctx->stop)) {
		uint64_t now = vxhs_now_ns();
		int timeout = 0, n;

		if (ctx->next_tick > now)
			timeout =
				(int)((ctx->next_tick - now) / NSEC_PER_MSEC) +
				1;
		n = epoll_wait(ctx->epfd, evs, MAX_EVENTS, timeout);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;

				if (read(ctx->wakefd, &v, sizeof(v)) < 0)
					continue;
				continue;
			}
			/* A connection freed by an earlier event of this
			 * batch is only marked dead until the loop ends. */
			conn_handle_events(evs[i].data.ptr, evs[i].events);
		}
		drain_subq(ctx);
		now = vxhs_now_ns();
		if (now >= ctx->next_tick)
			tick(ctx, now);
		flush_dirty(ctx);
		conn_destroy_dead(ctx);
	}
	return NULL;
}

void vxhs_ctx_opts_init(struct vxhs_ctx_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->log_level = LOG_WARNING;
}

int vxhs_ctx_new(const struct vxhs_ctx_opts *opts, struct vxhs_ctx **out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	sigset_t all, old;
	struct vxhs_ctx *ctx;
	int ret;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return set_error(-ENOMEM, "vxhs_ctx_new: out of memory");
	if (opts)
		ctx->opts = *opts;
	else
		vxhs_ctx_opts_init(&ctx->opts);
	list_init(&ctx->subq);
	list_init(&ctx->agents);
	list_init(&ctx->vdisks);
	list_init(&ctx->troubled);
	list_init(&ctx->dirty);
	list_init(&ctx->graveyard);
	ctx->free_slot = UINT32_MAX;
	pthread_mutex_init(&ctx->subq_lock, NULL);
	pthread_cond_init(&ctx->subq_cond, NULL);

	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->epfd < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: epoll_create1: %m");
		goto free_ctx;
	}
	ctx->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->wakefd < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: eventfd: %m");
		goto close_epfd;
	}
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->wakefd, &ev) < 0) {
		ret = set_error(-errno, "vxhs_ctx_new: epoll_ctl: %m");
		goto close_wakefd;
	}

	/* The I/O thread inherits a mask with every signal blocked, so the
	 * application's handlers never run on it. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&ctx->thread, NULL, io_thread, ctx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		set_error(ret, "vxhs_ctx_new: cannot start the I/O thread: %s",
			  strerror(-ret));
		goto close_wakefd;
	}
	pthread_setname_np(ctx->thread, "vxhs-io");
	*out = ctx;
	return 0;

close_wakefd:
	close(ctx->wakefd);
close_epfd:
	close(ctx->epfd);
free_ctx:
	pthread_cond_destroy(&ctx->subq_cond);
	pthread_mutex_destroy(&ctx->subq_lock);
	free(ctx);
	return ret;
}

void vxhs_ctx_free(struct vxhs_ctx *ctx)
{
	if (!ctx)
		return;
	atomic_store(&ctx->stop, true);
	wake(ctx);
	pthread_join(ctx->thread, NULL);
	if (!list_empty(&ctx->vdisks))
		ctx_log(ctx, LOG_ERR, "context freed with vdisks still open");
	close(ctx->wakefd);
	close(ctx->epfd);
	free(ctx->slots);
	pthread_cond_destroy(&ctx->subq_cond);
	pthread_mutex_destroy(&ctx->subq_lock);
	free(ctx);
}
