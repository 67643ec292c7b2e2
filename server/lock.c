// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The exclusive lock of a vdisk (docs/protocol.md, "The exclusive lock"):
 * LOCK_ACQUIRE, LOCK_RELEASE and LOCK_QUERY against its record
 * (lock_record.c), changed only with the gate (fence.c) held exclusively.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "vxhs/kvset.h"
#include "vxhsd.h"

#define ANSWER_SIZE 512

/*
 * Changes the record with the gate held exclusively: every write of every
 * agent that was checked against the old state has finished, every later
 * one sees the new. Through a description of its own, so that its
 * exclusive locks conflict with this agent's shared ones.
 */
typedef int (*record_change_fn)(struct request *r, struct lock_record *rec,
				int fd);

static int record_change(struct request *r, record_change_fn change)
{
	struct fence *f = &r->vd->fence;
	struct lock_record rec;
	int fd, ret;

	fd = record_open(r->vd->id, O_RDWR);
	if (fd < 0)
		return fd;
	ret = byte_lock(fd, F_OFD_SETLKW, F_WRLCK, LOCK_INTENT_BYTE);
	if (ret)
		goto close_fd;
	hold_close(f);
	ret = byte_lock(fd, F_OFD_SETLKW, F_WRLCK, LOCK_GATE_BYTE);
	if (ret)
		goto close_fd;
	ret = record_read(fd, r->vd->id, &rec, false);
	if (!ret)
		ret = change(r, &rec, fd);
close_fd:
	close(fd); /* and with it both locks */
	return ret;
}

/* The answer's kvset, from the record (prev: the owner just broken). */
static int answer_record(struct request *r, const struct lock_record *rec,
			 const char *prev)
{
	struct vxhs_kvset_builder b;
	int len;

	if (request_answer_buf(r, ANSWER_SIZE))
		return -ENOMEM;
	vxhs_kvset_begin(&b, r->buf, ANSWER_SIZE);
	vxhs_kvset_add_u64(&b, VXHS_LOCK_KEY_EPOCH, rec->epoch);
	vxhs_kvset_add_bool(&b, VXHS_LOCK_KEY_HELD, rec->held);
	vxhs_kvset_add_string(&b, VXHS_LOCK_KEY_OWNER, rec->owner);
	if (prev)
		vxhs_kvset_add_string(&b, VXHS_LOCK_KEY_PREV, prev);
	vxhs_kvset_add_u64(&b, VXHS_LOCK_KEY_SINCE, rec->since);
	vxhs_kvset_add_u32(&b, VXHS_LOCK_KEY_TAG, rec->tag);
	len = vxhs_kvset_end(&b);
	if (len < 0)
		return len;
	r->out_payload = (uint64_t)len;
	return 0;
}

static int acquire(struct request *r, struct lock_record *rec, int fd)
{
	char owner[VXHS_LOCK_OWNER_MAX + 1], prev[VXHS_LOCK_OWNER_MAX + 1];
	uint64_t token = r->hdr.io_remote_hdl;
	uint32_t tag = (uint32_t)r->hdr.io_offset;
	int ret;

	/* Checked before the record changes: a name goes into logs. */
	memcpy(owner, r->buf, r->hdr.payload_size);
	owner[r->hdr.payload_size] = 0;
	/* Its own lock at the epoch it holds (a gateway that failed over to
	 * this agent, or asks again): kept, not broken. */
	if (rec->held && token == rec->epoch && !strcmp(owner, rec->owner)) {
		if (rec->tag != tag) {
			rec->tag = tag;
			ret = record_write(fd, rec);
			if (ret)
				return ret;
		}
		return answer_record(r, rec, "");
	}
	if (rec->epoch == UINT64_MAX)
		return -EOVERFLOW;
	snprintf(prev, sizeof(prev), "%s", rec->held ? rec->owner : "");
	rec->epoch++;
	rec->held = true;
	rec->tag = tag;
	rec->since = (uint64_t)time(NULL);
	snprintf(rec->owner, sizeof(rec->owner), "%s", owner);
	ret = record_write(fd, rec);
	if (ret)
		return ret;
	slog(r->s, r->hdr.target, r->hdr.opcode, LOG_NOTICE,
	     "vdisk %s: lock taken by %s (connection %s, tag %u) at epoch %llu%s%s",
	     r->hdr.target, owner, r->s->peer, (unsigned int)tag,
	     (unsigned long long)rec->epoch, prev[0] ? ", broken from " : "",
	     prev);
	return answer_record(r, rec, prev);
}

static int release(struct request *r, struct lock_record *rec, int fd)
{
	int ret;

	if (r->hdr.io_remote_hdl != rec->epoch)
		return -ESTALE;
	if (!rec->held)
		return 0;
	rec->held = false;
	ret = record_write(fd, rec);
	if (ret)
		return ret;
	slog(r->s, r->hdr.target, r->hdr.opcode, LOG_NOTICE,
	     "vdisk %s: lock released by %s at epoch %llu", r->hdr.target,
	     rec->owner, (unsigned long long)rec->epoch);
	return 0;
}

int lock_execute(struct request *r)
{
	struct lock_record rec;
	int ret, fd;

	switch (r->hdr.opcode) {
	case VXHS_OP_LOCK_ACQUIRE:
		ret = sink_to_buffer(&r->sink);
		if (ret)
			return ret;
		if (!vxhs_lock_owner_valid((const char *)r->buf,
					   r->hdr.payload_size)) {
			slog(r->s, r->hdr.target, r->hdr.opcode, LOG_WARNING,
			     "%s: LOCK_ACQUIRE of vdisk %s refused: the owner's name is not printable ASCII without spaces",
			     r->s->peer, r->hdr.target);
			return -EINVAL;
		}
		return record_change(r, acquire);
	case VXHS_OP_LOCK_RELEASE:
		return record_change(r, release);
	}
	/* A query reads a record that an acquire may be writing: under the
	 * gate, as writes read it. */
	fd = record_open(r->vd->id, O_RDWR);
	if (fd < 0)
		return fd;
	ret = gate_take(fd, true);
	if (!ret)
		ret = record_read(fd, r->vd->id, &rec, false);
	close(fd);
	return ret ? ret : answer_record(r, &rec, NULL);
}
