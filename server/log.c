// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Levelled logging to stderr. Under systemd, stderr is the journal: then
 * each line carries the "<N>" priority prefix journald understands instead
 * of our own timestamp, and lines about a connection go to the journal
 * directly with fields to filter on (journalctl PEER=... VDISK=...).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "common/util.h"
#include "vxhsd.h"

static int max_level = LOG_INFO;
static bool to_journal;

static const char *const names[] = {
	[LOG_EMERG] = "emerg",	   [LOG_ALERT] = "alert",
	[LOG_CRIT] = "crit",	   [LOG_ERR] = "error",
	[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",	   [LOG_DEBUG] = "debug",
};

int log_level_parse(const char *name)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (!strcasecmp(name, names[i]))
			return i;
	if (!strcasecmp(name, "err"))
		return LOG_ERR;
	return -1;
}

/* JOURNAL_STREAM names the device and inode of the journal's stream. */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_init(int level)
{
	max_level = level;
	to_journal = stderr_is_journal();
}

static void emit(int level, const char *msg)
{
	if (to_journal) {
		fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%F %T", &tm);
		fprintf(stderr, "%s.%03ld vxhsd %s: %s\n", when,
			ts.tv_nsec / 1000000, names[level], msg);
	}
}

void vlog(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg);
}

/* "KEY=value" in buf, for sd_journal_sendv. */
static void field(struct iovec *iov, int *n, char *buf, size_t len,
		  const char *key, const char *value)
{
	int k = snprintf(buf, len, "%s=%s", key, value);

	iov[*n].iov_base = buf;
	iov[*n].iov_len = k < 0 ? 0 : MIN((size_t)k, len - 1);
	(*n)++;
}

void slog(const struct session *s, const char *vdisk, int opcode, int level,
	  const char *fmt, ...)
{
	char text[2048], msg[2064], prio[16], peer[96], ident[192], vd[96];
	char op[48];
	struct iovec iov[7];
	va_list ap;
	int n = 0;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (!to_journal) {
		emit(level, text);
		return;
	}
	field(iov, &n, msg, sizeof(msg), "MESSAGE", text);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
	iov[n++] = (struct iovec){ prio, strlen(prio) };
	field(iov, &n, peer, sizeof(peer), "PEER", s->peer);
	if (s->ident.label[0])
		field(iov, &n, ident, sizeof(ident), "IDENTITY",
		      s->ident.label);
	if (vdisk)
		field(iov, &n, vd, sizeof(vd), "VDISK", vdisk);
	if (opcode >= 0)
		field(iov, &n, op, sizeof(op), "OP",
		      vxhs_opcode_name((uint16_t)opcode));
	iov[n++] = (struct iovec){ "SYSLOG_IDENTIFIER=vxhsd", 23 };
	/* The journal gone (or full): the line still goes to stderr. */
	if (sd_journal_sendv(iov, n) < 0)
		emit(level, text);
}

bool ratelimit_ok(struct ratelimit *rl, unsigned int *missed)
{
	struct timespec ts;
	uint64_t now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&rl->lock);
	*missed = 0;
	if (now - rl->window_start > rl->interval_ns) {
		*missed = rl->missed;
		rl->window_start = now;
		rl->printed = 0;
		rl->missed = 0;
	}
	ok = rl->printed < rl->burst;
	if (ok)
		rl->printed++;
	else
		rl->missed++;
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

const char *log_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 5 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}
