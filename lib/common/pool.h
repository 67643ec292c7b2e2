/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * A pool of equal-sized objects, taken by one thread and often given back
 * by another: a request made on tcmu-runner's thread ends on the client's
 * I/O thread. malloc's per-thread caches cannot keep such objects, so each
 * I/O would cost an allocation and a free in the shared arena; here it
 * costs an uncontended lock and unlock.
 */
#ifndef VXHS_COMMON_POOL_H
#define VXHS_COMMON_POOL_H

#include <pthread.h>
#include <stddef.h>

struct obj_pool {
	pthread_mutex_t lock;
	void *free; /* each free object starts with the next's address */
	unsigned int nr, max; /* on the free list; kept at most */
	size_t size;
};

/* A pool that lives as long as the process. */
#define OBJ_POOL_INIT(obj_size, max_idle)                              \
	{                                                              \
		.lock = PTHREAD_MUTEX_INITIALIZER, .max = (max_idle),  \
		.size = (obj_size) < sizeof(void *) ? sizeof(void *) : \
						      (obj_size),      \
	}

/* Objects of size bytes (at least a pointer's), keeping up to max idle. */
void obj_pool_init(struct obj_pool *p, size_t size, unsigned int max);
/* Frees the idle objects; those in use must have been given back. */
void obj_pool_fini(struct obj_pool *p);
/* An object, not zeroed; NULL when out of memory. */
void *obj_pool_get(struct obj_pool *p);
void obj_pool_put(struct obj_pool *p, void *obj);

#endif
