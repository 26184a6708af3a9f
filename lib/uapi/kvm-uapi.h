/* SPDX-License-Identifier: MIT */
/*
 * KVM uAPI newer than the system's <linux/kvm.h> (Debian 12 ships Linux 6.1
 * headers). Numbers and layouts from the kernel's
 * Documentation/virt/kvm/api.rst (Linux 6.18); only what gmem uses.
 * Private to the project, not installed: lib/, vmm/ and tools/ get it
 * through CMake's gmem_kvm_uapi target.
 */
#ifndef GMEM_KVM_UAPI_H
#define GMEM_KVM_UAPI_H

#include <linux/kvm.h>
#include <stdint.h>

#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

/*
 * The guest_memfd flags that would ask for huge pages: none in any mainline
 * uapi yet. When one is merged, its bit goes here (gm_caps reports it).
 */
#define GM_GUEST_MEMFD_HUGE_FLAGS 0ULL

#ifndef GUEST_MEMFD_FLAG_MMAP
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#endif
#ifndef GUEST_MEMFD_FLAG_INIT_SHARED
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#endif

struct gm_kvm_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
#define GM_KVM_CREATE_GUEST_MEMFD \
	_IOWR(KVMIO, 0xd4, struct gm_kvm_create_guest_memfd)

struct gm_kvm_userspace_memory_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};
#define GM_KVM_SET_USER_MEMORY_REGION2 \
	_IOW(KVMIO, 0x49, struct gm_kvm_userspace_memory_region2)

#ifndef KVM_MEM_GUEST_MEMFD
#define KVM_MEM_GUEST_MEMFD (1u << 2)
#endif

struct gm_kvm_memory_attributes {
	uint64_t address;
	uint64_t size;
	uint64_t attributes;
	uint64_t flags;
};
#define GM_KVM_SET_MEMORY_ATTRIBUTES \
	_IOW(KVMIO, 0xd2, struct gm_kvm_memory_attributes)
#ifndef KVM_MEMORY_ATTRIBUTE_PRIVATE
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)
#endif

#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

#endif /* GMEM_KVM_UAPI_H */
