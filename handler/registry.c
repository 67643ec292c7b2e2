// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * The LUNs this tcmu-runner serves through the handler. tcmu-runner keeps
 * its own list of devices but does not give it to handlers, and an
 * EXTENDED COPY sent to one LUN may name another by its NAA designator.
 * The designator is made from the unit serial each time it is looked for:
 * an administrator may change vpd_unit_serial in configfs at any time.
 */
#include <stdlib.h>
#include <string.h>

#include "vxhs_handler.h"
#include "xcopy_list.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_cond = PTHREAD_COND_INITIALIZER;
static struct vxhs_dev *luns;

void vxhs_registry_add(struct vxhs_dev *vdev)
{
	pthread_mutex_lock(&registry_lock);
	vdev->next_lun = luns;
	luns = vdev;
	pthread_mutex_unlock(&registry_lock);
}

void vxhs_registry_remove(struct vxhs_dev *vdev)
{
	pthread_mutex_lock(&registry_lock);
	for (struct vxhs_dev **p = &luns; *p; p = &(*p)->next_lun) {
		if (*p == vdev) {
			*p = vdev->next_lun;
			break;
		}
	}
	while (vdev->copy_refs)
		pthread_cond_wait(&registry_cond, &registry_lock);
	pthread_mutex_unlock(&registry_lock);
}

struct vxhs_dev *vxhs_registry_find(const uint8_t *naa)
{
	struct vxhs_dev *found = NULL;

	pthread_mutex_lock(&registry_lock);
	for (struct vxhs_dev *v = luns; v && !found; v = v->next_lun) {
		uint8_t its[XCOPY_NAA_LEN];
		char *serial = tcmu_cfgfs_dev_get_wwn(v->dev);

		if (!serial)
			continue;
		xcopy_naa_from_serial(serial, its);
		free(serial);
		if (!memcmp(its, naa, XCOPY_NAA_LEN))
			found = v;
	}
	if (found)
		found->copy_refs++;
	pthread_mutex_unlock(&registry_lock);
	return found;
}

void vxhs_registry_put(struct vxhs_dev *vdev)
{
	pthread_mutex_lock(&registry_lock);
	if (!--vdev->copy_refs)
		pthread_cond_broadcast(&registry_cond);
	pthread_mutex_unlock(&registry_lock);
}
