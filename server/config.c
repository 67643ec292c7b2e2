// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsd's options: built-in defaults, then the configuration file (glib key
 * file, group [vxhsd]), then the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common/keyfile.h"
#include "common/util.h"
#include "vxhsd.h"

#define DEFAULT_CONFIG VXHS_CONFDIR "/vxhsd.conf"

static const char usage[] =
	"Usage: vxhsd [OPTION]...\n"
	"Serve the vdisks kept as files in a directory to HyperScale (VxHS,\n"
	"QNIO v34) clients over TCP and a UNIX socket.\n"
	"\n"
	"  -c, --config=FILE        configuration file (default " DEFAULT_CONFIG
	", if present)\n"
	"  -d, --dir=DIR            vdisk directory (required)\n"
	"  -l, --listen=ADDR        TCP address to listen on; repeatable\n"
	"                           (default: every IPv6 and IPv4 address)\n"
	"  -p, --port=PORT          TCP port (default 9999; 0 picks a free one)\n"
	"  -u, --unix=PATH          also listen on this UNIX socket\n"
	"      --no-tcp             do not listen on TCP\n"
	"      --no-local-reads     do not hand clients on the UNIX socket the\n"
	"                           vdisk's file to read it themselves\n"
	"      --no-local-writes    nor to write it themselves (inside the\n"
	"                           lock's gate)\n"
	"      --tcp-sendfile       send cached reads to plaintext TCP clients\n"
	"                           with sendfile, not by copy\n"
	"      --no-io-uring        make each cached read a system call of its\n"
	"                           own, not a batch's through io_uring\n"
	"      --tls-dir=DIR        TLS on TCP: DIR holds ca.pem (signs the clients;\n"
	"                           optional crl.pem), cert.pem and key.pem (ours)\n"
	"      --kernel-tls         let the kernel's TLS make the TLS records sent,\n"
	"                           where it can, not GnuTLS\n"
	"      --allow-plaintext    serve TCP without TLS (closed labs, original\n"
	"                           clients): anyone who can connect gets in\n"
	"      --acl=FILE           access list: who may use which vdisks, ro or rw\n"
	"                           (default: everyone who gets in, read-write)\n"
	"  -t, --workers=N          I/O worker threads (default 16)\n"
	"      --loops=N            network threads (default: number of CPUs)\n"
	"      --max-io=SIZE        largest read or write accepted (default 8M)\n"
	"      --max-conns=N        connections served at once (default 1024)\n"
	"      --unix-reserved=N    of those, slots only the UNIX socket may use\n"
	"                           (default 16, at most an eighth of --max-conns)\n"
	"      --max-unauth=N       TCP connections still in the TLS handshake\n"
	"                           (default 64)\n"
	"      --max-conns-per-addr=N  TCP connections from one address (default 128)\n"
	"      --max-conns-per-identity=N  connections of one certificate name, UNIX\n"
	"                           uid or plaintext address (default 256)\n"
	"      --max-requests=N     requests in flight per connection (default 1024)\n"
	"      --memory-limit=SIZE  buffer memory for all requests (default 512M)\n"
	"      --identity-memory=SIZE  of that, what one identity may hold\n"
	"                           (default: a quarter of --memory-limit)\n"
	"      --max-conn-buffer=SIZE  request memory one connection may hold (default 64M)\n"
	"      --idle-timeout=SEC   close connections with nothing in flight that are\n"
	"                           silent this long (default 600; 0: never)\n"
	"      --header-timeout=SEC close a connection whose handshake or header is not\n"
	"                           complete this long after its first byte (default 10)\n"
	"      --min-payload-rate=SIZE  a payload must arrive within --header-timeout\n"
	"                           plus its size at this rate per second (default 1M)\n"
	"      --send-timeout=SEC   close a connection whose answers have not moved\n"
	"                           this long (default 30; 0: never)\n"
	"      --status=PATH        answer vxhsadm status on this UNIX socket\n"
	"                           (owner only; with systemd: vxhsd-status.socket)\n"
	"      --control=PATH       fault injection through this UNIX socket (tests\n"
	"                           only; docs/agent.md)\n"
	"      --port-file=FILE     write the TCP port in use to FILE once listening\n"
	"      --log-level=LEVEL    error, warning, notice, info or debug (default info)\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"Socket activation: listening sockets passed by systemd are used instead\n"
	"of --listen, --port and --unix. SIGHUP reads the access list and the TLS\n"
	"directory again (connections stay); SIGTERM finishes what is in flight\n"
	"and stops.\n";

enum {
	OPT_NO_TCP = 256,
	OPT_LOOPS,
	OPT_MAX_IO,
	OPT_MAX_CONNS,
	OPT_MAX_REQS,
	OPT_MEMORY,
	OPT_IDLE,
	OPT_PORT_FILE,
	OPT_LOG_LEVEL,
	OPT_TLS_DIR,
	OPT_PLAINTEXT,
	OPT_ACL,
	OPT_HEADER_TIMEOUT,
	OPT_CONN_BUFFER,
	OPT_UNIX_RESERVED,
	OPT_MAX_UNAUTH,
	OPT_PER_ADDR,
	OPT_PER_IDENTITY,
	OPT_IDENTITY_MEMORY,
	OPT_MIN_RATE,
	OPT_SEND_TIMEOUT,
	OPT_CONTROL,
	OPT_STATUS,
	OPT_NO_LOCAL_READS,
	OPT_NO_LOCAL_WRITES,
	OPT_TCP_SENDFILE,
	OPT_KERNEL_TLS,
	OPT_NO_IO_URING,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "dir", required_argument, NULL, 'd' },
	{ "listen", required_argument, NULL, 'l' },
	{ "port", required_argument, NULL, 'p' },
	{ "unix", required_argument, NULL, 'u' },
	{ "no-tcp", no_argument, NULL, OPT_NO_TCP },
	{ "no-local-reads", no_argument, NULL, OPT_NO_LOCAL_READS },
	{ "no-local-writes", no_argument, NULL, OPT_NO_LOCAL_WRITES },
	{ "tcp-sendfile", no_argument, NULL, OPT_TCP_SENDFILE },
	{ "kernel-tls", no_argument, NULL, OPT_KERNEL_TLS },
	{ "no-io-uring", no_argument, NULL, OPT_NO_IO_URING },
	{ "workers", required_argument, NULL, 't' },
	{ "loops", required_argument, NULL, OPT_LOOPS },
	{ "max-io", required_argument, NULL, OPT_MAX_IO },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "max-requests", required_argument, NULL, OPT_MAX_REQS },
	{ "memory-limit", required_argument, NULL, OPT_MEMORY },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "tls-dir", required_argument, NULL, OPT_TLS_DIR },
	{ "allow-plaintext", no_argument, NULL, OPT_PLAINTEXT },
	{ "acl", required_argument, NULL, OPT_ACL },
	{ "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
	{ "max-conn-buffer", required_argument, NULL, OPT_CONN_BUFFER },
	{ "unix-reserved", required_argument, NULL, OPT_UNIX_RESERVED },
	{ "max-unauth", required_argument, NULL, OPT_MAX_UNAUTH },
	{ "max-conns-per-addr", required_argument, NULL, OPT_PER_ADDR },
	{ "max-conns-per-identity", required_argument, NULL, OPT_PER_IDENTITY },
	{ "identity-memory", required_argument, NULL, OPT_IDENTITY_MEMORY },
	{ "min-payload-rate", required_argument, NULL, OPT_MIN_RATE },
	{ "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char short_opts[] = "c:d:l:p:u:t:hV";

static const char *opt_name(int opt)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

/* Applies one option, from the file or the command line. */
static int apply(struct vxhsd_config *cfg, int opt, const char *val,
		 const char *where)
{
	uint64_t v;
	int ret = 0, level;

	switch (opt) {
	case 'd':
		free(cfg->directory);
		cfg->directory = strdup(val);
		break;
	case 'l': {
		size_t n = 0;

		while (cfg->listen && cfg->listen[n])
			n++;
		cfg->listen = realloc(cfg->listen, (n + 2) * sizeof(char *));
		cfg->listen[n] = strdup(val);
		cfg->listen[n + 1] = NULL;
		break;
	}
	case 'p':
		ret = vxhs_parse_uint(val, 0, 65535, &v);
		cfg->port = (unsigned int)v;
		break;
	case 'u':
		free(cfg->unix_socket);
		cfg->unix_socket = strdup(val);
		break;
	case OPT_NO_TCP:
		cfg->no_tcp = true;
		break;
	case OPT_NO_LOCAL_READS:
		cfg->no_local_reads = true;
		break;
	case OPT_NO_LOCAL_WRITES:
		cfg->no_local_writes = true;
		break;
	case OPT_TCP_SENDFILE:
		cfg->tcp_sendfile = true;
		break;
	case OPT_KERNEL_TLS:
		cfg->kernel_tls = true;
		break;
	case OPT_NO_IO_URING:
		cfg->io_uring = false;
		break;
	case 't':
		ret = vxhs_parse_uint(val, 1, 1024, &v);
		cfg->workers = (unsigned int)v;
		break;
	case OPT_LOOPS:
		ret = vxhs_parse_uint(val, 1, 64, &v);
		cfg->loops = (unsigned int)v;
		break;
	case OPT_MAX_IO:
		ret = vxhs_parse_size(val, &v);
		if (!ret && (v < 4096 || v > (64u << 20)))
			ret = -ERANGE;
		cfg->max_io = v;
		break;
	case OPT_MAX_CONNS:
		ret = vxhs_parse_uint(val, 1, 1000000, &v);
		cfg->max_conns = (unsigned int)v;
		break;
	case OPT_MAX_REQS:
		ret = vxhs_parse_uint(val, 1, 65536, &v);
		cfg->max_reqs_per_conn = (unsigned int)v;
		break;
	case OPT_MEMORY:
		ret = vxhs_parse_size(val, &v);
		if (!ret && v < (16u << 20))
			ret = -ERANGE;
		cfg->memory_limit = v;
		break;
	case OPT_IDLE:
		ret = vxhs_parse_uint(val, 0, 86400 * 365, &v);
		cfg->idle_timeout_s = (unsigned int)v;
		break;
	case OPT_PORT_FILE:
		free(cfg->port_file);
		cfg->port_file = strdup(val);
		break;
	case OPT_TLS_DIR:
		free(cfg->tls_dir);
		cfg->tls_dir = strdup(val);
		break;
	case OPT_PLAINTEXT:
		cfg->allow_plaintext = true;
		break;
	case OPT_ACL:
		free(cfg->acl_file);
		cfg->acl_file = strdup(val);
		break;
	case OPT_HEADER_TIMEOUT:
		ret = vxhs_parse_uint(val, 1, 3600, &v);
		cfg->header_timeout_s = (unsigned int)v;
		break;
	case OPT_CONN_BUFFER:
		ret = vxhs_parse_size(val, &v);
		if (!ret && v < (1u << 20))
			ret = -ERANGE;
		cfg->max_conn_buffer = v;
		break;
	case OPT_UNIX_RESERVED:
		ret = vxhs_parse_uint(val, 0, 100000, &v);
		cfg->unix_reserved = (unsigned int)v;
		break;
	case OPT_MAX_UNAUTH:
		ret = vxhs_parse_uint(val, 1, 1000000, &v);
		cfg->max_unauth = (unsigned int)v;
		break;
	case OPT_PER_ADDR:
		ret = vxhs_parse_uint(val, 1, 1000000, &v);
		cfg->max_conns_per_addr = (unsigned int)v;
		break;
	case OPT_PER_IDENTITY:
		ret = vxhs_parse_uint(val, 1, 1000000, &v);
		cfg->max_conns_per_identity = (unsigned int)v;
		break;
	case OPT_IDENTITY_MEMORY:
		ret = vxhs_parse_size(val, &v);
		if (!ret && v < (1u << 20))
			ret = -ERANGE;
		cfg->identity_memory = v;
		break;
	case OPT_MIN_RATE:
		ret = vxhs_parse_size(val, &v);
		if (!ret && (v < 1024 || v > (1ull << 40)))
			ret = -ERANGE;
		cfg->min_payload_rate = v;
		break;
	case OPT_SEND_TIMEOUT:
		ret = vxhs_parse_uint(val, 0, 86400, &v);
		cfg->send_timeout_s = (unsigned int)v;
		break;
	case OPT_CONTROL:
		free(cfg->control_socket);
		cfg->control_socket = strdup(val);
		break;
	case OPT_STATUS:
		free(cfg->status_socket);
		cfg->status_socket = strdup(val);
		break;
	case OPT_LOG_LEVEL:
		level = log_level_parse(val);
		if (level < 0)
			ret = -EINVAL;
		else
			cfg->log_level = level;
		break;
	default:
		ret = -EINVAL;
	}
	if (ret)
		fprintf(stderr, "vxhsd: %s: invalid value '%s' for --%s%s\n",
			where, val, opt_name(opt),
			ret == -ERANGE ? " (out of range)" : "");
	return ret;
}

static const struct option *find_long(const char *name)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

/* Keys of the [vxhsd] group have the names of the long options. */
static int load_file(struct vxhsd_config *cfg, const char *path,
		     bool must_exist)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) keys = NULL;
	int ret = 0;

	if (!vxhs_keyfile_load(kf, path, &err)) {
		if (!must_exist &&
		    g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
			return 0;
		fprintf(stderr, "vxhsd: %s: %s\n", path, err->message);
		return -EINVAL;
	}
	keys = g_key_file_get_keys(kf, "vxhsd", NULL, NULL);
	for (size_t i = 0; keys && keys[i]; i++) {
		const struct option *o = find_long(keys[i]);
		g_autofree char *val = NULL;
		char where[512];

		snprintf(where, sizeof(where), "%s: key '%s'", path, keys[i]);
		if (!o || o->val == 'c' || o->val == 'h' || o->val == 'V') {
			fprintf(stderr, "vxhsd: %s: unknown key\n", where);
			return -EINVAL;
		}
		val = g_key_file_get_string(kf, "vxhsd", keys[i], NULL);
		if (!val) {
			fprintf(stderr, "vxhsd: %s: cannot read the value\n",
				where);
			return -EINVAL;
		}
		if (o->has_arg == no_argument) {
			if (!strcmp(val, "false"))
				continue;
			if (strcmp(val, "true")) {
				fprintf(stderr,
					"vxhsd: %s: expected true or false\n",
					where);
				return -EINVAL;
			}
		}
		ret = apply(cfg, o->val, val, where);
		if (ret)
			return ret;
	}
	return 0;
}

static void set_defaults(struct vxhsd_config *cfg)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	cfg->port = VXHS_DEFAULT_PORT;
	cfg->workers = 16;
	cfg->io_uring = true;
	cfg->loops = cpus > 0 ? (unsigned int)MIN(cpus, 8) : 1;
	cfg->max_io = 8u << 20;
	cfg->max_conns = 1024;
	cfg->unix_reserved = UINT_MAX; /* 16, or fewer for small --max-conns */
	cfg->max_unauth = 64;
	cfg->max_conns_per_addr = 128;
	cfg->max_conns_per_identity = 256;
	cfg->max_reqs_per_conn = 1024;
	cfg->memory_limit = 512u << 20;
	cfg->idle_timeout_s = 600;
	cfg->header_timeout_s = 10;
	cfg->send_timeout_s = 30;
	cfg->min_payload_rate = 1u << 20;
	cfg->max_conn_buffer = 64u << 20;
	cfg->log_level = LOG_INFO;
}

/* Returns 0 to run, 1 to exit successfully (help, version), <0 on error. */
int config_load(struct vxhsd_config *cfg, int argc, char **argv)
{
	const char *file = NULL;
	int opt, ret;

	set_defaults(cfg);
	/* First pass: only find the configuration file. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
	       -1) {
		if (opt == 'c')
			file = optarg;
		if (opt == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (opt == 'V') {
			printf("vxhsd %s\n", VXHSD_VERSION);
			return 1;
		}
	}
	ret = load_file(cfg, file ? file : DEFAULT_CONFIG, file != NULL);
	if (ret)
		return ret;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
	       -1) {
		if (opt == 'c')
			continue;
		if (opt == '?') {
			fprintf(stderr, "Try 'vxhsd --help'.\n");
			return -EINVAL;
		}
		ret = apply(cfg, opt, optarg, "command line");
		if (ret)
			return ret;
	}
	if (optind < argc) {
		fprintf(stderr, "vxhsd: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	if (!cfg->directory) {
		fprintf(stderr,
			"vxhsd: no vdisk directory: give --dir or 'dir=' in the configuration file\n");
		return -EINVAL;
	}
	if (cfg->tls_dir && cfg->allow_plaintext) {
		fprintf(stderr,
			"vxhsd: --tls-dir and --allow-plaintext exclude each other: TCP is either TLS or not\n");
		return -EINVAL;
	}
	if (cfg->kernel_tls && !cfg->tls_dir) {
		fprintf(stderr,
			"vxhsd: --kernel-tls without --tls-dir: there is no TLS for the kernel to take over\n");
		return -EINVAL;
	}
	if (cfg->unix_reserved == UINT_MAX)
		cfg->unix_reserved = MIN(16, cfg->max_conns / 8);
	if (cfg->unix_reserved >= cfg->max_conns) {
		fprintf(stderr,
			"vxhsd: --unix-reserved (%u) must be less than --max-conns (%u)\n",
			cfg->unix_reserved, cfg->max_conns);
		return -EINVAL;
	}
	if (!cfg->identity_memory)
		cfg->identity_memory = cfg->memory_limit / 4;
	if (cfg->identity_memory > cfg->memory_limit) {
		fprintf(stderr,
			"vxhsd: --identity-memory is more than --memory-limit\n");
		return -EINVAL;
	}
	if (cfg->acl_file)
		return acl_load(cfg->acl_file);
	return 0;
}

void config_free(struct vxhsd_config *cfg)
{
	for (size_t i = 0; cfg->listen && cfg->listen[i]; i++)
		free(cfg->listen[i]);
	free(cfg->listen);
	free(cfg->directory);
	free(cfg->unix_socket);
	free(cfg->port_file);
	free(cfg->tls_dir);
	free(cfg->acl_file);
	free(cfg->control_socket);
	free(cfg->status_socket);
	acl_free();
}
