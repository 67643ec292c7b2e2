// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * handler_vxhs.so: the tcmu-runner plugin of subtype "vxhs". tcmu-runner
 * dlopen()s it and calls handler_init(), the only symbol it exports.
 *
 * nr_threads = 0: callouts run on tcmu-runner's command thread, only queue
 * requests to the client library, and the library's I/O thread completes
 * them with tcmur_cmd_complete().
 */
#include "vxhs_handler.h"

static const char cfg_desc[] =
	"VDISK[@AGENT[+AGENT...]][;OPTION=VALUE...]\n"
	"VDISK: the vdisk id (letters, digits and . _ - { }).\n"
	"AGENT: a host name or IPv4 address with an optional port written "
	"host/port (default 9999); an IPv6 address in brackets with '-' for "
	"each ':', e.g. [fd00--5]/9999; or a UNIX socket path. Up to 4 agents "
	"joined by '+', taken in order for failover. Without '@': the local "
	"vxhsd at " VXHS_CFG_DEFAULT_SOCKET ".\n"
	"OPTION: group=NAME (agents and options of group NAME in " VXHS_CFG_GROUPS_FILE
	"), conns=N (connections per agent, 1-64, "
	"default 8), connect_timeout=S (default 5), io_timeout=S (default "
	"30), failover_timeout=S (seconds to find another agent before "
	"commands fail; default 5 under the backstore's cmd_time_out), "
	"no_agent=fail|queue (queue: wait for an agent without limit), "
	"tls=DIR (TLS to TCP agents; DIR holds ca.pem, cert.pem and "
	"key.pem; default " VXHS_CFG_DEFAULT_TLS_DIR "), plaintext (TCP "
	"agents without TLS: no encryption, no authentication), "
	"gateway=NAME (this gateway's name in the vdisk's lock when several "
	"gateways export it; default the host name), shared_memory=no "
	"(data through the socket), local_reads=no (every read to the "
	"agent) and local_writes=no (every write to the agent) with an "
	"agent on a UNIX socket, kernel_tls=yes (TLS records made by "
	"the kernel where it can, not GnuTLS).\n"
	"Example: cfgstring=disk1@10.0.0.5+storage2/9999;io_timeout=10";

static struct tcmur_handler vxhs_handler = {
	.name = "HyperScale (VxHS) vdisk",
	.subtype = "vxhs",
	.cfg_desc = cfg_desc,
	.nr_threads = 0,
	.check_config = handler_check_config,
	.handle_cmd = handler_handle_cmd,
	.open = handler_open,
	.close = handler_close,
	.reconfig = handler_reconfig,
	.read = handler_read,
	.write = handler_write,
	.flush = handler_flush,
	.unmap = handler_unmap,
	.writesame = handler_writesame,
	.caw = handler_caw,
	/* Several gateways (implicit ALUA): the vdisk's lock, in the agents. */
	.lock = handler_lock,
	.unlock = handler_unlock,
	.get_lock_state = handler_get_lock_state,
};

int handler_init(void);

int handler_init(void)
{
	return tcmur_register_handler(&vxhs_handler);
}
