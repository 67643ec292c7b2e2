// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The tcmu-runner side of the handler tests. The functions below are the
 * ones tests/handler/symbols_check.py allows the module to import; this
 * executable exports them (ENABLE_EXPORTS) so the module's undefined
 * symbols resolve here, as they resolve in tcmu-runner.
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "tcmu_stub.h"

void (*stub_complete_hook)(struct stub_cmd *c, int status);
static struct tcmur_handler *registered;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];
static size_t log_len;

struct tcmur_handler *stub_load(const char *path)
{
	void *mod = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	int (*init)(void);

	if (!mod)
		fail_msg("dlopen %s: %s", path, dlerror());
	init = (int (*)(void))dlsym(mod, "handler_init");
	assert_non_null(init);
	assert_int_equal(init(), 0);
	assert_non_null(registered);
	return registered;
}

void stub_dev_init(struct tcmu_device *dev, const char *cfgstring,
		   uint64_t size, uint32_t block_size)
{
	memset(dev, 0, sizeof(*dev));
	snprintf(dev->cfgstring, sizeof(dev->cfgstring), "%s", cfgstring);
	dev->block_size = block_size;
	dev->num_lbas = size / block_size;
	dev->cmd_time_out = 30; /* the kernel's default */
	dev->map_fd = -1;
}

int stub_dev_map(struct tcmu_device *dev, size_t len)
{
	int fd = memfd_create("stub-data-area", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len)) {
		close(fd);
		return -errno;
	}
	dev->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dev->map == MAP_FAILED) {
		dev->map = NULL;
		close(fd);
		return -errno;
	}
	dev->map_fd = fd;
	dev->map_len = len;
	return 0;
}

void stub_dev_unmap(struct tcmu_device *dev)
{
	if (dev->map_fd < 0)
		return;
	munmap(dev->map, dev->map_len);
	close(dev->map_fd);
	dev->map_fd = -1;
	dev->map = NULL;
}

int tcmu_dev_get_fd(struct tcmu_device *dev)
{
	return dev->map_fd;
}

char *tcmu_dev_get_memory_info(struct tcmu_device *dev, void **base,
			       size_t *len, off_t *offset)
{
	if (dev->map_fd < 0)
		return NULL;
	if (base)
		*base = dev->map;
	if (len)
		*len = dev->map_len;
	if (offset)
		*offset = 0;
	return strdup("/dev/stub-uio");
}

int tcmu_cfgfs_dev_get_attr_int(struct tcmu_device *dev, const char *name)
{
	return strcmp(name, "cmd_time_out") ? -ENOENT : dev->cmd_time_out;
}

char *tcmu_cfgfs_dev_get_wwn(struct tcmu_device *dev)
{
	return dev->wwn[0] ? strdup(dev->wwn) : NULL;
}

void stub_cmd_init(struct stub_cmd *c, uint8_t opcode)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->cdb[0] = opcode;
	c->lib.cdb = c->cdb;
	c->cmd.lib_cmd = &c->lib;
}

int stub_cmd_wait(struct stub_cmd *c, int rc)
{
	if (rc != TCMU_STS_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return c->status;
}

uint8_t stub_sense_key(const struct stub_cmd *c)
{
	return c->lib.sense_buf[2] & 0x0f;
}

uint16_t stub_sense_asc(const struct stub_cmd *c)
{
	return (uint16_t)(c->lib.sense_buf[12] << 8 | c->lib.sense_buf[13]);
}

bool stub_log_contains(const char *needle)
{
	bool found;

	pthread_mutex_lock(&log_lock);
	found = strstr(log_buf, needle) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

void stub_log_clear(void)
{
	pthread_mutex_lock(&log_lock);
	log_len = 0;
	log_buf[0] = '\0';
	pthread_mutex_unlock(&log_lock);
}

static void stub_log(int level, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (getenv("STUB_LOG"))
		fprintf(stderr, "[%d] %s", level, line);
	if (level > LOG_WARNING)
		return;
	pthread_mutex_lock(&log_lock);
	if (log_len + strlen(line) < sizeof(log_buf)) {
		strcpy(log_buf + log_len, line);
		log_len += strlen(line);
	}
	pthread_mutex_unlock(&log_lock);
}

/* ---- what tcmu-runner exports ---- */

int tcmur_register_handler(struct tcmur_handler *handler)
{
	registered = handler;
	return 0;
}

void tcmur_cmd_complete(struct tcmu_device *dev, void *data, int rc)
{
	struct stub_cmd *c =
		(struct stub_cmd *)((char *)data -
				    offsetof(struct stub_cmd, cmd));

	if (stub_complete_hook)
		stub_complete_hook(c, rc);
	else
		stub_cmd_done(c, rc);
}

void stub_cmd_done(struct stub_cmd *c, int status)
{
	pthread_mutex_lock(&c->lock);
	assert_false(c->done); /* exactly once */
	c->done = true;
	c->status = status;
	pthread_getname_np(pthread_self(), c->done_by, sizeof(c->done_by));
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void tcmur_dev_set_private(struct tcmu_device *dev, void *priv)
{
	dev->priv = priv;
}

void *tcmur_dev_get_private(struct tcmu_device *dev)
{
	return dev->priv;
}

int tcmur_dev_update_size(struct tcmu_device *dev, uint64_t new_size)
{
	dev->num_lbas = new_size / dev->block_size;
	return 0;
}

void tcmu_notify_conn_lost(struct tcmu_device *dev)
{
	atomic_fetch_add(&dev->conn_lost, 1);
}

void tcmu_notify_lock_lost(struct tcmu_device *dev)
{
	atomic_fetch_add(&dev->lock_lost, 1);
}

/* ---- what libtcmu.so.2 exports ---- */

char *tcmu_dev_get_cfgstring(struct tcmu_device *dev)
{
	return dev->cfgstring;
}

uint32_t tcmu_dev_get_block_size(struct tcmu_device *dev)
{
	return dev->block_size;
}

uint64_t tcmu_dev_get_num_lbas(struct tcmu_device *dev)
{
	return dev->num_lbas;
}

void tcmu_dev_set_write_cache_enabled(struct tcmu_device *dev, bool enabled)
{
	dev->write_cache = enabled;
}

void tcmu_dev_set_unmap_enabled(struct tcmu_device *dev, bool enabled)
{
	dev->unmap_enabled = enabled;
}

void tcmu_dev_set_max_unmap_len(struct tcmu_device *dev, uint32_t len)
{
	dev->max_unmap_len = len;
}

void tcmu_dev_set_opt_unmap_gran(struct tcmu_device *dev, uint32_t len,
				 bool split)
{
	dev->opt_unmap_gran = len;
	dev->split_unmaps = split;
}

void tcmu_dev_set_unmap_gran_align(struct tcmu_device *dev, uint32_t len)
{
	dev->unmap_gran_align = len;
}

/* What Debian's handler_qcow.so imports besides (tools/bench). */
uint64_t tcmu_cfgfs_dev_get_info_u64(struct tcmu_device *dev, const char *name,
				     int *fn_ret)
{
	*fn_ret = strcmp(name, "Size") ? -ENOENT : 0;
	return *fn_ret ? 0 : dev->num_lbas * dev->block_size;
}

size_t tcmu_iovec_length(struct iovec *iov, size_t iov_cnt)
{
	size_t len = 0;

	for (size_t i = 0; i < iov_cnt; i++)
		len += iov[i].iov_len;
	return len;
}

/* Moves the iovec's start count bytes on; returns how many entries it
 * used up. */
size_t tcmu_iovec_seek(struct iovec *iov, size_t count)
{
	size_t used = 0;

	for (; count; iov++) {
		size_t step = count < iov->iov_len ? count : iov->iov_len;

		iov->iov_base = (char *)iov->iov_base + step;
		iov->iov_len -= step;
		count -= step;
		if (!iov->iov_len)
			used++;
	}
	return used;
}

size_t tcmu_memcpy_into_iovec(struct iovec *iov, size_t iov_cnt, void *src,
			      size_t len)
{
	size_t done = 0;

	for (size_t i = 0; i < iov_cnt && done < len; i++) {
		size_t n = len - done < iov[i].iov_len ? len - done :
							 iov[i].iov_len;

		memcpy(iov[i].iov_base, (char *)src + done, n);
		done += n;
	}
	return done;
}

bool tcmu_iovec_zeroed(struct iovec *iov, size_t iov_cnt)
{
	for (size_t i = 0; i < iov_cnt; i++)
		for (size_t j = 0; j < iov[i].iov_len; j++)
			if (((uint8_t *)iov[i].iov_base)[j])
				return false;
	return true;
}

#define STUB_LOG_FN(name, level)                                       \
	void name(struct tcmu_device *dev, const char *func, int line, \
		  const char *fmt, ...)                                \
	{                                                              \
		va_list ap;                                            \
                                                                       \
		va_start(ap, fmt);                                     \
		stub_log(level, fmt, ap);                              \
		va_end(ap);                                            \
	}

STUB_LOG_FN(tcmu_crit_message, LOG_CRIT)
STUB_LOG_FN(tcmu_err_message, LOG_ERR)
STUB_LOG_FN(tcmu_warn_message, LOG_WARNING)
STUB_LOG_FN(tcmu_info_message, LOG_INFO)
STUB_LOG_FN(tcmu_dbg_message, LOG_DEBUG)
