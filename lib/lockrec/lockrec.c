// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The lock record's layout and its gate (lockrec.h). The record is two
 * slots written in turn, each with a sequence number and a checksum, so an
 * update torn by a crash leaves the one before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <string.h>

#include "common/util.h"
#include "lockrec.h"

#define REC_MAGIC   "VXHSLCK1"
#define REC_SUM_OFF (LOCK_SLOT_SIZE - 8)

/* Slot layout, little-endian: magic[8], seq, epoch, since (u64), held
 * (u32), tag (u32), owner (NUL-padded), ... checksum (first 8 bytes of
 * the SHA-256 of everything before it). */
enum {
	SLOT_SEQ = 8,
	SLOT_EPOCH = 16,
	SLOT_SINCE = 24,
	SLOT_HELD = 32,
	SLOT_TAG = 36,
	SLOT_OWNER = 40,
};

static void slot_sum(const uint8_t *slot, uint8_t *sum)
{
	uint8_t digest[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, slot, REC_SUM_OFF, digest);
	memcpy(sum, digest, 8);
}

off_t lock_record_encode(struct lock_record *rec, uint8_t slot[LOCK_SLOT_SIZE])
{
	rec->seq++;
	memset(slot, 0, LOCK_SLOT_SIZE);
	memcpy(slot, REC_MAGIC, 8);
	vxhs_put_le64(slot + SLOT_SEQ, rec->seq);
	vxhs_put_le64(slot + SLOT_EPOCH, rec->epoch);
	vxhs_put_le64(slot + SLOT_SINCE, rec->since);
	vxhs_put_le32(slot + SLOT_HELD, rec->held);
	vxhs_put_le32(slot + SLOT_TAG, rec->tag);
	memcpy(slot + SLOT_OWNER, rec->owner,
	       strnlen(rec->owner, VXHS_LOCK_OWNER_MAX));
	slot_sum(slot, slot + REC_SUM_OFF);
	return (off_t)(rec->seq & 1) * LOCK_SLOT_SIZE;
}

static bool slot_decode(const uint8_t *slot, struct lock_record *rec)
{
	uint8_t sum[8];
	size_t len;

	if (memcmp(slot, REC_MAGIC, 8))
		return false;
	slot_sum(slot, sum);
	if (memcmp(sum, slot + REC_SUM_OFF, 8))
		return false;
	len = strnlen((const char *)slot + SLOT_OWNER, VXHS_LOCK_OWNER_MAX + 1);
	if (len > VXHS_LOCK_OWNER_MAX)
		return false;
	rec->seq = vxhs_get_le64(slot + SLOT_SEQ);
	rec->epoch = vxhs_get_le64(slot + SLOT_EPOCH);
	rec->since = vxhs_get_le64(slot + SLOT_SINCE);
	rec->held = vxhs_get_le32(slot + SLOT_HELD) != 0;
	rec->tag = vxhs_get_le32(slot + SLOT_TAG) & VXHS_LOCK_TAG_MAX;
	memcpy(rec->owner, slot + SLOT_OWNER, len);
	rec->owner[len] = 0;
	return true;
}

int lock_record_decode(const uint8_t *buf, size_t n, struct lock_record *rec)
{
	struct lock_record a, b;
	bool ok_a, ok_b;

	memset(rec, 0, sizeof(*rec));
	if (n == 0)
		return 0;
	if (n != LOCK_RECORD_SIZE)
		return -EUCLEAN;
	ok_a = slot_decode(buf, &a);
	ok_b = slot_decode(buf + LOCK_SLOT_SIZE, &b);
	if (!ok_a && !ok_b)
		return -EUCLEAN;
	*rec = ok_a && (!ok_b || a.seq > b.seq) ? a : b;
	return 0;
}

bool lock_record_fences(const struct lock_record *rec, uint64_t token)
{
	return rec->held ? token != rec->epoch : token && token != rec->epoch;
}

int byte_lock(int fd, int cmd, short type, off_t byte)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int gate_take(int fd, bool wait)
{
	int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
	int ret;

	ret = byte_lock(fd, cmd, F_RDLCK, LOCK_INTENT_BYTE);
	if (ret)
		return ret == -EACCES ? -EAGAIN : ret;
	ret = byte_lock(fd, cmd, F_RDLCK, LOCK_GATE_BYTE);
	byte_lock(fd, F_OFD_SETLK, F_UNLCK, LOCK_INTENT_BYTE);
	return ret == -EACCES ? -EAGAIN : ret;
}

void gate_drop(int fd)
{
	byte_lock(fd, F_OFD_SETLK, F_UNLCK, LOCK_GATE_BYTE);
}

bool gate_acquire_waiting(int fd)
{
	struct flock fl = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = LOCK_INTENT_BYTE,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}
