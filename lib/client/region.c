// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Payloads by reference (docs/protocol.md, "Shared memory"): a vdisk opened
 * with shared memory (for tcmu-runner, the TCMU data area that the
 * initiator's data sits in) hands the agent a descriptor of it once per
 * connection, then READs and WRITEs whose buffers lie in it carry a list
 * of segments instead of the data. The agent moves the data between those
 * pages and the vdisk itself: one copy instead of two, and no payload
 * through the socket.
 *
 * Only on plain UNIX connections to agents that announce the extension;
 * everywhere else, and whenever the agent cannot use the region, the data
 * goes through the socket as before. Ids are per loop (the connections'
 * owner), one per vdisk, 1 to VXHS_REGION_MAX; a vdisk beyond that uses
 * the socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "internal.h"

#define ENXIO_RETRIES 3

static uint64_t id_bit(unsigned int id)
{
	return 1ull << (id - 1);
}

void region_id_get(struct vxhs_vdisk *vd)
{
	struct vxhs_loop *loop = vd->loop;

	if (!vd->opts.shm_len || loop->shm_ids == UINT64_MAX)
		return;
	vd->shm_id = (unsigned int)__builtin_ctzll(~loop->shm_ids) + 1;
	loop->shm_ids |= id_bit(vd->shm_id);
}

/* The id goes to the next vdisk: every connection must add it anew. */
void region_id_put(struct vxhs_vdisk *vd)
{
	struct vxhs_loop *loop = vd->loop;
	struct vxhs_agent *agent;
	uint64_t bit;

	if (!vd->shm_id)
		return;
	bit = id_bit(vd->shm_id);
	list_for_each_entry (agent, &loop->agents, link) {
		for (unsigned int i = 0; i < agent->nr_conns; i++) {
			agent->conns[i]->shm_added &= ~bit;
			agent->conns[i]->shm_refused &= ~bit;
		}
	}
	loop->shm_ids &= ~bit;
	vd->shm_id = 0;
}

static void add_done(void *opaque, int result)
{
	(void)opaque;
	(void)result;
}

/* Queues the REGION_ADD of vd's region on conn (ahead of what follows). */
static int queue_add(struct vxhs_conn *conn, struct vxhs_vdisk *vd)
{
	struct vxhs_req *req;
	int ret;

	req = req_alloc(vd, VXHS_OP_REGION_ADD, NULL, 0, vd->shm_id,
			vd->opts.shm_len);
	if (!req)
		return -ENOMEM;
	req->done = add_done;
	ret = conn_queue_io(conn, &req->ios[0]);
	if (ret) {
		req->completed = true;
		io_retire(&req->ios[0], ret); /* frees it */
		return ret;
	}
	vd->nr_inflight++;
	conn->shm_added |= id_bit(vd->shm_id);
	return 0;
}

/* The segment list of io's buffers, or false when one lies outside. */
static bool build_list(struct vxhs_req *req)
{
	const struct vxhs_open_opts *o = &req->vd->opts;
	uintptr_t base = (uintptr_t)o->shm_base;
	uint8_t *p = req->refs + VXHS_REF_HDR_SIZE;
	uint32_t n = 0;

	for (int i = 0; i < req->iovcnt; i++) {
		uintptr_t b = (uintptr_t)req->iov[i].iov_base;
		size_t l = req->iov[i].iov_len;

		if (!l)
			continue;
		if (b < base || l > o->shm_len || b - base > o->shm_len - l)
			return false;
		vxhs_put_le64(p, b - base);
		vxhs_put_le64(p + 8, l);
		p += VXHS_REF_SEG_SIZE;
		n++;
	}
	if (!n)
		return false;
	vxhs_put_le32(req->refs, req->vd->shm_id);
	vxhs_put_le32(req->refs + 4, n);
	req->ref_iov.iov_base = req->refs;
	req->ref_iov.iov_len = REF_LIST_SIZE(n);
	return true;
}

bool region_use(struct vxhs_conn *conn, struct vxhs_io *io)
{
	struct vxhs_req *req = io->req;
	struct vxhs_vdisk *vd = req->vd;

	if (!req->refs || !vd->shm_id || conn->tls_session ||
	    !conn->agent->addr.is_unix || !conn->agent->shared_memory ||
	    (conn->shm_refused & id_bit(vd->shm_id)) || req->iovcnt < 1 ||
	    req->iovcnt > VXHS_REF_SEGS_MAX || !build_list(req))
		return false;
	if (!(conn->shm_added & id_bit(vd->shm_id)))
		return !queue_add(conn, vd);
	return true;
}

ssize_t region_send_add(struct vxhs_conn *conn, struct vxhs_io *io)
{
	ssize_t ret = fd_send(conn->fd, io->hdr, VXHS_HDR_SIZE,
			      &io->req->vd->opts.shm_fd, 1);

	return ret < 0 ? -errno : ret;
}

static void refuse(struct vxhs_conn *conn, struct vxhs_vdisk *vd, int result)
{
	conn->shm_refused |= id_bit(vd->shm_id);
	conn->shm_added &= ~id_bit(vd->shm_id);
	if (conn->agent->shm_warned)
		return;
	conn->agent->shm_warned = true;
	loop_log(
		conn->loop, LOG_WARNING,
		"agent %s: shared memory refused for vdisk %s (%s); data goes through the socket (logged once)",
		conn->agent->name, vd->id, strerror(-result));
}

bool region_answered(struct vxhs_io *io, int result)
{
	struct vxhs_req *req = io->req;

	if (io->orphan || !req->vd->shm_id)
		return false;
	if (req->opcode == VXHS_OP_REGION_ADD) {
		if (result)
			refuse(io->conn, req->vd, result);
		return false;
	}
	if (!io->by_ref)
		return false;
	/* Unused for a while, the agent let it go, on every connection
	 * alike: add it again before the next use on any of them. An io
	 * told so more than a few times cannot use it. */
	if (result == -ENXIO && io->attempts++ < ENXIO_RETRIES) {
		struct vxhs_agent *agent = io->conn->agent;

		for (unsigned int i = 0; i < agent->nr_conns; i++)
			agent->conns[i]->shm_added &= ~id_bit(req->vd->shm_id);
		return true;
	}
	/* It cannot reach the pages (or never could): the socket it is. */
	if (result == -ENXIO || result == -EFAULT || result == -EBADF ||
	    result == -EINVAL) {
		refuse(io->conn, req->vd, result);
		return true;
	}
	return false;
}

struct park {
	struct list_head link; /* loop->parks */
	int fd;
	int err; /* why the connection was lost */
	struct list_head ios;
};

/* Sent in full, so the agent may be running it. */
static bool agent_may_run(const struct vxhs_io *io)
{
	return io->by_ref && io->hdr_sent == VXHS_HDR_SIZE &&
	       io->moved == io->req->ref_iov.iov_len;
}

bool region_park(struct vxhs_conn *conn, int err)
{
	struct vxhs_io *io, *next;
	struct park *p = NULL;

	list_for_each_entry (io, &conn->inflight, link)
		if (agent_may_run(io))
			break;
	if (&io->link == &conn->inflight)
		return false;
	p = malloc(sizeof(*p));
	if (!p) {
		loop_log(
			conn->loop, LOG_ERR,
			"agent %s: out of memory: requests that name shared pages are retried without waiting for the agent",
			conn->agent->name);
		return false;
	}
	loop_epoll_set(conn->loop, conn->fd, &conn->events, 0, conn);
	shutdown(conn->fd, SHUT_WR);
	p->fd = conn->fd;
	p->err = err;
	list_init(&p->ios);
	list_for_each_entry_safe (io, next, &conn->inflight, link) {
		if (!agent_may_run(io))
			continue;
		io_park(io);
		list_add_tail(&io->link, &p->ios);
	}
	list_add_tail(&p->link, &conn->loop->parks);
	loop_log(
		conn->loop, LOG_WARNING,
		"agent %s: requests that name shared pages wait until the agent lets go of them",
		conn->agent->name);
	return true;
}

static void release(struct park *p)
{
	while (!list_empty(&p->ios)) {
		struct vxhs_io *io =
			list_first_entry(&p->ios, struct vxhs_io, link);

		if (io->orphan) {
			list_del(&io->link);
			io_retire(io, -ECANCELED);
		} else {
			io_unpark(io, p->err);
		}
	}
	list_del(&p->link);
	close(p->fd);
	free(p);
}

void region_check_parks(struct vxhs_loop *loop)
{
	struct park *p, *next;

	list_for_each_entry_safe (p, next, &loop->parks, link) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLRDHUP };

		/* Shut or closed by the agent (or it died): done with them. */
		if (poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			release(p);
	}
}

void region_orphan_parked(struct vxhs_loop *loop, struct vxhs_vdisk *vd)
{
	struct park *p;
	struct vxhs_io *io;

	list_for_each_entry (p, &loop->parks, link)
		list_for_each_entry (io, &p->ios, link)
			if (io->req->vd == vd && !io->orphan)
				io_orphan(io);
}

void region_parks_free(struct vxhs_loop *loop)
{
	while (!list_empty(&loop->parks))
		release(list_first_entry(&loop->parks, struct park, link));
}
