// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The vdisk directory. A vdisk is a regular file named by its id directly
 * in the directory. Ids are validated before they get here (no '/', no
 * leading '.'), files are opened relative to the directory's descriptor and
 * never through a symbolic link, so no request can reach outside it.
 * Open files are cached by id and shared by all connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "vxhsd.h"

static int dirfd_ = -1;
static GHashTable *open_vdisks; /* id -> struct vdisk */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

int store_open(const char *dir)
{
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		return -errno;
	open_vdisks = g_hash_table_new(g_str_hash, g_str_equal);
	return 0;
}

static void vdisk_free(struct vdisk *vd)
{
	if (vd->map)
		munmap(vd->map, vd->map_len);
	close(vd->fd);
	fence_destroy(&vd->fence);
	pthread_mutex_destroy(&vd->loop_write_lock);
	free(vd);
}

int store_dirfd(void)
{
	return dirfd_;
}

void store_close(void)
{
	GHashTableIter it;
	gpointer key, value;

	if (open_vdisks) {
		g_hash_table_iter_init(&it, open_vdisks);
		while (g_hash_table_iter_next(&it, &key, &value))
			vdisk_free(value);
		g_hash_table_destroy(open_vdisks);
		open_vdisks = NULL;
	}
	if (dirfd_ >= 0)
		close(dirfd_);
	dirfd_ = -1;
}

/*
 * Address space for asking which pages of the file are cached: twice the
 * size, so that a vdisk can grow before reads past the mapping go back to
 * copying. Mapping past the end of a file is allowed; nothing reads it.
 */
static void map_for_residency(struct vdisk *vd, uint64_t size)
{
	uint64_t len = size < (32u << 20) ? (64u << 20) : size * 2;
	void *map;

	if (len > SIZE_MAX / 2)
		return;
	map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, vd->fd, 0);
	if (map == MAP_FAILED)
		return;
	vd->map = map;
	vd->map_len = (size_t)len;
}

static int vdisk_open(const char *id, struct vdisk **out)
{
	struct vdisk *vd;
	struct stat st;
	int fd, ret;

	fd = openat(dirfd_, id, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP) {
			vlog(LOG_WARNING,
			     "vdisk %s is a symbolic link; refusing to follow it",
			     id);
			return -EACCES;
		}
		if (ret != -ENOENT)
			vlog(LOG_ERR, "vdisk %s: cannot open: %s", id,
			     strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vlog(LOG_WARNING, "vdisk %s is not a regular file; refusing it",
		     id);
		close(fd);
		return -EACCES;
	}
	vd = calloc(1, sizeof(*vd));
	if (!vd) {
		close(fd);
		return -ENOMEM;
	}
	strcpy(vd->id, id);
	vd->fd = fd;
	fence_init(&vd->fence);
	pthread_mutex_init(&vd->loop_write_lock, NULL);
	vd->dev = st.st_dev;
	vd->ino = st.st_ino;
	atomic_init(&vd->size, (uint64_t)st.st_size);
	map_for_residency(vd, (uint64_t)st.st_size);
	*out = vd;
	return 0;
}

int store_get(const char *id, struct vdisk **out)
{
	struct vdisk *vd;
	int ret = 0;

	pthread_mutex_lock(&lock);
	vd = g_hash_table_lookup(open_vdisks, id);
	if (!vd) {
		ret = vdisk_open(id, &vd);
		if (!ret)
			g_hash_table_insert(open_vdisks, vd->id, vd);
	}
	if (!ret) {
		vd->refs++;
		*out = vd;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

/* Like store_get, but never opens a file: safe on a network thread. */
int store_lookup_cached(const char *id, struct vdisk **out)
{
	struct vdisk *vd;

	pthread_mutex_lock(&lock);
	vd = g_hash_table_lookup(open_vdisks, id);
	if (vd)
		vd->refs++;
	pthread_mutex_unlock(&lock);
	*out = vd;
	return vd ? 0 : -ENOENT;
}

/*
 * A vdisk some connection uses holds a shared lock on its file, which
 * vxhsadm delete and resize test for (flock: other agents on the same
 * directory take it too, and it goes with the last close). Not taking it
 * (vxhsadm holds its exclusive one for an instant) only weakens that check.
 */
void store_attach(struct vdisk *vd)
{
	pthread_mutex_lock(&lock);
	vd->refs++;
	if (vd->users++ == 0 && flock(vd->fd, LOCK_SH | LOCK_NB) < 0)
		vlog(LOG_INFO, "vdisk %s: cannot mark it in use: %m", vd->id);
	pthread_mutex_unlock(&lock);
}

void store_detach(struct vdisk *vd)
{
	pthread_mutex_lock(&lock);
	if (--vd->users == 0)
		flock(vd->fd, LOCK_UN);
	pthread_mutex_unlock(&lock);
	store_put(vd);
}

/* Cached vdisks stay open while anyone uses them, and until replaced. */
void store_put(struct vdisk *vd)
{
	bool free_it;

	pthread_mutex_lock(&lock);
	free_it = --vd->refs == 0 && vd->stale;
	pthread_mutex_unlock(&lock);
	if (free_it)
		vdisk_free(vd);
}

int store_refresh(struct vdisk *vd)
{
	struct stat path_st, fd_st;

	if (fstatat(dirfd_, vd->id, &path_st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    path_st.st_dev != vd->dev || path_st.st_ino != vd->ino) {
		/* Deleted or replaced: forget it; the next lookup opens the
		 * file now under that name, if any. */
		pthread_mutex_lock(&lock);
		if (!vd->stale) {
			vd->stale = true;
			g_hash_table_remove(open_vdisks, vd->id);
		}
		pthread_mutex_unlock(&lock);
		return -ENOENT;
	}
	if (fstat(vd->fd, &fd_st) < 0)
		return -errno;
	atomic_store(&vd->size, (uint64_t)fd_st.st_size);
	return 0;
}
