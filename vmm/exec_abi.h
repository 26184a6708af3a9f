/* SPDX-License-Identifier: MIT */
/*
 * gmem-vm exec: the interface between the VMM and the system-call shim that
 * runs beside an unmodified static Linux program (docs/exec.md).
 *
 * Only <stdint.h> is used, so that the freestanding shim (C and assembly)
 * can include it.
 */
#ifndef GMVM_EXEC_ABI_H
#define GMVM_EXEC_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

/*
 * The system-call device: in32 with RDI = the Linux system-call number and
 * RSI, RCX, R8, R9, R10 = its arguments, buffers given as gpas inside the
 * shim's shared I/O area. EAX = the Linux return value (-errno on error).
 */
#define GMVM_PORT_SYSDEV 0x051c

/* The shim's LSTAR entry, at this offset from its ELF entry point. */
#define GMVM_SHIM_SYSCALL_OFF 0x100

/* The shim's shared I/O area: every byte that crosses to the host. */
#define GMVM_SHIM_IO_SIZE (64u << 10)

#define GMVM_EXEC_MAGIC 0x43455845564d4d47ull /* "GMMVEXEC" */

#ifndef __ASSEMBLER__
/*
 * What the VMM tells the shim: at shim entry RDX holds its gpa (on the
 * program's private initial stack) and RSP the program's initial stack
 * pointer (argc).
 */
struct gmvm_exec_info {
	uint64_t magic;
	uint64_t entry; /* the program's entry point */
	uint64_t sp; /* the program's initial stack pointer */
	uint64_t random; /* AT_RANDOM: 16 bytes the shim fills */
	uint64_t brk_start; /* the end of the program's image */
	uint64_t mmap_start, mmap_end; /* anonymous mappings, top down */
	uint64_t stack_size; /* RLIMIT_STACK */
};
#endif

#endif /* GMVM_EXEC_ABI_H */
