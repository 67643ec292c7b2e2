/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/* vxhsadm: administration and diagnostics for vxhs vdisks. */
#ifndef VXHSADM_H
#define VXHSADM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vxhs/client.h"

/* Exit codes */
#define EXIT_OK	   0
#define EXIT_FAIL  1 /* the operation failed */
#define EXIT_USAGE 2 /* bad command line */

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* common.c */
void die_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The end of every option switch: -h prints help, anything else is an
 * error; both exit. */
void help_or_die(const char *cmd, const char *help, int opt)
	__attribute__((noreturn));
/* Exits with a usage error unless exactly want positional arguments. */
void expect_args(const char *cmd, int got, int want);
uint64_t parse_size_arg(const char *cmd, const char *what, const char *text);
/* Connects to a UNIX socket and sends line: the fd, or -1 after a message
 * (hint says what to check when nothing listens). */
int unix_request(const char *path, const char *line, size_t len,
		 const char *hint);

/* Options every protocol command takes, and the open vdisk they give. */
struct conn_args {
	const char *cmd; /* for messages */
	struct vxhs_open_opts opts;
	unsigned int io_threads; /* 0: the library's default */
	bool verbose;
};

void conn_args_init(struct conn_args *a, const char *cmd);
/* Handles -a/--agent, --conns, --timeout, --tls-dir, --allow-plaintext,
 * --kernel-tls, --io-threads, -v; true if opt was one. */
bool conn_args_parse(const char *cmd, struct conn_args *a, int opt,
		     const char *arg);
#define CONN_LONG_OPTS                                           \
	{ "agent", required_argument, NULL, 'a' },               \
		{ "conns", required_argument, NULL, 1001 },      \
		{ "timeout", required_argument, NULL, 1002 },    \
		{ "tls-dir", required_argument, NULL, 1003 },    \
		{ "io-threads", required_argument, NULL, 1004 }, \
		{ "allow-plaintext", no_argument, NULL, 1005 },  \
		{ "kernel-tls", no_argument, NULL, 1006 },       \
	{                                                        \
		"verbose", no_argument, NULL, 'v'                \
	}
#define CONN_SHORT_OPTS "a:v"
/* The local vxhsd, as the handler's default. */
#define VXHSADM_DEFAULT_AGENT	"unix:/run/vxhsd/vxhsd.sock"
#define VXHSADM_DEFAULT_TLS_DIR VXHS_CONFDIR "/tls"
#define CONN_HELP                                                               \
	"  -a, --agent=ADDR     agent: HOST, HOST:PORT (or HOST/PORT),\n"       \
	"                       [IPV6]:PORT or\n"                               \
	"                       unix:/PATH; repeat for failover (up to 4;\n"    \
	"                       default unix:/run/vxhsd/vxhsd.sock)\n"          \
	"      --conns=N        connections per agent (default 8)\n"            \
	"      --timeout=MS     per-request timeout (default 30000)\n"          \
	"      --tls-dir=DIR    TLS to TCP agents: ca.pem, cert.pem, key.pem\n" \
	"                       (default " VXHSADM_DEFAULT_TLS_DIR              \
	", if it exists)\n"                                                     \
	"      --allow-plaintext  TCP agents without TLS: no encryption, no\n"  \
	"                       authentication of the agent\n"                  \
	"      --kernel-tls     TLS records made and read by the kernel\n"      \
	"                       where it can (GnuTLS's otherwise)\n"            \
	"      --io-threads=N   the library's I/O threads (default: one per\n"  \
	"                       CPU, at most 4)\n"                              \
	"  -v, --verbose        log the library's messages\n"

/* A context with the options given; errors are printed. */
int open_ctx(struct conn_args *a, struct vxhs_ctx **ctx);
int open_vdisk(struct conn_args *a, const char *id, struct vxhs_ctx **ctx,
	       struct vxhs_vdisk **vd);
void close_vdisk(struct vxhs_ctx *ctx, struct vxhs_vdisk *vd);

/* Waits for asynchronous completions from the caller's thread. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pending;
	int result; /* first error */
};

void waiter_init(struct waiter *w);
void waiter_add(struct waiter *w);
void waiter_done(void *opaque, int result); /* a vxhs_done_fn */
/* Waits until at most max requests are pending; returns the first error. */
int waiter_wait(struct waiter *w, unsigned int max);

/*
 * Progress on stderr, with rate and time left: by default on a terminal
 * for long transfers; --progress also for short ones, and as a line every
 * few seconds when stderr is not a terminal (a log); --no-progress never.
 */
enum progress_mode { PROGRESS_AUTO, PROGRESS_ON, PROGRESS_OFF };

struct progress {
	bool on;
	bool tty;
	const char *what;
	uint64_t total;
	uint64_t done;
	uint64_t start_ns;
	uint64_t last_ns;
};

void progress_start(struct progress *p, enum progress_mode mode,
		    const char *what, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
void progress_end(struct progress *p);

/* dir.c, io.c, bench.c, fault.c */
int cmd_create(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_fault(int argc, char **argv);
int cmd_status(int argc, char **argv);
/* lock.c: also prints the lock's line of vxhsadm stat. */
int cmd_lock(int argc, char **argv);
int lock_print(struct vxhs_vdisk *vd);

#endif /* VXHSADM_H */
