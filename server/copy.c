// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * COPY (extension, docs/protocol.md): a range of one vdisk this agent
 * serves copied into another, or elsewhere in the same one, by the agent,
 * so that SCSI EXTENDED COPY moves no data through the gateway. It runs in
 * pieces, each a worker's turn and a pass of the destination's lock gate
 * (request.c), like a zeroing. Overlapping ranges of one vdisk copy as if
 * the whole source were read first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

/* Bytes per piece, and per buffer when the kernel cannot copy itself. */
#define COPY_PIECE (16ull << 20)
#define COPY_CHUNK (1u << 20)

/*
 * The payload: the source offset (8 bytes, little-endian), then the
 * source's id. Checked here, once the payload is in; the header alone was
 * checked at admission.
 */
static int open_source(struct request *r)
{
	uint64_t plen = r->hdr.payload_size;
	char id[VXHS_TARGET_SIZE];
	int ret;

	memcpy(id, r->buf + 8, plen - 8);
	id[plen - 8] = '\0';
	if (strlen(id) != plen - 8 || !vxhs_vdisk_id_valid(id))
		return -EINVAL;
	r->src_off = vxhs_get_le64(r->buf);
	if (r->src_off + r->hdr.io_size < r->src_off)
		return -EINVAL;
	if (acl_enabled() &&
	    !acl_allows(acl_rights(&r->s->ident, id), VXHS_OP_READ))
		return -EACCES;
	ret = store_get(id, &r->src);
	if (ret)
		return ret;
	/* The source's own range: maybe grown since it was opened. */
	if (r->src_off + r->hdr.io_size > atomic_load(&r->src->size)) {
		ret = store_refresh(r->src);
		if (!ret &&
		    r->src_off + r->hdr.io_size > atomic_load(&r->src->size))
			ret = -ERANGE;
	}
	return ret;
}

/* Through a buffer, chunk by chunk; from the end when the destination
 * lies after an overlapping source, so every byte is read before it is
 * overwritten. */
static int copy_buffered(struct request *r, uint64_t at, uint64_t n,
			 bool backward)
{
	uint8_t *buf = malloc(MIN(n, (uint64_t)COPY_CHUNK));
	uint64_t left = n;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (left && !ret) {
		uint64_t c = MIN(left, (uint64_t)COPY_CHUNK);
		uint64_t o = backward ? at + left - c : at + n - left;

		ret = vdisk_pread(r->src, buf, c, r->src_off + o);
		if (!ret)
			ret = pwrite_all(r->vd->fd, buf, c,
					 r->hdr.io_offset + o);
		left -= c;
	}
	free(buf);
	return ret;
}

/* The kernel copies (and may share the blocks, on XFS or btrfs); false
 * when it cannot here, for the buffer to do it. */
static int copy_in_kernel(struct request *r, uint64_t at, uint64_t n)
{
	loff_t in = (loff_t)(r->src_off + at);
	loff_t out = (loff_t)(r->hdr.io_offset + at);

	while (n) {
		ssize_t c =
			copy_file_range(r->src->fd, &in, r->vd->fd, &out, n, 0);

		if (c < 0 && errno == EINTR)
			continue;
		if (c < 0)
			return -errno;
		if (c == 0)
			return -ERANGE; /* the source shrank under us */
		n -= (uint64_t)c;
	}
	return 0;
}

int copy_piece(struct request *r)
{
	uint64_t len = r->hdr.io_size, n, at;
	bool overlap, backward;
	int ret;

	if (!r->src) {
		ret = open_source(r);
		if (ret)
			return ret;
	}
	overlap = r->src == r->vd && r->src_off < r->hdr.io_offset + len &&
		  r->hdr.io_offset < r->src_off + len;
	backward = overlap && r->hdr.io_offset > r->src_off;
	n = MIN(len - r->done, COPY_PIECE);
	at = backward ? len - r->done - n : r->done;
	ret = overlap ? -EINVAL : copy_in_kernel(r, at, n);
	if (ret == -EINVAL || ret == -EXDEV || ret == -EOPNOTSUPP ||
	    ret == -ENOSYS)
		ret = copy_buffered(r, at, n, backward);
	if (ret)
		return ret;
	r->done += n;
	return r->done < len;
}
