// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One client context serves every LUN of the tcmu-runner process: a few
 * I/O threads, each with its own connection pools, the LUNs spread over
 * them. Made when the first LUN opens and freed with the last, so an idle
 * tcmu-runner carries no thread of ours. tcmu-runner passes handlers no
 * settings of their own, so the number of threads comes from the
 * environment (VXHS_IO_THREADS, set in a drop-in of tcmu-runner's unit).
 */
#include <pthread.h>
#include <stdlib.h>
#include <syslog.h>

#include "common/util.h"

#include "vxhs_handler.h"

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vxhs_ctx *shared_ctx;
static unsigned int shared_users;

/* The library's own messages (agent up/down, protocol errors). */
static void log_to_tcmu(void *opaque, int level, const char *msg)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		tcmu_err_message(NULL, "vxhs", 0, "%s\n", msg);
		break;
	case LOG_WARNING:
		tcmu_warn_message(NULL, "vxhs", 0, "%s\n", msg);
		break;
	case LOG_NOTICE:
	case LOG_INFO:
		tcmu_info_message(NULL, "vxhs", 0, "%s\n", msg);
		break;
	default:
		tcmu_dbg_message(NULL, "vxhs", 0, "%s\n", msg);
		break;
	}
}

/* 0, the library's default, unless VXHS_IO_THREADS says otherwise. */
static unsigned int io_threads(void)
{
	const char *env = getenv("VXHS_IO_THREADS");
	uint64_t n;

	if (!env || !env[0])
		return 0;
	if (vxhs_parse_uint(env, 1, 64, &n)) {
		tcmu_err_message(NULL, "vxhs", 0,
				 "VXHS_IO_THREADS='%s' is not a number from 1 "
				 "to 64; using the default (one per CPU, at "
				 "most 4)\n",
				 env);
		return 0;
	}
	return (unsigned int)n;
}

int vxhs_shared_ctx_get(struct vxhs_ctx **ctx)
{
	struct vxhs_ctx_opts opts;
	int ret = 0;

	pthread_mutex_lock(&shared_lock);
	if (!shared_ctx) {
		vxhs_ctx_opts_init(&opts);
		opts.log = log_to_tcmu;
		opts.log_level = LOG_DEBUG; /* tcmu-runner filters */
		opts.io_threads = io_threads();
		ret = vxhs_ctx_new(&opts, &shared_ctx);
	}
	if (!ret) {
		shared_users++;
		*ctx = shared_ctx;
	}
	pthread_mutex_unlock(&shared_lock);
	return ret;
}

void vxhs_shared_ctx_put(void)
{
	pthread_mutex_lock(&shared_lock);
	if (!--shared_users) {
		vxhs_ctx_free(shared_ctx);
		shared_ctx = NULL;
	}
	pthread_mutex_unlock(&shared_lock);
}
