/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * The vxhs client library: asynchronous access to vdisks on HyperScale
 * storage agents (QNIO v34) and on vxhsd.
 *
 * Threading: a context runs I/O threads of its own (opts.io_threads), with
 * every signal blocked; each vdisk is served by one of them. All submission
 * functions may be called from any thread, never block and never sleep;
 * completion callbacks run on the I/O thread and must not block either (they
 * may submit more requests).
 *
 * Errors: every function returns 0 or a negative errno. When a call fails,
 * vxhs_errmsg() returns a message with context for the calling thread.
 * Completion callbacks receive 0 or a negative errno:
 *   -EIO        media error reported by the agent
 *   -ERANGE     offset/length beyond the end of the vdisk
 *   -ENOENT     the agent does not have this vdisk
 *   -EACCES     the agent refused access
 *   -EAGAIN     the agent (or our retry queue) is out of resources; retry
 *   -EOPNOTSUPP the agent does not implement the operation
 *   -EPROTO     the agent answered in a way the protocol does not allow
 *   -ETIMEDOUT  the request timed out on every attempt
 *   -ENOTCONN   failover gave up: the vdisk is failed until reopened
 *   -EKEYREJECTED TLS failed (the message says which check); as with
 *               other transport failures, open tries the next agent
 *   -ECANCELED  the vdisk was closed with the request outstanding
 *   -EILSEQ     COMPARE AND WRITE: the data differed
 *   -ESTALE     fenced: the vdisk's lock is someone else's (vxhs_lock_*)
 *   other       passed through from the agent
 */
#ifndef VXHS_CLIENT_H
#define VXHS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wire.h" /* limits: VXHS_CAW_MAX, VXHS_LOCK_OWNER_MAX */

#ifdef __cplusplus
extern "C" {
#endif

#define VXHS_MAX_AGENTS 4
#define VXHS_HOST_MAX	256

struct vxhs_ctx;
struct vxhs_vdisk;

/* Where an agent listens: TCP host and port, or a UNIX socket path. */
struct vxhs_agent_addr {
	bool is_unix;
	uint16_t port;
	char host[VXHS_HOST_MAX]; /* name, IPv4/IPv6 literal, or path */
};

/*
 * Parses "host", "host:port", "[v6addr]", "[v6addr]:port", a bare IPv6
 * literal, "unix:/path" or "/path". Never resolves names.
 */
int vxhs_agent_addr_parse(const char *text, struct vxhs_agent_addr *addr);
/* Formats for messages: "host:port", "[v6]:port" or "unix:/path". */
void vxhs_agent_addr_format(const struct vxhs_agent_addr *addr, char *buf,
			    size_t len);

typedef void (*vxhs_log_fn)(void *opaque, int level, const char *msg);

struct vxhs_ctx_opts {
	/* syslog levels (LOG_ERR...LOG_DEBUG); messages above are dropped */
	int log_level;
	/* NULL logs to stderr */
	vxhs_log_fn log;
	void *log_opaque;
	/* I/O threads, each with its own connections to the agents it
	 * serves; 0: one per CPU, at most 4. At most 64. */
	unsigned int io_threads;
};

void vxhs_ctx_opts_init(struct vxhs_ctx_opts *opts);
int vxhs_ctx_new(const struct vxhs_ctx_opts *opts, struct vxhs_ctx **ctx);
/* All vdisks must be closed first. */
void vxhs_ctx_free(struct vxhs_ctx *ctx);
unsigned int vxhs_ctx_io_threads(const struct vxhs_ctx *ctx);

enum vxhs_vdisk_event {
	VXHS_EVENT_QUIESCE, /* transport lost; requests wait for failover */
	VXHS_EVENT_ACTIVE,  /* I/O flows again (possibly to another agent) */
	VXHS_EVENT_FAILED,  /* deadline passed (before the waiting requests
			     * complete with -ENOTCONN); reopen to recover */
};

typedef void (*vxhs_event_fn)(struct vxhs_vdisk *vd,
			      enum vxhs_vdisk_event event, unsigned int agent,
			      void *opaque);

#define VXHS_DEADLINE_NEVER 0xffffffffu

struct vxhs_open_opts {
	struct vxhs_agent_addr agents[VXHS_MAX_AGENTS];
	unsigned int nr_agents;		 /* 1..4 */
	unsigned int conns_per_agent;	 /* default 8, at most 64 */
	uint32_t max_io_size;		 /* split size, default 1 MiB */
	unsigned int connect_timeout_ms; /* default 5000 */
	unsigned int io_timeout_ms;	 /* per attempt, default 30000 */
	/* default 60000; VXHS_DEADLINE_NEVER: requests wait for an agent
	 * however long it takes (within retry_queue_max) */
	unsigned int failover_deadline_ms;
	unsigned int retry_queue_max; /* requests, default 4096 */
	unsigned int max_attempts;    /* per request, default 5 */
	/*
	 * TLS to TCP agents: a directory holding ca.pem (the CA that signs
	 * the agents, optional crl.pem), cert.pem and key.pem (ours; mode
	 * 600). Agents are verified against the CA and the host name or
	 * address they were named by. UNIX sockets never use TLS. The
	 * string is copied. NULL: TCP agents are refused unless
	 * allow_plaintext.
	 */
	const char *tls_dir;
	/* TCP without TLS: no encryption, no authentication of the agent
	 * (logged once per agent). */
	bool allow_plaintext;
	vxhs_event_fn event; /* may be NULL */
	void *event_opaque;
	/*
	 * Memory the caller's buffers live in, shared with agents on UNIX
	 * sockets that announce VXHS_FEAT_SHARED_MEMORY: a descriptor of it
	 * (kept open by the caller until the vdisk is closed; the library
	 * passes it to the agent, which maps its first shm_len bytes), and
	 * where it is mapped here. READs and WRITEs whose buffers all lie
	 * in it name them instead of carrying the data. shm_len 0: none.
	 */
	int shm_fd;
	void *shm_base;
	size_t shm_len;
	/*
	 * With TLS 1.3 and AES-GCM, let the kernel's TLS (where it has
	 * one) make the records sent to the agent and read those it sends
	 * once the handshake is done: no record layer or copy in user
	 * space, and the NIC's TLS offload where there is one. false: the
	 * library makes and reads them itself, with GnuTLS's ciphers (with
	 * TLS 1.2, GnuTLS does).
	 */
	bool kernel_tls;
};

void vxhs_open_opts_init(struct vxhs_open_opts *opts);

/*
 * Opens a vdisk: tries the agents in order until one answers VDISK_STAT for
 * it. Blocks the caller (resolves names, connects) for at most about
 * nr_agents * (connect_timeout_ms + io_timeout_ms); never call it from a
 * completion callback.
 */
int vxhs_vdisk_open(struct vxhs_ctx *ctx, const char *vdisk_id,
		    const struct vxhs_open_opts *opts, struct vxhs_vdisk **vd);

/*
 * Fails every outstanding request with -ECANCELED (their callbacks run
 * before this returns) and frees the vdisk. Connections shared with other
 * vdisks stay open. May be called from any thread but a completion callback.
 */
void vxhs_vdisk_close(struct vxhs_vdisk *vd);

struct vxhs_vdisk_info {
	uint64_t size;	       /* bytes, from the last VDISK_STAT */
	uint64_t features;     /* VXHS_FEAT_* the agent advertised */
	uint64_t agent_max_io; /* agent's limit, 0 if not advertised */
	uint32_t max_io_size;  /* our split size */
	unsigned int agent;    /* index of the agent in use */
	char agent_name[64];   /* "vxhs_agent" if advertised */
};

void vxhs_vdisk_get_info(struct vxhs_vdisk *vd, struct vxhs_vdisk_info *info);

/*
 * Local reads (extension, docs/protocol.md): the vdisk's file, opened
 * read-only by the agent now serving it, which must be on a UNIX socket
 * and have announced VXHS_FEAT_LOCAL_READ. The caller may pread it at the
 * vdisk's offsets instead of calling vxhs_readv, and closes it. Writes
 * still go to the agent, and the file shows them once they complete. It
 * reads the file the agent had when asked: after a failover (the
 * QUIESCE event) stop using it. Blocks for at most io_timeout_ms; never
 * call it from a completion callback. A descriptor, or a negative errno
 * (-EOPNOTSUPP: not offered).
 */
int vxhs_vdisk_open_local(struct vxhs_vdisk *vd);

/*
 * Local writes (extension, docs/protocol.md): the vdisk's file opened
 * read-write into *file and its lock record opened read-only into
 * *record, from the agent now serving it (a UNIX socket, and
 * VXHS_FEAT_LOCAL_WRITE announced; the identity needs write rights). The
 * caller may pwrite the file only as that section says: holding the
 * record's gate, under the lock's epoch (vxhs_lock_epoch), never past
 * the vdisk's size. After a failover, as for local reads. Blocks like
 * vxhs_vdisk_open_local. 0 (the caller closes both), or a negative errno
 * (-EOPNOTSUPP: not offered; -EACCES: no write rights) and -1 in both.
 */
int vxhs_vdisk_open_local_rw(struct vxhs_vdisk *vd, int *file, int *record);
const char *vxhs_vdisk_id(const struct vxhs_vdisk *vd);

typedef void (*vxhs_done_fn)(void *opaque, int result);

/*
 * Each returns 0 when the request was queued, and then calls done exactly
 * once; or a negative errno without calling it. Buffers must stay valid,
 * and a write's unchanged (large ones are sent from its pages), until done
 * runs; the iovec array itself is copied.
 */
int vxhs_readv(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
	       uint64_t offset, vxhs_done_fn done, void *opaque);
int vxhs_writev(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		uint64_t offset, vxhs_done_fn done, void *opaque);
/* Extensions: -EOPNOTSUPP unless the agent advertised them. */
int vxhs_flush(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque);
int vxhs_write_zeroes(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len,
		      vxhs_done_fn done, void *opaque);
int vxhs_discard(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len,
		 vxhs_done_fn done, void *opaque);
/*
 * COMPARE AND WRITE (extension): iov holds 2 * len bytes, the data to
 * compare with the vdisk's [offset, offset + len), then the data written
 * there if they are equal; len is 1 to VXHS_CAW_MAX bytes. The agent does
 * it atomically against every other COMPARE AND WRITE of the range, from
 * any client, on any agent of the same storage. When the data differ, done
 * gets -EILSEQ and *miscompare (unless NULL) the offset of the first
 * differing byte from offset. A request retried after a lost connection
 * may find its own write there and report a difference.
 */
int vxhs_compare_and_write(struct vxhs_vdisk *vd, const struct iovec *iov,
			   int iovcnt, uint64_t offset, uint64_t len,
			   uint64_t *miscompare, vxhs_done_fn done,
			   void *opaque);
/*
 * WRITE SAME (extension VXHS_FEAT_WRITE_SAME): the agent writes the
 * pattern (1 to VXHS_SAME_PATTERN_MAX bytes, read until done runs) over
 * [offset, offset + len) again and again; len is a non-zero multiple of
 * pattern_len. Only the pattern crosses the network. The agent works in
 * pieces, but the request still has one I/O timeout: keep len to what
 * the storage writes well within it.
 */
int vxhs_write_same(struct vxhs_vdisk *vd, const void *pattern,
		    size_t pattern_len, uint64_t offset, uint64_t len,
		    vxhs_done_fn done, void *opaque);
/*
 * COPY (extension VXHS_FEAT_COPY): the agent copies len bytes (1 to
 * VXHS_COPY_MAX) at src_offset of vdisk src_id, which it must serve too,
 * to offset of this vdisk; no data crosses the network. src_id may be
 * this vdisk: overlapping ranges copy as if the source were read first.
 * The caller needs read access to the source and write access here.
 */
int vxhs_copy(struct vxhs_vdisk *vd, const char *src_id, uint64_t src_offset,
	      uint64_t offset, uint64_t len, vxhs_done_fn done, void *opaque);
/*
 * The vdisk's exclusive lock (extension VXHS_FEAT_LOCK), kept by the agents
 * in the storage: every agent of the vdisk sees it, and it stays with its
 * owner when the handle fails over to another agent.
 *
 * vxhs_lock_acquire takes it for owner (1 to VXHS_LOCK_OWNER_MAX printable
 * ASCII bytes, no space; copied) with an application tag (tcmu-runner's
 * ALUA group), breaking any other owner's hold; from then on this handle's
 * writes, zeroing, discards, flushes and COMPARE AND WRITEs carry its
 * epoch. Writes made under an epoch that has moved on (the lock was taken
 * by someone else) complete with -ESTALE, and so do writes without one
 * while someone holds the lock: they never reach the vdisk, even those
 * already queued in an agent. Acquiring again while holding keeps the
 * epoch. info, unless NULL, gets the lock's state when done runs (it must
 * stay valid until then); its broken member names the owner this call
 * took the lock from.
 *
 * vxhs_lock_release lets the lock go (-ESTALE when it had moved on); the
 * handle writes without an epoch again. vxhs_lock_query reads the lock.
 *
 * vxhs_lock_resume lets a new handle carry on a lock owner took through
 * another handle (a gateway reopening the vdisk): if the lock is still
 * owner's at epoch, this handle's writes carry epoch from then on, with no
 * new epoch and nothing fenced; if it is not, -ESTALE and the handle is
 * unchanged. The caller must have held epoch on this same vdisk.
 */
struct vxhs_lock_info {
	uint64_t epoch; /* grows with every change of owner; 0: never taken */
	bool held;
	uint16_t tag;
	uint64_t since; /* taken at, seconds since 1970 */
	char owner[VXHS_LOCK_OWNER_MAX + 1];
	char broken[VXHS_LOCK_OWNER_MAX + 1];
};

int vxhs_lock_acquire(struct vxhs_vdisk *vd, const char *owner, uint16_t tag,
		      struct vxhs_lock_info *info, vxhs_done_fn done,
		      void *opaque);
int vxhs_lock_release(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque);
int vxhs_lock_query(struct vxhs_vdisk *vd, struct vxhs_lock_info *info,
		    vxhs_done_fn done, void *opaque);
int vxhs_lock_resume(struct vxhs_vdisk *vd, const char *owner, uint64_t epoch,
		     vxhs_done_fn done, void *opaque);
/* The epoch this handle holds, 0 when none (never taken, released, or
 * found lost: a write came back fenced). */
uint64_t vxhs_lock_epoch(struct vxhs_vdisk *vd);

/* Refreshes the information vxhs_vdisk_get_info returns (size, features). */
int vxhs_stat(struct vxhs_vdisk *vd, vxhs_done_fn done, void *opaque);

/*
 * The same requests, waiting for the result: 0 or the negative errno the
 * completion would have received. They block the calling thread; from a
 * completion callback they fail with -EDEADLK.
 */
int vxhs_readv_sync(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		    uint64_t offset);
int vxhs_writev_sync(struct vxhs_vdisk *vd, const struct iovec *iov, int iovcnt,
		     uint64_t offset);
int vxhs_flush_sync(struct vxhs_vdisk *vd);
int vxhs_write_zeroes_sync(struct vxhs_vdisk *vd, uint64_t offset,
			   uint64_t len);
int vxhs_discard_sync(struct vxhs_vdisk *vd, uint64_t offset, uint64_t len);
int vxhs_stat_sync(struct vxhs_vdisk *vd);
int vxhs_compare_and_write_sync(struct vxhs_vdisk *vd, const struct iovec *iov,
				int iovcnt, uint64_t offset, uint64_t len,
				uint64_t *miscompare);
int vxhs_write_same_sync(struct vxhs_vdisk *vd, const void *pattern,
			 size_t pattern_len, uint64_t offset, uint64_t len);
int vxhs_copy_sync(struct vxhs_vdisk *vd, const char *src_id,
		   uint64_t src_offset, uint64_t offset, uint64_t len);

int vxhs_lock_acquire_sync(struct vxhs_vdisk *vd, const char *owner,
			   uint16_t tag, struct vxhs_lock_info *info);
int vxhs_lock_release_sync(struct vxhs_vdisk *vd);
int vxhs_lock_query_sync(struct vxhs_vdisk *vd, struct vxhs_lock_info *info);
int vxhs_lock_resume_sync(struct vxhs_vdisk *vd, const char *owner,
			  uint64_t epoch);

/* The calling thread's message for its last failed call. */
const char *vxhs_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif /* VXHS_CLIENT_H */
