// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Opening and failover, per vdisk, as the original client does it:
 *
 *   OPENING  -- VDISK_STAT answered --------------------------> ACTIVE
 *   ACTIVE   -- transport lost ---------------------------------> QUIESCE
 *   QUIESCE  -- nothing of ours left in flight ------------------> FAILOVER
 *   FAILOVER -- CHECK_IO_FAILOVER_READY answered 0 --------------> ACTIVE
 *   QUIESCE/FAILOVER -- failover deadline passed ----------------> FAILED
 *
 * While not ACTIVE, requests wait in the retry queue; a probe goes to one
 * agent at a time on a fresh connection, starting with the agent after the
 * one that failed and coming back to it (a restarted agent is a failover
 * target like any other). Nothing here blocks: the tick drives it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"

static const char *const state_names[] = {
	[VD_OPENING] = "opening", [VD_ACTIVE] = "active",
	[VD_QUIESCE] = "quiesce", [VD_FAILOVER] = "failover",
	[VD_FAILED] = "failed",	  [VD_CLOSED] = "closed",
};

static void notify(struct vxhs_vdisk *vd, enum vxhs_vdisk_event ev)
{
	unsigned int n = vd->nr_deferred;

	if (!vd->opts.event)
		return;
	if (!vd->loop->submitting_inline) {
		vd->opts.event(vd, ev, vd->cur, vd->opts.event_opaque);
		return;
	}
	/* Not inside the caller's own submission: the I/O thread tells it
	 * (the last slot takes the newest, should there ever be more). */
	if (!n)
		list_add_tail(&vd->deferred_link, &vd->loop->deferred_vds);
	if (n == ARRAY_SIZE(vd->deferred))
		n--;
	vd->deferred[n].ev = ev;
	vd->deferred[n].cur = vd->cur;
	vd->nr_deferred = n + 1;
}

void vd_notify_deferred(struct vxhs_loop *loop)
{
	while (!list_empty(&loop->deferred_vds)) {
		struct vxhs_vdisk *vd = list_first_entry(
			&loop->deferred_vds, struct vxhs_vdisk, deferred_link);

		list_del(&vd->deferred_link);
		for (unsigned int i = 0; i < vd->nr_deferred; i++)
			vd->opts.event(vd, vd->deferred[i].ev,
				       vd->deferred[i].cur,
				       vd->opts.event_opaque);
		vd->nr_deferred = 0;
	}
}

void vd_set_state(struct vxhs_vdisk *vd, enum vd_state state)
{
	enum vd_state old = vd_state(vd);

	if (old == state)
		return;
	loop_log(vd->loop, LOG_DEBUG, "vdisk %s: %s -> %s", vd->id,
		 state_names[old], state_names[state]);
	atomic_store(&vd->state, state);
	if (state == VD_ACTIVE || state == VD_FAILED || state == VD_CLOSED) {
		if (list_linked(&vd->trouble_link))
			list_del(&vd->trouble_link);
	} else if (!list_linked(&vd->trouble_link)) {
		list_add_tail(&vd->trouble_link, &vd->loop->troubled);
	}
}

void vd_fail_waiting(struct vxhs_vdisk *vd, int err)
{
	while (!list_empty(&vd->retry)) {
		struct vxhs_io *io =
			list_first_entry(&vd->retry, struct vxhs_io, link);

		list_del(&io->link);
		atomic_fetch_sub(&vd->nr_waiting, 1);
		io_retire(io, err);
	}
}

static void resubmit_waiting(struct vxhs_vdisk *vd)
{
	struct list_head q;

	list_init(&q);
	list_splice_tail(&vd->retry, &q);
	while (!list_empty(&q)) {
		struct vxhs_io *io = list_first_entry(&q, struct vxhs_io, link);

		list_del(&io->link);
		atomic_fetch_sub(&vd->nr_waiting, 1);
		io_dispatch(io);
	}
}

void vd_quiesce(struct vxhs_vdisk *vd, int err)
{
	if (vd_state(vd) != VD_ACTIVE)
		return;
	if (vd->opts.failover_deadline_ms == VXHS_DEADLINE_NEVER)
		loop_log(
			vd->loop, LOG_WARNING,
			"vdisk %s: lost agent %s (%s); holding I/O until an agent takes over, however long",
			vd->id, vd->agents[vd->cur]->name, strerror(-err));
	else
		loop_log(
			vd->loop, LOG_WARNING,
			"vdisk %s: lost agent %s (%s); holding I/O for failover, giving up after %u ms",
			vd->id, vd->agents[vd->cur]->name, strerror(-err),
			vd->opts.failover_deadline_ms);
	vd->trouble_start = vxhs_now_ns();
	vd_set_state(vd, VD_QUIESCE);
	notify(vd, VXHS_EVENT_QUIESCE);
}

static void vd_fail(struct vxhs_vdisk *vd)
{
	struct vxhs_conn *probe = vd->probe;

	loop_log(
		vd->loop, LOG_ERR,
		"vdisk %s: no agent took over within %u ms; failing %u waiting requests until the vdisk is reopened",
		vd->id, vd->opts.failover_deadline_ms,
		atomic_load(&vd->nr_waiting));
	/* FAILED first, so the cancelled probe settles nothing. */
	vd_set_state(vd, VD_FAILED);
	vd->probe = NULL;
	if (probe)
		conn_free(probe);
	/* The event before the completions: whoever sees a request fail
	 * with -ENOTCONN already knows why. */
	notify(vd, VXHS_EVENT_FAILED);
	vd_fail_waiting(vd, -ENOTCONN);
}

static void open_settled(struct vxhs_vdisk *vd, int result)
{
	struct vxhs_msg *msg = vd->open_msg;

	vd->open_msg = NULL;
	vd->open_result = result;
	if (result) {
		/* The opener frees the vdisk; take it out of our lists. */
		vd_set_state(vd, VD_CLOSED);
		vd_fail_waiting(vd, -ECANCELED);
		list_del(&vd->link);
		for (unsigned int i = 0; i < vd->nr_agents; i++)
			agent_put(vd->agents[i]);
		vd->nr_agents = 0;
	}
	loop_msg_complete(vd->loop, msg);
}

static void start_probe(struct vxhs_vdisk *vd)
{
	struct vxhs_agent *agent = vd->agents[vd->probe_idx];
	uint16_t op = vd_state(vd) == VD_OPENING ? VXHS_OP_STAT :
						   VXHS_OP_FAILOVER_READY;
	struct vxhs_req *req;
	struct vxhs_conn *conn;
	int ret;

	loop_log_limited(vd->loop, &agent->notes->log_ask, LOG_INFO,
			 "vdisk %s: asking agent %s (%s)", vd->id, agent->name,
			 vxhs_opcode_name(op));
	conn = conn_new(vd->loop, agent);
	if (!conn) {
		vd_probe_done(vd, -ENOMEM);
		return;
	}
	req = req_alloc(vd, op, NULL, 0, 0, 0);
	if (!req) {
		conn_free(conn);
		vd_probe_done(vd, -ENOMEM);
		return;
	}
	req->probe = true;
	req->done = vd_probe_done;
	req->opaque = vd;
	vd->probe = conn;

	ret = conn_start(conn);
	if (!ret)
		ret = conn_queue_io(conn, &req->ios[0]);
	if (ret)
		/* Retires the probe request, which settles this probe. */
		io_retire(&req->ios[0], ret);
}

static void note_probe_failure(struct vxhs_vdisk *vd, int result)
{
	size_t len = strlen(vd->open_errors);
	struct vxhs_agent *agent = vd->agents[vd->probe_idx];
	const char *why = strerror(-result);

	if (result == -ENOENT)
		why = "no such vdisk";
	else if (result == -EKEYREJECTED && agent->notes->tls_error[0])
		why = agent->notes->tls_error;
	snprintf(vd->open_errors + len, sizeof(vd->open_errors) - len,
		 "%sagent %s: %s", len ? "; " : "", agent->name, why);
}

void vd_probe_done(void *opaque, int result)
{
	struct vxhs_vdisk *vd = opaque;
	struct vxhs_conn *probe = vd->probe;
	enum vd_state state = vd_state(vd);
	struct vxhs_agent *agent;

	if (state == VD_CLOSED || state == VD_FAILED)
		return;
	vd->probe = NULL;
	if (probe)
		conn_free(probe);
	agent = vd->agents[vd->probe_idx];

	if (!result) {
		if (state != VD_OPENING)
			loop_log(
				vd->loop, LOG_WARNING,
				"vdisk %s: failed over to agent %s; resubmitting %u requests",
				vd->id, agent->name,
				atomic_load(&vd->nr_waiting));
		vd->cur = vd->probe_idx;
		vd->log_probe.until = 0;
		vd_set_state(vd, VD_ACTIVE);
		agent_wake_pool(agent);
		resubmit_waiting(vd);
		if (state == VD_OPENING)
			open_settled(vd, 0);
		else
			notify(vd, VXHS_EVENT_ACTIVE);
		return;
	}

	if (state == VD_OPENING) {
		note_probe_failure(vd, result);
		vd->probe_idx = (vd->probe_idx + 1) % vd->nr_agents;
		if (--vd->probes_left == 0)
			open_settled(vd, result);
		else
			vd->next_probe_at = vxhs_now_ns();
		return;
	}
	loop_log_limited(
		vd->loop, &vd->log_probe, LOG_WARNING,
		"vdisk %s: agent %s cannot take over (%s); trying the next",
		vd->id, agent->name, strerror(-result));
	vd->probe_idx = (vd->probe_idx + 1) % vd->nr_agents;
	vd->next_probe_at = vxhs_now_ns() + PROBE_RETRY_NS;
}

void vd_step(struct vxhs_vdisk *vd, uint64_t now)
{
	enum vd_state state = vd_state(vd);

	if (state == VD_QUIESCE || state == VD_FAILOVER) {
		/* now may predate trouble_start: the tick reads the clock
		 * before a request timeout in the same tick quiesces. */
		if (vd->opts.failover_deadline_ms != VXHS_DEADLINE_NEVER &&
		    now > vd->trouble_start &&
		    now - vd->trouble_start >
			    vd->opts.failover_deadline_ms * NSEC_PER_MSEC) {
			vd_fail(vd);
			return;
		}
	}
	if (state == VD_QUIESCE) {
		if (vd->nr_inflight)
			return;
		vd->probe_idx = (vd->cur + 1) % vd->nr_agents;
		vd->next_probe_at = now;
		vd_set_state(vd, VD_FAILOVER);
		state = VD_FAILOVER;
	}
	if (state != VD_FAILOVER && state != VD_OPENING)
		return;
	if (vd->probe || now < vd->next_probe_at)
		return;
	start_probe(vd);
}
