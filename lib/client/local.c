// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads (docs/protocol.md, "Local reads"): an agent on this host
 * hands over the vdisk's file, opened read-only, for the caller to read
 * itself. Asked on a connection of its own, blocking, so that the I/O
 * path never has to take a descriptor out of its byte stream.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "internal.h"

/* Reads the answer's header and the descriptor that came with it. */
static int recv_answer(int s, uint8_t *buf, int *fd)
{
	size_t got = 0;

	while (got < VXHS_HDR_SIZE) {
		ssize_t n = fd_recv(s, buf + got, VXHS_HDR_SIZE - got, fd);

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

static int ask(int s, struct vxhs_vdisk *vd, int *fd)
{
	uint8_t buf[VXHS_HDR_SIZE];
	struct vxhs_hdr h;
	size_t sent = 0;
	int ret;

	ret = vxhs_hdr_init_request(&h, VXHS_OP_LOCAL_OPEN, vd->id, 1, 0, 0,
				    false);
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
	ret = recv_answer(s, buf, fd);
	if (ret)
		return ret;
	if (vxhs_hdr_decode(buf, &h) || h.opcode != VXHS_OP_LOCAL_OPEN ||
	    h.cookie != 1 || h.payload_size ||
	    !(h.flags & (VXHS_FLAG_RESP | VXHS_FLAG_SYNC_RESP)))
		return -EPROTO;
	if (h.err)
		return vxhs_wire_err_to_errno(h.err);
	return *fd >= 0 ? 0 : -EPROTO;
}

int vxhs_vdisk_open_local(struct vxhs_vdisk *vd)
{
	unsigned int ms = vd->opts.io_timeout_ms;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct vxhs_vdisk_info info;
	const struct vxhs_resolved *res;
	int s, fd = -1, ret;

	vxhs_vdisk_get_info(vd, &info);
	if (!(info.features & VXHS_FEAT_LOCAL_READ) ||
	    !vd->opts.agents[info.agent].is_unix)
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
		ret = ask(s, vd, &fd);
	close(s);
	if (ret && fd >= 0)
		close(fd);
	if (ret)
		return set_error(ret, "vdisk %s: local reads refused: %s",
				 vd->id, strerror(-ret));
	return fd;
}
