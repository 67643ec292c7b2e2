/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * The vdisk's file from an agent on this host (docs/handler.md, "Local
 * reads and writes"), shared by local.c (the grant, reads) and
 * local_write.c (writes, inside the lock record's gate).
 */
#ifndef VXHS_HANDLER_LOCAL_H
#define VXHS_HANDLER_LOCAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockrec/lockrec.h"

struct vxhs_local {
	int fd;		    /* read-only, or read-write with record */
	bool reads;	    /* local_reads */
	bool copying;	    /* counted as a user of the copy thread */
	atomic_bool nowait; /* RWF_NOWAIT works on it */
	void *map;	    /* the file as granted, for mincore */
	size_t map_len;

	/* Writes: the lock record (read-only), -1 for none; the rest is
	 * the hold of its gate, under gate_mutex. */
	int record;
	pthread_mutex_t gate_mutex;
	bool held;		       /* this LUN holds the gate shared */
	bool listed;		       /* on the sweeper's list: its lock */
	uint64_t used_at;	       /* the last write inside */
	uint64_t looked_at;	       /* the last look for a waiting acquire */
	uint64_t size;		       /* the file's, when the hold began */
	struct lock_record rec;	       /* read when the hold began */
	struct vxhs_local *sweep_next; /* the sweeper's list */
};

/* local_write.c: the writes' part of a grant (record >= 0) and its end. */
int local_writes_start(struct vxhs_local *l);
void local_writes_stop(struct vxhs_local *l);

#endif /* VXHS_HANDLER_LOCAL_H */
