/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
/*
 * The handler's configuration string (docs/handler.md has the grammar):
 *
 *   vxhs/<vdisk>[@<agent>[+<agent>...]][;<option>=<value>...]
 *
 * and the agent groups file that names longer agent lists. Pure parsing: no
 * sockets, no tcmu-runner, so the unit tests and the fuzzer drive it alone.
 */
#ifndef VXHS_HANDLER_CFGSTRING_H
#define VXHS_HANDLER_CFGSTRING_H

#include <stdbool.h>
#include <stddef.h>

#include "vxhs/client.h"
#include "vxhs/wire.h"

#define VXHS_CFG_PREFIX "vxhs/"
/* The kernel keeps at most this much of dev_config (prefix included). */
#define VXHS_CFG_MAX		255
#define VXHS_CFG_DEFAULT_SOCKET "/run/vxhsd/vxhsd.sock"
#define VXHS_CFG_GROUPS_FILE	VXHS_CONFDIR "/agents.conf"
/* Overrides VXHS_CFG_GROUPS_FILE (tests, unusual installations). */
#define VXHS_CFG_GROUPS_ENV "VXHS_AGENTS_CONF"
/* TLS credentials of TCP agents when tls= is not given, if it exists. */
#define VXHS_CFG_DEFAULT_TLS_DIR VXHS_CONFDIR "/tls"
/* Overrides VXHS_CFG_DEFAULT_TLS_DIR (tests, unusual installations). */
#define VXHS_CFG_TLS_DIR_ENV "VXHS_TLS_DIR"

#define VXHS_CFG_NAME_MAX 64
#define VXHS_CFG_PATH_MAX 192

struct vxhs_cfg {
	char vdisk[VXHS_VDISK_ID_MAX + 1];
	char group[VXHS_CFG_NAME_MAX]; /* "" unless group= was given */
	struct vxhs_agent_addr agents[VXHS_MAX_AGENTS];
	unsigned int nr_agents;
	/* TCP agents: TLS with these credentials (tls=, else the default
	 * directory), or plaintext if asked for; "" with UNIX sockets. */
	char tls_dir[VXHS_CFG_PATH_MAX];
	bool plaintext;
	/* This gateway's name in the vdisk's lock (several gateways);
	 * "": the host name. */
	char gateway[VXHS_CFG_NAME_MAX];
	/* LUNs of one tcmu-runner with the same copy domain may be named
	 * together in one EXTENDED COPY; "": only within this LUN. */
	char copy_domain[VXHS_CFG_NAME_MAX];
	/* 0: the client library's default */
	unsigned int conns;
	unsigned int connect_timeout;  /* seconds */
	unsigned int io_timeout;       /* seconds */
	unsigned int failover_timeout; /* seconds */
	unsigned int cmd_time_out;     /* tcmu-runner's own option */
	/* What commands get once failover_timeout passes without an agent
	 * (fail), or whether they wait for one without a deadline (queue). */
	enum vxhs_cfg_no_agent {
		VXHS_NO_AGENT_FAIL,
		VXHS_NO_AGENT_QUEUE
	} no_agent;
	bool default_agent; /* no agent named: the local vxhsd */
	/* The TCMU data area shared with agents on UNIX sockets that take
	 * it (default yes). */
	bool shared_memory;
	/* Cached data read from the vdisk's file, granted by an agent on a
	 * UNIX socket (default yes). */
	bool local_reads;
	/* Writes to the vdisk's file, inside its lock's gate, granted
	 * likewise (default yes). */
	bool local_writes;
	/* TLS records made by the kernel where it can (default no). */
	bool kernel_tls;
};

/*
 * Parses a full cfgstring ("vxhs/..."); reads groups_file (NULL: the
 * default, or $VXHS_AGENTS_CONF) only when group= is used, and looks for
 * the default TLS directory only for TCP agents without tls= or
 * plaintext. Returns 0, or -EINVAL with a message naming the problem in
 * err.
 */
int vxhs_cfg_parse(const char *cfgstring, const char *groups_file,
		   struct vxhs_cfg *cfg, char *err, size_t errlen);

/* Fills client open options from a parsed configuration. */
void vxhs_cfg_open_opts(const struct vxhs_cfg *cfg,
			struct vxhs_open_opts *opts);

/* "agent1, agent2" for log messages. */
void vxhs_cfg_format_agents(const struct vxhs_cfg *cfg, char *buf, size_t len);

#endif /* VXHS_HANDLER_CFGSTRING_H */
