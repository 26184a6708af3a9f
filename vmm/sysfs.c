// SPDX-License-Identifier: MIT
/*
 * The sandbox of gmem-vm exec (docs/exec.md): the program's files are one
 * host directory (--dir), read-only unless --rw. Every path is resolved by
 * openat2(2) beneath the directory (or beneath a directory fd the program
 * opened in it) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so no
 * absolute path, `..` or symlink reaches outside; calls that name a new or
 * removed entry (mkdir, unlink, rename) resolve its parent that way and act
 * on the last component, which the kernel does not follow. Guest fds 0-2
 * are gmem-vm's stdio; fds from 3 map to host fds in a per-VM table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

#define SYSFS_MAX_FDS 1024 /* the shim's RLIMIT_NOFILE */

struct sysfs {
	int root; /* O_PATH of --dir, -1 without one */
	bool rw;
	int host[SYSFS_MAX_FDS]; /* guest fd -> host fd, -1 free */
	atomic_ullong escapes; /* paths openat2 refused as leaving the dir */
	atomic_ullong no_dir; /* paths answered ENOENT: no --dir */
};

static struct sysfs the_fs = { .root = -1 };

int sysfs_open(struct vm *vm)
{
	struct sysfs *fs = &the_fs;

	for (int i = 0; i < SYSFS_MAX_FDS; i++)
		fs->host[i] = i <= 2 ? i : -1;
	fs->rw = vm->opts.exec_rw;
	vm->fs = fs;
	if (!vm->opts.exec_dir)
		return 0;
	fs->root = open(vm->opts.exec_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root < 0) {
		int err = errno;

		fprintf(stderr, "gmem-vm exec: --dir %s: %s\n",
			vm->opts.exec_dir, strerror(err));
		return -err;
	}
	return 0;
}

int sysfs_fd(struct vm *vm, uint64_t gfd)
{
	if (!vm->fs || gfd >= SYSFS_MAX_FDS || vm->fs->host[gfd] < 0)
		return -EBADF;
	return vm->fs->host[gfd];
}

/* Free a guest fd; gmem-vm's own stdio (host fds 0-2) stays open. */
static void drop(struct sysfs *fs, uint64_t gfd)
{
	if (fs->host[gfd] > 2)
		close(fs->host[gfd]);
	fs->host[gfd] = -1;
}

int32_t sysfs_close(struct vm *vm, uint64_t gfd)
{
	int fd = sysfs_fd(vm, gfd);

	if (fd < 0)
		return fd;
	drop(vm->fs, gfd);
	return 0;
}

/* dup (newfd -1: the lowest free), dup2, dup3 and F_DUPFD (min) */
int32_t sysfs_dup(struct vm *vm, uint64_t oldfd, int64_t newfd, uint64_t min)
{
	struct sysfs *fs = vm->fs;
	int fd = sysfs_fd(vm, oldfd), copy;

	if (fd < 0)
		return fd;
	if (newfd >= SYSFS_MAX_FDS || min >= SYSFS_MAX_FDS)
		return newfd >= 0 ? -EBADF : -EINVAL;
	if (newfd < 0) {
		for (newfd = (int64_t)min;
		     newfd < SYSFS_MAX_FDS && fs->host[newfd] >= 0; newfd++)
			;
		if (newfd == SYSFS_MAX_FDS)
			return -EMFILE;
	}
	if ((uint64_t)newfd == oldfd)
		return (int32_t)newfd;
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return -errno;
	if (fs->host[newfd] >= 0)
		drop(fs, (uint64_t)newfd);
	fs->host[newfd] = copy;
	return (int32_t)newfd;
}

/* The fd paths are resolved beneath: AT_FDCWD is the sandbox's root. */
static int base_fd(struct sysfs *fs, uint64_t gdirfd, const char *path)
{
	if (!path[0])
		return -ENOENT;
	if (fs->root < 0) {
		atomic_fetch_add(&fs->no_dir, 1);
		return -ENOENT;
	}
	if ((int32_t)gdirfd == AT_FDCWD)
		return fs->root;
	if (gdirfd <= 2 || gdirfd >= SYSFS_MAX_FDS || fs->host[gdirfd] < 0)
		return gdirfd <= 2 ? -ENOTDIR : -EBADF;
	return fs->host[gdirfd];
}

static int resolve(struct sysfs *fs, uint64_t gdirfd, const char *path,
		   uint64_t flags, uint64_t mode)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.mode = mode,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int base = base_fd(fs, gdirfd, path);
	long fd;

	if (base < 0)
		return base;
	fd = syscall(SYS_openat2, base, path, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno == EXDEV) { /* the path leaves the directory */
		atomic_fetch_add(&fs->escapes, 1);
		return -EACCES;
	}
	return -errno;
}

/*
 * A guest path from a 4 KiB slot of the I/O area: NUL-terminated inside
 * it (else ENAMETOOLONG), read with gm_read (a private page: EFAULT).
 */
int32_t sysfs_path(struct vm *vm, uint64_t gpa, char path[SYSFS_PATH_MAX])
{
	int ret;

	if (check_buffer(vm, gpa, SYSFS_PATH_MAX, SYSFS_PATH_MAX))
		return -EFAULT;
	ret = gm_read(vm->store, gpa, path, SYSFS_PATH_MAX);
	if (ret < 0) {
		refuse_lib(vm, ret);
		return -EFAULT;
	}
	if (!memchr(path, 0, SYSFS_PATH_MAX))
		return -ENAMETOOLONG;
	return 0;
}

static int32_t add_fd(struct sysfs *fs, int fd)
{
	for (int i = 0; i < SYSFS_MAX_FDS; i++) {
		if (fs->host[i] < 0) {
			fs->host[i] = fd;
			return i;
		}
	}
	close(fd);
	return -EMFILE;
}

#define OPEN_FLAGS                                                      \
	(O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | \
	 O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECTORY | O_NOFOLLOW |     \
	 O_CLOEXEC | O_LARGEFILE | O_NOATIME | O_PATH)

int32_t sysfs_openat(struct vm *vm, uint64_t gdirfd, const char *path,
		     uint64_t flags, uint64_t mode)
{
	struct sysfs *fs = vm->fs;
	bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	int fd;

	if ((flags & __O_TMPFILE) == __O_TMPFILE)
		return -EOPNOTSUPP;
	flags &= OPEN_FLAGS; /* open(2) ignores unknown flags */
	if ((flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (!fs->rw && writes && !(flags & O_PATH)) {
		fd = resolve(fs, gdirfd, path, O_PATH, 0);
		if (fd < 0)
			return fd == -ENOENT && (flags & O_CREAT) ? -EROFS : fd;
		close(fd);
		return -EROFS;
	}
	if (!fs->rw && (flags & O_CREAT)) {
		fd = resolve(fs, gdirfd, path, flags & ~(O_CREAT | O_EXCL), 0);
		return fd == -ENOENT ? -EROFS : fd < 0 ? fd : add_fd(fs, fd);
	}
	fd = resolve(fs, gdirfd, path, flags,
		     flags & O_CREAT ? mode & 07777 : 0);
	return fd < 0 ? fd : add_fd(fs, fd);
}

int32_t sysfs_stat(struct vm *vm, uint64_t gdirfd, const char *path,
		   uint64_t flags, struct stat *st)
{
	int fd;

	if (flags &
	    ~(uint64_t)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT))
		return -EINVAL;
	if (!path[0] && (flags & AT_EMPTY_PATH)) {
		fd = (int32_t)gdirfd == AT_FDCWD ? vm->fs->root :
						   sysfs_fd(vm, gdirfd);
		if (fd < 0)
			return fd == -1 ? -ENOENT : fd;
		return fstat(fd, st) ? -errno : 0;
	}
	fd = resolve(vm->fs, gdirfd, path,
		     O_PATH | (flags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0),
		     0);
	if (fd < 0)
		return fd;
	if (fstat(fd, st))
		fd = -errno;
	else
		close(fd), fd = 0;
	return fd;
}

int32_t sysfs_readlink(struct vm *vm, uint64_t gdirfd, const char *path,
		       char *buf, size_t len)
{
	int fd = resolve(vm->fs, gdirfd, path, O_PATH | O_NOFOLLOW, 0);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = readlinkat(fd, "", buf, len);
	if (n < 0)
		n = errno == ENOENT ? -EINVAL : -errno; /* not a link */
	close(fd);
	return (int32_t)n;
}

/*
 * The parent directory of a path's last component, resolved beneath, and
 * the component (trailing slashes dropped) in *last.
 */
static int parent_of(struct sysfs *fs, uint64_t gdirfd, char *path,
		     const char **last)
{
	size_t n = strlen(path);
	char *slash;
	int dir;

	if (n > 1 && path[n - 1] == '/') {
		/* "name/" must be a directory, followed as Linux would */
		dir = resolve(fs, gdirfd, path, O_PATH | O_DIRECTORY, 0);
		if (dir < 0 && dir != -ENOENT) /* absent: mkdir makes it */
			return dir;
		if (dir >= 0)
			close(dir);
	}
	while (n > 1 && path[n - 1] == '/')
		path[--n] = 0;
	slash = strrchr(path, '/');
	if (!slash) {
		*last = path;
		return resolve(fs, gdirfd, ".", O_PATH | O_DIRECTORY, 0);
	}
	*last = slash + 1;
	if (slash == path || !slash[1])
		return resolve(fs, gdirfd, "/", O_PATH | O_DIRECTORY, 0);
	*slash = 0;
	return resolve(fs, gdirfd, path, O_PATH | O_DIRECTORY, 0);
}

int32_t sysfs_unlinkat(struct vm *vm, uint64_t gdirfd, char *path,
		       uint64_t flags)
{
	const char *last;
	int dir, ret;

	if (flags & ~(uint64_t)AT_REMOVEDIR)
		return -EINVAL;
	dir = parent_of(vm->fs, gdirfd, path, &last);
	if (dir < 0)
		return dir;
	ret = !vm->fs->rw		      ? -EROFS :
	      unlinkat(dir, last, (int)flags) ? -errno :
						0;
	close(dir);
	return ret;
}

int32_t sysfs_mkdirat(struct vm *vm, uint64_t gdirfd, char *path, uint64_t mode)
{
	const char *last;
	int dir, ret;

	dir = parent_of(vm->fs, gdirfd, path, &last);
	if (dir < 0)
		return dir;
	ret = !vm->fs->rw				 ? -EROFS :
	      mkdirat(dir, last, (mode_t)(mode & 07777)) ? -errno :
							   0;
	close(dir);
	return ret;
}

int32_t sysfs_renameat(struct vm *vm, uint64_t olddirfd, char *old,
		       uint64_t newdirfd, char *new, uint64_t flags)
{
	const char *old_last, *new_last;
	int odir, ndir, ret;

	if (flags & ~(uint64_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	odir = parent_of(vm->fs, olddirfd, old, &old_last);
	if (odir < 0)
		return odir;
	ndir = parent_of(vm->fs, newdirfd, new, &new_last);
	if (ndir < 0) {
		close(odir);
		return ndir;
	}
	ret = !vm->fs->rw ? -EROFS :
	      renameat2(odir, old_last, ndir, new_last, (unsigned int)flags) ?
			    -errno :
			    0;
	close(odir);
	close(ndir);
	return ret;
}

void sysfs_report(struct vm *vm, FILE *out, bool json)
{
	unsigned long long esc = 0, none = 0;

	if (vm->fs) {
		esc = atomic_load(&vm->fs->escapes);
		none = atomic_load(&vm->fs->no_dir);
	}
	fprintf(out,
		json ? "\"escapes\": %llu, \"enoent\": %llu, " :
		       "exec: sandbox: %llu paths refused as escapes, %llu "
		       "answered ENOENT (no --dir)\n",
		esc, none);
}
