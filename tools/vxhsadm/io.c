// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* Commands over the protocol: stat, and copying between vdisk and file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhs/wire.h"
#include "vxhsadm.h"

#define CHUNK (1u << 20)
#define DEPTH 8

static const struct option opts[] = {
	CONN_LONG_OPTS,
	{ "offset", required_argument, NULL, 'o' },
	{ "length", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct io_args {
	struct conn_args conn;
	uint64_t offset;
	uint64_t length; /* 0: to the end */
};

static int parse(const char *cmd, const char *help, int argc, char **argv,
		 struct io_args *a, int want_pos)
{
	int opt;

	conn_args_init(&a->conn, cmd);
	a->offset = 0;
	a->length = 0;
	while ((opt = getopt_long(argc, argv, CONN_SHORT_OPTS "o:l:h", opts,
				  NULL)) != -1) {
		if (conn_args_parse(cmd, &a->conn, opt, optarg))
			continue;
		switch (opt) {
		case 'o':
			a->offset = parse_size_arg(cmd, "offset", optarg);
			break;
		case 'l':
			a->length = parse_size_arg(cmd, "length", optarg);
			break;
		default:
			help_or_die(cmd, help, opt);
		}
	}
	expect_args(cmd, argc - optind, want_pos);
	return optind;
}

static const char stat_help[] =
	"Usage: vxhsadm stat [OPTION]... VDISK\n"
	"Ask the agent for a vdisk's size and the extensions it offers.\n"
	"\n" CONN_HELP;

int cmd_stat(int argc, char **argv)
{
	struct io_args a;
	int i = parse("stat", stat_help, argc, argv, &a, 1);
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	char addr[VXHS_HOST_MAX + 16], size[32];

	if (open_vdisk(&a.conn, argv[i], &ctx, &vd))
		return EXIT_FAIL;
	vxhs_vdisk_get_info(vd, &info);
	vxhs_agent_addr_format(&a.conn.opts.agents[info.agent], addr,
			       sizeof(addr));
	vxhs_format_size(info.size, size, sizeof(size));
	printf("vdisk:       %s\n", argv[i]);
	printf("agent:       %s%s%s%s\n", addr, info.agent_name[0] ? " (" : "",
	       info.agent_name, info.agent_name[0] ? ")" : "");
	printf("size:        %" PRIu64 " bytes (%s)\n", info.size, size);
	printf("extensions:  %s%s%s%s\n",
	       info.features & VXHS_FEAT_FLUSH ? "flush " : "",
	       info.features & VXHS_FEAT_WRITE_ZEROES ? "write-zeroes " : "",
	       info.features & VXHS_FEAT_DISCARD ? "discard " : "",
	       info.features ? "" : "none (plain QNIO v34)");
	if (info.agent_max_io)
		printf("max I/O:     %" PRIu64 " bytes\n", info.agent_max_io);
	close_vdisk(ctx, vd);
	return EXIT_OK;
}

/* Works out the byte range to copy, within the vdisk. */
static int range(const struct io_args *a, uint64_t size, uint64_t *len)
{
	if (a->offset > size) {
		errorf("offset %" PRIu64
		       " is past the end of the vdisk (%" PRIu64 " bytes)",
		       a->offset, size);
		return -ERANGE;
	}
	*len = a->length ? a->length : size - a->offset;
	if (*len > size - a->offset) {
		errorf("offset + length (%" PRIu64
		       ") is past the end of the vdisk (%" PRIu64 " bytes)",
		       a->offset + *len, size);
		return -ERANGE;
	}
	return 0;
}

/* Copies len bytes in DEPTH pipelined chunks; the file side is sync. */
static int copy(struct vxhs_vdisk *vd, int fd, bool to_file, uint64_t off,
		uint64_t len, const char *what)
{
	struct waiter w;
	struct progress p;
	uint8_t *bufs;
	uint64_t done = 0;
	unsigned int slot = 0;
	int ret = 0;

	bufs = malloc((size_t)CHUNK * DEPTH);
	if (!bufs)
		return -ENOMEM;
	waiter_init(&w);
	progress_start(&p, what, len);
	/* DEPTH chunks go out together; the file side of a batch is done
	 * in order once all of them are back. */
	while (done < len && !ret) {
		uint64_t batch = 0;

		for (slot = 0; slot < DEPTH && done + batch < len; slot++) {
			uint64_t chunk =
				MIN((uint64_t)CHUNK, len - done - batch);
			struct iovec iov = { bufs + (size_t)slot * CHUNK,
					     chunk };

			if (!to_file) {
				ssize_t got = pread(fd, iov.iov_base, chunk,
						    (off_t)(done + batch));

				if (got != (ssize_t)chunk) {
					errorf("reading the input file: %s",
					       got < 0 ? strerror(errno) :
							 "it ended early");
					ret = -EIO;
					break;
				}
			}
			waiter_add(&w);
			ret = to_file ? vxhs_readv(vd, &iov, 1,
						   off + done + batch,
						   waiter_done, &w) :
					vxhs_writev(vd, &iov, 1,
						    off + done + batch,
						    waiter_done, &w);
			if (ret) {
				waiter_done(&w, 0);
				errorf("%s", vxhs_errmsg());
				break;
			}
			batch += chunk;
		}
		if (waiter_wait(&w, 0) && !ret) {
			ret = w.result;
			errorf("%s at offset %" PRIu64 ": %s",
			       to_file ? "read" : "write", off + done,
			       strerror(-ret));
		}
		if (!ret && to_file &&
		    pwrite(fd, bufs, batch, (off_t)done) != (ssize_t)batch) {
			errorf("writing the output file: %m");
			ret = -EIO;
		}
		done += batch;
		progress_update(&p, done);
	}
	progress_end(&p);
	free(bufs);
	return ret;
}

static const char read_help[] =
	"Usage: vxhsadm read [OPTION]... VDISK FILE\n"
	"Copy a vdisk (or a range of it) into FILE ('-' for standard output).\n"
	"\n" CONN_HELP
	"  -o, --offset=BYTES   where to start in the vdisk (default 0)\n"
	"  -l, --length=BYTES   how much to copy (default: to the end)\n";

int cmd_read(int argc, char **argv)
{
	struct io_args a;
	int i = parse("read", read_help, argc, argv, &a, 2);
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	uint64_t len;
	int fd, ret = EXIT_FAIL;

	if (open_vdisk(&a.conn, argv[i], &ctx, &vd))
		return EXIT_FAIL;
	vxhs_vdisk_get_info(vd, &info);
	if (range(&a, info.size, &len))
		goto close;
	if (!strcmp(argv[i + 1], "-"))
		fd = dup(STDOUT_FILENO);
	else
		fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
	if (fd < 0) {
		errorf("cannot open %s: %m", argv[i + 1]);
		goto close;
	}
	if (!copy(vd, fd, true, a.offset, len, "read"))
		ret = EXIT_OK;
	if (close(fd) && ret == EXIT_OK) {
		errorf("closing %s: %m", argv[i + 1]);
		ret = EXIT_FAIL;
	}
close:
	close_vdisk(ctx, vd);
	return ret;
}

static const char write_help[] =
	"Usage: vxhsadm write [OPTION]... VDISK FILE\n"
	"Copy FILE into a vdisk at --offset. The file must fit.\n"
	"\n" CONN_HELP
	"  -o, --offset=BYTES   where to start in the vdisk (default 0)\n"
	"  -l, --length=BYTES   copy only this much of FILE\n";

int cmd_write(int argc, char **argv)
{
	struct io_args a;
	int i = parse("write", write_help, argc, argv, &a, 2);
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	struct stat st;
	uint64_t len;
	int fd, ret = EXIT_FAIL;

	fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		errorf("cannot open %s: %m", argv[i + 1]);
		return EXIT_FAIL;
	}
	if (!a.length)
		a.length = (uint64_t)st.st_size;
	if (a.length > (uint64_t)st.st_size) {
		errorf("%s has only %lld bytes", argv[i + 1],
		       (long long)st.st_size);
		close(fd);
		return EXIT_FAIL;
	}
	if (!a.length) {
		errorf("%s is empty: nothing to write", argv[i + 1]);
		close(fd);
		return EXIT_FAIL;
	}
	if (open_vdisk(&a.conn, argv[i], &ctx, &vd)) {
		close(fd);
		return EXIT_FAIL;
	}
	vxhs_vdisk_get_info(vd, &info);
	if (!range(&a, info.size, &len) &&
	    !copy(vd, fd, false, a.offset, len, "write"))
		ret = EXIT_OK;
	close(fd);
	close_vdisk(ctx, vd);
	return ret;
}
