// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The life of a LUN once open: the state in vxhs_handler.h, changed only by
 * set_state(); the library's events that drive it; moving the LUN onto
 * another vdisk (reconfig, reconnect); reopening after every agent was
 * lost; and the close sequence.
 *
 * tcmu-runner's own recovery (close, then open once a second) runs only for
 * LUNs exported through an enabled target port group, which a loopback-only
 * LUN lacks; so a lost LUN also retries the open from a thread of its own,
 * every second, until it works, the LUN is closed, or reconfig moves it.
 * Commands meanwhile end with LOGICAL UNIT COMMUNICATION FAILURE.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "vxhs_handler.h"

#define RECONNECT_INTERVAL_S 1
/* An agent down for long must not fill the log: one line a minute. */
#define RECONNECT_LOG_EVERY 60

static const char *const state_names[] = {
	[LUN_OPEN] = "open",
	[LUN_LOST] = "lost",
	[LUN_RECONNECTING] = "reconnecting",
	[LUN_CLOSING] = "closing",
	[LUN_CLOSED] = "closed",
};

/* The only place the state changes. state_lock held. */
static void set_state(struct vxhs_dev *vdev, enum lun_state state)
{
	if (vdev->state == state)
		return;
	tcmu_dev_dbg(vdev->dev, "vdisk %s: %s -> %s\n", vdev->cfg.vdisk,
		     state_names[vdev->state], state_names[state]);
	vdev->state = state;
	pthread_cond_broadcast(&vdev->state_cond);
}

void vxhs_lun_init(struct vxhs_dev *vdev)
{
	pthread_mutex_init(&vdev->switch_lock, NULL);
	pthread_mutex_init(&vdev->state_lock, NULL);
	pthread_cond_init(&vdev->state_cond, NULL);
	pthread_rwlock_init(&vdev->lock, NULL);
	vdev->state = LUN_OPEN;
}

void vxhs_lun_destroy(struct vxhs_dev *vdev)
{
	pthread_rwlock_destroy(&vdev->lock);
	pthread_cond_destroy(&vdev->state_cond);
	pthread_mutex_destroy(&vdev->state_lock);
	pthread_mutex_destroy(&vdev->switch_lock);
}

void vxhs_dev_name(struct vxhs_dev *vdev, char *buf, size_t len)
{
	pthread_rwlock_rdlock(&vdev->lock);
	snprintf(buf, len, "%s", vdev->cfg.vdisk);
	pthread_rwlock_unlock(&vdev->lock);
}

static void *reconnect_main(void *arg);

/*
 * LOST -> RECONNECTING, unless the thread cannot start (tcmu-runner's
 * reopen is then all that is left). A thread still running from an
 * earlier loss simply goes on. state_lock held.
 */
static void start_reconnect(struct vxhs_dev *vdev)
{
	if (vdev->rc_running) {
		set_state(vdev, LUN_RECONNECTING);
		return;
	}
	/* It ended after seeing another state; collect it first. */
	if (vdev->rc_joinable)
		pthread_join(vdev->rc_thread, NULL);
	vdev->rc_joinable =
		!pthread_create(&vdev->rc_thread, NULL, reconnect_main, vdev);
	vdev->rc_running = vdev->rc_joinable;
	if (vdev->rc_running)
		set_state(vdev, LUN_RECONNECTING);
	else
		tcmu_dev_err(vdev->dev,
			     "vdisk %s: cannot start reconnecting; reopen the "
			     "LUN\n",
			     vdev->cfg.vdisk);
}

/* OPEN -> LOST: the vdisk in use failed for good. state_lock held. */
static void lose(struct vxhs_dev *vdev, const char *why)
{
	set_state(vdev, LUN_LOST);
	tcmu_dev_err(vdev->dev,
		     "vdisk %s: %s; commands end with LOGICAL UNIT "
		     "COMMUNICATION FAILURE until the vdisk is reopened (tried "
		     "every second)\n",
		     vdev->cfg.vdisk, why);
	/* Only flags the device and wakes tcmu-runner's recovery thread,
	 * which takes none of our locks before calling close. */
	tcmu_notify_conn_lost(vdev->dev);
	start_reconnect(vdev);
}

void vxhs_lun_event(struct vxhs_vdisk *vd, enum vxhs_vdisk_event ev,
		    unsigned int agent, void *opaque)
{
	struct vxhs_dev *vdev = opaque;
	char name[VXHS_HOST_MAX + 16], why[VXHS_HOST_MAX + 96];
	unsigned int ms;

	/* A vdisk being replaced, or a LUN being closed, has nothing left to
	 * say: events count only from the vdisk in use by an open LUN. */
	pthread_mutex_lock(&vdev->state_lock);
	if (vdev->vd != vd || vdev->state != LUN_OPEN)
		goto unlock;
	vxhs_agent_addr_format(&vdev->cfg.agents[agent], name, sizeof(name));
	switch (ev) {
	case VXHS_EVENT_QUIESCE:
		vxhs_local_event(vdev, ev);
		ms = vxhs_dev_failover_ms(vdev, &vdev->cfg);
		if (ms == VXHS_DEADLINE_NEVER)
			tcmu_dev_warn(vdev->dev,
				      "vdisk %s: lost agent %s; commands wait "
				      "until an agent answers\n",
				      vdev->cfg.vdisk, name);
		else
			tcmu_dev_warn(vdev->dev,
				      "vdisk %s: lost agent %s; commands wait "
				      "while another agent is tried (up to "
				      "%u s)\n",
				      vdev->cfg.vdisk, name, ms / 1000);
		break;
	case VXHS_EVENT_ACTIVE:
		vxhs_local_event(vdev, ev);
		tcmu_dev_info(vdev->dev, "vdisk %s: I/O resumed on agent %s\n",
			      vdev->cfg.vdisk, name);
		break;
	case VXHS_EVENT_FAILED:
		vxhs_local_event(vdev, ev);
		snprintf(why, sizeof(why),
			 "no agent took over after %s was lost", name);
		lose(vdev, why);
		break;
	}
unlock:
	pthread_mutex_unlock(&vdev->state_lock);
}

/*
 * Puts vd (opened for cfg) in place of the LUN's vdisk if the state allows:
 * any live state for reconfig, RECONNECTING only for the reconnect thread
 * (reconfig or close may have overtaken it). switch_lock held. Returns the
 * vdisk the caller must close: the old one, or vd if it was refused; and
 * *local, the file for local reads that goes with it, in turn.
 */
static struct vxhs_vdisk *install(struct vxhs_dev *vdev, struct vxhs_vdisk *vd,
				  const struct vxhs_cfg *cfg, bool reconnect,
				  struct vxhs_local **local)
{
	struct vxhs_vdisk *old = vd;
	struct vxhs_local *l;

	pthread_mutex_lock(&vdev->state_lock);
	if (reconnect ? vdev->state == LUN_RECONNECTING :
			vdev->state < LUN_CLOSING) {
		pthread_rwlock_wrlock(&vdev->lock);
		old = vdev->vd;
		vdev->vd = vd;
		vdev->cfg = *cfg;
		l = vdev->local;
		vdev->local = *local;
		*local = l;
		atomic_store(&vdev->local_check, false);
		atomic_store(&vdev->local_ok, vdev->local != NULL);
		pthread_rwlock_unlock(&vdev->lock);
		set_state(vdev, LUN_OPEN);
	}
	pthread_mutex_unlock(&vdev->state_lock);
	return old;
}

static int lun_switch(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg,
		      bool log_failure, const char *how, bool reconnect)
{
	struct vxhs_vdisk_info info;
	struct vxhs_vdisk *vd, *old;
	struct vxhs_ctx *ctx;
	struct vxhs_local *local;
	int ret;

	ret = vxhs_shared_ctx_get(&ctx);
	if (ret)
		return ret;
	/* Opened before the old one is let go: a failed open changes
	 * nothing. */
	ret = vxhs_dev_open_vdisk(vdev, cfg, ctx, &vd, &info, log_failure);
	if (ret)
		goto put_ctx;
	local = vxhs_local_grant(vdev, cfg, vd);
	pthread_mutex_lock(&vdev->switch_lock);
	vxhs_lock_carry(vdev, vd, cfg);
	old = install(vdev, vd, cfg, reconnect, &local);
	vxhs_local_free(local);
	if (old != vd) {
		vxhs_dev_apply_features(vdev, &info);
		vxhs_dev_log_opened(vdev, &info, how);
	} else {
		ret = -ECANCELED;
	}
	/* Commands still on the old vdisk end BUSY and are retried. */
	vxhs_vdisk_close(old);
	pthread_mutex_unlock(&vdev->switch_lock);
put_ctx:
	vxhs_shared_ctx_put();
	return ret;
}

int vxhs_dev_switch(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg)
{
	return lun_switch(vdev, cfg, true, "switched to a new cfgstring",
			  false);
}

static void *reconnect_main(void *arg)
{
	struct vxhs_dev *vdev = arg;
	struct vxhs_cfg cfg;
	struct timespec at;
	unsigned int attempt = 0;

	pthread_mutex_lock(&vdev->state_lock);
	while (vdev->state == LUN_RECONNECTING) {
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += RECONNECT_INTERVAL_S;
		pthread_cond_timedwait(&vdev->state_cond, &vdev->state_lock,
				       &at);
		if (vdev->state != LUN_RECONNECTING)
			break;
		pthread_rwlock_rdlock(&vdev->lock);
		cfg = vdev->cfg;
		pthread_rwlock_unlock(&vdev->lock);
		pthread_mutex_unlock(&vdev->state_lock);
		lun_switch(vdev, &cfg, attempt++ % RECONNECT_LOG_EVERY == 0,
			   "reconnected by the handler", true);
		pthread_mutex_lock(&vdev->state_lock);
	}
	vdev->rc_running = false;
	pthread_mutex_unlock(&vdev->state_lock);
	return NULL;
}

void vxhs_lun_close(struct vxhs_dev *vdev)
{
	struct vxhs_vdisk *vd;
	struct vxhs_local *local;
	bool joinable;

	/*
	 * CLOSING first: no event counts, nothing is installed and the
	 * reconnect thread ends at its next look (an open it has under way
	 * is closed by lun_switch). Then switch_lock waits out a reconfig
	 * in progress, and the vdisk is taken away and closed, which
	 * completes every command still waiting on it.
	 */
	pthread_mutex_lock(&vdev->state_lock);
	set_state(vdev, LUN_CLOSING);
	joinable = vdev->rc_joinable;
	vdev->rc_joinable = false;
	pthread_mutex_unlock(&vdev->state_lock);
	if (joinable)
		pthread_join(vdev->rc_thread, NULL);

	pthread_mutex_lock(&vdev->switch_lock);
	pthread_mutex_lock(&vdev->state_lock);
	pthread_rwlock_wrlock(&vdev->lock);
	vd = vdev->vd;
	vdev->vd = NULL;
	local = vdev->local;
	vdev->local = NULL;
	atomic_store(&vdev->local_ok, false);
	pthread_rwlock_unlock(&vdev->lock);
	pthread_mutex_unlock(&vdev->state_lock);
	vxhs_local_free(local);
	vxhs_vdisk_close(vd);
	pthread_mutex_unlock(&vdev->switch_lock);
	vxhs_copy_forget(vdev);

	pthread_mutex_lock(&vdev->state_lock);
	set_state(vdev, LUN_CLOSED);
	pthread_mutex_unlock(&vdev->state_lock);
}

int vxhs_lun_stat(struct vxhs_dev *vdev, struct vxhs_vdisk_info *info)
{
	int ret;

	/* switch_lock keeps the vdisk from being replaced (and closed)
	 * meanwhile, and the I/O thread never needs it. */
	pthread_mutex_lock(&vdev->switch_lock);
	ret = vdev->vd ? vxhs_stat_sync(vdev->vd) : -ENOTCONN;
	if (vdev->vd)
		vxhs_vdisk_get_info(vdev->vd, info);
	pthread_mutex_unlock(&vdev->switch_lock);
	return ret;
}

int vxhs_lun_caw_sync(struct vxhs_dev *vdev, const uint8_t *cmp,
		      const uint8_t *data, size_t len, uint64_t off,
		      uint64_t *miscompare)
{
	struct iovec wr = { (void *)data, len };
	uint8_t *now = malloc(len);
	struct iovec rd = { now, len };
	int ret;

	if (!now)
		return -ENOMEM;
	pthread_mutex_lock(&vdev->switch_lock);
	ret = vdev->vd ? vxhs_readv_sync(vdev->vd, &rd, 1, off) : -ENOTCONN;
	for (size_t i = 0; !ret && i < len; i++)
		if (now[i] != cmp[i]) {
			*miscompare = i;
			ret = -EILSEQ;
		}
	if (!ret)
		ret = vxhs_writev_sync(vdev->vd, &wr, 1, off);
	pthread_mutex_unlock(&vdev->switch_lock);
	free(now);
	return ret;
}

struct vxhs_vdisk *vxhs_lun_hold(struct vxhs_dev *vdev)
{
	/* As vxhs_lun_stat: the vdisk stays while switch_lock is held. */
	pthread_mutex_lock(&vdev->switch_lock);
	if (!vdev->vd)
		pthread_mutex_unlock(&vdev->switch_lock);
	return vdev->vd;
}

void vxhs_lun_release(struct vxhs_dev *vdev)
{
	pthread_mutex_unlock(&vdev->switch_lock);
}

static int lun_io_sync(struct vxhs_dev *vdev, bool write, void *buf, size_t len,
		       uint64_t off)
{
	struct iovec iov = { buf, len };
	struct vxhs_vdisk *vd = vxhs_lun_hold(vdev);
	int ret;

	if (!vd)
		return -ENOTCONN;
	ret = write ? vxhs_writev_sync(vd, &iov, 1, off) :
		      vxhs_readv_sync(vd, &iov, 1, off);
	vxhs_lun_release(vdev);
	return ret;
}

int vxhs_lun_read_sync(struct vxhs_dev *vdev, void *buf, size_t len,
		       uint64_t off)
{
	return lun_io_sync(vdev, false, buf, len, off);
}

int vxhs_lun_write_sync(struct vxhs_dev *vdev, void *buf, size_t len,
			uint64_t off)
{
	return lun_io_sync(vdev, true, buf, len, off);
}
