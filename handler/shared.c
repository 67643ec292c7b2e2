// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * One client context (one I/O thread, one set of connection pools) serves
 * every LUN of the tcmu-runner process, so LUNs on the same agent share its
 * connections. Made when the first LUN opens and freed with the last, so an
 * idle tcmu-runner carries no thread of ours.
 */
#include <pthread.h>
#include <syslog.h>

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

int vxhs_shared_ctx_get(struct vxhs_ctx **ctx)
{
	struct vxhs_ctx_opts opts;
	int ret = 0;

	pthread_mutex_lock(&shared_lock);
	if (!shared_ctx) {
		vxhs_ctx_opts_init(&opts);
		opts.log = log_to_tcmu;
		opts.log_level = LOG_DEBUG; /* tcmu-runner filters */
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
