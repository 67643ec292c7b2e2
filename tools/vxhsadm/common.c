// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* What every vxhsadm command shares: errors, agent options, waiting. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsadm.h"

void errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("vxhsadm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vxhsadm %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vxhsadm %s --help'.\n", cmd);
	exit(EXIT_USAGE);
}

void help_or_die(const char *cmd, const char *help, int opt)
{
	if (opt != 'h')
		die_usage(cmd, "unknown option");
	fputs(help, stdout);
	exit(EXIT_OK);
}

void expect_args(const char *cmd, int got, int want)
{
	if (got != want)
		die_usage(cmd, "expected %d argument%s, got %d", want,
			  want == 1 ? "" : "s", got);
}

uint64_t parse_size_arg(const char *cmd, const char *what, const char *text)
{
	uint64_t v;
	int ret = vxhs_parse_size(text, &v);

	if (ret)
		die_usage(cmd, "%s '%s' is %s (examples: 4096, 64K, 10G)", what,
			  text, ret == -ERANGE ? "too large" : "not a size");
	return v;
}

void conn_args_init(struct conn_args *a, const char *cmd)
{
	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	vxhs_open_opts_init(&a->opts);
}

bool conn_args_parse(const char *cmd, struct conn_args *a, int opt,
		     const char *arg)
{
	uint64_t v;

	switch (opt) {
	case 'a':
		if (a->opts.nr_agents == VXHS_MAX_AGENTS)
			die_usage(cmd, "at most %d agents", VXHS_MAX_AGENTS);
		if (vxhs_agent_addr_parse(arg,
					  &a->opts.agents[a->opts.nr_agents]))
			die_usage(cmd, "%s", vxhs_errmsg());
		a->opts.nr_agents++;
		return true;
	case 1001:
		if (vxhs_parse_uint(arg, 1, 64, &v))
			die_usage(cmd, "--conns takes a number from 1 to 64");
		a->opts.conns_per_agent = (unsigned int)v;
		return true;
	case 1002:
		if (vxhs_parse_uint(arg, 1, 3600000, &v))
			die_usage(cmd,
				  "--timeout takes milliseconds, 1 to 3600000");
		a->opts.io_timeout_ms = (unsigned int)v;
		return true;
	case 1003:
		a->opts.tls_dir = arg;
		return true;
	case 1005:
		a->opts.allow_plaintext = true;
		return true;
	case 1006:
		a->opts.kernel_tls = true;
		return true;
	case 1004:
		if (vxhs_parse_uint(arg, 1, 64, &v))
			die_usage(cmd,
				  "--io-threads takes a number from 1 to 64");
		a->io_threads = (unsigned int)v;
		return true;
	case 'v':
		a->verbose = true;
		return true;
	}
	return false;
}

/*
 * TCP agents get TLS: --tls-dir, else the default directory if it exists;
 * plaintext only with --allow-plaintext. Exits with a usage error
 * otherwise, as the handler refuses such a LUN.
 */
static void check_transport(struct conn_args *a)
{
	const char *dir = getenv("VXHS_TLS_DIR");
	char name[VXHS_HOST_MAX + 16];
	struct stat st;
	unsigned int i;

	for (i = 0; i < a->opts.nr_agents; i++)
		if (!a->opts.agents[i].is_unix)
			break;
	if (a->opts.tls_dir && a->opts.allow_plaintext)
		die_usage(a->cmd, "both --tls-dir and --allow-plaintext given: "
				  "choose one");
	if (a->opts.kernel_tls &&
	    (i == a->opts.nr_agents || a->opts.allow_plaintext))
		die_usage(a->cmd, "--kernel-tls is for TLS to TCP agents, and "
				  "there is none");
	if (i == a->opts.nr_agents || a->opts.tls_dir ||
	    a->opts.allow_plaintext)
		return;
	if (!dir || !dir[0])
		dir = VXHSADM_DEFAULT_TLS_DIR;
	if (!stat(dir, &st) && S_ISDIR(st.st_mode)) {
		a->opts.tls_dir = dir;
		return;
	}
	vxhs_agent_addr_format(&a->opts.agents[i], name, sizeof(name));
	die_usage(a->cmd,
		  "agent %s is reached over TCP, and no TLS credentials are "
		  "set up: put ca.pem, cert.pem and key.pem in %s or give "
		  "--tls-dir; or --allow-plaintext to send data unencrypted "
		  "to an unauthenticated agent",
		  name, dir);
}

int open_ctx(struct conn_args *a, struct vxhs_ctx **ctx)
{
	struct vxhs_ctx_opts copts;
	int ret;

	if (!a->opts.nr_agents) {
		vxhs_agent_addr_parse(VXHSADM_DEFAULT_AGENT,
				      &a->opts.agents[0]);
		a->opts.nr_agents = 1;
	}
	check_transport(a);
	vxhs_ctx_opts_init(&copts);
	copts.log_level = a->verbose ? LOG_DEBUG : LOG_ERR;
	copts.io_threads = a->io_threads;
	ret = vxhs_ctx_new(&copts, ctx);
	if (ret)
		errorf("%s", vxhs_errmsg());
	return ret;
}

int open_vdisk(struct conn_args *a, const char *id, struct vxhs_ctx **ctx,
	       struct vxhs_vdisk **vd)
{
	int ret;

	ret = open_ctx(a, ctx);
	if (ret)
		return ret;
	ret = vxhs_vdisk_open(*ctx, id, &a->opts, vd);
	if (ret) {
		errorf("%s", vxhs_errmsg());
		vxhs_ctx_free(*ctx);
		return ret;
	}
	return 0;
}

void close_vdisk(struct vxhs_ctx *ctx, struct vxhs_vdisk *vd)
{
	vxhs_vdisk_close(vd);
	vxhs_ctx_free(ctx);
}

void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->pending = 0;
	w->result = 0;
}

void waiter_add(struct waiter *w)
{
	pthread_mutex_lock(&w->lock);
	w->pending++;
	pthread_mutex_unlock(&w->lock);
}

void waiter_done(void *opaque, int result)
{
	struct waiter *w = opaque;

	pthread_mutex_lock(&w->lock);
	if (result && !w->result)
		w->result = result;
	w->pending--;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int waiter_wait(struct waiter *w, unsigned int max)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	while (w->pending > max)
		pthread_cond_wait(&w->cond, &w->lock);
	ret = w->result;
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void progress_start(struct progress *p, enum progress_mode mode,
		    const char *what, uint64_t total)
{
	p->tty = isatty(STDERR_FILENO);
	p->on = total &&
		(mode == PROGRESS_ON ||
		 (mode == PROGRESS_AUTO && p->tty && total >= (16u << 20)));
	p->what = what;
	p->total = total;
	p->start_ns = p->last_ns = vxhs_now_ns();
	p->done = 0;
}

/* "1 h 02 min", "3 min 05 s", "12 s" */
static void format_duration(uint64_t s, char *buf, size_t len)
{
	if (s >= 3600)
		snprintf(buf, len, "%llu h %02llu min",
			 (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
	else if (s >= 60)
		snprintf(buf, len, "%llu min %02llu s",
			 (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%llu s", (unsigned long long)s);
}

void progress_update(struct progress *p, uint64_t done)
{
	uint64_t now = vxhs_now_ns(), elapsed = now - p->start_ns;
	uint64_t every = p->tty ? 200 * NSEC_PER_MSEC : 5000 * NSEC_PER_MSEC;
	double rate;
	char left[32] = "-";

	p->done = done;
	if (!p->on || now - p->last_ns < every || !elapsed)
		return;
	p->last_ns = now;
	rate = (double)done * 1e9 / (double)elapsed; /* bytes per second */
	if (rate >= 1 && done <= p->total)
		format_duration((uint64_t)((double)(p->total - done) / rate),
				left, sizeof(left));
	fprintf(stderr, "%s%s: %llu / %llu MiB (%u%%), %.1f MiB/s, %s left%s",
		p->tty ? "\r" : "", p->what, (unsigned long long)(done >> 20),
		(unsigned long long)(p->total >> 20),
		(unsigned int)(done * 100 / p->total), rate / (1 << 20), left,
		p->tty ? "  " : "\n");
}

/* On a terminal the line goes; in a log a last line says how it went. */
void progress_end(struct progress *p)
{
	uint64_t elapsed = vxhs_now_ns() - p->start_ns;
	char took[32];

	if (p->on && p->tty) {
		fprintf(stderr, "\r%*s\r", 78, "");
	} else if (p->on) {
		format_duration(elapsed / NSEC_PER_SEC, took, sizeof(took));
		fprintf(stderr, "%s: %llu MiB in %s, %.1f MiB/s\n", p->what,
			(unsigned long long)(p->done >> 20), took,
			elapsed ? (double)p->done * 1e9 / (double)elapsed /
					  (1 << 20) :
				  0.0);
	}
}

int unix_request(const char *path, const char *line, size_t len,
		 const char *hint)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		errorf("cannot connect to %s: %m (%s)", path, hint);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (write(fd, line, len) != (ssize_t)len) {
		errorf("cannot send to %s: %m", path);
		close(fd);
		return -1;
	}
	return fd;
}
