// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads (docs/handler.md, "Local reads"). With the agent on this
 * host (a UNIX socket) and local_reads on, a LUN reads the vdisk's file
 * itself, on tcmu-runner's thread, whenever the data is in the page cache:
 * no round trip through the agent and no other thread woken. Anything
 * else (pages not cached, a short read, an error) goes to the agent as
 * before. Writes always go to the agent, which fences them; once one has
 * completed, a read of the same file sees it.
 *
 * "In the page cache" is RWF_NOWAIT's answer; on a file system without it
 * (tmpfs and overlayfs in Debian 12's Linux 6.1), mincore's on a mapping
 * of the file, which costs one more system call.
 *
 * The file comes with the vdisk (vdev->local changes with vd). While the
 * agent is lost it is not used; when I/O resumes, the next read asks the
 * agent in use again, and goes on only if it serves the same file.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhs_handler.h"

/* Larger reads go to the agent. */
#define LOCAL_READ_MAX VXHS_CACHED_CHECK_MAX

struct vxhs_local {
	int fd;
	atomic_bool nowait; /* RWF_NOWAIT works on it */
	void *map;	    /* the file as granted, for mincore */
	size_t map_len;
};

void vxhs_local_free(struct vxhs_local *l)
{
	if (!l)
		return;
	if (l->map)
		munmap(l->map, l->map_len);
	close(l->fd);
	free(l);
}

struct vxhs_local *vxhs_local_grant(struct vxhs_dev *vdev,
				    const struct vxhs_cfg *cfg,
				    struct vxhs_vdisk *vd)
{
	struct vxhs_local *l;
	struct stat st;
	int fd;

	if (!cfg->local_reads)
		return NULL;
	fd = vxhs_vdisk_open_local(vd);
	if (fd == -EOPNOTSUPP) /* a TCP agent, or one that does not offer */
		return NULL;
	if (fd < 0) {
		tcmu_dev_warn(vdev->dev, "%s; reads go through the agent\n",
			      vxhs_errmsg());
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l || fstat(fd, &st)) {
		free(l);
		close(fd);
		return NULL;
	}
	l->fd = fd;
	atomic_init(&l->nowait, true);
	l->map_len = (size_t)st.st_size;
	l->map = l->map_len ?
			 mmap(NULL, l->map_len, PROT_READ, MAP_SHARED, fd, 0) :
			 MAP_FAILED;
	if (l->map == MAP_FAILED)
		l->map = NULL;
	tcmu_dev_info(vdev->dev,
		      "vdisk %s: reads of cached data from the agent's file "
		      "(local_reads)\n",
		      cfg->vdisk);
	return l;
}

void vxhs_local_event(struct vxhs_dev *vdev, enum vxhs_vdisk_event ev)
{
	if (!vdev->local)
		return;
	if (ev == VXHS_EVENT_ACTIVE) {
		atomic_store(&vdev->local_check, true);
		atomic_store(&vdev->local_ok, true);
	} else {
		atomic_store(&vdev->local_ok, false);
	}
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* After I/O resumed: whether the agent in use serves the file we hold.
 * Once per failover, on the command thread (a local socket). */
static bool recheck(struct vxhs_dev *vdev)
{
	int fd = vxhs_vdisk_open_local(vdev->vd);
	bool same = fd >= 0 && same_file(fd, vdev->local->fd);

	if (fd >= 0)
		close(fd);
	if (!same) {
		atomic_store(&vdev->local_ok, false);
		tcmu_dev_info(vdev->dev,
			      "vdisk %s: reads go through the agent from now "
			      "on (local reads not offered, or another file)\n",
			      vdev->cfg.vdisk);
	}
	return same;
}

static ssize_t read_cached(struct vxhs_local *l, const struct iovec *iov,
			   size_t cnt, uint64_t off, size_t len)
{
	ssize_t n;

	if (atomic_load(&l->nowait)) {
		n = preadv2(l->fd, iov, (int)cnt, (off_t)off, RWF_NOWAIT);
		if (n >= 0 || errno != EOPNOTSUPP)
			return n;
		atomic_store(&l->nowait, false);
	}
	if (!vxhs_range_cached(l->map, l->map_len, off, len))
		return -1;
	return preadv(l->fd, iov, (int)cnt, (off_t)off);
}

bool vxhs_local_read(struct vxhs_dev *vdev, const struct iovec *iov, size_t cnt,
		     uint64_t off, size_t len)
{
	bool done = false;

	if (len > LOCAL_READ_MAX)
		return false;
	pthread_rwlock_rdlock(&vdev->lock);
	if (!vdev->vd || !vdev->local || !atomic_load(&vdev->local_ok))
		goto unlock;
	if (atomic_exchange(&vdev->local_check, false) && !recheck(vdev))
		goto unlock;
	done = read_cached(vdev->local, iov, cnt, off, len) == (ssize_t)len;
unlock:
	pthread_rwlock_unlock(&vdev->lock);
	return done;
}
