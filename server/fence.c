// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Fencing: the gate every request that changes a vdisk passes, so that a
 * request checked against lock epoch N never lands after an acquire moved
 * the epoch on, in this agent or in another one on the same storage.
 *
 * The gate is a shared open file description lock on a byte of the lock
 * record (lock_record.c), which an acquire takes exclusively: it waits for
 * the requests inside to finish, and any request after it sees the new
 * epoch. A second byte, the intent byte, keeps a stream of requests from
 * starving an acquire: they pass it (shared) on their way in, an acquire
 * holds it (exclusive) while it waits.
 * (lib/lockrec has the bytes and the record's layout.) A gateway on this
 * host that writes the vdisk's file itself (local_open.c) passes the
 * same gate in the same way.
 *
 * One agent holds the gate once for all its requests in progress on a
 * vdisk (OFD locks of one description merge), and reads the record once
 * per such hold: while the gate is held nobody can change it. A hold
 * outlives the last request inside by LINGER_NS, so that requests one
 * after the other do not each pay for taking the gate and reading the
 * record; a sweeper thread ends idle holds. An agent that sees an acquire
 * waiting (its own, or another agent's, looked for every GATE_LOOK_NS)
 * lets no more requests in until the hold has ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define GATE_LOOK_NS (1000 * 1000ull)
#define LINGER_NS    (2 * 1000 * 1000ull)

static struct ratelimit fenced_rl = RATELIMIT_INIT(10, 5);

/* This agent's holds, for the sweeper to end when idle. Lock order: a
 * fence's mutex, then idle_lock; the sweeper only tries fence mutexes. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static struct list_head idle = { &idle, &idle };
static pthread_t sweeper;
static atomic_bool sweeping;
static bool sweep_stop; /* under idle_lock */

/*
 * The state of a fence, one atomic word: HELD (this agent holds the gate),
 * OPEN (requests may join the hold without the mutex) and the count of
 * requests inside. A request joins an open hold with one compare and
 * swap and leaves with one subtraction; the mutex is for starting and
 * ending holds. A hold ends, under the mutex, when its state goes to 0:
 * idle too long (the sweeper), or closed for an acquire and empty.
 */
#define FENCE_HELD  (1ull << 62)
#define FENCE_OPEN  (1ull << 61)
#define FENCE_COUNT 0xffffffffull

void fence_init(struct fence *f)
{
	pthread_mutex_init(&f->mutex, NULL);
	pthread_cond_init(&f->cond, NULL);
	list_init(&f->idle_link);
	f->fd = -1;
	f->map = NULL;
	f->no_nowait = false;
}

/* Opens the record, and maps it for record_read_nowait. */
static int record_take(struct fence *f, const char *id)
{
	void *map;

	f->fd = record_open(id, O_RDWR);
	if (f->fd < 0) {
		int ret = f->fd;

		f->fd = -1;
		return ret;
	}
	map = mmap(NULL, LOCK_RECORD_SIZE, PROT_READ, MAP_SHARED, f->fd, 0);
	f->map = map == MAP_FAILED ? NULL : map;
	return 0;
}

static void record_forget(struct fence *f)
{
	if (f->map)
		munmap(f->map, LOCK_RECORD_SIZE);
	f->map = NULL;
	if (f->fd >= 0)
		close(f->fd); /* and with it a hold */
	f->fd = -1;
}

/*
 * The record, without waiting for the disk (on a network thread). Where
 * the file system refuses RWF_NOWAIT (tmpfs, overlayfs in Linux 6.1),
 * mincore on the mapping tells whether a plain read can wait: else every
 * hold begun there would go to a worker, and with it the write that
 * began it.
 */
static int record_read_nowait(struct fence *f, const char *id)
{
	struct stat st;
	uint64_t len;
	int ret;

	if (!f->no_nowait) {
		ret = record_read(f->fd, id, &f->rec, true);
		if (ret != -EOPNOTSUPP)
			return ret;
		f->no_nowait = true; /* the file system will not change */
	}
	/* Empty (never locked): nothing to wait for. */
	if (fstat(f->fd, &st))
		return -EAGAIN;
	len = st.st_size < LOCK_RECORD_SIZE ? (uint64_t)st.st_size :
					      LOCK_RECORD_SIZE;
	if (len && !vxhs_range_cached(f->map, LOCK_RECORD_SIZE, 0, len))
		return -EAGAIN;
	return record_read(f->fd, id, &f->rec, false);
}

void fence_destroy(struct fence *f)
{
	pthread_mutex_lock(&idle_lock);
	if (f->listed)
		list_del(&f->idle_link);
	pthread_mutex_unlock(&idle_lock);
	record_forget(f);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mutex);
}

/* Ends the hold whose state is v, if it still is: mutex held. */
static bool hold_end_locked(struct fence *f, uint64_t v)
{
	if (!atomic_compare_exchange_strong(&f->state, &v, 0))
		return false;
	gate_drop(f->fd);
	pthread_cond_broadcast(&f->cond);
	return true;
}

/* Lets no more requests join the hold (an acquire waits); ends it now if
 * nobody is inside, else the last one out does. */
void hold_close(struct fence *f)
{
	uint64_t v = atomic_fetch_and(&f->state, ~FENCE_OPEN) & ~FENCE_OPEN;

	if ((v & FENCE_HELD) && !(v & FENCE_COUNT)) {
		pthread_mutex_lock(&f->mutex);
		hold_end_locked(f, v);
		pthread_mutex_unlock(&f->mutex);
	}
}

/* Every GATE_LOOK_NS one request looks for an acquire of another agent
 * waiting, and closes the hold for it. */
static void look_for_acquire(struct fence *f)
{
	uint64_t now = vxhs_now_ns(), then = atomic_load(&f->looked_at);

	if (now - then <= GATE_LOOK_NS ||
	    !atomic_compare_exchange_strong(&f->looked_at, &then, now))
		return;
	if (gate_acquire_waiting(f->fd))
		hold_close(f);
}

/*
 * Sleeps until the first idle hold is due to end (a hold in use: LINGER_NS
 * from now), so that a stream of requests wakes it once per LINGER_NS at
 * most: on a host short of CPU, a wake every millisecond cost more than
 * the holds save.
 */
static void *sweep_main(void *arg)
{
	struct fence *f, *next;
	uint64_t wake = 0;

	(void)arg;
	pthread_mutex_lock(&idle_lock);
	while (!sweep_stop) {
		if (list_empty(&idle)) {
			pthread_cond_wait(&idle_cond, &idle_lock);
			wake = vxhs_now_ns() + LINGER_NS;
			continue;
		}
		pthread_mutex_unlock(&idle_lock);
		vxhs_sleep_until_ns(wake);
		pthread_mutex_lock(&idle_lock);
		wake = vxhs_now_ns() + LINGER_NS;
		list_for_each_entry_safe (f, next, &idle, idle_link) {
			uint64_t v, since;

			if (pthread_mutex_trylock(&f->mutex))
				continue; /* busy: not idle anyway */
			v = atomic_load(&f->state);
			since = atomic_load(&f->idle_since);
			if (v == (FENCE_HELD | FENCE_OPEN) &&
			    vxhs_idle_for(since, LINGER_NS, &wake))
				hold_end_locked(f, v);
			if (!atomic_load(&f->state)) {
				list_del(&f->idle_link);
				f->listed = false;
			}
			pthread_mutex_unlock(&f->mutex);
		}
	}
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

int fences_start(void)
{
	int ret = pthread_create(&sweeper, NULL, sweep_main, NULL);

	if (ret)
		return -ret;
	pthread_setname_np(sweeper, "vxhsd-sweep");
	atomic_store(&sweeping, true);
	return 0;
}

void fences_stop(void)
{
	if (!atomic_exchange(&sweeping, false))
		return;
	pthread_mutex_lock(&idle_lock);
	sweep_stop = true;
	pthread_cond_signal(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	pthread_join(sweeper, NULL);
}

/* Starts a hold of the gate, with r inside; called with the mutex, which
 * it drops while it may wait. */
static int hold_start_locked(struct vdisk *vd, bool wait)
{
	struct fence *f = &vd->fence;
	struct stat st;
	int ret;

	/* Removed (an operator cleared a damaged record, or the vdisk was
	 * deleted and made again): the name is what every agent opens. */
	if (f->fd >= 0 && (fstat(f->fd, &st) || !st.st_nlink))
		record_forget(f);
	if (f->fd < 0) {
		if (!wait)
			return -EAGAIN;
		ret = record_take(f, vd->id);
		if (ret)
			return ret;
	}
	f->taking = true;
	f->taking_nowait = !wait;
	pthread_mutex_unlock(&f->mutex);
	ret = gate_take(f->fd, wait);
	if (!ret) {
		ret = wait ? record_read(f->fd, vd->id, &f->rec, false) :
			     record_read_nowait(f, vd->id);
		if (ret)
			gate_drop(f->fd);
	}
	pthread_mutex_lock(&f->mutex);
	f->taking = false;
	pthread_cond_broadcast(&f->cond);
	if (ret)
		return ret;
	atomic_store(&f->looked_at, vxhs_now_ns());
	atomic_store(&f->state, FENCE_HELD | FENCE_OPEN | 1);
	if (atomic_load(&sweeping) && !f->listed) {
		pthread_mutex_lock(&idle_lock);
		list_add_tail(&f->idle_link, &idle);
		f->listed = true;
		pthread_cond_signal(&idle_cond);
		pthread_mutex_unlock(&idle_lock);
	}
	return 0;
}

/* Joins the hold or starts one: 0 (inside), or a negative errno. */
static int hold_join(struct vdisk *vd, bool wait)
{
	struct fence *f = &vd->fence;
	uint64_t v = atomic_load(&f->state);
	int ret;

	while (v & FENCE_OPEN)
		if (atomic_compare_exchange_weak(&f->state, &v, v + 1))
			return 0;
	/* Held only for moments (never across a wait): taken even on a
	 * network thread. */
	pthread_mutex_lock(&f->mutex);
	for (;;) {
		v = atomic_load(&f->state);
		if ((v & FENCE_OPEN) &&
		    atomic_compare_exchange_strong(&f->state, &v, v + 1)) {
			ret = 0;
			goto unlock;
		}
		if (!(v & FENCE_HELD) && !f->taking)
			break;
		/* Closed for an acquire, or being taken by a thread that may
		 * wait for the disk. One that will not is waited for: else
		 * the requests of each network thread but one would go to
		 * the workers whenever a hold begins again. */
		if (!wait && !(f->taking && f->taking_nowait)) {
			ret = -EAGAIN;
			goto unlock;
		}
		pthread_cond_wait(&f->cond, &f->mutex);
	}
	ret = hold_start_locked(vd, wait);
unlock:
	pthread_mutex_unlock(&f->mutex);
	return ret;
}

static void log_fenced(const struct request *r, const struct lock_record *rec)
{
	unsigned int missed;

	if (!ratelimit_ok(&fenced_rl, &missed))
		return;
	slog(r->s, r->hdr.target, r->hdr.opcode, LOG_WARNING,
	     "%s: fenced %s of vdisk %s made under lock epoch %llu: the lock is at epoch %llu, %s %s%s",
	     r->s->peer, vxhs_opcode_name(r->hdr.opcode), r->hdr.target,
	     (unsigned long long)r->hdr.io_remote_hdl,
	     (unsigned long long)rec->epoch, rec->held ? "held by" : "free",
	     rec->held ? rec->owner : "",
	     missed ? " (and more fenced requests not logged)" : "");
}

int fence_enter(struct request *r, bool wait)
{
	struct fence *f = &r->vd->fence;
	uint64_t token = r->hdr.io_remote_hdl;
	struct lock_record rec;
	int ret;

	ret = hold_join(r->vd, wait);
	if (ret)
		return ret;
	look_for_acquire(f);
	/* The record read when the hold began, unchanged while it lasts.
	 * Locked: only requests under its epoch. Free: those without an
	 * epoch, or under the last one (its owner let it go). */
	if (!lock_record_fences(&f->rec, token))
		return 0;
	rec = f->rec;
	fence_leave(r->vd);
	log_fenced(r, &rec);
	return -ESTALE;
}

void fence_leave(struct vdisk *vd)
{
	struct fence *f = &vd->fence;
	uint64_t v = atomic_fetch_sub(&f->state, 1) - 1;

	if (v & FENCE_COUNT)
		return;
	/* It lingers for the next request; the sweeper ends it. */
	if ((v & FENCE_OPEN) && atomic_load(&sweeping)) {
		atomic_store(&f->idle_since, vxhs_now_ns());
		return;
	}
	/* Closed for an acquire (or no sweeper), and the last one out. */
	pthread_mutex_lock(&f->mutex);
	hold_end_locked(f, v);
	pthread_mutex_unlock(&f->mutex);
}
