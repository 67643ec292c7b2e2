// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The handler's copy manager: EXTENDED COPY (LID1) with block-to-block
 * segments between LUNs this tcmu-runner serves through the handler, and
 * RECEIVE COPY RESULTS: COPY STATUS of the copies that asked for it, and
 * OPERATING PARAMETERS announcing its limits.
 *
 * When both LUNs use the same agents, and the agent offers COPY, the agent
 * copies: no data crosses the gateway. Otherwise the handler reads and
 * writes through the gateway in pieces.
 *
 * Which LUNs may be named together: TCMU does not tell user space which
 * initiator sent a command, so the handler cannot check that the initiator
 * may reach the other LUN (the kernel's own copy manager checks the
 * session's LUNs). A LUN copies only within itself unless the
 * administrator puts LUNs in one copy domain (copy_domain= in each
 * cfgstring), saying that whoever reaches one may reach all.
 *
 * The whole list is checked before the first byte is copied, so a
 * malformed list never leaves a partial copy. Like VERIFY, the copy runs
 * on tcmu-runner's command thread (scsi.c says why).
 */
#include <errno.h>
#include <inttypes.h>
#include <scsi/scsi.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "scsi_field.h"
#include "vxhs_handler.h"
#include "xcopy_list.h"

/* SPC-4 additional sense codes (ASC << 8 | ASCQ). */
#define ASC_UNREACHABLE_COPY_TARGET    0x0804
#define ASC_THIRD_PARTY_DEVICE_FAILURE 0x0d01

#define SA_LID1		    0x00
#define SA_COPY_STATUS	    0x00
#define SA_OPERATING_PARAMS 0x03

/* Through the gateway: pieces of this size. */
#define GATEWAY_PIECE (1u << 20)

static int sense(struct tcmulib_cmd *cmd, uint8_t key, uint16_t asc)
{
	return tcmu_sense_set_data(cmd->sense_buf, key, asc);
}

static int list_status(struct tcmulib_cmd *cmd, enum xcopy_error err)
{
	switch (err) {
	case XCOPY_OK:
		return TCMU_STS_OK;
	case XCOPY_LIST_LENGTH:
		return TCMU_STS_INVALID_PARAM_LIST_LEN;
	case XCOPY_INVALID_FIELD:
		return TCMU_STS_INVALID_PARAM_LIST;
	case XCOPY_TOO_MANY_TARGETS:
		return TCMU_STS_TOO_MANY_TGT_DESC;
	case XCOPY_TOO_MANY_SEGMENTS:
		return TCMU_STS_TOO_MANY_SEG_DESC;
	case XCOPY_TARGET_TYPE:
		return TCMU_STS_NOTSUPP_TGT_DESC_TYPE;
	case XCOPY_SEGMENT_TYPE:
		return TCMU_STS_NOTSUPP_SEG_DESC_TYPE;
	case XCOPY_BAD_INDEX:
		return sense(cmd, COPY_ABORTED, ASC_UNREACHABLE_COPY_TARGET);
	case XCOPY_UNREACHABLE:
		return TCMU_STS_CP_TGT_DEV_NOTCONN;
	case XCOPY_TARGET_DEVICE:
		return TCMU_STS_INVALID_CP_TGT_DEV_TYPE;
	}
	return TCMU_STS_HW_ERR;
}

/* What a failed copy tells the initiator: what may clear by itself stays
 * as the other commands say it (BUSY, NOT READY...), so it retries; the
 * rest aborts the copy. */
static int copy_status(struct tcmulib_cmd *cmd, int ret)
{
	switch (ret) {
	case -EAGAIN:
	case -ENOMEM:
	case -ETIMEDOUT:
	case -ENOTCONN:
	case -ECANCELED:
	case -EBADF:
	case -ESTALE:
	case -ENOSPC:
		return vxhs_status(ret, true, cmd->sense_buf);
	}
	return sense(cmd, COPY_ABORTED, ASC_THIRD_PARTY_DEVICE_FAILURE);
}

struct copy_target {
	struct vxhs_dev *vdev; /* held in the registry */
	struct vxhs_cfg cfg;   /* its configuration when the copy began */
};

static bool same_agents(const struct vxhs_cfg *a, const struct vxhs_cfg *b)
{
	if (a->nr_agents != b->nr_agents)
		return false;
	for (unsigned int i = 0; i < a->nr_agents; i++) {
		const struct vxhs_agent_addr *x = &a->agents[i];
		const struct vxhs_agent_addr *y = &b->agents[i];

		if (x->is_unix != y->is_unix || x->port != y->port ||
		    strcmp(x->host, y->host))
			return false;
	}
	return true;
}

static void read_cfg(struct vxhs_dev *vdev, struct vxhs_cfg *cfg)
{
	pthread_rwlock_rdlock(&vdev->lock);
	*cfg = vdev->cfg;
	pthread_rwlock_unlock(&vdev->lock);
}

/* Finds the LUN a CSCD descriptor names and checks that this LUN may
 * reach it. */
static int resolve_target(struct vxhs_dev *self, const struct vxhs_cfg *mine,
			  const struct xcopy_target *t, struct copy_target *ct)
{
	struct tcmu_device *dev = self->dev;

	ct->vdev = vxhs_registry_find(t->naa);
	if (!ct->vdev) {
		tcmu_dev_err(dev, "EXTENDED COPY names a LUN this handler "
				  "does not serve\n");
		return TCMU_STS_CP_TGT_DEV_NOTCONN;
	}
	read_cfg(ct->vdev, &ct->cfg);
	if (ct->vdev != self &&
	    (!mine->copy_domain[0] ||
	     strcmp(mine->copy_domain, ct->cfg.copy_domain))) {
		tcmu_dev_err(dev,
			     "EXTENDED COPY names vdisk %s, not in this "
			     "LUN's copy domain (copy_domain=%s)\n",
			     ct->cfg.vdisk, mine->copy_domain);
		return TCMU_STS_CP_TGT_DEV_NOTCONN;
	}
	if (t->block_size != tcmu_dev_get_block_size(ct->vdev->dev)) {
		tcmu_dev_err(dev,
			     "EXTENDED COPY: DISK BLOCK LENGTH %u for "
			     "vdisk %s of %u-byte blocks\n",
			     t->block_size, ct->cfg.vdisk,
			     tcmu_dev_get_block_size(ct->vdev->dev));
		return TCMU_STS_INVALID_PARAM_LIST;
	}
	return TCMU_STS_OK;
}

static bool in_lun(struct vxhs_dev *vdev, uint64_t lba, uint64_t blocks)
{
	uint64_t lbas = tcmu_dev_get_num_lbas(vdev->dev);

	return lba <= lbas && blocks <= lbas - lba;
}

/* The agent copies, in pieces of at most one request. */
static int copy_by_agent(struct vxhs_dev *dst, const char *src_id,
			 uint64_t src_off, uint64_t dst_off, uint64_t len)
{
	struct vxhs_vdisk *vd = vxhs_lun_hold(dst);
	int ret = 0;

	if (!vd)
		return -ENOTCONN;
	for (uint64_t done = 0; !ret && done < len;) {
		uint64_t n = MIN(len - done, (uint64_t)VXHS_COPY_MAX);

		ret = vxhs_copy_sync(vd, src_id, src_off + done, dst_off + done,
				     n);
		done += n;
	}
	vxhs_lun_release(dst);
	return ret;
}

/* Through the gateway. Within one vdisk, a destination after an
 * overlapping source is copied from the end, so every block is read
 * before it is overwritten. */
static int copy_by_gateway(struct vxhs_dev *src, struct vxhs_dev *dst,
			   uint64_t src_off, uint64_t dst_off, uint64_t len)
{
	bool backward = src == dst && dst_off > src_off &&
			dst_off < src_off + len;
	uint8_t *buf = malloc(GATEWAY_PIECE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t done = 0; !ret && done < len;) {
		uint64_t n = MIN(len - done, (uint64_t)GATEWAY_PIECE);
		uint64_t at = backward ? len - done - n : done;

		ret = vxhs_lun_read_sync(src, buf, n, src_off + at);
		if (!ret)
			ret = vxhs_lun_write_sync(dst, buf, n, dst_off + at);
		done += n;
	}
	free(buf);
	return ret;
}

static int flush_lun(struct vxhs_dev *vdev)
{
	struct vxhs_vdisk *vd;
	int ret;

	if (!(vdev->features & VXHS_FEAT_FLUSH) || !vdev->write_through)
		return 0;
	vd = vxhs_lun_hold(vdev);
	if (!vd)
		return -ENOTCONN;
	ret = vxhs_flush_sync(vd);
	vxhs_lun_release(vdev);
	return ret;
}

static int copy_segment(const struct xcopy_segment *s,
			const struct copy_target *src,
			const struct copy_target *dst)
{
	uint32_t bs = tcmu_dev_get_block_size(dst->vdev->dev);
	uint64_t len = (uint64_t)s->blocks * bs;

	if (!len)
		return 0;
	if ((dst->vdev->features & VXHS_FEAT_COPY) &&
	    same_agents(&src->cfg, &dst->cfg))
		return copy_by_agent(dst->vdev, src->cfg.vdisk, s->src_lba * bs,
				     s->dst_lba * bs, len);
	return copy_by_gateway(src->vdev, dst->vdev, s->src_lba * bs,
			       s->dst_lba * bs, len);
}

/* Checks every segment of a parsed list, then copies them in order,
 * counting in res what was done. */
static int run_list(struct vxhs_dev *self, const struct xcopy_list *list,
		    struct tcmulib_cmd *cmd, struct xcopy_result *res)
{
	struct copy_target targets[XCOPY_MAX_TARGETS] = { 0 };
	struct vxhs_cfg *mine = malloc(sizeof(*mine));
	bool used[XCOPY_MAX_TARGETS] = { false };
	bool written[XCOPY_MAX_TARGETS] = { false };
	int sts = TCMU_STS_OK, ret = 0;
	unsigned int i;

	if (!mine)
		return TCMU_STS_NO_RESOURCE;
	read_cfg(self, mine);
	for (i = 0; i < list->nr_segments; i++) {
		used[list->segments[i].src] = true;
		used[list->segments[i].dst] = written[list->segments[i].dst] =
			true;
	}
	for (i = 0; i < list->nr_targets && sts == TCMU_STS_OK; i++)
		if (used[i])
			sts = resolve_target(self, mine, &list->targets[i],
					     &targets[i]);
	for (i = 0; i < list->nr_segments && sts == TCMU_STS_OK; i++) {
		const struct xcopy_segment *s = &list->segments[i];
		struct vxhs_dev *src = targets[s->src].vdev;
		struct vxhs_dev *dst = targets[s->dst].vdev;

		if (tcmu_dev_get_block_size(src->dev) !=
		    tcmu_dev_get_block_size(dst->dev))
			sts = TCMU_STS_INVALID_CP_TGT_DEV_TYPE;
		else if (!in_lun(src, s->src_lba, s->blocks) ||
			 !in_lun(dst, s->dst_lba, s->blocks)) {
			tcmu_dev_err(self->dev,
				     "EXTENDED COPY segment %u: %u blocks from "
				     "LBA %" PRIu64 " to LBA %" PRIu64
				     " go beyond the end of a LUN\n",
				     i, s->blocks, s->src_lba, s->dst_lba);
			sts = TCMU_STS_CP_TGT_DEV_NOTCONN;
		}
	}
	for (i = 0; i < list->nr_segments && sts == TCMU_STS_OK && !ret; i++) {
		const struct xcopy_segment *s = &list->segments[i];

		ret = copy_segment(s, &targets[s->src], &targets[s->dst]);
		if (!ret) {
			res->segments++;
			res->bytes += (uint64_t)s->blocks *
				      tcmu_dev_get_block_size(self->dev);
		}
	}
	for (i = 0; i < list->nr_targets && sts == TCMU_STS_OK && !ret; i++)
		if (written[i])
			ret = flush_lun(targets[i].vdev);
	if (sts == TCMU_STS_OK && ret) {
		tcmu_dev_err(self->dev, "EXTENDED COPY failed: %s\n",
			     strerror(-ret));
		sts = copy_status(cmd, ret);
	}
	res->failed = sts != TCMU_STS_OK;
	for (i = 0; i < XCOPY_MAX_TARGETS; i++)
		if (targets[i].vdev)
			vxhs_registry_put(targets[i].vdev);
	free(mine);
	return sts;
}

int handler_xcopy(struct tcmu_device *dev, struct tcmulib_cmd *cmd)
{
	struct vxhs_dev *self = tcmur_dev_get_private(dev);
	uint64_t len = scsi_get_be(cmd->cdb + 10, 4);
	struct xcopy_result res = { 0 };
	struct xcopy_list list;
	enum xcopy_error err;
	const char *what = "";
	uint8_t *par;
	int sts;

	if ((cmd->cdb[1] & 0x1f) != SA_LID1)
		return TCMU_STS_INVALID_CDB;
	/* No parameter list: nothing to copy (SPC-4 6.4.1). */
	if (!len)
		return TCMU_STS_OK;
	if (len > iov_total(cmd->iovec, (int)cmd->iov_cnt))
		return TCMU_STS_INVALID_PARAM_LIST_LEN;
	/* The descriptors fit in XCOPY_MAX_DESC_LIST; inline data is
	 * never read, so a longer list need not be copied whole. */
	len = MIN(len, (uint64_t)XCOPY_HEADER_LEN + XCOPY_MAX_DESC_LIST);
	par = malloc(len);
	if (!par)
		return TCMU_STS_NO_RESOURCE;
	copy_from_iovec(par, cmd->iovec, cmd->iov_cnt, 0, len);
	err = xcopy_parse(par, len, &list, &what);
	free(par);
	if (err) {
		tcmu_dev_err(dev, "EXTENDED COPY refused: %s\n", what);
		return list_status(cmd, err);
	}
	sts = run_list(self, &list, cmd, &res);
	if (list.held)
		xcopy_history_put(&self->copies, list.list_id, &res);
	return sts;
}

int handler_copy_results(struct tcmu_device *dev, struct tcmulib_cmd *cmd)
{
	struct vxhs_dev *self = tcmur_dev_get_private(dev);
	uint8_t buf[XCOPY_OP_PARAMS_LEN];
	const struct xcopy_result *r;
	size_t n;

	/* RECEIVE DATA and FAILED SEGMENT DETAILS are left out: block to
	 * block segments hold no data, and a failed copy's sense says
	 * what failed. */
	switch (cmd->cdb[1] & 0x1f) {
	case SA_COPY_STATUS:
		r = xcopy_history_find(&self->copies, cmd->cdb[2]);
		if (!r)
			return TCMU_STS_INVALID_CDB; /* no such copy */
		n = xcopy_copy_status(buf, r);
		break;
	case SA_OPERATING_PARAMS:
		n = xcopy_op_params(buf, tcmu_dev_get_block_size(dev));
		break;
	default:
		return TCMU_STS_INVALID_CDB;
	}
	copy_to_iovec(cmd->iovec, cmd->iov_cnt, buf, n);
	return TCMU_STS_OK;
}
