// SPDX-License-Identifier: MIT
/* Error reporting and the argument checks shared by the entry points. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Per thread, like errno: the message of this thread's last failing call. */
static __thread char last_error[256];

int gm_error(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(last_error) - 32)
		snprintf(last_error + n, sizeof(last_error) - n, " (%s)",
			 strerror(-err));
	return err;
}

const char *gm_last_error(void)
{
	return last_error;
}

const char *gm_strerror(int err)
{
	if (err >= 0)
		return "success";
	switch (-err) {
	case EFAULT:
		return "a page of the range is private to the guest";
	case EBUSY:
		return "a page of the range is pinned";
	case EINVAL:
		return "invalid argument (alignment, size, flags or value)";
	case ERANGE:
		return "range outside the store or overflowing";
	case EDEADLK:
		return "called from inside a callback of the same store";
	case ENOSPC:
		return "the host view's mapping budget is exhausted";
	case EOPNOTSUPP:
		return "not supported by this kernel or backing";
	case E2BIG:
		return "a struct from a newer libgmem sets a field this one "
		       "lacks";
	default:
		return strerror(-err);
	}
}

int gm_check_store(const struct gm_store *store, const char *what)
{
	if (!store)
		return gm_error(-EINVAL, "%s: store is NULL", what);
	return 0;
}

int gm_check_bytes(const struct gm_store *store, uint64_t off, uint64_t len,
		   const char *what)
{
	int ret = gm_check_store(store, what);

	if (ret)
		return ret;
	if (off + len < off)
		return gm_error(
			-ERANGE, "%s: offset 0x%llx + length 0x%llx overflows",
			what, (unsigned long long)off, (unsigned long long)len);
	if (off + len > store->size || off >= store->size)
		return gm_error(-ERANGE,
				"%s: range [0x%llx, 0x%llx) passes the end of "
				"the store (0x%llx)",
				what, (unsigned long long)off,
				(unsigned long long)(off + len),
				(unsigned long long)store->size);
	return 0;
}

int gm_check_range(const struct gm_store *store, uint64_t off, uint64_t len,
		   const char *what)
{
	int ret = gm_check_store(store, what);

	if (ret)
		return ret;
	if (len == 0)
		return gm_error(-EINVAL, "%s: length is 0", what);
	if ((off | len) & (GM_PAGE_SIZE - 1))
		return gm_error(-EINVAL,
				"%s: offset 0x%llx or length 0x%llx is not a "
				"multiple of the page size (4096)",
				what, (unsigned long long)off,
				(unsigned long long)len);
	return gm_check_bytes(store, off, len, what);
}

int gm_check_attr(int attr, const char *what)
{
	if (attr != GM_ATTR_SHARED && attr != GM_ATTR_PRIVATE)
		return gm_error(-EINVAL,
				"%s: attribute %d is neither GM_ATTR_SHARED "
				"nor GM_ATTR_PRIVATE",
				what, attr);
	return 0;
}

bool gm_in_callback(struct gm_store *store)
{
	return __atomic_load_n(&store->writing, __ATOMIC_ACQUIRE) &&
	       pthread_equal(__atomic_load_n(&store->writer, __ATOMIC_RELAXED),
			     pthread_self());
}

int gm_check_reentry(struct gm_store *store, const char *what)
{
	if (gm_in_callback(store))
		return gm_error(-EDEADLK,
				"%s: called from a listener of the same store",
				what);
	return 0;
}

int gm_read_lock(struct gm_store *store, const char *what)
{
	int ret = gm_check_reentry(store, what);

	if (ret)
		return ret;
	pthread_rwlock_rdlock(&store->lock);
	return 0;
}

void gm_read_unlock(struct gm_store *store)
{
	pthread_rwlock_unlock(&store->lock);
}

uint64_t gm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
