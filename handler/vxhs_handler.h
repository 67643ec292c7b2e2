/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * What the parts of handler_vxhs.so share: the per-LUN state, the one client
 * context of the process, and the entry points of each file.
 */
#ifndef VXHS_HANDLER_H
#define VXHS_HANDLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tcmu-runner.h"
#include "tcmur_device.h"

#include "cfgstring.h"
#include "vxhs/client.h"

/* One LUN (tcmu device) backed by one vdisk. */
struct vxhs_dev {
	struct tcmu_device *dev;
	/*
	 * Held for reading while submitting to vd, for writing while reconfig
	 * or close replace it. Never held while waiting for the client's I/O
	 * thread, which may need it for reading.
	 */
	pthread_rwlock_t lock;
	struct vxhs_vdisk *vd;
	struct vxhs_cfg cfg;
	/* Read by every command, changed by reconfig and reconnects. */
	_Atomic uint64_t features; /* VXHS_FEAT_* of the agent in use */
	atomic_bool write_through; /* write cache off on a flushing agent */
	atomic_bool conn_lost;	   /* tcmu_notify_conn_lost already called */
	/* Set first thing by close: no loss is reported, no reconnect
	 * starts and no reopened vdisk is installed after it. */
	atomic_bool closing;
	/* reconnect.c: reopening the vdisk after the agents were lost */
	pthread_mutex_t rc_lock;
	pthread_cond_t rc_cond;
	pthread_t rc_thread;
	bool rc_joinable, rc_running, rc_stop;
};

/* shared.c: the process's client context, made on first use. */
int vxhs_shared_ctx_get(struct vxhs_ctx **ctx);
void vxhs_shared_ctx_put(void);

/* status.c: a client result as a TCMU status (with sense data if needed). */
int vxhs_status(int result, bool write, uint8_t *sense);

/* device.c */
bool handler_check_config(const char *cfgstring, char **reason);
int handler_open(struct tcmu_device *dev, bool reopen);
void handler_close(struct tcmu_device *dev);
int handler_reconfig(struct tcmu_device *dev, struct tcmulib_cfg_info *cfg);
void vxhs_report_conn_lost(struct vxhs_dev *vdev, const char *why);
/* The vdisk's id for a log line (reconfig may rewrite it meanwhile). */
void vxhs_dev_name(struct vxhs_dev *vdev, char *buf, size_t len);
/*
 * Opens cfg's vdisk and moves the LUN onto it; the old one is closed. A
 * failure to open is logged only if log_failure; success as "vdisk ID
 * <how> on agent ...".
 */
int vxhs_dev_switch(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg,
		    bool log_failure, const char *how);

/* reconnect.c */
void vxhs_reconnect_init(struct vxhs_dev *vdev);
void vxhs_reconnect_start(struct vxhs_dev *vdev);
void vxhs_reconnect_stop(struct vxhs_dev *vdev);
void vxhs_reconnect_destroy(struct vxhs_dev *vdev);

/* io.c: the I/O callouts. */
int handler_read(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		 struct iovec *iov, size_t iov_cnt, size_t len, off_t off);
int handler_write(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		  struct iovec *iov, size_t iov_cnt, size_t len, off_t off);
int handler_flush(struct tcmu_device *dev, struct tcmur_cmd *cmd);
int handler_unmap(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint64_t off,
		  uint64_t len);
int handler_writesame(struct tcmu_device *dev, struct tcmur_cmd *cmd,
		      uint64_t off, uint64_t len, struct iovec *iov,
		      size_t iov_cnt);

#endif /* VXHS_HANDLER_H */
