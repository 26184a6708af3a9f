// SPDX-License-Identifier: MIT
/*
 * The port I/O bus: devices register a port range in a table; each exit is
 * dispatched to the device that claims the port. Requests on `in` ports
 * carry their arguments in registers (from kvm_run's synced registers, or
 * one KVM_GET_REGS where KVM lacks KVM_CAP_SYNC_REGS) and get
 * a status back in EAX. Nothing a guest does here can stop the VMM: an
 * unknown port reads as all ones and is counted as refused.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm.h"

#define MAX_DEVICES 16

static struct io_device *devices[MAX_DEVICES];
static unsigned int nr_devices;

const char *const refuse_names[REFUSE_NR] = {
	[REFUSE_MALFORMED] = "malformed",
	[REFUSE_MISALIGNED] = "misaligned",
	[REFUSE_OVERFLOW] = "overflow",
	[REFUSE_OUT_OF_RANGE] = "out_of_range",
	[REFUSE_PROTECTED] = "protected_range",
	[REFUSE_BUSY] = "busy_pinned",
	[REFUSE_PRIVATE] = "private_buffer",
	[REFUSE_POLICY] = "policy",
	[REFUSE_TOO_BIG] = "too_big",
	[REFUSE_NO_SLOT] = "no_slot_or_handle",
	[REFUSE_UNKNOWN_PORT] = "unknown_port",
	[REFUSE_OTHER] = "other",
};

void bus_register(struct io_device *dev)
{
	if (nr_devices < MAX_DEVICES)
		devices[nr_devices++] = dev;
}

void bus_init(void)
{
	nr_devices = 0;
	console_init();
	exit_dev_init();
	memctl_init();
	chkdev_init();
	debug_init();
	sysdev_init();
}

int32_t refuse(struct vm *vm, enum refuse_reason why, int32_t status)
{
	atomic_fetch_add(&vm->refused[why], 1);
	return status;
}

int32_t check_guest_range(struct vm *vm, uint64_t gpa, uint64_t len,
			  bool aligned)
{
	uint64_t size = vm->opts.mem_size;

	if (!len)
		return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
	if (aligned && ((gpa | len) & (GM_PAGE_SIZE - 1)))
		return refuse(vm, REFUSE_MISALIGNED, GMVM_EINVAL);
	if (gpa + len < gpa)
		return refuse(vm, REFUSE_OVERFLOW, GMVM_EOVERFLOW);
	if (gpa >= size || gpa + len > size)
		return refuse(vm, REFUSE_OUT_OF_RANGE, GMVM_ERANGE);
	return 0;
}

int32_t check_buffer(struct vm *vm, uint64_t gpa, uint64_t len, uint64_t max)
{
	if (len > max)
		return refuse(vm, REFUSE_TOO_BIG, GMVM_E2BIG);
	return check_guest_range(vm, gpa, len, false);
}

int32_t check_buffer_request(struct vm *vm, const struct io_args *a,
			     uint32_t op, uint64_t max)
{
	if (a->op != op)
		return refuse(vm, REFUSE_MALFORMED, GMVM_ENOSYS);
	return check_buffer(vm, a->a0, a->a1, max);
}

int32_t refuse_lib(struct vm *vm, int ret)
{
	if (ret == -EFAULT)
		return refuse(vm, REFUSE_PRIVATE, GMVM_EFAULT);
	if (ret == -EBUSY)
		return refuse(vm, REFUSE_BUSY, GMVM_EBUSY);
	return refuse(vm, REFUSE_OTHER, ret);
}

uint64_t fnv1a64(const void *buf, size_t len, uint64_t h)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static struct io_device *find(uint16_t port)
{
	for (unsigned int i = 0; i < nr_devices; i++)
		if (port >= devices[i]->port &&
		    port < devices[i]->port + devices[i]->len)
			return devices[i];
	return NULL;
}

void bus_io(struct vm *vm, struct io_req *req)
{
	struct io_device *dev = find(req->port);

	if (!dev) {
		refuse(vm, REFUSE_UNKNOWN_PORT, 0);
		if (req->in)
			*req->val = 0xffffffffu;
		return;
	}
	__atomic_add_fetch(&dev->count, 1, __ATOMIC_RELAXED);
	if (dev->request) {
		struct kvm_regs regs;
		const struct kvm_regs *r = &regs;
		struct io_args args;

		if (!req->in || req->size != 4 || req->port != dev->port) {
			/* requests are 32-bit `in`s on the device's port */
			refuse(vm, REFUSE_MALFORMED, 0);
			if (req->in)
				*req->val = 0xffffffffu;
			return;
		}
		if (req->vcpu->sync_regs) {
			r = &req->vcpu->run->s.regs.regs;
		} else if (ioctl(req->vcpu->fd, KVM_GET_REGS, &regs)) {
			*req->val = (uint32_t)GMVM_EINVAL;
			refuse(vm, REFUSE_OTHER, 0);
			return;
		}
		args = (struct io_args){ .op = r->rdi,
					 .a0 = r->rsi,
					 .a1 = r->rcx,
					 .a2 = r->r8,
					 .a3 = r->r9,
					 .a4 = r->r10 };
		*req->val = (uint32_t)dev->request(vm, req->vcpu, &args);
		return;
	}
	if (dev->access)
		dev->access(vm, req);
	else if (req->in)
		*req->val = 0xffffffffu;
}

void bus_report(FILE *out, bool json)
{
	for (unsigned int i = 0; i < nr_devices; i++) {
		uint64_t n =
			__atomic_load_n(&devices[i]->count, __ATOMIC_RELAXED);

		if (json)
			fprintf(out, "%s\"%s\": %llu", i ? ", " : "",
				devices[i]->name, (unsigned long long)n);
		else if (n)
			fprintf(out, " %s %llu", devices[i]->name,
				(unsigned long long)n);
	}
}
