// SPDX-License-Identifier: MIT
/*
 * Rows that need gmem-vm and the bench guests (bench/guests/): reported as
 * missing until both exist in this build.
 */
#include "bench.h"

static const struct {
	const char *id, *what;
} vmm_rows[] = {
	{ "vmm.convert4k.inplace",
	  "guest 4 KiB conversion round trip, in place" },
	{ "vmm.convert4k.destructive",
	  "guest 4 KiB conversion round trip, destructive" },
	{ "vmm.scaling.convert", "2-vCPU conversion scaling vs 1 vCPU" },
	{ "vmm.scaling.exits", "2-vCPU bare port I/O exit scaling" },
	{ "vmm.scaling.mprotect", "2-thread bare mprotect scaling" },
};

void bench_vmm(void)
{
	for (unsigned int i = 0; i < sizeof(vmm_rows) / sizeof(vmm_rows[0]);
	     i++)
		row_missing(vmm_rows[i].id, vmm_rows[i].what,
			    cfg.vmm ? "bench guests not built" :
				      "gmem-vm not built");
}
