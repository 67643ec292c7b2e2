/* SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later */
#ifndef VXHS_COMMON_KEYFILE_H
#define VXHS_COMMON_KEYFILE_H

#include <glib.h>

/* g_key_file_load_from_file, but a byte that is not UTF-8 (or a NUL) is
 * an error naming its line. */
gboolean vxhs_keyfile_load(GKeyFile *kf, const char *path, GError **error);

#endif
