// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Synchronous calls: each submits one asynchronous request and waits for
 * its completion on the caller's thread. From a completion callback they
 * would wait for the very thread that runs it, so there they fail with
 * -EDEADLK instead.
 */
#include <errno.h>
#include <pthread.h>

#include "internal.h"

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int result;
};

static void sync_done(void *opaque, int result)
{
	struct sync_wait *w = opaque;

	pthread_mutex_lock(&w->lock);
	w->result = result;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* submitted: what the asynchronous call returned. */
static int sync_finish(struct sync_wait *w, int submitted)
{
	if (!submitted) {
		pthread_mutex_lock(&w->lock);
		while (!w->done)
			pthread_cond_wait(&w->cond, &w->lock);
		pthread_mutex_unlock(&w->lock);
		submitted = w->result;
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	return submitted;
}

/* Refuses on an I/O thread, else readies w for one request. */
static int sync_start(struct vxhs_vdisk *vd, struct sync_wait *w)
{
	if (loop_on_io_thread())
		return set_error(-EDEADLK,
				 "vdisk %s: a synchronous call from a "
				 "completion callback",
				 vd->id);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = false;
	w->result = 0;
	return 0;
}

int vxhs_readv_sync(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		    uint64_t offset)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_readv(vd, iov, iovcnt, offset,
						sync_done, &w));
}

int vxhs_writev_sync(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		     uint64_t offset)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_writev(vd, iov, iovcnt, offset,
						 sync_done, &w));
}

int vxhs_flush_sync(struct vxhs_vdisk *vd)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret : sync_finish(&w, vxhs_flush(vd, sync_done, &w));
}

int vxhs_write_zeroes_sync(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_write_zeroes(vd, offset, len,
						       sync_done, &w));
}

int vxhs_discard_sync(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w,
				 vxhs_discard(vd, offset, len, sync_done, &w));
}

int vxhs_stat_sync(struct vxhs_vdisk *vd)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret : sync_finish(&w, vxhs_stat(vd, sync_done, &w));
}

int vxhs_compare_and_write_sync(struct vxhs_vdisk *vd, const struct iovec *iov,
				int iovcnt, uint64_t offset, uint64_t len,
				uint64_t *miscompare)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_compare_and_write(
					     vd, iov, iovcnt, offset, len,
					     miscompare, sync_done, &w));
}

int vxhs_write_same_sync(struct vxhs_vdisk *vd, const void *pattern,
			 size_t pattern_len, uint64_t offset, uint64_t len)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w,
				 vxhs_write_same(vd, pattern, pattern_len,
						 offset, len, sync_done, &w));
}

int vxhs_copy_sync(struct vxhs_vdisk *vd, const char *src_id,
		   uint64_t src_offset, uint64_t offset, uint64_t len)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_copy(vd, src_id, src_offset, offset,
					       len, sync_done, &w));
}

int vxhs_lock_acquire_sync(struct vxhs_vdisk *vd, const char *owner,
			   uint16_t tag, struct vxhs_lock_info *info)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_lock_acquire(vd, owner, tag, info,
						       sync_done, &w));
}

int vxhs_lock_release_sync(struct vxhs_vdisk *vd)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_lock_release(vd, sync_done, &w));
}

int vxhs_lock_query_sync(struct vxhs_vdisk *vd, struct vxhs_lock_info *info)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_lock_query(vd, info, sync_done, &w));
}

int vxhs_lock_resume_sync(struct vxhs_vdisk *vd, const char *owner,
			  uint64_t epoch)
{
	struct sync_wait w;
	int ret = sync_start(vd, &w);

	return ret ? ret :
		     sync_finish(&w, vxhs_lock_resume(vd, owner, epoch,
						      sync_done, &w));
}
