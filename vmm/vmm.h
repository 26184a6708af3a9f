/* SPDX-License-Identifier: MIT */
/* gmem-vm: the reference VMM's internal interfaces. */
#ifndef GMVM_VMM_H
#define GMVM_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <linux/kvm.h>

#include <gmem/gmem.h>

#include "abi.h"
#include "measure.h"

#define GMVM_MAX_VCPUS 16
/* the system region: boot info, GDT and TSS, page tables */
#define SYS_REGION_END (2ull << 20)
#define GDT_GPA 0x2000ull
#define TSS_GPA 0x3000ull
/* a 104-byte TSS, an I/O bitmap of 8192 bytes allowing every port, 0xff */
#define TSS_IOMAP_OFF 0x68u
#define TSS_LIMIT (TSS_IOMAP_OFF + 8192u)
#define PT_GPA 0x6000ull
#define GMVM_STACK_SIZE (64u << 10)

/* Process exit codes of gmem-vm itself (guests should not use them). */
/* a must be a power of two */
static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

#define PAGE_DOWN(x) ((x) & ~(uint64_t)(GM_PAGE_SIZE - 1))
#define PAGE_UP(x) align_up((x), GM_PAGE_SIZE)

#define GMVM_EXIT_SKIP 77 /* no /dev/kvm */
#define GMVM_EXIT_CRASH 120 /* the guest crashed */
#define GMVM_EXIT_VMM 121 /* the VMM failed to set up or run */
#define GMVM_EXIT_USAGE 122 /* bad command line */

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread; /* for pthread_join, main thread only */
	pthread_t self; /* set by the thread itself, before started */
	bool joinable;
	/* counters (this vCPU's thread only) */
	bool sync_regs; /* KVM copies the GPRs into run->s.regs on exit */
	atomic_bool started;
	atomic_bool done; /* the guest said this vCPU is finished */
	uint64_t exits;
	uint64_t io_exits;
	/* the guest asked for a snapshot on its last exit (snapshot.c) */
	bool snap_request;
};

/* Why a request was refused (index into vm.refused). */
enum refuse_reason {
	REFUSE_MALFORMED, /* unknown op, bad state, bad flags, reserved bits */
	REFUSE_MISALIGNED, /* gpa or len not page-aligned, len 0 */
	REFUSE_OVERFLOW, /* gpa + len wraps */
	REFUSE_OUT_OF_RANGE, /* past the end of guest memory */
	REFUSE_PROTECTED, /* overlaps a hypervisor-visible or device range */
	REFUSE_BUSY, /* pinned by a device */
	REFUSE_PRIVATE, /* a device buffer holds private pages */
	REFUSE_POLICY, /* the VMM's conversion policy forbids it */
	REFUSE_TOO_BIG, /* above an op's length limit */
	REFUSE_NO_SLOT, /* device out of hold slots, no such handle */
	REFUSE_UNKNOWN_PORT, /* access to a port no device claims */
	REFUSE_OTHER, /* the library refused for another reason */
	REFUSE_NR,
};

extern const char *const refuse_names[REFUSE_NR];

/* What the VMM tried to read of guest memory (debug peeks), for the report. */
#define GMVM_MAX_PEEKS 16
struct peek_record {
	uint64_t gpa;
	uint64_t len;
	int status;
	char preview[48]; /* printable copy of what was read */
};

struct range {
	uint64_t start, end; /* bytes, [start, end) */
	const char *what;
};

#define GMVM_MAX_RANGES 16

enum conv_mode { CONV_INPLACE = 0, CONV_DESTRUCTIVE };

struct vm_opts {
	const char *guest;
	uint64_t mem_size;
	unsigned int nr_vcpus;
	enum gm_backing backing; /* AUTO, GUEST_MEMFD or MEMFD */
	enum gm_pages pages; /* --page-size; huge pages need memfd */
	bool init_private;
	enum conv_mode conversion;
	bool json;
	bool quiet;
	bool measure_only; /* gmem-vm measure: no KVM, a memfd store */
	/* gmem-vm exec: the program and its arguments (NULL-terminated) */
	char *const *exec_argv;
	const char *exec_dir; /* --dir: the sandbox, NULL: no files */
	bool exec_rw; /* --rw: the sandbox is writable */
	/* snapshots (snapshot.c) */
	const char *snapshot; /* --snapshot FILE, or NULL */
	unsigned int snapshot_on; /* SNAP_ON_* */
	bool snapshot_exit; /* stop the VM once the snapshot is written */
	const char *key_file; /* --key-file, else GMEM_SNAPSHOT_KEY */
	bool restoring; /* vm_create: no layout, snapshot_restore fills it */
	unsigned int restore_given; /* RESTORE_GIVEN_*: options to match */
};

#define SNAP_ON_REQUEST (1u << 0)
#define SNAP_ON_SIGNAL (1u << 1)

#define RESTORE_GIVEN_MEM (1u << 0)
#define RESTORE_GIVEN_VCPUS (1u << 1)
#define RESTORE_GIVEN_BACKING (1u << 2)
#define RESTORE_GIVEN_PAGES (1u << 3)
#define RESTORE_GIVEN_INIT (1u << 4)
#define RESTORE_GIVEN_CONVERSION (1u << 5)

struct vm {
	struct vm_opts opts;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct gm_store *store;
	bool slot_bound; /* memslot 0 bound to the store */
	enum gm_backing backing;
	struct kvm_cpuid2 *cpuid;
	uint64_t tsc_khz;

	/* layout */
	uint64_t image_start, image_end, entry;
	uint64_t pt_start, pt_end;
	uint64_t stacks_start, stacks_end;
	uint64_t heap_start, heap_end;
	/* gmem-vm exec (exec.c): the shim's start registers, 0 otherwise */
	uint64_t exec_sp, exec_info;
	struct sysfs *fs; /* gmem-vm exec: the sandbox and fd table */
	/* ranges the guest may not convert: hypervisor-visible and devices */
	struct range protected[GMVM_MAX_RANGES];
	unsigned int nr_protected;
	/* the launch image, until populated (loader.c) */
	struct launch_region *launch;
	unsigned int nr_launch, cap_launch;
	uint8_t launch_digest[LAUNCH_DIGEST_SIZE];

	struct vcpu vcpus[GMVM_MAX_VCPUS];
	atomic_bool stopping;
	atomic_int exit_code; /* valid once stopping */
	atomic_bool crashed;
	pthread_mutex_t report_lock;
	FILE *console; /* stdout, or stderr with --json */

	/* stats: the VMM's own counters (the library counts conversions) */
	atomic_ullong memctl_requests;
	atomic_ullong memctl_ok;
	atomic_ullong convert_requests; /* CONVERT requests from the guest */
	atomic_ullong convert_ok;
	atomic_ullong
		convert_wall_ns; /* time in memctl CONVERT, all outcomes */
	struct gm_stats base; /* library stats when the guest started */
	atomic_ullong refused[REFUSE_NR];
	atomic_ullong device_requests;
	atomic_ullong device_pins;
	atomic_ullong device_revoked;
	atomic_ullong console_bytes;
	atomic_ullong exits;
	uint64_t start_ns, end_ns;

	pthread_mutex_t peek_lock;
	struct peek_record peeks[GMVM_MAX_PEEKS];
	unsigned int nr_peeks;
	uint64_t peeks_ok, peeks_refused;

	/* snapshots (snapshot.c) */
	bool restored; /* vCPU state comes from a snapshot, not the boot */
	uint64_t restores; /* restores this VM went through */
	uint64_t snapshots; /* snapshots written by this process */
};

/* vm.c */
int vm_create(struct vm *vm, const struct vm_opts *opts);
void vm_destroy(struct vm *vm);
int vm_add_protected(struct vm *vm, uint64_t start, uint64_t end,
		     const char *what);
const struct range *vm_protected_overlap(struct vm *vm, uint64_t start,
					 uint64_t end);
/* Stop every vCPU with this exit code (the first caller wins). */
void vm_stop(struct vm *vm, int code);
uint64_t now_ns(void);

/*
 * loader.c: the launch image. loader_load_elf protects the ELF's read-only
 * segments, fills image_* and entry, and adds the segments to the image.
 */
int loader_load_elf(struct vm *vm, const char *path);
/* The same for an ELF image in memory; path names it in messages. */
/* Map a file read-only (an ELF image to load); munmap *img, *size after. */
int loader_map_file(const char *path, const uint8_t **img, size_t *size);
int loader_load_elf_image(struct vm *vm, const char *path, const uint8_t *img,
			  uint64_t size);
/* Add a copy of buf at gpa to the launch image, launching in state attr. */
int loader_add(struct vm *vm, uint64_t gpa, const void *buf, size_t len,
	       enum gm_attr attr);
void loader_free(struct vm *vm);

/* pagetable.c: identity map of all guest memory at vm->pt_start. */
int pagetable_build(struct vm *vm);
uint64_t pagetable_size(uint64_t mem_size);

/* cpu.c */
/* The registers vCPU index starts with (measured: see measure.h). */
void cpu_boot_state(const struct vm *vm, unsigned int index,
		    struct launch_vcpu *st);
int cpu_init(struct vm *vm, unsigned int index);
int cpu_start(struct vcpu *vcpu);
void cpu_kick_all(struct vm *vm);
void cpu_dump(struct vcpu *vcpu, const char *why, FILE *out);

/* bus.c: port I/O dispatch */
struct io_req {
	struct vcpu *vcpu;
	uint16_t port;
	bool in; /* guest reads (in): the device fills *val */
	uint8_t size;
	uint32_t *val;
};

/* Register arguments of an `in` request (RDI, RSI, RCX, R8, R9, R10). */
struct io_args {
	uint64_t op, a0, a1, a2, a3, a4;
};

struct io_device {
	const char *name;
	uint16_t port;
	uint16_t len;
	/* a request: returns the status placed in EAX for `in` */
	int32_t (*request)(struct vm *vm, struct vcpu *vcpu,
			   const struct io_args *args);
	/* a plain value access (out, or in without register arguments) */
	void (*access)(struct vm *vm, struct io_req *req);
	uint64_t count; /* requests (atomic) */
};

void bus_register(struct io_device *dev);
/* Handle one port access. Never fails: unknown ports are refused. */
void bus_io(struct vm *vm, struct io_req *req);
void bus_init(void);
void bus_report(FILE *out, bool json);

/* refusal bookkeeping shared by the devices */
int32_t refuse(struct vm *vm, enum refuse_reason why, int32_t status);
/*
 * Refuse for a library error on guest memory: -EFAULT (a private page),
 * -EBUSY (pinned), anything else as it is.
 */
int32_t refuse_lib(struct vm *vm, int ret);
/*
 * Validate a guest range [gpa, gpa + len) against guest memory: aligned
 * to pages if `aligned`, non-empty, no wrap, inside the store. 0 or a
 * refused status.
 */
int32_t check_guest_range(struct vm *vm, uint64_t gpa, uint64_t len,
			  bool aligned);
/* A guest buffer: at most `max` bytes, inside guest memory. 0 or refused. */
int32_t check_buffer(struct vm *vm, uint64_t gpa, uint64_t len, uint64_t max);
/*
 * A request that names a guest buffer [a0, a0 + a1): its op must be `op`,
 * its length at most `max`, its range inside guest memory. 0 or a refused
 * status.
 */
int32_t check_buffer_request(struct vm *vm, const struct io_args *a,
			     uint32_t op, uint64_t max);

/* devices */
void console_init(void);
void exit_dev_init(void);
void memctl_init(void);
void chkdev_init(void);
void chkdev_fini(struct vm *vm);
void debug_init(void);
uint64_t chkdev_holds_active(void);
/* a revocable hold overlaps [start, end) */
bool chkdev_revocable_in(uint64_t start, uint64_t end);

/* exec.c: gmem-vm exec, a static Linux program beside the shim */
/* Load the embedded shim as the guest image (instead of opts.guest). */
int exec_load_shim(struct vm *vm);
/* Load the program and build its initial stack, after the layout. */
int exec_load(struct vm *vm);
/* Point LSTAR at the shim (KVM_SET_MSRS). */
int exec_cpu_setup(struct vcpu *vcpu);
/* sysdev.c: the shim's system-call device */
void sysdev_init(void);
void sysdev_report(struct vm *vm, FILE *out, bool json);
/* sysfs.c: the sandbox directory and the program's fd table */
#define SYSFS_PATH_MAX 4096 /* a path's slot in the I/O area */
struct stat;
int sysfs_open(struct vm *vm);
/* the host fd of a guest fd, or -EBADF */
int sysfs_fd(struct vm *vm, uint64_t gfd);
int32_t sysfs_close(struct vm *vm, uint64_t gfd);
int32_t sysfs_dup(struct vm *vm, uint64_t oldfd, int64_t newfd, uint64_t min);
int32_t sysfs_path(struct vm *vm, uint64_t gpa, char path[SYSFS_PATH_MAX]);
int32_t sysfs_openat(struct vm *vm, uint64_t gdirfd, const char *path,
		     uint64_t flags, uint64_t mode);
int32_t sysfs_stat(struct vm *vm, uint64_t gdirfd, const char *path,
		   uint64_t flags, struct stat *st);
int32_t sysfs_readlink(struct vm *vm, uint64_t gdirfd, const char *path,
		       char *buf, size_t len);
int32_t sysfs_unlinkat(struct vm *vm, uint64_t gdirfd, char *path,
		       uint64_t flags);
int32_t sysfs_mkdirat(struct vm *vm, uint64_t gdirfd, char *path,
		      uint64_t mode);
int32_t sysfs_renameat(struct vm *vm, uint64_t olddirfd, char *old,
		       uint64_t newdirfd, char *new, uint64_t flags);
void sysfs_report(struct vm *vm, FILE *out, bool json);
/* chkdev.c: the holds, for snapshots */
struct chk_hold_state {
	bool used, revocable, revoked;
	uint64_t start, end;
};
void chkdev_save(struct chk_hold_state st[GMVM_CHK_MAX_HOLDS]);
int chkdev_restore(struct vm *vm,
		   const struct chk_hold_state st[GMVM_CHK_MAX_HOLDS]);

/*
 * snapshot.c: pause, snapshot and restore (docs/snapshot.md, "VM
 * snapshots"). The vCPU threads call snapshot_thread_enter/leave around
 * their run loop and snapshot_point at its top.
 */
int snapshot_key_load(const char *key_file, uint8_t key[32]);
int snapshot_arm(struct vm *vm);
void snapshot_note_signal(void);
void snapshot_thread_enter(struct vcpu *vcpu);
void snapshot_thread_leave(struct vcpu *vcpu);
void snapshot_point(struct vcpu *vcpu);
/* memctl SNAPSHOT: a status for EAX (the answer is set after the pause) */
int32_t snapshot_request(struct vm *vm, struct vcpu *vcpu);
/* Create vm from the snapshot at path: memory, devices, vCPU state. */
int snapshot_restore(struct vm *vm, const struct vm_opts *opts,
		     const char *path);
void snapshot_fini(void);

/* report.c */
void report_print(struct vm *vm, FILE *out);
void report_json(struct vm *vm, FILE *out);

uint64_t fnv1a64(const void *buf, size_t len, uint64_t h);
#define FNV1A64_INIT 0xcbf29ce484222325ull

#endif /* GMVM_VMM_H */
