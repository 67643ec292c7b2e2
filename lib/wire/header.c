// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The 256-byte message header, field by field at the offsets of the native
 * x86-64 struct the original implementation sends (docs/protocol.md).
 */
#include <errno.h>
#include <string.h>

#include "vxhs/wire.h"

enum {
	OFF_MARKER = 0,
	OFF_PAYLOAD_SIZE = 4,
	OFF_DATA_TYPE = 12,
	OFF_ERR = 16,
	OFF_COOKIE = 20,
	OFF_CRC = 28,
	OFF_OPCODE = 30,
	OFF_IO_OFFSET = 36,
	OFF_IO_SIZE = 44,
	OFF_IO_NBYTES = 52,
	OFF_IO_SEQNO = 60,
	OFF_IO_FLAGS = 68,
	OFF_FLAGS = 76,
	OFF_IO_REMOTE_HDL = 84,
	OFF_IO_REMOTE_FLAGS = 92,
	OFF_TARGET = 96,
};

_Static_assert(OFF_TARGET + VXHS_TARGET_SIZE + 96 == VXHS_HDR_SIZE,
	       "header layout must add up to 256 bytes");

void vxhs_hdr_encode(const struct vxhs_hdr *hdr, uint8_t *buf)
{
	memset(buf, 0, VXHS_HDR_SIZE);
	vxhs_put_le32(buf + OFF_MARKER, VXHS_MARKER);
	vxhs_put_le64(buf + OFF_PAYLOAD_SIZE, hdr->payload_size);
	vxhs_put_le32(buf + OFF_DATA_TYPE, hdr->data_type);
	vxhs_put_le32(buf + OFF_ERR, (uint32_t)hdr->err);
	vxhs_put_le64(buf + OFF_COOKIE, hdr->cookie);
	buf[OFF_CRC] = hdr->crc;
	vxhs_put_le16(buf + OFF_OPCODE, hdr->opcode);
	vxhs_put_le64(buf + OFF_IO_OFFSET, hdr->io_offset);
	vxhs_put_le64(buf + OFF_IO_SIZE, hdr->io_size);
	vxhs_put_le64(buf + OFF_IO_NBYTES, hdr->io_nbytes);
	vxhs_put_le64(buf + OFF_IO_SEQNO, hdr->io_seqno);
	vxhs_put_le64(buf + OFF_IO_FLAGS, hdr->io_flags);
	vxhs_put_le64(buf + OFF_FLAGS, hdr->flags);
	vxhs_put_le64(buf + OFF_IO_REMOTE_HDL, hdr->io_remote_hdl);
	vxhs_put_le32(buf + OFF_IO_REMOTE_FLAGS, hdr->io_remote_flags);
	/* strnlen keeps a full 64-byte target from spilling; the last byte
	 * stays NUL because the id is at most 63 bytes on well-formed input. */
	memcpy(buf + OFF_TARGET, hdr->target,
	       strnlen(hdr->target, VXHS_TARGET_SIZE - 1));
}

int vxhs_hdr_decode(const uint8_t *buf, struct vxhs_hdr *hdr)
{
	const uint8_t *target = buf + OFF_TARGET;
	const uint8_t *nul;

	memset(hdr, 0, sizeof(*hdr));
	if (vxhs_get_le32(buf + OFF_MARKER) != VXHS_MARKER)
		return -EBADMSG;

	hdr->payload_size = vxhs_get_le64(buf + OFF_PAYLOAD_SIZE);
	hdr->data_type = vxhs_get_le32(buf + OFF_DATA_TYPE);
	hdr->err = (int32_t)vxhs_get_le32(buf + OFF_ERR);
	hdr->cookie = vxhs_get_le64(buf + OFF_COOKIE);
	hdr->crc = buf[OFF_CRC];
	hdr->opcode = vxhs_get_le16(buf + OFF_OPCODE);
	hdr->io_offset = vxhs_get_le64(buf + OFF_IO_OFFSET);
	hdr->io_size = vxhs_get_le64(buf + OFF_IO_SIZE);
	hdr->io_nbytes = vxhs_get_le64(buf + OFF_IO_NBYTES);
	hdr->io_seqno = vxhs_get_le64(buf + OFF_IO_SEQNO);
	hdr->io_flags = vxhs_get_le64(buf + OFF_IO_FLAGS);
	hdr->flags = vxhs_get_le64(buf + OFF_FLAGS);
	hdr->io_remote_hdl = vxhs_get_le64(buf + OFF_IO_REMOTE_HDL);
	hdr->io_remote_flags = vxhs_get_le32(buf + OFF_IO_REMOTE_FLAGS);

	nul = memchr(target, '\0', VXHS_TARGET_SIZE);
	if (!nul) {
		memcpy(hdr->target, target, VXHS_TARGET_SIZE - 1);
		return -ENAMETOOLONG;
	}
	memcpy(hdr->target, target, (size_t)(nul - target));
	return 0;
}

int vxhs_hdr_init_request(struct vxhs_hdr *hdr, uint16_t opcode,
			  const char *vdisk_id, uint64_t cookie,
			  uint64_t offset, uint64_t size, bool sync)
{
	size_t id_len = strlen(vdisk_id);

	memset(hdr, 0, sizeof(*hdr));
	if (id_len > VXHS_VDISK_ID_MAX)
		return -ENAMETOOLONG;
	memcpy(hdr->target, vdisk_id, id_len);

	hdr->opcode = opcode;
	hdr->cookie = cookie;
	hdr->crc = cookie & 0xff;
	hdr->io_offset = offset;
	hdr->io_size = size;
	hdr->data_type = VXHS_DATA_RAW;

	switch (opcode) {
	case VXHS_OP_READ:
		hdr->io_flags = VXHS_IO_FLAG_APP;
		hdr->flags = VXHS_FLAG_REQ | VXHS_FLAG_REQ_NEED_RESP;
		break;
	case VXHS_OP_WRITE:
		hdr->io_flags = VXHS_IO_FLAG_APP;
		hdr->payload_size = size;
		hdr->flags = VXHS_FLAG_REQ | VXHS_FLAG_REQ_NEED_ACK;
		break;
	case VXHS_OP_COMPARE_AND_WRITE:
		if (size > VXHS_CAW_MAX)
			return -EINVAL;
		hdr->payload_size = 2 * size;
		hdr->flags = VXHS_FLAG_REQ | VXHS_FLAG_REQ_NEED_RESP;
		break;
	case VXHS_OP_LOCK_ACQUIRE:
		/* The owner's name; the caller sets io_size back to 0. */
		hdr->payload_size = size;
		hdr->flags = VXHS_FLAG_REQ | VXHS_FLAG_REQ_NEED_RESP;
		break;
	case VXHS_OP_STAT:
		hdr->data_type = VXHS_DATA_KVSET;
		/* fall through */
	default:
		hdr->flags = VXHS_FLAG_REQ | VXHS_FLAG_REQ_NEED_RESP;
		break;
	}
	/* The original client's synchronous calls swap REQ for SYNC_REQ. */
	if (sync) {
		hdr->flags &= ~(uint64_t)VXHS_FLAG_REQ;
		hdr->flags |= VXHS_FLAG_SYNC_REQ;
	}
	return 0;
}

uint64_t vxhs_hdr_response_flags(uint64_t request_flags)
{
	return (request_flags & VXHS_FLAG_SYNC_REQ) ? VXHS_FLAG_SYNC_RESP :
						      VXHS_FLAG_RESP;
}

bool vxhs_opcode_known(uint16_t opcode)
{
	switch (opcode) {
	case VXHS_OP_READ:
	case VXHS_OP_WRITE:
	case VXHS_OP_STAT:
	case VXHS_OP_FAILOVER_READY:
	case VXHS_OP_FLUSH:
	case VXHS_OP_WRITE_ZEROES:
	case VXHS_OP_DISCARD:
	case VXHS_OP_COMPARE_AND_WRITE:
	case VXHS_OP_LOCK_ACQUIRE:
	case VXHS_OP_LOCK_RELEASE:
	case VXHS_OP_LOCK_QUERY:
	case VXHS_OP_WRITE_SAME:
	case VXHS_OP_COPY:
	case VXHS_OP_REGION_ADD:
	case VXHS_OP_LOCAL_OPEN:
	case VXHS_OP_LOCAL_OPEN_RW:
		return true;
	}
	return false;
}

bool vxhs_opcode_fenced(uint16_t opcode)
{
	switch (opcode) {
	case VXHS_OP_WRITE:
	case VXHS_OP_FLUSH:
	case VXHS_OP_WRITE_ZEROES:
	case VXHS_OP_DISCARD:
	case VXHS_OP_COMPARE_AND_WRITE:
	case VXHS_OP_WRITE_SAME:
	case VXHS_OP_COPY:
		return true;
	}
	return false;
}

bool vxhs_opcode_answers_kvset(uint16_t opcode)
{
	return opcode == VXHS_OP_STAT || opcode == VXHS_OP_LOCK_ACQUIRE ||
	       opcode == VXHS_OP_LOCK_QUERY;
}

bool vxhs_lock_owner_valid(const char *owner, size_t len)
{
	if (!len || len > VXHS_LOCK_OWNER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (owner[i] <= ' ' || owner[i] > '~')
			return false;
	return true;
}

const char *vxhs_opcode_name(uint16_t opcode)
{
	switch (opcode) {
	case VXHS_OP_READ:
		return "READ";
	case VXHS_OP_WRITE:
		return "WRITE";
	case VXHS_OP_STAT:
		return "VDISK_STAT";
	case VXHS_OP_FAILOVER_READY:
		return "CHECK_IO_FAILOVER_READY";
	case VXHS_OP_FLUSH:
		return "FLUSH";
	case VXHS_OP_WRITE_ZEROES:
		return "WRITE_ZEROES";
	case VXHS_OP_DISCARD:
		return "DISCARD";
	case VXHS_OP_COMPARE_AND_WRITE:
		return "COMPARE_AND_WRITE";
	case VXHS_OP_LOCK_ACQUIRE:
		return "LOCK_ACQUIRE";
	case VXHS_OP_LOCK_RELEASE:
		return "LOCK_RELEASE";
	case VXHS_OP_LOCK_QUERY:
		return "LOCK_QUERY";
	case VXHS_OP_WRITE_SAME:
		return "WRITE_SAME";
	case VXHS_OP_COPY:
		return "COPY";
	case VXHS_OP_REGION_ADD:
		return "REGION_ADD";
	case VXHS_OP_LOCAL_OPEN:
		return "LOCAL_OPEN";
	case VXHS_OP_LOCAL_OPEN_RW:
		return "LOCAL_OPEN_RW";
	}
	return "UNKNOWN";
}

bool vxhs_vdisk_id_valid(const char *id)
{
	size_t n = strnlen(id, VXHS_TARGET_SIZE);

	if (n == 0 || n > VXHS_VDISK_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (c == '-' || c == '_' || c == '.' || c == '{' || c == '}')
			continue;
		return false;
	}
	return true;
}

/*
 * err carries positive errno values in both directions (docs/protocol.md),
 * plus the two codes the original client invents for transport states.
 */
bool vxhs_wire_err_known(int32_t err)
{
	switch (err) {
	case 0:
	case ENOENT:
	case EIO:
	case EAGAIN:
	case EACCES:
	case EINVAL:
	case ENOSPC:
	case ERANGE:
	case ENAMETOOLONG:
	case EMSGSIZE:
	case EOPNOTSUPP:
	case EILSEQ: /* COMPARE_AND_WRITE: the data differed */
	case ESTALE: /* fenced: the vdisk's lock moved on */
	case ENXIO:  /* by reference: no such shared region (any more) */
	case EBADF:  /* REGION_ADD without a descriptor */
	case EFAULT: /* by reference: no pages behind a segment */
	case VXHS_ERR_HUP:
		return true;
	}
	return false;
}

/*
 * The set of errors that crosses the wire is closed (docs/protocol.md): an
 * agent must not be able to make the client believe its own meanings
 * (ENOTCONN "failover gave up", ECANCELED, ETIMEDOUT...).
 */
int vxhs_wire_err_to_errno(int32_t err)
{
	/* Negative errno values, as some agents send, but never a negation
	 * that overflows (INT32_MIN comes from the network too). */
	if (err < 0 && err > -4096)
		err = -err;
	if (!vxhs_wire_err_known(err))
		return -EIO;
	if (err == VXHS_ERR_HUP)
		return -ECONNRESET;
	return -err;
}

int32_t vxhs_errno_to_wire_err(int error)
{
	if (error < 0)
		error = -error;
	/* A read-only file system refuses writes: what EACCES says. */
	if (error == EROFS || error == EPERM)
		return EACCES;
	return vxhs_wire_err_known(error) && error != VXHS_ERR_HUP ? error :
								     EIO;
}
