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
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

/*
 * Reads the record: the valid slot with the higher sequence number. An
 * empty file is a vdisk never locked. Both slots bad: -EUCLEAN (logged),
 * and nothing that changes the vdisk goes ahead until an operator looks.
 */
int record_read(int fd, const char *id, struct lock_record *rec, bool nowait)
{
	uint8_t buf[LOCK_RECORD_SIZE];
	struct iovec iov = { buf, sizeof(buf) };
	ssize_t n;
	int ret;

	n = preadv2(fd, &iov, 1, 0, nowait ? RWF_NOWAIT : 0);
	if (n < 0)
		return -errno;
	if (n && n != LOCK_RECORD_SIZE && nowait)
		return -EAGAIN;
	ret = lock_record_decode(buf, (size_t)n, rec);
	if (ret)
		vlog(LOG_ERR,
		     "vdisk %s: its lock record .%s.lock is damaged; refusing writes until it is repaired or removed",
		     id, id);
	return ret;
}

int record_write(int fd, struct lock_record *rec)
{
	uint8_t slot[LOCK_SLOT_SIZE];
	off_t at = lock_record_encode(rec, slot);
	int ret;

	ret = pwrite_all(fd, slot, sizeof(slot), at);
	if (ret)
		return ret;
	return fdatasync(fd) ? -errno : 0;
}

int record_open(const char *id, int mode)
{
	char name[VXHS_LOCK_RECORD_NAME_MAX];
	int fd;

	vxhs_lock_record_name(id, name, sizeof(name));
	/* O_NONBLOCK: a FIFO in the record's place must not hang the
	 * thread (read-only, open would wait for a writer); a regular
	 * file ignores it. */
	fd = openat(store_dirfd(), name,
		    mode | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0660);
	if (fd < 0) {
		int err = errno;

		vlog(LOG_ERR, "vdisk %s: cannot open its lock record %s: %s",
		     id, name, strerror(err));
		return -err;
	}
	return fd;
}
