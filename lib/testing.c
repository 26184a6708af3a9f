// SPDX-License-Identifier: MIT
/* Fault injection: the test-only hook before each fallible step (testing.h). */
#include "internal.h"

int gm_test_set_fault_inject(struct gm_store *store, gm_fault_fn fn,
			     void *opaque)
{
	int ret = gm_check_store(store, "gm_test_set_fault_inject");

	if (ret)
		return ret;
	store->fault_inject = fn;
	store->fault_opaque = opaque;
	return 0;
}

int gm_fault(struct gm_store *store, enum gm_fault_site site)
{
	int ret;

	if (!store->fault_inject)
		return 0;
	ret = store->fault_inject(store->fault_opaque, site);
	return ret < 0 ? ret : 0;
}
