// SPDX-License-Identifier: MIT
/*
 * fuzz_store_ops: sequences of store operations (convert, pin, unpin,
 * read, write, view open, hypervisor-visible ranges, writes through pins
 * and the view) on a small memfd store, with injected faults
 * (gm_test_set_fault_inject), listener vetoes and revocable pins that
 * may refuse to go, decoded from the input. After each step the store is
 * checked against a reference model:
 *  - every page's state and the extent count match the model;
 *  - every page's contents (read with pread, private ones too) match a
 *    shadow copy: in place conversions keep them, destructive ones zero
 *    the pages that changed;
 *  - gm_read of a range is its shadow bytes if all shared, else -EFAULT;
 *  - a failed conversion leaves states and contents as they were (a
 *    destructive one may have discarded whole changed sub-ranges, which
 *    then read zero; nothing else);
 *  - listeners heard each maximal changed sub-range once, prepare before
 *    commit, an abort for every prepare of a failed conversion;
 *  - the host view: a private page that is not hypervisor-visible is
 *    never accessible (checked in /proc/self/maps), an open page reads its
 *    shadow, every pin's pointer reads its shadow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "fuzz_common.h"
#include "testing.h"

#define PG 4096u
#define MAXP 64
#define MAXPINS 8
#define MAXCALLS 256

struct mpin {
	struct gm_pin *pin;
	uint64_t s, e; /* pages */
	unsigned int flags;
	bool revocable, stubborn, active;
};

struct call {
	char kind; /* 'p'repare, 'c'ommit, 'a'bort */
	uint64_t off, len;
	int from, to;
};

static struct fz {
	struct gm_store *st;
	uint64_t np;
	uint8_t attr[MAXP];
	bool hv[MAXP];
	uint8_t shadow[MAXP * PG];
	struct mpin pins[MAXPINS];
	/* fault injection: fail the fault_at-th fallible step */
	int fault_at, fault_calls, fault_err, faults_fired;
	/* listener */
	bool listening;
	int veto_at, prepares, veto_err;
	struct call calls[MAXCALLS];
	int nr_calls;
	uint8_t page[PG];
} z;

static int inject(void *opaque, enum gm_fault_site site)
{
	(void)opaque;
	(void)site;
	if (z.fault_at && ++z.fault_calls == z.fault_at) {
		z.faults_fired++;
		return z.fault_err;
	}
	return 0;
}

static void record(char kind, const struct gm_range_change *c)
{
	if (z.nr_calls < MAXCALLS)
		z.calls[z.nr_calls++] =
			(struct call){ kind, c->off, c->len, c->from, c->to };
}

static int l_prepare(void *opaque, const struct gm_range_change *c)
{
	(void)opaque;
	record('p', c);
	if (z.veto_at && ++z.prepares == z.veto_at)
		return z.veto_err;
	return 0;
}

static void l_commit(void *opaque, const struct gm_range_change *c)
{
	(void)opaque;
	record('c', c);
}

static void l_abort(void *opaque, const struct gm_range_change *c)
{
	(void)opaque;
	record('a', c);
}

static void on_revoke(struct gm_pin *pin, void *opaque)
{
	struct mpin *mp = opaque;

	FZ_CHECK(mp->active && mp->pin == pin, "revoke of an unknown pin");
	if (mp->stubborn)
		return;
	gm_unpin(pin);
	mp->active = false;
}

static const int errs[] = { -ENOMEM, -EIO, -EAGAIN, -ENOSPC, -EPERM };

/* ---- checks ---- */

static void read_fd(uint64_t page, uint8_t *buf)
{
	ssize_t n = pread(gm_store_fd(z.st), buf, PG, page * PG);

	FZ_CHECK(n == PG, "pread of page %llu: %zd", (unsigned long long)page,
		 n);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Protection of each view page, from /proc/self/maps: 0 none, 1 rw. */
static void view_prot(uint8_t *rw)
{
	uintptr_t base = (uintptr_t)gm_view_base(z.st);
	uintptr_t end = base + z.np * PG, lo, hi;
	char line[512], perms[8];
	FILE *f = fopen("/proc/self/maps", "r");

	memset(rw, 0, z.np);
	FZ_CHECK(f, "/proc/self/maps");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (hi <= base || lo >= end)
			continue;
		for (uintptr_t a = lo > base ? lo : base; a < hi && a < end;
		     a += PG)
			rw[(a - base) / PG] = perms[0] == 'r';
	}
	fclose(f);
}

static void check_store(void)
{
	struct gm_stats stats = { .sz = sizeof(stats) };
	uint64_t extents = 1, pins = 0;
	uint8_t rw[MAXP];
	enum gm_attr a;

	for (uint64_t p = 0; p < z.np; p++) {
		FZ_CHECK(!gm_attr_get(z.st, p * PG, &a), "gm_attr_get");
		FZ_CHECK(a == z.attr[p], "page %llu is %d, model says %d",
			 (unsigned long long)p, a, z.attr[p]);
		if (p && z.attr[p] != z.attr[p - 1])
			extents++;
		read_fd(p, z.page);
		FZ_CHECK(!memcmp(z.page, &z.shadow[p * PG], PG),
			 "page %llu contents differ from the shadow",
			 (unsigned long long)p);
	}
	FZ_CHECK(gm_extent_count(z.st) == extents,
		 "gm_extent_count %llu, "
		 "model %llu",
		 (unsigned long long)gm_extent_count(z.st),
		 (unsigned long long)extents);

	view_prot(rw);
	for (uint64_t p = 0; p < z.np; p++) {
		int open = gm_view_is_open(z.st, p * PG, PG);

		if (z.attr[p] == GM_ATTR_PRIVATE && !z.hv[p])
			FZ_CHECK(!rw[p],
				 "private page %llu is accessible in the view",
				 (unsigned long long)p);
		if (open == 1) {
			FZ_CHECK(rw[p], "page %llu said open but not mapped",
				 (unsigned long long)p);
			FZ_CHECK(!memcmp((uint8_t *)gm_view_base(z.st) + p * PG,
					 &z.shadow[p * PG], PG),
				 "view of page %llu differs",
				 (unsigned long long)p);
		}
		if (z.hv[p])
			FZ_CHECK(rw[p], "hv-visible page %llu not mapped",
				 (unsigned long long)p);
	}
	for (int i = 0; i < MAXPINS; i++) {
		struct mpin *mp = &z.pins[i];

		if (!mp->active)
			continue;
		pins++;
		for (uint64_t p = mp->s; p < mp->e; p++)
			FZ_CHECK(z.attr[p] == GM_ATTR_SHARED,
				 "pinned page %llu is private",
				 (unsigned long long)p);
		FZ_CHECK(!memcmp(gm_pin_ptr(mp->pin), &z.shadow[mp->s * PG],
				 (mp->e - mp->s) * PG),
			 "pin %d's memory differs from the shadow", i);
	}
	FZ_CHECK(!gm_store_stats(z.st, &stats), "gm_store_stats");
	FZ_CHECK(stats.pins_active == pins, "pins_active %llu, model %llu",
		 (unsigned long long)stats.pins_active,
		 (unsigned long long)pins);
	FZ_CHECK(stats.extents == extents, "stats.extents");
}

/* ---- operations ---- */

struct span {
	uint64_t s, e;
};

static int changed_spans(uint64_t s, uint64_t e, int to, struct span *out)
{
	int n = 0;

	for (uint64_t p = s; p < e; p++) {
		if (z.attr[p] == to)
			continue;
		if (n && out[n - 1].e == p)
			out[n - 1].e = p + 1;
		else
			out[n++] = (struct span){ p, p + 1 };
	}
	return n;
}

static bool pinned(uint64_t s, uint64_t e)
{
	for (int i = 0; i < MAXPINS; i++)
		if (z.pins[i].active && z.pins[i].s < e && s < z.pins[i].e)
			return true;
	return false;
}

static void op_convert(struct reader *r)
{
	uint64_t s = rd(r, 1) % z.np, e = s + 1 + rd(r, 1) % (z.np - s);
	int to = rd(r, 1) & 1, nsp, ret;
	unsigned int fl = rd(r, 1), flags = 0;
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 1000000 };
	struct span sp[MAXP];
	static uint8_t before[MAXP * PG];
	uint64_t changed = 0;

	if (fl & 1)
		flags |= GM_CONVERT_DESTRUCTIVE;
	if (fl & 2)
		flags |= GM_CONVERT_REVOKE;
	z.fault_at = fl & 4 ? 1 + rd(r, 1) % 8 : 0;
	z.fault_err = errs[rd(r, 1) % 5];
	z.fault_calls = z.faults_fired = 0;
	z.veto_at = fl & 8 ? 1 + rd(r, 1) % 4 : 0;
	z.veto_err = -EPERM;
	z.prepares = 0;
	z.nr_calls = 0;

	/* the revoke callbacks run first and change the pin model */
	memcpy(before, z.shadow, z.np * PG);
	ret = gm_convert_ex(z.st, s * PG, (e - s) * PG, to, flags, &co);
	z.fault_at = 0;
	nsp = changed_spans(s, e, to, sp);
	for (int i = 0; i < nsp; i++)
		changed += sp[i].e - sp[i].s;

	if (ret == 0) {
		FZ_CHECK(!(to == GM_ATTR_PRIVATE && nsp && pinned(s, e)),
			 "conversion to private of a pinned range succeeded");
		FZ_CHECK(co.pages_changed == changed,
			 "pages_changed %llu, "
			 "model %llu",
			 (unsigned long long)co.pages_changed,
			 (unsigned long long)changed);
		/* listeners: one prepare and one commit per changed span */
		{
			int np = 0, nc = 0;

			for (int i = 0; i < z.nr_calls; i++) {
				struct call *c = &z.calls[i];
				int k = c->kind == 'p' ? np++ : nc++;

				FZ_CHECK(c->kind != 'a', "abort on success");
				FZ_CHECK(k < nsp && c->off == sp[k].s * PG &&
						 c->len == (sp[k].e - sp[k].s) *
								   PG &&
						 c->to == to && c->from == !to,
					 "listener call %d (%c) is not changed "
					 "span %d",
					 i, c->kind, k);
			}
			FZ_CHECK(!z.listening || (np == nsp && nc == nsp),
				 "%d prepares, %d commits for %d spans", np, nc,
				 nsp);
		}
		for (int i = 0; i < nsp; i++) {
			for (uint64_t p = sp[i].s; p < sp[i].e; p++) {
				z.attr[p] = to;
				if (flags & GM_CONVERT_DESTRUCTIVE)
					memset(&z.shadow[p * PG], 0, PG);
			}
		}
		return;
	}
	/* failed: why must be one the model allows */
	FZ_CHECK(nsp > 0, "a conversion with nothing to change failed: %d",
		 ret);
	FZ_CHECK(z.faults_fired || (z.veto_at && ret == z.veto_err) ||
			 ((ret == -EBUSY || ret == -ETIMEDOUT) &&
			  to == GM_ATTR_PRIVATE && pinned(s, e)),
		 "conversion failed with %d, no fault, veto or pin to explain "
		 "it",
		 ret);
	FZ_CHECK(co.error_offset >= s * PG && co.error_offset < e * PG,
		 "error_offset 0x%llx outside the range",
		 (unsigned long long)co.error_offset);
	{
		int open = 0;

		for (int i = 0; i < z.nr_calls; i++) {
			FZ_CHECK(z.calls[i].kind != 'c', "commit on failure");
			open += z.calls[i].kind == 'p' ? 1 : -1;
		}
		/* the vetoing listener's own prepare gets no abort */
		FZ_CHECK(open == 0 || (open == 1 && z.veto_at),
			 "%d prepares left without an abort", open);
	}
	/* a destructive failure may have discarded whole changed spans */
	for (int i = 0; i < nsp; i++) {
		uint64_t off = sp[i].s * PG, len = (sp[i].e - sp[i].s) * PG;
		static uint8_t now[MAXP * PG];

		for (uint64_t p = sp[i].s; p < sp[i].e; p++)
			read_fd(p, &now[p * PG]);
		if (!memcmp(&now[off], &before[off], len))
			continue;
		FZ_CHECK((flags & GM_CONVERT_DESTRUCTIVE) &&
				 all_zero(&now[off], len),
			 "failed conversion changed the contents of "
			 "[0x%llx, +0x%llx)",
			 (unsigned long long)off, (unsigned long long)len);
		memset(&z.shadow[off], 0, len);
	}
}

/* Whether any of pages [s, e) is private in the model. */
static bool any_private(uint64_t s, uint64_t e)
{
	for (uint64_t p = s; p < e; p++)
		if (z.attr[p] == GM_ATTR_PRIVATE)
			return true;
	return false;
}

static void op_pin(struct reader *r)
{
	uint64_t s = rd(r, 1) % z.np, e = s + 1 + rd(r, 1) % 4;
	unsigned int fl = rd(r, 1);
	struct mpin *mp = NULL;
	bool priv, busy = false;
	int ret;

	e = e < z.np ? e : z.np;
	for (int i = 0; i < MAXPINS && !mp; i++)
		if (!z.pins[i].active)
			mp = &z.pins[i];
	if (!mp)
		return;
	*mp = (struct mpin){ .s = s,
			     .e = e,
			     .flags = fl & 1 ? GM_PIN_EXCLUSIVE : 0,
			     .revocable = fl & 2,
			     .stubborn = fl & 4 };
	priv = any_private(s, e);
	for (int i = 0; i < MAXPINS; i++) {
		struct mpin *o = &z.pins[i];

		if (o->active && o->s < e && s < o->e &&
		    ((o->flags | mp->flags) & GM_PIN_EXCLUSIVE))
			busy = true;
	}
	if (mp->revocable)
		ret = gm_pin_revocable(z.st, s * PG, (e - s) * PG, mp->flags,
				       on_revoke, mp, &mp->pin);
	else
		ret = gm_pin(z.st, s * PG, (e - s) * PG, mp->flags, &mp->pin);
	if (!priv && !busy) {
		FZ_CHECK(ret == 0, "gm_pin of shared free pages: %d", ret);
		FZ_CHECK(gm_pin_offset(mp->pin) == s * PG &&
				 gm_pin_length(mp->pin) == (e - s) * PG,
			 "pin offset/length");
		mp->active = true;
		return;
	}
	FZ_CHECK((priv && ret == -EFAULT) || (busy && ret == -EBUSY),
		 "gm_pin: %d, want %s", ret, priv ? "-EFAULT" : "-EBUSY");
}

static void op_unpin(struct reader *r)
{
	struct mpin *mp = &z.pins[rd(r, 1) % MAXPINS];

	if (!mp->active)
		return;
	gm_unpin(mp->pin);
	mp->active = false;
}

/* A byte range of the store from the input; true if it holds a private page. */
static bool pick_bytes(struct reader *r, uint64_t *off, uint64_t *len)
{
	*off = rd(r, 3) % (z.np * PG);
	*len = 1 + rd(r, 2) % (z.np * PG - *off);
	return any_private(*off / PG, (*off + *len - 1) / PG + 1);
}

static void op_read(struct reader *r)
{
	static uint8_t buf[MAXP * PG];
	uint64_t off, len;
	bool priv = pick_bytes(r, &off, &len);
	int ret;

	memset(buf, 0xee, len);
	ret = gm_read(z.st, off, buf, len);
	if (priv) {
		FZ_CHECK(ret == -EFAULT, "gm_read over a private page: %d",
			 ret);
		for (uint64_t i = 0; i < len; i++)
			FZ_CHECK(buf[i] == 0xee, "gm_read copied on -EFAULT");
		return;
	}
	FZ_CHECK(ret == 0, "gm_read of shared bytes: %d", ret);
	FZ_CHECK(!memcmp(buf, &z.shadow[off], len), "gm_read contents");
}

static void fill(uint8_t *p, uint64_t len, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 13 + (i >> 12));
}

static void op_write(struct reader *r)
{
	static uint8_t buf[MAXP * PG];
	uint64_t off, len;
	bool priv = pick_bytes(r, &off, &len);
	int ret;

	fill(buf, len, rd(r, 1) | 1);
	ret = gm_write(z.st, off, buf, len);
	if (priv) {
		FZ_CHECK(ret == -EFAULT, "gm_write over a private page: %d",
			 ret);
		return;
	}
	FZ_CHECK(ret == 0, "gm_write of shared bytes: %d", ret);
	memcpy(&z.shadow[off], buf, len);
}

static void op_view_open(struct reader *r)
{
	uint64_t s = rd(r, 1) % z.np, e = s + 1 + rd(r, 1) % (z.np - s);
	bool priv = any_private(s, e), excl = false;
	int ret;

	/* A hold is a pin that is not exclusive. */
	for (int i = 0; i < MAXPINS; i++)
		excl |= z.pins[i].active && z.pins[i].s < e &&
			s < z.pins[i].e && (z.pins[i].flags & GM_PIN_EXCLUSIVE);
	ret = gm_view_open(z.st, s * PG, (e - s) * PG);
	if (priv)
		FZ_CHECK(ret == -EFAULT, "gm_view_open of private: %d", ret);
	else if (excl)
		FZ_CHECK(ret == -EBUSY || ret == -ENOSPC,
			 "gm_view_open of an exclusive pin's pages: %d", ret);
	else
		FZ_CHECK(ret == 0 || ret == -ENOSPC, "gm_view_open: %d", ret);
	if (ret != 0)
		return;
	FZ_CHECK(gm_view_is_open(z.st, s * PG, (e - s) * PG) == 1,
		 "gm_view_open succeeded but the range is not open");
	/* One release per hold; the pages stay open until a conversion. */
	FZ_CHECK(gm_view_release(z.st, s * PG, (e - s) * PG) == 0,
		 "gm_view_release of a hold");
	FZ_CHECK(gm_view_release(z.st, s * PG, (e - s) * PG) == -ENOENT,
		 "gm_view_release without a hold");
	FZ_CHECK(gm_view_is_open(z.st, s * PG, (e - s) * PG) == 1,
		 "gm_view_release closed the range");
}

/* Write through the view where open, or through a pin's pointer. */
static void op_poke(struct reader *r)
{
	uint64_t p = rd(r, 1) % z.np;
	uint8_t v = rd(r, 1) | 1;
	int k = rd(r, 1) % (MAXPINS + 1);

	if (k < MAXPINS) {
		struct mpin *mp = &z.pins[k];

		if (!mp->active)
			return;
		memset(gm_pin_ptr(mp->pin), v, 16);
		memset(&z.shadow[mp->s * PG], v, 16);
		return;
	}
	if (z.attr[p] != GM_ATTR_SHARED ||
	    gm_view_is_open(z.st, p * PG, PG) != 1)
		return;
	((uint8_t *)gm_view_base(z.st))[p * PG + 100] = v;
	z.shadow[p * PG + 100] = v;
}

static void op_hv(struct reader *r)
{
	uint64_t s = rd(r, 1) % z.np, e = s + 1 + rd(r, 1) % 2;
	int ret;

	e = e < z.np ? e : z.np;
	ret = gm_hv_visible_add(z.st, s * PG, (e - s) * PG);
	if (ret)
		return; /* e.g. a limit on ranges: allowed */
	for (uint64_t p = s; p < e; p++)
		z.hv[p] = true;
	FZ_CHECK(gm_hv_visible_overlaps(z.st, s * PG, (e - s) * PG) == 1,
		 "gm_hv_visible_overlaps");
}

static void op_bad_args(struct reader *r)
{
	uint64_t off = rd(r, 8), len = rd(r, 8);
	unsigned int to = rd(r, 1) % 3, flags = rd(r, 1) % 8;
	bool valid = off % PG == 0 && len % PG == 0 && len &&
		     off + len >= off && off + len <= z.np * PG && to < 2 &&
		     flags < 4;
	int ret;

	if (valid)
		return;
	ret = gm_convert(z.st, off, len, to, flags);
	FZ_CHECK(ret < 0,
		 "gm_convert(0x%llx, 0x%llx, %u, 0x%x) with bad arguments "
		 "succeeded",
		 (unsigned long long)off, (unsigned long long)len, to, flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size, 0 };
	struct gm_store_opts o = { .sz = sizeof(o) };
	struct gm_listener_ops lops = { .sz = sizeof(lops),
					.prepare = l_prepare,
					.commit = l_commit,
					.abort = l_abort };
	struct gm_listener *l = NULL;
	unsigned int cfg = rd(&r, 1);
	int ret, steps = 0;

	memset(&z, 0, sizeof(z));
	z.np = 1 + rd(&r, 1) % MAXP;
	o.size = z.np * PG;
	o.backing = GM_BACKING_MEMFD;
	o.vm_fd = -1;
	o.flags = (cfg & 1 ? GM_STORE_INIT_SHARED : 0) |
		  (cfg & 2 ? GM_STORE_VIEW_LAZY : 0);
	o.view_budget = cfg & 4 ? 1 + rd(&r, 1) % 8 : 0;
	ret = gm_store_create(&o, &z.st);
	FZ_CHECK(!ret, "gm_store_create: %d", ret);
	FZ_CHECK(!gm_test_set_fault_inject(z.st, inject, NULL),
		 "gm_test_set_fault_inject");
	memset(z.attr, cfg & 1 ? GM_ATTR_SHARED : GM_ATTR_PRIVATE, z.np);
	z.listening = cfg & 8;
	if (z.listening)
		FZ_CHECK(!gm_listener_register(z.st, &lops, NULL, &l),
			 "gm_listener_register");
	check_store();

	while (rd_more(&r) && steps++ < 200) {
		switch (rd(&r, 1) % 11) {
		case 0:
		case 1:
		case 2:
			op_convert(&r);
			break;
		case 3:
			op_pin(&r);
			break;
		case 4:
			op_unpin(&r);
			break;
		case 5:
			op_read(&r);
			break;
		case 6:
			op_write(&r);
			break;
		case 7:
			op_view_open(&r);
			break;
		case 8:
			op_poke(&r);
			break;
		case 9:
			op_hv(&r);
			break;
		default:
			if (rd(&r, 1) % 4 == 0)
				op_bad_args(&r);
			break;
		}
		check_store();
	}
	for (int i = 0; i < MAXPINS; i++)
		if (z.pins[i].active)
			gm_unpin(z.pins[i].pin);
	gm_listener_unregister(l);
	FZ_CHECK(!gm_store_destroy(z.st), "gm_store_destroy: %s",
		 gm_last_error());
	return 0;
}
