// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Caller requests and the wire requests they are split into: where an io
 * goes (a connection, the retry queue, or back to the caller), and when a
 * request is complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"

static bool carries_data(uint16_t opcode)
{
	return opcode == VXHS_OP_READ || opcode == VXHS_OP_WRITE;
}

void req_pool_init(struct obj_pool *pool)
{
	obj_pool_init(pool, REQ_POOLED_SIZE, REQ_POOL_MAX);
}

struct vxhs_req *req_alloc(struct vxhs_vdisk *vd, uint16_t opcode,
			   const struct iovec *iov, int iovcnt, uint64_t offset,
			   uint64_t len)
{
	uint64_t split = atomic_load(&vd->split_size);
	uint64_t nr_ios = 1;
	struct iov_cursor cur;
	struct vxhs_req *req;
	size_t size;

	if (carries_data(opcode))
		nr_ios = (len + split - 1) / split;
	if (nr_ios > UINT32_MAX / 2)
		return NULL;
	size = sizeof(*req) + nr_ios * sizeof(struct vxhs_io) +
	       (size_t)iovcnt * sizeof(struct iovec);
	/* Room for the segment list, should it go by reference. */
	if (vd->shm_id && carries_data(opcode) && nr_ios == 1)
		size += REF_LIST_SIZE(iovcnt);
	req = size <= REQ_POOLED_SIZE ? obj_pool_get(&vd->loop->req_pool) :
					malloc(size);
	if (!req)
		return NULL;
	memset(req, 0, sizeof(*req));
	req->pooled = size <= REQ_POOLED_SIZE;
	req->loop = vd->loop;
	req->vd = vd;
	req->opcode = opcode;
	req->offset = offset;
	req->len = len;
	req->nr_ios = (unsigned int)nr_ios;
	req->pending = req->nr_ios;
	req->iov = (struct iovec *)&req->ios[nr_ios];
	req->iovcnt = iovcnt;
	if (iovcnt)
		memcpy(req->iov, iov, (size_t)iovcnt * sizeof(*iov));
	req->refs = vd->shm_id && carries_data(opcode) && nr_ios == 1 ?
			    (uint8_t *)&req->iov[iovcnt] :
			    NULL;
	req->msg.type = MSG_REQ;
	req->msg.req = req;
	req->msg.vd = vd;

	iov_cursor_init(&cur, req->iov, iovcnt);
	for (unsigned int i = 0; i < req->nr_ios; i++) {
		struct vxhs_io *io = &req->ios[i];
		uint64_t chunk = carries_data(opcode) ?
					 MIN(split, len - i * split) :
					 len;

		memset(io, 0, offsetof(struct vxhs_io, hdr));
		list_init(&io->link);
		list_init(&io->tx_link);
		io->req = req;
		io->offset = offset + (carries_data(opcode) ? i * split : 0);
		io->len = chunk;
		io->first_idx = cur.idx;
		io->first_off = cur.off;
		if (carries_data(opcode))
			iov_cursor_advance(&cur, chunk);
	}
	return req;
}

static void req_complete(struct vxhs_req *req)
{
	req->completed = true;
	req->done(req->opaque, req->result);
}

/* Its callback, if not run yet, then its memory. */
static void req_end(struct vxhs_req *req)
{
	if (!req->completed)
		req_complete(req);
	if (req->pooled)
		obj_pool_put(&req->loop->req_pool, req);
	else
		free(req);
}

void io_retire(struct vxhs_io *io, int result)
{
	struct vxhs_req *req = io->req;

	if (result && !req->result)
		req->result = result;
	if (--req->pending)
		return;
	/* A caller submitting inline must not have its callback run inside
	 * its own submission: the I/O thread runs it. */
	if (req->loop->submitting_inline) {
		list_add_tail(&req->msg.link, &req->loop->deferred);
		return;
	}
	req_end(req);
}

void req_finish_deferred(struct vxhs_loop *loop)
{
	while (!list_empty(&loop->deferred)) {
		struct vxhs_req *req = list_first_entry(
			&loop->deferred, struct vxhs_req, msg.link);

		list_del(&req->msg.link);
		req_end(req);
	}
}

/* The vdisk is closing: its caller hears -ECANCELED now, the answer later
 * arrives into nothing. */
void io_orphan(struct vxhs_io *io)
{
	struct vxhs_req *req = io->req;

	io->orphan = true;
	req->vd->nr_inflight--;
	if (!req->result)
		req->result = -ECANCELED;
	if (!req->completed)
		req_complete(req);
	/* req->vd is about to be freed: nothing reads it for an orphan. */
}

/* Takes an io off its connection and out of the table of cookies. */
static void io_detach(struct vxhs_io *io)
{
	struct vxhs_conn *conn = io->conn;

	if (!conn)
		return;
	list_del(&io->link);
	conn->nr_ios--;
	conn->io_bytes -= io->load;
	if (list_linked(&io->tx_link))
		list_del(&io->tx_link);
	loop_slot_put(conn->loop, io->slot);
	io->conn = NULL;
	if (!io->orphan && !io->req->probe)
		io->req->vd->nr_inflight--;
}

void io_park(struct vxhs_io *io)
{
	struct vxhs_conn *conn = io->conn;

	list_del(&io->link);
	conn->nr_ios--;
	conn->io_bytes -= io->load;
	loop_slot_put(conn->loop, io->slot);
	io->conn = NULL;
}

void io_unpark(struct vxhs_io *io, int err)
{
	list_del(&io->link);
	if (!io->orphan && !io->req->probe)
		io->req->vd->nr_inflight--;
	io_transport_error(io, err);
}

static void io_wait_for_failover(struct vxhs_io *io)
{
	struct vxhs_vdisk *vd = io->req->vd;

	list_add_tail(&io->link, &vd->retry);
	atomic_fetch_add(&vd->nr_waiting, 1);
}

void io_dispatch(struct vxhs_io *io)
{
	struct vxhs_vdisk *vd = io->req->vd;
	struct vxhs_agent *agent;
	struct vxhs_conn *conn;
	int ret;

	switch (vd_state(vd)) {
	case VD_ACTIVE:
		break;
	case VD_OPENING:
	case VD_QUIESCE:
	case VD_FAILOVER:
		io_wait_for_failover(io);
		return;
	case VD_FAILED:
		io_retire(io, -ENOTCONN);
		return;
	case VD_CLOSED:
		io_retire(io, -ECANCELED);
		return;
	}

	agent = vd->agents[vd->cur];
	/* Buffers in the shared region go by reference on its agents. */
	conn = agent_pick_conn(agent,
			       io_data_bytes(io, io->req->refs && vd->shm_id &&
							 agent->shared_memory));
	if (!conn) {
		/* Every connection to the agent is down: fail over. */
		io_wait_for_failover(io);
		vd_quiesce(vd, -ENOTCONN);
		return;
	}
	ret = conn_queue_io(conn, io);
	if (ret) {
		io_retire(io, ret);
		return;
	}
	if (!io->req->probe)
		vd->nr_inflight++;
}

void req_dispatch(struct vxhs_req *req)
{
	struct vxhs_vdisk *vd = req->vd;
	enum vd_state state = vd_state(vd);

	/* The retry queue is bounded for new work; requests already in
	 * flight always get their place back. */
	if ((state == VD_QUIESCE || state == VD_FAILOVER) &&
	    atomic_load(&vd->nr_waiting) + req->nr_ios >
		    vd->opts.retry_queue_max) {
		req->result = -EAGAIN;
		req->pending = 1;
		io_retire(&req->ios[0], -EAGAIN);
		return;
	}
	for (unsigned int i = 0, n = req->nr_ios; i < n; i++)
		io_dispatch(&req->ios[i]);
}

void io_answered(struct vxhs_io *io, int result, const uint8_t *kv,
		 size_t kv_len)
{
	struct vxhs_agent *agent = io->conn->agent;
	struct vxhs_vdisk *vd = io->req->vd;

	if (region_answered(io, result)) {
		io_detach(io);
		io_dispatch(io);
		return;
	}
	io_detach(io);
	if (kv && !result && !io->orphan && io->req->opcode == VXHS_OP_STAT) {
		result = vd_stat_apply(vd, kv, kv_len);
		/* Several messages per TLS record from now on. */
		if (!result && (vd->info.features & VXHS_FEAT_TLS_PACK))
			agent->tls_packs = true;
		if (!result)
			agent->shared_memory = vd->info.features &
					       VXHS_FEAT_SHARED_MEMORY;
	} else if (!io->orphan && (io->req->opcode == VXHS_OP_LOCK_ACQUIRE ||
				   io->req->opcode == VXHS_OP_LOCK_RELEASE ||
				   io->req->opcode == VXHS_OP_LOCK_QUERY)) {
		result = lock_answer_apply(io->req, result, kv, kv_len);
	} else if (result == -ESTALE && !io->orphan) {
		lock_fenced(io->req);
	}
	/* HUP from the agent itself: the same as losing the connection. */
	if (result == -ECONNRESET && !io->orphan && !io->req->probe) {
		io_transport_error(io, result);
		return;
	}
	io_retire(io, result);
}

void io_transport_error(struct vxhs_io *io, int err)
{
	struct vxhs_req *req = io->req;
	struct vxhs_vdisk *vd;

	io_detach(io);
	/* A REGION_ADD belongs to its connection: never sent elsewhere. */
	if (io->orphan || req->probe || req->opcode == VXHS_OP_REGION_ADD) {
		io_retire(io, err);
		return;
	}
	vd = req->vd;
	if (++io->attempts >= vd->opts.max_attempts) {
		loop_log(
			vd->loop, LOG_ERR,
			"vdisk %s: %s at offset %llu failed %u times, last: %s",
			vd->id, vxhs_opcode_name(req->opcode),
			(unsigned long long)io->offset, io->attempts,
			strerror(-err));
		io_retire(io, err);
		return;
	}
	io_wait_for_failover(io);
	vd_quiesce(vd, err);
}
