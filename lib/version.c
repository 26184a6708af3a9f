// SPDX-License-Identifier: MIT
/* The running library's version (include/gmem/version.h). */
#include "internal.h"

uint32_t gm_version(void)
{
	return GMEM_VERSION;
}

const char *gm_version_string(void)
{
	return GMEM_VERSION_STRING;
}
