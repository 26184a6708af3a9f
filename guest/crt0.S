/* SPDX-License-Identifier: MIT */
/*
 * Guest entry. The VMM starts every vCPU here at CPL3 in 64-bit mode with
 * RSP = the top of that vCPU's own stack, RDI = vCPU index and
 * RSI = the boot information page (see vmm/abi.h).
 */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	andq	$-16, %rsp
	xorl	%ebp, %ebp
	call	gmvm_start
1:	jmp	1b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
