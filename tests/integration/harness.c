// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"

void scratch_make(char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, len, "%s/vxhs-test-XXXXXX", tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
}

void scratch_remove(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
}

void vdisk_make(const char *dir, const char *id, uint64_t size)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

void vdisk_write_uncached(const char *dir, const char *id, const void *buf,
			  size_t len)
{
	char path[PATH_MAX];
	void *map;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, id);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	assert_int_equal(fdatasync(fd), 0);
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	for (int i = 0; vxhs_range_cached(map, len, 0, len); i++) {
		if (i == 20)
			fail_msg("%s stayed in the page cache: this test needs "
				 "a file system that drops clean pages (not "
				 "tmpfs)",
				 path);
		assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED),
				 0);
		usleep(i ? 50000 : 0);
	}
	munmap(map, len);
	close(fd);
}

void agent_start(struct agent *a, const char *dir, unsigned int port)
{
	static const char *const plaintext[] = { "--allow-plaintext", NULL };

	agent_start_args(a, dir, port, plaintext);
}

static unsigned int nr_started;

void agent_start_args(struct agent *a, const char *dir, unsigned int port,
		      const char *const *extra)
{
	char portfile[300], portarg[16];
	const char *argv[32];
	unsigned int n = 0;
	FILE *f;

	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(portfile, sizeof(portfile), "%s/.port-%d-%u", dir, getpid(),
		 port);
	/* Agents on one directory each have their own UNIX sockets; one
	 * restarted on its port keeps its path. */
	if (port)
		snprintf(a->sock, sizeof(a->sock), "%s/.sock-%u", dir, port);
	else
		snprintf(a->sock, sizeof(a->sock), "%s/.sock-%d-any-%u", dir,
			 getpid(), nr_started);
	snprintf(a->ctl, sizeof(a->ctl), "%s/.ctl-%d-%u", dir, getpid(),
		 nr_started++);
	snprintf(portarg, sizeof(portarg), "%u", port);
	unlink(portfile);
	argv[n++] = "vxhsd";
	argv[n++] = "--dir";
	argv[n++] = dir;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--port";
	argv[n++] = portarg;
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--log-level";
	argv[n++] = getenv("VXHSD_LOG") ? getenv("VXHSD_LOG") : "error";
	argv[n++] = "--unix";
	argv[n++] = a->sock;
	argv[n++] = "--control";
	argv[n++] = a->ctl;
	while (extra && *extra && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = *extra++;
	argv[n] = NULL;
	a->pid = fork();
	assert_true(a->pid >= 0);
	if (a->pid == 0) {
		/* A failed assertion skips the test's agent_kill: the agent
		 * must not outlive the test binary (and hold ctest's pipe). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(VXHSD_PATH, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		f = fopen(portfile, "r");
		if (f) {
			assert_int_equal(fscanf(f, "%u", &a->port), 1);
			fclose(f);
			unlink(portfile);
			return;
		}
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = 0;
			fail_msg("vxhsd exited at start");
		}
		usleep(5000);
	}
	fail_msg("vxhsd did not start");
}

void agent_kill(struct agent *a, int sig)
{
	int status;

	if (a->pid <= 0)
		return;
	kill(a->pid, sig);
	waitpid(a->pid, &status, 0);
	a->pid = 0;
	/* A clean stop exits 0; a sanitizer's report makes it exit 66. */
	if (sig == SIGTERM && !(WIFEXITED(status) && !WEXITSTATUS(status)))
		fail_msg("vxhsd did not exit 0 on SIGTERM (status %#x)",
			 status);
}

const char *agent_fault(const struct agent *a, const char *fmt, ...)
{
	static __thread char answer[4096];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char line[512];
	size_t got = 0;
	va_list ap;
	int fd, len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	assert_true(len > 0 && len < (int)sizeof(line) - 1);
	line[len++] = '\n';
	assert_true(strlen(a->ctl) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, a->ctl, strlen(a->ctl) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(write(fd, line, (size_t)len), len);
	for (;;) {
		ssize_t n = read(fd, answer + got, sizeof(answer) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	answer[got] = '\0';
	if (strncmp(answer, "ok", 2))
		fail_msg("fault injection '%.*s': %s", len - 1, line, answer);
	return answer;
}

bool dir_reads_nowait(const char *dir)
{
	char path[PATH_MAX], c;
	struct iovec iov = { &c, 1 };
	bool ok;
	int fd;

	snprintf(path, sizeof(path), "%s/nowait-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "x", 1, 0), 1);
	ok = preadv2(fd, &iov, 1, 0, RWF_NOWAIT) == 1;
	assert_true(ok || errno == EOPNOTSUPP);
	close(fd);
	unlink(path);
	return ok;
}

unsigned long agent_counter(const struct agent *a, const char *opcode)
{
	const char *answer = agent_fault(a, "counters");
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), " %s=", opcode);
	p = strstr(answer, key);
	assert_non_null(p);
	return strtoul(p + strlen(key), NULL, 10);
}

void agent_opts(struct vxhs_open_opts *o, const struct agent *const *agents,
		unsigned int n)
{
	vxhs_open_opts_init(o);
	for (unsigned int i = 0; i < n; i++) {
		char addr[64];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u", agents[i]->port);
		assert_int_equal(vxhs_agent_addr_parse(addr, &o->agents[i]), 0);
	}
	o->nr_agents = n;
	/* TLS tests name their credentials; the rest test other things. */
	o->allow_plaintext = true;
}

void agent_opts_unix(struct vxhs_open_opts *o, const struct agent *a)
{
	char addr[320];

	vxhs_open_opts_init(o);
	snprintf(addr, sizeof(addr), "unix:%s", a->sock);
	assert_int_equal(vxhs_agent_addr_parse(addr, &o->agents[0]), 0);
	o->nr_agents = 1;
}

void test_select_from_env_of(const struct CMUnitTest *tests, size_t n)
{
	const char *pattern = getenv("VXHS_TEST");
	size_t i;

	if (!pattern || !*pattern)
		return;
	for (i = 0; i < n; i++)
		if (!fnmatch(pattern, tests[i].name, 0))
			break;
	if (i == n) {
		fprintf(stderr,
			"VXHS_TEST='%s' matches none of this binary's %zu tests\n",
			pattern, n);
		exit(1);
	}
	cmocka_set_test_filter(pattern);
}

struct vxhs_ctx *test_ctx(void)
{
	struct vxhs_ctx_opts o;
	struct vxhs_ctx *ctx;

	vxhs_ctx_opts_init(&o);
	o.log_level = getenv("VXHS_DEBUG") ? LOG_DEBUG : LOG_CRIT;
	/* More threads than this machine may have CPUs: vdisks of one test
	 * land on different threads. */
	o.io_threads = TEST_IO_THREADS;
	assert_int_equal(vxhs_ctx_new(&o, &ctx), 0);
	return ctx;
}

void tally_init(struct tally *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
}

void tally_add(struct tally *t)
{
	pthread_mutex_lock(&t->lock);
	t->pending++;
	pthread_mutex_unlock(&t->lock);
}

void tally_done(void *opaque, int result)
{
	struct tally *t = opaque;

	pthread_mutex_lock(&t->lock);
	if (result) {
		t->failed++;
		if (!t->first_error)
			t->first_error = result;
	} else {
		t->ok++;
	}
	t->pending--;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

unsigned int tally_wait(struct tally *t, unsigned int timeout_ms)
{
	struct timespec until;
	unsigned int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->lock);
	while (t->pending &&
	       pthread_cond_timedwait(&t->cond, &t->lock, &until) != ETIMEDOUT)
		;
	left = t->pending;
	pthread_mutex_unlock(&t->lock);
	return left;
}

int sync_pread(struct vxhs_vdisk *vd, void *buf, uint64_t len, uint64_t off)
{
	struct iovec iov = { buf, len };

	return vxhs_readv_sync(vd, &iov, 1, off);
}

int sync_pwrite(struct vxhs_vdisk *vd, const void *buf, uint64_t len,
		uint64_t off)
{
	struct iovec iov = { (void *)buf, len };

	return vxhs_writev_sync(vd, &iov, 1, off);
}
