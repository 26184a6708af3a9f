/* SPDX-License-Identifier: MIT */
/*
 * libgmem and KVM: what the running kernel offers, and binding a store to a
 * KVM memslot.
 */
#ifndef GMEM_KVM_H
#define GMEM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct gm_hugetlb_size {
	uint64_t size; /* bytes */
	uint64_t nr; /* reserved pages (nr_hugepages) */
	uint64_t free; /* free_hugepages */
};

#define GM_CAPS_MAX_HUGETLB 4

struct gm_caps {
	size_t sz; /* in: sizeof(struct gm_caps); out: bytes filled */
	bool kvm; /* /dev/kvm opened */
	int kvm_api_version;
	bool guest_memfd; /* KVM_CAP_GUEST_MEMFD */
	uint64_t guest_memfd_flags; /* KVM_CAP_GUEST_MEMFD_FLAGS */
	bool user_memory2; /* KVM_CAP_USER_MEMORY2 */
	bool memory_fault_info; /* KVM_CAP_MEMORY_FAULT_INFO */
	uint64_t memory_attributes; /* KVM_CAP_MEMORY_ATTRIBUTES bitmask */
	uint64_t vm_types; /* KVM_CAP_VM_TYPES bitmask */
	bool pre_fault_memory; /* KVM_CAP_PRE_FAULT_MEMORY */
	unsigned int nr_hugetlb;
	struct gm_hugetlb_size hugetlb[GM_CAPS_MAX_HUGETLB];
	char thp_enabled[16]; /* transparent_hugepage/enabled mode */
	char thp_shmem[16]; /* transparent_hugepage/shmem_enabled mode */
	bool userfaultfd; /* userfaultfd(2) works for this process */
	long max_map_count; /* vm.max_map_count, -1 if unknown */
	/*
	 * guest_memfd offers huge pages: one of guest_memfd_flags asks for
	 * them. No mainline kernel has such a flag yet (the hugetlb series is
	 * an RFC), so this is false there and guest_memfd stores use 4 KiB.
	 */
	bool guest_memfd_huge_pages;
};

/*
 * Probe what this machine offers. Never fails for a missing feature (it is
 * reported as absent); -EINVAL for a NULL caps or a caps->sz smaller than
 * the sz field. Set caps->sz first.
 */
int gm_caps_probe(struct gm_caps *caps);

/*
 * Bind [off, off + len) of the store to KVM memslot `slot` of the VM vm_fd
 * at guest physical address gpa.
 *
 * guest_memfd backing: a KVM_MEM_GUEST_MEMFD memslot on the store's
 * guest_memfd (it must have been created on this same VM), whose
 * userspace_addr is the host view: the guest keeps using pages that the host
 * view has made PROT_NONE. memfd backing: KVM reads guest memory through a
 * host mapping, so the store keeps a separate read/write mapping of the
 * range for KVM alone (the memfd backing cannot hide private pages from
 * KVM; it hides them from the host view and the access calls).
 *
 * The store remembers each slot it bound, by (VM, slot), and keeps a
 * close-on-exec duplicate of vm_fd until the unbind, so the VM outlives
 * the caller's fd while KVM may use the store's memory. Binding a slot this
 * store already bound on the same VM (through any fd of it) is -EEXIST
 * (unbind it first), and gm_store_destroy refuses (-EBUSY) while any slot
 * is bound. -EBADF if vm_fd is not an open fd.
 */
int gm_kvm_memslot_bind(struct gm_store *store, int vm_fd, uint32_t slot,
			uint64_t gpa, uint64_t off, uint64_t len);

/*
 * Delete memslot `slot` of vm_fd that gm_kvm_memslot_bind made (a
 * KVM_SET_USER_MEMORY_REGION or ..._REGION2 of memory_size 0) and, with the
 * memfd backing, unmap the store's mapping of it for KVM and close the
 * store's duplicate of the VM fd. vm_fd is any open fd of the same VM (the
 * VM is compared, not the fd number: a number reused for another VM finds
 * nothing). -ENOENT if this store has not bound that slot on that VM,
 * -EBADF if vm_fd is not open. If KVM refuses the deletion, the slot stays
 * bound and its mapping stays, since KVM may still use it.
 */
int gm_kvm_memslot_unbind(struct gm_store *store, int vm_fd, uint32_t slot);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* GMEM_KVM_H */
