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
#include "vxhs/wire.h"

#define VXHSD_VERSION "0.1.0"

/* config.c */
struct vxhsd_config {
	char *directory;
	char **listen; /* NULL-terminated; NULL = any */
	unsigned int port;
	char *unix_socket;
	bool no_tcp;
	unsigned int workers;
	unsigned int loops;
	uint64_t max_io;
	unsigned int max_conns;
	unsigned int max_reqs_per_conn;
	uint64_t memory_limit;
	unsigned int idle_timeout_s;   /* 0: never */
	unsigned int header_timeout_s; /* a message started, then silence */
	uint64_t max_conn_buffer;      /* request bytes held per connection */
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
int log_level_parse(const char *name);

/* store.c: the vdisk directory */
struct vdisk {
	char id[VXHS_TARGET_SIZE];
	int fd;
	dev_t dev;
	ino_t ino;
	_Atomic uint64_t size;
	atomic_bool no_nowait[2]; /* RWF_NOWAIT unsupported: [0] read,
				   * [1] write (ext4 before 6.x) */
	/* A read-only mapping never touched, only asked (mincore) which
	 * pages are cached; NULL when mmap failed. */
	void *map;
	size_t map_len;
	unsigned int refs; /* under the store lock */
	bool stale;	   /* replaced or removed on disk */
};

int store_open(const char *dir);
void store_close(void);
/* Returns a referenced vdisk or a negative errno (-ENOENT, -EACCES...). */
int store_get(const char *id, struct vdisk **out);
int store_lookup_cached(const char *id, struct vdisk **out);
void store_put(struct vdisk *vd);
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
enum acl_right acl_rights(const struct identity *id, const char *vdisk);
bool acl_allows(enum acl_right right, uint16_t opcode);

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

/* request.c */
struct session;

struct request {
	struct list_head link; /* worker queue, then session txq */
	struct session *s;
	struct vxhs_hdr hdr;
	struct vdisk *vd;
	uint8_t *buf; /* write payload in, read data out */
	uint64_t buf_len;
	int32_t err;		    /* validation result (wire err) */
	uint8_t out[VXHS_HDR_SIZE]; /* answer header */
	uint64_t out_payload;
	bool out_file; /* payload goes from the page cache (sendfile) */
	struct payload_pipe pipe; /* write payload in, instead of buf */
	uint64_t sent;		  /* bytes of header + payload sent */
};

/*
 * Everything a peer sends is checked here first, then the access list for
 * the session's peer (decoded: what vxhs_hdr_decode said). Returns a wire
 * err (0: go ahead), points why at a reason for the log, and sets buf_len
 * to the buffer the request needs (0 when refused).
 */
int32_t request_admit(struct session *s, const struct vxhs_hdr *h, int decoded,
		      const char **why, uint64_t *buf_len);
bool request_try_inline(struct request *r);
void request_execute(struct request *r);
void request_free(struct request *r);
int32_t errno_to_wire(int err);

/* session.c: one client connection */
struct session {
	int fd;
	struct loop *loop;
	atomic_uint refs;
	char peer[80];
	struct list_head link;	     /* loop->sessions */
	struct list_head again_link; /* loop->again, or itself */
	uint32_t events;
	bool closing;
	bool throttled;
	atomic_uint nr_reqs;   /* received, not yet answered */
	uint64_t started;      /* accepted at */
	uint64_t last_rx;      /* last bytes received at */
	uint64_t header_since; /* first byte of an incomplete header, or 0 */

	uint8_t *rxbuf;
	size_t rx_start, rx_end;
	struct list_head ready;	      /* answered inline, not yet queued */
	struct list_head for_workers; /* parsed, not yet handed over */
	unsigned int nr_for_workers;
	struct request *rx_req; /* receiving its payload */
	uint64_t rx_left;
	bool rx_discard;
	bool no_pipes; /* payloads came in pieces too small to splice */

	pthread_mutex_t tx_lock;
	struct list_head txq;
	bool tx_blocked; /* waiting for EPOLLOUT */
	/* A send failed: the loop closes the session. Set under tx_lock,
	 * read without it by the loop on every event. */
	atomic_bool tx_failed;

	_Atomic uint64_t buffered; /* request buffer bytes held */

	struct identity ident;
	char acl_vdisk[VXHS_TARGET_SIZE]; /* last vdisk checked... */
	enum acl_right acl_right;	  /* ...and the rights on it */
	unsigned int denials;

	gnutls_session_t tls; /* NULL: plaintext */
	bool handshaking;
	struct vxhs_tls_io *tls_io;
};

enum session_kind { SESSION_UNIX, SESSION_TCP };

struct session *session_new(int fd, const char *peer, enum session_kind kind);
void session_put(struct session *s);
void session_on_events(struct session *s, uint32_t events);
void session_send_ready(struct session *s);
void session_send_batch(struct request **reqs, unsigned int n);
void session_close(struct session *s, const char *why);
bool session_idle(struct session *s);
void session_resume(struct session *s);

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

/* tls.c */
int tls_server_init(const char *dir);
void tls_server_exit(void);
bool tls_server_enabled(void);
int session_tls_start(struct session *s);
void session_tls_end(struct session *s);
/* 1 done, 0 not yet, -1 failed (logged) */
int session_tls_handshake(struct session *s);
bool session_tls_wants_write(const struct session *s);
bool session_tls_has_pending(const struct session *s);
ssize_t session_send(struct session *s, const struct iovec *iov, int n);
ssize_t session_recv(struct session *s, void *buf, size_t len);

/* workers.c */
int workers_start(unsigned int n);
void workers_stop(void);
/* Moves n requests from reqs to the workers. */
void workers_queue(struct list_head *reqs, unsigned int n);

/* memory accounting for request buffers */
bool mem_reserve(uint64_t bytes);
void mem_release(uint64_t bytes);

extern struct vxhsd_config config;
extern atomic_bool draining;

#endif /* VXHSD_H */
