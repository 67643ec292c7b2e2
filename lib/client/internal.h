/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * Internals of the client library; an index of what each file exports.
 *
 * Thread model: a context has several loops (I/O threads, loop.c); every
 * agent, connection and vdisk belongs to one loop and is touched by its
 * thread only, except
 *   - loop->subq (submission queue), guarded by loop->subq_lock;
 *   - loop->nr_vdisks, an atomic for placing new vdisks (ctx.c);
 *   - vd->state and vd->nr_waiting, atomics read by submitters to fail fast;
 *   - vd->info, guarded by vd->info_lock.
 * Locks are leaves: nothing is called while holding one, so there is no
 * lock order to respect.
 *
 * Request lifecycle: a struct vxhs_req (one caller request) is split into
 * vxhs_io's (one wire request each, at most max_io_size bytes). An io is in
 * exactly one place: the submission queue (with its req), a vdisk's retry
 * queue, or a connection (its in-flight list, and its tx list until fully
 * sent). The cookie on the wire is an index into loop->slots plus a
 * generation, never a pointer.
 *
 * Vdisk states: OPENING -> ACTIVE <-> QUIESCE -> FAILOVER -> ACTIVE | FAILED,
 * see failover.c.
 *
 * Layers, each calling only downwards except through the two upcalls of
 * request.c: vdisk.c (public calls) -> request.c (requests, retries) ->
 * conn.c (a connection's state and framing) -> transport.h (the bytes:
 * plain or TLS) -> the socket.
 */
#ifndef VXHS_CLIENT_INTERNAL_H
#define VXHS_CLIENT_INTERNAL_H

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "common/list.h"
#include "common/pool.h"
#include "common/util.h"
#include "vxhs/client.h"
#include "vxhs/wire.h"

struct vxhs_loop;

#define MAX_SOCKADDRS	 4
#define RX_BUF_SIZE	 (64 * 1024)
#define DIRECT_READ_MIN	 (16 * 1024)
#define STAT_PAYLOAD_MAX (64 * 1024)
#define TICK_NS		 (50 * NSEC_PER_MSEC)
#define PROBE_RETRY_NS	 (500 * NSEC_PER_MSEC)
#define CONN_RETRY_NS	 (1000 * NSEC_PER_MSEC)

enum conn_state {
	CONN_DOWN,
	CONN_CONNECTING,
	CONN_HANDSHAKE, /* TLS */
	CONN_UP,
};

enum vd_state {
	VD_OPENING,
	VD_ACTIVE,
	VD_QUIESCE,
	VD_FAILOVER,
	VD_FAILED,
	VD_CLOSED,
};

/* TLS credentials from one directory, shared by agents and vdisks. */
struct vxhs_tls {
	atomic_uint refs;
	gnutls_certificate_credentials_t creds;
	char dir[];
};

struct vxhs_resolved {
	struct sockaddr_storage sa[MAX_SOCKADDRS];
	socklen_t sa_len[MAX_SOCKADDRS];
	unsigned int nr;
};

/*
 * A log line that repeats while an agent stays down (probes, refused
 * connections): logged at most once per LOG_LIMIT_NS per limit, with the
 * count of those left out since. I/O thread only.
 */
#define LOG_LIMIT_NS (60 * NSEC_PER_SEC)

struct log_limit {
	uint64_t until;
	unsigned int missed;
};

void loop_log_limited(struct vxhs_loop *loop, struct log_limit *l, int level,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * What a loop remembers of an agent address while it runs, beyond the
 * agent objects, which come and go with the vdisks that use them: a vdisk
 * reopened every second must not log every second.
 */
struct agent_notes {
	struct list_head link;	   /* loop->agent_notes */
	struct log_limit log_conn; /* connect failures, connections lost */
	struct log_limit log_ask;  /* probes sent to it */
	bool plaintext_warned;
	bool kernel_tls_warned; /* said why not, since it last worked */
	bool odd_err_logged;	/* an error outside the protocol's set */
	char tls_error[256];	/* last TLS failure, logged once */
	char name[VXHS_HOST_MAX + 16];
};

struct vxhs_agent {
	struct list_head link; /* loop->agents */
	struct vxhs_loop *loop;
	struct vxhs_agent_addr addr;
	char name[VXHS_HOST_MAX + 16];
	struct vxhs_resolved res;
	unsigned int sa_next; /* address for the next connect */
	unsigned int refs;
	unsigned int nr_conns;
	unsigned int rr; /* the connection taking requests (agent.c) */
	unsigned int connect_timeout_ms;
	struct vxhs_conn **conns;
	struct vxhs_tls *tls;	   /* NULL: plaintext */
	bool kernel_tls;	   /* the kernel makes the records we send */
	struct agent_notes *notes; /* the loop's, for its address */
	/* It announced VXHS_FEAT_TLS_PACK: several messages per TLS record
	 * both ways. Until then one message per record, as the original
	 * peers need (they read one message per socket event). */
	bool tls_packs;
	/* It announced VXHS_FEAT_SHARED_MEMORY (region.c). */
	bool shared_memory;
	bool shm_warned; /* it refused a region (logged once) */
};

struct vxhs_conn {
	struct vxhs_loop *loop;
	struct vxhs_agent *agent;
	bool dead; /* freed at the end of the loop */
	enum conn_state state;
	int fd;
	const struct transport_ops *tp; /* transport.h */
	bool answered;	 /* an answer came since the socket connected */
	uint32_t events; /* registered with epoll */
	uint64_t connect_deadline;
	uint64_t retry_at;	     /* earliest reconnect */
	struct list_head tx;	     /* io->tx_link, send order */
	struct list_head inflight;   /* io->link */
	unsigned int nr_ios;	     /* on inflight */
	uint64_t io_bytes;	     /* their load */
	struct list_head dirty_link; /* loop->dirty or loop->graveyard */
	struct list_head ready_link; /* loop->rx_ready */

	/* receive side: a buffer, a header being assembled, a payload */
	uint8_t *rxbuf;
	size_t rx_start, rx_end;
	bool rx_in_payload;
	struct vxhs_hdr rx_hdr;
	struct vxhs_io *rx_io; /* NULL: discard payload */
	uint64_t rx_left;
	uint8_t *rx_kv; /* STAT payload */
	size_t rx_kv_len;

	/* zerocopy.c: the caller's pages on their way to the socket */
	int zc_pipe[2];
	uint64_t zc_held; /* bytes of the head io in the pipe */
	bool zc_off;	  /* the kernel refused: writev only */

	gnutls_session_t tls_session; /* NULL: plaintext */
	struct vxhs_tls_io *tls_io;   /* its socket and record buffers */
	/* What the agent's certificate must say (GnuTLS keeps a pointer to
	 * this for the session's life): its name, the TLS server purpose. */
	gnutls_typed_vdata_st tls_verify[2];
	uint64_t tls_up_at;    /* when its handshake completed */
	const char *tls_alert; /* fatal alert the agent sent */

	/* region.c: shared regions (bit id - 1) added on this connection,
	 * and those the agent refused */
	uint64_t shm_added;
	uint64_t shm_refused;
};

struct vxhs_msg {
	struct list_head link; /* loop->subq */
	enum { MSG_REQ, MSG_OPEN, MSG_CLOSE } type;
	struct vxhs_vdisk *vd;
	struct vxhs_req *req;
	/* for MSG_OPEN / MSG_CLOSE: the caller waits for done */
	bool done;
};

struct vxhs_io {
	struct list_head link;	  /* conn->inflight or vd->retry */
	struct list_head tx_link; /* conn->tx while not fully sent */
	struct vxhs_req *req;
	struct vxhs_conn *conn; /* NULL while not on a connection */
	uint64_t offset;
	uint64_t len;
	int first_idx; /* start of our slice of req->iov */
	size_t first_off;
	struct iov_cursor cur; /* payload position while moving */
	uint64_t moved;	       /* payload bytes sent or received */
	size_t hdr_sent;
	uint32_t slot;
	unsigned int attempts;
	bool orphan;   /* vdisk closed: discard the answer */
	bool by_copy;  /* payload in pieces too small to send from pages */
	bool by_ref;   /* names the shared region instead (region.c) */
	uint64_t load; /* io_data_bytes, counted in conn->io_bytes */
	uint64_t deadline;
	uint8_t hdr[VXHS_HDR_SIZE];
};

struct vxhs_req {
	struct vxhs_msg msg;
	struct vxhs_vdisk *vd;
	struct vxhs_loop *loop; /* outlives vd: an orphan ends after it */
	bool pooled;		/* from loop->req_pool */
	uint16_t opcode;
	bool probe;	/* failover/open probe, never retried */
	bool completed; /* done callback already ran */
	bool resume;	/* LOCK_QUERY for vxhs_lock_resume */
	uint64_t offset;
	uint64_t len;
	vxhs_done_fn done;
	void *opaque;
	int result;
	unsigned int pending; /* ios not yet retired */
	unsigned int nr_ios;
	struct iovec *iov;
	int iovcnt;
	uint64_t *miscompare; /* COMPARE_AND_WRITE: where the data differed */
	/* The lock epoch it is made under (fenced opcodes), or held
	 * (LOCK_ACQUIRE, LOCK_RELEASE); 0: none. */
	uint64_t epoch;
	struct vxhs_lock_info *lock_info; /* LOCK_ACQUIRE, LOCK_QUERY */
	union {				  /* payloads the library builds */
		/* LOCK_ACQUIRE; the owner a resume expects (not sent) */
		char owner[VXHS_LOCK_OWNER_MAX];
		/* COPY: the source offset (little-endian), then its id */
		uint8_t copy_source[8 + VXHS_VDISK_ID_MAX];
	};
	/* READ, WRITE of one io on a vdisk with shared memory: the list of
	 * segments sent in place of the data (region.c), after the iovecs */
	uint8_t *refs;
	struct iovec ref_iov;
	struct vxhs_io ios[];
};

struct vxhs_vdisk {
	struct list_head link;	       /* loop->vdisks */
	struct list_head trouble_link; /* loop->troubled if !ACTIVE */
	struct vxhs_loop *loop;
	char id[VXHS_TARGET_SIZE];
	struct log_limit log_probe; /* probes while no agent takes over */
	struct vxhs_open_opts opts;
	struct vxhs_agent *agents[VXHS_MAX_AGENTS];
	unsigned int nr_agents;
	unsigned int cur; /* agent serving I/O */
	_Atomic int state;
	atomic_uint nr_waiting;	  /* requests in the retry queue */
	struct list_head retry;	  /* io->link */
	unsigned int nr_inflight; /* ios on connections */
	uint64_t trouble_start;
	unsigned int probe_idx;	  /* next agent to probe */
	unsigned int probes_left; /* OPENING: one pass */
	uint64_t next_probe_at;
	struct vxhs_conn *probe;
	struct vxhs_msg *open_msg; /* the opener waits on it */
	int open_result;
	char open_errors[1024];
	struct vxhs_resolved res[VXHS_MAX_AGENTS];
	struct vxhs_tls *tls; /* from opts.tls_dir */
	_Atomic uint32_t split_size;
	unsigned int shm_id; /* its shared region's id, 0: none (region.c) */

	pthread_mutex_t info_lock;
	struct vxhs_vdisk_info info;
	/* The epoch of the vdisk's lock this handle holds (0: none); new
	 * writes carry it. */
	_Atomic uint64_t lock_epoch;
	/* Events that happened during an inline submission, for the I/O
	 * thread to tell (loop->deferred_vds). */
	struct list_head deferred_link;
	unsigned int nr_deferred;
	struct {
		enum vxhs_vdisk_event ev;
		unsigned int cur;
	} deferred[4];
};

struct slot {
	struct vxhs_io *io;
	uint32_t gen;
	uint32_t next_free;
};

struct vxhs_loop {
	struct vxhs_ctx_opts opts;
	pthread_t thread;
	int epfd;
	int wakefd;
	atomic_bool stop;

	pthread_mutex_t subq_lock;
	pthread_cond_t subq_cond; /* MSG_OPEN/CLOSE completion */
	struct list_head subq;
	/* In (or about to enter) epoll_wait: a queued message must wake
	 * it; otherwise it finds the message before it waits again. */
	atomic_bool sleeping;

	/*
	 * Everything below, and every connection, vdisk and request of the
	 * loop, belongs to whoever holds work_lock: the I/O thread while it
	 * is not waiting for events, or a caller submitting a request
	 * inline (loop_submit).
	 */
	pthread_mutex_t work_lock;
	bool submitting_inline;
	struct list_head deferred; /* requests ended inline: req->msg.link */
	struct list_head deferred_vds; /* vdisks with events to tell */

	struct list_head agents;
	struct list_head agent_notes;
	struct list_head vdisks;
	struct list_head troubled;
	struct list_head dirty;
	struct list_head rx_ready;  /* TLS data left after a fair turn */
	struct list_head graveyard; /* dead connections */
	atomic_uint nr_vdisks;	    /* open on this loop, for ctx.c */
	uint64_t next_tick;

	struct slot *slots;
	uint32_t nr_slots;
	uint32_t free_slot; /* UINT32_MAX: none */

	/* request.c: requests of one io and a few iovecs (most I/O) */
	struct obj_pool req_pool;
	uint64_t shm_ids; /* region ids in use by its vdisks (bit id - 1) */
	struct list_head parks; /* region.c: struct park */
};

/* The public context: its I/O threads, each with its own connections. */
struct vxhs_ctx {
	struct vxhs_ctx_opts opts;
	unsigned int nr_loops;
	struct vxhs_loop *loops;
};

/* The bytes of data an io moves through the socket: a READ's or WRITE's,
 * unless it names a shared region instead. */
static inline uint64_t io_data_bytes(const struct vxhs_io *io, bool by_ref)
{
	uint16_t op = io->req->opcode;

	return !by_ref && (op == VXHS_OP_READ || op == VXHS_OP_WRITE) ?
		       io->len :
		       0;
}

/* ctx.c: the loop a new vdisk goes to, counted until vdisk_closed. */
struct vxhs_loop *ctx_pick_loop(struct vxhs_ctx *ctx);
void ctx_vdisk_closed(struct vxhs_loop *loop);

/* loop.c */
int loop_init(struct vxhs_loop *loop, const struct vxhs_ctx_opts *opts,
	      unsigned int idx);
void loop_fini(struct vxhs_loop *loop);
/* Any library I/O thread, of any context. */
bool loop_on_io_thread(void);
void loop_log(struct vxhs_loop *loop, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int loop_epoll_set(struct vxhs_loop *loop, int fd, uint32_t *cur,
		   uint32_t events, void *ptr);
void loop_submit(struct vxhs_loop *loop, struct vxhs_msg *msg);
void loop_submit_wait(struct vxhs_loop *loop, struct vxhs_msg *msg);
void loop_msg_complete(struct vxhs_loop *loop, struct vxhs_msg *msg);
int loop_slot_get(struct vxhs_loop *loop, struct vxhs_io *io, uint64_t *cookie);
void loop_slot_put(struct vxhs_loop *loop, uint32_t slot);
struct vxhs_io *loop_slot_lookup(struct vxhs_loop *loop, uint64_t cookie);

/* error.c */
int set_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* agent.c */
int agent_resolve(const struct vxhs_agent_addr *addr,
		  struct vxhs_resolved *res);
/* The agent o->agents[idx] with o's connections and TLS: shared with
 * other vdisks that name it alike. */
int agent_get(struct vxhs_loop *loop, const struct vxhs_open_opts *o,
	      unsigned int idx, const struct vxhs_resolved *res,
	      struct vxhs_tls *tls, struct vxhs_agent **out);
void agent_put(struct vxhs_agent *agent);
void agent_notes_free(struct vxhs_loop *loop);
/* The connection for a new io moving len bytes of data through the
 * socket (agent.c explains the choice). */
struct vxhs_conn *agent_pick_conn(struct vxhs_agent *agent, uint64_t len);
void agent_wake_pool(struct vxhs_agent *agent);

/* conn.c */
struct vxhs_conn *conn_new(struct vxhs_loop *loop, struct vxhs_agent *agent);
int conn_start(struct vxhs_conn *conn);
void conn_free(struct vxhs_conn *conn);
int conn_queue_io(struct vxhs_conn *conn, struct vxhs_io *io);
void conn_flush(struct vxhs_conn *conn);
void conn_handle_events(struct vxhs_conn *conn, uint32_t events);
/* One fair turn of reading (and parsing) what the agent sent. */
void conn_read(struct vxhs_conn *conn);
void conn_fail(struct vxhs_conn *conn, int err, const char *why);
void conn_check_timeouts(struct vxhs_conn *conn, uint64_t now);
void conn_destroy_dead(struct vxhs_loop *loop);
int conn_update_events(struct vxhs_conn *conn);
void conn_up(struct vxhs_conn *conn);

/* zerocopy.c: the plain transport's sends from the caller's pages */
bool zc_wanted(struct vxhs_conn *conn, const struct vxhs_io *io);
ssize_t zc_send(struct vxhs_conn *conn, struct vxhs_io *io);
void zc_end(struct vxhs_conn *conn);

/*
 * region.c: payloads by reference through a shared region, on plain UNIX
 * connections to agents that announce it.
 */
#define REF_LIST_SIZE(iovcnt) \
	(VXHS_REF_HDR_SIZE + (size_t)(iovcnt)*VXHS_REF_SEG_SIZE)
/* At open and close of a vdisk with shared memory, on the I/O thread. */
void region_id_get(struct vxhs_vdisk *vd);
void region_id_put(struct vxhs_vdisk *vd);
/* Whether io goes by reference on conn: its segment list is built, and
 * the region's REGION_ADD queued ahead of it if conn lacks it. */
bool region_use(struct vxhs_conn *conn, struct vxhs_io *io);
/* The head of conn's queue is a REGION_ADD: its header, with the
 * descriptor. Bytes sent or a negative errno. */
ssize_t region_send_add(struct vxhs_conn *conn, struct vxhs_io *io);
/* An answer to a REGION_ADD or a by-reference io: true when the io goes
 * again (the region added anew, or the data through the socket). */
bool region_answered(struct vxhs_io *io, int result);
/*
 * A connection is lost with by-reference ios the agent may be running: its
 * socket is kept, shut for writing, and those ios wait (parked) until the
 * agent shuts or closes its end, which it does only once it no longer
 * touches their pages; then they go to the retry queue. conn_fail hands
 * over its socket if there are any (true: the socket is taken).
 */
bool region_park(struct vxhs_conn *conn, int err);
/* The loop's tick: parked ios whose agent let go. */
void region_check_parks(struct vxhs_loop *loop);
/* A closing vdisk's parked ios end now; their answers never come. */
void region_orphan_parked(struct vxhs_loop *loop, struct vxhs_vdisk *vd);
void region_parks_free(struct vxhs_loop *loop);

/* tls.c: credentials (the transport itself is transport_tls) */
int tls_creds_get(const char *dir, struct vxhs_tls **out);
struct vxhs_tls *tls_creds_ref(struct vxhs_tls *tls);
void tls_creds_put(struct vxhs_tls *tls);

/*
 * request.c. A connection hands up two things only: an answer (with the
 * payload of a VDISK_STAT, NULL otherwise), and an io it lost with the
 * connection. The count of ios on connections (vd->nr_inflight) is kept
 * here alone.
 */
void req_dispatch(struct vxhs_req *req);
void io_dispatch(struct vxhs_io *io);
void io_answered(struct vxhs_io *io, int result, const uint8_t *kv,
		 size_t kv_len);
void io_transport_error(struct vxhs_io *io, int err);
/* Off its connection but still in flight for its vdisk (region.c). */
void io_park(struct vxhs_io *io);
/* Parked no more: to the retry queue as io_transport_error does. */
void io_unpark(struct vxhs_io *io, int err);
void io_retire(struct vxhs_io *io, int result);
void io_orphan(struct vxhs_io *io);
struct vxhs_req *req_alloc(struct vxhs_vdisk *vd, uint16_t opcode,
			   const struct iovec *iov, int iovcnt, uint64_t offset,
			   uint64_t len);
/* A loop's pool of requests of one io and up to REQ_POOLED_IOVS iovecs:
 * no allocation per I/O in steady state. */
#define REQ_POOLED_IOVS 16
#define REQ_POOLED_SIZE                                     \
	(sizeof(struct vxhs_req) + sizeof(struct vxhs_io) + \
	 REQ_POOLED_IOVS * sizeof(struct iovec) +           \
	 REF_LIST_SIZE(REQ_POOLED_IOVS))
#define REQ_POOL_MAX 256
void req_pool_init(struct obj_pool *pool);
/* Runs the callbacks of requests that ended during an inline submission. */
void req_finish_deferred(struct vxhs_loop *loop);

/* vdisk.c: what a VDISK_STAT answer says of the vdisk. */
int vd_stat_apply(struct vxhs_vdisk *vd, const uint8_t *kv, size_t len);
uint64_t vd_features(struct vxhs_vdisk *vd);
/* A request checked and allocated, not yet submitted (loop_submit). */
int vd_req_new(struct vxhs_vdisk *vd, uint16_t opcode, const struct iovec *iov,
	       int iovcnt, uint64_t offset, uint64_t len, vxhs_done_fn done,
	       void *opaque, struct vxhs_req **out);

/* lock.c: a lock answer (kvset) applied to its request and vdisk; what a
 * fenced request tells of the handle's lock. */
int lock_answer_apply(struct vxhs_req *req, int result, const uint8_t *kv,
		      size_t len);
void lock_fenced(struct vxhs_req *req);

/* failover.c */
void vd_set_state(struct vxhs_vdisk *vd, enum vd_state state);
void vd_quiesce(struct vxhs_vdisk *vd, int err);
/* Tells the events that happened during inline submissions. */
void vd_notify_deferred(struct vxhs_loop *loop);
void vd_step(struct vxhs_vdisk *vd, uint64_t now);
void vd_probe_done(void *opaque, int result);
void vd_fail_waiting(struct vxhs_vdisk *vd, int err);

static inline enum vd_state vd_state(struct vxhs_vdisk *vd)
{
	return (enum vd_state)atomic_load(&vd->state);
}

#endif /* VXHS_CLIENT_INTERNAL_H */
