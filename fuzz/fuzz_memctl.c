// SPDX-License-Identifier: MIT
/*
 * fuzz_memctl: guest requests to gmem-vm's devices, decoded by the VMM's
 * own port bus (vmm/bus.c) and devices (memctl, checksum device, debug
 * peek), with no KVM: a fake vCPU whose kvm_run carries the synced
 * registers, and a struct vm holding only a memfd store and protected
 * (hypervisor-visible) ranges, as gmem-vm sets them up. The input is a
 * sequence of port accesses with register values biased to the edges
 * (0, page edges, the end of memory, the protected ranges, wrap-around).
 * After each request:
 *  - the status is >= 0 or one of the ABI's status codes;
 *  - protected ranges are still shared and hypervisor-visible;
 *  - a CONVERT that the ABI allows (aligned, non-empty, in memory, no
 *    wrap, no protected page, known state and flags, a4 = 0) succeeds or
 *    is -EBUSY (a device hold), and then the range is in the asked state;
 *  - a CONVERT that breaks a rule gets an error, and no page changes;
 *  - any other request changes no page's state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gmem/gmem.h>

#include "fuzz_common.h"
#include "vmm.h"

#define MEM (2ull << 20)
#define PG 4096ull
#define NPG (MEM / PG)

static struct vm vm;
static struct vcpu vcpu;
static struct kvm_run run;

static const int32_t known_status[] = {
	GMVM_OK,	GMVM_EPERM,  GMVM_ENOENT,    GMVM_E2BIG,
	GMVM_ENOMEM,	GMVM_EFAULT, GMVM_EBUSY,     GMVM_EINVAL,
	GMVM_ERANGE,	GMVM_ENOSYS, GMVM_EOVERFLOW, GMVM_EOPNOTSUPP,
	GMVM_ECANCELED,
};

static bool known(int32_t st)
{
	if (st >= 0)
		return true;
	for (size_t i = 0; i < sizeof(known_status) / sizeof(known_status[0]);
	     i++)
		if (st == known_status[i])
			return true;
	return false;
}

static void snapshot(uint8_t *attrs)
{
	for (uint64_t p = 0; p < NPG; p++) {
		enum gm_attr a;

		FZ_CHECK(!gm_attr_get(vm.store, p * PG, &a), "gm_attr_get");
		attrs[p] = a;
	}
}

static uint64_t pick(struct reader *r)
{
	static const uint64_t edges[] = { 0,	      PG,
					  MEM,	      MEM - PG,
					  UINT64_MAX, UINT64_MAX - PG + 1,
					  1ull << 63, 0x10000,
					  0x18000,    0x20000,
					  0x30000 };
	uint64_t v;

	switch (rd(r, 1) % 6) {
	case 0:
		return edges[rd(r, 1) % (sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return (rd(r, 1) % (NPG + 2)) * PG;
	case 2:
		return (1 + rd(r, 1) % 8) * PG;
	case 3:
		return rd(r, 1);
	case 4:
		return rd(r, 8);
	default:
		v = edges[rd(r, 1) % (sizeof(edges) / sizeof(edges[0]))];
		return v + (rd(r, 1) % 3 - 1) * (rd(r, 1) & 1 ? PG : 1);
	}
}

static void setup(unsigned int flags)
{
	struct gm_store_opts o = { .sz = sizeof(o),
				   .size = MEM,
				   .backing = GM_BACKING_MEMFD,
				   .vm_fd = -1,
				   .flags = GM_STORE_VIEW_LAZY };
	int ret;

	memset(&vm, 0, sizeof(vm));
	vm.opts.mem_size = MEM;
	vm.opts.nr_vcpus = 1;
	vm.opts.init_private = true;
	vm.opts.conversion = flags & 1 ? CONV_DESTRUCTIVE : CONV_INPLACE;
	vm.opts.quiet = true;
	vm.kvm_fd = vm.vm_fd = -1;
	pthread_mutex_init(&vm.report_lock, NULL);
	pthread_mutex_init(&vm.peek_lock, NULL);
	vm.console = fopen("/dev/null", "w");
	FZ_CHECK(vm.console, "/dev/null");
	ret = gm_store_create(&o, &vm.store);
	FZ_CHECK(!ret, "gm_store_create: %d", ret);
	vm.backing = GM_BACKING_MEMFD;
	/* as gmem-vm lays guest memory out: a system region, an image */
	FZ_CHECK(!vm_add_protected(&vm, 0, 0x10000, "system"), "protect");
	FZ_CHECK(!vm_add_protected(&vm, 0x18000, 0x20000, "image"), "protect");
	memset(&vcpu, 0, sizeof(vcpu));
	memset(&run, 0, sizeof(run));
	vcpu.vm = &vm;
	vcpu.fd = -1;
	vcpu.run = &run;
	vcpu.sync_regs = true;
}

static void teardown(void)
{
	chkdev_fini(&vm);
	FZ_CHECK(!gm_store_destroy(vm.store), "gm_store_destroy: %s",
		 gm_last_error());
	fclose(vm.console);
	pthread_mutex_destroy(&vm.report_lock);
	pthread_mutex_destroy(&vm.peek_lock);
}

/* What the ABI says of a CONVERT: 1 allowed, 0 must be refused. */
static int convert_allowed(uint64_t gpa, uint64_t len, uint64_t to, uint64_t fl,
			   uint64_t a4)
{
	const uint64_t both = GMVM_CONV_DESTRUCTIVE | GMVM_CONV_INPLACE;

	if (a4 || to > 1 || (fl & ~both) || (fl & both) == both)
		return 0;
	if (!len || (gpa | len) % PG || gpa + len < gpa || gpa + len > MEM)
		return 0;
	if (vm_protected_overlap(&vm, gpa, gpa + len))
		return 0;
	if (vm.opts.conversion == CONV_DESTRUCTIVE && (fl & GMVM_CONV_INPLACE))
		return 0; /* policy */
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool bus_ready;
	static const uint16_t ports[] = {
		GMVM_PORT_MEMCTL,     GMVM_PORT_MEMCTL, GMVM_PORT_MEMCTL,
		GMVM_PORT_CHKDEV,     GMVM_PORT_DEBUG,	GMVM_PORT_NOP,
		GMVM_PORT_MEMCTL + 1, 0x0600,
	};
	static uint8_t before[NPG], after[NPG];
	struct reader r = { data, size, 0 };
	int steps = 0;

	if (!bus_ready) {
		bus_init();
		bus_ready = true;
	}
	setup(rd(&r, 1));
	while (rd_more(&r) && steps++ < 100) {
		struct kvm_regs *g = &run.s.regs.regs;
		uint32_t val = 0xdeadbeef;
		struct io_req req = { .vcpu = &vcpu, .val = &val };
		uint8_t kind = rd(&r, 1);
		int32_t st;

		req.port = ports[kind % (sizeof(ports) / sizeof(ports[0]))];
		req.in = !(kind & 0x80) || req.port == GMVM_PORT_MEMCTL;
		req.size = kind & 0x40 ? 1 : 4;
		if (req.port == GMVM_PORT_MEMCTL && !(kind & 0x20))
			req.size = 4;
		g->rdi = rd(&r, 1) % 2 ? 1 + rd(&r, 1) % 4 : rd(&r, 8);
		if (req.port == GMVM_PORT_MEMCTL && kind & 0x10)
			g->rdi = GMVM_MEMCTL_CONVERT;
		g->rsi = pick(&r);
		g->rcx = pick(&r);
		g->r8 = rd(&r, 1) % 4 ? rd(&r, 1) % 2 : pick(&r);
		g->r9 = rd(&r, 1) % 4 ? rd(&r, 1) % 4 : pick(&r);
		g->r10 = rd(&r, 1) % 8 ? 0 : pick(&r);

		snapshot(before);
		bus_io(&vm, &req);
		st = (int32_t)val;
		snapshot(after);

		for (unsigned int i = 0; i < vm.nr_protected; i++) {
			uint64_t s = vm.protected[i].start;
			uint64_t l = vm.protected[i].end - s;

			FZ_CHECK(gm_range_is(vm.store, s, l, GM_ATTR_SHARED) ==
						 1 &&
					 gm_hv_visible_overlaps(vm.store, s,
								l) == 1,
				 "protected range %s changed",
				 vm.protected[i].what);
		}
		if (!req.in)
			continue;
		FZ_CHECK(known(st),
			 "port 0x%x op %llu: status %d not in the ABI",
			 req.port, (unsigned long long)g->rdi, st);
		if (req.port == GMVM_PORT_MEMCTL && req.size == 4 &&
		    g->rdi == GMVM_MEMCTL_CONVERT) {
			uint64_t gpa = g->rsi, len = g->rcx;

			if (!convert_allowed(gpa, len, g->r8, g->r9, g->r10)) {
				FZ_CHECK(
					st < 0,
					"CONVERT gpa 0x%llx len 0x%llx to %llu "
					"flags 0x%llx a4 0x%llx: accepted (%d)",
					(unsigned long long)gpa,
					(unsigned long long)len,
					(unsigned long long)g->r8,
					(unsigned long long)g->r9,
					(unsigned long long)g->r10, st);
			} else if (st == 0) {
				FZ_CHECK(
					gm_range_is(vm.store, gpa, len,
						    (enum gm_attr)g->r8) == 1,
					"CONVERT succeeded, range not in state");
				for (uint64_t p = 0; p < NPG; p++)
					if (p * PG < gpa || p * PG >= gpa + len)
						FZ_CHECK(
							before[p] == after[p],
							"CONVERT changed page "
							"%llu outside its range",
							(unsigned long long)p);
				continue;
			} else {
				FZ_CHECK(st == GMVM_EBUSY,
					 "valid CONVERT gpa 0x%llx len 0x%llx "
					 "refused: %d",
					 (unsigned long long)gpa,
					 (unsigned long long)len, st);
			}
		}
		FZ_CHECK(!memcmp(before, after, NPG),
			 "a refused or non-CONVERT request (port 0x%x op %llu, "
			 "status %d) changed page states",
			 req.port, (unsigned long long)g->rdi, st);
	}
	teardown();
	return 0;
}
