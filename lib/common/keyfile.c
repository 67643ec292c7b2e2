// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/*
 * Loading a configuration file (glib key file) that people edit by hand:
 * bytes that are not UTF-8 are named by line before glib sees them (it
 * would otherwise hand back NULL values with no line to point at).
 */
#include <string.h>

#include "common/keyfile.h"

gboolean vxhs_keyfile_load(GKeyFile *kf, const char *path, GError **error)
{
	g_autofree char *text = NULL;
	const char *line, *end;
	unsigned int nr = 1;
	gsize len;

	if (!g_file_get_contents(path, &text, &len, error))
		return FALSE;
	if (memchr(text, '\0', len)) {
		g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
			    "a NUL byte in the file");
		return FALSE;
	}
	for (line = text; line < text + len; line = end + 1, nr++) {
		end = memchr(line, '\n', (size_t)(text + len - line));
		if (!end)
			end = text + len;
		if (!g_utf8_validate(line, end - line, NULL)) {
			g_set_error(error, G_KEY_FILE_ERROR,
				    G_KEY_FILE_ERROR_PARSE,
				    "line %u: not valid UTF-8", nr);
			return FALSE;
		}
	}
	return g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, error);
}
