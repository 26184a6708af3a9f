// SPDX-License-Identifier: MIT
/*
 * Memory-control device: the guest's conversion requests. Every request is
 * untrusted: it is checked (op, state, flags, reserved argument, alignment,
 * wrap-around, bounds, hypervisor-visible and device ranges, policy) before
 * the library sees it, and any failure is a status in EAX, never a VMM
 * failure. Conversions to private over a revocable device hold ask it to go
 * (GM_CONVERT_REVOKE); other pins make the request fail with -EBUSY.
 * MEASUREMENT hands the guest the launch digest (measure.c) in a buffer of
 * its own that the VMM may write (shared, not hypervisor-visible).
 * SNAPSHOT asks for a snapshot of the whole VM (snapshot.c).
 */
#include <errno.h>

#include "vmm.h"

static int32_t memctl_convert(struct vm *vm, const struct io_args *a)
{
	uint64_t gpa = a->a0, len = a->a1, to = a->a2, flags = a->a3;
	const uint64_t known = GMVM_CONV_DESTRUCTIVE | GMVM_CONV_INPLACE;
	/* revocable device holds get 10 ms to go; others make it -EBUSY */
	struct gm_convert_opts co = { .sz = sizeof(co),
				      .revoke_timeout_ns = 10000000 };
	unsigned int gflags = 0;
	bool destructive;
	uint64_t t0;
	int32_t st;
	int ret;

	atomic_fetch_add(&vm->convert_requests, 1);
	if (a->a4 || (to != GMVM_SHARED && to != GMVM_PRIVATE) ||
	    (flags & ~known) || (flags & known) == known)
		return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
	st = check_guest_range(vm, gpa, len, true);
	if (st)
		return st;
	if (vm_protected_overlap(vm, gpa, gpa + len))
		return refuse(vm, REFUSE_PROTECTED, GMVM_EPERM);
	if (flags & GMVM_CONV_DESTRUCTIVE)
		destructive = true;
	else if (flags & GMVM_CONV_INPLACE)
		destructive = false;
	else
		destructive = vm->opts.conversion == CONV_DESTRUCTIVE;
	/* a CoCo-style VMM cannot keep contents across a conversion */
	if (!destructive && vm->opts.conversion == CONV_DESTRUCTIVE)
		return refuse(vm, REFUSE_POLICY, GMVM_EOPNOTSUPP);
	if (destructive)
		gflags |= GM_CONVERT_DESTRUCTIVE;
	/*
	 * Ask the device to give back revocable holds; without one in the
	 * range, a pin is an immediate -EBUSY (no waiting).
	 */
	if (to == GMVM_PRIVATE && chkdev_revocable_in(gpa, gpa + len))
		gflags |= GM_CONVERT_REVOKE;

	t0 = now_ns();
	ret = gm_convert_ex(vm->store, gpa, len,
			    to == GMVM_PRIVATE ? GM_ATTR_PRIVATE :
						 GM_ATTR_SHARED,
			    gflags, &co);
	atomic_fetch_add(&vm->convert_wall_ns, now_ns() - t0);
	if (ret == -EBUSY)
		return refuse(vm, REFUSE_BUSY, GMVM_EBUSY);
	if (ret == -EINVAL)
		return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
	if (ret == -ERANGE)
		return refuse(vm, REFUSE_OUT_OF_RANGE, GMVM_ERANGE);
	if (ret < 0)
		return refuse(vm, REFUSE_OTHER, ret);
	atomic_fetch_add(&vm->convert_ok, 1);
	return 0;
}

_Static_assert(GMVM_DIGEST_SIZE == LAUNCH_DIGEST_SIZE, "digest size");

/* Write the launch digest into a guest buffer the VMM may write. */
static int32_t memctl_measurement(struct vm *vm, const struct io_args *a)
{
	int32_t st;
	int ret;

	if (a->a1 != GMVM_DIGEST_SIZE || a->a2 || a->a3 || a->a4)
		return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
	st = check_guest_range(vm, a->a0, a->a1, false);
	if (st)
		return st;
	if (vm_protected_overlap(vm, a->a0, a->a0 + a->a1))
		return refuse(vm, REFUSE_PROTECTED, GMVM_EPERM);
	ret = gm_write(vm->store, a->a0, vm->launch_digest, GMVM_DIGEST_SIZE);
	return ret < 0 ? refuse_lib(vm, ret) : GMVM_DIGEST_SIZE;
}

static int32_t memctl_request(struct vm *vm, struct vcpu *vcpu,
			      const struct io_args *a)
{
	struct gm_stats s = { .sz = sizeof(s) };
	enum gm_attr attr;
	int32_t st;

	atomic_fetch_add(&vm->memctl_requests, 1);
	switch (a->op) {
	case GMVM_MEMCTL_CONVERT:
		st = memctl_convert(vm, a);
		break;
	case GMVM_MEMCTL_QUERY:
		if (a->a1 || a->a2 || a->a3 || a->a4)
			return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
		if (a->a0 >= vm->opts.mem_size)
			return refuse(vm, REFUSE_OUT_OF_RANGE, GMVM_ERANGE);
		if (gm_attr_get(vm->store, a->a0, &attr))
			return refuse(vm, REFUSE_OTHER, GMVM_EINVAL);
		st = attr == GM_ATTR_PRIVATE ? GMVM_PRIVATE : GMVM_SHARED;
		break;
	case GMVM_MEMCTL_INFO:
		if (gm_store_stats(vm->store, &s))
			return refuse(vm, REFUSE_OTHER, GMVM_EINVAL);
		switch (a->a0) {
		case GMVM_INFO_PRIVATE_PAGES:
			st = (int32_t)(s.private_pages & 0x7fffffff);
			break;
		case GMVM_INFO_SHARED_PAGES:
			st = (int32_t)(s.shared_pages & 0x7fffffff);
			break;
		case GMVM_INFO_EXTENTS:
			st = (int32_t)(s.extents & 0x7fffffff);
			break;
		case GMVM_INFO_TSC_KHZ:
			st = (int32_t)(vm->tsc_khz & 0x7fffffff);
			break;
		case GMVM_INFO_RESTORES:
			st = (int32_t)(vm->restores & 0x7fffffff);
			break;
		default:
			return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
		}
		break;
	case GMVM_MEMCTL_MEASUREMENT:
		st = memctl_measurement(vm, a);
		break;
	case GMVM_MEMCTL_SNAPSHOT:
		if (a->a0 || a->a1 || a->a2 || a->a3 || a->a4)
			return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
		st = snapshot_request(vm, vcpu);
		break;
	default:
		return refuse(vm, REFUSE_MALFORMED, GMVM_ENOSYS);
	}
	if (st >= 0)
		atomic_fetch_add(&vm->memctl_ok, 1);
	return st;
}

static struct io_device memctl_dev = {
	.name = "memctl",
	.port = GMVM_PORT_MEMCTL,
	.len = 4,
	.request = memctl_request,
};

void memctl_init(void)
{
	bus_register(&memctl_dev);
}
