// SPDX-License-Identifier: MIT
/*
 * device: the checksum device uses guest memory only through the library.
 * Private buffers fail with EFAULT; shared ones work; a buffer the device
 * holds cannot be made private (EBUSY) unless the hold is revocable, in
 * which case the device gives it back and the conversion goes ahead.
 */
#include <gmvm/guest.h>

int main(unsigned int vcpu)
{
	uint8_t *buf = alloc_pages(2);
	uint64_t *out = alloc_pages(1);
	uint64_t len = 2 * PAGE_SIZE;
	int h, hs[GMVM_CHK_MAX_HOLDS];

	CHECK(buf && out);
	CHECK_EQ(unshare(gpa_of(buf), len), 0);
	CHECK_EQ(unshare(gpa_of(out), PAGE_SIZE), 0);

	/* private buffer, private result: refused */
	CHECK_EQ(dev_checksum(buf, len, out), GMVM_EFAULT);
	CHECK_EQ(dev_fill(buf, len, 1), GMVM_EFAULT);
	CHECK_EQ(dev_hold(buf, len, false), GMVM_EFAULT);
	CHECK_EQ(share(gpa_of(out), PAGE_SIZE), 0);
	CHECK_EQ(dev_checksum(buf, len, out), GMVM_EFAULT);
	printf("private buffers: refused with EFAULT\n");

	/* shared: it works, also on unaligned sub-ranges */
	CHECK_EQ(share(gpa_of(buf), len), 0);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + 7);
	CHECK_EQ(dev_checksum(buf, len, out), 0);
	CHECK(*out == fnv1a64(buf, len));
	CHECK_EQ(dev_checksum(buf + 100, 5000, out), 0);
	CHECK(*out == fnv1a64(buf + 100, 5000));
	CHECK_EQ(dev_fill(buf + 3, 6000, 42), 0);
	for (uint64_t i = 0; i < 6000; i++)
		CHECK(buf[3 + i] == fill_byte(42, i));
	CHECK_EQ(dev_checksum(buf, GMVM_CHK_MAX_LEN + 1, out), GMVM_E2BIG);
	printf("shared buffers: checksum and fill are right\n");

	/* a held buffer cannot go private */
	h = dev_hold(buf, PAGE_SIZE, false);
	CHECK(h >= 0);
	CHECK_EQ(dev_held(h), 1);
	CHECK_EQ(unshare(gpa_of(buf), len), GMVM_EBUSY);
	CHECK_EQ(query(gpa_of(buf)), GMVM_SHARED);
	CHECK_EQ(query(gpa_of(buf) + PAGE_SIZE), GMVM_SHARED);
	CHECK(buf[3] == fill_byte(42, 0));
	CHECK_EQ(dev_release(h), 0);
	CHECK_EQ(dev_release(h), GMVM_ENOENT);
	CHECK_EQ(unshare(gpa_of(buf), len), 0);
	printf("held buffer: conversion refused with EBUSY until released\n");

	/* a revocable hold is given back */
	CHECK_EQ(share(gpa_of(buf), len), 0);
	h = dev_hold(buf, len, true);
	CHECK(h >= 0);
	CHECK_EQ(unshare(gpa_of(buf), len), 0);
	CHECK_EQ(query(gpa_of(buf)), GMVM_PRIVATE);
	CHECK_EQ(dev_held(h), 0);
	CHECK_EQ(dev_release(h), GMVM_ECANCELED);
	printf("revocable hold: revoked, the conversion went ahead\n");

	/* slots run out, bad handles */
	CHECK_EQ(share(gpa_of(buf), len), 0);
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		hs[i] = dev_hold(buf, 1, false);
		CHECK(hs[i] >= 0);
	}
	CHECK_EQ(dev_hold(buf, 1, false), GMVM_ENOMEM);
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++)
		CHECK_EQ(dev_release(hs[i]), 0);
	CHECK_EQ(dev_release(99), GMVM_ENOENT);
	CHECK_EQ(dev_release(-1), GMVM_ENOENT);
	CHECK_EQ(gmvm_call(GMVM_PORT_CHKDEV, GMVM_CHK_HOLD, gpa_of(buf), 1, 4,
			   0, 0),
		 GMVM_EINVAL);
	CHECK_EQ(unshare(gpa_of(buf), len), 0);
	printf("hold slots and handles checked\n");
	(void)vcpu;
	return 0;
}
