/* SPDX-License-Identifier: MIT */
/*
 * The shim's two entries (docs/exec.md).
 *
 * shim_start: where the vCPU starts, with RSP = the program's initial
 * stack, RSI = boot info, RDX = struct gmvm_exec_info. It sets the shim up
 * on its own stack, then enters the program with clean registers.
 *
 * shim_syscall (LSTAR, at GMVM_SHIM_SYSCALL_OFF): the program's `syscall`.
 * On PVM it arrives here still at CPL3 (RCX = return RIP, R11 = RFLAGS);
 * on VMX/SVM it would arrive at CPL0 and must leave with sysretq. The
 * stack is switched before anything is pushed: the program's red zone
 * below its RSP is never touched. Every register but RAX, RCX and R11 is
 * preserved, RFLAGS is restored from R11.
 */
#include "../../vmm/exec_abi.h"
#include "shim.h"

	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	/*
	 * One test call, still on the program's stack (below its argc): did
	 * `syscall` land at CPL3 or CPL0? shim_dispatch records it.
	 */
	movq	%rdx, %rbx
	movl	$SHIM_PROBE, %eax
	syscall
	movq	%rbx, %rdx
	leaq	shim_stack_top(%rip), %rsp
	movq	%rdx, %rdi
	call	shim_init
	movq	shim_prog_entry(%rip), %rcx
	movq	shim_prog_sp(%rip), %rsp
	xorl	%eax, %eax
	xorl	%ebx, %ebx
	xorl	%edx, %edx /* no atexit function for the program */
	xorl	%esi, %esi
	xorl	%edi, %edi
	xorl	%ebp, %ebp
	xorl	%r8d, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d
	xorl	%r12d, %r12d
	xorl	%r13d, %r13d
	xorl	%r14d, %r14d
	xorl	%r15d, %r15d
	jmpq	*%rcx
	.size _start, . - _start

	.org	GMVM_SHIM_SYSCALL_OFF
	.globl shim_syscall
	.type shim_syscall, @function
shim_syscall:
	movq	%rsp, shim_user_rsp(%rip)
	leaq	shim_stack_top(%rip), %rsp
	pushq	shim_user_rsp(%rip)
	pushq	%rcx
	pushq	%r11
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushq	%rdi
	pushq	%rsi
	pushq	%rdx
	pushq	%r8
	pushq	%r9
	pushq	%r10
	/* struct shim_call { nr, a0..a5 } and 8 bytes to keep 16 alignment */
	subq	$8, %rsp
	pushq	%r9
	pushq	%r8
	pushq	%r10
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rax
	movq	%rsp, %rdi
	call	shim_dispatch
	addq	$64, %rsp
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rdx
	popq	%rsi
	popq	%rdi
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	popq	%r11
	popq	%rcx
	cmpb	$0, shim_cpl0(%rip)
	jne	1f
	pushq	%r11
	popfq
	popq	%rsp
	jmpq	*%rcx
	/* entered at CPL0 (hardware VMX/SVM): untested on PVM hosts */
1:	popq	%rsp
	sysretq
	.size shim_syscall, . - shim_syscall

	.section .note.GNU-stack, "", @progbits
