// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The copy thread: a second thread copying large local reads from the
 * vdisk's file into the TCMU data area, beside tcmu-runner's command
 * thread (docs/handler.md, "Local reads and writes").
 *
 * A local read costs the command thread the copy itself, and a large read
 * that the initiator split into many commands keeps that one thread busy
 * copying all of them while the other CPUs idle (docs/performance.md).
 * The command thread hands a read of COPY_MIN or more over only while
 * this thread is idle, and copies the next one itself meanwhile: two
 * threads copy, neither waits for the other, and a read that arrives
 * alone is handed over at the cost of one wake-up, as tcmu-runner's own
 * file handlers pay on every command.
 *
 * One thread for the process, running while any LUN has local reads.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vxhs_handler.h"

/* Smaller reads are cheaper to copy than a wake-up. */
#define COPY_MIN (64u * 1024)

struct copy_job {
	struct vxhs_dev *vdev; /* NULL: no job */
	struct tcmur_cmd *cmd;
	struct iovec *iov; /* tcmu-runner's, valid until completion */
	size_t cnt;
	uint64_t off;
	size_t len;
};

/* Lock order: life_lock, then copy_lock. */
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int users; /* grants with local reads: life_lock */
static pthread_t copier;

static pthread_mutex_t copy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;  /* job, stop */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* job done */
static struct copy_job job;
static bool running, stopping;
/* job.vdev != NULL, read without copy_lock by the command threads. */
static atomic_bool busy;

static void copy(const struct copy_job *j)
{
	struct tcmu_device *dev = j->vdev->dev;

	if (vxhs_local_read(j->vdev, j->iov, j->cnt, j->off, j->len))
		tcmur_cmd_complete(dev, j->cmd, TCMU_STS_OK);
	else
		vxhs_read_from_agent(dev, j->cmd, j->iov, j->cnt, j->off,
				     j->len);
}

static void *copy_main(void *arg)
{
	struct copy_job j;

	(void)arg;
	pthread_mutex_lock(&copy_lock);
	for (;;) {
		while (!job.vdev && !stopping)
			pthread_cond_wait(&job_cond, &copy_lock);
		if (!job.vdev)
			break; /* stopping, and nothing handed over */
		j = job;
		pthread_mutex_unlock(&copy_lock);
		copy(&j);
		pthread_mutex_lock(&copy_lock);
		job.vdev = NULL;
		atomic_store(&busy, false);
		pthread_cond_broadcast(&idle_cond);
	}
	pthread_mutex_unlock(&copy_lock);
	return NULL;
}

int vxhs_copy_thread_start(void)
{
	int ret = 0;

	pthread_mutex_lock(&life_lock);
	if (!users) {
		stopping = false;
		ret = -pthread_create(&copier, NULL, copy_main, NULL);
		if (!ret) {
			/* Named for profiles and `top -H`. */
			pthread_setname_np(copier, "vxhs-copy");
			pthread_mutex_lock(&copy_lock);
			running = true;
			pthread_mutex_unlock(&copy_lock);
		}
	}
	if (!ret)
		users++;
	pthread_mutex_unlock(&life_lock);
	return ret;
}

void vxhs_copy_thread_stop(void)
{
	pthread_mutex_lock(&life_lock);
	if (!--users) {
		pthread_mutex_lock(&copy_lock);
		running = false;
		stopping = true;
		pthread_cond_signal(&job_cond);
		pthread_mutex_unlock(&copy_lock);
		/* A job handed over before is done first. */
		pthread_join(copier, NULL);
	}
	pthread_mutex_unlock(&life_lock);
}

bool vxhs_copy_offer(struct vxhs_dev *vdev, struct tcmur_cmd *cmd,
		     struct iovec *iov, size_t cnt, uint64_t off, size_t len)
{
	bool taken = false;

	if (len < COPY_MIN || atomic_load(&busy) ||
	    !vxhs_local_reads_on(vdev, len))
		return false;
	pthread_mutex_lock(&copy_lock);
	if (running && !job.vdev) {
		job = (struct copy_job){ .vdev = vdev,
					 .cmd = cmd,
					 .iov = iov,
					 .cnt = cnt,
					 .off = off,
					 .len = len };
		atomic_store(&busy, true);
		pthread_cond_signal(&job_cond);
		taken = true;
	}
	pthread_mutex_unlock(&copy_lock);
	return taken;
}

void vxhs_copy_forget(struct vxhs_dev *vdev)
{
	pthread_mutex_lock(&copy_lock);
	while (job.vdev == vdev)
		pthread_cond_wait(&idle_cond, &copy_lock);
	pthread_mutex_unlock(&copy_lock);
}
