/* SPDX-License-Identifier: MIT */
/*
 * The gmem-vm guest ABI: ports, registers, boot information and status
 * codes, shared by the VMM (vmm/) and the guest runtime (guest/).
 * docs/abi.md describes the same in prose; keep them in step.
 *
 * Only <stdint.h> is used, so that freestanding guest code can include it.
 */
#ifndef GMVM_ABI_H
#define GMVM_ABI_H

#include <stdint.h>

#define GMVM_ABI_VERSION 1

/*
 * Ports. A request is one 32-bit port access:
 *   in  %dx, %eax   with RDI = op, RSI = a0, RCX = a1, R8 = a2, R9 = a3,
 *                   R10 = a4; the VMM answers in EAX (int32: >= 0 success,
 *                   < 0 a status code below).
 *   out %eax, %dx   for the ports that take one value (exit, vcpu done).
 */
#define GMVM_PORT_CONSOLE_CHAR 0x00e9 /* out8: one character to the console */
#define GMVM_PORT_CONSOLE 0x0500 /* in32: console requests */
#define GMVM_PORT_EXIT 0x0504 /* out32: EAX = exit code; stops the VM */
#define GMVM_PORT_VCPU_DONE 0x0508 /* out32: this vCPU has finished */
#define GMVM_PORT_NOP 0x050c /* in32: answers 0, reads no registers */
#define GMVM_PORT_MEMCTL 0x0510 /* in32: memory-control requests */
#define GMVM_PORT_CHKDEV 0x0514 /* in32: checksum/fill device requests */
#define GMVM_PORT_DEBUG 0x0518 /* in32: debug (host peek) requests */

/* Console ops (GMVM_PORT_CONSOLE). */
#define GMVM_CONSOLE_WRITE 1 /* a0 = gpa, a1 = len (<= 4096): bytes written */

/* Memory-control ops (GMVM_PORT_MEMCTL). */
#define GMVM_MEMCTL_CONVERT 1 /* a0 = gpa, a1 = len, a2 = to, a3 = flags */
#define GMVM_MEMCTL_QUERY 2 /* a0 = gpa: GMVM_SHARED or GMVM_PRIVATE */
#define GMVM_MEMCTL_INFO 3 /* a0 = what (GMVM_INFO_*): value, >= 0 */
/* a0 = gpa, a1 = len (GMVM_DIGEST_SIZE): writes the launch digest there */
#define GMVM_MEMCTL_MEASUREMENT 4
#define GMVM_DIGEST_SIZE 32 /* SHA-256 */
/*
 * a0..a4 = 0: pause every vCPU and write a snapshot (gmem-vm run
 * --snapshot FILE). Answers GMVM_SNAP_TAKEN in the VM that goes on,
 * GMVM_SNAP_RESTORED in a VM restored from that snapshot, or a status; with
 * --snapshot-exit the VM stops once the snapshot is written.
 */
#define GMVM_MEMCTL_SNAPSHOT 5
#define GMVM_SNAP_TAKEN 1
#define GMVM_SNAP_RESTORED 2

/* Page states (a2 of CONVERT, result of QUERY). */
#define GMVM_SHARED 0
#define GMVM_PRIVATE 1

/* CONVERT flags (a3). Neither: the VMM's default mode (--conversion). */
#define GMVM_CONV_DESTRUCTIVE (1u << 0)
#define GMVM_CONV_INPLACE (1u << 1)

/* INFO items. */
#define GMVM_INFO_PRIVATE_PAGES 1
#define GMVM_INFO_SHARED_PAGES 2
#define GMVM_INFO_EXTENTS 3
#define GMVM_INFO_TSC_KHZ 4 /* the TSC rate, 0 if unknown */
#define GMVM_INFO_RESTORES 5 /* how many times this VM was restored */

/* Checksum device ops (GMVM_PORT_CHKDEV). */
/* a0 = gpa, a1 = len, a2 = out gpa: writes the u64 FNV-1a of the buffer */
#define GMVM_CHK_CHECKSUM 1
/* a0 = gpa, a1 = len, a2 = seed: the device fills the buffer */
#define GMVM_CHK_FILL 2
/* a0 = gpa, a1 = len, a2 = flags (GMVM_HOLD_*): a handle >= 0 */
#define GMVM_CHK_HOLD 3
#define GMVM_CHK_RELEASE 4 /* a0 = handle */
#define GMVM_CHK_HELD 5 /* a0 = handle: 1 still held, 0 revoked */

#define GMVM_HOLD_REVOCABLE (1u << 0)
#define GMVM_CHK_MAX_LEN (16u << 20)
#define GMVM_CHK_MAX_HOLDS 16

/* Debug ops (GMVM_PORT_DEBUG). */
/*
 * a0 = gpa, a1 = len (<= 256): the VMM tries to read the range through the
 * library (gm_read) and reports what it saw; answers the FNV-1a 32 of the
 * bytes masked to 31 bits, or the error.
 */
#define GMVM_DEBUG_PEEK 1
#define GMVM_DEBUG_PEEK_MAX 256

/* Status codes (negative; the Linux errno values). */
#define GMVM_OK 0
#define GMVM_EPERM (-1) /* range overlaps a hypervisor-visible/device range */
#define GMVM_ENOENT (-2) /* no such handle */
#define GMVM_E2BIG (-7) /* length above the op's limit */
#define GMVM_ENOMEM (-12) /* VMM out of memory or of device slots */
#define GMVM_EFAULT (-14) /* a buffer holds private pages */
#define GMVM_EBUSY (-16) /* pages pinned by a device */
#define GMVM_EINVAL (-22) /* malformed or misaligned request */
#define GMVM_ERANGE (-34) /* range outside guest memory */
#define GMVM_ENOSYS (-38) /* unknown op */
#define GMVM_EOVERFLOW (-75) /* gpa + len overflows */
#define GMVM_EOPNOTSUPP (-95) /* refused by the VMM's policy */
#define GMVM_ECANCELED (-125) /* the hold was revoked */

/* Boot information, at GMVM_BOOT_INFO_GPA (read-only for the guest). */
#define GMVM_BOOT_INFO_GPA 0x1000ull
#define GMVM_BOOT_MAGIC 0x4d564d47u /* "GMVM" */

/* boot_info.flags */
#define GMVM_BOOT_INIT_PRIVATE (1u << 0) /* --init private */
#define GMVM_BOOT_DESTRUCTIVE (1u << 1) /* --conversion destructive */
#define GMVM_BOOT_GUEST_MEMFD (1u << 2) /* guest_memfd backing */

struct gmvm_boot_info {
	uint32_t magic;
	uint32_t version;
	uint64_t mem_size; /* bytes of guest memory, at gpa 0 */
	uint32_t nr_vcpus;
	uint32_t flags; /* GMVM_BOOT_* */
	uint64_t page_size; /* conversion granule: 4096 */
	uint64_t heap_start; /* the data area, in the --init state */
	uint64_t heap_end;
	uint64_t image_start; /* the loaded ELF image */
	uint64_t image_end;
	uint64_t tsc_khz; /* 0: ask GMVM_INFO_TSC_KHZ (not measured) */
	uint64_t reserved[6];
};

/*
 * Entry: every vCPU starts at the ELF entry point at CPL3 in 64-bit mode,
 * paging on (identity map of all guest memory, U bit set), RFLAGS.IOPL = 3,
 * interrupts off, RSP = top of its own stack, RDI = vCPU index,
 * RSI = GMVM_BOOT_INFO_GPA.
 */

#endif /* GMVM_ABI_H */
