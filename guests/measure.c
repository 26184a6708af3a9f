// SPDX-License-Identifier: MIT
/*
 * measure: reads the launch digest through memctl MEASUREMENT and prints it
 * ("launch digest: <hex>"); guests/check_measure.py compares it with what
 * gmem-vm reports and what `gmem-vm measure` computes. Also checks that the
 * request refuses what it must: a wrong length or reserved argument, a
 * buffer outside memory, wrapping, hypervisor-visible (the stack) or
 * private.
 */
#include <gmvm/guest.h>

static int measurement(uint64_t gpa, uint64_t len, uint64_t a2)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_MEASUREMENT, gpa, len,
			 a2, 0, 0);
}

int main(unsigned int vcpu)
{
	uint8_t d[GMVM_DIGEST_SIZE], again[GMVM_DIGEST_SIZE];
	uint8_t on_stack[GMVM_DIGEST_SIZE];
	char hex[2 * GMVM_DIGEST_SIZE + 1];
	uint8_t *page;

	if (vcpu)
		return 0;
	CHECK_EQ(boot->tsc_khz, 0); /* the host's rate is not measured */
	CHECK_EQ(launch_digest(d), GMVM_DIGEST_SIZE);
	CHECK_EQ(launch_digest(again), GMVM_DIGEST_SIZE);
	CHECK(!memcmp(d, again, sizeof(d)));
	for (int i = 0; i < GMVM_DIGEST_SIZE; i++) {
		hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
	}
	hex[2 * GMVM_DIGEST_SIZE] = 0;
	printf("launch digest: %s\n", hex);

	page = alloc_pages(1);
	CHECK(page);
	CHECK_EQ(share(gpa_of(page), PAGE_SIZE), 0);
	CHECK_EQ(measurement(gpa_of(page), GMVM_DIGEST_SIZE - 1, 0),
		 GMVM_EINVAL);
	CHECK_EQ(measurement(gpa_of(page), GMVM_DIGEST_SIZE, 1), GMVM_EINVAL);
	CHECK_EQ(measurement(boot->mem_size - 16, GMVM_DIGEST_SIZE, 0),
		 GMVM_ERANGE);
	CHECK_EQ(measurement(~0ull - 8, GMVM_DIGEST_SIZE, 0), GMVM_EOVERFLOW);
	CHECK_EQ(measurement(gpa_of(on_stack), GMVM_DIGEST_SIZE, 0),
		 GMVM_EPERM);
	CHECK_EQ(measurement(gpa_of(page), GMVM_DIGEST_SIZE, 0),
		 GMVM_DIGEST_SIZE);
	CHECK(!memcmp(page, d, sizeof(d)));
	CHECK_EQ(convert(gpa_of(page), PAGE_SIZE, GMVM_PRIVATE,
			 boot->flags & GMVM_BOOT_DESTRUCTIVE),
		 0);
	CHECK_EQ(measurement(gpa_of(page), GMVM_DIGEST_SIZE, 0), GMVM_EFAULT);
	printf("measure: done\n");
	return 0;
}
