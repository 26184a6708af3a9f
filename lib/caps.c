// SPDX-License-Identifier: MIT
/*
 * What the running machine offers: KVM capabilities, huge pages,
 * userfaultfd, the mapping limit. A missing feature is reported as absent
 * (false, 0, "" or -1), never as an error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/kvm.h>

#include "internal.h"
#include "kvm-uapi.h"
#include "opts.h"

/* KVM_CHECK_EXTENSION; an error (old kernel, unknown cap) reads as 0. */
static uint64_t check_ext(int fd, long cap)
{
	int ret = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return ret > 0 ? (uint64_t)ret : 0;
}

/* The answer of the VM fd where it has one, else that of /dev/kvm. */
static uint64_t check_cap(int kvm_fd, int vm_fd, long cap)
{
	uint64_t val = check_ext(kvm_fd, cap);
	int ret;

	if (vm_fd < 0)
		return val;
	ret = ioctl(vm_fd, KVM_CHECK_EXTENSION, cap);
	if (ret >= 0)
		val = (uint64_t)ret;
	return val;
}

static int create_vm(int kvm_fd)
{
	int fd;

	do {
		fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	} while (fd < 0 && errno == EINTR);
	return fd;
}

static void probe_kvm(struct gm_caps *caps)
{
	int kvm_fd, vm_fd = -1;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return;
	caps->kvm = true;
	caps->kvm_api_version = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (caps->kvm_api_version < 0)
		caps->kvm_api_version = 0;

	/* Some answers are per VM type: ask a default VM too. */
	if (check_ext(kvm_fd, KVM_CAP_CHECK_EXTENSION_VM))
		vm_fd = create_vm(kvm_fd);

	caps->guest_memfd = check_cap(kvm_fd, vm_fd, KVM_CAP_GUEST_MEMFD) != 0;
	caps->guest_memfd_flags =
		check_cap(kvm_fd, vm_fd, KVM_CAP_GUEST_MEMFD_FLAGS);
	caps->guest_memfd_huge_pages =
		(caps->guest_memfd_flags & GM_GUEST_MEMFD_HUGE_FLAGS) != 0;
	caps->user_memory2 =
		check_cap(kvm_fd, vm_fd, KVM_CAP_USER_MEMORY2) != 0;
	caps->memory_fault_info =
		check_cap(kvm_fd, vm_fd, KVM_CAP_MEMORY_FAULT_INFO) != 0;
	caps->memory_attributes =
		check_cap(kvm_fd, vm_fd, KVM_CAP_MEMORY_ATTRIBUTES);
	caps->vm_types = check_cap(kvm_fd, vm_fd, KVM_CAP_VM_TYPES);
	caps->pre_fault_memory =
		check_cap(kvm_fd, vm_fd, KVM_CAP_PRE_FAULT_MEMORY) != 0;

	if (vm_fd >= 0)
		close(vm_fd);
	close(kvm_fd);
}

/* Read a small file into buf (NUL-terminated, trailing newline cut). */
static int read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		n = read(fd, buf, len - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

static int read_u64(const char *path, uint64_t *val)
{
	char buf[32], *end;
	unsigned long long v;

	if (read_small(path, buf, sizeof(buf)))
		return -1;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -1;
	*val = v;
	return 0;
}

/* The bracketed word of a sysfs mode file ("always [madvise] never"). */
static void read_mode(const char *path, char *out, size_t len)
{
	char buf[256], *lb, *rb;
	size_t n;

	out[0] = '\0';
	if (read_small(path, buf, sizeof(buf)))
		return;
	lb = strchr(buf, '[');
	rb = lb ? strchr(lb, ']') : NULL;
	if (!rb)
		return;
	n = (size_t)(rb - lb - 1);
	if (n >= len)
		return;
	memcpy(out, lb + 1, n);
	out[n] = '\0';
}

static void add_hugetlb(struct gm_caps *caps, const char *dir, uint64_t kb)
{
	struct gm_hugetlb_size h = { .size = kb * 1024 };
	char path[512];
	unsigned int i;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/nr_hugepages",
		 dir);
	if (read_u64(path, &h.nr))
		h.nr = 0;
	snprintf(path, sizeof(path),
		 "/sys/kernel/mm/hugepages/%s/free_hugepages", dir);
	if (read_u64(path, &h.free))
		h.free = 0;

	/* Keep them sorted by size; past GM_CAPS_MAX_HUGETLB, the largest go. */
	for (i = caps->nr_hugetlb; i > 0 && caps->hugetlb[i - 1].size > h.size;
	     i--) {
		if (i < GM_CAPS_MAX_HUGETLB)
			caps->hugetlb[i] = caps->hugetlb[i - 1];
	}
	if (i >= GM_CAPS_MAX_HUGETLB)
		return;
	caps->hugetlb[i] = h;
	if (caps->nr_hugetlb < GM_CAPS_MAX_HUGETLB)
		caps->nr_hugetlb++;
}

static void probe_hugetlb(struct gm_caps *caps)
{
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		unsigned long long kb;
		char *end;

		if (strncmp(de->d_name, "hugepages-", 10))
			continue;
		errno = 0;
		kb = strtoull(de->d_name + 10, &end, 10);
		if (errno || end == de->d_name + 10 || strcmp(end, "kB") || !kb)
			continue;
		add_hugetlb(caps, de->d_name, kb);
	}
	closedir(d);
}

static bool probe_userfaultfd(void)
{
#ifdef SYS_userfaultfd
	long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	close((int)fd);
	return true;
#else
	return false;
#endif
}

static long probe_max_map_count(void)
{
	uint64_t v;

	if (read_u64("/proc/sys/vm/max_map_count", &v) || v > LONG_MAX)
		return -1;
	return (long)v;
}

int gm_caps_probe(struct gm_caps *out)
{
	struct gm_caps full = { 0 }, *caps = &full;
	int saved_errno = errno;
	int ret = gm_out_check(out, "gm_caps_probe: caps");

	if (ret)
		return ret;

	probe_kvm(caps);
	probe_hugetlb(caps);
	read_mode("/sys/kernel/mm/transparent_hugepage/enabled",
		  caps->thp_enabled, sizeof(caps->thp_enabled));
	read_mode("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
		  caps->thp_shmem, sizeof(caps->thp_shmem));
	caps->userfaultfd = probe_userfaultfd();
	caps->max_map_count = probe_max_map_count();
	gm_out_copy(out, caps, sizeof(*caps));

	errno = saved_errno;
	return 0;
}
