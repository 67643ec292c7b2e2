// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * What each connection does with each vdisk it names: the first request
 * attaches the vdisk to the connection (marking it in use, store.c) until
 * the connection ends; answers are counted for vxhsadm status.
 */
#include <stdlib.h>

#include "vxhsd.h"

struct vdisk_use *usage_get(struct session *s, struct vdisk *vd)
{
	struct vdisk_use *u = atomic_load(&s->last_use);

	/* Every request asks: the common case takes no lock (uses are freed
	 * only with the session). */
	if (u && u->vd == vd)
		return u;
	u = NULL;
	pthread_mutex_lock(&s->use_lock);
	for (unsigned int i = 0; i < s->nr_uses; i++)
		if (s->uses[i]->vd == vd) {
			u = s->uses[i];
			goto unlock;
		}
	if (s->nr_uses == s->max_uses) {
		unsigned int max = s->max_uses ? s->max_uses * 2 : 4;
		struct vdisk_use **uses =
			reallocarray(s->uses, max, sizeof(*uses));

		if (!uses)
			goto unlock;
		s->uses = uses;
		s->max_uses = max;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		goto unlock;
	u->vd = vd;
	store_attach(vd);
	s->uses[s->nr_uses++] = u;
unlock:
	pthread_mutex_unlock(&s->use_lock);
	if (u)
		atomic_store(&s->last_use, u);
	return u;
}

void usage_count(struct vdisk_use *u, uint16_t opcode, uint64_t bytes,
		 int32_t err)
{
	bool write = opcode != VXHS_OP_READ;

	if (opcode != VXHS_OP_READ && opcode != VXHS_OP_WRITE &&
	    opcode != VXHS_OP_WRITE_ZEROES && opcode != VXHS_OP_DISCARD &&
	    opcode != VXHS_OP_COMPARE_AND_WRITE &&
	    opcode != VXHS_OP_WRITE_SAME && opcode != VXHS_OP_COPY && !err)
		return;
	if (err) {
		atomic_fetch_add(&u->errors, 1);
		return;
	}
	atomic_fetch_add(&u->ops[write], 1);
	if (opcode == VXHS_OP_READ || opcode == VXHS_OP_WRITE)
		atomic_fetch_add(&u->bytes[write], bytes);
}

void usage_release(struct session *s)
{
	for (unsigned int i = 0; i < s->nr_uses; i++) {
		store_detach(s->uses[i]->vd);
		free(s->uses[i]);
	}
	free(s->uses);
	s->uses = NULL;
	atomic_store(&s->last_use, NULL);
	s->nr_uses = s->max_uses = 0;
}
