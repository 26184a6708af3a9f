// SPDX-License-Identifier: MIT
/*
 * Exit port: the guest's exit code becomes the process exit code. Also the
 * "vCPU done" port (a secondary vCPU has finished) and the nop port, whose
 * round trip measures the cost of a bare exit.
 */
#include "vmm.h"

static void exit_access(struct vm *vm, struct io_req *req)
{
	if (req->in) {
		*req->val = 0xffffffffu;
		return;
	}
	/* exit codes are 0..255; anything else is reported as 255 */
	vm_stop(vm, *req->val > 255 ? 255 : (int)*req->val);
}

static void done_access(struct vm *vm, struct io_req *req)
{
	(void)vm;
	if (req->in) {
		*req->val = 0xffffffffu;
		return;
	}
	atomic_store(&req->vcpu->done, true);
}

static void nop_access(struct vm *vm, struct io_req *req)
{
	(void)vm;
	if (req->in)
		*req->val = 0;
}

static struct io_device exit_dev = {
	.name = "exit",
	.port = GMVM_PORT_EXIT,
	.len = 4,
	.access = exit_access,
};

static struct io_device done_dev = {
	.name = "vcpu_done",
	.port = GMVM_PORT_VCPU_DONE,
	.len = 4,
	.access = done_access,
};

static struct io_device nop_dev = {
	.name = "nop",
	.port = GMVM_PORT_NOP,
	.len = 4,
	.access = nop_access,
};

void exit_dev_init(void)
{
	bus_register(&exit_dev);
	bus_register(&done_dev);
	bus_register(&nop_dev);
}
