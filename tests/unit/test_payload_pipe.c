// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * vxhsd's payload pipes (server/payload_pipe.c) on real sockets and files:
 * a payload spliced from TCP and into a file at an offset, bytes already
 * read put in front of it, a payload over two pipes, pipes filled by small
 * pieces before the payload is in (and nothing lost when they are), the end
 * of the stream, pipes that hold less than asked for, a file that takes no
 * splice, and the cap.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "vxhsd.h"

#define MIB	 (1u << 20)
#define HALF_MIB (MIB / 2)

static uint8_t *pattern(size_t len, unsigned int seed)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + i / 4093);
	return p;
}

/* A connected loopback TCP pair, both ends non-blocking. */
static void tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fd[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fd[1] = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd[1] >= 0);
	assert_int_equal(fcntl(fd[0], F_SETFL, O_NONBLOCK), 0);
	close(l);
}

static int scratch_file(size_t len, int flags)
{
	char name[] = "/tmp/test_payload_pipe.XXXXXX";
	uint8_t *fill = malloc(len);
	int fd = mkostemp(name, flags);

	assert_true(fd >= 0);
	unlink(name);
	assert_non_null(fill);
	memset(fill, 0xEE, len);
	assert_int_equal(pwrite(fd, fill, len, 0), (ssize_t)len);
	free(fill);
	return fd;
}

/* Closes what a test used; file may be -1. */
static void release(struct payload_pipe *p, const int sk[2], int file)
{
	payload_pipe_close(p);
	assert_false(payload_pipe_active(p));
	close(sk[0]);
	close(sk[1]);
	if (file >= 0)
		close(file);
}

/*
 * Sends data from sk[0] in pieces of piece bytes and splices what arrives
 * at sk[1] into p, until all len bytes are in or the pipes are full.
 * Returns the last fill's result (0 when all is in); *sent and *got count.
 */
static ssize_t fill_in_pieces(struct payload_pipe *p, const int sk[2],
			      const uint8_t *data, size_t len, size_t piece,
			      size_t *sent, size_t *got)
{
	ssize_t n = 0;

	*sent = *got = 0;
	while (*got < len) {
		n = *sent < len ? send(sk[0], data + *sent,
				       MIN(piece, len - *sent), 0) :
				  0;
		if (n > 0)
			*sent += (size_t)n;
		n = payload_pipe_fill(p, sk[1], len - *got);
		if (n == -ENOBUFS)
			return n;
		if (n > 0)
			*got += (size_t)n;
		else
			assert_int_equal(n, -EAGAIN);
	}
	return 0;
}

static void sizes_worth_a_pipe(void **state)
{
	struct payload_pipe p = { 0 };

	(void)state;
	assert_false(payload_pipe_wanted(HALF_MIB - 1));
	assert_true(payload_pipe_wanted(HALF_MIB));
	assert_true(payload_pipe_wanted(4 * MIB));
	assert_false(payload_pipe_wanted(4 * MIB + 1));
	assert_int_equal(payload_pipe_open(&p, 4096), -EINVAL);
	assert_false(payload_pipe_active(&p));
}

/*
 * 1 MiB from TCP, the first bytes put as the agent does with what it read
 * together with the header, then spliced into a file at an odd offset.
 */
static void tcp_payload_into_file(void **state)
{
	const size_t len = MIB, head = 1000, at = 4096 + 7;
	uint8_t *data = pattern(len, 1), *back = malloc(len + 2 * at);
	struct payload_pipe p = { 0 };
	size_t sent = head, got = head;
	uint64_t done;
	int sk[2], file = scratch_file(len + 2 * at, 0);

	(void)state;
	tcp_pair(sk);
	assert_int_equal(payload_pipe_open(&p, len), 0);
	assert_int_equal(payload_pipe_put(&p, data, head), head);
	while (got < len) {
		ssize_t n = send(sk[0], data + sent, len - sent, MSG_DONTWAIT);

		if (n > 0)
			sent += (size_t)n;
		n = payload_pipe_fill(&p, sk[1], len - got);
		if (n == -EAGAIN)
			continue;
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(payload_pipe_to_file(&p, file, at, len, &done), 0);
	assert_int_equal(done, len);
	assert_int_equal(pread(file, back, len + 2 * at, 0),
			 (ssize_t)(len + 2 * at));
	assert_memory_equal(back + at, data, len);
	for (size_t i = 0; i < at; i++) {
		assert_int_equal(back[i], 0xEE);
		assert_int_equal(back[at + len + i], 0xEE);
	}
	release(&p, sk, file);
	free(back);
	free(data);
}

/*
 * Each small send on a UNIX socket takes a pipe slot of its own: the chain
 * of pipes fills long before half a MiB is in. What it holds comes back in
 * order, and the rest is still in the socket.
 */
static void small_pieces_fill_the_pipe(void **state)
{
	const size_t len = HALF_MIB, piece = 100;
	uint8_t *data = pattern(len, 2), *back = malloc(len);
	struct payload_pipe p = { 0 };
	size_t sent, got;
	ssize_t n;
	int sk[2];

	(void)state;
	assert_non_null(back);
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sk), 0);
	assert_int_equal(payload_pipe_open(&p, len), 0);
	assert_int_equal(fill_in_pieces(&p, sk, data, len, piece, &sent, &got),
			 -ENOBUFS);
	assert_true(got > 0 && got < len);
	assert_int_equal(payload_pipe_take(&p, back, got), 0);
	payload_pipe_close(&p);
	while (got < len) {
		n = sent < len ? send(sk[0], data + sent, len - sent, 0) : 0;
		if (n > 0)
			sent += (size_t)n;
		n = recv(sk[1], back + got, len - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	assert_memory_equal(back, data, len);
	release(&p, sk, -1);
	free(back);
	free(data);
}

/*
 * Pieces of 4000 bytes take a slot each: half a MiB needs a second pipe,
 * and the chain goes into the file in order.
 */
static void payload_over_two_pipes(void **state)
{
	const size_t len = HALF_MIB, piece = 4000, at = 12345;
	uint8_t *data = pattern(len, 5), *back = malloc(len);
	struct payload_pipe p = { 0 };
	size_t sent, got;
	uint64_t done;
	int sk[2], file = scratch_file(len + at, 0);

	(void)state;
	assert_non_null(back);
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sk), 0);
	assert_int_equal(payload_pipe_open(&p, len), 0);
	assert_int_equal(fill_in_pieces(&p, sk, data, len, piece, &sent, &got),
			 0);
	assert_int_equal(got, len);
	assert_int_equal(p.nr, 2);
	assert_int_equal(payload_pipe_held(&p), len);
	assert_int_equal(payload_pipe_to_file(&p, file, at, len, &done), 0);
	assert_int_equal(done, len);
	assert_int_equal(pread(file, back, len, at), (ssize_t)len);
	assert_memory_equal(back, data, len);
	release(&p, sk, file);
	free(back);
	free(data);
}

static void empty_socket_then_end(void **state)
{
	struct payload_pipe p = { 0 };
	int sk[2];

	(void)state;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sk), 0);
	assert_int_equal(payload_pipe_open(&p, MIB), 0);
	assert_int_equal(payload_pipe_fill(&p, sk[1], MIB), -EAGAIN);
	close(sk[0]);
	assert_int_equal(payload_pipe_fill(&p, sk[1], MIB), 0);
	payload_pipe_close(&p);
	close(sk[1]);
}

/* Pipes that hold less than the payload are an error, not a wait. */
static void short_pipe_is_an_error(void **state)
{
	uint8_t *data = pattern(MIB, 3);
	struct payload_pipe p = { 0 };
	int file = scratch_file(2 * MIB, 0);
	uint64_t done;

	(void)state;
	assert_int_equal(payload_pipe_open(&p, MIB), 0);
	assert_int_equal(payload_pipe_put(&p, data, 5000), 5000);
	assert_int_equal(payload_pipe_to_file(&p, file, 0, MIB, &done), -EIO);
	assert_int_equal(done, 0);
	assert_int_equal(payload_pipe_take(&p, data, MIB), -EIO);
	assert_int_equal(payload_pipe_take(&p, data, 4999), -EIO);
	assert_int_equal(payload_pipe_held(&p), 5000);
	payload_pipe_close(&p);
	close(file);
	free(data);
}

/* Splice refuses a file opened for appending: the payload stays whole in
 * the pipe for the agent to write from its buffer. */
static void file_without_splice(void **state)
{
	uint8_t *data = pattern(MIB, 4), *back = malloc(MIB);
	struct payload_pipe p = { 0 };
	int file = scratch_file(4096, O_APPEND);
	uint64_t done = 1;

	(void)state;
	assert_int_equal(payload_pipe_open(&p, MIB), 0);
	assert_int_equal(payload_pipe_put(&p, data, MIB), MIB);
	assert_int_equal(payload_pipe_to_file(&p, file, 0, MIB, &done),
			 -EINVAL);
	assert_int_equal(done, 0);
	assert_int_equal(payload_pipe_take(&p, back, MIB), 0);
	assert_memory_equal(back, data, MIB);
	payload_pipe_close(&p);
	close(file);
	free(back);
	free(data);
}

static void pipes_are_capped(void **state)
{
	struct payload_pipe p[65] = { 0 };
	unsigned int n = 0;

	(void)state;
	while (n < 65 && payload_pipe_open(&p[n], HALF_MIB) == 0)
		n++;
	assert_int_equal(n, 64);
	assert_int_equal(payload_pipe_open(&p[64], HALF_MIB), -EBUSY);
	payload_pipe_close(&p[0]);
	assert_int_equal(payload_pipe_open(&p[64], HALF_MIB), 0);
	for (unsigned int i = 0; i < 65; i++)
		payload_pipe_close(&p[i]);
	assert_int_equal(payload_pipe_open(&p[0], HALF_MIB), 0);
	payload_pipe_close(&p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_worth_a_pipe),
		cmocka_unit_test(tcp_payload_into_file),
		cmocka_unit_test(small_pieces_fill_the_pipe),
		cmocka_unit_test(payload_over_two_pipes),
		cmocka_unit_test(empty_socket_then_end),
		cmocka_unit_test(short_pipe_is_an_error),
		cmocka_unit_test(file_without_splice),
		cmocka_unit_test(pipes_are_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
