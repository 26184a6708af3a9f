/* SPDX-License-Identifier: MIT */
/*
 * libgmem's version: these macros tell what a program was compiled against,
 * gm_version() and gm_version_string() (<gmem/gmem.h>) what it runs with.
 * CMakeLists.txt reads the project's version from this file.
 */
#ifndef GMEM_VERSION_H
#define GMEM_VERSION_H

#define GMEM_VERSION_MAJOR 1
#define GMEM_VERSION_MINOR 0
#define GMEM_VERSION_PATCH 0

/* One number that compares in order: 0x010203 for 1.2.3. */
#define GMEM_VERSION                                              \
	((GMEM_VERSION_MAJOR << 16) | (GMEM_VERSION_MINOR << 8) | \
	 GMEM_VERSION_PATCH)

#define GMEM_STRINGIFY_(x) #x
#define GMEM_STRINGIFY(x) GMEM_STRINGIFY_(x)
/* "1.2.3" */
#define GMEM_VERSION_STRING                                        \
	GMEM_STRINGIFY(GMEM_VERSION_MAJOR)                         \
	"." GMEM_STRINGIFY(GMEM_VERSION_MINOR) "." GMEM_STRINGIFY( \
		GMEM_VERSION_PATCH)

#endif /* GMEM_VERSION_H */
