// SPDX-License-Identifier: MIT
/*
 * Console: one character per `out` on GMVM_PORT_CONSOLE_CHAR, or a whole
 * buffer per request on GMVM_PORT_CONSOLE. The buffer is read through the
 * library (gm_read): a guest cannot print from private memory.
 */
#include <errno.h>

#include "vmm.h"

static void console_char(struct vm *vm, struct io_req *req)
{
	if (req->in) {
		*req->val = 0xffffffffu;
		return;
	}
	pthread_mutex_lock(&vm->report_lock);
	fputc((int)(*req->val & 0xff), vm->console);
	fflush(vm->console);
	pthread_mutex_unlock(&vm->report_lock);
	atomic_fetch_add(&vm->console_bytes, 1);
}

static int32_t console_request(struct vm *vm, struct vcpu *vcpu,
			       const struct io_args *a)
{
	char buf[4096];
	int32_t st;
	int ret;

	(void)vcpu;
	st = check_buffer_request(vm, a, GMVM_CONSOLE_WRITE, sizeof(buf));
	if (st)
		return st;
	ret = gm_read(vm->store, a->a0, buf, a->a1);
	if (ret < 0)
		return refuse_lib(vm, ret);
	pthread_mutex_lock(&vm->report_lock);
	fwrite(buf, 1, a->a1, vm->console);
	fflush(vm->console);
	pthread_mutex_unlock(&vm->report_lock);
	atomic_fetch_add(&vm->console_bytes, a->a1);
	return (int32_t)a->a1;
}

static struct io_device console_char_dev = {
	.name = "console_char",
	.port = GMVM_PORT_CONSOLE_CHAR,
	.len = 1,
	.access = console_char,
};

static struct io_device console_dev = {
	.name = "console",
	.port = GMVM_PORT_CONSOLE,
	.len = 4,
	.request = console_request,
};

void console_init(void)
{
	bus_register(&console_char_dev);
	bus_register(&console_dev);
}
