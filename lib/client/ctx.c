// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The context: a few I/O threads (loop.c), each with its own connection
 * pools. A vdisk is served by one of them for its whole life, the one with
 * the fewest vdisks when it opens, so many LUNs spread their TLS, copying
 * and parsing over the cores while one vdisk's requests stay in order on
 * one thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"

/* More threads than this rarely helps: the agents' disks and the network
 * run out first, and each thread has its own connections to each agent. */
#define IO_THREADS_DEFAULT_MAX 4
#define IO_THREADS_MAX	       64

void vxhs_ctx_opts_init(struct vxhs_ctx_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->log_level = LOG_WARNING;
}

static unsigned int default_threads(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus < 1)
		return 1;
	return cpus < IO_THREADS_DEFAULT_MAX ? (unsigned int)cpus :
					       IO_THREADS_DEFAULT_MAX;
}

int vxhs_ctx_new(const struct vxhs_ctx_opts *opts, struct vxhs_ctx **out)
{
	struct vxhs_ctx *ctx;
	unsigned int i;
	int ret;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return set_error(-ENOMEM, "vxhs_ctx_new: out of memory");
	if (opts)
		ctx->opts = *opts;
	else
		vxhs_ctx_opts_init(&ctx->opts);
	if (ctx->opts.io_threads > IO_THREADS_MAX) {
		ret = set_error(-EINVAL,
				"vxhs_ctx_new: %u I/O threads asked, at most "
				"%d allowed",
				ctx->opts.io_threads, IO_THREADS_MAX);
		goto free_ctx;
	}
	ctx->nr_loops = ctx->opts.io_threads ? ctx->opts.io_threads :
					       default_threads();
	ctx->loops = calloc(ctx->nr_loops, sizeof(*ctx->loops));
	if (!ctx->loops) {
		ret = set_error(-ENOMEM, "vxhs_ctx_new: out of memory");
		goto free_ctx;
	}
	for (i = 0; i < ctx->nr_loops; i++) {
		ret = loop_init(&ctx->loops[i], &ctx->opts, i);
		if (ret)
			goto stop_loops;
	}
	*out = ctx;
	return 0;

stop_loops:
	while (i--)
		loop_fini(&ctx->loops[i]);
	free(ctx->loops);
free_ctx:
	free(ctx);
	return ret;
}

void vxhs_ctx_free(struct vxhs_ctx *ctx)
{
	if (!ctx)
		return;
	for (unsigned int i = 0; i < ctx->nr_loops; i++)
		loop_fini(&ctx->loops[i]);
	free(ctx->loops);
	free(ctx);
}

unsigned int vxhs_ctx_io_threads(const struct vxhs_ctx *ctx)
{
	return ctx->nr_loops;
}

struct vxhs_loop *ctx_pick_loop(struct vxhs_ctx *ctx)
{
	struct vxhs_loop *best = &ctx->loops[0];

	/* Racy between concurrent opens, which at worst balances less
	 * evenly; a vdisk never moves afterwards. */
	for (unsigned int i = 1; i < ctx->nr_loops; i++)
		if (atomic_load(&ctx->loops[i].nr_vdisks) <
		    atomic_load(&best->nr_vdisks))
			best = &ctx->loops[i];
	atomic_fetch_add(&best->nr_vdisks, 1);
	return best;
}

void ctx_vdisk_closed(struct vxhs_loop *loop)
{
	atomic_fetch_sub(&loop->nr_vdisks, 1);
}
