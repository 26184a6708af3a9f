// SPDX-License-Identifier: MIT
/* A tree without gmem-vm: the measured launch row cannot be measured. */
#include "bench.h"

void bench_launch(void)
{
	row_missing("launch.populate256m",
		    "populate + measure a 256 MiB image, private",
		    "gmem-vm's launch code not built");
}
