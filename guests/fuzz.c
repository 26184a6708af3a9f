// SPDX-License-Identifier: MIT
/*
 * fuzz: thousands of random requests on every port, mixing garbage with
 * values near the edges (0, the end of memory, the data area, page-aligned
 * and not, wrapping lengths). The VMM must answer each one and stay up;
 * at the end a valid request still works. The guest itself keeps nothing
 * it needs outside its stack, so that random conversions of its own data
 * cannot break it; device writes go only to the data area, never to the
 * (shared) stacks.
 */
#include <gmvm/guest.h>

#define ITERS 3000

static uint64_t pick(uint64_t *rng, uint64_t mem, uint64_t heap, bool dev)
{
	uint64_t r = rand64(rng);
	uint64_t page = (r >> 8) % ((mem - heap) / PAGE_SIZE);

	switch (r % 10) {
	case 0:
		return 0;
	case 1:
		return mem;
	case 2:
		return ~0ull - (r >> 40);
	case 3:
		return r;
	case 4:
		return heap + page * PAGE_SIZE + (r >> 60);
	case 5:
		return dev ? mem + (r >> 50) : (r >> 20) % mem;
	default:
		return heap + page * PAGE_SIZE;
	}
}

static uint64_t pick_len(uint64_t *rng)
{
	uint64_t r = rand64(rng);

	switch (r % 8) {
	case 0:
		return 0;
	case 1:
		return r;
	case 2:
		return ~0ull - PAGE_SIZE + 1;
	case 3:
		return (r >> 8) % 300;
	default:
		return PAGE_SIZE * (1 + (r >> 8) % 16);
	}
}

/* 1 once a conversion of page to state is followed by a query that sees it */
static int convert_seen(uint64_t page, int state)
{
	for (int tries = 0; tries < 100000; tries++) {
		if (convert(page, PAGE_SIZE, state, true) != 0)
			return -1;
		if (query(page) == state)
			return 1;
	}
	return 0;
}

int main(unsigned int vcpu)
{
	static const uint16_t ports[] = {
		GMVM_PORT_CONSOLE,
		GMVM_PORT_MEMCTL,
		GMVM_PORT_MEMCTL,
		GMVM_PORT_MEMCTL,
		GMVM_PORT_CHKDEV,
		GMVM_PORT_CHKDEV,
		GMVM_PORT_DEBUG,
		0x0501,
		0x051c,
		0x7000,
	};
	const uint64_t mem = boot->mem_size, heap = boot->heap_start;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ rdtsc();
	uint64_t answered[2] = { 0, 0 };

	for (int i = 0; i < ITERS; i++) {
		uint64_t r = rand64(&rng);
		uint16_t port = ports[r % (sizeof(ports) / sizeof(ports[0]))];
		bool dev = port == GMVM_PORT_CHKDEV;
		uint64_t op = (r >> 8) % 16 ? 1 + (r >> 12) % 3 : r >> 16, a2,
			 a3, a4;
		int32_t st;

		if (port == GMVM_PORT_CONSOLE)
			op = (r >> 8) % 3 ? 2 :
					    0; /* no garbage on the console */
		a2 = dev ? pick(&rng, mem, heap, true) : rand64(&rng) % 3;
		a3 = rand64(&rng) % 4;
		a4 = rand64(&rng) % 7 ? 0 : rand64(&rng);
		st = gmvm_call(port, op, pick(&rng, mem, heap, dev),
			       pick_len(&rng), a2, a3, a4);
		answered[st < 0]++;
	}
	for (int h = 0; h < GMVM_CHK_MAX_HOLDS; h++)
		dev_release(h);
	/*
	 * Still alive and right. Every vCPU runs this, and another one may
	 * still be converting random heap pages, this one included: a
	 * conversion must succeed, and its state must be seen before long.
	 */
	CHECK_EQ(convert_seen(heap, GMVM_SHARED), 1);
	CHECK_EQ(convert_seen(heap, GMVM_PRIVATE), 1);
	printf("fuzz: %d random requests: %llu succeeded, %llu refused; the "
	       "VMM is still serving\n",
	       ITERS, (unsigned long long)answered[0],
	       (unsigned long long)answered[1]);
	(void)vcpu;
	return 0;
}
