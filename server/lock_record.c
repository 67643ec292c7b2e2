// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * A vdisk's lock record (docs/protocol.md, "The exclusive lock"), beside
 * the vdisk in ".ID.lock", a name no vdisk can have: the lock lives in the
 * storage, not in an agent, so every agent serving the directory sees it,
 * a gateway keeps its lock when it fails over to another agent, and a
 * restarted agent finds it again. Two slots written in turn, each with a
 * sequence number and a checksum: an update torn by a crash leaves the
 * one before it. Past the slots, two bytes that are locked, never
 * written: the gate and the intent byte (fence.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define REC_MAGIC     "VXHSLCK1"
#define REC_SLOT_SIZE 256
#define REC_SIZE      (2 * REC_SLOT_SIZE)
#define REC_SUM_OFF   (REC_SLOT_SIZE - 8)

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

static void slot_encode(const struct lock_record *rec, uint8_t *slot)
{
	memset(slot, 0, REC_SLOT_SIZE);
	memcpy(slot, REC_MAGIC, 8);
	vxhs_put_le64(slot + SLOT_SEQ, rec->seq);
	vxhs_put_le64(slot + SLOT_EPOCH, rec->epoch);
	vxhs_put_le64(slot + SLOT_SINCE, rec->since);
	vxhs_put_le32(slot + SLOT_HELD, rec->held);
	vxhs_put_le32(slot + SLOT_TAG, rec->tag);
	memcpy(slot + SLOT_OWNER, rec->owner, strlen(rec->owner));
	slot_sum(slot, slot + REC_SUM_OFF);
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

/*
 * Reads the record: the valid slot with the higher sequence number. An
 * empty file is a vdisk never locked. Both slots bad: -EUCLEAN (logged),
 * and nothing that changes the vdisk goes ahead until an operator looks.
 */
int record_read(int fd, const char *id, struct lock_record *rec, bool nowait)
{
	uint8_t buf[REC_SIZE];
	struct iovec iov = { buf, sizeof(buf) };
	struct lock_record a, b;
	bool ok_a, ok_b;
	ssize_t n;

	n = preadv2(fd, &iov, 1, 0, nowait ? RWF_NOWAIT : 0);
	if (n < 0)
		return -errno;
	memset(rec, 0, sizeof(*rec));
	if (n == 0)
		return 0;
	if (n != REC_SIZE && nowait)
		return -EAGAIN;
	ok_a = n == REC_SIZE && slot_decode(buf, &a);
	ok_b = n == REC_SIZE && slot_decode(buf + REC_SLOT_SIZE, &b);
	if (!ok_a && !ok_b) {
		vlog(LOG_ERR,
		     "vdisk %s: its lock record .%s.lock is damaged; refusing writes until it is repaired or removed",
		     id, id);
		return -EUCLEAN;
	}
	*rec = ok_a && (!ok_b || a.seq > b.seq) ? a : b;
	return 0;
}

int record_write(int fd, struct lock_record *rec)
{
	uint8_t slot[REC_SLOT_SIZE];
	int ret;

	rec->seq++;
	slot_encode(rec, slot);
	ret = pwrite_all(fd, slot, sizeof(slot),
			 (rec->seq & 1) * REC_SLOT_SIZE);
	if (ret)
		return ret;
	return fdatasync(fd) ? -errno : 0;
}

int record_open(const char *id)
{
	char name[VXHS_LOCK_RECORD_NAME_MAX];
	int fd;

	vxhs_lock_record_name(id, name, sizeof(name));
	fd = openat(store_dirfd(), name,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0) {
		int err = errno;

		vlog(LOG_ERR, "vdisk %s: cannot open its lock record %s: %s",
		     id, name, strerror(err));
		return -err;
	}
	return fd;
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
