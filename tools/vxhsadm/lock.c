// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsadm lock: who holds a vdisk's exclusive lock (several gateways,
 * docs/ha.md), and breaking it when its holder is gone for good.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vxhsadm.h"

static const char lock_help[] =
	"Usage: vxhsadm lock [OPTION]... VDISK\n"
	"Show who holds a vdisk's exclusive lock, the one several gateways\n"
	"exporting the vdisk pass between them. With --break, take it and let\n"
	"it go at once: its holder is fenced (none of its writes lands any\n"
	"more) and the vdisk is free, for a gateway gone for good. A live\n"
	"gateway takes the lock back on its next write.\n"
	"\n"
	"      --break          fence the holder and free the lock\n" CONN_HELP;

static const struct option opts[] = {
	CONN_LONG_OPTS,
	{ "break", no_argument, NULL, 'B' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int lock_print(struct vxhs_vdisk *vd)
{
	struct vxhs_lock_info lk;
	char when[64] = "?";
	time_t since;
	struct tm tm;
	int ret;

	ret = vxhs_lock_query_sync(vd, &lk);
	if (ret) {
		errorf("vdisk %s: cannot read its lock: %s", vxhs_vdisk_id(vd),
		       vxhs_errmsg());
		return ret;
	}
	since = (time_t)lk.since;
	if (gmtime_r(&since, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (lk.held && lk.tag)
		printf("lock:        held by %s (tag %u) since %s, epoch %" PRIu64
		       "\n",
		       lk.owner, lk.tag, when, lk.epoch);
	else if (lk.held)
		printf("lock:        held by %s since %s, epoch %" PRIu64 "\n",
		       lk.owner, when, lk.epoch);
	else if (lk.epoch)
		printf("lock:        free (last held by %s), epoch %" PRIu64
		       "\n",
		       lk.owner, lk.epoch);
	else
		printf("lock:        free (never taken)\n");
	return 0;
}

/* Takes the lock as this host's vxhsadm and releases it. */
static int break_lock(struct vxhs_vdisk *vd)
{
	char owner[VXHS_LOCK_OWNER_MAX + 1] = "vxhsadm@", host[48] = "";
	struct vxhs_lock_info lk;
	int ret;

	if (gethostname(host, sizeof(host) - 1) == 0 &&
	    vxhs_lock_owner_valid(host, strlen(host)))
		strcat(owner, host);
	else
		strcat(owner, "localhost");
	ret = vxhs_lock_acquire_sync(vd, owner, 0, &lk);
	if (!ret)
		ret = vxhs_lock_release_sync(vd);
	if (ret) {
		errorf("vdisk %s: cannot break its lock: %s", vxhs_vdisk_id(vd),
		       vxhs_errmsg());
		return ret;
	}
	printf("broke the lock of vdisk %s%s%s: epoch %" PRIu64 ", free now\n",
	       vxhs_vdisk_id(vd), lk.broken[0] ? ", fencing " : "", lk.broken,
	       lk.epoch);
	return 0;
}

int cmd_lock(int argc, char **argv)
{
	struct conn_args conn;
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	bool brk = false;
	int opt, ret;

	conn_args_init(&conn, "lock");
	while ((opt = getopt_long(argc, argv, CONN_SHORT_OPTS "h", opts,
				  NULL)) != -1) {
		if (conn_args_parse("lock", &conn, opt, optarg))
			continue;
		if (opt == 'B')
			brk = true;
		else
			help_or_die("lock", lock_help, opt);
	}
	expect_args("lock", argc - optind, 1);
	if (open_vdisk(&conn, argv[optind], &ctx, &vd))
		return EXIT_FAIL;
	vxhs_vdisk_get_info(vd, &info);
	if (!(info.features & VXHS_FEAT_LOCK)) {
		errorf("vdisk %s: the agent keeps no locks (vxhsd 0.2 or later "
		       "does)",
		       argv[optind]);
		ret = -EOPNOTSUPP;
	} else {
		ret = brk ? break_lock(vd) : lock_print(vd);
	}
	close_vdisk(ctx, vd);
	return ret ? EXIT_FAIL : EXIT_OK;
}
