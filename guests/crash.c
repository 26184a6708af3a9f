// SPDX-License-Identifier: MIT
/*
 * crash: a guest that dies. gmem-vm must report the crash with the vCPU's
 * registers and exit with 120, not hang and not take the host down.
 * vCPU 0 executes ud2 (no IDT: a triple fault); with 2 vCPUs, vCPU 1 spins
 * at CPL3 and must be stopped by the VMM.
 */
#include <gmvm/guest.h>

int main(unsigned int vcpu)
{
	if (vcpu) {
		for (;;)
			__asm__ volatile("pause");
	}
	printf("crash: executing ud2 at CPL3 with no IDT\n");
	__asm__ volatile("ud2");
	return 0;
}
