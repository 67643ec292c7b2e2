// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads and writes (docs/protocol.md, "Local reads", "Local
 * writes"): an agent on this host hands over the vdisk's file, for the
 * caller to read (or write, inside the lock's gate) itself. Asked on a
 * connection of its own, blocking, so that the I/O path never has to take a
 * descriptor out of its byte stream.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "internal.h"

/* Reads the answer's header and the descriptors that came with it. */
static int recv_answer(int s, uint8_t *buf, int *fds, size_t nfds)
{
	size_t got = 0;

	while (got < VXHS_HDR_SIZE) {
		ssize_t n =
			fd_recv(s, buf + got, VXHS_HDR_SIZE - got, fds, nfds);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int ask(int s, struct vxhs_vdisk *vd, uint16_t opcode, int *fds,
	       size_t nfds)
{
	uint8_t buf[VXHS_HDR_SIZE];
	struct vxhs_hdr h;
	size_t sent = 0;
	int ret;

	ret = vxhs_hdr_init_request(&h, opcode, vd->id, 1, 0, 0, false);
	if (ret)
		return ret;
	vxhs_hdr_encode(&h, buf);
	while (sent < VXHS_HDR_SIZE) {
		ssize_t n =
			send(s, buf + sent, VXHS_HDR_SIZE - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		sent += (size_t)n;
	}
	ret = recv_answer(s, buf, fds, nfds);
	if (ret)
		return ret;
	if (vxhs_hdr_decode(buf, &h) || h.opcode != opcode || h.cookie != 1 ||
	    h.payload_size ||
	    !(h.flags & (VXHS_FLAG_RESP | VXHS_FLAG_SYNC_RESP)))
		return -EPROTO;
	if (h.err)
		return vxhs_wire_err_to_errno(h.err);
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] < 0)
			return -EPROTO;
	return 0;
}

/* Asks the agent now serving vd, on a connection of its own, for the
 * nfds descriptors opcode's answer carries. */
static int open_local(struct vxhs_vdisk *vd, uint16_t opcode, uint64_t feat,
		      int *fds, size_t nfds)
{
	unsigned int ms = vd->opts.io_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct vxhs_vdisk_info info;
	const struct vxhs_resolved *res;
	int s, ret;

	for (size_t i = 0; i < nfds; i++)
		fds[i] = -1;
	vxhs_vdisk_get_info(vd, &info);
	if (!(info.features & feat) || !vd->opts.agents[info.agent].is_unix)
		return -EOPNOTSUPP;
	res = &vd->res[info.agent];
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    connect(s, (const struct sockaddr *)&res->sa[0], res->sa_len[0]))
		ret = -errno;
	else
		ret = ask(s, vd, opcode, fds, nfds);
	close(s);
	if (!ret)
		return 0;
	for (size_t i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return set_error(ret, "vdisk %s: local %s refused: %s", vd->id,
			 opcode == VXHS_OP_LOCAL_OPEN ? "reads" : "writes",
			 strerror(-ret));
}

int vxhs_vdisk_open_local(struct vxhs_vdisk *vd)
{
	int fd, ret;

	ret = open_local(vd, VXHS_OP_LOCAL_OPEN, VXHS_FEAT_LOCAL_READ, &fd, 1);
	return ret ? ret : fd;
}

int vxhs_vdisk_open_local_rw(struct vxhs_vdisk *vd, int *file, int *record)
{
	int fds[2], ret;

	ret = open_local(vd, VXHS_OP_LOCAL_OPEN_RW, VXHS_FEAT_LOCAL_WRITE, fds,
			 2);
	*file = fds[0];
	*record = fds[1];
	return ret;
}
