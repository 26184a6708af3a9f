// SPDX-License-Identifier: MIT
#include <math.h>
#include <stdlib.h>

#include "bench.h"
#include "patterns.h"

static void push(struct pattern *p, uint64_t *cap, uint64_t s, uint64_t e,
		 uint8_t v)
{
	if (p->nr_ops == *cap) {
		*cap = *cap ? *cap * 2 : 1024;
		p->ops = realloc(p->ops, *cap * sizeof(*p->ops));
		if (!p->ops)
			die("out of memory building a pattern");
	}
	p->ops[p->nr_ops++] = (struct pat_op){ s, e, v };
}

void pattern_build(struct pattern *p, int which, uint64_t npages, uint64_t seed)
{
	uint64_t cap = 0, st = seed | 1;

	*p = (struct pattern){ .npages = npages, .region = npages };
	switch (which) {
	case PAT_RANGES:
		p->name = "ranges";
		p->what = "1000 shared ranges 4K..64M";
		p->base = 1;
		for (int i = 0; i < 1000; i++) {
			double l2 = (rnd(&st) >> 11) * 0x1p-53 * 14.0;
			uint64_t len = (uint64_t)exp2(l2);
			uint64_t s = rnd_below(&st, npages - len + 1);

			push(p, &cap, s, s + len, 0);
		}
		break;
	case PAT_RANDOM1PCT:
		p->name = "random1pct";
		p->what = "1% private pages at random";
		p->base = 0;
		for (uint64_t i = 0; i < npages / 100; i++) {
			uint64_t s = rnd_below(&st, npages);

			push(p, &cap, s, s + 1, 1);
		}
		break;
	case PAT_ALTERNATING:
		p->name = "alternating";
		p->what = "alternating 4K pages over 4 GiB";
		p->base = 0;
		p->region = npages < (4 * GiB >> 12) ? npages : 4 * GiB >> 12;
		for (uint64_t s = 1; s < p->region; s += 2)
			push(p, &cap, s, s + 1, 1);
		break;
	default:
		die("no pattern %d", which);
	}
}

void pattern_free(struct pattern *p)
{
	free(p->ops);
	p->ops = NULL;
}
