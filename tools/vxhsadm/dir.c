// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Commands that work on an agent's vdisk directory directly: create,
 * resize, delete, list. The agent notices size changes by itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhs/wire.h"
#include "vxhsadm.h"

#define DEFAULT_DIR "/var/lib/vxhsd"

static const struct option dir_opts[] = {
	{ "dir", required_argument, NULL, 'd' },
	{ "shrink", no_argument, NULL, 's' },
	{ "preallocate", no_argument, NULL, 'p' },
	{ "force", no_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct dir_args {
	const char *dir;
	bool shrink;
	bool preallocate;
	bool force;
};

/* Parses options; returns the index of the first positional argument. */
static int parse(const char *cmd, const char *help, int argc, char **argv,
		 struct dir_args *a, int want_pos)
{
	int opt;

	a->dir = DEFAULT_DIR;
	while ((opt = getopt_long(argc, argv, "d:h", dir_opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			a->dir = optarg;
			break;
		case 's':
			a->shrink = true;
			break;
		case 'p':
			a->preallocate = true;
			break;
		case 'f':
			a->force = true;
			break;
		default:
			help_or_die(cmd, help, opt);
		}
	}
	expect_args(cmd, argc - optind, want_pos);
	return optind;
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		errorf("cannot open vdisk directory %s: %m", dir);
	return fd;
}

static void check_id(const char *cmd, const char *id)
{
	if (!vxhs_vdisk_id_valid(id))
		die_usage(
			cmd,
			"vdisk id '%s' is invalid: 1 to %d of A-Z a-z 0-9 . _ - { }, not starting with '.'",
			id, VXHS_VDISK_ID_MAX);
}

/*
 * vxhsd holds a shared lock on every vdisk a connection uses: an exclusive
 * one, held until fd closes, tells nobody does. Original HyperScale agents
 * take no lock, so for them this finds nothing.
 */
static bool in_use(int fd)
{
	return flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

/* In use and not forced: says so and what to do; true to stop there. */
static bool refuse_in_use(const struct dir_args *a, const char *id, int fd,
			  const char *what)
{
	if (!in_use(fd))
		return false;
	if (a->force) {
		fprintf(stderr,
			"vxhsadm: vdisk %s is in use; %s anyway (--force)\n",
			id, what);
		return false;
	}
	errorf("vdisk %s is in use by an agent's connection ('vxhsadm status' "
	       "shows which): stop its users first, or add --force to %s "
	       "anyway",
	       id, what);
	return true;
}

/*
 * Opens a vdisk after looking at what it is: a FIFO would hang the open,
 * and a file with other names (hard links) may be anyone's. The fd, or -1
 * after a message.
 */
static int open_vdisk_file(int dfd, const char *dir, const char *id, int flags,
			   struct stat *st)
{
	struct stat opened;
	int fd;

	if (fstatat(dfd, id, st, AT_SYMLINK_NOFOLLOW) < 0) {
		errorf("no vdisk %s in %s: %m", id, dir);
		return -1;
	}
	if (!S_ISREG(st->st_mode) || st->st_nlink != 1) {
		errorf("%s in %s is not a vdisk: %s; left alone", id, dir,
		       !S_ISREG(st->st_mode) ?
			       "not a regular file" :
			       "it has other names (hard links)");
		return -1;
	}
	fd = openat(dfd, id, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &opened) < 0 || opened.st_ino != st->st_ino ||
	    opened.st_dev != st->st_dev) {
		errorf("vdisk %s in %s changed while opening it%s%s", id, dir,
		       fd < 0 ? ": " : "", fd < 0 ? strerror(errno) : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static uint64_t vdisk_size_arg(const char *cmd, const char *text)
{
	uint64_t size = parse_size_arg(cmd, "size", text);

	if (!size || size % 512)
		die_usage(cmd, "size must be a positive multiple of 512 bytes");
	return size;
}

static const char create_help[] =
	"Usage: vxhsadm create [--dir=DIR] [--preallocate] VDISK SIZE\n"
	"Create a vdisk of SIZE bytes (suffixes K, M, G, T) as a sparse file.\n"
	"\n"
	"  -d, --dir=DIR        the agent's vdisk directory (default " DEFAULT_DIR
	")\n"
	"      --preallocate    allocate every block now instead of on write\n";

static int give_to_dir_owner(int dfd, int fd)
{
	struct stat st;

	if (fstat(dfd, &st) < 0)
		return -1;
	if (st.st_uid == geteuid() && st.st_gid == getegid())
		return 0;
	return fchown(fd, st.st_uid, st.st_gid);
}

/* The vdisk's exclusive lock (docs/protocol.md) goes with it. */
static void remove_lock_record(int dfd, const char *dir, const char *id)
{
	char name[VXHS_LOCK_RECORD_NAME_MAX];

	vxhs_lock_record_name(id, name, sizeof(name));
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		errorf("cannot remove %s/%s, the lock record of vdisk %s: %m",
		       dir, name, id);
}

int cmd_create(int argc, char **argv)
{
	struct dir_args a = { 0 };
	int i = parse("create", create_help, argc, argv, &a, 2);
	const char *id = argv[i];
	uint64_t size;
	char human[32];
	int dfd, fd, ret = EXIT_FAIL;

	check_id("create", id);
	size = vdisk_size_arg("create", argv[i + 1]);
	dfd = open_dir(a.dir);
	if (dfd < 0)
		return EXIT_FAIL;
	fd = openat(dfd, id,
		    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		errorf("cannot create vdisk %s in %s: %s", id, a.dir,
		       errno == EEXIST ? "it already exists" : strerror(errno));
		goto close_dir;
	}
	/* The agent may run as its own user (vxhsd.service does): the new
	 * vdisk belongs to whoever owns the directory. */
	if (give_to_dir_owner(dfd, fd)) {
		errorf("cannot give vdisk %s to the owner of %s: %s", id, a.dir,
		       strerror(errno));
		unlinkat(dfd, id, 0);
		goto close_file;
	}
	errno = 0;
	if (a.preallocate ? posix_fallocate(fd, 0, (off_t)size) :
			    ftruncate(fd, (off_t)size)) {
		errorf("cannot size vdisk %s: %s", id,
		       strerror(errno ? errno : ENOSPC));
		unlinkat(dfd, id, 0);
		goto close_file;
	}
	/* A lock record left by a deleted vdisk of that name is not this
	 * one's. */
	remove_lock_record(dfd, a.dir, id);
	vxhs_format_size(size, human, sizeof(human));
	printf("created vdisk %s (%s) in %s\n", id, human, a.dir);
	ret = EXIT_OK;
close_file:
	close(fd);
close_dir:
	close(dfd);
	return ret;
}

static const char resize_help[] =
	"Usage: vxhsadm resize [--dir=DIR] [--shrink [--force]] VDISK SIZE\n"
	"Change the size of a vdisk. Shrinking destroys the data past the new\n"
	"end and needs --shrink; a vdisk in use grows, but shrinks only with\n"
	"--force. Clients see the new size on their next VDISK_STAT (for a LUN:\n"
	"after the LUN is resized too).\n"
	"\n"
	"  -d, --dir=DIR        the agent's vdisk directory (default " DEFAULT_DIR
	")\n"
	"      --shrink         allow making the vdisk smaller\n"
	"      --force          shrink it even while a connection uses it\n";

int cmd_resize(int argc, char **argv)
{
	struct dir_args a = { 0 };
	int i = parse("resize", resize_help, argc, argv, &a, 2);
	const char *id = argv[i];
	uint64_t size;
	struct stat st;
	char from[32], to[32];
	int dfd, fd = -1, ret = EXIT_FAIL;

	check_id("resize", id);
	size = vdisk_size_arg("resize", argv[i + 1]);
	dfd = open_dir(a.dir);
	if (dfd < 0)
		return EXIT_FAIL;
	fd = open_vdisk_file(dfd, a.dir, id, O_WRONLY, &st);
	if (fd < 0)
		goto close_file;
	if (size < (uint64_t)st.st_size && !a.shrink) {
		errorf("%s is %lld bytes; shrinking it destroys data: add --shrink",
		       id, (long long)st.st_size);
		goto close_file;
	}
	/* Growing is how a LUN grows (docs/handler.md); shrinking under a
	 * user pulls blocks from under its writes. */
	if (size < (uint64_t)st.st_size &&
	    refuse_in_use(&a, id, fd, "shrink it"))
		goto close_file;
	if (ftruncate(fd, (off_t)size)) {
		errorf("cannot resize vdisk %s: %m", id);
		goto close_file;
	}
	vxhs_format_size((uint64_t)st.st_size, from, sizeof(from));
	vxhs_format_size(size, to, sizeof(to));
	printf("resized vdisk %s from %s to %s\n", id, from, to);
	ret = EXIT_OK;
close_file:
	if (fd >= 0)
		close(fd);
	close(dfd);
	return ret;
}

static const char delete_help[] =
	"Usage: vxhsadm delete [--dir=DIR] [--force] VDISK\n"
	"Delete a vdisk and its data. A vdisk a vxhsd connection uses is\n"
	"refused: those connections would go on writing into a file nobody\n"
	"can open again.\n"
	"\n"
	"  -d, --dir=DIR        the agent's vdisk directory (default " DEFAULT_DIR
	")\n"
	"      --force          delete it even while in use\n";

int cmd_delete(int argc, char **argv)
{
	struct dir_args a = { 0 };
	int i = parse("delete", delete_help, argc, argv, &a, 1);
	const char *id = argv[i];
	struct stat st;
	int dfd, fd, ret = EXIT_FAIL;

	check_id("delete", id);
	dfd = open_dir(a.dir);
	if (dfd < 0)
		return EXIT_FAIL;
	fd = open_vdisk_file(dfd, a.dir, id, O_RDONLY, &st);
	if (fd < 0)
		goto close_dir;
	/* The lock is held across the unlink: no agent starts using it
	 * in between. */
	if (refuse_in_use(&a, id, fd, "delete it"))
		goto close_file;
	if (unlinkat(dfd, id, 0) < 0) {
		errorf("cannot delete vdisk %s: %m", id);
		goto close_file;
	}
	remove_lock_record(dfd, a.dir, id);
	printf("deleted vdisk %s\n", id);
	ret = EXIT_OK;
close_file:
	close(fd);
close_dir:
	close(dfd);
	return ret;
}

static const char list_help[] =
	"Usage: vxhsadm list [--dir=DIR]\n"
	"List the vdisks in an agent's directory with their size and the\n"
	"space they use.\n"
	"\n"
	"  -d, --dir=DIR        the agent's vdisk directory (default " DEFAULT_DIR
	")\n";

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int cmd_list(int argc, char **argv)
{
	struct dir_args a = { 0 };
	struct dirent **names;
	int dfd, n;

	parse("list", list_help, argc, argv, &a, 0);
	dfd = open_dir(a.dir);
	if (dfd < 0)
		return EXIT_FAIL;
	n = scandir(a.dir, &names, NULL, by_name);
	if (n < 0) {
		errorf("cannot list %s: %m", a.dir);
		close(dfd);
		return EXIT_FAIL;
	}
	printf("%-40s %16s %16s\n", "VDISK", "SIZE", "USED");
	for (int i = 0; i < n; i++) {
		struct stat st;
		char size[32], used[32];

		if (vxhs_vdisk_id_valid(names[i]->d_name) &&
		    !fstatat(dfd, names[i]->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISREG(st.st_mode)) {
			vxhs_format_size((uint64_t)st.st_size, size,
					 sizeof(size));
			vxhs_format_size((uint64_t)st.st_blocks * 512, used,
					 sizeof(used));
			printf("%-40s %16s %16s\n", names[i]->d_name, size,
			       used);
		}
		free(names[i]);
	}
	free(names);
	close(dfd);
	return EXIT_OK;
}
