// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Requests in three steps, as a server should take them: validate (every
 * field a peer sent, before anything is allocated or opened), execute
 * (against the vdisk file), answer (a header built from the request, with
 * SYNC_RESP exactly when SYNC_REQ was asked for).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "common/pool.h"
#include "common/util.h"
#include "vxhs/kvset.h"
#include "vxhsd.h"

#define STAT_BUF_SIZE 512
#define ZERO_CHUNK    (1u << 20)
/* Zeroing or discarding goes in pieces of this much, each a turn of a
 * worker, so a huge range does not keep a worker from other sessions. */
#define ZERO_PIECE (256ull << 20)
/* WRITE_SAME writes about this much per piece, from a buffer of up to
 * ZERO_CHUNK bytes holding the pattern again and again. */
#define SAME_PIECE (16ull << 20)

/* The one place where errno becomes a wire err (docs/protocol.md). */
int32_t errno_to_wire(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case EFBIG:
		return ERANGE;
	case EDQUOT:
		return ENOSPC;
	case EINTR:
	case ENOMEM:
		return EAGAIN;
	}
	return vxhs_errno_to_wire_err(err);
}

static int32_t validate(const struct vxhs_hdr *h, uint64_t max_io,
			const char **why)
{
	if (!vxhs_opcode_known(h->opcode)) {
		*why = "unknown opcode";
		return EOPNOTSUPP;
	}
	if (!vxhs_vdisk_id_valid(h->target)) {
		*why = "invalid vdisk id (A-Z a-z 0-9 . _ - { }, no leading '.')";
		return EINVAL;
	}
	if (h->io_offset + h->io_size < h->io_offset) {
		*why = "io_offset + io_size overflows";
		return EINVAL;
	}
	if ((h->opcode == VXHS_OP_READ || h->opcode == VXHS_OP_WRITE) &&
	    h->io_size > max_io) {
		*why = "io_size larger than --max-io";
		return EMSGSIZE;
	}
	if (h->flags & VXHS_FLAG_BY_REF)
		return region_check_refs(h, why);
	if (h->opcode == VXHS_OP_REGION_ADD && h->payload_size) {
		*why = "unexpected payload";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_REGION_ADD)
		return region_check_add(h, why);
	if ((h->opcode == VXHS_OP_LOCAL_OPEN ||
	     h->opcode == VXHS_OP_LOCAL_OPEN_RW) &&
	    (h->io_offset || h->io_size)) {
		*why = "io_offset or io_size not 0";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_WRITE && h->payload_size != h->io_size) {
		*why = "payload_size differs from io_size";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_COMPARE_AND_WRITE &&
	    (!h->io_size || h->io_size > VXHS_CAW_MAX)) {
		*why = "COMPARE_AND_WRITE of no bytes or more than 64 KiB";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_COMPARE_AND_WRITE &&
	    h->payload_size != 2 * h->io_size) {
		*why = "payload_size is not twice io_size";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_LOCK_ACQUIRE &&
	    (!h->payload_size || h->payload_size > VXHS_LOCK_OWNER_MAX)) {
		*why = "LOCK_ACQUIRE owner name of no bytes or more than 64";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_LOCK_ACQUIRE &&
	    (h->io_size || h->io_offset > VXHS_LOCK_TAG_MAX)) {
		*why = "LOCK_ACQUIRE with io_size, or a tag above 65535";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_WRITE_SAME &&
	    (!h->payload_size || h->payload_size > VXHS_SAME_PATTERN_MAX)) {
		*why = "WRITE_SAME pattern of no bytes or more than 64 KiB";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_WRITE_SAME &&
	    (!h->io_size || h->io_size % h->payload_size)) {
		*why = "WRITE_SAME io_size not a non-zero multiple of the pattern";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_COPY &&
	    (h->payload_size < 9 || h->payload_size > 8 + VXHS_VDISK_ID_MAX)) {
		*why = "COPY payload not a source offset and a vdisk id";
		return EINVAL;
	}
	if (h->opcode == VXHS_OP_COPY &&
	    (!h->io_size || h->io_size > VXHS_COPY_MAX)) {
		*why = "COPY of no bytes or more than 256 MiB";
		return EINVAL;
	}
	if (h->opcode != VXHS_OP_WRITE &&
	    h->opcode != VXHS_OP_COMPARE_AND_WRITE &&
	    h->opcode != VXHS_OP_LOCK_ACQUIRE &&
	    h->opcode != VXHS_OP_WRITE_SAME && h->opcode != VXHS_OP_COPY &&
	    h->payload_size) {
		*why = "unexpected payload";
		return EINVAL;
	}
	return 0;
}

/* The access list, remembering the rights on the session's last vdisk. */
static bool allowed(struct session *s, const struct vxhs_hdr *h)
{
	if (!acl_enabled())
		return true;
	if (strcmp(s->acl_vdisk, h->target) || s->acl_gen != acl_generation()) {
		s->acl_gen = acl_generation();
		s->acl_right = acl_rights(&s->ident, h->target);
		snprintf(s->acl_vdisk, sizeof(s->acl_vdisk), "%s", h->target);
	}
	return acl_allows(s->acl_right, h->opcode);
}

int32_t request_admit(struct session *s, const struct vxhs_hdr *h, int decoded,
		      const char **why, uint64_t *buf_len)
{
	int32_t err;

	*buf_len = 0;
	if (decoded == -ENAMETOOLONG) {
		*why = "vdisk id longer than 63 bytes";
		return ENAMETOOLONG;
	}
	err = validate(h, config.max_io, why);
	if (!err && !allowed(s, h)) {
		*why = "not allowed by the access list";
		err = EACCES;
	}
	if (!err && (h->flags & VXHS_FLAG_BY_REF))
		*buf_len = h->payload_size; /* the segment list */
	else if (!err &&
		 (h->opcode == VXHS_OP_WRITE ||
		  h->opcode == VXHS_OP_COMPARE_AND_WRITE ||
		  h->opcode == VXHS_OP_LOCK_ACQUIRE ||
		  h->opcode == VXHS_OP_WRITE_SAME || h->opcode == VXHS_OP_COPY))
		*buf_len = h->payload_size;
	else if (!err && h->opcode == VXHS_OP_READ)
		*buf_len = h->io_size;
	return err;
}

/* All of a by-reference READ or WRITE, between the vdisk and the peer's
 * region; a segment without pages behind it is -EFAULT. */
static int transfer_refs(struct request *r, bool write)
{
	struct iovec *iov = r->ref_iov;
	uint64_t off = r->hdr.io_offset;
	int cnt = r->ref_cnt;

	while (cnt) {
		ssize_t n = write ? pwritev(r->vd->fd, iov, cnt, (off_t)off) :
				    preadv(r->vd->fd, iov, cnt, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ERANGE;
		off += (uint64_t)n;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int vdisk_pread(struct vdisk *vd, uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(vd->fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			/* The file shrank under us: past its end now. */
			return -ERANGE;
		}
		buf += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int write_zero_bytes(struct vdisk *vd, uint64_t off, uint64_t len)
{
	uint8_t *zero = calloc(1, MIN(len, ZERO_CHUNK));
	int ret = 0;

	if (!zero)
		return -ENOMEM;
	while (len && !ret) {
		uint64_t n = MIN(len, ZERO_CHUNK);

		ret = pwrite_all(vd->fd, zero, n, off);
		off += n;
		len -= n;
	}
	free(zero);
	return ret;
}

/*
 * Both zeroing operations leave zeros that read back; discard also gives
 * the space back where the file system can punch holes.
 */
static int do_zero(struct vdisk *vd, uint64_t off, uint64_t len, bool punch)
{
	int mode = punch ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
			   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (!len)
		return 0;
	if (fallocate(vd->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		return -errno;
	if (!punch &&
	    fallocate(vd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	return write_zero_bytes(vd, off, len);
}

static int do_stat(struct request *r)
{
	struct vxhs_kvset_builder b;
	uint64_t features;
	int len;

	if (request_answer_buf(r, STAT_BUF_SIZE))
		return -ENOMEM;
	/* vdisk_size_bytes must stay first in strcmp order: the original
	 * client takes the first key as the size. */
	vxhs_kvset_begin(&b, r->buf, STAT_BUF_SIZE);
	vxhs_kvset_add_u64(&b, VXHS_KEY_SIZE, atomic_load(&r->vd->size));
	vxhs_kvset_add_string(&b, VXHS_KEY_AGENT, "vxhsd " VXHSD_VERSION);
	features = fault_features();
	features &= local_features_offered();
	vxhs_kvset_add_u64(&b, VXHS_KEY_FEATURES, features);
	vxhs_kvset_add_u64(&b, VXHS_KEY_MAX_IO, config.max_io);
	len = vxhs_kvset_end(&b);
	if (len < 0)
		return len;
	r->out_payload = (uint64_t)len;
	return 0;
}

static int check_range(struct request *r)
{
	uint64_t end = r->hdr.io_offset + r->hdr.io_size;
	int ret;

	if (end <= atomic_load(&r->vd->size))
		return 0;
	/* Maybe grown since we looked (vxhsadm resize). */
	ret = store_refresh(r->vd);
	if (ret)
		return ret;
	return end <= atomic_load(&r->vd->size) ? 0 : -ERANGE;
}

/* Zeroing, one piece per call: 1 when more pieces are left. */
static int zero_piece(struct request *r, bool punch)
{
	uint64_t n = MIN(r->hdr.io_size - r->done, ZERO_PIECE);
	int ret = do_zero(r->vd, r->hdr.io_offset + r->done, n, punch);

	if (ret)
		return ret;
	r->done += n;
	return r->done < r->hdr.io_size;
}

/*
 * WRITE_SAME, one piece per call (1 when more are left): the pattern
 * repeated in a buffer, written as often as the piece needs. Pieces are
 * whole buffers, so each starts on a pattern boundary.
 */
static int same_piece(struct request *r)
{
	uint64_t plen = r->hdr.payload_size;
	uint64_t fill = MIN(ZERO_CHUNK / plen * plen, r->hdr.io_size);
	uint64_t n = MIN(r->hdr.io_size - r->done, SAME_PIECE / fill * fill);
	uint64_t off = r->hdr.io_offset + r->done;
	uint8_t *buf;
	int ret;

	ret = sink_to_buffer(&r->sink);
	if (ret)
		return ret;
	buf = malloc(fill);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < fill; i += plen)
		memcpy(buf + i, r->buf, plen);
	for (uint64_t o = 0; o < n && !ret; o += fill)
		ret = pwrite_all(r->vd->fd, buf, MIN(fill, n - o), off + o);
	free(buf);
	if (ret)
		return ret;
	r->done += n;
	return r->done < r->hdr.io_size;
}

/*
 * COMPARE AND WRITE, atomic against every other one on the range: an open
 * file description lock (F_OFD_SETLKW) on it is taken by each, in this
 * vxhsd and in any other agent on the same storage (a network or cluster
 * file system passes such locks on). 0, -EILSEQ with r->miscompare set, or
 * a negative errno.
 */
static int do_compare_and_write(struct request *r)
{
	uint64_t len = r->hdr.io_size, off = r->hdr.io_offset;
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = (off_t)off,
		.l_len = (off_t)len,
	};
	uint8_t *now;
	int ret, fd;

	ret = sink_to_buffer(&r->sink);
	if (ret)
		return ret;
	now = malloc(len);
	if (!now)
		return -ENOMEM;
	/* Its own description: OFD locks of one description do not exclude
	 * each other, and the cached one is shared by all requests. */
	fd = openat(store_dirfd(), r->vd->id, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto free_now;
	}
	if (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		ret = -errno;
		goto close_fd;
	}
	ret = vdisk_pread(r->vd, now, len, off);
	if (ret)
		goto unlock;
	for (uint64_t i = 0; i < len; i++)
		if (now[i] != r->buf[i]) {
			r->miscompare = i;
			ret = -EILSEQ;
			goto unlock;
		}
	ret = pwrite_all(r->vd->fd, r->buf + len, len, off);
unlock:
	fl.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &fl);
close_fd:
	close(fd);
free_now:
	free(now);
	return ret;
}

/* What changes the vdisk, inside its lock's gate: 0 done, 1 more pieces
 * to go, or a negative errno. */
static int execute_change(struct request *r)
{
	struct vxhs_hdr *h = &r->hdr;
	int ret;

	if (h->opcode == VXHS_OP_FLUSH)
		return fdatasync(r->vd->fd) ? -errno : 0;
	ret = check_range(r);
	if (ret)
		return ret;
	switch (h->opcode) {
	case VXHS_OP_WRITE:
		if (h->flags & VXHS_FLAG_BY_REF)
			return transfer_refs(r, true);
		return sink_write_to(&r->sink, r->vd->fd, h->io_offset);
	case VXHS_OP_WRITE_ZEROES:
		return zero_piece(r, false);
	case VXHS_OP_DISCARD:
		return zero_piece(r, true);
	case VXHS_OP_COMPARE_AND_WRITE:
		return do_compare_and_write(r);
	case VXHS_OP_WRITE_SAME:
		return same_piece(r);
	case VXHS_OP_COPY:
		ret = sink_to_buffer(&r->sink);
		return ret ? ret : copy_piece(r);
	}
	return -EOPNOTSUPP;
}

/* 0 done, 1 more pieces to go, or a negative errno. */
static int execute(struct request *r)
{
	struct vxhs_hdr *h = &r->hdr;
	int ret;

	if (!r->vd) {
		ret = store_get(h->target, &r->vd);
		if (ret)
			return ret;
	}
	if (!r->use)
		r->use = usage_get(r->s, r->vd);

	switch (h->opcode) {
	case VXHS_OP_STAT:
		ret = store_refresh(r->vd);
		return ret ? ret : do_stat(r);
	case VXHS_OP_FAILOVER_READY:
		return store_refresh(r->vd);
	case VXHS_OP_LOCK_ACQUIRE:
	case VXHS_OP_LOCK_RELEASE:
	case VXHS_OP_LOCK_QUERY:
		return lock_execute(r);
	case VXHS_OP_REGION_ADD: /* done as it was parsed */
		return 0;
	case VXHS_OP_LOCAL_OPEN:
	case VXHS_OP_LOCAL_OPEN_RW:
		return local_open_execute(r);
	case VXHS_OP_READ:
		ret = check_range(r);
		if (!ret && (h->flags & VXHS_FLAG_BY_REF))
			return transfer_refs(r, false);
		if (!ret)
			ret = vdisk_pread(r->vd, r->buf, h->io_size,
					  h->io_offset);
		if (!ret)
			r->out_payload = h->io_size;
		return ret;
	}

	/* Each piece of a zeroing, WRITE_SAME or COPY passes the gate anew: an
	 * acquire waits for one piece, not for all of them. */
	ret = fence_enter(r, true);
	if (ret)
		return ret;
	ret = execute_change(r);
	fence_leave(r->vd);
	return ret;
}

static void build_answer(struct request *r)
{
	struct vxhs_hdr a = r->hdr;

	a.flags = vxhs_hdr_response_flags(r->hdr.flags);
	a.err = r->err;
	a.payload_size = r->err ? 0 : r->out_payload;
	a.io_nbytes = r->err ? 0 : r->hdr.io_size;
	if (r->err == EILSEQ)
		a.io_nbytes = r->miscompare;
	if (vxhs_opcode_answers_kvset(r->hdr.opcode))
		a.data_type = VXHS_DATA_KVSET;
	vxhs_hdr_encode(&a, r->out);
	if (r->use)
		usage_count(r->use, r->hdr.opcode, r->hdr.io_size, r->err);
}

/*
 * Where the file system cannot say whether a buffered write would block
 * (RWF_NOWAIT answers EOPNOTSUPP on ext4 and tmpfs), a small write still
 * runs on the network thread: it is a copy into the page cache that
 * rarely waits, against two thread hand-offs to a worker and back, which
 * cost more than the copy. One that waited longer than SLOW_WRITE_NS
 * (writeback throttling, a journal commit) sends the vdisk's writes to
 * the workers for WRITE_BACKOFF_NS, so a slow disk holds each loop up at
 * most once a second. Waited means the thread slept: a write that took
 * long only because the thread was preempted (a busy host, a vCPU the
 * hypervisor did not run) is no sign of a slow disk, and sending writes
 * to the workers then only adds hand-offs to a CPU already short. Sleeps
 * are the thread's voluntary context switches, read before each write
 * and again after a slow one. Network threads write a vdisk one at a
 * time (loop_write_lock), so that none sleeps on the file's lock behind
 * another inside what is measured: the wait for a writer that was itself
 * preempted is no slow disk, and a writer that met the slow disk is
 * measured as such. Anything but the whole write done: a worker does it.
 */
#define LOOP_WRITE_MAX	 (64u * 1024)
#define SLOW_WRITE_NS	 (10 * NSEC_PER_MSEC)
#define WRITE_BACKOFF_NS (1 * NSEC_PER_SEC)

/* The calling thread's voluntary context switches: how often it slept. */
static long thread_sleeps(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? -1 : ru.ru_nvcsw;
}

/* Checked before the fence is entered: no gate work for a worker's job. */
static bool loop_may_write(struct vdisk *vd, uint64_t len)
{
	return !atomic_load(&vd->no_nowait[1]) ||
	       (len <= LOOP_WRITE_MAX &&
		vxhs_now_ns() >= atomic_load(&vd->loop_writes_after));
}

static ssize_t write_on_loop(struct request *r, const struct iovec *iov,
			     int cnt)
{
	struct vdisk *vd = r->vd;
	off_t off = (off_t)r->hdr.io_offset;
	uint64_t start, took;
	bool slept = false;
	long sleeps;
	ssize_t n;

	if (!atomic_load(&vd->no_nowait[1])) {
		n = pwritev2(vd->fd, iov, cnt, off, RWF_NOWAIT);
		/* Learnt; loop_may_write decides from the next one. */
		if (n < 0 && errno == EOPNOTSUPP)
			atomic_store(&vd->no_nowait[1], true);
		return n;
	}
	pthread_mutex_lock(&vd->loop_write_lock);
	sleeps = thread_sleeps();
	start = vxhs_now_ns();
	n = pwritev(vd->fd, iov, cnt, off);
	took = vxhs_now_ns() - start;
	if (took > SLOW_WRITE_NS) /* unknown counts as slept */
		slept = sleeps < 0 || thread_sleeps() != sleeps;
	pthread_mutex_unlock(&vd->loop_write_lock);
	if (slept) {
		atomic_store(&vd->loop_writes_after,
			     start + took + WRITE_BACKOFF_NS);
		vlog(LOG_DEBUG,
		     "vdisk %s: a write took %llu us; writes go to the workers for a while",
		     vd->id, (unsigned long long)(took / 1000));
	}
	return n;
}

/*
 * A read the page cache holds, on the network thread: RWF_NOWAIT tells
 * where the file system can (ext4, xfs); where it cannot (tmpfs and
 * overlayfs in Linux 6.1), mincore on the vdisk's mapping does, and a
 * plain read follows (a page evicted in between makes that one read wait,
 * as it would on a worker). Anything short: a worker's job.
 */
static ssize_t read_on_loop(struct request *r, const struct iovec *iov, int cnt)
{
	struct vdisk *vd = r->vd;
	off_t off = (off_t)r->hdr.io_offset;
	ssize_t n;

	if (!atomic_load(&vd->no_nowait[0])) {
		n = preadv2(vd->fd, iov, cnt, off, RWF_NOWAIT);
		if (n >= 0 || errno != EOPNOTSUPP)
			return n;
		atomic_store(&vd->no_nowait[0], true);
	}
	if (!vxhs_range_cached(vd->map, vd->map_len, r->hdr.io_offset,
			       r->hdr.io_size))
		return -1;
	return preadv(vd->fd, iov, cnt, off);
}

/* r's read or write on the loop took n bytes: its answer, if all. */
static bool inline_done(struct request *r, ssize_t n)
{
	struct vxhs_hdr *h = &r->hdr;

	/* Partial or would block: the worker redoes all of it, which is
	 * harmless for reads and for writes of the same bytes. */
	if (n != (ssize_t)h->io_size)
		return false;
	r->out_payload = h->opcode == VXHS_OP_READ &&
					 !(h->flags & VXHS_FLAG_BY_REF) ?
				 h->io_size :
				 0;
	fault_count(h->opcode, true);
	build_answer(r);
	return true;
}

/* The buffers r's read or write names: one of its own, or a region's. */
static const struct iovec *io_iov(struct request *r, struct iovec *one,
				  int *cnt)
{
	if (r->hdr.flags & VXHS_FLAG_BY_REF) { /* resolved as it was parsed */
		*cnt = r->ref_cnt;
		return r->ref_iov;
	}
	one->iov_base = r->buf;
	one->iov_len = r->hdr.io_size;
	*cnt = 1;
	return one;
}

bool request_read_done(struct request *r, ssize_t n)
{
	const struct iovec *iov;
	struct iovec one;
	int cnt;

	if (n >= 0) {
		fault_count_ring();
	} else if (n == -EOPNOTSUPP) {
		/* Learnt: this read and the next are made as
		 * read_on_loop says. */
		atomic_store(&r->vd->no_nowait[0], true);
		iov = io_iov(r, &one, &cnt);
		n = read_on_loop(r, iov, cnt);
	}
	return inline_done(r, n);
}

/*
 * Runs a read or write on the calling (network) thread when the page cache
 * can satisfy it without blocking, or queues the read into the thread's
 * ring; INLINE_NOT leaves the request untouched for a worker. Saves two
 * thread hand-offs per request on the common path.
 */
enum inline_result request_try_inline(struct request *r)
{
	struct vxhs_hdr *h = &r->hdr;
	bool by_ref = h->flags & VXHS_FLAG_BY_REF;
	const struct iovec *iov;
	struct iovec one;
	int cnt, cached;
	bool write;
	ssize_t n;

	/* Splicing a pipe into the file may block: a worker's job. Faults
	 * are applied by the workers only. */
	if (r->err || !h->io_size || payload_pipe_active(&r->sink.pipe) ||
	    atomic_load(&faults_armed) ||
	    (h->opcode != VXHS_OP_READ && h->opcode != VXHS_OP_WRITE))
		return INLINE_NOT;
	if (!r->vd && store_lookup_cached(h->target, &r->vd))
		return INLINE_NOT;
	if (!r->use)
		r->use = usage_get(r->s, r->vd);
	iov = io_iov(r, &one, &cnt);
	write = h->opcode == VXHS_OP_WRITE;
	if (h->io_offset + h->io_size > atomic_load(&r->vd->size))
		return INLINE_NOT;
	if (!write && !by_ref && (cached = answer_from_cache(r))) {
		if (cached < 0)
			return INLINE_NOT;
		n = (ssize_t)h->io_size;
	} else if (!write) {
		if (!atomic_load(&r->vd->no_nowait[0]) &&
		    ring_read_queue(r->s->loop->reads, r, iov, cnt))
			return INLINE_QUEUED;
		n = read_on_loop(r, iov, cnt);
	} else {
		/* Too large or backing off, fenced, or the gate would make
		 * it wait: a worker's job. */
		if (!loop_may_write(r->vd, h->io_size) || fence_enter(r, false))
			return INLINE_NOT;
		n = write_on_loop(r, iov, cnt);
		fence_leave(r->vd);
	}
	return inline_done(r, n) ? INLINE_ANSWERED : INLINE_NOT;
}

bool request_may_block(const struct request *r)
{
	return !r->vd || (r->hdr.opcode != VXHS_OP_READ &&
			  r->hdr.opcode != VXHS_OP_WRITE);
}

bool request_execute(struct request *r)
{
	int ret = 0;

	if (!r->done) { /* the first piece */
		fault_count(r->hdr.opcode, false);
		if (!r->err)
			r->err = fault_before(r);
	}
	if (!r->err) {
		ret = execute(r);
		if (ret > 0)
			return false;
		r->err = ret ? errno_to_wire(ret) : 0;
	}
	/* Fenced requests are logged by lock.c, within a rate. */
	if (ret && ret != -ENOENT && ret != -ERANGE && ret != -EILSEQ &&
	    ret != -ESTALE && ret != -ENXIO)
		slog(r->s, r->hdr.target, r->hdr.opcode, LOG_WARNING,
		     "%s: %s of vdisk %s at %llu+%llu failed: %s", r->s->peer,
		     vxhs_opcode_name(r->hdr.opcode), r->hdr.target,
		     (unsigned long long)r->hdr.io_offset,
		     (unsigned long long)r->hdr.io_size, strerror(-ret));
	build_answer(r);
	return true;
}

/*
 * Requests and the buffers of small ones are pooled: a session's loop
 * makes them, and a worker may end them, so malloc's per-thread caches
 * would not keep them.
 */
#define SMALL_BUF 16384
static struct obj_pool request_pool =
	OBJ_POOL_INIT(sizeof(struct request), 256);
static struct obj_pool small_buf_pool = OBJ_POOL_INIT(SMALL_BUF, 256);

struct request *request_alloc(uint64_t buf_len)
{
	struct request *r = obj_pool_get(&request_pool);

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->out_fd[0] = r->out_fd[1] = -1;
	if (!buf_len)
		return r;
	r->buf_pooled = buf_len <= SMALL_BUF;
	r->buf = r->buf_pooled ? obj_pool_get(&small_buf_pool) :
				 malloc(buf_len);
	if (!r->buf) {
		obj_pool_put(&request_pool, r);
		return NULL;
	}
	r->buf_len = buf_len;
	return r;
}

static void request_drop_buf(struct request *r)
{
	if (r->buf_pooled)
		obj_pool_put(&small_buf_pool, r->buf);
	else
		free(r->buf);
	r->buf = NULL;
	r->buf_pooled = false;
}

int request_answer_buf(struct request *r, size_t len)
{
	request_drop_buf(r);
	r->buf = malloc(len);
	return r->buf ? 0 : -ENOMEM;
}

void request_free(struct request *r)
{
	if (r->vd)
		store_put(r->vd);
	if (r->src)
		store_put(r->src);
	region_release(r);
	for (int i = 0; i < 2; i++)
		if (r->out_fd[i] >= 0)
			close(r->out_fd[i]);
	budget_release(r->s, r->charged);
	sink_close(&r->sink);
	request_drop_buf(r);
	obj_pool_put(&request_pool, r);
}
