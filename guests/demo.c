// SPDX-License-Identifier: MIT
/*
 * demo: a guest that keeps a secret, shares a buffer, does I/O through a
 * device, converts back, and lets the VMM's closing report tell what it
 * could and could not read. Lines from the guest start with "guest:", the
 * VMM's own with "[vmm]".
 */
#include <gmvm/guest.h>

static const char secret_text[] = "my disk key is 0xC0FFEE-42";

int main(unsigned int vcpu)
{
	char *secret = alloc_pages(1);
	uint8_t *io = alloc_pages(2);
	uint64_t *sum = alloc_pages(1);
	uint64_t slen = sizeof(secret_text) - 1, iolen = 2 * PAGE_SIZE;
	int st, h;

	CHECK(secret && io && sum);
	printf("guest: I have %llu MiB; my data pages start %s\n",
	       (unsigned long long)(boot->mem_size >> 20),
	       boot->flags & GMVM_BOOT_INIT_PRIVATE ? "private" : "shared");

	/* 1. a secret in private memory */
	CHECK_EQ(unshare(gpa_of(secret), PAGE_SIZE), 0);
	memcpy(secret, secret_text, slen);
	printf("guest: 1. wrote a secret into private page 0x%llx; asking "
	       "the VMM to read it\n",
	       (unsigned long long)gpa_of(secret));
	st = peek(secret, slen);
	CHECK_EQ(st, GMVM_EFAULT);
	printf("guest:    the VMM could not (%s)\n", status_name(st));

	/* 2. share an I/O buffer and use the device */
	CHECK_EQ(share(gpa_of(io), iolen), 0);
	CHECK_EQ(share(gpa_of(sum), PAGE_SIZE), 0);
	CHECK_EQ(dev_fill(io, iolen, 0x42), 0);
	for (uint64_t i = 0; i < iolen; i++)
		CHECK(io[i] == fill_byte(0x42, i));
	CHECK_EQ(dev_checksum(io, iolen, sum), 0);
	CHECK(*sum == fnv1a64(io, iolen));
	printf("guest: 2. shared an 8 KiB buffer: the device filled it and "
	       "checksummed it (0x%016llx, matches mine)\n",
	       (unsigned long long)*sum);

	/* 3. the device cannot touch private memory */
	st = dev_checksum(secret, slen, sum);
	CHECK_EQ(st, GMVM_EFAULT);
	printf("guest: 3. pointed the device at my secret: refused (%s)\n",
	       status_name(st));

	/* 4. an in-flight I/O pins the buffer: no conversion under it */
	h = dev_hold(io, iolen, false);
	CHECK(h >= 0);
	st = unshare(gpa_of(io), iolen);
	CHECK_EQ(st, GMVM_EBUSY);
	printf("guest: 4. tried to take the buffer back while the device "
	       "held it: %s\n",
	       status_name(st));
	CHECK_EQ(dev_release(h), 0);
	CHECK_EQ(unshare(gpa_of(io), iolen), 0);
	printf("guest:    after the device let go: converted back to private "
	       "(%s)\n",
	       boot->flags & GMVM_BOOT_DESTRUCTIVE ? "destructively" :
						     "in place, data kept");
	if (!(boot->flags & GMVM_BOOT_DESTRUCTIVE))
		CHECK(io[0] == fill_byte(0x42, 0));

	/* 5. reveal the secret on purpose, then take it back */
	CHECK_EQ(share(gpa_of(secret), PAGE_SIZE), 0);
	if (boot->flags & GMVM_BOOT_DESTRUCTIVE)
		memcpy(secret, secret_text, slen);
	printf("guest: 5. shared the secret page on purpose\n");
	st = peek(secret, slen);
	CHECK(st >= 0);
	CHECK_EQ(unshare(gpa_of(secret), PAGE_SIZE), 0);
	st = peek(secret, slen);
	CHECK_EQ(st, GMVM_EFAULT);
	printf("guest:    and made it private again: the VMM cannot read it "
	       "(%s)\n",
	       status_name(st));

	/* 6. a request the VMM must refuse */
	st = unshare(0x6000, PAGE_SIZE);
	CHECK_EQ(st, GMVM_EPERM);
	printf("guest: 6. asked to make my page tables private: refused (%s): "
	       "KVM must read them\n",
	       status_name(st));
	printf("guest: done\n");
	(void)vcpu;
	return 0;
}
