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
#include "xcopy_list.h"
#include "vxhs/client.h"

/*
 * The life of a LUN (lifecycle.c):
 *
 *   handler_open ──► OPEN ──FAILED event──► LOST ──► RECONNECTING
 *                    ▲  ▲                    │            │
 *                    │  └──── reconfig ──────┴────────────┤ reopened
 *                    └────────────────────────────────────┘
 *   any state ──handler_close──► CLOSING ──► CLOSED (freed)
 *
 * LOST stays only if the reconnect thread cannot start. Events count only
 * in OPEN and only from the vdisk in use; a command's result never changes
 * the state.
 *
 * Lock order: switch_lock, then state_lock, then lock.
 *   switch_lock  held by whoever replaces vd (reconfig, a reconnect, close)
 *                and across a STAT on vd, so vd cannot be closed under it;
 *   state_lock   state, the reconnect thread, and vd as events see it;
 *   lock         submitters hold it for reading while they use vd; vd and
 *                cfg change with all three held for writing.
 * The client's I/O thread (events, completions) takes state_lock or lock
 * for reading, never switch_lock; so nothing that waits for the I/O thread
 * (opening, closing or STAT of a vdisk) may hold state_lock or lock.
 */
enum lun_state {
	LUN_OPEN,
	LUN_LOST,
	LUN_RECONNECTING,
	LUN_CLOSING,
	LUN_CLOSED,
};

struct vxhs_local;

/* One LUN (tcmu device) backed by one vdisk. */
struct vxhs_dev {
	struct tcmu_device *dev;
	pthread_mutex_t switch_lock;
	pthread_mutex_t state_lock;
	pthread_cond_t state_cond; /* the reconnect thread waits on it */
	pthread_rwlock_t lock;
	enum lun_state state;
	struct vxhs_vdisk *vd;
	struct vxhs_cfg cfg;
	/* The backstore's cmd_time_out attribute (seconds; 0: none; -1:
	 * unknown): the kernel ends a command waiting this long itself. */
	int cmd_time_out;
	/* Read by every command, changed by reconfig and reconnects. */
	_Atomic uint64_t features; /* VXHS_FEAT_* of the agent in use */
	atomic_bool write_through; /* write cache off on a flushing agent */
	/* local.c: the vdisk's file from an agent on this host (NULL:
	 * none), changing with vd; local_ok off while the agent is lost,
	 * local_check on when the next command must make sure the agent in
	 * use serves the same file. */
	struct vxhs_local *local;
	atomic_bool local_ok, local_check;
	/* the reconnect thread: state_lock */
	pthread_t rc_thread;
	bool rc_joinable, rc_running;
	/* registry.c: the list of LUNs, and the EXTENDED COPY commands
	 * using this LUN from another one (registry lock) */
	struct vxhs_dev *next_lun;
	unsigned int copy_refs;
	/* xcopy.c: only tcmu-runner's command thread of this LUN, which
	 * runs its EXTENDED COPY and RECEIVE COPY RESULTS, uses it. */
	struct xcopy_history copies;
};

/* shared.c: the process's client context, made on first use. */
int vxhs_shared_ctx_get(struct vxhs_ctx **ctx);
void vxhs_shared_ctx_put(void);

/* scsi.c: copies len bytes of a data-out buffer from offset off, leaving
 * the iovec as it is. */
void copy_from_iovec(uint8_t *dst, const struct iovec *iov, size_t cnt,
		     size_t off, size_t len);
/* Copies up to len bytes into a data-in buffer, from its start. */
void copy_to_iovec(struct iovec *iov, size_t cnt, const uint8_t *src,
		   size_t len);

/* local.c */
/* The vdisk's file for local reads and writes, if cfg and its agent
 * allow (else NULL). Blocks briefly (a local socket). */
struct vxhs_local *vxhs_local_grant(struct vxhs_dev *vdev,
				    const struct vxhs_cfg *cfg,
				    struct vxhs_vdisk *vd);
void vxhs_local_free(struct vxhs_local *l);
/* An event of the vdisk in use (state_lock held). */
void vxhs_local_event(struct vxhs_dev *vdev, enum vxhs_vdisk_event ev);
/* Whether the LUN may use its local file now: lock held for reading. */
bool vxhs_local_usable(struct vxhs_dev *vdev);
/* Reads len bytes at off from the file if all are cached: whether it did.
 * Takes lock for reading. */
bool vxhs_local_read(struct vxhs_dev *vdev, const struct iovec *iov, size_t cnt,
		     uint64_t off, size_t len);
/* Whether a read of len bytes may be tried on the file now (it may still
 * go to the agent). Takes lock for reading. */
bool vxhs_local_reads_on(struct vxhs_dev *vdev, size_t len);
/* local_write.c: writes len bytes at off to the file, if the lock's gate
 * lets it at once: whether it did. Takes lock for reading. */
bool vxhs_local_write(struct vxhs_dev *vdev, const struct iovec *iov,
		      size_t cnt, uint64_t off, size_t len);

/* copy_thread.c: the thread that copies large local reads beside
 * tcmu-runner's. Started with a grant with reads (0 or a negative errno),
 * stopped with it. */
int vxhs_copy_thread_start(void);
void vxhs_copy_thread_stop(void);
/* Hands a read over to the copy thread if it is idle and the read large
 * enough: whether it took it (and will complete cmd). */
bool vxhs_copy_offer(struct vxhs_dev *vdev, struct tcmur_cmd *cmd,
		     struct iovec *iov, size_t cnt, uint64_t off, size_t len);
/* Waits until the copy thread holds nothing of vdev's (a LUN closing). */
void vxhs_copy_forget(struct vxhs_dev *vdev);

/* status.c: a client result as a TCMU status (with sense data if needed). */
int vxhs_status(int result, bool write, uint8_t *sense);

/* device.c */
bool handler_check_config(const char *cfgstring, char **reason);
int handler_open(struct tcmu_device *dev, bool reopen);
void handler_close(struct tcmu_device *dev);
int handler_reconfig(struct tcmu_device *dev, struct tcmulib_cfg_info *cfg);
/* Opens cfg's vdisk for the LUN and checks that it fits; a failure is
 * logged only if log_failure. */
int vxhs_dev_open_vdisk(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg,
			struct vxhs_ctx *ctx, struct vxhs_vdisk **vd,
			struct vxhs_vdisk_info *info, bool log_failure);
/* How long commands wait for an agent: ms, or VXHS_DEADLINE_NEVER. */
unsigned int vxhs_dev_failover_ms(const struct vxhs_dev *vdev,
				  const struct vxhs_cfg *cfg);
void vxhs_dev_apply_features(struct vxhs_dev *vdev,
			     const struct vxhs_vdisk_info *info);
/* how: who opened it, for the log ("opened", "reconnected by ..."). */
void vxhs_dev_log_opened(struct vxhs_dev *vdev,
			 const struct vxhs_vdisk_info *info, const char *how);

/* lifecycle.c */
void vxhs_lun_init(struct vxhs_dev *vdev);
void vxhs_lun_destroy(struct vxhs_dev *vdev);
/* The library's event callback; opaque is the vxhs_dev. */
void vxhs_lun_event(struct vxhs_vdisk *vd, enum vxhs_vdisk_event ev,
		    unsigned int agent, void *opaque);
/* Moves the LUN onto cfg's vdisk (reconfig); the old one is closed. */
int vxhs_dev_switch(struct vxhs_dev *vdev, const struct vxhs_cfg *cfg);
/* Refreshes the vdisk's size and features from its agent. */
int vxhs_lun_stat(struct vxhs_dev *vdev, struct vxhs_vdisk_info *info);
/* Reads from the LUN's vdisk on the calling thread (never the client's
 * I/O thread). */
/* COMPARE AND WRITE for an agent without the extension: read, compare and
 * write under switch_lock, which every such call of the LUN takes. */
int vxhs_lun_caw_sync(struct vxhs_dev *vdev, const uint8_t *cmp,
		      const uint8_t *data, size_t len, uint64_t off,
		      uint64_t *miscompare);
int vxhs_lun_read_sync(struct vxhs_dev *vdev, void *buf, size_t len,
		       uint64_t off);
int vxhs_lun_write_sync(struct vxhs_dev *vdev, void *buf, size_t len,
			uint64_t off);
/* The LUN's vdisk for synchronous calls, kept until vxhs_lun_release
 * (switch_lock held: reconfig and reconnects wait); NULL if it has none. */
struct vxhs_vdisk *vxhs_lun_hold(struct vxhs_dev *vdev);
void vxhs_lun_release(struct vxhs_dev *vdev);
/* CLOSING, the vdisk closed (every command on it completed), CLOSED. */
void vxhs_lun_close(struct vxhs_dev *vdev);
/* The vdisk's id for a log line (reconfig may rewrite it meanwhile). */
void vxhs_dev_name(struct vxhs_dev *vdev, char *buf, size_t len);

/*
 * registry.c: the LUNs of this tcmu-runner that the handler serves, so an
 * EXTENDED COPY can reach the others its descriptors name.
 */
void vxhs_registry_add(struct vxhs_dev *vdev);
/* Takes the LUN out and waits until no copy uses it any more. */
void vxhs_registry_remove(struct vxhs_dev *vdev);
/* The LUN whose Device Identification page has this NAA designator,
 * held until vxhs_registry_put; NULL if none. */
struct vxhs_dev *vxhs_registry_find(const uint8_t *naa);
void vxhs_registry_put(struct vxhs_dev *vdev);

/* xcopy.c: EXTENDED COPY (LID1) and RECEIVE COPY RESULTS. */
int handler_xcopy(struct tcmu_device *dev, struct tcmulib_cmd *cmd);
int handler_copy_results(struct tcmu_device *dev, struct tcmulib_cmd *cmd);

/* scsi.c: CDBs answered before tcmu-runner's emulation (handle_cmd). */
int handler_handle_cmd(struct tcmu_device *dev, struct tcmur_cmd *cmd);

/* io.c: the I/O callouts. */
/* A READ to the agent, from another thread than tcmu-runner's: a failure
 * to queue it completes cmd. */
void vxhs_read_from_agent(struct tcmu_device *dev, struct tcmur_cmd *cmd,
			  struct iovec *iov, size_t iov_cnt, uint64_t off,
			  size_t len);
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
int handler_caw(struct tcmu_device *dev, struct tcmur_cmd *cmd, uint64_t off,
		uint64_t len, struct iovec *iov, size_t iov_cnt);

/* lock.c: tcmu-runner's lock callbacks (several gateways). */
int handler_lock(struct tcmu_device *dev, uint16_t tag);
int handler_unlock(struct tcmu_device *dev);
int handler_get_lock_state(struct tcmu_device *dev);
void vxhs_lock_carry(struct vxhs_dev *vdev, struct vxhs_vdisk *vd,
		     const struct vxhs_cfg *cfg);

#endif /* VXHS_HANDLER_H */
