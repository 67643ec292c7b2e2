// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Listening sockets: those systemd passes (socket activation), or our own
 * on TCP (IPv6 and IPv4) and on a UNIX socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "vxhsd.h"

#define BACKLOG 128

static int add(struct listener **ls, unsigned int *n, int fd, bool is_unix,
	       bool activated, const char *name)
{
	struct listener *l = realloc(*ls, (*n + 1) * sizeof(**ls));

	if (!l)
		return -ENOMEM;
	*ls = l;
	l[*n].fd = fd;
	l[*n].is_unix = is_unix;
	l[*n].activated = activated;
	snprintf(l[*n].name, sizeof(l[*n].name), "%s", name);
	(*n)++;
	return 0;
}

static int from_systemd_one(struct listener **ls, unsigned int *n, int fd,
			    bool is_unix)
{
	if (!is_unix &&
	    sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
		vlog(LOG_ERR,
		     "socket %d from systemd is not a listening stream socket",
		     fd);
		return -EINVAL;
	}
	if (add(ls, n, fd, is_unix, true,
		is_unix ? "systemd UNIX socket" : "systemd TCP socket"))
		return -ENOMEM;
	return 0;
}

/* A socket named "status" (vxhsd-status.socket) answers vxhsadm status. */
static int from_systemd(struct listener **ls, unsigned int *n)
{
	char **names = NULL;
	int nfds = sd_listen_fds_with_names(1, &names), served = 0, ret = 0;

	for (int i = 0; i < nfds && !ret; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		bool is_unix = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) >
			       0;

		if (is_unix && names && names[i] &&
		    !strcmp(names[i], "status")) {
			status_adopt(fd);
			continue;
		}
		ret = from_systemd_one(ls, n, fd, is_unix);
		served++;
	}
	if (names)
		for (int i = 0; i < nfds; i++)
			free(names[i]);
	free(names);
	return ret ? ret : served;
}

static int listen_tcp(struct listener **ls, unsigned int *n, const char *host)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *list, *ai;
	char port[8];
	int ret, count = 0, last = 0;

	snprintf(port, sizeof(port), "%u", config.port);
	ret = getaddrinfo(host, port, &hints, &list);
	if (ret) {
		vlog(LOG_ERR, "cannot resolve listen address '%s': %s",
		     host ? host : "*", gai_strerror(ret));
		return -EINVAL;
	}
	for (ai = list; ai; ai = ai->ai_next) {
		char name[INET6_ADDRSTRLEN + 16], addr[INET6_ADDRSTRLEN];
		int fd, on = 1;
		void *a = ai->ai_family == AF_INET6 ?
				  (void *)&((struct sockaddr_in6 *)ai->ai_addr)
					  ->sin6_addr :
				  (void *)&((struct sockaddr_in *)ai->ai_addr)
					  ->sin_addr;

		inet_ntop(ai->ai_family, a, addr, sizeof(addr));
		snprintf(name, sizeof(name),
			 ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", addr,
			 port);
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 && errno == EAFNOSUPPORT) {
			/* A host without IPv6 (or IPv4): not an error. */
			vlog(LOG_INFO, "not listening on %s: %s", name,
			     strerror(errno));
			continue;
		}
		if (fd < 0) {
			last = -errno;
			break;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		/* Separate sockets for each family, as getaddrinfo lists. */
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
				   sizeof(on));
		/* Every address or none: serving some while another
		 * program holds the port on the others would send part of
		 * the clients to it. */
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, BACKLOG) < 0) {
			last = -errno;
			vlog(LOG_ERR, "cannot listen on %s: %s", name,
			     strerror(errno));
			close(fd);
			break;
		}
		if (add(ls, n, fd, false, false, name)) {
			close(fd);
			last = -ENOMEM;
			continue;
		}
		vlog(LOG_INFO, "listening on %s", name);
		count++;
		/* With port 0, keep every family on the port the first got. */
		if (config.port == 0) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			if (!getsockname(fd, (struct sockaddr *)&ss, &len))
				config.port = ntohs(
					ss.ss_family == AF_INET6 ?
						((struct sockaddr_in6 *)&ss)
							->sin6_port :
						((struct sockaddr_in *)&ss)
							->sin_port);
			snprintf(port, sizeof(port), "%u", config.port);
			for (struct addrinfo *b = ai->ai_next; b;
			     b = b->ai_next)
				((struct sockaddr_in *)b->ai_addr)->sin_port =
					htons((uint16_t)config.port);
		}
	}
	freeaddrinfo(list);
	if (last)
		return last;
	return count ? 0 : -EADDRNOTAVAIL;
}

/* Mode 0660: root and the socket's group (docs/agent.md). */
static int listen_unix(struct listener **ls, unsigned int *n, const char *path)
{
	int fd = listen_unix_mode(path, 0117, BACKLOG, "UNIX socket");

	if (fd < 0)
		return fd;
	vlog(LOG_INFO, "listening on unix:%s", path);
	return add(ls, n, fd, true, false, path);
}

int listeners_open(struct listener **out, unsigned int *n)
{
	struct listener *ls = NULL;
	int ret;

	*n = 0;
	ret = from_systemd(&ls, n);
	if (ret > 0)
		goto done;
	if (ret < 0)
		goto fail;

	if (!config.no_tcp) {
		if (!config.listen) {
			ret = listen_tcp(&ls, n, NULL);
		} else {
			for (size_t i = 0; config.listen[i] && !ret; i++)
				ret = listen_tcp(&ls, n, config.listen[i]);
		}
		if (ret)
			goto fail;
	}
	if (config.unix_socket) {
		ret = listen_unix(&ls, n, config.unix_socket);
		if (ret)
			goto fail;
	}
	if (!*n) {
		vlog(LOG_ERR, "nothing to listen on: --no-tcp without --unix");
		ret = -EINVAL;
		goto fail;
	}
done:
	*out = ls;
	return 0;
fail:
	listeners_close(ls, *n);
	*n = 0;
	return ret;
}

void listeners_close(struct listener *ls, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (!ls[i].activated && ls[i].is_unix)
			unlink(ls[i].name);
		close(ls[i].fd);
	}
	free(ls);
}

unsigned int listeners_tcp_port(const struct listener *ls, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (ls[i].is_unix ||
		    getsockname(ls[i].fd, (struct sockaddr *)&ss, &len))
			continue;
		if (ss.ss_family == AF_INET6)
			return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}
