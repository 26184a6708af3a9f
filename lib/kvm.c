// SPDX-License-Identifier: MIT
/* Binding a store to KVM memslots. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <gmem/kvm.h>

#include "internal.h"
#include "kvm-uapi.h"

static int bind_guest_memfd(struct gm_store *store, int vm_fd, uint32_t slot,
			    uint64_t gpa, uint64_t off, uint64_t len)
{
	struct gm_kvm_userspace_memory_region2 region = {
		.slot = slot,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = gpa,
		.memory_size = len,
		/* the host view: the guest keeps using pages it has closed */
		.userspace_addr = (uint64_t)(uintptr_t)(store->view + off),
		.guest_memfd_offset = off,
		.guest_memfd = (uint32_t)store->fd,
	};

	if (ioctl(vm_fd, GM_KVM_SET_USER_MEMORY_REGION2, &region))
		return gm_error(-errno,
				"gm_kvm_memslot_bind: slot %u at gpa 0x%llx "
				"(guest_memfd must belong to this VM)",
				slot, (unsigned long long)gpa);
	return 0;
}

static int bind_memfd(struct gm_store *store, int vm_fd, uint32_t slot,
		      uint64_t gpa, uint64_t off, uint64_t len)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = len,
	};
	struct gm_kvm_map *map = calloc(1, sizeof(*map));
	int ret;

	if (!map)
		return gm_error(-ENOMEM, "gm_kvm_memslot_bind: allocation");
	map->addr = gm_map_window(store, off, len);
	if (!map->addr) {
		ret = -errno;
		free(map);
		return gm_error(ret, "gm_kvm_memslot_bind: mapping for KVM");
	}
	map->len = len;
	region.userspace_addr = (uint64_t)(uintptr_t)map->addr;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region)) {
		ret = -errno;
		munmap(map->addr, len);
		free(map);
		return gm_error(ret,
				"gm_kvm_memslot_bind: slot %u at gpa 0x%llx",
				slot, (unsigned long long)gpa);
	}
	pthread_rwlock_wrlock(&store->lock);
	map->next = store->kvm_maps;
	store->kvm_maps = map;
	pthread_rwlock_unlock(&store->lock);
	return 0;
}

int gm_kvm_memslot_bind(struct gm_store *store, int vm_fd, uint32_t slot,
			uint64_t gpa, uint64_t off, uint64_t len)
{
	int ret = gm_check_range(store, off, len, "gm_kvm_memslot_bind");

	if (ret)
		return ret;
	if (vm_fd < 0)
		return gm_error(-EBADF, "gm_kvm_memslot_bind: vm_fd %d", vm_fd);
	if (gpa & (GM_PAGE_SIZE - 1) || gpa + len < gpa)
		return gm_error(-EINVAL,
				"gm_kvm_memslot_bind: gpa 0x%llx is unaligned "
				"or overflows",
				(unsigned long long)gpa);
	if (store->backing == GM_BACKING_GUEST_MEMFD)
		return bind_guest_memfd(store, vm_fd, slot, gpa, off, len);
	return bind_memfd(store, vm_fd, slot, gpa, off, len);
}
