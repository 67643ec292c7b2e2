// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsadm status: on a UNIX socket only its owner may use (--status, or
 * the socket systemd passes as "status"), a client sends one line, "text"
 * or "json", and gets the agent's connections, who each is, what is in
 * flight and what each did with each vdisk; then the socket closes. The
 * main thread answers, with a send timeout, like the control socket.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "common/util.h"
#include "vxhsd.h"

static int status_fd = -1;
static char *status_path; /* ours to unlink; NULL when systemd's */
static uint64_t started_ns;

int status_open(const char *path)
{
	int fd = listen_unix_private(path, "--status");

	if (fd < 0)
		return fd;
	status_fd = fd;
	status_path = g_strdup(path);
	started_ns = vxhs_now_ns();
	return 0;
}

void status_adopt(int fd)
{
	status_fd = fd;
	started_ns = vxhs_now_ns();
}

int status_fd_get(void)
{
	return status_fd;
}

void status_close(void)
{
	if (status_fd < 0)
		return;
	if (status_path) {
		close(status_fd);
		unlink(status_path);
	}
	g_free(status_path);
	status_path = NULL;
	status_fd = -1;
}

static void json_str(GString *o, const char *s)
{
	g_string_append_c(o, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			g_string_append_printf(o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			g_string_append_printf(o, "\\u%04x", c);
		else
			g_string_append_c(o, (char)c);
	}
	g_string_append_c(o, '"');
}

static const char *transport(const struct session *s)
{
	return s->is_unix ? "unix" : s->tls ? "tls" : "plaintext";
}

/* One vdisk's line, summed over the connections that use it. */
struct vdisk_total {
	unsigned int conns;
	uint64_t ops[2], bytes[2], errors;
};

struct report {
	GString *out;
	bool json;
	unsigned int nr;
	GTree *totals; /* vdisk id -> struct vdisk_total */
	uint64_t now;
};

static void use_add(struct report *rp, const struct vdisk_use *u,
		    uint64_t ops[2], uint64_t bytes[2], uint64_t *errors)
{
	struct vdisk_total *t = g_tree_lookup(rp->totals, u->vd->id);

	for (int i = 0; i < 2; i++) {
		ops[i] = atomic_load(&u->ops[i]);
		bytes[i] = atomic_load(&u->bytes[i]);
	}
	*errors = atomic_load(&u->errors);
	if (!t) {
		t = g_new0(struct vdisk_total, 1);
		/* A copy: the vdisk may go once the sessions are let go. */
		g_tree_insert(rp->totals, g_strdup(u->vd->id), t);
	}
	t->conns++;
	for (int i = 0; i < 2; i++) {
		t->ops[i] += ops[i];
		t->bytes[i] += bytes[i];
	}
	t->errors += *errors;
}

static void vdisk_line(GString *o, bool json, const char *id,
		       unsigned int conns, const uint64_t ops[2],
		       const uint64_t bytes[2], uint64_t errors)
{
	char *rd, *wr;

	if (json) {
		g_string_append(o, "{\"id\":");
		json_str(o, id);
		if (conns)
			g_string_append_printf(o, ",\"connections\":%u", conns);
		g_string_append_printf(
			o,
			",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
			",\"bytes_read\":%" PRIu64 ",\"bytes_written\":%" PRIu64
			",\"errors\":%" PRIu64 "}",
			ops[0], ops[1], bytes[0], bytes[1], errors);
		return;
	}
	rd = g_format_size_full(bytes[0], G_FORMAT_SIZE_IEC_UNITS);
	wr = g_format_size_full(bytes[1], G_FORMAT_SIZE_IEC_UNITS);
	if (conns)
		g_string_append_printf(o, "%-32s %5u", id, conns);
	else
		g_string_append_printf(o, "    %-34s", id);
	g_string_append_printf(o,
			       " %10" PRIu64 " %10" PRIu64
			       " %10s %10s %7" PRIu64 "\n",
			       ops[0], ops[1], rd, wr, errors);
	g_free(rd);
	g_free(wr);
}

static void one_session(struct session *s, void *arg)
{
	struct report *rp = arg;
	GString *o = rp->out;
	uint64_t age = (rp->now - s->started) / 1000000000ull;

	if (rp->json) {
		g_string_append(o, rp->nr ? ",{\"peer\":" : "{\"peer\":");
		json_str(o, s->peer);
		g_string_append(o, ",\"identity\":");
		json_str(o, s->authenticated ? s->ident.label : "");
		g_string_append_printf(
			o,
			",\"transport\":\"%s\",\"authenticated\":%s"
			",\"age_s\":%" PRIu64 ",\"in_flight\":%u,\"vdisks\":[",
			transport(s), s->authenticated ? "true" : "false", age,
			atomic_load(&s->nr_reqs));
	} else {
		g_string_append_printf(
			o, "%-32s %-24s %-9s %7" PRIu64 "s %9u\n", s->peer,
			s->authenticated ? s->ident.label : "(handshake)",
			transport(s), age, atomic_load(&s->nr_reqs));
	}
	pthread_mutex_lock(&s->use_lock);
	for (unsigned int i = 0; i < s->nr_uses; i++) {
		uint64_t ops[2], bytes[2], errors;

		use_add(rp, s->uses[i], ops, bytes, &errors);
		if (rp->json && i)
			g_string_append_c(o, ',');
		vdisk_line(o, rp->json, s->uses[i]->vd->id, 0, ops, bytes,
			   errors);
	}
	pthread_mutex_unlock(&s->use_lock);
	if (rp->json)
		g_string_append(o, "]}");
	rp->nr++;
}

static gboolean one_total(gpointer key, gpointer value, gpointer arg)
{
	struct report *rp = arg;
	struct vdisk_total *t = value;

	if (rp->json && rp->nr++)
		g_string_append_c(rp->out, ',');
	vdisk_line(rp->out, rp->json, key, t->conns, t->ops, t->bytes,
		   t->errors);
	return FALSE;
}

static gint by_id(gconstpointer a, gconstpointer b, gpointer unused)
{
	return strcmp(a, b);
}

static GString *build(bool json)
{
	struct report rp = {
		.out = g_string_new(NULL),
		.json = json,
		.totals = g_tree_new_full(by_id, NULL, g_free, g_free),
		.now = vxhs_now_ns(),
	};
	uint64_t up = (rp.now - started_ns) / 1000000000ull;
	GString *head = g_string_new(NULL);

	/* Sessions first (they fill the totals), then the header. */
	if (!json)
		g_string_append_printf(rp.out,
				       "\n%-32s %-24s %-9s %8s %9s\n"
				       "    %-34s %10s %10s %10s %10s %7s\n",
				       "CONNECTION", "IDENTITY", "TRANSPORT",
				       "AGE", "IN FLIGHT", "VDISK", "READS",
				       "WRITES", "READ", "WRITTEN", "ERRORS");
	admit_for_each(NULL, one_session, &rp);
	if (json) {
		g_string_append_printf(
			head,
			"{\"version\":\"%s\",\"directory\":", VXHSD_VERSION);
		json_str(head, config.directory);
		g_string_append_printf(head,
				       ",\"uptime_s\":%" PRIu64
				       ",\"connections\":[",
				       up);
		g_string_append(rp.out, "],\"vdisks\":[");
	} else {
		g_string_append_printf(head,
				       "vxhsd %s serving %s, up %" PRIu64
				       " s, %u connection%s\n",
				       VXHSD_VERSION, config.directory, up,
				       rp.nr, rp.nr == 1 ? "" : "s");
		g_string_append_printf(rp.out,
				       "\n%-32s %5s %10s %10s %10s %10s %7s\n",
				       "VDISK", "CONNS", "READS", "WRITES",
				       "READ", "WRITTEN", "ERRORS");
	}
	rp.nr = 0;
	g_tree_foreach(rp.totals, one_total, &rp);
	g_string_append(rp.out, json ? "]}\n" : "");
	g_tree_destroy(rp.totals);
	g_string_append(head, rp.out->str);
	g_string_free(rp.out, TRUE);
	return head;
}

void status_accept(void)
{
	struct timeval tv = { .tv_sec = 2 };
	char line[16] = "";
	GString *report;
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = accept4(status_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = read(fd, line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, "text") && strcmp(line, "json")) {
		static const char err[] = "error: send 'text' or 'json'\n";

		if (write(fd, err, sizeof(err) - 1) < 0)
			vlog(LOG_DEBUG, "status: cannot answer: %m");
		close(fd);
		return;
	}
	report = build(line[0] == 'j');
	while (off < report->len) {
		n = write(fd, report->str + off, report->len - off);
		if (n <= 0) {
			vlog(LOG_INFO, "status: the client stopped reading");
			break;
		}
		off += (size_t)n;
	}
	g_string_free(report, TRUE);
	close(fd);
}
