// SPDX-License-Identifier: MIT
/*
 * bad: every kind of invalid request, each answered with the right status;
 * the VMM stays up and still serves a valid request at the end.
 */
#include <gmvm/guest.h>

static const char rodata[] = "read-only data";

static int conv(uint64_t gpa, uint64_t len, uint64_t to, uint64_t flags,
		uint64_t rsvd)
{
	return gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_CONVERT, gpa, len, to,
			 flags, rsvd);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(port) : "memory");
	return v;
}

int main(unsigned int vcpu)
{
	const uint64_t P = PAGE_SIZE, mem = boot->mem_size;
	uint8_t *heap = alloc_pages(2);
	uint64_t h = gpa_of(heap), stack_page = gpa_of(&h) & ~(P - 1);
	int n = 0;

	CHECK(heap);
	/* malformed */
	CHECK_EQ(gmvm_call(GMVM_PORT_MEMCTL, 99, h, P, 0, 0, 0), GMVM_ENOSYS);
	CHECK_EQ(gmvm_call(GMVM_PORT_MEMCTL, 0, h, P, 0, 0, 0), GMVM_ENOSYS);
	CHECK_EQ(conv(h, P, 2, 0, 0), GMVM_EINVAL);
	CHECK_EQ(conv(h, P, ~0ull, 0, 0), GMVM_EINVAL);
	CHECK_EQ(conv(h, P, GMVM_SHARED, 1u << 5, 0), GMVM_EINVAL);
	CHECK_EQ(conv(h, P, GMVM_SHARED,
		      GMVM_CONV_DESTRUCTIVE | GMVM_CONV_INPLACE, 0),
		 GMVM_EINVAL);
	CHECK_EQ(conv(h, P, GMVM_SHARED, 0, 1), GMVM_EINVAL);
	CHECK_EQ(conv(h, 0, GMVM_SHARED, 0, 0), GMVM_EINVAL);
	n += 8;
	/* misaligned */
	CHECK_EQ(conv(h + 1, P, GMVM_SHARED, 0, 0), GMVM_EINVAL);
	CHECK_EQ(conv(h, 100, GMVM_SHARED, 0, 0), GMVM_EINVAL);
	CHECK_EQ(conv(h + 2048, P + 2048, GMVM_PRIVATE, 0, 0), GMVM_EINVAL);
	n += 3;
	/* overflowing */
	CHECK_EQ(conv(~0ull - P + 1, 2 * P, GMVM_SHARED, 0, 0), GMVM_EOVERFLOW);
	CHECK_EQ(conv(h, ~0ull - P + 1, GMVM_SHARED, 0, 0), GMVM_EOVERFLOW);
	n += 2;
	/* outside guest memory */
	CHECK_EQ(conv(mem, P, GMVM_SHARED, 0, 0), GMVM_ERANGE);
	CHECK_EQ(conv(mem - P, 2 * P, GMVM_SHARED, 0, 0), GMVM_ERANGE);
	CHECK_EQ(conv(1ull << 52, P, GMVM_PRIVATE, 0, 0), GMVM_ERANGE);
	CHECK_EQ(conv(0, mem + P, GMVM_PRIVATE, 0, 0), GMVM_ERANGE);
	n += 4;
	/* hypervisor-visible: boot info, page tables, code, rodata, stacks */
	CHECK_EQ(conv(GMVM_BOOT_INFO_GPA, P, GMVM_PRIVATE, 0, 0), GMVM_EPERM);
	CHECK_EQ(conv(0x6000, P, GMVM_PRIVATE, 0, 0), GMVM_EPERM);
	CHECK_EQ(conv(boot->image_start, P, GMVM_PRIVATE, 0, 0), GMVM_EPERM);
	CHECK_EQ(conv(gpa_of(rodata) & ~(P - 1), P, GMVM_PRIVATE, 0, 0),
		 GMVM_EPERM);
	CHECK_EQ(conv(stack_page, P, GMVM_PRIVATE, 0, 0), GMVM_EPERM);
	CHECK_EQ(conv(stack_page, P, GMVM_SHARED, GMVM_CONV_DESTRUCTIVE, 0),
		 GMVM_EPERM);
	/* a range that starts in the data area and runs into nothing bad is
	 * fine, one that covers everything is not */
	CHECK_EQ(conv(0, mem, GMVM_PRIVATE, 0, 0), GMVM_EPERM);
	n += 7;
	/* policy */
	if (boot->flags & GMVM_BOOT_DESTRUCTIVE) {
		CHECK_EQ(conv(h, P, GMVM_SHARED, GMVM_CONV_INPLACE, 0),
			 GMVM_EOPNOTSUPP);
		n++;
	}
	/* query and info */
	CHECK_EQ(
		gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_QUERY, mem, 0, 0, 0, 0),
		GMVM_ERANGE);
	CHECK_EQ(gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_QUERY, ~0ull, 0, 0, 0,
			   0),
		 GMVM_ERANGE);
	CHECK_EQ(gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_QUERY, h, 1, 0, 0, 0),
		 GMVM_EINVAL);
	CHECK_EQ(gmvm_call(GMVM_PORT_MEMCTL, GMVM_MEMCTL_INFO, 77, 0, 0, 0, 0),
		 GMVM_EINVAL);
	n += 4;
	/* console, device and debug ports */
	CHECK_EQ(gmvm_call(GMVM_PORT_CONSOLE, 7, 0, 0, 0, 0, 0), GMVM_ENOSYS);
	CHECK_EQ(gmvm_call(GMVM_PORT_CONSOLE, GMVM_CONSOLE_WRITE, h, 5000, 0, 0,
			   0),
		 GMVM_E2BIG);
	CHECK_EQ(gmvm_call(GMVM_PORT_CONSOLE, GMVM_CONSOLE_WRITE, mem - 1, 2, 0,
			   0, 0),
		 GMVM_ERANGE);
	CHECK_EQ(unshare(h, P), 0);
	CHECK_EQ(gmvm_call(GMVM_PORT_CONSOLE, GMVM_CONSOLE_WRITE, h, 10, 0, 0,
			   0),
		 GMVM_EFAULT);
	CHECK_EQ(gmvm_call(GMVM_PORT_CHKDEV, 0, 0, 0, 0, 0, 0), GMVM_ENOSYS);
	CHECK_EQ(dev_checksum((void *)(uintptr_t)(mem - 8), 16,
			      (uint64_t *)heap),
		 GMVM_ERANGE);
	CHECK_EQ(dev_checksum((void *)(uintptr_t)~0ull, 16, (uint64_t *)heap),
		 GMVM_EOVERFLOW);
	CHECK_EQ(dev_checksum(heap, 0, (uint64_t *)heap), GMVM_EINVAL);
	/* the device never writes page tables, code or stacks */
	CHECK_EQ(dev_fill((void *)0x6000, 16, 1), GMVM_EPERM);
	CHECK_EQ(dev_checksum(rodata, 4, (uint64_t *)stack_page), GMVM_EPERM);
	CHECK_EQ(gmvm_call(GMVM_PORT_DEBUG, 9, 0, 0, 0, 0, 0), GMVM_ENOSYS);
	CHECK_EQ(peek(heap, GMVM_DEBUG_PEEK_MAX + 1), GMVM_E2BIG);
	n += 12;
	/* ports nobody claims, wrong access sizes */
	CHECK(inl(0x1234) == 0xffffffffu);
	CHECK(inb(0x0501) == 0xff);
	CHECK(inb(GMVM_PORT_MEMCTL) == 0xff);
	outl(0x4321, 1);
	outl(GMVM_PORT_MEMCTL, 1);
	n += 5;

	/* still alive: a valid request works */
	CHECK_EQ(share(h, 2 * P), 0);
	CHECK_EQ(query(h), GMVM_SHARED);
	printf("%d bad requests answered with the right status; the VMM is "
	       "still serving\n",
	       n);
	(void)vcpu;
	return 0;
}
