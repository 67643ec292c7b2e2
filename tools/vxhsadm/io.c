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
	{ "progress", no_argument, NULL, 'P' },
	{ "no-progress", no_argument, NULL, 'Q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct io_args {
	struct conn_args conn;
	uint64_t offset;
	uint64_t length; /* 0: to the end */
	enum progress_mode progress;
};

static int parse(const char *cmd, const char *help, int argc, char **argv,
		 struct io_args *a, int want_pos)
{
	int opt;

	conn_args_init(&a->conn, cmd);
	a->offset = 0;
	a->length = 0;
	a->progress = PROGRESS_AUTO;
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
		case 'P':
			a->progress = PROGRESS_ON;
			break;
		case 'Q':
			a->progress = PROGRESS_OFF;
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
	"Ask the agent for a vdisk's size, the extensions it offers, and who\n"
	"holds the vdisk's lock (several gateways).\n"
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
	printf("extensions:  %s%s%s%s%s%s%s%s%s\n",
	       info.features & VXHS_FEAT_FLUSH ? "flush " : "",
	       info.features & VXHS_FEAT_WRITE_ZEROES ? "write-zeroes " : "",
	       info.features & VXHS_FEAT_DISCARD ? "discard " : "",
	       info.features & VXHS_FEAT_COMPARE_AND_WRITE ?
		       "compare-and-write " :
		       "",
	       info.features & VXHS_FEAT_TLS_PACK ? "tls-packing " : "",
	       info.features & VXHS_FEAT_LOCK ? "lock " : "",
	       info.features & VXHS_FEAT_WRITE_SAME ? "write-same " : "",
	       info.features & VXHS_FEAT_COPY ? "copy " : "",
	       info.features ? "" : "none (plain QNIO v34)");
	if (info.agent_max_io)
		printf("max I/O:     %" PRIu64 " bytes\n", info.agent_max_io);
	if (info.features & VXHS_FEAT_LOCK)
		lock_print(vd);
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

/*
 * The file side of a copy: a regular file is read and written in place,
 * and where the data is zero it stays a hole; a pipe or terminal
 * ('-') is read or written in order.
 */
struct file_side {
	int fd;
	bool seekable;
	uint64_t zero_bytes; /* left as holes, or sent as WRITE_ZEROES */
};

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* Up to len bytes at off; fewer only at the end of a pipe. */
static ssize_t file_read(struct file_side *f, void *buf, size_t len,
			 uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = f->seekable ? pread(f->fd, (uint8_t *)buf + got,
						len - got, (off_t)(off + got)) :
					  read(f->fd, (uint8_t *)buf + got,
					       len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int file_write(struct file_side *f, const uint8_t *buf, size_t len,
		      uint64_t off)
{
	size_t put = 0;

	/* Zeroes in a regular file: a hole (the file is cut to size at
	 * the end, and was empty before). */
	if (f->seekable && all_zero(buf, len)) {
		f->zero_bytes += len;
		return 0;
	}
	while (put < len) {
		ssize_t n = f->seekable ? pwrite(f->fd, buf + put, len - put,
						 (off_t)(off + put)) :
					  write(f->fd, buf + put, len - put);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

/*
 * Copies up to len bytes in DEPTH pipelined chunks (the file side is
 * sync); *copied says how much (less than len only when a pipe ended).
 * Chunks of zeroes go to the vdisk as DISCARD or WRITE_ZEROES where the
 * agent offers them: nothing crosses the network, and with DISCARD the
 * agent's file stays sparse.
 */
static int copy(struct vxhs_vdisk *vd, struct file_side *f, bool to_file,
		uint64_t off, uint64_t len, const struct io_args *a,
		uint64_t *copied)
{
	int (*zeroes)(struct vxhs_vdisk *, uint64_t, uint64_t, vxhs_done_fn,
		      void *) = NULL;
	struct vxhs_vdisk_info info;
	struct waiter w;
	struct progress p;
	uint8_t *bufs;
	uint64_t done = 0;
	unsigned int slot = 0;
	bool eof = false;
	int ret = 0;

	vxhs_vdisk_get_info(vd, &info);
	/* Both leave zeroes; DISCARD also leaves the agent's file sparse. */
	if (info.features & VXHS_FEAT_DISCARD)
		zeroes = vxhs_discard;
	else if (info.features & VXHS_FEAT_WRITE_ZEROES)
		zeroes = vxhs_write_zeroes;
	bufs = malloc((size_t)CHUNK * DEPTH);
	if (!bufs)
		return -ENOMEM;
	waiter_init(&w);
	progress_start(&p, a->progress, to_file ? "read" : "write", len);
	/* DEPTH chunks go out together; the file side of a batch is done
	 * in order once all of them are back. */
	while (done < len && !ret && !eof) {
		uint64_t batch = 0;

		for (slot = 0; slot < DEPTH && done + batch < len; slot++) {
			uint64_t chunk =
				MIN((uint64_t)CHUNK, len - done - batch);
			struct iovec iov = { bufs + (size_t)slot * CHUNK,
					     chunk };
			uint64_t at = off + done + batch;

			if (!to_file) {
				ssize_t got = file_read(f, iov.iov_base, chunk,
							done + batch);

				if (got < 0 ||
				    (f->seekable && (uint64_t)got != chunk)) {
					errorf("reading the input file: %s",
					       got < 0 ? strerror(errno) :
							 "it ended early");
					ret = -EIO;
					break;
				}
				eof = (uint64_t)got < chunk;
				iov.iov_len = chunk = (uint64_t)got;
				if (!chunk)
					break;
			}
			waiter_add(&w);
			if (to_file)
				ret = vxhs_readv(vd, &iov, 1, at, waiter_done,
						 &w);
			else if (zeroes && all_zero(iov.iov_base, chunk)) {
				f->zero_bytes += chunk;
				ret = zeroes(vd, at, chunk, waiter_done, &w);
			} else
				ret = vxhs_writev(vd, &iov, 1, at, waiter_done,
						  &w);
			if (ret) {
				waiter_done(&w, 0);
				errorf("%s", vxhs_errmsg());
				break;
			}
			batch += chunk;
			if (eof)
				break;
		}
		if (waiter_wait(&w, 0) && !ret) {
			ret = w.result;
			errorf("%s at offset %" PRIu64 ": %s",
			       to_file ? "read" : "write", off + done,
			       strerror(-ret));
		}
		for (uint64_t put = 0; !ret && to_file && put < batch;
		     put += CHUNK) {
			size_t n = (size_t)MIN((uint64_t)CHUNK, batch - put);

			if (file_write(f, bufs + put, n, done + put)) {
				errorf("writing the output file: %m");
				ret = -EIO;
			}
		}
		done += batch;
		progress_update(&p, done);
	}
	/* Trailing zeroes left as a hole still count in the size. */
	if (!ret && to_file && f->seekable &&
	    ftruncate(f->fd, (off_t)done) < 0) {
		errorf("setting the output file's size: %m");
		ret = -EIO;
	}
	progress_end(&p);
	free(bufs);
	*copied = done;
	return ret;
}

#define PROGRESS_HELP                                                           \
	"      --progress       show progress, rate and time left (default:\n"  \
	"                       on a terminal, for 16 MiB or more; elsewhere\n" \
	"                       a line every 5 s and at the end)\n"             \
	"      --no-progress    never show progress\n"

static const char read_help[] =
	"Usage: vxhsadm read [OPTION]... VDISK FILE\n"
	"Copy a vdisk (or a range of it) into FILE ('-' for standard output).\n"
	"Zeroes stay holes in a regular FILE.\n"
	"\n" CONN_HELP
	"  -o, --offset=BYTES   where to start in the vdisk (default 0)\n"
	"  -l, --length=BYTES   how much to copy (default: to the end)\n" PROGRESS_HELP;

int cmd_read(int argc, char **argv)
{
	struct io_args a;
	int i = parse("read", read_help, argc, argv, &a, 2);
	struct file_side f = { 0 };
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	uint64_t len, copied;
	struct stat st;
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
	if (fd < 0 || fstat(fd, &st) < 0) {
		errorf("cannot open %s: %m", argv[i + 1]);
		goto close;
	}
	f.fd = fd;
	/* Holes only in a regular file this command just emptied. */
	f.seekable = S_ISREG(st.st_mode) && strcmp(argv[i + 1], "-");
	if (!copy(vd, &f, true, a.offset, len, &a, &copied))
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
	"Copy FILE ('-' for standard input, until it ends) into a vdisk at\n"
	"--offset. The file must fit. Zeroes go as DISCARD (or WRITE_ZEROES)\n"
	"where the agent offers it: no data sent, no space taken.\n"
	"\n" CONN_HELP
	"  -o, --offset=BYTES   where to start in the vdisk (default 0)\n"
	"  -l, --length=BYTES   copy only this much of FILE\n" PROGRESS_HELP;

int cmd_write(int argc, char **argv)
{
	struct io_args a;
	int i = parse("write", write_help, argc, argv, &a, 2);
	bool from_stdin = !strcmp(argv[i + 1], "-");
	struct file_side f = { 0 };
	struct vxhs_vdisk_info info;
	struct vxhs_ctx *ctx;
	struct vxhs_vdisk *vd;
	struct stat st;
	uint64_t len, copied = 0;
	int ret = EXIT_FAIL;

	f.fd = from_stdin ? dup(STDIN_FILENO) :
			    open(argv[i + 1], O_RDONLY | O_CLOEXEC);
	if (f.fd < 0 || fstat(f.fd, &st) < 0) {
		errorf("cannot open %s: %m", argv[i + 1]);
		return EXIT_FAIL;
	}
	f.seekable = S_ISREG(st.st_mode);
	if (f.seekable) {
		if (!a.length)
			a.length = (uint64_t)st.st_size;
		if (a.length > (uint64_t)st.st_size) {
			errorf("%s has only %lld bytes", argv[i + 1],
			       (long long)st.st_size);
			goto close_file;
		}
		if (!a.length) {
			errorf("%s is empty: nothing to write", argv[i + 1]);
			goto close_file;
		}
	}
	if (open_vdisk(&a.conn, argv[i], &ctx, &vd))
		goto close_file;
	vxhs_vdisk_get_info(vd, &info);
	/* From a pipe without --length: until it ends, within the vdisk. */
	if (!range(&a, info.size, &len) &&
	    !copy(vd, &f, false, a.offset, len, &a, &copied)) {
		ret = EXIT_OK;
		if (!f.seekable)
			printf("wrote %" PRIu64 " bytes\n", copied);
		if (f.zero_bytes)
			printf("%" PRIu64 " bytes of zeroes not sent as "
			       "data\n",
			       f.zero_bytes);
	}
	close_vdisk(ctx, vd);
close_file:
	close(f.fd);
	return ret;
}
