// SPDX-License-Identifier: MIT
/*
 * Object lifetimes: listeners that unregister themselves or each other from
 * their callbacks, what gm_store_destroy refuses (pins held, memslots bound,
 * listeners registered) and gm_kvm_memslot_unbind on a real VM.
 *
 * The listeners' opaques are freed right after gm_listener_unregister
 * returns, so under ASan any later callback of them is a use after free.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmem/kvm.h>

#include "test_util.h"

#define NPAGES 16

enum phase { PREPARE, COMMIT, ABORT, NR_PHASES };

/* What each listener heard, by id; outlives the listeners' opaques. */
static int heard[4][NR_PHASES];

struct tl {
	int id;
	struct gm_listener *self;
	/* In phase unreg_in, unregister victim (or self) and free its tl. */
	int unreg_in;
	struct tl *victim;
	int veto; /* prepare returns it, for changes at or after veto_from */
	uint64_t veto_from;
	bool slow; /* prepare says it entered, then sleeps */
};

static atomic_bool slow_entered;

static void hear(struct tl *t, enum phase ph)
{
	struct tl *gone;

	heard[t->id][ph]++;
	if (t->unreg_in != (int)ph)
		return;
	gone = t->victim ? t->victim : t;
	t->unreg_in = -1;
	gm_listener_unregister(gone->self);
	free(gone);
}

static int tl_prepare(void *opaque, const struct gm_range_change *ch)
{
	struct tl *t = opaque;
	int veto = ch->off >= t->veto_from ? t->veto : 0;

	if (t->slow) {
		atomic_store(&slow_entered, true);
		usleep(100 * 1000);
	}
	/* t may be gone after hear() */
	hear(t, PREPARE);
	return veto;
}

static void tl_commit(void *opaque, const struct gm_range_change *ch)
{
	(void)ch;
	hear(opaque, COMMIT);
}

static void tl_abort(void *opaque, const struct gm_range_change *ch)
{
	(void)ch;
	hear(opaque, ABORT);
}

static const struct gm_listener_ops tl_ops = {
	.sz = sizeof(struct gm_listener_ops),
	.prepare = tl_prepare,
	.commit = tl_commit,
	.abort = tl_abort,
};

static struct tl *tl_add(struct gm_store *s, int id)
{
	struct tl *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->id = id;
	t->unreg_in = -1;
	assert_int_equal(gm_listener_register(s, &tl_ops, t, &t->self), 0);
	return t;
}

static void tl_remove(struct tl *t)
{
	gm_listener_unregister(t->self);
	free(t);
}

static void expect_heard(int id, int prepare, int commit, int abort)
{
	if (heard[id][PREPARE] != prepare || heard[id][COMMIT] != commit ||
	    heard[id][ABORT] != abort)
		fprintf(stderr,
			"listener %d heard %d/%d/%d, expected %d/%d/%d\n", id,
			heard[id][PREPARE], heard[id][COMMIT], heard[id][ABORT],
			prepare, commit, abort);
	assert_int_equal(heard[id][PREPARE], prepare);
	assert_int_equal(heard[id][COMMIT], commit);
	assert_int_equal(heard[id][ABORT], abort);
}

/* A private store whose pages 0..2 convert in two sub-ranges (0 and 2). */
static struct gm_store *two_ranges_store(void)
{
	struct gm_store *s = tu_store(NPAGES * PG, 0);

	memset(heard, 0, sizeof(heard));
	assert_int_equal(gm_convert(s, PG, PG, GM_ATTR_SHARED, 0), 0);
	return s;
}

static void destroy_ok(struct gm_store *s)
{
	int ret = gm_store_destroy(s);

	if (ret)
		fprintf(stderr, "gm_store_destroy: %s\n", gm_last_error());
	assert_int_equal(ret, 0);
}

/* Unregistered in its first prepare: hears nothing more, ever. */
static void test_self_in_prepare(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *a = tl_add(s, 0), *b = tl_add(s, 1);

	(void)state;
	a->unreg_in = PREPARE;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 1, 0, 0);
	expect_heard(1, 2, 2, 0);
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_PRIVATE, 0), 0);
	expect_heard(0, 1, 0, 0);
	expect_heard(1, 3, 3, 0);
	tl_remove(b);
	destroy_ok(s);
}

/* Unregistered in the first commit: not the second sub-range's commit. */
static void test_self_in_commit(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *a = tl_add(s, 0), *b = tl_add(s, 1);

	(void)state;
	a->unreg_in = COMMIT;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 2, 1, 0);
	expect_heard(1, 2, 2, 0);
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_PRIVATE, 0), 0);
	expect_heard(0, 2, 1, 0);
	expect_heard(1, 3, 3, 0);
	tl_remove(b);
	destroy_ok(s);
}

/*
 * Unregistered in an abort: b vetoes the second sub-range, a hears the
 * abort of that one and not the abort of the first.
 */
static void test_self_in_abort(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *a = tl_add(s, 0), *b = tl_add(s, 1);

	(void)state;
	a->unreg_in = ABORT;
	b->veto = -EPERM;
	b->veto_from = 2 * PG;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), -EPERM);
	expect_heard(0, 2, 0, 1);
	expect_heard(1, 2, 0, 1);
	b->veto = 0;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 2, 0, 1);
	expect_heard(1, 4, 2, 1);
	tl_remove(b);
	destroy_ok(s);
}

/* A prepare that unregisters its listener still vetoes; no abort follows. */
static void test_self_veto(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *a = tl_add(s, 0), *b = tl_add(s, 1);

	(void)state;
	b->unreg_in = PREPARE;
	b->veto = -EPERM;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), -EPERM);
	expect_heard(0, 1, 0, 1);
	expect_heard(1, 1, 0, 0);
	assert_int_equal(gm_range_is(s, 0, PG, GM_ATTR_PRIVATE), 1);
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 3, 2, 1);
	expect_heard(1, 1, 0, 0);
	tl_remove(a);
	destroy_ok(s);
}

/*
 * A prepare unregisters a listener that prepared before it, then vetoes:
 * that listener hears no abort.
 */
static void test_other_veto(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *before = tl_add(s, 0), *a = tl_add(s, 1);
	struct tl *after = tl_add(s, 2);

	(void)state;
	a->unreg_in = PREPARE;
	a->victim = before;
	a->veto = -EPERM;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), -EPERM);
	expect_heard(0, 1, 0, 0);
	expect_heard(1, 1, 0, 0);
	expect_heard(2, 0, 0, 0);
	a->veto = 0;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 1, 0, 0);
	expect_heard(1, 3, 2, 0);
	expect_heard(2, 2, 2, 0);
	tl_remove(a);
	tl_remove(after);
	destroy_ok(s);
}

/*
 * A callback unregisters other listeners: one after it (that has not
 * prepared yet) and one before it (that has prepared, and so does not
 * hear the commit): neither hears anything more.
 */
static void test_other(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *before = tl_add(s, 0), *a = tl_add(s, 1);
	struct tl *after = tl_add(s, 2);

	(void)state;
	a->unreg_in = PREPARE;
	a->victim = after;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(2, 0, 0, 0);
	expect_heard(1, 2, 2, 0);
	expect_heard(0, 2, 2, 0);

	a->unreg_in = PREPARE;
	a->victim = before;
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_PRIVATE, 0), 0);
	expect_heard(0, 3, 2, 0);
	expect_heard(1, 3, 3, 0);
	expect_heard(2, 0, 0, 0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 3, 2, 0);
	expect_heard(1, 4, 4, 0);
	tl_remove(a);
	destroy_ok(s);
}

/* Every listener unregisters itself in the same conversion. */
static void test_all_in_one(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *t[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		t[i] = tl_add(s, i);
		t[i]->unreg_in = i == 1 ? COMMIT : PREPARE;
	}
	assert_int_equal(gm_convert(s, 0, 3 * PG, GM_ATTR_SHARED, 0), 0);
	expect_heard(0, 1, 0, 0);
	expect_heard(1, 2, 1, 0);
	expect_heard(2, 1, 0, 0);
	/* none left: destroy is not refused */
	destroy_ok(s);
}

struct converter {
	struct gm_store *s;
	int ret;
};

static void *convert_main(void *arg)
{
	struct converter *c = arg;

	c->ret = gm_convert(c->s, 0, 3 * PG, GM_ATTR_SHARED, 0);
	return NULL;
}

/*
 * Unregister from another thread while a conversion runs: it waits for the
 * conversion, and the opaque freed right after is never touched.
 */
static void test_other_thread(void **state)
{
	struct gm_store *s = two_ranges_store();
	struct tl *slow = tl_add(s, 0), *b = tl_add(s, 1);
	struct converter c = { .s = s };
	pthread_t t;

	(void)state;
	slow->slow = true;
	atomic_store(&slow_entered, false);
	assert_int_equal(pthread_create(&t, NULL, convert_main, &c), 0);
	while (!atomic_load(&slow_entered))
		usleep(1000);
	tl_remove(b);
	expect_heard(1, 2, 2, 0); /* unregister waited for the conversion */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(c.ret, 0);
	tl_remove(slow);
	destroy_ok(s);
}

/* ---- gm_store_destroy ---- */

struct reentry {
	struct gm_store *s;
	int destroy, bind, unbind;
};

static int reenter(void *opaque, const struct gm_range_change *ch)
{
	struct reentry *r = opaque;

	(void)ch;
	r->destroy = gm_store_destroy(r->s);
	r->bind = gm_kvm_memslot_bind(r->s, 1000, 0, 0, 0, PG);
	r->unbind = gm_kvm_memslot_unbind(r->s, 1000, 0);
	return 0;
}

static void expect_busy(struct gm_store *s, const char *what)
{
	int ret = gm_store_destroy(s);

	assert_int_equal(ret, -EBUSY);
	if (!strstr(gm_last_error(), what))
		fprintf(stderr, "message: %s (expected %s)\n", gm_last_error(),
			what);
	assert_non_null(strstr(gm_last_error(), what));
}

/* The store still works in full: conversions, accesses, listeners. */
static void expect_usable(struct gm_store *s, uint64_t off)
{
	char buf[4] = { 0 };

	assert_int_equal(gm_convert(s, off, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(gm_write(s, off, "abc", 4), 0);
	assert_int_equal(gm_read(s, off, buf, 4), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(gm_convert(s, off, PG, GM_ATTR_PRIVATE, 0), 0);
	assert_int_equal(gm_read(s, off, buf, 4), -EFAULT);
}

static void test_destroy_pinned(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, GM_STORE_INIT_SHARED);
	struct gm_pin *p, *q;

	(void)state;
	assert_int_equal(gm_store_destroy(NULL), 0);
	assert_int_equal(gm_pin(s, 0, PG, 0, &p), 0);
	assert_int_equal(gm_pin(s, 2 * PG, 2 * PG, 0, &q), 0);
	expect_busy(s, "pins");
	memcpy(gm_pin_ptr(p), "pin", 4);
	expect_usable(s, 8 * PG);
	assert_string_equal(gm_pin_ptr(p), "pin");
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_PRIVATE, 0), -EBUSY);
	gm_unpin(p);
	expect_busy(s, "pins");
	gm_unpin(q);
	destroy_ok(s);
}

static void test_destroy_listeners(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, 0);
	struct tl *a;

	(void)state;
	memset(heard, 0, sizeof(heard));
	a = tl_add(s, 0);
	expect_busy(s, "listeners");
	/* The handle is still the caller's, and the listener still hears. */
	expect_usable(s, 0);
	expect_heard(0, 2, 2, 0);
	tl_remove(a);
	destroy_ok(s);
}

/* From a callback of the store: -EDEADLK, and nothing happens. */
static void test_destroy_reentry(void **state)
{
	struct gm_store *s = tu_store(NPAGES * PG, 0);
	const struct gm_listener_ops ops = { .sz = sizeof(ops),
					     .prepare = reenter };
	struct reentry r = { .s = s };
	struct gm_listener *l;

	(void)state;
	assert_int_equal(gm_listener_register(s, &ops, &r, &l), 0);
	assert_int_equal(gm_convert(s, 0, PG, GM_ATTR_SHARED, 0), 0);
	assert_int_equal(r.destroy, -EDEADLK);
	assert_int_equal(r.bind, -EDEADLK);
	assert_int_equal(r.unbind, -EDEADLK);
	expect_usable(s, PG);
	gm_listener_unregister(l);
	destroy_ok(s);
}

/* ---- memslots, on a real VM ---- */

struct vm {
	int kvm, fd;
};

static struct vm vm_open(void)
{
	struct vm vm;

	vm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm.kvm < 0)
		fprintf(stderr, "/dev/kvm: %s\n", strerror(errno));
	assert_true(vm.kvm >= 0);
	vm.fd = ioctl(vm.kvm, KVM_CREATE_VM, 0);
	assert_true(vm.fd >= 0);
	return vm;
}

static void vm_close(struct vm *vm)
{
	close(vm->fd);
	close(vm->kvm);
}

/* A store on vm (guest_memfd must be created on the VM it binds to). */
static struct gm_store *vm_store(const struct vm *vm)
{
	struct gm_store_opts o;

	tu_opts(&o, NPAGES * PG, 0);
	o.vm_fd = vm->fd;
	return tu_store_with(&o);
}

/* Mappings of the store's fd in this process. */
static int fd_mappings(struct gm_store *s)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	struct stat st;
	int n = 0;

	assert_int_equal(fstat(gm_store_fd(s), &st), 0);
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long ino = 0;

		if (sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 &&
		    ino == (unsigned long)st.st_ino)
			n++;
	}
	fclose(f);
	return n;
}

/* KVM's own answer: deleting a slot that does not exist is -EINVAL. */
static int raw_delete(int vm_fd, uint32_t slot)
{
	struct kvm_userspace_memory_region r = { .slot = slot };

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

static void test_memslot(void **state)
{
	struct vm vm = vm_open();
	struct gm_store *s = vm_store(&vm);
	int maps0, kvm_maps = tu_backing == GM_BACKING_MEMFD ? 1 : 0;

	(void)state;
	maps0 = fd_mappings(s);
	assert_int_equal(gm_kvm_memslot_bind(s, vm.fd, 0, 0, 0, NPAGES * PG),
			 0);
	assert_int_equal(fd_mappings(s), maps0 + kvm_maps);
	/* The same slot again, anywhere: refused, and nothing mapped. */
	assert_int_equal(
		gm_kvm_memslot_bind(s, vm.fd, 0, 1 << 20, 0, NPAGES * PG),
		-EEXIST);
	assert_int_equal(fd_mappings(s), maps0 + kvm_maps);
	/* A second slot over the same gpa: KVM refuses the overlap. */
	assert_int_equal(gm_kvm_memslot_bind(s, vm.fd, 1, 0, 0, PG), -EEXIST);

	expect_busy(s, "memslots");
	expect_usable(s, 3 * PG);

	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 1), -ENOENT);
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd + 1, 0), -ENOENT);
	assert_int_equal(gm_kvm_memslot_unbind(s, -1, 0), -EBADF);
	assert_int_equal(gm_kvm_memslot_unbind(NULL, vm.fd, 0), -EINVAL);
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 0), 0);
	assert_int_equal(fd_mappings(s), maps0);
	/* KVM has no slot 0 any more, and its gpa range is free again. */
	assert_int_equal(raw_delete(vm.fd, 0), -EINVAL);
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 0), -ENOENT);
	assert_int_equal(gm_kvm_memslot_bind(s, vm.fd, 1, 0, 0, PG), 0);
	/* Slot 0 again, elsewhere, on a part of the store. */
	assert_int_equal(
		gm_kvm_memslot_bind(s, vm.fd, 0, 1 << 20, 4 * PG, 4 * PG), 0);
	assert_int_equal(fd_mappings(s), maps0 + 2 * kvm_maps);
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 1), 0);
	expect_busy(s, "memslots");
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 0), 0);
	assert_int_equal(raw_delete(vm.fd, 1), -EINVAL);
	assert_int_equal(fd_mappings(s), maps0);
	destroy_ok(s);
	vm_close(&vm);
}

/*
 * A slot KVM cannot delete (its VM fd closed) stays bound, with its
 * mapping; once the fd is back, unbind works.
 */
static void test_memslot_unbind_fails(void **state)
{
	struct vm vm = vm_open();
	struct gm_store *s = vm_store(&vm);
	int fd2 = dup(vm.fd), maps0;
	int kvm_maps = tu_backing == GM_BACKING_MEMFD ? 1 : 0;

	(void)state;
	assert_true(fd2 >= 0);
	maps0 = fd_mappings(s);
	assert_int_equal(gm_kvm_memslot_bind(s, fd2, 2, 0, 0, NPAGES * PG), 0);
	close(fd2);
	assert_int_equal(gm_kvm_memslot_unbind(s, fd2, 2), -EBADF);
	expect_busy(s, "memslots");
	assert_int_equal(fd_mappings(s), maps0 + kvm_maps);
	assert_int_equal(dup2(vm.fd, fd2), fd2);
	assert_int_equal(gm_kvm_memslot_unbind(s, fd2, 2), 0);
	assert_int_equal(fd_mappings(s), maps0);
	close(fd2);
	destroy_ok(s);
	vm_close(&vm);
}

/*
 * The store keeps the VM it bound, not the caller's fd number: the number
 * reused for another VM does not unbind the slot (nor delete the other
 * VM's), and the VM stays alive for KVM while the slot is bound.
 */
static void test_memslot_fd_reused(void **state)
{
	struct vm vm = vm_open(), other = vm_open();
	struct gm_store *s = vm_store(&vm);
	int fd2 = dup(vm.fd);

	(void)state;
	assert_true(fd2 >= 0);
	assert_int_equal(gm_kvm_memslot_bind(s, fd2, 3, 0, 0, NPAGES * PG), 0);
	/* fd2 now names another VM, which has no slot 3 of this store */
	assert_int_equal(dup2(other.fd, fd2), fd2);
	assert_int_equal(gm_kvm_memslot_unbind(s, fd2, 3), -ENOENT);
	expect_busy(s, "memslots");
	/* the VM itself, through any fd of it, unbinds */
	assert_int_equal(gm_kvm_memslot_unbind(s, vm.fd, 3), 0);
	close(fd2);
	destroy_ok(s);
	vm_close(&other);
	vm_close(&vm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_in_prepare),
		cmocka_unit_test(test_self_in_commit),
		cmocka_unit_test(test_self_in_abort),
		cmocka_unit_test(test_self_veto),
		cmocka_unit_test(test_other_veto),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_all_in_one),
		cmocka_unit_test(test_other_thread),
		cmocka_unit_test(test_destroy_pinned),
		cmocka_unit_test(test_destroy_listeners),
		cmocka_unit_test(test_destroy_reentry),
		cmocka_unit_test(test_memslot),
		cmocka_unit_test(test_memslot_unbind_fails),
		cmocka_unit_test(test_memslot_fd_reused),
	};

	tu_init(argc, argv, "test_lifetime");
	return cmocka_run_group_tests_name(tu_group("test_lifetime"), tests,
					   NULL, NULL);
}
