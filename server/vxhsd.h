/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * vxhsd internals: an index of what each file exports.
 *
 * Threads: the main thread accepts connections and handles signals; each
 * event loop thread (loop.c) owns a share of the connections and does all
 * their reading; worker threads (workers.c) execute requests against the
 * vdisk files and send the answers themselves under the connection's
 * tx_lock, leaving any unsent rest to the loop.
 *
 * Lock order: session.tx_lock, then store.c's lock (a request freed under
 * tx_lock drops its vdisk). workers.c's lock is never held while taking
 * another.
 */
#ifndef VXHSD_H
#define VXHSD_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common/list.h"
#include "lockrec/lockrec.h"
#include "vxhs/wire.h"

#define VXHSD_VERSION VXHS_VERSION

/* config.c */
struct vxhsd_config {
	char *directory;
	char **listen; /* NULL-terminated; NULL = any */
	unsigned int port;
	char *unix_socket;
	bool no_tcp;
	bool no_local_reads;  /* LOCAL_OPEN refused (local_open.c) */
	bool no_local_writes; /* LOCAL_OPEN_RW refused */
	bool tcp_sendfile;    /* answer_from_cache on TCP too */
	bool kernel_tls;      /* the kernel makes the TLS records we send */
	bool io_uring;	      /* cached reads in batches (ring_reads.c) */
	unsigned int workers;
	unsigned int loops;
	uint64_t max_io;
	unsigned int max_conns;
	unsigned int max_unauth;	 /* TCP connections not yet in */
	unsigned int max_conns_per_addr; /* TCP connections of one address */
	unsigned int max_conns_per_identity;
	unsigned int unix_reserved; /* slots only the UNIX socket may use */
	unsigned int max_reqs_per_conn;
	uint64_t memory_limit;
	uint64_t identity_memory;      /* one identity's share */
	unsigned int idle_timeout_s;   /* 0: never */
	unsigned int header_timeout_s; /* a message started, then silence */
	unsigned int send_timeout_s;   /* answers not moving */
	uint64_t min_payload_rate;     /* bytes per second */
	uint64_t max_conn_buffer;      /* request bytes held per connection */
	char *control_socket;	       /* fault injection; NULL: off */
	char *status_socket;	       /* vxhsadm status; NULL: off */
	char *tls_dir;
	bool allow_plaintext;
	char *acl_file;
	char *port_file;
	int log_level;
};

int config_load(struct vxhsd_config *cfg, int argc, char **argv);
void config_free(struct vxhsd_config *cfg);

/* log.c */
void log_init(int level);
void vlog(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A line about a connection (and a vdisk and opcode, NULL and -1 when
 * none): in the journal it carries PEER, IDENTITY, VDISK and OP. */
struct session;
void slog(const struct session *s, const char *vdisk, int opcode, int level,
	  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int log_level_parse(const char *name);
/* What a peer sent, fit for a log line: bytes other than printable ASCII
 * as \xNN (a peer must not be able to forge a line of its own). */
const char *log_escape(const char *in, char *out, size_t len);

/* At most burst lines per interval; then one line saying how many were
 * left out. */
struct ratelimit {
	pthread_mutex_t lock;
	uint64_t interval_ns, window_start;
	unsigned int burst, printed, missed;
};

#define RATELIMIT_INIT(secs, n)                                             \
	{                                                                   \
		.lock = PTHREAD_MUTEX_INITIALIZER,                          \
		.interval_ns = (uint64_t)(secs)*1000000000ull, .burst = (n) \
	}

/* True when this line may be logged; *missed gets the lines left out
 * since the last one that was. */
bool ratelimit_ok(struct ratelimit *rl, unsigned int *missed);

/* The gate requests that change a vdisk pass (lock.c explains it). */
struct fence {
	pthread_mutex_t mutex;
	pthread_cond_t cond;	     /* a hold ended, or taking did */
	int fd;			     /* the lock record; -1 until needed */
	void *map;		     /* of the record, for mincore; or NULL */
	_Atomic uint64_t state;	     /* held, open, requests inside */
	_Atomic uint64_t idle_since; /* the last request left */
	_Atomic uint64_t looked_at;  /* last look for a waiting acquire */
	bool taking;		     /* a thread is taking the gate: mutex */
	bool taking_nowait;	     /* ... and will not wait to: mutex */
	bool no_nowait;		     /* record refuses RWF_NOWAIT: taker */
	bool listed;		     /* on lock.c's idle list: its lock */
	struct list_head idle_link;
	struct lock_record rec; /* read when the hold began */
};

struct request;
struct vdisk;
/* The thread that ends idle holds; without it none lingers. */
int fences_start(void);
void fences_stop(void);
void fence_init(struct fence *f);
void fence_destroy(struct fence *f);
/* Before r changes its vdisk: 0 (then fence_leave after it), -ESTALE
 * (fenced: the lock is not r's), -EAGAIN (!wait: it would have to wait),
 * or another negative errno. */
int fence_enter(struct request *r, bool wait);
void fence_leave(struct vdisk *vd);
/* LOCK_ACQUIRE, LOCK_RELEASE and LOCK_QUERY, on a worker. */
int lock_execute(struct request *r);
/* fence.c: ends this agent's hold of the gate at once if nobody is
 * inside, else when the last one leaves; lets no more in (an acquire of
 * this agent waits). */
void hold_close(struct fence *f);

/* lock_record.c: the record beside the vdisk (lockrec/lockrec.h) */
/* Opens (creating) vdisk id's record, mode O_RDWR or O_RDONLY: the fd,
 * or a negative errno. */
int record_open(const char *id, int mode);
/* The record (an empty file: never locked); -EUCLEAN when both copies
 * are damaged (logged); nowait: -EAGAIN rather than wait for the disk. */
int record_read(int fd, const char *id, struct lock_record *rec, bool nowait);
/* Writes the next version and makes it durable (fdatasync). */
int record_write(int fd, struct lock_record *rec);

/* store.c: the vdisk directory */
struct vdisk {
	char id[VXHS_TARGET_SIZE];
	int fd;
	dev_t dev;
	ino_t ino;
	_Atomic uint64_t size;
	atomic_bool no_nowait[2]; /* RWF_NOWAIT unsupported: [0] read,
				   * [1] write (ext4, tmpfs) */
	/* Until then (ns), its writes go to the workers: one on a network
	 * thread waited (request.c). */
	_Atomic uint64_t loop_writes_after;
	/* One write at a time from the network threads (request.c). */
	pthread_mutex_t loop_write_lock;
	/* A read-only mapping never touched, only asked (mincore) which
	 * pages are cached; NULL when mmap failed. */
	void *map;
	size_t map_len;
	unsigned int refs;  /* under the store lock */
	unsigned int users; /* connections using it, under the store lock */
	bool stale;	    /* replaced or removed on disk */
	struct fence fence;
};

int store_open(const char *dir);
void store_close(void);
/* Returns a referenced vdisk or a negative errno (-ENOENT, -EACCES...). */
int store_get(const char *id, struct vdisk **out);
int store_lookup_cached(const char *id, struct vdisk **out);
void store_put(struct vdisk *vd);
/* The vdisk directory, to open a vdisk's file once more by its id. */
int store_dirfd(void);
/* A connection starts or stops using a referenced vdisk: attach takes a
 * reference of its own, detach drops it. */
void store_attach(struct vdisk *vd);
void store_detach(struct vdisk *vd);
/* Re-reads the file's size; on a replaced or removed file returns -ENOENT
 * (the next store_get opens the new one). */
int store_refresh(struct vdisk *vd);

/* acl.c: who a peer is, and what it may do */
#define IDENT_NAMES_MAX 16

struct identity {
	enum { IDENT_UNIX, IDENT_TLS, IDENT_PLAIN } kind;
	/* "uid:0", or a certificate's "dn:...", "dns:...", "ip:..." */
	char *names[IDENT_NAMES_MAX];
	unsigned int nr_names;
	char label[160]; /* for the log */
};

enum acl_right { ACL_NONE, ACL_RO, ACL_RW };

int acl_load(const char *path);
void acl_free(void);
bool acl_enabled(void);
/* Bumped by every (re)load: rights cached before it are stale. */
unsigned int acl_generation(void);
enum acl_right acl_rights(const struct identity *id, const char *vdisk);
bool acl_allows(enum acl_right right, uint16_t opcode);
/* Whether any rule gives this identity rights on some vdisk. */
bool acl_any_rights(const struct identity *id);

/* payload_pipe.c: large write payloads from socket to file, spliced */
#define PIPES_PER_PAYLOAD 4

struct payload_pipe {
	int fd[PIPES_PER_PAYLOAD][2];	  /* read end, write end */
	uint64_t held[PIPES_PER_PAYLOAD]; /* bytes in each */
	unsigned int nr;		  /* pipes open (0: none) */
	unsigned int head;		  /* first not yet emptied */
	uint64_t size;			  /* each pipe's size */
};

static inline bool payload_pipe_active(const struct payload_pipe *p)
{
	return p->nr;
}

bool payload_pipe_wanted(uint64_t len);
/* 0, or a negative errno (-EINVAL: len not worth a pipe): the payload
 * then goes to a buffer. */
int payload_pipe_open(struct payload_pipe *p, uint64_t len);
void payload_pipe_close(struct payload_pipe *p);
/* Splices up to len bytes from the socket: bytes moved, 0 at the end of
 * the stream, -EAGAIN (socket empty), -ENOBUFS (pipes full) or -errno. */
ssize_t payload_pipe_fill(struct payload_pipe *p, int sock, size_t len);
/* Copies bytes already read into the pipes; returns how many fit. */
size_t payload_pipe_put(struct payload_pipe *p, const void *buf, size_t len);
uint64_t payload_pipe_held(const struct payload_pipe *p);
/* Reads the len bytes the pipes hold into buf (-EIO: they hold another
 * count). */
int payload_pipe_take(struct payload_pipe *p, void *buf, size_t len);
/* Splices the len bytes the pipes hold to fd at off; done says how many
 * went (-EINVAL: the file system takes no splice; the rest is still held
 * for payload_pipe_take). */
int payload_pipe_to_file(struct payload_pipe *p, int fd, uint64_t off,
			 uint64_t len, uint64_t *done);

/* payload_sink.c: where a write payload goes as it arrives */
struct session;

struct payload_sink {
	uint8_t *buf;		  /* always there: the pipes may spill */
	uint64_t len;		  /* payload bytes expected */
	uint64_t got;		  /* payload bytes taken */
	struct payload_pipe pipe; /* large plaintext payloads, spliced */
};

/* Chooses buffer or pipes for a payload of len bytes into buf. */
void sink_open(struct payload_sink *k, struct session *s, uint8_t *buf,
	       uint64_t len);
void sink_close(struct payload_sink *k);
/* Takes n bytes already read; -errno when the session cannot go on. */
int sink_put(struct payload_sink *k, struct session *s, const void *p,
	     size_t n);
/* Whether the rest is best read from the socket straight into the sink. */
bool sink_wants_direct(const struct payload_sink *k);
/* Reads from the session's socket into the sink: same contract as read. */
ssize_t sink_fill(struct payload_sink *k, struct session *s);
static inline bool sink_done(const struct payload_sink *k)
{
	return k->got == k->len;
}
/* Writes the payload to fd at off (a worker's job). */
int sink_write_to(struct payload_sink *k, int fd, uint64_t off);
/* Moves what the pipes hold into the buffer: all of it is in buf then. */
int sink_to_buffer(struct payload_sink *k);
int pwrite_all(int fd, const uint8_t *buf, uint64_t len, uint64_t off);

/* usage.c: what each connection does with each vdisk */
struct vdisk_use {
	struct vdisk *vd;
	_Atomic uint64_t ops[2];   /* answered: [0] reads, [1] writes,
				    * zeroings and discards */
	_Atomic uint64_t bytes[2]; /* read, written */
	_Atomic uint64_t errors;   /* error answers */
};

struct session;
/* The session's use of vd, attached on first sight; NULL on no memory
 * (then nothing is counted). */
struct vdisk_use *usage_get(struct session *s, struct vdisk *vd);
void usage_count(struct vdisk_use *u, uint16_t opcode, uint64_t bytes,
		 int32_t err);
/* The session ends: detaches every vdisk it used. */
void usage_release(struct session *s);

/* request.c */
struct request {
	struct list_head link; /* session's work queue, then its txq */
	struct session *s;
	struct vxhs_hdr hdr;
	struct vdisk *vd;
	struct vdisk_use *use; /* counts its answer; NULL: not counted */
	uint8_t *buf;	       /* write payload in, read data out */
	uint64_t buf_len;
	bool buf_pooled;  /* buf from request.c's pool of small buffers */
	uint64_t charged; /* memory charged to the budget (budget.c) */
	int32_t err;	  /* validation result (wire err) */
	uint8_t out[VXHS_HDR_SIZE]; /* answer header */
	uint64_t out_payload;
	bool out_file;		  /* payload goes from the page cache */
	bool truncate;		  /* fault injection: cut the answer short */
	struct payload_sink sink; /* write payload in */
	uint64_t done;		  /* zeroing, WRITE_SAME, COPY: bytes done */
	struct vdisk *src;	  /* COPY: the source, referenced */
	uint64_t src_off;	  /* COPY: where in it */
	uint64_t miscompare;	  /* COMPARE_AND_WRITE: first byte differing */
	uint64_t sent;		  /* bytes of header + payload sent */
	/* LOCAL_OPEN(_RW): sent with the answer's header; -1: none */
	int out_fd[2];
	/* VXHS_FLAG_BY_REF: the region and its iovecs (region.c) */
	struct region *region;
	struct iovec *ref_iov;
	int ref_cnt;
};

/* Bytes a request costs beyond its buffer, for the budget. */
#define REQUEST_OVERHEAD (sizeof(struct request) + 2 * VXHS_HDR_SIZE)

/*
 * Everything a peer sends is checked here first, then the access list for
 * the session's peer (decoded: what vxhs_hdr_decode said). Returns a wire
 * err (0: go ahead), points why at a reason for the log, and sets buf_len
 * to the buffer the request needs (0 when refused).
 */
int32_t request_admit(struct session *s, const struct vxhs_hdr *h, int decoded,
		      const char **why, uint64_t *buf_len);
/* What request_try_inline did with a request. */
enum inline_result {
	INLINE_NOT,	 /* nothing: a worker's job */
	INLINE_ANSWERED, /* ran it; its answer is built */
	INLINE_QUEUED,	 /* a read queued into the ring: request_read_done */
};
enum inline_result request_try_inline(struct request *r);
/* A read made by the ring took n bytes or failed (-errno): true when r is
 * answered, false when it is a worker's job. */
bool request_read_done(struct request *r, ssize_t n);
/* Runs (a piece of) the request; false: more pieces to go, run it again. */
bool request_execute(struct request *r);
/* Whether executing r may take long (flush, zeroing, opening a vdisk). */
bool request_may_block(const struct request *r);
/* A request with a buffer of buf_len bytes (none for 0), zeroed but for
 * the buffer; NULL when out of memory. */
struct request *request_alloc(uint64_t buf_len);
/* Gives r a new buffer of len bytes for an answer built in place,
 * instead of its payload's: 0 or -ENOMEM. */
int request_answer_buf(struct request *r, size_t len);
void request_free(struct request *r);
int32_t errno_to_wire(int err);
/* All len bytes at off, or -ERANGE where the file ends first. */
int vdisk_pread(struct vdisk *vd, uint8_t *buf, uint64_t len, uint64_t off);

/* copy.c: COPY, a piece per call (0 done, 1 more to go, or -errno) */
int copy_piece(struct request *r);

/* region.c: payloads by reference into a UNIX peer's shared region */
/* A receive that keeps the descriptors the peer passes (SCM_RIGHTS). */
ssize_t region_recv(struct session *s, void *buf, size_t len);
/* Header checks: wire err 0, or why not. */
int32_t region_check_add(const struct vxhs_hdr *h, const char **why);
int32_t region_check_refs(const struct vxhs_hdr *h, const char **why);
/* REGION_ADD, on the loop thread as it is parsed: requests after it on
 * the stream find the region. It takes the descriptor passed before it,
 * also when refused already (err). */
int32_t region_add(struct session *s, const struct vxhs_hdr *h, int32_t err,
		   const char **why);
/* The segment list in r->buf, checked, as r->ref_iov: 0, -ENXIO (no such
 * region) or -EINVAL. Once, when the request is complete on the stream. */
int region_resolve(struct request *r);
void region_release(struct request *r);
void regions_drop_idle(struct session *s, uint64_t now);
/* Makes the session's regions inaccessible here (any thread); whether it
 * had any. */
bool regions_revoke(struct session *s);
/* Lets go of the socket from any thread: the regions revoked first, then
 * shut both ways (the loop closes the session when it sees it). */
void session_shutdown(struct session *s);
void regions_free(struct session *s);

/* answer.c: answers, from a buffer or the page cache, and their sending */
/* Whether r's read data goes from the page cache (sendfile): 1 it does;
 * 0 not for r (its size, TLS); -1 it would, but some pages are not
 * cached (a worker reads them: no need to ask the cache again). */
int answer_from_cache(struct request *r);
/* Queues answers; sends what the socket takes. Caller holds tx_lock. */
void answers_queue_locked(struct session *s, struct list_head *reqs);
void answers_flush_locked(struct session *s);
/* Drops every queued answer of a closing session. Caller holds tx_lock. */
void answers_drop_locked(struct session *s);
/* Queues the answers in reqs, all of s (from any thread but the loop's
 * own, which holds no reference of its own to lend). */
void session_answer(struct session *s, struct list_head *reqs);
/* r is answered, or will never be: frees it. Caller holds tx_lock. */
void answer_release(struct session *s, struct request *r);

/*
 * session.c: one client connection, an explicit state machine for what
 * it is receiving:
 *
 *            TLS done                 header, no payload
 *  HANDSHAKE ---------> HEADER <-----------------------+
 *   (TLS only)           |  |  \                        |
 *                        |  |   +-- limits --> THROTTLED (vxhsd waits
 *                        |  |        <-- room --+         for its own
 *                        |  | refused, payload            answers)
 *                        |  +---------> DISCARD ---------+ payload read
 *                        | admitted, payload             | and dropped
 *                        +------------> PAYLOAD ---------+ payload in
 *
 *  any state --(EOF, error, bad marker, timeout, drop)--> CLOSING
 *
 * Timers by state: HANDSHAKE must complete within --header-timeout of
 * the accept, a partial HEADER within that of its first byte, PAYLOAD
 * and DISCARD within --header-timeout plus the payload at
 * --min-payload-rate; THROTTLED has no receive clock (vxhsd is the one
 * waiting). Answers that do not move
 * for --send-timeout close the session in any state; an authenticated
 * session with nothing in flight closes after --idle-timeout.
 */
enum rx_state {
	RX_HANDSHAKE,
	RX_HEADER,
	RX_PAYLOAD,
	RX_DISCARD,
	RX_THROTTLED,
	RX_CLOSING,
};

struct account;
struct server_creds;

/*
 * Lock order: session.tx_lock, then workers.c's queue lock, then budget.c's
 * lock, then use_lock, then store.c's lock. Which fields each protects:
 *
 *   loop thread only:   rxbuf, rx_*, rx_req, ready, for_workers, timers
 *                       (started, last_rx, header_since, rx_deadline),
 *                       acl_*, denials, link, again_link, no_pipes
 *   written by the loop under tx_lock, read under it elsewhere:
 *                       state, events
 *   tx_lock:            txq, tx_blocked
 *   workers.c's lock:   work, work_link, nr_running
 *   atomic:             refs, nr_reqs, buffered, tx_failed, tx_stall_since,
 *                       stop_reading, drop, revoked
 *   set once before the session is shared: fd, peer, ident, acct, tls
 */
struct session {
	int fd;
	struct loop *loop;
	atomic_uint refs;
	char peer[80];
	char addr[64]; /* peer address without port ("unix" for UNIX) */
	bool is_unix;
	struct list_head link;	     /* loop->sessions */
	struct list_head again_link; /* loop->again, or itself */
	struct list_head all_link;   /* admission.c's list of all */
	uint32_t events;
	enum rx_state state;
	atomic_uint nr_reqs;   /* received, not yet answered */
	uint64_t started;      /* accepted at */
	uint64_t last_rx;      /* last bytes received at */
	uint64_t header_since; /* first byte of an incomplete header, or 0 */
	uint64_t rx_deadline;  /* PAYLOAD, DISCARD: all of it by then */

	uint8_t *rxbuf;
	size_t rx_start, rx_end;
	struct list_head ready;	      /* answered inline, not yet queued */
	uint64_t ready_bytes;	      /* their answers' size on the wire */
	uint64_t ring_bytes;	      /* reads in the loop's ring: their size */
	unsigned int ready_count;     /* answers ready or in the ring */
	struct list_head for_workers; /* parsed, not yet handed over */
	struct request *rx_req;	      /* receiving its payload */
	uint64_t rx_left;	      /* DISCARD: bytes still to drop */
	bool no_pipes; /* payloads came in pieces too small to splice */

	pthread_mutex_t tx_lock;
	struct list_head txq;
	bool tx_blocked; /* waiting for EPOLLOUT */
	/* A send failed: the loop closes the session. Set under tx_lock,
	 * read without it by the loop on every event. */
	atomic_bool tx_failed;
	/* Answers waiting and none sent since (0: none waiting). */
	_Atomic uint64_t tx_stall_since;

	/* workers.c: requests waiting for a worker, and how many run */
	struct list_head work;
	struct list_head work_link;
	unsigned int nr_running;

	_Atomic uint64_t buffered; /* memory charged to this session */

	struct identity ident;
	struct account *acct; /* budget.c: the identity's account */
	bool authenticated;
	char acl_vdisk[VXHS_TARGET_SIZE]; /* last vdisk checked... */
	enum acl_right acl_right;	  /* ...the rights on it... */
	unsigned int acl_gen;		  /* ...under this access list */
	unsigned int denials;

	/* It takes several answers in one TLS record (VXHS_FLAG_TLS_PACKS
	 * seen): until then, one answer per record. */
	atomic_bool peer_packs;

	/* usage.c: the vdisks it names (use_lock) */
	pthread_mutex_t use_lock;
	struct vdisk_use **uses;
	unsigned int nr_uses, max_uses;
	_Atomic(struct vdisk_use *) last_use; /* the last one asked for */

	/* fault injection (fault.c) */
	atomic_bool stop_reading;
	atomic_bool dropped;
	/* A reload took its rights or its certificate (admission.c). */
	atomic_bool revoked;

	gnutls_session_t tls;		/* NULL: plaintext */
	struct server_creds *tls_creds; /* tls.c: what it started with */
	struct vxhs_tls_io *tls_io;

	/* region.c: a descriptor passed, awaiting its REGION_ADD (loop
	 * thread only), and the regions (region_lock; workers use them) */
	int pending_fd;
	bool has_regions;
	pthread_mutex_t region_lock;
	struct region *regions[VXHS_REGION_MAX];
};

enum session_kind { SESSION_UNIX, SESSION_TCP };

struct session *session_new(int fd, const char *peer, const char *addr,
			    enum session_kind kind);
void session_put(struct session *s);
void session_on_events(struct session *s, uint32_t events);
void session_send_ready(struct session *s);
/* A read of r's made by the ring: n bytes, or -errno. */
void session_read_done(struct request *r, ssize_t n);
void session_close(struct session *s, const char *why);
/* The loop's tick: timers, throttles, requests from other threads. */
void session_tick(struct session *s, uint64_t now);
/* Caller holds tx_lock: the events to watch for the current state. */
void session_update_watch(struct session *s);

/* budget.c: memory for requests, in shares, and accounts per identity */
struct account {
	char key[160];
	unsigned int refs;	/* sessions holding it */
	unsigned int conns;	/* authenticated sessions */
	_Atomic uint64_t bytes; /* memory charged */
	struct account *next;	/* hash chain */
};

/* The account of a key (identity or address); NULL on no memory. */
struct account *account_get(const char *key);
void account_put(struct account *a);
/* Charges bytes for a request of s: false when it must wait. */
bool budget_charge(struct session *s, uint64_t bytes);
void budget_release(struct session *s, uint64_t bytes);
uint64_t budget_in_use(void);

/* admission.c: who may connect, and the list of every session */
/* At accept, for a new session: 0, or -EBUSY/-EACCES with why set (the
 * caller logs it, rate-limited, and frees the session). */
int admit_register(struct session *s, const char **why);
/* Once the peer is known (TLS: after the handshake): 0, or -EBUSY or
 * -EACCES with why set. */
int admit_identity(struct session *s, const char **why);
void admit_unregister(struct session *s);
/* After a reload: closes the sessions the new access list gives no rights
 * or whose certificate the new CA or CRL refuses; returns how many. */
unsigned int admit_recheck(void);
/* Calls fn on every session whose peer or identity matches pattern
 * ("all" or NULL for every one); returns how many. */
unsigned int admit_for_each(const char *pattern,
			    void (*fn)(struct session *, void *), void *arg);

/* loop.c */
struct loop {
	pthread_t thread;
	int epfd;
	int wakefd;
	struct list_head sessions; /* loop thread only */
	pthread_mutex_t inbox_lock;
	struct list_head inbox; /* new sessions from the acceptor */
	/* Sessions whose input is already read (TLS records read ahead, which
	 * no socket event will announce) but whose turn ended: read on the
	 * next round, after the others. Loop thread only. */
	struct list_head again;
	atomic_uint nr_sessions;
	struct ring_reads *reads; /* NULL: without io_uring */
};

int loops_start(unsigned int n);
void loops_stop(void);
void loops_add_session(struct session *s);
int loop_watch(struct session *s, uint32_t events);
/* s has input buffered that no event will announce: read it next round. */
void loop_again(struct session *s);
/* Stop reading new requests everywhere; true once every answer is out. */
void loops_drain(void);
bool loops_drained(void);
void loops_request_started(void);
void loops_request_done(void);
unsigned int loops_nr_sessions(void);

/* listener.c */
struct listener {
	int fd;
	bool is_unix;
	bool activated; /* passed by systemd: not ours to unlink */
	char name[128];
};

int listeners_open(struct listener **out, unsigned int *n);
void listeners_close(struct listener *ls, unsigned int n);
/* The TCP port of the first TCP listener, 0 if none. */
unsigned int listeners_tcp_port(const struct listener *ls, unsigned int n);
/* unix_socket.c: a listening UNIX socket at path, mode set through
 * umask_bits from its creation; what names it in messages. The fd or a
 * negative errno. The private one is for its owner only. */
int listen_unix_mode(const char *path, mode_t umask_bits, int backlog,
		     const char *what);
int listen_unix_private(const char *path, const char *what);

/* status.c: vxhsadm status */
int status_open(const char *path);
void status_adopt(int fd); /* passed by systemd */
int status_fd_get(void);
void status_accept(void);
void status_close(void);

/* tls.c */
int tls_server_init(const char *dir);
/* Loads the credentials again (SIGHUP): new sessions get them; 0, or a
 * negative errno (logged) and the old ones stay. */
int tls_server_reload(const char *dir);
void tls_server_exit(void);
bool tls_server_enabled(void);
int session_tls_start(struct session *s);
void session_tls_end(struct session *s);
/* Whether the peer's certificate still verifies against the credentials in
 * force (after a reload: a new CA or CRL). */
bool session_tls_still_trusted(struct session *s);
/* 1 done, 0 not yet, -1 failed (logged) */
int session_tls_handshake(struct session *s);
bool session_tls_wants_write(const struct session *s);
bool session_tls_has_pending(const struct session *s);
ssize_t session_send(struct session *s, const struct iovec *iov, int n);
ssize_t session_recv(struct session *s, void *buf, size_t len);

/* ring_reads.c: a network thread's cached reads, in batches */
#define RING_READS_MAX 64
struct ring_reads;
/* NULL without io_uring (logged once). */
struct ring_reads *ring_reads_new(void);
void ring_reads_free(struct ring_reads *rr);
/* Queues r's read of iov (making those queued first when the ring is
 * full); false without a ring. */
bool ring_read_queue(struct ring_reads *rr, struct request *r,
		     const struct iovec *iov, int cnt);
/* Makes the queued reads; session_read_done learns each one's result. */
void ring_reads_make(struct ring_reads *rr);

/* workers.c */
int workers_start(unsigned int n);
void workers_stop(void);
/* Moves the requests in reqs to s's queue for the workers. */
void workers_queue(struct session *s, struct list_head *reqs);
/* A closing session: moves its requests no worker has started to out. */
void workers_forget(struct session *s, struct list_head *out);

/* fault.c: fault injection driven through --control (off without it) */
extern atomic_bool faults_armed; /* any rule in force: no inline I/O */
int fault_control_open(const char *path);
void fault_control_close(void);
int fault_control_fd(void);
void fault_control_accept(void);
/* Before r executes: 0, or a wire err to answer with; may sleep (delay)
 * and mark r->truncate. */
int32_t fault_before(struct request *r);
/* Answers held (pause): true while paused. */
bool fault_paused(void);
void fault_count(uint16_t opcode, bool on_loop);
void fault_count_sendfile(void);
void fault_count_ring(void);
/* The extensions VDISK_STAT offers: all, but those "hide" took away. */
uint64_t fault_features(void);

/* local_open.c */
/* Of VXHS_FEAT_LOCAL_READ and VXHS_FEAT_LOCAL_WRITE, those announced and
 * served now (on UNIX sockets); every other bit set. */
uint64_t local_features_offered(void);
/* LOCAL_OPEN(_RW): opens what the answer carries: 0 or a negative errno. */
int local_open_execute(struct request *r);
/* Sends r's header (nothing of it sent yet) with its descriptors. */
ssize_t local_send_answer(struct session *s, struct request *r);

extern struct vxhsd_config config;
extern atomic_bool draining;

#endif /* VXHSD_H */
