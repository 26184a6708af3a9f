// SPDX-License-Identifier: MIT
/*
 * secret: the guest keeps a secret in private memory. The VMM's attempt to
 * read it through the library (gm_read, triggered by a debug peek) fails
 * with -EFAULT; after the guest shares the page the VMM reads it; after the
 * guest takes it back, it cannot again.
 */
#include <gmvm/guest.h>

static const char secret_text[] = "the launch code is 7-7-swordfish";

int main(unsigned int vcpu)
{
	char *secret = alloc_pages(1);
	uint64_t len = sizeof(secret_text) - 1;
	int expect;

	CHECK(secret);
	/* whatever --init said, this page is private before the secret */
	CHECK_EQ(unshare(gpa_of(secret), PAGE_SIZE), 0);
	memcpy(secret, secret_text, len);
	expect = (int)(fnv1a64(secret, len) & 0x7fffffff);

	CHECK_EQ(peek(secret, len), GMVM_EFAULT);
	printf("secret kept private: the VMM's read failed with EFAULT\n");

	CHECK_EQ(share(gpa_of(secret), PAGE_SIZE), 0);
	if (boot->flags & GMVM_BOOT_DESTRUCTIVE) /* sharing wiped it */
		memcpy(secret, secret_text, len);
	CHECK_EQ(peek(secret, len), expect);
	printf("secret shared: the VMM read it\n");

	CHECK_EQ(unshare(gpa_of(secret), PAGE_SIZE), 0);
	CHECK_EQ(peek(secret, len), GMVM_EFAULT);
	printf("secret private again: the VMM's read failed with EFAULT\n");
	(void)vcpu;
	return 0;
}
