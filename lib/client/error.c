// SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
/* The per-thread error message behind vxhs_errmsg(). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static __thread char errmsg[1024];

int set_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

const char *vxhs_errmsg(void)
{
	return errmsg[0] ? errmsg : "no error";
}
