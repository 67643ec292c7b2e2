// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The I/O callouts. Each queues requests with the client library and
 * returns TCMU_STS_OK ("queued"); the library's I/O thread completes the
 * command through tcmur_cmd_complete(). A non-OK return value is a
 * completion on the spot, which tcmu-runner reports itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <scsi/scsi.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "common/util.h"
#include "vxhs_handler.h"

#ifndef COMPARE_AND_WRITE
#define COMPARE_AND_WRITE 0x89
#endif
#ifndef WRITE_VERIFY_16
#define WRITE_VERIFY_16 0x8e
#endif

/* WRITE SAME and zeroing without the agent's help: a pattern buffer this
 * big, repeated FILL_IOVS times per request. */
#define FILL_BUF_BYTES (1u << 20)
#define FILL_IOVS      16
/* WRITE SAME done by the agent: one request per this much of the range,
 * each well inside the I/O timeout however long the command. */
#define SAME_REQUEST_BYTES (256ull << 20)

struct hcmd;
typedef int (*submit_fn)(struct hcmd *h, vxhs_done_fn done);

/* One SCSI command (or one piece of an UNMAP) on its way to the agent. */
struct hcmd {
	struct vxhs_dev *vdev;
	struct vxhs_vdisk *vd; /* the vdisk it went to */
	struct tcmur_cmd *cmd;
	const char *what;
	uint64_t off, len;
	bool write;	   /* a media error is a write error */
	bool flush_after;  /* FUA, or the write cache is off */
	struct iovec *iov; /* tcmu-runner's, valid until completion */
	int iov_cnt;
	uint64_t miscompare; /* COMPARE AND WRITE: the first byte differing */
	/* fill, WRITE SAME: the pattern, what is left to write, and how
	 * the next piece of it goes */
	uint8_t *buf;
	size_t buf_len;
	uint64_t fill_off, fill_left;
	submit_fn piece;
};

/* Made on tcmu-runner's thread, ended on the client's: pooled. */
static struct obj_pool hcmd_pool = OBJ_POOL_INIT(sizeof(struct hcmd), 256);

static struct hcmd *hcmd_new(struct tcmu_device *dev, struct tcmur_cmd *cmd,
			     const char *what, uint64_t off, uint64_t len,
			     bool write)
{
	struct hcmd *h = obj_pool_get(&hcmd_pool);

	if (!h)
		return NULL;
	memset(h, 0, sizeof(*h));
	h->vdev = tcmur_dev_get_private(dev);
	h->cmd = cmd;
	h->what = what;
	h->off = off;
	h->len = len;
	h->write = write;
	return h;
}

static void hcmd_free(struct hcmd *h)
{
	free(h->buf);
	obj_pool_put(&hcmd_pool, h);
}

static void hcmd_finish(struct hcmd *h, int result)
{
	struct tcmu_device *dev = h->vdev->dev;
	uint8_t *sense = h->cmd->lib_cmd ? h->cmd->lib_cmd->sense_buf : NULL;
	int sts = vxhs_status(result, h->write, sense);
	char name[VXHS_TARGET_SIZE];

	/* A lost vdisk is reported by its FAILED event (device.c), which
	 * comes before these completions and knows the vdisk is current. */
	if (result)
		vxhs_dev_name(h->vdev, name, sizeof(name));
	/* Another gateway took the vdisk's lock: tcmu-runner must hear it
	 * before the command completes, to take the lock back (or report
	 * this path as standby) when the initiator retries. */
	if (result == -ESTALE) {
		tcmu_dev_info(
			dev,
			"vdisk %s: %s fenced: the lock is another gateway's\n",
			name, h->what);
		tcmu_notify_lock_lost(dev);
	}
	if (result == -ENOTCONN)
		tcmu_dev_dbg(dev, "vdisk %s: %s: no agent, retry\n", name,
			     h->what);
	else if (sts == TCMU_STS_BUSY || sts == TCMU_STS_TIMEOUT ||
		 sts == TCMU_STS_NO_RESOURCE)
		tcmu_dev_dbg(dev, "vdisk %s: %s at %" PRIu64 ": %s, retry\n",
			     name, h->what, h->off, strerror(-result));
	else if (result)
		tcmu_dev_err(dev,
			     "vdisk %s: %s of %" PRIu64 " bytes at %" PRIu64
			     " failed: %s\n",
			     name, h->what, h->len, h->off, strerror(-result));
	tcmur_cmd_complete(dev, h->cmd, sts);
	hcmd_free(h);
}

/*
 * The submission of a request, or a synchronous error. A vdisk that reconfig
 * or close is replacing takes no more requests: they end BUSY.
 */

static int submit_locked(struct hcmd *h, submit_fn fn, vxhs_done_fn done)
{
	/* Once submitted, h may complete and be freed at any moment. */
	struct vxhs_dev *vdev = h->vdev;
	int ret;

	pthread_rwlock_rdlock(&vdev->lock);
	if (!h->vd)
		h->vd = vdev->vd;
	if (h->vd && h->vd == vdev->vd)
		ret = fn(h, done);
	else
		ret = -ECANCELED;
	pthread_rwlock_unlock(&vdev->lock);
	return ret;
}

/* From a callout: a synchronous failure completes the command at once. */
static int start(struct hcmd *h, submit_fn fn, vxhs_done_fn done)
{
	int ret = submit_locked(h, fn, done);
	char name[VXHS_TARGET_SIZE];
	int sts;

	if (!ret)
		return TCMU_STS_OK;
	sts = vxhs_status(ret, h->write,
			  h->cmd->lib_cmd ? h->cmd->lib_cmd->sense_buf : NULL);
	vxhs_dev_name(h->vdev, name, sizeof(name));
	tcmu_dev_dbg(h->vdev->dev, "vdisk %s: %s not queued: %s\n", name,
		     h->what, vxhs_errmsg());
	hcmd_free(h);
	return sts;
}

/* From a completion: the next step of a command, or its end. */
static void next(struct hcmd *h, submit_fn fn, vxhs_done_fn done)
{
	int ret = submit_locked(h, fn, done);

	if (ret)
		hcmd_finish(h, ret);
}

static void done_finish(void *opaque, int result)
{
	hcmd_finish(opaque, result);
}

static int submit_flush(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_flush(h->vd, done, h);
}

static void done_then_flush(void *opaque, int result)
{
	struct hcmd *h = opaque;

	if (result)
		hcmd_finish(h, result);
	else
		next(h, submit_flush, done_finish);
}

/* Writes the initiator asked to reach stable storage before completion. */
static bool wants_fua(struct tcmur_cmd *cmd)
{
	const uint8_t *cdb = cmd->lib_cmd ? cmd->lib_cmd->cdb : NULL;

	if (!cdb)
		return false;
	switch (cdb[0]) {
	case WRITE_10:
	case WRITE_12:
	case WRITE_16:
	case COMPARE_AND_WRITE:
		return cdb[1] & 0x08;
	case WRITE_VERIFY:
	case WRITE_VERIFY_16:
		return true; /* verifies the medium, not a cache */
	}
	return false;
}

static int submit_read(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_readv(h->vd, h->iov, h->iov_cnt, h->off, done, h);
}

static int submit_write(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_writev(h->vd, h->iov, h->iov_cnt, h->off, done, h);
}

/* A transfer length of zero moves no data and is no error (SBC-4); a
 * read served from the file (local.c) is done too. */
static int complete_now(struct tcmu_device *dev, struct tcmur_cmd *cmd)
{
	tcmur_cmd_complete(dev, cmd, TCMU_STS_OK);
	return TCMU_STS_OK;
}

static int read_from_agent(struct tcmu_device *dev, struct tcmur_cmd *cmd,
			   struct iovec *iov, size_t iov_cnt, uint64_t off,
			   size_t len)
{
	struct hcmd *h = hcmd_new(dev, cmd, "read", off, len, false);

	if (!h)
		return TCMU_STS_NO_RESOURCE;
	h->iov = iov;
	h->iov_cnt = (int)iov_cnt;
	return start(h, submit_read, done_finish);
}

void vxhs_read_from_agent(struct tcmu_device *dev, struct tcmur_cmd *cmd,
			  struct iovec *iov, size_t iov_cnt, uint64_t off,
			  size_t len)
{
	int sts = read_from_agent(dev, cmd, iov, iov_cnt, off, len);

	if (sts != TCMU_STS_OK)
		tcmur_cmd_complete(dev, cmd, sts);
}

int handler_read(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		 struct iovec *iov, size_t iov_cnt, size_t len, off_t off)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);

	if (!len)
		return complete_now(dev, cmd);
	if (vxhs_copy_offer(vdev, cmd, iov, iov_cnt, (uint64_t)off, len))
		return TCMU_STS_OK;
	if (vxhs_local_read(vdev, iov, iov_cnt, (uint64_t)off, len))
		return complete_now(dev, cmd);
	return read_from_agent(dev, cmd, iov, iov_cnt, (uint64_t)off, len);
}

int handler_write(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		  struct iovec *iov, size_t iov_cnt, size_t len, off_t off)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	bool flush_after = (vdev->features & VXHS_FEAT_FLUSH) &&
			   (vdev->write_through || wants_fua(cmd));
	struct hcmd *h;

	if (!len)
		return complete_now(dev, cmd);
	/* Written to the file here (local_write.c): the agent's FLUSH
	 * makes it stable, as it does its own writes. */
	if (vxhs_local_write(vdev, iov, iov_cnt, (uint64_t)off, len))
		return flush_after ? handler_flush(dev, cmd) :
				     complete_now(dev, cmd);
	h = hcmd_new(dev, cmd, "write", (uint64_t)off, len, true);
	if (!h)
		return TCMU_STS_NO_RESOURCE;
	h->iov = iov;
	h->iov_cnt = (int)iov_cnt;
	h->flush_after = flush_after;
	return start(h, submit_write,
		     h->flush_after ? done_then_flush : done_finish);
}

int handler_flush(struct tcmu_device *dev, struct tcmur_cmd *cmd)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	struct hcmd *h;

	/* A v34 agent's acknowledged writes are already stable. */
	if (!(vdev->features & VXHS_FEAT_FLUSH))
		return complete_now(dev, cmd);
	h = hcmd_new(dev, cmd, "flush", 0, 0, true);
	if (!h)
		return TCMU_STS_NO_RESOURCE;
	return start(h, submit_flush, done_finish);
}

static int submit_caw(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_compare_and_write(h->vd, h->iov, h->iov_cnt, h->off, h->len,
				      &h->miscompare, done, h);
}

/* MISCOMPARE names the first differing byte of the data-out buffer. */
static int miscompare_status(struct tcmur_cmd *cmd, uint64_t at)
{
	if (cmd->lib_cmd)
		tcmu_sense_set_info(cmd->lib_cmd->sense_buf, (uint32_t)at);
	return TCMU_STS_MISCOMPARE;
}

static void done_caw(void *opaque, int result)
{
	struct hcmd *h = opaque;

	if (result == -EILSEQ) {
		tcmur_cmd_complete(h->vdev->dev, h->cmd,
				   miscompare_status(h->cmd, h->miscompare));
		hcmd_free(h);
	} else if (!result && h->flush_after) {
		next(h, submit_flush, done_finish);
	} else {
		hcmd_finish(h, result);
	}
}

/* An agent without the extension: compared and written here, on
 * tcmu-runner's thread, one at a time for the LUN. */
static int caw_here(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		    uint64_t off, uint64_t len, struct iovec *iov,
		    size_t iov_cnt)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	uint8_t *buf = malloc(2 * len);
	uint64_t at = 0;
	int ret, sts;

	if (!buf)
		return TCMU_STS_NO_RESOURCE;
	copy_from_iovec(buf, iov, iov_cnt, 0, 2 * len);
	ret = vxhs_lun_caw_sync(vdev, buf, buf + len, len, off, &at);
	free(buf);
	if (ret == -EILSEQ)
		return miscompare_status(cmd, at);
	sts = vxhs_status(ret, true,
			  cmd->lib_cmd ? cmd->lib_cmd->sense_buf : NULL);
	if (sts != TCMU_STS_OK)
		return sts;
	if ((vdev->features & VXHS_FEAT_FLUSH) && wants_fua(cmd))
		return handler_flush(dev, cmd);
	return complete_now(dev, cmd);
}

/*
 * COMPARE AND WRITE: the agent does it atomically for every client of the
 * vdisk (docs/protocol.md); tcmu-runner's own emulation would be atomic
 * only within this process.
 */
int handler_caw(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint64_t off,
		uint64_t len, struct iovec *iov, size_t iov_cnt)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	struct hcmd *h;

	if (!len)
		return complete_now(dev, cmd);
	if (!(vdev->features & VXHS_FEAT_COMPARE_AND_WRITE) ||
	    len > VXHS_CAW_MAX)
		return caw_here(dev, cmd, off, len, iov, iov_cnt);
	h = hcmd_new(dev, cmd, "compare and write", off, len, true);
	if (!h)
		return TCMU_STS_NO_RESOURCE;
	h->iov = iov;
	h->iov_cnt = (int)iov_cnt;
	h->flush_after = (vdev->features & VXHS_FEAT_FLUSH) &&
			 (vdev->write_through || wants_fua(cmd));
	return start(h, submit_caw, done_caw);
}

/* Writes the pattern over [fill_off, fill_off + fill_left), in pieces. */
static int submit_fill(struct hcmd *h, vxhs_done_fn done)
{
	struct iovec iov[FILL_IOVS];
	uint64_t left = h->fill_left, chunk = 0;
	int n = 0;

	while (left && n < FILL_IOVS) {
		size_t piece = (size_t)MIN(left, (uint64_t)h->buf_len);

		iov[n].iov_base = h->buf;
		iov[n++].iov_len = piece;
		left -= piece;
		chunk += piece;
	}
	h->fill_left -= chunk;
	h->fill_off += chunk;
	return vxhs_writev(h->vd, iov, n, h->fill_off - chunk, done, h);
}

static void done_piece(void *opaque, int result)
{
	struct hcmd *h = opaque;

	if (result || !h->fill_left)
		hcmd_finish(h, result);
	else
		next(h, h->piece, done_piece);
}

/* pattern NULL: zeroes. */
static int start_fill(struct hcmd *h, const struct iovec *pattern, size_t block)
{
	h->buf_len = (size_t)MIN(h->len, (uint64_t)FILL_BUF_BYTES);
	if (pattern)
		h->buf_len -= h->buf_len % block;
	h->buf = pattern ? malloc(h->buf_len) : calloc(1, h->buf_len);
	if (!h->buf) {
		hcmd_free(h);
		return TCMU_STS_NO_RESOURCE;
	}
	for (size_t i = 0; pattern && i < h->buf_len; i += block)
		memcpy(h->buf + i, pattern->iov_base, block);
	h->fill_off = h->off;
	h->fill_left = h->len;
	h->piece = submit_fill;
	return start(h, submit_fill, done_piece);
}

/* The agent writes the pattern (tcmu-runner's block, h->iov). */
static int submit_same(struct hcmd *h, vxhs_done_fn done)
{
	uint64_t n = MIN(h->fill_left, SAME_REQUEST_BYTES);

	h->fill_left -= n;
	h->fill_off += n;
	return vxhs_write_same(h->vd, h->iov->iov_base, h->iov->iov_len,
			       h->fill_off - n, n, done, h);
}

static int submit_zeroes(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_write_zeroes(h->vd, h->off, h->len, done, h);
}

static int submit_discard(struct hcmd *h, vxhs_done_fn done)
{
	return vxhs_discard(h->vd, h->off, h->len, done, h);
}

/*
 * tcmu-runner reports LBPRZ: unmapped blocks read as zeroes. DISCARD and
 * WRITE_ZEROES promise that; without either, zeroes are written.
 */
int handler_unmap(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint64_t off,
		  uint64_t len)
{
	struct hcmd *h = hcmd_new(dev, cmd, "unmap", off, len, true);
	uint64_t features;

	if (!h)
		return TCMU_STS_NO_RESOURCE;
	features = h->vdev->features;
	if (features & VXHS_FEAT_DISCARD)
		return start(h, submit_discard, done_finish);
	if (features & VXHS_FEAT_WRITE_ZEROES)
		return start(h, submit_zeroes, done_finish);
	return start_fill(h, NULL, 0);
}

int handler_writesame(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		      uint64_t off, uint64_t len, struct iovec *iov,
		      size_t iov_cnt)
{
	uint32_t bs = tcmu_dev_get_block_size(dev);
	struct hcmd *h;

	if (iov_cnt != 1 || iov->iov_len != bs)
		return TCMU_STS_INVALID_CDB;
	h = hcmd_new(dev, cmd, "write same", off, len, true);
	if (!h)
		return TCMU_STS_NO_RESOURCE;
	if (tcmu_iovec_zeroed(iov, iov_cnt)) {
		if (h->vdev->features & VXHS_FEAT_WRITE_ZEROES)
			return start(h, submit_zeroes, done_finish);
		return start_fill(h, NULL, 0);
	}
	if (!(h->vdev->features & VXHS_FEAT_WRITE_SAME))
		return start_fill(h, iov, bs);
	h->iov = iov;
	h->iov_cnt = 1;
	h->fill_off = off;
	h->fill_left = len;
	h->piece = submit_same;
	return start(h, submit_same, done_piece);
}
