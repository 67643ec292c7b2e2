// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsd: a HyperScale-compatible storage agent. The main thread accepts
 * connections and waits for signals; see vxhsd.h for the other threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

#define DRAIN_TIMEOUT_NS (30 * NSEC_PER_SEC)

struct vxhsd_config config;

/* The peer for the log ("[::1]:4000"), and its address alone ("::1"). */
static void describe_peer(int fd, const struct sockaddr_storage *ss, char *buf,
			  size_t len, char *addr, size_t addr_len)
{
	snprintf(addr, addr_len, "unix");
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)addr_len);
		snprintf(buf, len, "[%s]:%u", addr, ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)addr_len);
		snprintf(buf, len, "%s:%u", addr, ntohs(s4->sin_port));
	} else {
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen))
			snprintf(buf, len, "unix:pid=%d,uid=%u", cred.pid,
				 cred.uid);
		else
			snprintf(buf, len, "unix");
	}
}

/*
 * Refusals are logged at a limited rate, each reason on its own (a flood
 * over one limit must neither flood the log nor hide another limit).
 * Reasons are admission.c's constant strings, told apart by address.
 */
static void log_refusal(const char *peer, const char *why)
{
	static struct {
		const char *why;
		struct ratelimit rl;
	} reasons[8];
	unsigned int missed, i;

	for (i = 0; i < ARRAY_SIZE(reasons) - 1; i++) {
		if (reasons[i].why == why)
			break;
		if (!reasons[i].why) {
			reasons[i].why = why;
			reasons[i].rl = (struct ratelimit)RATELIMIT_INIT(10, 5);
			break;
		}
	}
	if (!ratelimit_ok(&reasons[i].rl, &missed))
		return;
	if (missed)
		vlog(LOG_WARNING, "%u more connections refused (%s)", missed,
		     why);
	vlog(LOG_WARNING, "%s: refused: %s", peer, why);
}

static void accept_one(const struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct session *s;
	const char *why;
	char peer[80], addr[64];
	int fd, on = 1, bufsize = 4 << 20;

	fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			vlog(LOG_ERR, "accept on %s: %m", l->name);
		return;
	}
	describe_peer(fd, &ss, peer, sizeof(peer), addr, sizeof(addr));
	if (!l->is_unix)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/* Room for a whole large answer or request per system call. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	s = session_new(fd, peer, addr,
			l->is_unix ? SESSION_UNIX : SESSION_TCP);
	if (!s) {
		vlog(LOG_ERR, "%s: out of memory; closing", peer);
		close(fd);
		return;
	}
	if (admit_register(s, &why)) {
		log_refusal(peer, why);
		admit_unregister(s);
		session_put(s);
		return;
	}
	vlog(LOG_DEBUG, "%s: connected via %s", peer, l->name);
	loops_add_session(s);
}

static int write_port_file(unsigned int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", config.port_file);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%u\n", port);
	if (fclose(f) || rename(tmp, config.port_file))
		return -errno;
	return 0;
}

/*
 * TCP is TLS unless plaintext was asked for explicitly, and then everyone
 * is told. Says who gets in when there is no access list.
 */
static int check_tcp_security(const struct listener *ls, unsigned int n)
{
	bool tcp = false;
	int ret;

	for (unsigned int i = 0; i < n; i++)
		tcp |= !ls[i].is_unix;
	if (tcp && config.tls_dir) {
		ret = tls_server_init(config.tls_dir);
		if (ret)
			return ret;
	} else if (tcp && !config.allow_plaintext) {
		vlog(LOG_ERR,
		     "TCP without TLS is off: give --tls-dir (docs/security.md), or --allow-plaintext for a closed lab, or --no-tcp");
		return -EPERM;
	} else if (tcp) {
		vlog(LOG_WARNING,
		     "PLAINTEXT TCP: no TLS, anyone who can reach the port can read and write %s",
		     config.acl_file ?
			     "what the access list gives 'plaintext'" :
			     "EVERY VDISK (no --acl)");
	}
	if (!config.acl_file)
		vlog(LOG_NOTICE,
		     "no access list (--acl): every client that gets in may read and write every vdisk");
	return 0;
}

/*
 * SIGHUP: the access list and the TLS credentials (certificate, key, CA,
 * CRL) are read again, for a revoked certificate or a new rule to take
 * effect without dropping the connections still allowed; those no longer
 * allowed are closed. What fails to load is logged and the old stays in
 * force.
 */
static void reload(void)
{
	unsigned int closed;
	bool ok = true;

	sd_notify(0, "RELOADING=1");
	if (config.acl_file && acl_load(config.acl_file)) {
		vlog(LOG_ERR,
		     "SIGHUP: access list %s not reloaded (above); the previous one stays",
		     config.acl_file);
		ok = false;
	}
	if (config.tls_dir && tls_server_reload(config.tls_dir)) {
		vlog(LOG_ERR,
		     "SIGHUP: TLS credentials in %s not reloaded; the previous ones stay",
		     config.tls_dir);
		ok = false;
	}
	if (ok)
		vlog(LOG_NOTICE,
		     "SIGHUP: reloaded the access list and TLS credentials");
	/* What is in force now applies to open connections too. */
	closed = admit_recheck();
	if (closed)
		vlog(LOG_NOTICE,
		     "SIGHUP: closed %u connection%s no longer allowed", closed,
		     closed == 1 ? "" : "s");
	sd_notify(0, "READY=1");
}

/* Mark the control and status sockets' events apart from the listeners'. */
static char control, status;

/* Serves until SIGTERM or SIGINT; SIGHUP reloads. */
static int serve(struct listener *ls, unsigned int n, int sigfd)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev;

	if (epfd < 0)
		return -errno;
	for (unsigned int i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.ptr = &ls[i];
		fcntl(ls[i].fd, F_SETFL, fcntl(ls[i].fd, F_GETFL) | O_NONBLOCK);
		epoll_ctl(epfd, EPOLL_CTL_ADD, ls[i].fd, &ev);
	}
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sigfd, &ev);
	if (fault_control_fd() >= 0) {
		ev.data.ptr = &control;
		epoll_ctl(epfd, EPOLL_CTL_ADD, fault_control_fd(), &ev);
	}
	if (status_fd_get() >= 0) {
		ev.data.ptr = &status;
		epoll_ctl(epfd, EPOLL_CTL_ADD, status_fd_get(), &ev);
	}

	for (;;) {
		struct epoll_event evs[16];
		int got = epoll_wait(epfd, evs, 16, -1);

		for (int i = 0; i < got; i++) {
			struct signalfd_siginfo si;

			if (evs[i].data.ptr == &control) {
				fault_control_accept();
				continue;
			}
			if (evs[i].data.ptr == &status) {
				status_accept();
				continue;
			}
			if (evs[i].data.ptr) {
				accept_one(evs[i].data.ptr);
				continue;
			}
			if (read(sigfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				reload();
				continue;
			}
			vlog(LOG_NOTICE, "%s: stopping",
			     strsignal((int)si.ssi_signo));
			close(epfd);
			return 0;
		}
	}
}

static void drain(void)
{
	uint64_t until = vxhs_now_ns() + DRAIN_TIMEOUT_NS;

	loops_drain();
	while (!loops_drained() && vxhs_now_ns() < until)
		usleep(10000);
	if (!loops_drained())
		vlog(LOG_WARNING,
		     "requests still in flight after 30 s; stopping anyway");
}

int main(int argc, char **argv)
{
	struct listener *ls = NULL;
	unsigned int nls = 0;
	sigset_t mask;
	int sigfd, ret;

	ret = config_load(&config, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	log_init(config.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* Request buffers (up to --max-io each) come from the heap and are
	 * reused, instead of a fresh mmap, page faults and zeroing for every
	 * large request; --memory-limit bounds what they add up to. */
	mallopt(M_MMAP_THRESHOLD, (int)MIN(config.max_io * 2, 128u << 20));
	mallopt(M_TRIM_THRESHOLD, (int)MIN(config.memory_limit, 1u << 30));

	/* Signals are read from a signalfd by the main thread only. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);

	ret = store_open(config.directory);
	if (ret) {
		vlog(LOG_ERR, "cannot open the vdisk directory %s: %s",
		     config.directory, strerror(-ret));
		goto free_config;
	}
	ret = listeners_open(&ls, &nls);
	if (ret)
		goto close_store;
	ret = check_tcp_security(ls, nls);
	if (ret)
		goto close_listeners;
	if (config.control_socket) {
		ret = fault_control_open(config.control_socket);
		if (ret)
			goto close_listeners;
	}
	if (config.status_socket && status_fd_get() < 0) {
		ret = status_open(config.status_socket);
		if (ret)
			goto close_listeners;
	}
	ret = fences_start();
	if (!ret)
		ret = workers_start(config.workers);
	if (!ret)
		ret = loops_start(config.loops);
	if (ret) {
		vlog(LOG_ERR, "cannot start threads: %s", strerror(-ret));
		goto stop_threads;
	}
	if (config.port_file) {
		ret = write_port_file(listeners_tcp_port(ls, nls));
		if (ret) {
			vlog(LOG_ERR, "cannot write %s: %s", config.port_file,
			     strerror(-ret));
			goto stop_threads;
		}
	}

	vlog(LOG_NOTICE, "vxhsd %s serving %s (max I/O %llu bytes, %u workers)",
	     VXHSD_VERSION, config.directory, (unsigned long long)config.max_io,
	     config.workers);
	sd_notifyf(0, "READY=1\nSTATUS=Serving %s", config.directory);
	ret = serve(ls, nls, sigfd);
	sd_notify(0, "STOPPING=1\nSTATUS=Finishing requests in flight");

	/* Stop taking connections, finish what was asked, then go. */
	listeners_close(ls, nls);
	ls = NULL;
	nls = 0;
	fault_control_close(); /* held answers and delays let go */
	drain();
stop_threads:
	loops_stop();
	workers_stop();
	fences_stop();
close_listeners:
	status_close();
	fault_control_close();
	listeners_close(ls, nls);
	tls_server_exit();
close_store:
	store_close();
free_config:
	config_free(&config);
	close(sigfd);
	return ret ? 1 : 0;
}
