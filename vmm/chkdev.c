// SPDX-License-Identifier: MIT
/*
 * The checksum device: a device that does I/O on guest buffers, using guest
 * memory only through the library. Every access is inside a pin
 * (gm_pin + gm_pin_ptr) or through gm_read/gm_write; it never keeps a raw
 * pointer outside a pin. A private buffer fails the pin with -EFAULT, which
 * goes back to the guest as GMVM_EFAULT.
 *
 * Ops: CHECKSUM (read a buffer, write its FNV-1a 64 to guest memory),
 * FILL (write a pattern into a buffer, as a disk read would), HOLD (keep a
 * buffer pinned, as an in-flight DMA would; optionally revocable), RELEASE,
 * HELD. A conversion to private of a held buffer fails with -EBUSY, unless
 * the hold is revocable: then the device gives the pages back and the
 * conversion goes ahead.
 */
#include <errno.h>
#include <string.h>

#include "vmm.h"

struct hold {
	bool used;
	bool revocable;
	uint64_t start, end; /* pinned pages, bytes */
	bool revoked;
	struct gm_pin *pin;
	struct vm *vm;
};

static pthread_mutex_t holds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hold holds[GMVM_CHK_MAX_HOLDS];

/*
 * Pin the pages holding [gpa, gpa + len), revocably if revoke is given;
 * *ptr (if ptr) gets the bytes' address.
 */
static int32_t pin_buffer(struct vm *vm, uint64_t gpa, uint64_t len,
			  gm_revoke_fn revoke, void *opaque,
			  struct gm_pin **pin, uint8_t **ptr)
{
	uint64_t start = PAGE_DOWN(gpa), end = PAGE_UP(gpa + len);
	int ret;

	if (revoke)
		ret = gm_pin_revocable(vm->store, start, end - start, 0, revoke,
				       opaque, pin);
	else
		ret = gm_pin(vm->store, start, end - start, 0, pin);
	if (ret)
		return refuse_lib(vm, ret);
	atomic_fetch_add(&vm->device_pins, 1);
	if (ptr)
		*ptr = (uint8_t *)gm_pin_ptr(*pin) + (gpa - start);
	return 0;
}

/*
 * The device never writes hypervisor-visible memory (page tables, GDT/TSS,
 * code, stacks): a guest that points it there gets EPERM rather than a
 * corrupted page table.
 */
static int32_t check_writable(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (vm_protected_overlap(vm, gpa, gpa + len))
		return refuse(vm, REFUSE_PROTECTED, GMVM_EPERM);
	return 0;
}

static int32_t chk_checksum(struct vm *vm, const struct io_args *a)
{
	struct gm_pin *pin;
	uint64_t sum;
	uint8_t *p = NULL;
	int32_t st;
	int ret;

	st = check_buffer(vm, a->a0, a->a1, GMVM_CHK_MAX_LEN);
	if (!st)
		st = check_guest_range(vm, a->a2, sizeof(sum), false);
	if (!st)
		st = check_writable(vm, a->a2, sizeof(sum));
	if (!st)
		st = pin_buffer(vm, a->a0, a->a1, NULL, NULL, &pin, &p);
	if (st)
		return st;
	sum = fnv1a64(p, a->a1, FNV1A64_INIT);
	gm_unpin(pin);
	ret = gm_write(vm->store, a->a2, &sum, sizeof(sum));
	return ret < 0 ? refuse_lib(vm, ret) : 0;
}

static int32_t chk_fill(struct vm *vm, const struct io_args *a)
{
	struct gm_pin *pin;
	uint8_t *p = NULL;
	int32_t st;

	st = check_buffer(vm, a->a0, a->a1, GMVM_CHK_MAX_LEN);
	if (!st)
		st = check_writable(vm, a->a0, a->a1);
	if (!st)
		st = pin_buffer(vm, a->a0, a->a1, NULL, NULL, &pin, &p);
	if (st)
		return st;
	for (uint64_t i = 0; i < a->a1; i++)
		p[i] = (uint8_t)(a->a2 + i * 7);
	gm_unpin(pin);
	return 0;
}

/* Revoke callback: called by the library from a converting thread. */
static void hold_revoke(struct gm_pin *pin, void *opaque)
{
	struct hold *h = opaque;
	struct gm_pin *mine = NULL;

	pthread_mutex_lock(&holds_lock);
	if (h->used && h->pin == pin) {
		mine = pin;
		h->pin = NULL;
		h->revoked = true;
	}
	pthread_mutex_unlock(&holds_lock);
	if (mine) {
		atomic_fetch_add(&h->vm->device_revoked, 1);
		gm_unpin(mine);
	}
}

static int32_t chk_hold(struct vm *vm, const struct io_args *a)
{
	uint64_t start = PAGE_DOWN(a->a0), end;
	struct gm_pin *pin = NULL;
	struct hold *h = NULL;
	int32_t st;
	int i;

	if (a->a2 & ~(uint64_t)GMVM_HOLD_REVOCABLE)
		return refuse(vm, REFUSE_MALFORMED, GMVM_EINVAL);
	st = check_buffer(vm, a->a0, a->a1, GMVM_CHK_MAX_LEN);
	if (st)
		return st;
	end = PAGE_UP(a->a0 + a->a1);
	pthread_mutex_lock(&holds_lock);
	for (i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		if (!holds[i].used) {
			h = &holds[i];
			/* reserve the slot; the pin is filled in below */
			*h = (struct hold){
				.used = true,
				.vm = vm,
				.revocable = a->a2 & GMVM_HOLD_REVOCABLE,
				.start = start,
				.end = end,
			};
			break;
		}
	}
	pthread_mutex_unlock(&holds_lock);
	if (!h)
		return refuse(vm, REFUSE_NO_SLOT, GMVM_ENOMEM);

	st = pin_buffer(vm, a->a0, a->a1, h->revocable ? hold_revoke : NULL, h,
			&pin, NULL);
	pthread_mutex_lock(&holds_lock);
	if (st)
		h->used = false;
	else
		h->pin = pin;
	pthread_mutex_unlock(&holds_lock);
	return st ? st : i;
}

static int32_t chk_release(struct vm *vm, const struct io_args *a, bool release)
{
	struct gm_pin *pin = NULL;
	int32_t st;
	struct hold *h;

	if (a->a0 >= GMVM_CHK_MAX_HOLDS)
		return refuse(vm, REFUSE_NO_SLOT, GMVM_ENOENT);
	h = &holds[a->a0];
	pthread_mutex_lock(&holds_lock);
	if (!h->used || (!h->pin && !h->revoked)) {
		/* free, or a HOLD still being set up by another vCPU */
		pthread_mutex_unlock(&holds_lock);
		return refuse(vm, REFUSE_NO_SLOT, GMVM_ENOENT);
	}
	st = h->revoked ? 0 : 1;
	if (release) {
		pin = h->pin;
		st = h->revoked ? GMVM_ECANCELED : 0;
		h->used = false;
		h->pin = NULL;
		h->revoked = false;
	}
	pthread_mutex_unlock(&holds_lock);
	gm_unpin(pin);
	return st;
}

static int32_t chk_request(struct vm *vm, struct vcpu *vcpu,
			   const struct io_args *a)
{
	(void)vcpu;
	atomic_fetch_add(&vm->device_requests, 1);
	switch (a->op) {
	case GMVM_CHK_CHECKSUM:
		return chk_checksum(vm, a);
	case GMVM_CHK_FILL:
		return chk_fill(vm, a);
	case GMVM_CHK_HOLD:
		return chk_hold(vm, a);
	case GMVM_CHK_RELEASE:
		return chk_release(vm, a, true);
	case GMVM_CHK_HELD:
		return chk_release(vm, a, false);
	default:
		return refuse(vm, REFUSE_MALFORMED, GMVM_ENOSYS);
	}
}

bool chkdev_revocable_in(uint64_t start, uint64_t end)
{
	bool any = false;

	pthread_mutex_lock(&holds_lock);
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++)
		any |= holds[i].used && holds[i].pin && holds[i].revocable &&
		       holds[i].start < end && start < holds[i].end;
	pthread_mutex_unlock(&holds_lock);
	return any;
}

uint64_t chkdev_holds_active(void)
{
	uint64_t n = 0;

	pthread_mutex_lock(&holds_lock);
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++)
		n += holds[i].used && holds[i].pin;
	pthread_mutex_unlock(&holds_lock);
	return n;
}

void chkdev_fini(struct vm *vm)
{
	(void)vm;
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		struct gm_pin *pin;

		pthread_mutex_lock(&holds_lock);
		pin = holds[i].pin;
		holds[i] = (struct hold){ 0 };
		pthread_mutex_unlock(&holds_lock);
		gm_unpin(pin);
	}
}

void chkdev_save(struct chk_hold_state st[GMVM_CHK_MAX_HOLDS])
{
	pthread_mutex_lock(&holds_lock);
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		struct hold *h = &holds[i];

		/* a hold still being set up has no pin yet: not saved */
		st[i] = (struct chk_hold_state){
			.used = h->used && (h->pin || h->revoked),
			.revocable = h->revocable,
			.revoked = h->revoked,
			.start = h->start,
			.end = h->end,
		};
	}
	pthread_mutex_unlock(&holds_lock);
}

/* Take the saved holds again: the same handles pin the same pages. */
int chkdev_restore(struct vm *vm,
		   const struct chk_hold_state st[GMVM_CHK_MAX_HOLDS])
{
	for (int i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		struct hold *h = &holds[i];
		struct gm_pin *pin = NULL;
		int ret = 0;

		if (!st[i].used)
			continue;
		*h = (struct hold){ .used = true,
				    .vm = vm,
				    .revocable = st[i].revocable,
				    .revoked = st[i].revoked,
				    .start = st[i].start,
				    .end = st[i].end };
		if (st[i].revoked)
			continue;
		if (st[i].revocable)
			ret = gm_pin_revocable(vm->store, h->start,
					       h->end - h->start, 0,
					       hold_revoke, h, &pin);
		else
			ret = gm_pin(vm->store, h->start, h->end - h->start, 0,
				     &pin);
		if (ret) {
			h->used = false;
			return ret;
		}
		h->pin = pin;
	}
	return 0;
}

static struct io_device chk_dev = {
	.name = "chkdev",
	.port = GMVM_PORT_CHKDEV,
	.len = 4,
	.request = chk_request,
};

void chkdev_init(void)
{
	bus_register(&chk_dev);
}
