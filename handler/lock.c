// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * tcmu-runner's lock callbacks, for a vdisk exported by several gateways
 * with implicit ALUA (docs/ha.md). tcmu-runner calls lock() in the
 * background when a write reaches a gateway that does not hold the lock,
 * answering BUSY meanwhile; the lock itself is the vdisk's, kept by the
 * agents in the storage (docs/protocol.md), so taking it fences the
 * gateway that had it: none of its writes lands afterwards, not even one
 * already queued in an agent. A fenced write comes back -ESTALE, and io.c
 * tells tcmu-runner the lock is lost.
 *
 * tcmu-runner asks for the lock only when the LUN is in an ALUA group of
 * its own with implicit access: a single gateway in the default group
 * never calls these, and writes without a lock as before.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vxhs_handler.h"

/* A gateway's name in the lock: gateway= or the host name. */
static void owner_name(const char *gateway, char *buf, size_t len)
{
	char host[VXHS_LOCK_OWNER_MAX + 1] = "";

	if (gateway[0]) {
		snprintf(buf, len, "%s", gateway);
		return;
	}
	if (gethostname(host, sizeof(host) - 1) < 0 ||
	    !vxhs_lock_owner_valid(host, strlen(host)))
		snprintf(host, sizeof(host), "gateway-%ld", gethostid());
	snprintf(buf, len, "%s", host);
}

static int lock_status(struct vxhs_dev *vdev, const char *what, int ret)
{
	char name[VXHS_TARGET_SIZE];

	vxhs_dev_name(vdev, name, sizeof(name));
	switch (ret) {
	case 0:
		return TCMU_STS_OK;
	case -EOPNOTSUPP:
		tcmu_dev_err(
			vdev->dev,
			"vdisk %s: cannot %s: the agent keeps no locks, so several gateways cannot export this vdisk safely (use vxhsd 0.2 or later, or one gateway)\n",
			name, what);
		return TCMU_STS_HW_ERR;
	case -ETIMEDOUT:
	case -ENOTCONN:
		tcmu_dev_warn(vdev->dev, "vdisk %s: cannot %s: %s\n", name,
			      what, strerror(-ret));
		return TCMU_STS_TIMEOUT;
	default:
		tcmu_dev_err(vdev->dev, "vdisk %s: cannot %s: %s\n", name, what,
			     strerror(-ret));
		return TCMU_STS_HW_ERR;
	}
}

int handler_lock(struct tcmu_device *dev, uint16_t tag)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	char owner[VXHS_LOCK_OWNER_MAX + 1], name[VXHS_TARGET_SIZE];
	struct vxhs_lock_info info;
	uint64_t held;
	int ret;

	pthread_rwlock_rdlock(&vdev->lock);
	owner_name(vdev->cfg.gateway, owner, sizeof(owner));
	pthread_rwlock_unlock(&vdev->lock);
	/* Implicit ALUA passes no group (TCMU_INVALID_LOCK_TAG): tag 0. */
	if (tag == TCMU_INVALID_LOCK_TAG)
		tag = 0;
	/* switch_lock keeps the vdisk from being replaced meanwhile. */
	pthread_mutex_lock(&vdev->switch_lock);
	held = vdev->vd ? vxhs_lock_epoch(vdev->vd) : 0;
	ret = vdev->vd ? vxhs_lock_acquire_sync(vdev->vd, owner, tag, &info) :
			 -ENOTCONN;
	pthread_mutex_unlock(&vdev->switch_lock);
	if (ret)
		return lock_status(vdev, "take the lock", ret);
	vxhs_dev_name(vdev, name, sizeof(name));
	/* Taken from another gateway: a failover an operator wants to see
	 * in the log, with whom it was taken from. */
	if (info.broken[0])
		tcmu_dev_warn(
			dev, "gateway %s took vdisk %s from %s at epoch %llu\n",
			owner, name, info.broken,
			(unsigned long long)info.epoch);
	else if (info.epoch != held)
		tcmu_dev_info(dev, "gateway %s took vdisk %s at epoch %llu\n",
			      owner, name, (unsigned long long)info.epoch);
	return TCMU_STS_OK;
}

int handler_unlock(struct tcmu_device *dev)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	char name[VXHS_TARGET_SIZE];
	uint64_t held;
	int ret;

	pthread_mutex_lock(&vdev->switch_lock);
	held = vdev->vd ? vxhs_lock_epoch(vdev->vd) : 0;
	ret = held ? vxhs_lock_release_sync(vdev->vd) : 0;
	pthread_mutex_unlock(&vdev->switch_lock);
	/* Already someone else's: nothing of ours to let go. */
	if (ret == -ESTALE)
		ret = 0;
	if (ret)
		return lock_status(vdev, "release the lock", ret);
	vxhs_dev_name(vdev, name, sizeof(name));
	if (held)
		tcmu_dev_info(dev, "vdisk %s: lock released (epoch %llu)\n",
			      name, (unsigned long long)held);
	return TCMU_STS_OK;
}

/* Asks the storage, not our memory: another gateway may have taken it. */
int handler_get_lock_state(struct tcmu_device *dev)
{
	struct vxhs_dev *vdev = tcmur_dev_get_private(dev);
	struct vxhs_lock_info info;
	uint64_t held;
	int ret;

	pthread_mutex_lock(&vdev->switch_lock);
	held = vdev->vd ? vxhs_lock_epoch(vdev->vd) : 0;
	ret = held ? vxhs_lock_query_sync(vdev->vd, &info) : 0;
	pthread_mutex_unlock(&vdev->switch_lock);
	if (!held)
		return TCMUR_DEV_LOCK_UNLOCKED;
	if (ret)
		return TCMUR_DEV_LOCK_UNKNOWN;
	return info.held && info.epoch == held ? TCMUR_DEV_LOCK_WRITE_LOCKED :
						 TCMUR_DEV_LOCK_UNLOCKED;
}

/*
 * A new handle (new cfgstring, or reconnected) carries on the lock the old
 * one held, when the storage still says it is this gateway's at that
 * epoch: tcmu-runner believes it holds the lock and will not take it
 * again until a write is fenced. Under another gateway name the lock is
 * not this one's, and the first write tells tcmu-runner so. switch_lock
 * held, so the old handle's epoch stays put.
 */
void vxhs_lock_carry(struct vxhs_dev *vdev, struct vxhs_vdisk *vd,
		     const struct vxhs_cfg *cfg)
{
	char owner[VXHS_LOCK_OWNER_MAX + 1], name[VXHS_TARGET_SIZE];
	uint64_t held = vdev->vd ? vxhs_lock_epoch(vdev->vd) : 0;
	int ret;

	if (!held)
		return;
	owner_name(cfg->gateway, owner, sizeof(owner));
	ret = vxhs_lock_resume_sync(vd, owner, held);
	vxhs_dev_name(vdev, name, sizeof(name));
	if (!ret)
		tcmu_dev_info(
			vdev->dev,
			"vdisk %s: the new handle keeps gateway %s's lock (epoch %llu)\n",
			name, owner, (unsigned long long)held);
	else
		tcmu_dev_warn(
			vdev->dev,
			"vdisk %s: the lock held at epoch %llu does not carry over to gateway %s: %s\n",
			name, (unsigned long long)held, owner,
			ret == -ESTALE ? "not its lock now" : strerror(-ret));
}
