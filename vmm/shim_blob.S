/* SPDX-License-Identifier: MIT */
/* The system-call shim's ELF image (guest/shim/), embedded in gmem-vm. */
	.section .rodata
	.balign 16
	.globl gmvm_shim_elf
gmvm_shim_elf:
	.incbin SHIM_ELF
	.globl gmvm_shim_elf_end
gmvm_shim_elf_end:

	.section .note.GNU-stack, "", @progbits
