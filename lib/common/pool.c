// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#include <stdlib.h>

#include "common/pool.h"

void obj_pool_init(struct obj_pool *p, size_t size, unsigned int max)
{
	pthread_mutex_init(&p->lock, NULL);
	p->free = NULL;
	p->nr = 0;
	p->max = max;
	p->size = size < sizeof(void *) ? sizeof(void *) : size;
}

void obj_pool_fini(struct obj_pool *p)
{
	while (p->free) {
		void *next = *(void **)p->free;

		free(p->free);
		p->free = next;
	}
	p->nr = 0;
	pthread_mutex_destroy(&p->lock);
}

void *obj_pool_get(struct obj_pool *p)
{
	void *obj;

	pthread_mutex_lock(&p->lock);
	obj = p->free;
	if (obj) {
		p->free = *(void **)obj;
		p->nr--;
	}
	pthread_mutex_unlock(&p->lock);
	return obj ? obj : malloc(p->size);
}

void obj_pool_put(struct obj_pool *p, void *obj)
{
	pthread_mutex_lock(&p->lock);
	if (p->nr < p->max) {
		*(void **)obj = p->free;
		p->free = obj;
		p->nr++;
		obj = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	free(obj);
}
