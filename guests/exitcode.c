// SPDX-License-Identifier: MIT
/* exitcode: the guest's exit code becomes gmem-vm's exit status. */
#include <gmvm/guest.h>

int main(unsigned int vcpu)
{
	if (vcpu) /* a second vCPU stays busy: exit must stop it */
		for (;;)
			__asm__ volatile("pause");
	return 42;
}
