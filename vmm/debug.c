// SPDX-License-Identifier: MIT
/*
 * Debug device: the guest asks the VMM to peek at a range of its memory.
 * The VMM tries to read it through the library (gm_read) like any other
 * host code would, and records what it could and could not read: a
 * private range gives -EFAULT and no byte of it.
 */
#include <ctype.h>
#include <string.h>

#include <errno.h>

#include "vmm.h"

static void record(struct vm *vm, uint64_t gpa, uint64_t len, int status,
		   const uint8_t *buf)
{
	struct peek_record *r;
	size_t n;

	pthread_mutex_lock(&vm->peek_lock);
	if (status >= 0)
		vm->peeks_ok++;
	else
		vm->peeks_refused++;
	if (vm->nr_peeks < GMVM_MAX_PEEKS) {
		r = &vm->peeks[vm->nr_peeks++];
		r->gpa = gpa;
		r->len = len;
		r->status = status;
		r->preview[0] = 0;
		if (status >= 0) {
			n = len < sizeof(r->preview) - 1 ?
				    len :
				    sizeof(r->preview) - 1;
			for (size_t i = 0; i < n; i++)
				r->preview[i] =
					isprint(buf[i]) ? (char)buf[i] : '.';
			r->preview[n] = 0;
		}
	}
	pthread_mutex_unlock(&vm->peek_lock);
}

static int32_t debug_request(struct vm *vm, struct vcpu *vcpu,
			     const struct io_args *a)
{
	uint8_t buf[GMVM_DEBUG_PEEK_MAX];
	int32_t st;
	int ret;

	(void)vcpu;
	st = check_buffer_request(vm, a, GMVM_DEBUG_PEEK, sizeof(buf));
	if (st)
		return st;
	memset(buf, 0, sizeof(buf));
	ret = gm_read(vm->store, a->a0, buf, a->a1);
	{
		char text[GMVM_DEBUG_PEEK_MAX + 1];

		for (size_t i = 0; i < a->a1; i++)
			text[i] = isprint(buf[i]) ? (char)buf[i] : '.';
		text[a->a1] = 0;
		pthread_mutex_lock(&vm->report_lock);
		if (ret < 0)
			fprintf(vm->console,
				"[vmm] peek at gpa 0x%llx (%llu bytes): %s: "
				"the VMM cannot read it\n",
				(unsigned long long)a->a0,
				(unsigned long long)a->a1,
				ret == -EFAULT ? "-EFAULT (private)" :
						 strerror(-ret));
		else
			fprintf(vm->console,
				"[vmm] peek at gpa 0x%llx (%llu bytes): read "
				"\"%s\"\n",
				(unsigned long long)a->a0,
				(unsigned long long)a->a1, text);
		pthread_mutex_unlock(&vm->report_lock);
	}
	record(vm, a->a0, a->a1, ret < 0 ? ret : 0, buf);
	if (ret == -EFAULT)
		return GMVM_EFAULT; /* not a refused request: the answer */
	if (ret < 0)
		return refuse(vm, REFUSE_OTHER, ret);
	return (int32_t)(fnv1a64(buf, a->a1, FNV1A64_INIT) & 0x7fffffff);
}

static struct io_device debug_dev = {
	.name = "debug",
	.port = GMVM_PORT_DEBUG,
	.len = 4,
	.request = debug_request,
};

void debug_init(void)
{
	bus_register(&debug_dev);
}
