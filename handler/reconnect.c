// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Reopening a vdisk whose agents were all lost. tcmu-runner's own recovery
 * (close, then open once a second) runs only for LUNs exported through an
 * enabled target port group, which a loopback-only LUN lacks; so once the
 * failover deadline has passed, a thread of the LUN retries the open every
 * second until it works, the LUN is closed, or reconfig takes over.
 * Commands meanwhile end BUSY.
 */
#include "vxhs_handler.h"

#define RECONNECT_INTERVAL_S 1
/* An agent down for long must not fill the log: one line a minute. */
#define RECONNECT_LOG_EVERY 60

static void *reconnect_main(void *arg)
{
	struct vxhs_dev *vdev = arg;
	struct vxhs_cfg cfg;
	struct timespec at;
	unsigned int attempt = 0;
	int ret = -1;

	pthread_rwlock_rdlock(&vdev->lock);
	cfg = vdev->cfg;
	pthread_rwlock_unlock(&vdev->lock);

	pthread_mutex_lock(&vdev->rc_lock);
	while (!vdev->rc_stop && ret) {
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += RECONNECT_INTERVAL_S;
		pthread_cond_timedwait(&vdev->rc_cond, &vdev->rc_lock, &at);
		if (vdev->rc_stop)
			break;
		pthread_mutex_unlock(&vdev->rc_lock);
		ret = vxhs_dev_switch(vdev, &cfg,
				      attempt++ % RECONNECT_LOG_EVERY == 0,
				      "reconnected by the handler");
		pthread_mutex_lock(&vdev->rc_lock);
	}
	vdev->rc_running = false;
	pthread_mutex_unlock(&vdev->rc_lock);
	return NULL;
}

void vxhs_reconnect_init(struct vxhs_dev *vdev)
{
	pthread_mutex_init(&vdev->rc_lock, NULL);
	pthread_cond_init(&vdev->rc_cond, NULL);
}

void vxhs_reconnect_start(struct vxhs_dev *vdev)
{
	pthread_mutex_lock(&vdev->rc_lock);
	if (vdev->rc_running || vdev->rc_stop || atomic_load(&vdev->closing))
		goto unlock;
	/* A thread that gave up earlier has ended; collect it first. */
	if (vdev->rc_joinable)
		pthread_join(vdev->rc_thread, NULL);
	vdev->rc_joinable =
		!pthread_create(&vdev->rc_thread, NULL, reconnect_main, vdev);
	vdev->rc_running = vdev->rc_joinable;
	if (!vdev->rc_joinable) {
		char name[VXHS_TARGET_SIZE];

		vxhs_dev_name(vdev, name, sizeof(name));
		tcmu_dev_err(vdev->dev,
			     "vdisk %s: cannot start reconnecting; reopen "
			     "the LUN\n",
			     name);
	}
unlock:
	pthread_mutex_unlock(&vdev->rc_lock);
}

/* Waits for the thread to end; reconnects may start again afterwards. */
void vxhs_reconnect_stop(struct vxhs_dev *vdev)
{
	bool joinable;

	pthread_mutex_lock(&vdev->rc_lock);
	vdev->rc_stop = true;
	pthread_cond_signal(&vdev->rc_cond);
	joinable = vdev->rc_joinable;
	vdev->rc_joinable = false;
	pthread_mutex_unlock(&vdev->rc_lock);
	if (joinable)
		pthread_join(vdev->rc_thread, NULL);
	pthread_mutex_lock(&vdev->rc_lock);
	vdev->rc_stop = false;
	pthread_mutex_unlock(&vdev->rc_lock);
}

void vxhs_reconnect_destroy(struct vxhs_dev *vdev)
{
	pthread_cond_destroy(&vdev->rc_cond);
	pthread_mutex_destroy(&vdev->rc_lock);
}
