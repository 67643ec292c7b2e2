// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The exclusive lock of a vdisk and the fencing it gives
 * (docs/protocol.md, "The exclusive lock").
 *
 * The lock lives in the storage, not in an agent: a record beside the
 * vdisk (".ID.lock", a name no vdisk can have) that every agent serving
 * the directory reads and writes, so a gateway keeps its lock when it
 * fails over to another agent, and a restarted agent finds it again.
 * The record has two slots written in turn, each with a sequence number
 * and a checksum: an update torn by a crash leaves the one before it.
 *
 * Fencing needs more than the record: a write checked against epoch N
 * must not land after an acquire moved the epoch on, in this agent or in
 * another one on the same storage. So writes run inside a gate, a shared
 * open file description lock on a byte of the record, and an acquire takes
 * that byte exclusively: it waits for the writes inside to finish, and any
 * write after it sees the new epoch. A second byte, the intent byte, keeps
 * a stream of writes from starving an acquire: writers pass it (shared) on
 * their way in, an acquire holds it (exclusive) while it waits.
 *
 * One agent holds the gate once for all its writes in progress on a vdisk
 * (OFD locks of one description merge), and reads the record once per
 * such hold: while the gate is held nobody can change it. A hold outlives
 * the last write inside by LINGER_NS, so that writes one after the other
 * do not each pay for taking the gate and reading the record; a sweeper
 * thread ends idle holds. An agent that sees an acquire waiting (its own,
 * or another agent's, looked for every GATE_LOOK_NS) lets no more writes
 * in until the hold has ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhs/kvset.h"
#include "vxhsd.h"

#define REC_MAGIC     "VXHSLCK1"
#define REC_SLOT_SIZE 256
#define REC_SIZE      (2 * REC_SLOT_SIZE)
#define REC_SUM_OFF   (REC_SLOT_SIZE - 8)
#define INTENT_BYTE   4096 /* past the slots: locked, never written */
#define GATE_BYTE     4097
#define GATE_LOOK_NS  (1000 * 1000ull)
#define LINGER_NS     (2 * 1000 * 1000ull)
#define ANSWER_SIZE   512

/* Slot layout, little-endian: magic[8], seq, epoch, since (u64), held
 * (u32), tag (u32), owner (NUL-padded), ... checksum (first 8 bytes of
 * the SHA-256 of everything before it). */
enum {
	SLOT_SEQ = 8,
	SLOT_EPOCH = 16,
	SLOT_SINCE = 24,
	SLOT_HELD = 32,
	SLOT_TAG = 36,
	SLOT_OWNER = 40,
};

static struct ratelimit fenced_rl = RATELIMIT_INIT(10, 5);

/* This agent's holds, for the sweeper to end when idle. Lock order: a
 * fence's mutex, then idle_lock; the sweeper only tries fence mutexes. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static struct list_head idle = { &idle, &idle };
static pthread_t sweeper;
static atomic_bool sweeping;
static bool sweep_stop; /* under idle_lock */

static void slot_sum(const uint8_t *slot, uint8_t *sum)
{
	uint8_t digest[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, slot, REC_SUM_OFF, digest);
	memcpy(sum, digest, 8);
}

static void slot_encode(const struct lock_record *rec, uint8_t *slot)
{
	memset(slot, 0, REC_SLOT_SIZE);
	memcpy(slot, REC_MAGIC, 8);
	vxhs_put_le64(slot + SLOT_SEQ, rec->seq);
	vxhs_put_le64(slot + SLOT_EPOCH, rec->epoch);
	vxhs_put_le64(slot + SLOT_SINCE, rec->since);
	vxhs_put_le32(slot + SLOT_HELD, rec->held);
	vxhs_put_le32(slot + SLOT_TAG, rec->tag);
	memcpy(slot + SLOT_OWNER, rec->owner, strlen(rec->owner));
	slot_sum(slot, slot + REC_SUM_OFF);
}

static bool slot_decode(const uint8_t *slot, struct lock_record *rec)
{
	uint8_t sum[8];
	size_t len;

	if (memcmp(slot, REC_MAGIC, 8))
		return false;
	slot_sum(slot, sum);
	if (memcmp(sum, slot + REC_SUM_OFF, 8))
		return false;
	len = strnlen((const char *)slot + SLOT_OWNER, VXHS_LOCK_OWNER_MAX + 1);
	if (len > VXHS_LOCK_OWNER_MAX)
		return false;
	rec->seq = vxhs_get_le64(slot + SLOT_SEQ);
	rec->epoch = vxhs_get_le64(slot + SLOT_EPOCH);
	rec->since = vxhs_get_le64(slot + SLOT_SINCE);
	rec->held = vxhs_get_le32(slot + SLOT_HELD) != 0;
	rec->tag = vxhs_get_le32(slot + SLOT_TAG) & VXHS_LOCK_TAG_MAX;
	memcpy(rec->owner, slot + SLOT_OWNER, len);
	rec->owner[len] = 0;
	return true;
}

/*
 * Reads the record: the valid slot with the higher sequence number. An
 * empty file is a vdisk never locked. Both slots bad: -EUCLEAN (logged),
 * and nothing that changes the vdisk goes ahead until an operator looks.
 */
static int record_read(int fd, const char *id, struct lock_record *rec,
		       bool nowait)
{
	uint8_t buf[REC_SIZE];
	struct iovec iov = { buf, sizeof(buf) };
	struct lock_record a, b;
	bool ok_a, ok_b;
	ssize_t n;

	n = preadv2(fd, &iov, 1, 0, nowait ? RWF_NOWAIT : 0);
	if (n < 0)
		return -errno;
	memset(rec, 0, sizeof(*rec));
	if (n == 0)
		return 0;
	if (n != REC_SIZE && nowait)
		return -EAGAIN;
	ok_a = n == REC_SIZE && slot_decode(buf, &a);
	ok_b = n == REC_SIZE && slot_decode(buf + REC_SLOT_SIZE, &b);
	if (!ok_a && !ok_b) {
		vlog(LOG_ERR,
		     "vdisk %s: its lock record .%s.lock is damaged; refusing writes until it is repaired or removed",
		     id, id);
		return -EUCLEAN;
	}
	*rec = ok_a && (!ok_b || a.seq > b.seq) ? a : b;
	return 0;
}

/* Writes the next version of the record and makes it durable. */
static int record_write(int fd, struct lock_record *rec)
{
	uint8_t slot[REC_SLOT_SIZE];
	int ret;

	rec->seq++;
	slot_encode(rec, slot);
	ret = pwrite_all(fd, slot, sizeof(slot),
			 (rec->seq & 1) * REC_SLOT_SIZE);
	if (ret)
		return ret;
	return fdatasync(fd) ? -errno : 0;
}

static int record_open(const char *id)
{
	char name[VXHS_LOCK_RECORD_NAME_MAX];
	int fd;

	vxhs_lock_record_name(id, name, sizeof(name));
	fd = openat(store_dirfd(), name,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
	if (fd < 0) {
		int err = errno;

		vlog(LOG_ERR, "vdisk %s: cannot open its lock record %s: %s",
		     id, name, strerror(err));
		return -err;
	}
	return fd;
}

static int byte_lock(int fd, int cmd, short type, off_t byte)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	while (fcntl(fd, cmd, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Whether an acquire (of any agent) holds the intent byte. */
static bool acquire_waiting(int fd)
{
	struct flock fl = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = INTENT_BYTE,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* Takes the gate, shared, past the intent byte. */
static int gate_take(int fd, bool wait)
{
	int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
	int ret;

	ret = byte_lock(fd, cmd, F_RDLCK, INTENT_BYTE);
	if (ret)
		return ret == -EACCES ? -EAGAIN : ret;
	ret = byte_lock(fd, cmd, F_RDLCK, GATE_BYTE);
	byte_lock(fd, F_OFD_SETLK, F_UNLCK, INTENT_BYTE);
	return ret == -EACCES ? -EAGAIN : ret;
}

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
}

void fence_destroy(struct fence *f)
{
	pthread_mutex_lock(&idle_lock);
	if (f->listed)
		list_del(&f->idle_link);
	pthread_mutex_unlock(&idle_lock);
	if (f->fd >= 0)
		close(f->fd); /* and with it a hold */
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mutex);
}

/* Ends the hold whose state is v, if it still is: mutex held. */
static bool hold_end_locked(struct fence *f, uint64_t v)
{
	if (!atomic_compare_exchange_strong(&f->state, &v, 0))
		return false;
	byte_lock(f->fd, F_OFD_SETLK, F_UNLCK, GATE_BYTE);
	pthread_cond_broadcast(&f->cond);
	return true;
}

/* Lets no more requests join the hold (an acquire waits); ends it now if
 * nobody is inside, else the last one out does. */
static void hold_close(struct fence *f)
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
	if (acquire_waiting(f->fd))
		hold_close(f);
}

static void *sweep_main(void *arg)
{
	struct fence *f, *next;

	(void)arg;
	pthread_mutex_lock(&idle_lock);
	while (!sweep_stop) {
		if (list_empty(&idle)) {
			pthread_cond_wait(&idle_cond, &idle_lock);
			continue;
		}
		pthread_mutex_unlock(&idle_lock);
		usleep(LINGER_NS / 2000);
		pthread_mutex_lock(&idle_lock);
		list_for_each_entry_safe (f, next, &idle, idle_link) {
			uint64_t v;

			if (pthread_mutex_trylock(&f->mutex))
				continue; /* busy: not idle anyway */
			v = atomic_load(&f->state);
			if (v == (FENCE_HELD | FENCE_OPEN) &&
			    vxhs_now_ns() - atomic_load(&f->idle_since) >=
				    LINGER_NS)
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
	if (f->fd >= 0 && (fstat(f->fd, &st) || !st.st_nlink)) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->fd < 0) {
		if (!wait)
			return -EAGAIN;
		f->fd = record_open(vd->id);
		if (f->fd < 0) {
			ret = f->fd;
			f->fd = -1;
			return ret;
		}
	}
	f->taking = true;
	pthread_mutex_unlock(&f->mutex);
	ret = gate_take(f->fd, wait);
	if (!ret) {
		ret = record_read(f->fd, vd->id, &f->rec, !wait);
		if (ret)
			byte_lock(f->fd, F_OFD_SETLK, F_UNLCK, GATE_BYTE);
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
		if (!wait) { /* closed for an acquire, or being taken */
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
	bool fenced;
	int ret;

	ret = hold_join(r->vd, wait);
	if (ret)
		return ret;
	look_for_acquire(f);
	/* The record read when the hold began, unchanged while it lasts.
	 * Locked: only requests under its epoch. Free: those without an
	 * epoch, or under the last one (its owner let it go). */
	fenced = f->rec.held ? token != f->rec.epoch :
			       token && token != f->rec.epoch;
	if (!fenced)
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

/*
 * Changes the record with the gate held exclusively: every write of every
 * agent that was checked against the old state has finished, every later
 * one sees the new. Through a description of its own, so that its
 * exclusive locks conflict with this agent's shared ones.
 */
typedef int (*record_change_fn)(struct request *r, struct lock_record *rec,
				int fd);

static int record_change(struct request *r, record_change_fn change)
{
	struct fence *f = &r->vd->fence;
	struct lock_record rec;
	int fd, ret;

	fd = record_open(r->vd->id);
	if (fd < 0)
		return fd;
	ret = byte_lock(fd, F_OFD_SETLKW, F_WRLCK, INTENT_BYTE);
	if (ret)
		goto close_fd;
	hold_close(f);
	ret = byte_lock(fd, F_OFD_SETLKW, F_WRLCK, GATE_BYTE);
	if (ret)
		goto close_fd;
	ret = record_read(fd, r->vd->id, &rec, false);
	if (!ret)
		ret = change(r, &rec, fd);
close_fd:
	close(fd); /* and with it both locks */
	return ret;
}

/* The answer's kvset, from the record (prev: the owner just broken). */
static int answer_record(struct request *r, const struct lock_record *rec,
			 const char *prev)
{
	struct vxhs_kvset_builder b;
	int len;

	free(r->buf);
	r->buf = malloc(ANSWER_SIZE);
	if (!r->buf)
		return -ENOMEM;
	vxhs_kvset_begin(&b, r->buf, ANSWER_SIZE);
	vxhs_kvset_add_u64(&b, VXHS_LOCK_KEY_EPOCH, rec->epoch);
	vxhs_kvset_add_bool(&b, VXHS_LOCK_KEY_HELD, rec->held);
	vxhs_kvset_add_string(&b, VXHS_LOCK_KEY_OWNER, rec->owner);
	if (prev)
		vxhs_kvset_add_string(&b, VXHS_LOCK_KEY_PREV, prev);
	vxhs_kvset_add_u64(&b, VXHS_LOCK_KEY_SINCE, rec->since);
	vxhs_kvset_add_u32(&b, VXHS_LOCK_KEY_TAG, rec->tag);
	len = vxhs_kvset_end(&b);
	if (len < 0)
		return len;
	r->out_payload = (uint64_t)len;
	return 0;
}

static int acquire(struct request *r, struct lock_record *rec, int fd)
{
	char owner[VXHS_LOCK_OWNER_MAX + 1], prev[VXHS_LOCK_OWNER_MAX + 1];
	uint64_t token = r->hdr.io_remote_hdl;
	uint32_t tag = (uint32_t)r->hdr.io_offset;
	int ret;

	/* Checked before the record changes: a name goes into logs. */
	memcpy(owner, r->buf, r->hdr.payload_size);
	owner[r->hdr.payload_size] = 0;
	/* Its own lock at the epoch it holds (a gateway that failed over to
	 * this agent, or asks again): kept, not broken. */
	if (rec->held && token == rec->epoch && !strcmp(owner, rec->owner)) {
		if (rec->tag != tag) {
			rec->tag = tag;
			ret = record_write(fd, rec);
			if (ret)
				return ret;
		}
		return answer_record(r, rec, "");
	}
	if (rec->epoch == UINT64_MAX)
		return -EOVERFLOW;
	snprintf(prev, sizeof(prev), "%s", rec->held ? rec->owner : "");
	rec->epoch++;
	rec->held = true;
	rec->tag = tag;
	rec->since = (uint64_t)time(NULL);
	snprintf(rec->owner, sizeof(rec->owner), "%s", owner);
	ret = record_write(fd, rec);
	if (ret)
		return ret;
	slog(r->s, r->hdr.target, r->hdr.opcode, LOG_NOTICE,
	     "vdisk %s: lock taken by %s (connection %s, tag %u) at epoch %llu%s%s",
	     r->hdr.target, owner, r->s->peer, (unsigned int)tag,
	     (unsigned long long)rec->epoch, prev[0] ? ", broken from " : "",
	     prev);
	return answer_record(r, rec, prev);
}

static int release(struct request *r, struct lock_record *rec, int fd)
{
	int ret;

	if (r->hdr.io_remote_hdl != rec->epoch)
		return -ESTALE;
	if (!rec->held)
		return 0;
	rec->held = false;
	ret = record_write(fd, rec);
	if (ret)
		return ret;
	slog(r->s, r->hdr.target, r->hdr.opcode, LOG_NOTICE,
	     "vdisk %s: lock released by %s at epoch %llu", r->hdr.target,
	     rec->owner, (unsigned long long)rec->epoch);
	return 0;
}

int lock_execute(struct request *r)
{
	struct lock_record rec;
	int ret, fd;

	switch (r->hdr.opcode) {
	case VXHS_OP_LOCK_ACQUIRE:
		ret = sink_to_buffer(&r->sink);
		if (ret)
			return ret;
		if (!vxhs_lock_owner_valid((const char *)r->buf,
					   r->hdr.payload_size)) {
			slog(r->s, r->hdr.target, r->hdr.opcode, LOG_WARNING,
			     "%s: LOCK_ACQUIRE of vdisk %s refused: the owner's name is not printable ASCII without spaces",
			     r->s->peer, r->hdr.target);
			return -EINVAL;
		}
		return record_change(r, acquire);
	case VXHS_OP_LOCK_RELEASE:
		return record_change(r, release);
	}
	/* A query reads a record that an acquire may be writing: under the
	 * gate, as writes read it. */
	fd = record_open(r->vd->id);
	if (fd < 0)
		return fd;
	ret = gate_take(fd, true);
	if (!ret)
		ret = record_read(fd, r->vd->id, &rec, false);
	close(fd);
	return ret ? ret : answer_record(r, &rec, NULL);
}
