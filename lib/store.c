// SPDX-License-Identifier: MIT
/* The store: its backing fd and its lifetime. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kvm-uapi.h"
#include "opts.h"

/* 1 TiB of pages and a little more: what the extent map takes. */
#define GM_MAX_SIZE (1ULL << (40 + GM_PAGE_SHIFT))

static const uint64_t gmem_flags =
	GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

const char *gm_backing_name(enum gm_backing backing)
{
	switch (backing) {
	case GM_BACKING_AUTO:
		return "auto";
	case GM_BACKING_GUEST_MEMFD:
		return "guest_memfd";
	case GM_BACKING_MEMFD:
		return "memfd";
	}
	return "unknown";
}

int gm_backing_parse(const char *name, enum gm_backing *out)
{
	static const enum gm_backing all[] = { GM_BACKING_AUTO,
					       GM_BACKING_GUEST_MEMFD,
					       GM_BACKING_MEMFD };

	if (!name || !out)
		return gm_error(-EINVAL, "gm_backing_parse: %s is NULL",
				name ? "out" : "name");
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(name, gm_backing_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return gm_error(-EINVAL,
			"gm_backing_parse: unknown backing '%s' (auto, "
			"guest_memfd or memfd)",
			name);
}

/*
 * KVM creates VM and guest_memfd fds without close-on-exec: set it, so that
 * an exec'd child never inherits a way to map the store. (Another thread
 * that forks and execs between the ioctl and this call can still catch one:
 * KVM offers no flag for it.)
 */
static int set_cloexec(int fd)
{
	return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void close_own(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * The VM to create a guest_memfd on: vm_fd, or (vm_fd < 0) one of our own,
 * opened into *own_kvm_fd and *own_vm_fd; -EOPNOTSUPP where the kernel has
 * no guest_memfd with gmem_flags (what GM_BACKING_AUTO falls back on).
 */
static int guest_memfd_vm(int vm_fd, int *own_kvm_fd, int *own_vm_fd)
{
	int ret;

	if (vm_fd < 0) {
		*own_kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
		if (*own_kvm_fd < 0)
			return gm_error(-EOPNOTSUPP,
					"guest_memfd backing: /dev/kvm: %s",
					strerror(errno));
		ret = ioctl(*own_kvm_fd, KVM_CREATE_VM, 0);
		if (ret < 0) {
			ret = gm_error(-errno,
				       "guest_memfd backing: KVM_CREATE_VM");
			close_own(own_kvm_fd);
			return ret;
		}
		vm_fd = *own_vm_fd = ret;
		if (set_cloexec(ret)) {
			ret = gm_error(-errno,
				       "guest_memfd backing: FD_CLOEXEC");
			close_own(own_vm_fd);
			close_own(own_kvm_fd);
			return ret;
		}
	}
	ret = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	/* The caller's fd is no VM: an error, never a reason to fall back. */
	if (ret < 0 && *own_vm_fd < 0)
		return gm_error(-EBADF,
				"guest_memfd backing: vm_fd %d is not a KVM VM "
				"fd (%s)",
				vm_fd, strerror(errno));
	if (ret < 0 || ((uint64_t)ret & gmem_flags) != gmem_flags) {
		close_own(own_vm_fd);
		close_own(own_kvm_fd);
		return gm_error(-EOPNOTSUPP,
				"guest_memfd backing: the kernel lacks "
				"guest_memfd with MMAP|INIT_SHARED");
	}
	return vm_fd;
}

/*
 * The one rule for the backing, of gm_store_create() and
 * gm_backing_resolve(): want itself, but GM_BACKING_AUTO is guest_memfd
 * where the kernel offers it (guest_memfd_vm()), else memfd. Returns the VM
 * fd to create the guest_memfd on (see guest_memfd_vm()), 0 for memfd, or
 * a negative errno.
 */
static int choose_backing(const char *what, enum gm_backing want, int vm_fd,
			  int *own_kvm_fd, int *own_vm_fd, enum gm_backing *out)
{
	int ret;

	switch (want) {
	case GM_BACKING_AUTO:
	case GM_BACKING_GUEST_MEMFD:
		ret = guest_memfd_vm(vm_fd, own_kvm_fd, own_vm_fd);
		if (ret == -EOPNOTSUPP && want == GM_BACKING_AUTO)
			break;
		if (ret >= 0)
			*out = GM_BACKING_GUEST_MEMFD;
		return ret;
	case GM_BACKING_MEMFD:
		break;
	default:
		return gm_error(-EINVAL, "%s: unknown backing %d", what,
				(int)want);
	}
	*out = GM_BACKING_MEMFD;
	return 0;
}

int gm_backing_resolve(enum gm_backing want, int vm_fd, enum gm_backing *out)
{
	int own_kvm_fd = -1, own_vm_fd = -1, ret;

	if (!out)
		return gm_error(-EINVAL, "gm_backing_resolve: out is NULL");
	ret = choose_backing("gm_backing_resolve", want, vm_fd, &own_kvm_fd,
			     &own_vm_fd, out);
	close_own(&own_vm_fd);
	close_own(&own_kvm_fd);
	return ret < 0 ? ret : 0;
}

static int create_guest_memfd(struct gm_store *store, int vm_fd)
{
	struct gm_kvm_create_guest_memfd args = {
		.size = store->size,
		.flags = gmem_flags,
	};
	int ret;

	ret = ioctl(vm_fd, GM_KVM_CREATE_GUEST_MEMFD, &args);
	if (ret < 0)
		return gm_error(-errno,
				"guest_memfd backing: "
				"KVM_CREATE_GUEST_MEMFD of %llu bytes",
				(unsigned long long)store->size);
	if (set_cloexec(ret)) {
		int err = -errno;

		close(ret);
		return gm_error(err, "guest_memfd backing: FD_CLOEXEC");
	}
	return ret;
}

static int create_memfd(struct gm_store *store)
{
	int fd = gm_huge_memfd(store);

	if (fd < 0)
		return fd;
	/* Fixed size, as a guest_memfd's. */
	if (ftruncate(fd, store->size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		int err = -errno;

		close(fd);
		return gm_error(err, "memfd backing: sizing to %llu bytes",
				(unsigned long long)store->size);
	}
	return fd;
}

/*
 * Huge pages only come with memfd here: GM_BACKING_AUTO means memfd for
 * them, and guest_memfd is refused by gm_huge_setup.
 */
static int open_backing(struct gm_store *store, const struct gm_store_opts *o)
{
	enum gm_backing want = o->backing;
	int vm_fd;

	if (o->pages != GM_PAGES_4K && want == GM_BACKING_AUTO)
		want = GM_BACKING_MEMFD;
	vm_fd = gm_huge_setup(store, want, o->pages);
	if (vm_fd)
		return vm_fd;
	vm_fd = choose_backing("gm_store_create", want, o->vm_fd,
			       &store->own_kvm_fd, &store->own_vm_fd,
			       &store->backing);
	if (vm_fd < 0)
		return vm_fd;
	if (store->backing == GM_BACKING_MEMFD)
		return create_memfd(store);
	return create_guest_memfd(store, vm_fd);
}

/* The caller's options, sized (opts.h), into *o with the defaults. */
static int read_opts(const struct gm_store_opts *user, struct gm_store_opts *o)
{
	const unsigned int known = GM_STORE_INIT_SHARED | GM_STORE_VIEW_LAZY;
	int ret = GM_OPTS_CHECK(user, "gm_store_create: opts");

	if (ret)
		return ret;
	*o = (struct gm_store_opts){ .vm_fd = -1 };
	gm_opts_copy(o, user, sizeof(*o));
	if (o->size == 0 || o->size & (GM_PAGE_SIZE - 1))
		return gm_error(-EINVAL,
				"gm_store_create: size %llu is not a non-zero "
				"multiple of 4096",
				(unsigned long long)o->size);
	if (o->size > GM_MAX_SIZE)
		return gm_error(-EINVAL,
				"gm_store_create: size %llu is larger than the "
				"maximum %llu",
				(unsigned long long)o->size, GM_MAX_SIZE);
	if (o->flags & ~known)
		return gm_error(-EINVAL, "gm_store_create: unknown flags 0x%x",
				o->flags & ~known);
	return 0;
}

/* Free a store that nothing refers to (no pin, memslot or listener). */
static void store_free(struct gm_store *store)
{
	gm_view_fini(store);
	free(store->thp_split);
	if (store->attrs)
		emap_destroy(store->attrs);
	if (store->fd >= 0)
		close(store->fd);
	if (store->own_vm_fd >= 0)
		close(store->own_vm_fd);
	if (store->own_kvm_fd >= 0)
		close(store->own_kvm_fd);
	pthread_cond_destroy(&store->pin_released);
	pthread_mutex_destroy(&store->pin_lock);
	pthread_rwlock_destroy(&store->view_lock);
	pthread_rwlock_destroy(&store->lock);
	free(store);
}

int gm_store_create(const struct gm_store_opts *opts, struct gm_store **out)
{
	struct gm_store_opts optbuf, *o = &optbuf;
	struct gm_store *store;
	uint8_t init;
	int ret;

	ret = read_opts(opts, o);
	if (ret)
		return ret;
	if (!out)
		return gm_error(-EINVAL, "gm_store_create: out is NULL");
	store = calloc(1, sizeof(*store));
	if (!store)
		return gm_error(-ENOMEM,
				"gm_store_create: allocating the store");
	store->size = o->size;
	store->npages = o->size >> GM_PAGE_SHIFT;
	store->flags = o->flags;
	store->view_budget =
		o->view_budget ? o->view_budget : GM_VIEW_BUDGET_DEFAULT;
	store->fd = store->own_vm_fd = store->own_kvm_fd = -1;
	store->view = MAP_FAILED;

	{
		pthread_rwlockattr_t attr;

		/* Conversions must not starve behind a stream of readers. */
		pthread_rwlockattr_init(&attr);
		pthread_rwlockattr_setkind_np(
			&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&store->lock, &attr);
		pthread_rwlockattr_destroy(&attr);
	}
	pthread_rwlock_init(&store->view_lock, NULL);
	pthread_mutex_init(&store->pin_lock, NULL);
	{
		pthread_condattr_t attr;

		pthread_condattr_init(&attr);
		pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
		pthread_cond_init(&store->pin_released, &attr);
		pthread_condattr_destroy(&attr);
	}

	ret = open_backing(store, o);
	if (ret < 0)
		goto err;
	store->fd = ret;

	init = (o->flags & GM_STORE_INIT_SHARED) ? GM_ATTR_SHARED :
						   GM_ATTR_PRIVATE;
	store->nr_private = init == GM_ATTR_PRIVATE ? store->npages : 0;
	ret = emap_create(store->npages, init, &store->attrs);
	if (ret) {
		gm_error(ret, "gm_store_create: attribute map");
		goto err;
	}
	ret = gm_view_init(store);
	if (ret)
		goto err;
	*out = store;
	return 0;
err:
	store_free(store);
	return ret;
}

/* What still refers to the store, or NULL; the write lock is held. */
static const char *store_users(struct gm_store *store)
{
	uint64_t pins;

	pthread_mutex_lock(&store->pin_lock);
	pins = store->nr_pins;
	pthread_mutex_unlock(&store->pin_lock);
	if (pins)
		return "pins or view holds remain (gm_unpin, gm_view_release)";
	if (store->kvm_slots)
		return "KVM memslots are bound (gm_kvm_memslot_unbind them)";
	if (store->listeners)
		return "listeners are registered (gm_listener_unregister "
		       "them)";
	return NULL;
}

int gm_store_destroy(struct gm_store *store)
{
	const char *busy;
	int ret;

	if (!store)
		return 0;
	ret = gm_check_reentry(store, "gm_store_destroy");
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&store->lock);
	busy = store_users(store);
	pthread_rwlock_unlock(&store->lock);
	if (busy)
		return gm_error(-EBUSY, "gm_store_destroy: %s", busy);
	store_free(store);
	return 0;
}

uint64_t gm_store_size(const struct gm_store *store)
{
	return store ? store->size : 0;
}

int gm_store_fd(const struct gm_store *store)
{
	return store ? store->fd : gm_error(-EINVAL, "gm_store_fd: NULL store");
}

enum gm_backing gm_store_backing(const struct gm_store *store)
{
	return store ? store->backing : GM_BACKING_AUTO;
}

size_t gm_store_page_size(const struct gm_store *store)
{
	return store ? GM_PAGE_SIZE : 0;
}

size_t gm_store_backing_page_size(const struct gm_store *store)
{
	return store ? store->huge_size : 0;
}
