// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The life of a LUN: checking a cfgstring, opening the vdisk behind it,
 * fitting the LUN's geometry and caches to what the agent offers, resizing
 * and re-pointing it (reconfig), losing the agents, and closing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vxhs_handler.h"
#include "libtcmu.h"

/* check_config looks for the vdisk, but must not hold targetcli long. */
#define CHECK_TIMEOUT_S 5
/* Unmap ranges sent as one DISCARD; small enough to finish in a timeout,
 * and at most 2^20 blocks of 512 bytes (MAXIMUM UNMAP LBA COUNT above that
 * looks wrong to initiators' checks, libiscsi's among them). */
#define MAX_UNMAP_BYTES (512ull << 20)
/* Granularity of hole punching on the file systems agents use. */
#define UNMAP_GRAN_BYTES 4096u

/* The client names the agent that failed last; list them all if several. */
static void agents_suffix(const struct vxhs_cfg *cfg, char *buf, size_t len)
{
	char list[VXHS_MAX_AGENTS * (VXHS_HOST_MAX + 16)];

	buf[0] = '\0';
	if (cfg->nr_agents < 2)
		return;
	vxhs_cfg_format_agents(cfg, list, sizeof(list));
	snprintf(buf, len, " (agents tried: %s)", list);
}

/*
 * The LUN may be smaller than the vdisk (it then exports the vdisk's first
 * bytes only), never larger: writes past the vdisk's end would fail.
 */
static int check_size(struct tcmu_device *dev, const char *vdisk_id,
		      uint64_t lun_bytes, const struct vxhs_vdisk_info *info)
{
	char lun[32], vdisk[32];

	vxhs_format_size(lun_bytes, lun, sizeof(lun));
	vxhs_format_size(info->size, vdisk, sizeof(vdisk));
	if (lun_bytes > info->size) {
		tcmu_dev_err(dev,
			     "vdisk %s: the LUN (%" PRIu64 " bytes, %s) is "
			     "larger than the vdisk (%" PRIu64 " bytes, %s); "
			     "grow the vdisk first (vxhsadm resize) or give "
			     "the LUN a size of at most %" PRIu64 " bytes\n",
			     vdisk_id, lun_bytes, lun, info->size, vdisk,
			     info->size);
		return -EINVAL;
	}
	if (lun_bytes < info->size)
		tcmu_dev_info(dev,
			      "vdisk %s: the LUN (%s) exports only the first "
			      "%s of the vdisk (%s)\n",
			      vdisk_id, lun, lun, vdisk);
	return 0;
}

/* Write cache and thin provisioning as the agent's extensions allow. */
void vxhs_dev_apply_features(struct vxhs_dev *vdev,
			     const struct vxhs_vdisk_info *info)
{
	struct tcmu_device *dev = vdev->dev;
	uint32_t bs = tcmu_dev_get_block_size(dev);
	uint32_t gran = UNMAP_GRAN_BYTES > bs ? UNMAP_GRAN_BYTES / bs : 1;

	vdev->features = info->features;
	vdev->write_through = false;
	/* v34 acknowledges a write once it is stable: no cache to report. */
	tcmu_dev_set_write_cache_enabled(dev, info->features & VXHS_FEAT_FLUSH);
	tcmu_dev_set_unmap_enabled(dev, info->features & VXHS_FEAT_DISCARD);
	if (info->features & VXHS_FEAT_DISCARD) {
		tcmu_dev_set_max_unmap_len(dev, MAX_UNMAP_BYTES / bs);
		/* Whole ranges, not granule-sized pieces: one DISCARD each. */
		tcmu_dev_set_opt_unmap_gran(dev, gran, false);
		/* Non-zero: tcmu-runner divides by it for WRITE SAME. */
		tcmu_dev_set_unmap_gran_align(dev, gran);
	}
}

static int check_geometry(struct tcmu_device *dev, const char *vdisk_id,
			  const struct vxhs_vdisk_info *info)
{
	uint32_t bs = tcmu_dev_get_block_size(dev);

	if (bs < 512 || bs > 65536 || (bs & (bs - 1))) {
		tcmu_dev_err(dev,
			     "vdisk %s: block size %u is not a power of two "
			     "from 512 to 65536\n",
			     vdisk_id, bs);
		return -EINVAL;
	}
	return check_size(dev, vdisk_id, tcmu_dev_get_num_lbas(dev) * bs, info);
}

/*
 * Without failover_timeout, just under the backstore's cmd_time_out: then
 * the handler, not the kernel's timer, ends commands, and new ones fail at
 * once instead of waiting out the same timer again.
 */
unsigned int vxhs_dev_failover_ms(const struct vxhs_dev *vdev,
				  const struct vxhs_cfg *cfg)
{
	int t = vdev->cmd_time_out;
	struct vxhs_open_opts opts;

	vxhs_cfg_open_opts(cfg, &opts);
	if (cfg->no_agent == VXHS_NO_AGENT_QUEUE || cfg->failover_timeout ||
	    t <= 0)
		return opts.failover_deadline_ms;
	return (unsigned int)(t >= 10 ? t - 5 : MAX(t / 2, 1)) * 1000u;
}

/* What an initiator sees while no agent answers, said once at open. */
static void log_outage_policy(struct vxhs_dev *vdev)
{
	const struct vxhs_cfg *cfg = &vdev->cfg;
	unsigned int ms = vxhs_dev_failover_ms(vdev, cfg);
	int t = vdev->cmd_time_out;

	if (cfg->no_agent == VXHS_NO_AGENT_QUEUE && t > 0)
		tcmu_dev_warn(vdev->dev,
			      "vdisk %s: no_agent=queue, but the backstore's "
			      "cmd_time_out (%d s) still ends commands that "
			      "wait that long (LOGICAL UNIT COMMUNICATION "
			      "FAILURE); set the attribute cmd_time_out=0 "
			      "(before the LUN is exported) to queue without "
			      "limit\n",
			      cfg->vdisk, t);
	else if (cfg->no_agent == VXHS_NO_AGENT_QUEUE)
		tcmu_dev_info(vdev->dev,
			      "vdisk %s: with no agent, commands wait for one "
			      "without limit (no_agent=queue)\n",
			      cfg->vdisk);
	else if (t > 0 && ms / 1000 >= (unsigned int)t)
		tcmu_dev_warn(vdev->dev,
			      "vdisk %s: failover_timeout (%u s) is not below "
			      "the backstore's cmd_time_out (%d s): the kernel "
			      "ends waiting commands first, after %d s, with "
			      "LOGICAL UNIT COMMUNICATION FAILURE\n",
			      cfg->vdisk, ms / 1000, t, t);
	else
		tcmu_dev_info(vdev->dev,
			      "vdisk %s: with no agent, commands end with "
			      "LOGICAL UNIT COMMUNICATION FAILURE after %u s "
			      "(failover_timeout%s)\n",
			      cfg->vdisk, ms / 1000,
			      cfg->failover_timeout ? "" :
						      ", under the backstore's "
						      "cmd_time_out");
}

/*
 * The TCMU data area, where the initiator's data sits, shared with an
 * agent on this host (docs/client.md, "Shared memory"): it then reads and
 * writes those pages itself, and no data crosses the socket.
 */
static void share_data_area(struct tcmu_device *dev,
			    struct vxhs_open_opts *opts)
{
	size_t len = 0;
	void *base = NULL;
	off_t off = -1;
	char *name;

	name = tcmu_dev_get_memory_info(dev, &base, &len, &off);
	if (!name)
		return;
	free(name);
	if (off || !base || !len || tcmu_dev_get_fd(dev) < 0)
		return;
	opts->shm_fd = tcmu_dev_get_fd(dev);
	opts->shm_base = base;
	opts->shm_len = len;
}

int vxhs_dev_open_vdisk(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg,
			struct vxhs_ctx *ctx, struct vxhs_vdisk **vd,
			struct vxhs_vdisk_info *info, bool log_failure)
{
	struct vxhs_open_opts opts;
	char agents[VXHS_MAX_AGENTS * (VXHS_HOST_MAX + 16) + 32];
	int ret;

	vxhs_cfg_open_opts(cfg, &opts);
	if (cfg->shared_memory)
		share_data_area(vdev->dev, &opts);
	opts.failover_deadline_ms = vxhs_dev_failover_ms(vdev, cfg);
	opts.event = vxhs_lun_event;
	opts.event_opaque = vdev;
	ret = vxhs_vdisk_open(ctx, cfg->vdisk, &opts, vd);
	if (ret) {
		if (log_failure) {
			agents_suffix(cfg, agents, sizeof(agents));
			tcmu_dev_err(vdev->dev, "%s%s\n", vxhs_errmsg(),
				     agents);
		}
		return ret;
	}
	vxhs_vdisk_get_info(*vd, info);
	ret = check_geometry(vdev->dev, cfg->vdisk, info);
	if (ret)
		vxhs_vdisk_close(*vd);
	return ret;
}

void vxhs_dev_log_opened(struct vxhs_dev *vdev,
			 const struct vxhs_vdisk_info *info, const char *how)
{
	char size[32], agent[VXHS_HOST_MAX + 16];

	vxhs_format_size(info->size, size, sizeof(size));
	vxhs_agent_addr_format(&vdev->cfg.agents[info->agent], agent,
			       sizeof(agent));
	tcmu_dev_info(vdev->dev,
		      "vdisk %s %s on agent %s (%s): %s, block size %u, "
		      "write cache %s, unmap %s\n",
		      vdev->cfg.vdisk, how, agent,
		      info->agent_name[0] ? info->agent_name : "v34 agent",
		      size, tcmu_dev_get_block_size(vdev->dev),
		      info->features & VXHS_FEAT_FLUSH ? "on (FLUSH)" :
							 "off (stable writes)",
		      info->features & VXHS_FEAT_DISCARD ? "on (DISCARD)" :
							   "off");
}

static int parse_for_dev(struct tcmu_device *dev, const char *cfgstring,
			 struct vxhs_cfg *cfg)
{
	char err[512];
	int ret = vxhs_cfg_parse(cfgstring, NULL, cfg, err, sizeof(err));

	if (ret)
		tcmu_dev_err(dev, "invalid configuration '%s': %s\n", cfgstring,
			     err);
	return ret;
}

bool handler_check_config(const char *cfgstring, char **reason)
{
	struct vxhs_vdisk *vd;
	struct vxhs_ctx *ctx;
	struct vxhs_open_opts opts;
	struct vxhs_cfg cfg;
	char err[2048], agents[VXHS_MAX_AGENTS * (VXHS_HOST_MAX + 16) + 32];
	int ret;

	if (vxhs_cfg_parse(cfgstring, NULL, &cfg, err, sizeof(err)))
		goto fail;

	/* Well formed; now make sure the vdisk is there. */
	ret = vxhs_shared_ctx_get(&ctx);
	if (ret) {
		snprintf(err, sizeof(err), "cannot start the client: %s",
			 vxhs_errmsg());
		goto fail;
	}
	vxhs_cfg_open_opts(&cfg, &opts);
	opts.connect_timeout_ms =
		MIN(opts.connect_timeout_ms, CHECK_TIMEOUT_S * 1000u);
	opts.io_timeout_ms = MIN(opts.io_timeout_ms, CHECK_TIMEOUT_S * 1000u);
	opts.max_attempts = 1;
	ret = vxhs_vdisk_open(ctx, cfg.vdisk, &opts, &vd);
	if (ret) {
		agents_suffix(&cfg, agents, sizeof(agents));
		snprintf(err, sizeof(err), "%s%s", vxhs_errmsg(), agents);
	} else {
		vxhs_vdisk_close(vd);
	}
	vxhs_shared_ctx_put();
	if (ret)
		goto fail;
	return true;

fail:
	if (asprintf(reason, "%s", err) < 0)
		*reason = NULL;
	return false;
}

int handler_open(struct tcmu_device *dev, bool reopen)
{
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_dev *vdev;
	int ret;

	vdev = calloc(1, sizeof(*vdev));
	if (!vdev)
		return -ENOMEM;
	vdev->dev = dev;
	vdev->cmd_time_out = tcmu_cfgfs_dev_get_attr_int(dev, "cmd_time_out");
	if (vdev->cmd_time_out < 0)
		vdev->cmd_time_out = -1;
	vxhs_lun_init(vdev);
	ret = parse_for_dev(dev, tcmu_dev_get_cfgstring(dev), &vdev->cfg);
	if (ret)
		goto free_vdev;
	ret = vxhs_shared_ctx_get(&ctx);
	if (ret) {
		tcmu_dev_err(dev, "cannot start the vxhs client: %s\n",
			     vxhs_errmsg());
		goto free_vdev;
	}
	ret = vxhs_dev_open_vdisk(vdev, &vdev->cfg, ctx, &vdev->vd, &info,
				  true);
	if (ret)
		goto put_ctx;
	vxhs_dev_apply_features(vdev, &info);
	vdev->local = vxhs_local_grant(vdev, &vdev->cfg, vdev->vd);
	atomic_store(&vdev->local_ok, vdev->local != NULL);
	tcmur_dev_set_private(dev, vdev);
	vxhs_registry_add(vdev);
	vxhs_dev_log_opened(vdev, &info, reopen ? "reopened" : "opened");
	log_outage_policy(vdev);
	return 0;

put_ctx:
	vxhs_shared_ctx_put();
free_vdev:
	vxhs_lun_destroy(vdev);
	free(vdev);
	return ret;
}

void handler_close(struct tcmu_device *dev)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);

	if (!vdev)
		return;
	vxhs_registry_remove(vdev);
	vxhs_lun_close(vdev);
	vxhs_shared_ctx_put();
	tcmur_dev_set_private(dev, NULL);
	tcmu_dev_info(dev, "vdisk %s closed\n", vdev->cfg.vdisk);
	vxhs_lun_destroy(vdev);
	free(vdev);
}

static int reconfig_size(struct vxhs_dev *vdev, uint64_t new_size)
{
	struct vxhs_vdisk_info info;
	char name[VXHS_TARGET_SIZE];
	int ret;

	vxhs_dev_name(vdev, name, sizeof(name));
	ret = vxhs_lun_stat(vdev, &info);
	if (ret) {
		tcmu_dev_err(vdev->dev,
			     "vdisk %s: cannot check its size for the new LUN "
			     "size: %s\n",
			     name, strerror(-ret));
		return ret;
	}
	ret = check_size(vdev->dev, name, new_size, &info);
	if (!ret)
		tcmu_dev_info(vdev->dev,
			      "vdisk %s: LUN size now %" PRIu64 " bytes\n",
			      name, new_size);
	return ret;
}

static int reconfig_cfgstring(struct vxhs_dev *vdev, const char *cfgstring)
{
	struct vxhs_cfg cfg;
	int ret;

	ret = parse_for_dev(vdev->dev, cfgstring, &cfg);
	if (ret)
		return ret;
	/* Also ends a reconnect: the new configuration replaces it. */
	return vxhs_dev_switch(vdev, &cfg);
}

static int reconfig_write_cache(struct vxhs_dev *vdev, bool enable)
{
	char name[VXHS_TARGET_SIZE];

	vxhs_dev_name(vdev, name, sizeof(name));
	if (enable && !(vdev->features & VXHS_FEAT_FLUSH)) {
		tcmu_dev_err(vdev->dev,
			     "vdisk %s: cannot enable the write cache: the "
			     "agent has no FLUSH, and its writes are stable "
			     "when acknowledged\n",
			     name);
		return -EOPNOTSUPP;
	}
	/* Cache off on a flushing agent: every write is flushed. */
	vdev->write_through = !enable && (vdev->features & VXHS_FEAT_FLUSH);
	tcmu_dev_set_write_cache_enabled(vdev->dev, enable);
	tcmu_dev_info(vdev->dev, "vdisk %s: write cache %s\n", name,
		      enable ? "on" : "off");
	return 0;
}

int handler_reconfig(struct tcmu_device *dev, struct tcmulib_cfg_info *cfg)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);

	switch (cfg->type) {
	case TCMULIB_CFG_DEV_SIZE:
		return reconfig_size(vdev, cfg->data.dev_size);
	case TCMULIB_CFG_DEV_CFGSTR:
		return reconfig_cfgstring(vdev, cfg->data.dev_cfgstring);
	case TCMULIB_CFG_WRITE_CACHE:
		return reconfig_write_cache(vdev, cfg->data.write_cache);
	}
	return -EOPNOTSUPP;
}
