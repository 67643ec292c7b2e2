// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local reads and writes (docs/handler.md). With the agent on this host
 * (a UNIX socket), a LUN does its I/O on the vdisk's file itself, on
 * tcmu-runner's thread: no round trip through the agent and no other
 * thread woken (but the copy thread for large reads, copy_thread.c).
 *
 * Reads (local_reads) when the data is in the page cache; anything else
 * (pages not cached, a short read, an error) goes to the agent as before.
 * "In the page cache" is RWF_NOWAIT's answer; on a file system without it
 * (tmpfs and overlayfs in Debian 12's Linux 6.1), mincore's on a mapping
 * of the file, which costs one more system call. Writes (local_writes)
 * pass the lock record's gate, as the agent's own do: local_write.c.
 *
 * The file comes with the vdisk (vdev->local changes with vd). While the
 * agent is lost it is not used; when I/O resumes, the next command asks
 * the agent in use again, and goes on only if it serves the same file
 * (and lock record).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "local.h"
#include "vxhs_handler.h"

/* Larger reads go to the agent. */
#define LOCAL_READ_MAX VXHS_CACHED_CHECK_MAX

void vxhs_local_free(struct vxhs_local *l)
{
	if (!l)
		return;
	if (l->record >= 0)
		local_writes_stop(l);
	if (l->copying)
		vxhs_copy_thread_stop();
	if (l->map)
		munmap(l->map, l->map_len);
	close(l->fd);
	free(l);
}

/* Asks the agent for the file (and record, for writes): 0, or a negative
 * errno with nothing open. */
static int ask(struct vxhs_vdisk *vd, bool writes, int *fd, int *record)
{
	*record = -1;
	if (writes)
		return vxhs_vdisk_open_local_rw(vd, fd, record);
	*fd = vxhs_vdisk_open_local(vd);
	return *fd < 0 ? *fd : 0;
}

static void refused(struct vxhs_dev *vdev, int ret, const char *what)
{
	/* Not offered (a TCP agent, or one started without it): quiet. */
	if (ret != -EOPNOTSUPP)
		tcmu_dev_warn(vdev->dev, "%s; %s go through the agent\n",
			      vxhs_errmsg(), what);
}

struct vxhs_local *vxhs_local_grant(struct vxhs_dev *vdev,
				    const struct vxhs_cfg *cfg,
				    struct vxhs_vdisk *vd)
{
	int fd = -1, record = -1, ret = -EOPNOTSUPP;
	struct vxhs_local *l;
	struct stat st;

	if (cfg->local_writes) {
		ret = ask(vd, true, &fd, &record);
		if (ret)
			refused(vdev, ret, "writes");
	}
	if (ret && cfg->local_reads) {
		ret = ask(vd, false, &fd, &record);
		if (ret)
			refused(vdev, ret, "reads");
	}
	if (ret)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l || fstat(fd, &st))
		goto free_l;
	l->fd = fd;
	l->record = record;
	l->reads = cfg->local_reads;
	atomic_init(&l->nowait, true);
	l->map_len = l->reads ? (size_t)st.st_size : 0;
	l->map = l->map_len ?
			 mmap(NULL, l->map_len, PROT_READ, MAP_SHARED, fd, 0) :
			 MAP_FAILED;
	if (l->map == MAP_FAILED)
		l->map = NULL;
	if (record >= 0 && local_writes_start(l)) {
		tcmu_dev_warn(vdev->dev, "no thread for local writes; writes "
					 "go through the agent\n");
		close(record);
		l->record = -1;
	}
	/* Without it, large reads are copied on the command thread. */
	l->copying = l->reads && !vxhs_copy_thread_start();
	if (!l->reads && l->record < 0) {
		vxhs_local_free(l);
		return NULL;
	}
	tcmu_dev_info(vdev->dev, "vdisk %s: %s%s%s the agent's file\n",
		      cfg->vdisk, l->reads ? "cached data read from" : "",
		      l->reads && l->record >= 0 ? ", and " : "",
		      l->record >= 0 ? "writes go to" : "");
	return l;
free_l:
	free(l);
	close(fd);
	if (record >= 0)
		close(record);
	return NULL;
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

/* After I/O resumed: whether the agent in use serves the file (and lock
 * record) we hold. Once per failover, on the command thread (a local
 * socket). */
static bool recheck(struct vxhs_dev *vdev)
{
	struct vxhs_local *l = vdev->local;
	int fd, record;
	bool same;

	same = !ask(vdev->vd, l->record >= 0, &fd, &record) &&
	       same_file(fd, l->fd) &&
	       (l->record < 0 || same_file(record, l->record));
	if (fd >= 0)
		close(fd);
	if (record >= 0)
		close(record);
	if (!same) {
		atomic_store(&vdev->local_ok, false);
		tcmu_dev_info(vdev->dev,
			      "vdisk %s: reads and writes go through the "
			      "agent from now on (local I/O not offered, or "
			      "another file)\n",
			      vdev->cfg.vdisk);
	}
	return same;
}

/* Whether the LUN may use its local file now (lock held for reading). */
bool vxhs_local_usable(struct vxhs_dev *vdev)
{
	if (!vdev->vd || !vdev->local || !atomic_load(&vdev->local_ok))
		return false;
	return !atomic_exchange(&vdev->local_check, false) || recheck(vdev);
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

bool vxhs_local_reads_on(struct vxhs_dev *vdev, size_t len)
{
	bool on;

	if (len > LOCAL_READ_MAX)
		return false;
	pthread_rwlock_rdlock(&vdev->lock);
	on = vdev->local && vdev->local->reads && atomic_load(&vdev->local_ok);
	pthread_rwlock_unlock(&vdev->lock);
	return on;
}

bool vxhs_local_read(struct vxhs_dev *vdev, const struct iovec *iov, size_t cnt,
		     uint64_t off, size_t len)
{
	bool done = false;

	if (len > LOCAL_READ_MAX)
		return false;
	pthread_rwlock_rdlock(&vdev->lock);
	if (vxhs_local_usable(vdev) && vdev->local->reads)
		done = read_cached(vdev->local, iov, cnt, off, len) ==
		       (ssize_t)len;
	pthread_rwlock_unlock(&vdev->lock);
	return done;
}
