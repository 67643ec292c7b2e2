/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * The HyperScale (VxHS, QNIO API version 34) wire format.
 *
 * Pure encoding and decoding: nothing in here does I/O or allocates. Every
 * message is a 256-byte little-endian header followed by payload_size bytes.
 * Property sets (kvsets) are big-endian. See docs/protocol.md.
 */
#ifndef VXHS_WIRE_H
#define VXHS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VXHS_HDR_SIZE	  256
#define VXHS_MARKER	  0x5CA1AB1Eu
#define VXHS_DEFAULT_PORT 9999
#define VXHS_TARGET_SIZE  64 /* bytes on the wire, NUL included */
#define VXHS_VDISK_ID_MAX (VXHS_TARGET_SIZE - 1)

/* data_type */
#define VXHS_DATA_RAW	1
#define VXHS_DATA_KVSET 2

/* Opcodes of QNIO v34. */
#define VXHS_OP_READ	       0x1FFF
#define VXHS_OP_WRITE	       0x2FFF
#define VXHS_OP_STAT	       1005
#define VXHS_OP_FAILOVER_READY 2020

/*
 * Our extensions (docs/protocol.md). A client uses them only when the agent
 * advertised the matching bit in the "vxhs_features" STAT key.
 */
#define VXHS_OP_FLUSH	     0x3F01
#define VXHS_OP_WRITE_ZEROES 0x3F02
#define VXHS_OP_DISCARD	     0x3F03
/* Payload: io_size bytes to compare with the range, then io_size bytes to
 * write there if they were equal; a difference is err EILSEQ with the
 * offset of the first differing byte in io_nbytes. */
#define VXHS_OP_COMPARE_AND_WRITE 0x3F04
/* The largest io_size of a COMPARE_AND_WRITE. */
#define VXHS_CAW_MAX (64u << 10)
/*
 * The exclusive lock of a vdisk (docs/protocol.md, "The exclusive lock").
 * ACQUIRE: payload the owner's name, io_offset the owner's tag,
 * io_remote_hdl the epoch the client holds (0: none); the answer is a
 * kvset (the VXHS_LOCK_KEY_* keys). RELEASE: io_remote_hdl the epoch
 * held. QUERY: the answer is the same kvset. Writes, zeroing, discards,
 * flushes and COMPARE_AND_WRITEs carry the epoch they are made under in
 * io_remote_hdl (0: none); those of a stale epoch, and those without one
 * while the vdisk is locked, are refused with err ESTALE ("fenced").
 */
#define VXHS_OP_LOCK_ACQUIRE 0x3F05
#define VXHS_OP_LOCK_RELEASE 0x3F06
#define VXHS_OP_LOCK_QUERY   0x3F07
/* An owner's name: 1 to 64 bytes of printable ASCII, no space. */
#define VXHS_LOCK_OWNER_MAX 64
#define VXHS_LOCK_TAG_MAX   0xFFFFu
#define VXHS_LOCK_KEY_EPOCH "epoch"
#define VXHS_LOCK_KEY_HELD  "held"
#define VXHS_LOCK_KEY_OWNER "owner"
#define VXHS_LOCK_KEY_PREV  "previous_owner"
#define VXHS_LOCK_KEY_SINCE "since"
#define VXHS_LOCK_KEY_TAG   "tag"
/* Payload: a pattern of 1 to VXHS_SAME_PATTERN_MAX bytes, written over
 * io_size bytes at io_offset again and again (io_size a non-zero multiple
 * of the pattern's length), by the agent, in pieces. */
#define VXHS_OP_WRITE_SAME    0x3F08
#define VXHS_SAME_PATTERN_MAX (64u << 10)
/* io_size bytes copied by the agent from another range, of the target or
 * of another vdisk it serves, to io_offset of the target. Payload: the
 * source offset (8 bytes, little-endian), then the source vdisk's id
 * (1 to 63 bytes, no NUL). io_size is 1 to VXHS_COPY_MAX. */
#define VXHS_OP_COPY  0x3F09
#define VXHS_COPY_MAX (256u << 20)

/*
 * Payloads by reference, over a UNIX socket only (docs/protocol.md,
 * "Shared memory"). REGION_ADD carries one file descriptor (SCM_RIGHTS)
 * that the agent maps as region io_offset (1 to VXHS_REGION_MAX) of this
 * connection, io_size bytes long; an id already in use is replaced. A
 * READ or WRITE with VXHS_FLAG_BY_REF carries, instead of data, a list:
 * the region id and the count of segments (4 bytes each, little-endian),
 * then per segment its offset in the region and its length (8 bytes
 * each); the lengths add up to io_size. The agent moves the data between
 * the region and the vdisk, and answers a READ without payload. A region
 * the agent no longer holds (unused for a while) is err ENXIO: add it
 * again and resend.
 */
#define VXHS_OP_REGION_ADD 0x3F0A
#define VXHS_REGION_MAX	   64
#define VXHS_REF_SEGS_MAX  1024
#define VXHS_REF_HDR_SIZE  8
#define VXHS_REF_SEG_SIZE  16
/*
 * Reads without the agent, over a UNIX socket only (docs/protocol.md,
 * "Local reads"): the answer to LOCAL_OPEN carries one file descriptor
 * (SCM_RIGHTS), the vdisk's file opened read-only, which the client may
 * pread at the vdisk's offsets for as long as it serves the vdisk through
 * this agent. No payload; io_offset and io_size 0.
 */
#define VXHS_OP_LOCAL_OPEN 0x3F0B
/*
 * Writes without the agent (docs/protocol.md, "Local writes"): the answer
 * to LOCAL_OPEN_RW carries two descriptors, the vdisk's file opened
 * read-write and its lock record opened read-only. A client writes the
 * file only inside the record's gate and under the record's epoch, as
 * the agent's own writes do. No payload; io_offset and io_size 0.
 */
#define VXHS_OP_LOCAL_OPEN_RW 0x3F0C

#define VXHS_FEAT_FLUSH	       (1ull << 0)
#define VXHS_FEAT_WRITE_ZEROES (1ull << 1)
#define VXHS_FEAT_DISCARD      (1ull << 2)
/* Several messages may share a TLS record (docs/protocol.md): the agent
 * takes them, and packs its answers to clients that say so (below). */
#define VXHS_FEAT_TLS_PACK	    (1ull << 3)
#define VXHS_FEAT_COMPARE_AND_WRITE (1ull << 4)
#define VXHS_FEAT_LOCK		    (1ull << 5)
#define VXHS_FEAT_WRITE_SAME	    (1ull << 6)
#define VXHS_FEAT_COPY		    (1ull << 7)
/* REGION_ADD and VXHS_FLAG_BY_REF, on UNIX sockets. */
#define VXHS_FEAT_SHARED_MEMORY (1ull << 8)
/* LOCAL_OPEN, on UNIX sockets. */
#define VXHS_FEAT_LOCAL_READ (1ull << 9)
/* LOCAL_OPEN_RW, on UNIX sockets. */
#define VXHS_FEAT_LOCAL_WRITE (1ull << 10)
#define VXHS_FEAT_ALL                                                        \
	(VXHS_FEAT_FLUSH | VXHS_FEAT_WRITE_ZEROES | VXHS_FEAT_DISCARD |      \
	 VXHS_FEAT_TLS_PACK | VXHS_FEAT_COMPARE_AND_WRITE | VXHS_FEAT_LOCK | \
	 VXHS_FEAT_WRITE_SAME | VXHS_FEAT_COPY | VXHS_FEAT_SHARED_MEMORY |   \
	 VXHS_FEAT_LOCAL_READ | VXHS_FEAT_LOCAL_WRITE)

/* Message flags. */
#define VXHS_FLAG_REQ		0x01
#define VXHS_FLAG_RESP		0x02
#define VXHS_FLAG_ACK		0x04
#define VXHS_FLAG_REQ_NEED_ACK	0x08
#define VXHS_FLAG_REQ_NEED_RESP 0x10
#define VXHS_FLAG_SYNC_REQ	0x20
#define VXHS_FLAG_SYNC_RESP	0x40
/* Ours, in requests to agents that announced VXHS_FEAT_TLS_PACK: this
 * client takes several answers in one TLS record. */
#define VXHS_FLAG_TLS_PACKS 0x10000
/* Ours, on READ and WRITE: the payload is a list of segments of a shared
 * region (VXHS_OP_REGION_ADD). */
#define VXHS_FLAG_BY_REF 0x20000

/* io_flags tag the original client puts on application reads and writes. */
#define VXHS_IO_FLAG_APP 0x100

/* err values generated inside the original client. */
#define VXHS_ERR_HUP	901 /* connection lost, retriable */
#define VXHS_ERR_NOCONN 902 /* failover gave up */

/* STAT keys. Ours must sort after "vdisk_size_bytes" by strcmp. */
#define VXHS_KEY_SIZE	  "vdisk_size_bytes"
#define VXHS_KEY_AGENT	  "vxhs_agent"
#define VXHS_KEY_FEATURES "vxhs_features"
#define VXHS_KEY_MAX_IO	  "vxhs_max_io_bytes"

struct vxhs_hdr {
	uint64_t payload_size;
	uint32_t data_type;
	int32_t err;
	uint64_t cookie;
	uint8_t crc;
	uint16_t opcode;
	uint64_t io_offset;
	uint64_t io_size;
	uint64_t io_nbytes;
	uint64_t io_seqno;
	uint64_t io_flags;
	uint64_t flags;
	uint64_t io_remote_hdl;
	uint32_t io_remote_flags;
	char target[VXHS_TARGET_SIZE];
};

/* Writes exactly VXHS_HDR_SIZE bytes; target is NUL-padded to 64 bytes. */
void vxhs_hdr_encode(const struct vxhs_hdr *hdr, uint8_t *buf);

/*
 * Decodes VXHS_HDR_SIZE bytes. Returns 0, -EBADMSG for a wrong marker, or
 * -ENAMETOOLONG when the target field has no NUL terminator. The header is
 * filled in even on -ENAMETOOLONG (target truncated) so a server can answer.
 */
int vxhs_hdr_decode(const uint8_t *buf, struct vxhs_hdr *hdr);

/*
 * Builds a request header the way the original client does (flags, crc,
 * io_flags). Returns -ENAMETOOLONG if the vdisk id does not fit.
 */
int vxhs_hdr_init_request(struct vxhs_hdr *hdr, uint16_t opcode,
			  const char *vdisk_id, uint64_t cookie,
			  uint64_t offset, uint64_t size, bool sync);

/* Response flags for a request: SYNC_RESP exactly when SYNC_REQ was set. */
uint64_t vxhs_hdr_response_flags(uint64_t request_flags);

/* Whether the opcode is one of the four of v34 or one of our extensions. */
bool vxhs_opcode_known(uint16_t opcode);
/* Whether a request of this opcode changes the vdisk (and so is fenced by
 * its lock): WRITE, FLUSH, WRITE_ZEROES, DISCARD, COMPARE_AND_WRITE,
 * WRITE_SAME, COPY. */
bool vxhs_opcode_fenced(uint16_t opcode);
/* Whether the answer to this opcode carries a kvset. */
bool vxhs_opcode_answers_kvset(uint16_t opcode);
/* Checks a lock owner's name (VXHS_LOCK_OWNER_MAX). */
bool vxhs_lock_owner_valid(const char *owner, size_t len);
const char *vxhs_opcode_name(uint16_t opcode);

/* Checks a vdisk id: 1-63 of [A-Za-z0-9_.{}-], not starting with '.'. */
bool vxhs_vdisk_id_valid(const char *id);

/* Whether err is one the protocol defines (docs/protocol.md, Errors). */
bool vxhs_wire_err_known(int32_t err);
/* Maps the err field of a response to a negative errno (0 for success);
 * anything outside the protocol's set is -EIO. */
int vxhs_wire_err_to_errno(int32_t err);
/* Maps a negative (or positive) errno to the err field an agent sends,
 * within the protocol's set (EIO for anything else). */
int32_t vxhs_errno_to_wire_err(int error);

/*
 * Explicit little/big-endian field access, usable by any module: one load
 * or store each (the wire's fields are not aligned). Byte swaps by the
 * compiler's builtins, as <endian.h> is not there in strict ISO C.
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define vxhs_le16_(v) (v)
#define vxhs_le32_(v) (v)
#define vxhs_le64_(v) (v)
#define vxhs_be32_(v) __builtin_bswap32(v)
#define vxhs_be64_(v) __builtin_bswap64(v)
#else
#define vxhs_le16_(v) __builtin_bswap16(v)
#define vxhs_le32_(v) __builtin_bswap32(v)
#define vxhs_le64_(v) __builtin_bswap64(v)
#define vxhs_be32_(v) (v)
#define vxhs_be64_(v) (v)
#endif

static inline void vxhs_put_le16(uint8_t *p, uint16_t v)
{
	const uint16_t w = vxhs_le16_(v);

	memcpy(p, &w, sizeof(w));
}

static inline void vxhs_put_le32(uint8_t *p, uint32_t v)
{
	const uint32_t w = vxhs_le32_(v);

	memcpy(p, &w, sizeof(w));
}

static inline void vxhs_put_le64(uint8_t *p, uint64_t v)
{
	const uint64_t w = vxhs_le64_(v);

	memcpy(p, &w, sizeof(w));
}

static inline uint16_t vxhs_get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return vxhs_le16_(v);
}

static inline uint32_t vxhs_get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return vxhs_le32_(v);
}

static inline uint64_t vxhs_get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return vxhs_le64_(v);
}

static inline void vxhs_put_be32(uint8_t *p, uint32_t v)
{
	const uint32_t w = vxhs_be32_(v);

	memcpy(p, &w, sizeof(w));
}

static inline void vxhs_put_be64(uint8_t *p, uint64_t v)
{
	const uint64_t w = vxhs_be64_(v);

	memcpy(p, &w, sizeof(w));
}

static inline uint32_t vxhs_get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return vxhs_be32_(v);
}

static inline uint64_t vxhs_get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return vxhs_be64_(v);
}

#ifdef __cplusplus
}
#endif

#endif /* VXHS_WIRE_H */
