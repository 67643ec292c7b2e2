/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * A stand-in for tcmu-runner: loads handler_vxhs.so as tcmu-runner does
 * (dlopen RTLD_NOW | RTLD_LOCAL, handler_init) and provides the functions
 * tcmu-runner and libtcmu export to handlers, over a fake device.
 */
#ifndef VXHS_TCMU_STUB_H
#define VXHS_TCMU_STUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tcmu-runner.h"
#include "libtcmu.h"
#include "tcmur_device.h"
#include "tcmur_cmd_handler.h"

struct tcmu_device {
	char cfgstring[512];
	uint32_t block_size;
	uint64_t num_lbas;
	bool write_cache;
	bool unmap_enabled;
	uint32_t max_unmap_len, opt_unmap_gran, unmap_gran_align;
	bool split_unmaps;
	void *priv;
	atomic_int conn_lost; /* tcmu_notify_conn_lost calls */
	atomic_int lock_lost; /* tcmu_notify_lock_lost calls */
	int cmd_time_out;     /* the backstore attribute (default 30) */
	char wwn[64];	      /* vpd_unit_serial; "": none */
	/* The data area, as tcmu-runner maps the TCMU ring (stub_dev_map):
	 * a memfd here; map_fd -1: none. */
	int map_fd;
	void *map;
	size_t map_len;
};

/* A command as tcmu-runner hands it to a callout. */
struct stub_cmd {
	struct tcmur_cmd cmd;
	struct tcmulib_cmd lib;
	uint8_t cdb[16];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int status;
	char done_by[16]; /* the name of the thread that completed it */
};

/*
 * When set, tcmur_cmd_complete calls this instead of waking
 * stub_cmd_wait (the benchmark's completion queue).
 */
extern void (*stub_complete_hook)(struct stub_cmd *c, int status);
/* What tcmur_cmd_complete does without the hook. */
void stub_cmd_done(struct stub_cmd *c, int status);

/* Loads the module and returns the handler it registered. */
struct tcmur_handler *stub_load(const char *path);

void stub_dev_init(struct tcmu_device *dev, const char *cfgstring,
		   uint64_t size, uint32_t block_size);
/* Gives the device a data area of len bytes (a memfd) that buffers can
 * come from, as tcmu-runner's come from the TCMU ring; 0 or -errno. */
int stub_dev_map(struct tcmu_device *dev, size_t len);
void stub_dev_unmap(struct tcmu_device *dev);
void stub_cmd_init(struct stub_cmd *c, uint8_t opcode);
/*
 * The final status of a command whose callout returned rc: rc itself, or
 * what the handler later passed to tcmur_cmd_complete.
 */
int stub_cmd_wait(struct stub_cmd *c, int rc);
/* Sense key and ASC/ASCQ of a PASSTHROUGH_ERR completion. */
uint8_t stub_sense_key(const struct stub_cmd *c);
uint16_t stub_sense_asc(const struct stub_cmd *c);

/* Whether a line logged at warning or above since the last clear has it. */
bool stub_log_contains(const char *needle);
void stub_log_clear(void);

#endif
