// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Local writes (docs/handler.md, "Local reads and writes"; the rules are
 * docs/protocol.md's "Local writes"). A LUN whose agent granted the vdisk's
 * file read-write writes it itself, on tcmu-runner's thread, exactly as
 * the agent would: inside the lock record's gate, and only under the
 * lock's epoch, so that no write made under a lock this gateway lost
 * lands after another gateway took it.
 *
 * Like an agent (server/fence.c), a LUN holds the gate once for a stream
 * of writes and reads the record once per hold: while the gate is held
 * shared, no acquire can change it. A hold ends LINGER_NS after the last
 * write (a sweeper thread, one for the process, ends idle holds), and at
 * once when a write finds an acquire waiting on the intent byte (looked
 * for every GATE_LOOK_NS). A write that cannot pass at once (an acquire
 * waits, the record cannot be read, it would be fenced, or it lies past
 * the file's end) goes to the agent, which waits, fences or refuses it
 * and says why; so does one that fails here.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "local.h"
#include "vxhs_handler.h"

#define GATE_LOOK_NS (1000 * 1000ull)
#define LINGER_NS    (5 * 1000 * 1000ull)
/* Larger writes go to the agent (a worker thread's job there). */
#define LOCAL_WRITE_MAX (8u << 20)

/* The holds of this process, and the thread that ends idle ones. Lock
 * order: a hold's gate_mutex, then sweep_lock; the sweeper only tries
 * gate_mutex. */
static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sweep_cond = PTHREAD_COND_INITIALIZER;
static struct vxhs_local *holds; /* linked by sweep_next */
/* Starting and stopping the sweeper: grants with writes come and go on
 * several threads. */
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int sweep_users; /* grants with writes: life_lock */
static pthread_t sweeper;
static bool sweep_stop;

static void hold_end(struct vxhs_local *l)
{
	gate_drop(l->record);
	l->held = false;
}

/* Takes l off the sweeper's list: sweep_lock held. */
static void unlist(struct vxhs_local *l)
{
	struct vxhs_local **p = &holds;

	while (*p != l)
		p = &(*p)->sweep_next;
	*p = l->sweep_next;
	l->listed = false;
}

/* Sleeps until the first idle hold is due to end, as the agent's sweeper
 * does (server/fence.c): a stream of writes wakes it once per LINGER_NS
 * at most. */
static void *sweep_main(void *arg)
{
	struct vxhs_local *l, *next;
	uint64_t wake = 0;

	(void)arg;
	pthread_mutex_lock(&sweep_lock);
	while (!sweep_stop) {
		if (!holds) {
			pthread_cond_wait(&sweep_cond, &sweep_lock);
			wake = vxhs_now_ns() + LINGER_NS;
			continue;
		}
		pthread_mutex_unlock(&sweep_lock);
		vxhs_sleep_until_ns(wake);
		pthread_mutex_lock(&sweep_lock);
		wake = vxhs_now_ns() + LINGER_NS;
		for (l = holds; l; l = next) {
			next = l->sweep_next;
			if (pthread_mutex_trylock(&l->gate_mutex))
				continue; /* writing: not idle */
			if (l->held &&
			    vxhs_idle_for(l->used_at, LINGER_NS, &wake))
				hold_end(l);
			if (!l->held)
				unlist(l);
			pthread_mutex_unlock(&l->gate_mutex);
		}
	}
	pthread_mutex_unlock(&sweep_lock);
	return NULL;
}

int local_writes_start(struct vxhs_local *l)
{
	int ret = 0;

	pthread_mutex_init(&l->gate_mutex, NULL);
	pthread_mutex_lock(&life_lock);
	if (!sweep_users) {
		sweep_stop = false;
		ret = -pthread_create(&sweeper, NULL, sweep_main, NULL);
		/* Named for profiles and `top -H`. */
		if (!ret)
			pthread_setname_np(sweeper, "vxhs-sweep");
	}
	if (!ret)
		sweep_users++;
	pthread_mutex_unlock(&life_lock);
	if (ret)
		pthread_mutex_destroy(&l->gate_mutex);
	return ret;
}

void local_writes_stop(struct vxhs_local *l)
{
	pthread_mutex_lock(&life_lock);
	pthread_mutex_lock(&sweep_lock);
	if (l->listed)
		unlist(l);
	if (!--sweep_users) {
		sweep_stop = true;
		pthread_cond_signal(&sweep_cond);
	}
	pthread_mutex_unlock(&sweep_lock);
	if (!sweep_users)
		pthread_join(sweeper, NULL);
	pthread_mutex_unlock(&life_lock);
	/* Closing the record's only descriptor ends any hold. */
	close(l->record);
	l->record = -1;
	pthread_mutex_destroy(&l->gate_mutex);
}

/* Takes the gate without waiting and reads what a hold needs: 0 or a
 * negative errno (the write goes to the agent). */
static int hold_start(struct vxhs_local *l, uint64_t now)
{
	uint8_t buf[LOCK_RECORD_SIZE];
	struct stat st;
	ssize_t n;
	int ret;

	ret = gate_take(l->record, false);
	if (ret)
		return ret;
	/* A record removed since the grant (an operator cleared a damaged
	 * one): the agents use the new one, so its gate is not ours. */
	if (fstat(l->record, &st) || !st.st_nlink)
		goto drop;
	n = pread(l->record, buf, sizeof(buf), 0);
	if (n < 0 || lock_record_decode(buf, (size_t)n, &l->rec) ||
	    fstat(l->fd, &st))
		goto drop;
	l->size = (uint64_t)st.st_size;
	l->held = true;
	l->looked_at = now;
	if (!l->listed) {
		pthread_mutex_lock(&sweep_lock);
		l->sweep_next = holds;
		holds = l;
		l->listed = true;
		pthread_cond_signal(&sweep_cond);
		pthread_mutex_unlock(&sweep_lock);
	}
	return 0;
drop:
	gate_drop(l->record);
	return -EAGAIN;
}

static bool write_gated(struct vxhs_local *l, uint64_t token,
			const struct iovec *iov, size_t cnt, uint64_t off,
			size_t len)
{
	uint64_t now = vxhs_now_ns();
	bool done = false;

	pthread_mutex_lock(&l->gate_mutex);
	if (l->held && now - l->looked_at > GATE_LOOK_NS) {
		l->looked_at = now;
		if (gate_acquire_waiting(l->record))
			hold_end(l);
	}
	if (!l->held && hold_start(l, now))
		goto unlock;
	if (lock_record_fences(&l->rec, token) || off + len > l->size)
		goto unlock;
	done = pwritev(l->fd, iov, (int)cnt, (off_t)off) == (ssize_t)len;
	l->used_at = vxhs_now_ns();
unlock:
	pthread_mutex_unlock(&l->gate_mutex);
	return done;
}

bool vxhs_local_write(struct vxhs_dev *vdev, const struct iovec *iov,
		      size_t cnt, uint64_t off, size_t len)
{
	bool done = false;

	if (len > LOCAL_WRITE_MAX)
		return false;
	pthread_rwlock_rdlock(&vdev->lock);
	if (vxhs_local_usable(vdev) && vdev->local->record >= 0)
		done = write_gated(vdev->local, vxhs_lock_epoch(vdev->vd), iov,
				   cnt, off, len);
	pthread_rwlock_unlock(&vdev->lock);
	return done;
}
