// SPDX-License-Identifier: MIT
/*
 * Binding a store to KVM memslots, and unbinding it. The store lists the
 * slots it bound (under its write lock), so that it can refuse a slot bound
 * twice, find the slot to unbind, and refuse to be destroyed while KVM may
 * still reach its memory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/kvm.h>

#include "internal.h"
#include "kvm-uapi.h"

/* Whether fds a and b of this process are the same open file (VM). */
static bool same_vm(int a, int b)
{
	pid_t pid = getpid();
	long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);

	/* Without kcmp (CONFIG_KCMP off), the fd numbers must do. */
	return r == 0 || (r < 0 && errno == ENOSYS && a == b);
}

static struct gm_kvm_slot **find_slot(struct gm_store *store, int vm_fd,
				      uint32_t slot)
{
	struct gm_kvm_slot **p;

	for (p = &store->kvm_slots; *p; p = &(*p)->next)
		if ((*p)->slot == slot && same_vm((*p)->vm_fd, vm_fd))
			break;
	return p;
}

static void slot_free(struct gm_store *store, struct gm_kvm_slot *s)
{
	if (s->kvm_map)
		gm_unmap_window(store, s->kvm_map, s->off, s->len);
	if (s->vm_fd >= 0)
		close(s->vm_fd);
	free(s);
}

static int bind_guest_memfd(struct gm_store *store, struct gm_kvm_slot *s,
			    uint64_t gpa, uint64_t off)
{
	struct gm_kvm_userspace_memory_region2 region = {
		.slot = s->slot,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = gpa,
		.memory_size = s->len,
		/* the host view: the guest keeps using pages it has closed */
		.userspace_addr = (uint64_t)(uintptr_t)(store->view + off),
		.guest_memfd_offset = off,
		.guest_memfd = (uint32_t)store->fd,
	};

	s->guest_memfd = true;
	if (ioctl(s->vm_fd, GM_KVM_SET_USER_MEMORY_REGION2, &region))
		return gm_error(-errno,
				"gm_kvm_memslot_bind: slot %u at gpa 0x%llx "
				"(guest_memfd must belong to this VM)",
				s->slot, (unsigned long long)gpa);
	return 0;
}

static int bind_memfd(struct gm_store *store, struct gm_kvm_slot *s,
		      uint64_t gpa, uint64_t off)
{
	struct kvm_userspace_memory_region region = {
		.slot = s->slot,
		.guest_phys_addr = gpa,
		.memory_size = s->len,
	};
	int ret;

	s->off = off;
	s->kvm_map = gm_map_window(store, off, s->len);
	if (!s->kvm_map)
		return gm_error(-errno, "gm_kvm_memslot_bind: mapping for KVM");
	region.userspace_addr = (uint64_t)(uintptr_t)s->kvm_map;
	if (ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &region)) {
		ret = -errno;
		gm_unmap_window(store, s->kvm_map, off, s->len);
		return gm_error(ret,
				"gm_kvm_memslot_bind: slot %u at gpa 0x%llx",
				s->slot, (unsigned long long)gpa);
	}
	return 0;
}

static int check_slot_args(struct gm_store *store, int vm_fd, const char *what)
{
	int ret = gm_check_store(store, what);

	if (!ret)
		ret = gm_check_reentry(store, what);
	if (!ret && (vm_fd < 0 || fcntl(vm_fd, F_GETFD) < 0))
		ret = gm_error(-EBADF, "%s: vm_fd %d is not an open fd", what,
			       vm_fd);
	return ret;
}

int gm_kvm_memslot_bind(struct gm_store *store, int vm_fd, uint32_t slot,
			uint64_t gpa, uint64_t off, uint64_t len)
{
	const char *what = "gm_kvm_memslot_bind";
	struct gm_kvm_slot *s;
	int ret;

	ret = gm_check_range(store, off, len, what);
	if (!ret)
		ret = check_slot_args(store, vm_fd, what);
	if (ret)
		return ret;
	if (gpa & (GM_PAGE_SIZE - 1) || gpa + len < gpa)
		return gm_error(-EINVAL,
				"%s: gpa 0x%llx is unaligned or overflows",
				what, (unsigned long long)gpa);
	s = calloc(1, sizeof(*s));
	if (!s)
		return gm_error(-ENOMEM, "%s: allocation", what);
	*s = (struct gm_kvm_slot){ .slot = slot, .len = len };
	s->vm_fd = fcntl(vm_fd, F_DUPFD_CLOEXEC, 3);
	if (s->vm_fd < 0) {
		ret = gm_error(-errno, "%s: duplicating vm_fd %d", what, vm_fd);
		free(s);
		return ret;
	}

	/* Held across the ioctl, so that two binds of a slot cannot race. */
	pthread_rwlock_wrlock(&store->lock);
	if (*find_slot(store, vm_fd, slot))
		ret = gm_error(-EEXIST,
			       "%s: slot %u of vm_fd %d is already bound to "
			       "this store",
			       what, slot, vm_fd);
	else if (store->backing == GM_BACKING_GUEST_MEMFD)
		ret = bind_guest_memfd(store, s, gpa, off);
	else
		ret = bind_memfd(store, s, gpa, off);
	if (!ret) {
		s->next = store->kvm_slots;
		store->kvm_slots = s;
	}
	pthread_rwlock_unlock(&store->lock);
	if (ret) {
		s->kvm_map = NULL; /* bind_memfd unmapped it */
		slot_free(store, s);
	}
	return ret;
}

/* Delete the memslot: a memory_size of 0, through the ioctl that made it. */
static int delete_memslot(const struct gm_kvm_slot *s)
{
	struct gm_kvm_userspace_memory_region2 region2 = { .slot = s->slot };
	struct kvm_userspace_memory_region region = { .slot = s->slot };

	if (s->guest_memfd)
		return ioctl(s->vm_fd, GM_KVM_SET_USER_MEMORY_REGION2,
			     &region2);
	return ioctl(s->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

int gm_kvm_memslot_unbind(struct gm_store *store, int vm_fd, uint32_t slot)
{
	const char *what = "gm_kvm_memslot_unbind";
	struct gm_kvm_slot **p, *s;
	int ret;

	ret = check_slot_args(store, vm_fd, what);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&store->lock);
	p = find_slot(store, vm_fd, slot);
	s = *p;
	if (!s) {
		ret = gm_error(-ENOENT,
			       "%s: slot %u of vm_fd %d is not bound to this "
			       "store",
			       what, slot, vm_fd);
	} else if (delete_memslot(s)) {
		/* Still bound: KVM may still use its mapping. */
		ret = gm_error(-errno, "%s: deleting slot %u of vm_fd %d", what,
			       slot, vm_fd);
	} else {
		*p = s->next;
		slot_free(store, s);
	}
	pthread_rwlock_unlock(&store->lock);
	return ret;
}
