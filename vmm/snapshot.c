// SPDX-License-Identifier: MIT
/*
 * Snapshot and restore of a running VM (docs/snapshot.md, "VM snapshots").
 *
 * Pause: a guest request (memctl SNAPSHOT) or a SIGUSR1 from outside makes
 * one vCPU thread the coordinator. It kicks the others; every vCPU thread
 * completes its pending I/O (KVM_RUN with immediate_exit), saves its own
 * registers and waits. Once every thread in its run loop has paused, the
 * coordinator writes the snapshot and then stops the VM (--snapshot-exit)
 * or lets every vCPU go on.
 *
 * File: a clear header; the VM state sealed with AES-256-GCM (the header is
 * its additional data); the store's export stream (gm_store_export); an
 * HMAC-SHA256 over every byte before it. Both keys are derived from the
 * snapshot key, which comes from --key-file or GMEM_SNAPSHOT_KEY.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gmem/snapshot.h>

#include "vmm.h"

#define SNAP_MAGIC "GMVMSNAP"
#define SNAP_VERSION 1u
#define SNAP_HEADER_SIZE 48u
#define SNAP_NONCE_SIZE 12
#define SNAP_TAG_SIZE 16
#define SNAP_MAC_SIZE 32
#define SNAP_KEY_SIZE GM_SNAPSHOT_KEY_SIZE
#define SNAP_STATE_MAX (1u << 20)
#define SNAP_IO_BUF (1u << 20)

_Static_assert(SNAP_KEY_SIZE == 32, "key size");

/* The MSRs saved per vCPU (those KVM lets us read; the TSC above all). */
static const uint32_t snap_msrs[] = {
	0x00000010, /* IA32_TSC */
	0x00000174, /* SYSENTER_CS */
	0x00000175, /* SYSENTER_ESP */
	0x00000176, /* SYSENTER_EIP */
	0x00000277, /* PAT */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SFMASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
};
#define SNAP_NR_MSRS (sizeof(snap_msrs) / sizeof(snap_msrs[0]))

/* One vCPU's saved state. */
struct vcpu_state {
	bool saved;
	bool done;
	bool requested; /* its last exit was a SNAPSHOT request */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t *xsave; /* KVM_GET_XSAVE(2), or a struct kvm_fpu */
	uint32_t xsave_len;
	bool fpu_only; /* no KVM_CAP_XSAVE: kvm_fpu */
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	bool has_events;
	struct kvm_vcpu_events events;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[SNAP_NR_MSRS];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool active; /* a pause is under way */
	unsigned int entered; /* vCPU threads that reached their loop */
	unsigned int in_loop; /* vCPU threads in their loop now */
	unsigned int paused;
	uint64_t round; /* bumped when a pause ends */
	struct vcpu_state vcpus[GMVM_MAX_VCPUS];
	uint8_t *key; /* SNAP_KEY_SIZE bytes on a page of its own (key_page) */
	bool armed;
} ctl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static atomic_bool pause_flag; /* ctl.active, read without the lock */
static atomic_int signalled; /* SIGUSR1 from outside, not yet served */

/* ---- the key ---- */

static int hex_nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 64 hex digits, then only white space. */
static int parse_hex_key(const char *s, size_t len, uint8_t key[SNAP_KEY_SIZE])
{
	size_t i;

	if (len < 2 * SNAP_KEY_SIZE)
		return -EINVAL;
	for (i = 0; i < SNAP_KEY_SIZE; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	for (i = 2 * SNAP_KEY_SIZE; i < len; i++)
		if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ' && s[i] != '\t')
			return -EINVAL;
	return 0;
}

/*
 * The key's page: out of core dumps and forked children, locked out of
 * swap where the limit allows (best effort), wiped when no longer needed.
 */
static uint8_t *key_page(void)
{
	void *p;

	if (ctl.key)
		return ctl.key;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, 4096, MADV_DONTDUMP);
	madvise(p, 4096, MADV_DONTFORK);
	mlock(p, 4096);
	ctl.key = p;
	return ctl.key;
}

static void key_wipe(void)
{
	if (ctl.key)
		OPENSSL_cleanse(ctl.key, SNAP_KEY_SIZE);
}

int snapshot_key_load(const char *key_file, uint8_t key[SNAP_KEY_SIZE])
{
	char buf[160];
	const char *env;
	ssize_t n;
	int fd, ret;

	if (!key_file) {
		env = getenv("GMEM_SNAPSHOT_KEY");
		if (!env || !*env) {
			fprintf(stderr, "gmem-vm: no snapshot key: give "
					"--key-file FILE or set "
					"GMEM_SNAPSHOT_KEY (64 hex digits)\n");
			return -ENOKEY;
		}
		ret = parse_hex_key(env, strlen(env), key);
		/*
		 * Out of the environment: /proc/<pid>/environ shows the
		 * original block, so wipe the digits in place too; children
		 * inherit nothing.
		 */
		OPENSSL_cleanse((char *)env, strlen(env));
		unsetenv("GMEM_SNAPSHOT_KEY");
		if (ret)
			fprintf(stderr, "gmem-vm: GMEM_SNAPSHOT_KEY: want 64 "
					"hex digits (a 32-byte key)\n");
		return ret;
	}
	fd = open(key_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "gmem-vm: --key-file %s: %s\n", key_file,
			strerror(errno));
		return ret;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ret = n < 0 ? -errno : 0;
	/* 32 raw bytes, or 64 hex digits (and a newline) */
	if (n == SNAP_KEY_SIZE)
		memcpy(key, buf, SNAP_KEY_SIZE);
	else if (!ret)
		ret = parse_hex_key(buf, (size_t)n, key);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (ret)
		fprintf(stderr,
			"gmem-vm: --key-file %s: want 32 bytes, or 64 hex "
			"digits\n",
			key_file);
	return ret;
}

/* Subkey for one use: HMAC-SHA256(key, label). */
static int derive(const uint8_t key[SNAP_KEY_SIZE], const char *label,
		  uint8_t out[SNAP_MAC_SIZE])
{
	unsigned int len = SNAP_MAC_SIZE;

	if (!HMAC(EVP_sha256(), key, SNAP_KEY_SIZE,
		  (const unsigned char *)label, strlen(label), out, &len))
		return -ENOMEM;
	return 0;
}

/* ---- the state as bytes ---- */

struct sbuf {
	uint8_t *p;
	size_t len, cap;
	bool bad; /* out of memory (put) or out of bytes (get) */
};

static void put(struct sbuf *b, const void *v, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		/* not realloc: the old buffer holds register bytes to wipe */
		p = malloc(cap);
		if (!p) {
			b->bad = true;
			return;
		}
		if (b->p) {
			memcpy(p, b->p, b->len);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, v, n);
	b->len += n;
}

static void put_u32(struct sbuf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

static void put_u64(struct sbuf *b, uint64_t v)
{
	put(b, &v, sizeof(v));
}

/* a length-prefixed blob: a KVM struct, a string */
static void put_blob(struct sbuf *b, const void *v, uint32_t n)
{
	put_u32(b, n);
	put(b, v, n);
}

static void get(struct sbuf *b, void *v, size_t n)
{
	if (b->bad || b->cap - b->len < n) {
		b->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, b->p + b->len, n);
	b->len += n;
}

static uint32_t get_u32(struct sbuf *b)
{
	uint32_t v;

	get(b, &v, sizeof(v));
	return v;
}

static uint64_t get_u64(struct sbuf *b)
{
	uint64_t v;

	get(b, &v, sizeof(v));
	return v;
}

/* A blob of exactly n bytes (a KVM struct of this build's size). */
static void get_exact(struct sbuf *b, void *v, uint32_t n)
{
	if (get_u32(b) != n)
		b->bad = true;
	get(b, v, n);
}

/* ---- pausing ---- */

void snapshot_note_signal(void)
{
	atomic_store(&signalled, 1);
}

void snapshot_thread_enter(struct vcpu *vcpu)
{
	(void)vcpu;
	pthread_mutex_lock(&ctl.lock);
	ctl.entered++;
	ctl.in_loop++;
	pthread_mutex_unlock(&ctl.lock);
}

void snapshot_thread_leave(struct vcpu *vcpu)
{
	pthread_mutex_lock(&ctl.lock);
	ctl.in_loop--;
	pthread_cond_broadcast(&ctl.cond);
	pthread_mutex_unlock(&ctl.lock);
	/* a signal this thread took on its way out: another vCPU serves it */
	if (atomic_load(&signalled))
		cpu_kick_all(vcpu->vm);
}

int32_t snapshot_request(struct vm *vm, struct vcpu *vcpu)
{
	if (!vm->opts.snapshot || !(vm->opts.snapshot_on & SNAP_ON_REQUEST))
		return refuse(vm, REFUSE_POLICY, GMVM_EOPNOTSUPP);
	/* the answer goes into RAX once the snapshot is written */
	vcpu->snap_request = true;
	return 0;
}

/* Registers can hold the guest's secrets: wiped, not just freed. */
static void free_state(struct vcpu_state *st)
{
	if (st->xsave)
		OPENSSL_cleanse(st->xsave, st->xsave_len);
	free(st->xsave);
	OPENSSL_cleanse(st, sizeof(*st));
}

static int xsave_size(struct vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, 229 /* XSAVE2 */);

	return n > (int)sizeof(struct kvm_xsave) ?
		       n :
		       (int)sizeof(struct kvm_xsave);
}

/* Read a vCPU's state (its own thread, or one that no longer runs). */
static int capture(struct vcpu *vcpu, struct vcpu_state *st)
{
	struct vm *vm = vcpu->vm;
	struct kvm_msrs *one;
	int ret = 0;

	free_state(st);
	st->done = atomic_load(&vcpu->done);
	st->requested = vcpu->snap_request;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &st->regs) ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &st->sregs))
		return -errno;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		st->xsave_len = (uint32_t)xsave_size(vm);
		st->xsave = calloc(1, st->xsave_len);
		if (!st->xsave)
			return -ENOMEM;
		ret = ioctl(vcpu->fd,
			    st->xsave_len > sizeof(struct kvm_xsave) ?
				    KVM_GET_XSAVE2 :
				    KVM_GET_XSAVE,
			    st->xsave);
	} else {
		st->fpu_only = true;
		st->xsave_len = sizeof(struct kvm_fpu);
		st->xsave = calloc(1, st->xsave_len);
		if (!st->xsave)
			return -ENOMEM;
		ret = ioctl(vcpu->fd, KVM_GET_FPU, st->xsave);
	}
	if (ret)
		return -errno;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		if (ioctl(vcpu->fd, KVM_GET_XCRS, &st->xcrs))
			return -errno;
		st->has_xcrs = true;
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS) > 0) {
		if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &st->events))
			return -errno;
		st->has_events = true;
	}
	/* one at a time: keep those this KVM has, skip the others */
	one = calloc(1, sizeof(*one) + sizeof(one->entries[0]));
	if (!one)
		return -ENOMEM;
	for (unsigned int i = 0; i < SNAP_NR_MSRS; i++) {
		one->nmsrs = 1;
		one->entries[0] =
			(struct kvm_msr_entry){ .index = snap_msrs[i] };
		if (ioctl(vcpu->fd, KVM_GET_MSRS, one) == 1)
			st->msrs[st->nr_msrs++] = one->entries[0];
	}
	free(one);
	st->saved = true;
	return 0;
}

/* Complete the vCPU's pending I/O, so that its registers are whole. */
static int flush(struct vcpu *vcpu)
{
	int ret;

	vcpu->run->immediate_exit = 1;
	ret = ioctl(vcpu->fd, KVM_RUN, 0);
	vcpu->run->immediate_exit = 0;
	if (ret == 0 || errno == EINTR || errno == EAGAIN)
		return 0;
	return -errno;
}

static int snapshot_write(struct vm *vm, const char *path);

/* Wait for every vCPU thread to pause; false if the VM is stopping. */
static bool wait_all_paused(struct vm *vm)
{
	struct timespec ts;

	pthread_mutex_lock(&ctl.lock);
	while (!atomic_load(&vm->stopping) &&
	       (ctl.paused < ctl.in_loop || ctl.entered < vm->opts.nr_vcpus)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ctl.cond, &ctl.lock, &ts);
	}
	pthread_mutex_unlock(&ctl.lock);
	return !atomic_load(&vm->stopping);
}

/* The coordinator: every vCPU is paused; write, answer, go on or stop. */
static void coordinate(struct vm *vm)
{
	int ret = 0;

	/* the vCPUs that left their loop are read from here */
	for (unsigned int i = 0; i < vm->opts.nr_vcpus && !ret; i++)
		if (!ctl.vcpus[i].saved)
			ret = capture(&vm->vcpus[i], &ctl.vcpus[i]);
	if (ret)
		fprintf(stderr, "gmem-vm: snapshot: reading vCPU state: %s\n",
			strerror(-ret));
	else
		ret = snapshot_write(vm, vm->opts.snapshot);
	/* the requesters' answer: taken, or why not */
	for (unsigned int i = 0; i < vm->opts.nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		struct kvm_regs regs;

		if (!v->snap_request)
			continue;
		v->snap_request = false;
		if (!ioctl(v->fd, KVM_GET_REGS, &regs)) {
			regs.rax = (uint32_t)(ret ? ret : GMVM_SNAP_TAKEN);
			ioctl(v->fd, KVM_SET_REGS, &regs);
		}
	}
	if (vm->opts.snapshot_exit)
		vm_stop(vm, ret ? GMVM_EXIT_VMM : 0);
}

void snapshot_point(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool want = vcpu->snap_request;
	bool coordinator = false;
	uint64_t round;
	int ret;

	if (!want && (vm->opts.snapshot_on & SNAP_ON_SIGNAL) && ctl.armed &&
	    atomic_load(&signalled))
		want = atomic_exchange(&signalled, 0);
	if (!want && !atomic_load(&pause_flag))
		return;
	ret = flush(vcpu);
	if (!ret)
		ret = capture(vcpu, &ctl.vcpus[vcpu->index]);
	pthread_mutex_lock(&ctl.lock);
	if (want && !ctl.active) {
		coordinator = true;
		ctl.active = true;
		atomic_store(&pause_flag, true);
	}
	if (ret) {
		/* this state cannot be saved: no snapshot this round */
		fprintf(stderr, "gmem-vm: snapshot: vCPU %u state: %s\n",
			vcpu->index, strerror(-ret));
		ctl.vcpus[vcpu->index].saved = false;
	}
	ctl.paused++;
	pthread_cond_broadcast(&ctl.cond);
	round = ctl.round;
	pthread_mutex_unlock(&ctl.lock);

	if (coordinator) {
		cpu_kick_all(vm);
		if (wait_all_paused(vm))
			coordinate(vm);
		pthread_mutex_lock(&ctl.lock);
		for (unsigned int i = 0; i < GMVM_MAX_VCPUS; i++)
			free_state(&ctl.vcpus[i]);
		ctl.active = false;
		ctl.paused = 0;
		ctl.round++;
		atomic_store(&pause_flag, false);
		pthread_cond_broadcast(&ctl.cond);
		pthread_mutex_unlock(&ctl.lock);
		return;
	}
	pthread_mutex_lock(&ctl.lock);
	while (ctl.round == round)
		pthread_cond_wait(&ctl.cond, &ctl.lock);
	pthread_mutex_unlock(&ctl.lock);
}

int snapshot_arm(struct vm *vm)
{
	if (!vm->opts.snapshot)
		return 0;
	if (!key_page() || snapshot_key_load(vm->opts.key_file, ctl.key))
		return -ENOKEY;
	ctl.armed = true;
	return 0;
}

void snapshot_fini(void)
{
	key_wipe();
	for (unsigned int i = 0; i < GMVM_MAX_VCPUS; i++)
		free_state(&ctl.vcpus[i]);
}

/* ---- the state section ---- */

static void put_vcpu(struct sbuf *b, const struct vcpu_state *st)
{
	put_u32(b, st->done);
	put_blob(b, &st->regs, sizeof(st->regs));
	put_blob(b, &st->sregs, sizeof(st->sregs));
	put_u32(b, st->fpu_only);
	put_blob(b, st->xsave, st->xsave_len);
	put_u32(b, st->has_xcrs);
	put_blob(b, &st->xcrs, sizeof(st->xcrs));
	put_u32(b, st->has_events);
	put_blob(b, &st->events, sizeof(st->events));
	put_u32(b, st->nr_msrs);
	for (uint32_t i = 0; i < st->nr_msrs; i++) {
		put_u32(b, st->msrs[i].index);
		put_u64(b, st->msrs[i].data);
	}
}

static void put_str(struct sbuf *b, const char *s)
{
	put_blob(b, s, (uint32_t)strlen(s));
}

static void state_encode(struct vm *vm, struct sbuf *b)
{
	struct chk_hold_state holds[GMVM_CHK_MAX_HOLDS];
	const struct vm_opts *o = &vm->opts;

	put_u64(b, o->mem_size);
	put_u32(b, o->nr_vcpus);
	put_u32(b, vm->backing);
	put_u32(b, o->pages);
	put_u32(b, o->init_private);
	put_u32(b, o->conversion);
	put_str(b, o->guest);
	put_u64(b, vm->image_start);
	put_u64(b, vm->image_end);
	put_u64(b, vm->entry);
	put_u64(b, vm->pt_start);
	put_u64(b, vm->pt_end);
	put_u64(b, vm->stacks_start);
	put_u64(b, vm->stacks_end);
	put_u64(b, vm->heap_start);
	put_u64(b, vm->heap_end);
	put(b, vm->launch_digest, LAUNCH_DIGEST_SIZE);
	put_u64(b, vm->restores);
	put_u32(b, vm->nr_protected);
	for (unsigned int i = 0; i < vm->nr_protected; i++) {
		put_u64(b, vm->protected[i].start);
		put_u64(b, vm->protected[i].end);
		put_str(b, vm->protected[i].what);
	}
	/* counters the report shows, so that they run on after a restore */
	put_u64(b, atomic_load(&vm->console_bytes));
	put_u64(b, atomic_load(&vm->memctl_requests));
	put_u64(b, atomic_load(&vm->memctl_ok));
	put_u64(b, atomic_load(&vm->convert_requests));
	put_u64(b, atomic_load(&vm->convert_ok));
	put_u64(b, atomic_load(&vm->device_requests));
	put_u64(b, atomic_load(&vm->device_pins));
	put_u64(b, atomic_load(&vm->device_revoked));
	chkdev_save(holds);
	put_u32(b, GMVM_CHK_MAX_HOLDS);
	for (unsigned int i = 0; i < GMVM_CHK_MAX_HOLDS; i++) {
		put_u32(b, holds[i].used | holds[i].revocable << 1 |
				   holds[i].revoked << 2);
		put_u64(b, holds[i].start);
		put_u64(b, holds[i].end);
	}
	for (unsigned int i = 0; i < o->nr_vcpus; i++) {
		struct vcpu_state st = ctl.vcpus[i];

		/* the requester reads "restored" when the snapshot resumes */
		if (st.requested)
			st.regs.rax = GMVM_SNAP_RESTORED;
		put_vcpu(b, &st);
	}
}

/* ---- writing ---- */

struct snap_out {
	int fd;
	EVP_MAC_CTX *mac; /* over every byte written */
	uint8_t *buf;
	size_t used;
	uint64_t bytes;
	uint64_t fail_at; /* fault injection: GMVM_SNAPSHOT_FAIL_AT */
};

static int out_flush(struct snap_out *o)
{
	size_t done = 0;

	while (done < o->used) {
		ssize_t n = write(o->fd, o->buf + done, o->used - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	o->used = 0;
	return 0;
}

/* Buffer bytes for the file (no MAC); fault injection counts them. */
static int out_put(struct snap_out *o, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int ret;

	if (o->fail_at && o->bytes + len >= o->fail_at)
		return -ENOSPC; /* as a full disk would */
	o->bytes += len;
	while (len) {
		size_t n = SNAP_IO_BUF - o->used;

		if (n > len)
			n = len;
		memcpy(o->buf + o->used, p, n);
		o->used += n;
		p += n;
		len -= n;
		if (o->used == SNAP_IO_BUF) {
			ret = out_flush(o);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Bytes under the file MAC (a gm_write_fn). */
static int out_write(void *opaque, const void *buf, size_t len)
{
	struct snap_out *o = opaque;

	if (!EVP_MAC_update(o->mac, buf, len))
		return -ENOMEM;
	return out_put(o, buf, len);
}

static EVP_MAC_CTX *mac_new(const uint8_t key[SNAP_MAC_SIZE])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;

	EVP_MAC_free(hmac);
	if (ctx && !EVP_MAC_init(ctx, key, SNAP_MAC_SIZE, params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static void header_build(uint8_t h[SNAP_HEADER_SIZE], uint32_t state_len,
			 const uint8_t nonce[SNAP_NONCE_SIZE])
{
	uint32_t v;

	memset(h, 0, SNAP_HEADER_SIZE);
	memcpy(h, SNAP_MAGIC, 8);
	v = SNAP_VERSION;
	memcpy(h + 8, &v, 4);
	v = SNAP_HEADER_SIZE;
	memcpy(h + 12, &v, 4);
	memcpy(h + 16, &state_len, 4);
	/* h + 20: flags, 0 */
	memcpy(h + 24, nonce, SNAP_NONCE_SIZE);
	/* h + 36 .. 48: reserved, 0 */
}

/* AES-256-GCM over the state, with the header as additional data. */
static int seal_state(const uint8_t key[SNAP_MAC_SIZE],
		      const uint8_t h[SNAP_HEADER_SIZE], const uint8_t *in,
		      uint32_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;

	ok = c && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, h + 24) &&
	     EVP_EncryptUpdate(c, NULL, &n, h, SNAP_HEADER_SIZE) &&
	     EVP_EncryptUpdate(c, out, &n, in, (int)len) &&
	     EVP_EncryptFinal_ex(c, out + n, &n) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SNAP_TAG_SIZE,
				 out + len);
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -ENOMEM;
}

static int open_state(const uint8_t key[SNAP_MAC_SIZE],
		      const uint8_t h[SNAP_HEADER_SIZE], const uint8_t *in,
		      uint32_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n, ok;

	if (!c)
		return -ENOMEM;
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, h + 24) &&
	     EVP_DecryptUpdate(c, NULL, &n, h, SNAP_HEADER_SIZE) &&
	     EVP_DecryptUpdate(c, out, &n, in, (int)len) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SNAP_TAG_SIZE,
				 (void *)(in + len)) &&
	     EVP_DecryptFinal_ex(c, out + n, &n) > 0;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EBADMSG;
}

static int fsync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* The body: header, sealed state, store stream, MAC. */
static int write_body(struct vm *vm, struct snap_out *o,
		      const uint8_t state_key[SNAP_MAC_SIZE],
		      struct gm_export_opts *eo)
{
	uint8_t h[SNAP_HEADER_SIZE], nonce[SNAP_NONCE_SIZE],
		mac[EVP_MAX_MD_SIZE];
	struct sbuf st = { 0 };
	uint8_t *sealed = NULL;
	size_t mac_len;
	int ret;

	state_encode(vm, &st);
	if (st.bad || st.len > SNAP_STATE_MAX) {
		ret = st.bad ? -ENOMEM : -E2BIG;
		goto out;
	}
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		ret = -EIO;
		goto out;
	}
	header_build(h, (uint32_t)st.len, nonce);
	sealed = malloc(st.len + SNAP_TAG_SIZE);
	ret = sealed ?
		      seal_state(state_key, h, st.p, (uint32_t)st.len, sealed) :
		      -ENOMEM;
	if (!ret)
		ret = out_write(o, h, sizeof(h));
	if (!ret)
		ret = out_write(o, sealed, (uint32_t)st.len + SNAP_TAG_SIZE);
	if (!ret) {
		ret = gm_store_export(vm->store, eo, out_write, o);
		if (ret)
			fprintf(stderr, "gmem-vm: snapshot: export: %s\n",
				gm_last_error());
	}
	if (!ret && !EVP_MAC_final(o->mac, mac, &mac_len, sizeof(mac)))
		ret = -ENOMEM;
	if (!ret)
		ret = out_put(o, mac, SNAP_MAC_SIZE);
	if (!ret)
		ret = out_flush(o);
out:
	if (st.p)
		OPENSSL_cleanse(st.p, st.len);
	free(st.p);
	free(sealed);
	return ret;
}

static int snapshot_write(struct vm *vm, const char *path)
{
	uint8_t state_key[SNAP_MAC_SIZE], file_key[SNAP_MAC_SIZE];
	struct gm_export_opts eo = {
		.sz = sizeof(eo),
		.key = ctl.key,
		.key_len = SNAP_KEY_SIZE,
		.generation = vm->snapshots + 1,
	};
	const char *fail = getenv("GMVM_SNAPSHOT_FAIL_AT");
	struct snap_out o = { .fd = -1 };
	uint64_t t0 = now_ns();
	char *tmp = NULL;
	int ret;

	if (fail)
		o.fail_at = strtoull(fail, NULL, 0);
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	ret = derive(ctl.key, "gmem-vm snapshot v1 state", state_key);
	if (!ret)
		ret = derive(ctl.key, "gmem-vm snapshot v1 file", file_key);
	o.mac = ret ? NULL : mac_new(file_key);
	o.buf = malloc(SNAP_IO_BUF);
	if (!ret && (!o.mac || !o.buf))
		ret = -ENOMEM;
	if (!ret) {
		/* a file of our own: no stale one, no link planted there */
		unlink(tmp);
		o.fd = open(tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
		if (o.fd < 0)
			ret = -errno;
	}
	if (!ret)
		ret = write_body(vm, &o, state_key, &eo);
	if (!ret && fsync(o.fd))
		ret = -errno;
	if (o.fd >= 0 && close(o.fd) && !ret)
		ret = -errno;
	/* only a whole, synced file gets the name restore reads */
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (!ret)
		ret = fsync_dir(path);
	if (ret) {
		unlink(tmp);
		fprintf(stderr,
			"gmem-vm: snapshot %s: %s (no snapshot "
			"written)\n",
			path, strerror(-ret));
	} else {
		vm->snapshots++;
		if (!vm->opts.quiet)
			fprintf(stderr,
				"gmem-vm: snapshot %s: %llu bytes, %llu "
				"pages, %u vCPUs, %.1f ms\n",
				path, (unsigned long long)o.bytes,
				(unsigned long long)eo.pages, vm->opts.nr_vcpus,
				(now_ns() - t0) / 1e6);
	}
	OPENSSL_cleanse(state_key, sizeof(state_key));
	OPENSSL_cleanse(file_key, sizeof(file_key));
	EVP_MAC_CTX_free(o.mac);
	free(o.buf);
	free(tmp);
	return ret;
}

/* ---- restoring ---- */

struct snap_in {
	int fd;
	EVP_MAC_CTX *mac; /* over every byte before the file MAC */
	uint8_t *buf;
	size_t pos, len;
	uint64_t bytes;
};

static ssize_t in_raw(struct snap_in *in, void *buf, size_t len)
{
	ssize_t n;

	if (in->pos == in->len) {
		do
			n = read(in->fd, in->buf, SNAP_IO_BUF);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? -errno : 0;
		in->pos = 0;
		in->len = (size_t)n;
	}
	if (len > in->len - in->pos)
		len = in->len - in->pos;
	memcpy(buf, in->buf + in->pos, len);
	in->pos += len;
	in->bytes += len;
	return (ssize_t)len;
}

/* A gm_read_fn: the store stream, under the file MAC. */
static ssize_t in_read(void *opaque, void *buf, size_t len)
{
	struct snap_in *in = opaque;
	ssize_t n = in_raw(in, buf, len);

	if (n > 0 && !EVP_MAC_update(in->mac, buf, (size_t)n))
		return -ENOMEM;
	return n;
}

/* Exactly len bytes (under the MAC if mac), or -EBADMSG: truncated. */
static int in_exact(struct snap_in *in, void *buf, size_t len, bool mac)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = mac ? in_read(in, p, len) : in_raw(in, p, len);

		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* What the state section holds besides ctl.vcpus. */
struct snap_state {
	uint64_t mem_size;
	uint32_t nr_vcpus, backing, pages, init_private, conversion;
	char guest[4097];
	uint64_t layout[9];
	uint8_t digest[LAUNCH_DIGEST_SIZE];
	uint64_t restores;
	uint32_t nr_protected;
	struct range protected[GMVM_MAX_RANGES];
	char what[GMVM_MAX_RANGES][128];
	uint64_t counters[8];
	struct chk_hold_state holds[GMVM_CHK_MAX_HOLDS];
};

static void get_str(struct sbuf *b, char *s, size_t max)
{
	uint32_t n = get_u32(b);

	if (n >= max) {
		b->bad = true;
		return;
	}
	get(b, s, n);
	s[n] = 0;
	if (strlen(s) != n)
		b->bad = true;
}

static bool range_ok(uint64_t start, uint64_t end, uint64_t mem)
{
	return start < end && end <= mem && !(start % GM_PAGE_SIZE) &&
	       !(end % GM_PAGE_SIZE);
}

static void get_vcpu(struct sbuf *b, struct vcpu_state *st)
{
	uint32_t len;

	st->done = get_u32(b);
	get_exact(b, &st->regs, sizeof(st->regs));
	get_exact(b, &st->sregs, sizeof(st->sregs));
	st->fpu_only = get_u32(b);
	len = get_u32(b);
	if (st->fpu_only ? len != sizeof(struct kvm_fpu) :
			   len < sizeof(struct kvm_xsave) || len > (64u << 10))
		b->bad = true;
	if (b->bad)
		return;
	st->xsave = calloc(1, len);
	if (!st->xsave) {
		b->bad = true;
		return;
	}
	st->xsave_len = len;
	get(b, st->xsave, len);
	st->has_xcrs = get_u32(b);
	get_exact(b, &st->xcrs, sizeof(st->xcrs));
	st->has_events = get_u32(b);
	get_exact(b, &st->events, sizeof(st->events));
	st->nr_msrs = get_u32(b);
	if (st->nr_msrs > SNAP_NR_MSRS) {
		b->bad = true;
		return;
	}
	for (uint32_t i = 0; i < st->nr_msrs; i++) {
		st->msrs[i].index = get_u32(b);
		st->msrs[i].data = get_u64(b);
	}
	st->saved = !b->bad;
}

/* Decode and check the state; -EBADMSG with a message if it is not right. */
static int state_decode(struct sbuf *b, struct snap_state *s)
{
	const char *why = NULL;
	uint32_t nr_holds;

	memset(s, 0, sizeof(*s));
	s->mem_size = get_u64(b);
	s->nr_vcpus = get_u32(b);
	s->backing = get_u32(b);
	s->pages = get_u32(b);
	s->init_private = get_u32(b);
	s->conversion = get_u32(b);
	get_str(b, s->guest, sizeof(s->guest));
	for (int i = 0; i < 9; i++)
		s->layout[i] = get_u64(b);
	get(b, s->digest, sizeof(s->digest));
	s->restores = get_u64(b);
	if (!s->mem_size || s->mem_size % (2ull << 20) ||
	    s->mem_size > (256ull << 30))
		why = "memory size";
	else if (s->nr_vcpus < 1 || s->nr_vcpus > GMVM_MAX_VCPUS)
		why = "vCPU count";
	else if (s->backing != GM_BACKING_GUEST_MEMFD &&
		 s->backing != GM_BACKING_MEMFD)
		why = "backing";
	else if (s->init_private > 1 || s->conversion > CONV_DESTRUCTIVE)
		why = "options";
	s->nr_protected = get_u32(b);
	if (!why && s->nr_protected > GMVM_MAX_RANGES)
		why = "hypervisor-visible ranges";
	for (uint32_t i = 0; !why && i < s->nr_protected; i++) {
		s->protected[i].start = get_u64(b);
		s->protected[i].end = get_u64(b);
		get_str(b, s->what[i], sizeof(s->what[i]));
		s->protected[i].what = s->what[i];
		if (!range_ok(s->protected[i].start, s->protected[i].end,
			      s->mem_size))
			why = "hypervisor-visible ranges";
	}
	for (int i = 0; i < 8; i++)
		s->counters[i] = get_u64(b);
	nr_holds = get_u32(b);
	if (!why && nr_holds != GMVM_CHK_MAX_HOLDS)
		why = "device holds";
	for (uint32_t i = 0; !why && i < nr_holds; i++) {
		uint32_t f = get_u32(b);

		s->holds[i].used = f & 1;
		s->holds[i].revocable = f & 2;
		s->holds[i].revoked = f & 4;
		s->holds[i].start = get_u64(b);
		s->holds[i].end = get_u64(b);
		if (f > 7 || (s->holds[i].used &&
			      !range_ok(s->holds[i].start, s->holds[i].end,
					s->mem_size)))
			why = "device holds";
	}
	for (uint32_t i = 0; !why && i < s->nr_vcpus; i++)
		get_vcpu(b, &ctl.vcpus[i]);
	if (!why && (b->bad || b->len != b->cap))
		why = "its layout (another build of gmem-vm?)";
	if (!why)
		return 0;
	fprintf(stderr,
		"gmem-vm: restore: the snapshot's VM state is not "
		"valid: %s\n",
		why);
	return -EBADMSG;
}

/* Options given to restore must be the snapshot's. */
static int check_given(const struct vm_opts *u, const struct snap_state *s)
{
	char want[64], got[64];
	const char *what = NULL;

	if ((u->restore_given & RESTORE_GIVEN_MEM) &&
	    u->mem_size != s->mem_size) {
		what = "--mem";
		snprintf(want, sizeof(want), "%llu MiB",
			 (unsigned long long)(s->mem_size >> 20));
		snprintf(got, sizeof(got), "%llu MiB",
			 (unsigned long long)(u->mem_size >> 20));
	} else if ((u->restore_given & RESTORE_GIVEN_VCPUS) &&
		   u->nr_vcpus != s->nr_vcpus) {
		what = "--vcpus";
		snprintf(want, sizeof(want), "%u", s->nr_vcpus);
		snprintf(got, sizeof(got), "%u", u->nr_vcpus);
	} else if ((u->restore_given & RESTORE_GIVEN_BACKING) &&
		   u->backing != GM_BACKING_AUTO &&
		   u->backing != (enum gm_backing)s->backing) {
		what = "--backing";
		snprintf(want, sizeof(want), "%s",
			 gm_backing_name((enum gm_backing)s->backing));
		snprintf(got, sizeof(got), "%s", gm_backing_name(u->backing));
	} else if ((u->restore_given & RESTORE_GIVEN_PAGES) &&
		   u->pages != (enum gm_pages)s->pages) {
		what = "--page-size";
		snprintf(want, sizeof(want), "%s",
			 gm_pages_name((enum gm_pages)s->pages));
		snprintf(got, sizeof(got), "%s", gm_pages_name(u->pages));
	} else if ((u->restore_given & RESTORE_GIVEN_INIT) &&
		   u->init_private != (bool)s->init_private) {
		what = "--init";
		snprintf(want, sizeof(want), "%s",
			 s->init_private ? "private" : "shared");
		snprintf(got, sizeof(got), "%s",
			 u->init_private ? "private" : "shared");
	} else if ((u->restore_given & RESTORE_GIVEN_CONVERSION) &&
		   u->conversion != (enum conv_mode)s->conversion) {
		what = "--conversion";
		snprintf(want, sizeof(want), "%s",
			 s->conversion ? "destructive" : "inplace");
		snprintf(got, sizeof(got), "%s",
			 u->conversion ? "destructive" : "inplace");
	}
	if (!what)
		return 0;
	fprintf(stderr,
		"gmem-vm: restore: %s %s does not match the snapshot's %s\n",
		what, got, want);
	return -EINVAL;
}

static int apply_vcpu(struct vcpu *vcpu, struct vcpu_state *st)
{
	struct kvm_msrs *msrs;
	int ret = 0;

	/*
	 * KVM_SET_XSAVE reads as many bytes as this host's KVM uses, which
	 * may be more than the snapshotting host's: pad with zeroes (the
	 * components that host did not have start in their init state).
	 */
	if (!st->fpu_only && st->xsave_len < (uint32_t)xsave_size(vcpu->vm)) {
		uint32_t len = (uint32_t)xsave_size(vcpu->vm);
		uint8_t *x = calloc(1, len);

		if (!x)
			return -ENOMEM;
		memcpy(x, st->xsave, st->xsave_len);
		OPENSSL_cleanse(st->xsave, st->xsave_len);
		free(st->xsave);
		st->xsave = x;
		st->xsave_len = len;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &st->sregs) ||
	    ioctl(vcpu->fd, KVM_SET_REGS, &st->regs) ||
	    ioctl(vcpu->fd, st->fpu_only ? KVM_SET_FPU : KVM_SET_XSAVE,
		  st->xsave) ||
	    (st->has_xcrs && ioctl(vcpu->fd, KVM_SET_XCRS, &st->xcrs)))
		return -errno;
	if (st->nr_msrs) {
		msrs = calloc(1,
			      sizeof(*msrs) +
				      SNAP_NR_MSRS * sizeof(msrs->entries[0]));
		if (!msrs)
			return -ENOMEM;
		msrs->nmsrs = st->nr_msrs;
		memcpy(msrs->entries, st->msrs,
		       st->nr_msrs * sizeof(msrs->entries[0]));
		ret = ioctl(vcpu->fd, KVM_SET_MSRS, msrs);
		ret = ret == (int)st->nr_msrs ? 0 : ret < 0 ? -errno : -EINVAL;
		free(msrs);
		if (ret)
			return ret;
	}
	if (st->has_events && ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &st->events))
		return -errno;
	atomic_store(&vcpu->done, st->done);
	return 0;
}

static const char *restore_error(int ret)
{
	if (ret == -EBADMSG)
		return "not a valid snapshot for this key (changed, "
		       "truncated, or another key)";
	return strerror(-ret);
}

/* Header and VM state: the snapshot's shape, checked and decrypted. */
static int read_state(struct snap_in *in, const uint8_t state_key[32],
		      struct snap_state *s)
{
	uint8_t h[SNAP_HEADER_SIZE], zero[12] = { 0 };
	struct sbuf b = { 0 };
	uint32_t version, hsize, len, flags;
	uint8_t *sealed = NULL;
	int ret;

	ret = in_exact(in, h, sizeof(h), true);
	if (ret) {
		fprintf(stderr, "gmem-vm: restore: %s\n",
			ret == -EBADMSG ? "the file is shorter than a header" :
					  strerror(-ret));
		return ret;
	}
	memcpy(&version, h + 8, 4);
	memcpy(&hsize, h + 12, 4);
	memcpy(&len, h + 16, 4);
	memcpy(&flags, h + 20, 4);
	if (memcmp(h, SNAP_MAGIC, 8)) {
		fprintf(stderr, "gmem-vm: restore: not a gmem-vm snapshot "
				"(bad magic)\n");
		return -EBADMSG;
	}
	if (version != SNAP_VERSION) {
		fprintf(stderr,
			"gmem-vm: restore: snapshot format version %u; this "
			"gmem-vm reads version %u\n",
			version, SNAP_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (hsize != SNAP_HEADER_SIZE || flags || !len ||
	    len > SNAP_STATE_MAX || memcmp(h + 36, zero, sizeof(zero))) {
		fprintf(stderr,
			"gmem-vm: restore: bad header (size %u, "
			"flags 0x%x, state %u bytes)\n",
			hsize, flags, len);
		return -EBADMSG;
	}
	sealed = malloc((size_t)len + SNAP_TAG_SIZE);
	b.p = malloc(len);
	b.cap = len;
	if (!sealed || !b.p) {
		ret = -ENOMEM;
		goto out;
	}
	ret = in_exact(in, sealed, (size_t)len + SNAP_TAG_SIZE, true);
	if (ret == -EBADMSG) {
		fprintf(stderr, "gmem-vm: restore: truncated in the VM "
				"state\n");
		goto out;
	}
	if (!ret)
		ret = open_state(state_key, h, sealed, len, b.p);
	if (ret == -EBADMSG) {
		fprintf(stderr, "gmem-vm: restore: the VM state does not "
				"authenticate: a wrong key, or the header or "
				"state was changed\n");
		goto out;
	}
	if (!ret)
		ret = state_decode(&b, s);
out:
	if (b.p)
		OPENSSL_cleanse(b.p, len);
	free(b.p);
	free(sealed);
	return ret;
}

/* The store stream, then the file MAC and the end of the file. */
static int read_memory(struct vm *vm, struct snap_in *in)
{
	struct gm_import_opts io = {
		.sz = sizeof(io),
		.key = ctl.key,
		.key_len = SNAP_KEY_SIZE,
	};
	uint8_t mac[EVP_MAX_MD_SIZE], want[SNAP_MAC_SIZE], extra;
	size_t mac_len;
	int ret;

	ret = gm_store_import(vm->store, &io, in_read, in);
	if (ret) {
		fprintf(stderr, "gmem-vm: restore: memory: %s\n",
			gm_last_error());
		return ret;
	}
	if (!EVP_MAC_final(in->mac, mac, &mac_len, sizeof(mac)))
		return -ENOMEM;
	ret = in_exact(in, want, sizeof(want), false);
	if (ret == -EBADMSG) {
		fprintf(stderr, "gmem-vm: restore: truncated before the "
				"file's MAC\n");
		return ret;
	}
	if (!ret && CRYPTO_memcmp(mac, want, SNAP_MAC_SIZE)) {
		fprintf(stderr, "gmem-vm: restore: the file's MAC does not "
				"match: the file was changed\n");
		return -EBADMSG;
	}
	if (!ret && in_raw(in, &extra, 1) != 0) {
		fprintf(stderr, "gmem-vm: restore: bytes after the file's "
				"MAC\n");
		return -EBADMSG;
	}
	return ret;
}

/* Bring the VM to the snapshot's state (memory is in place). */
static int apply(struct vm *vm, struct snap_state *s)
{
	int ret;

	memcpy(vm->launch_digest, s->digest, LAUNCH_DIGEST_SIZE);
	vm->image_start = s->layout[0];
	vm->image_end = s->layout[1];
	vm->entry = s->layout[2];
	vm->pt_start = s->layout[3];
	vm->pt_end = s->layout[4];
	vm->stacks_start = s->layout[5];
	vm->stacks_end = s->layout[6];
	vm->heap_start = s->layout[7];
	vm->heap_end = s->layout[8];
	vm->restores = s->restores + 1;
	for (uint32_t i = 0; i < s->nr_protected; i++) {
		ret = vm_add_protected(vm, s->protected[i].start,
				       s->protected[i].end,
				       s->protected[i].what);
		if (ret) {
			fprintf(stderr,
				"gmem-vm: restore: hypervisor-visible range "
				"[0x%llx, 0x%llx): %s\n",
				(unsigned long long)s->protected[i].start,
				(unsigned long long)s->protected[i].end,
				gm_last_error());
			return ret;
		}
	}
	atomic_store(&vm->console_bytes, s->counters[0]);
	atomic_store(&vm->memctl_requests, s->counters[1]);
	atomic_store(&vm->memctl_ok, s->counters[2]);
	atomic_store(&vm->convert_requests, s->counters[3]);
	atomic_store(&vm->convert_ok, s->counters[4]);
	atomic_store(&vm->device_requests, s->counters[5]);
	atomic_store(&vm->device_pins, s->counters[6]);
	atomic_store(&vm->device_revoked, s->counters[7]);
	ret = chkdev_restore(vm, s->holds);
	if (ret) {
		fprintf(stderr, "gmem-vm: restore: device holds: %s\n",
			gm_last_error());
		return ret;
	}
	for (unsigned int i = 0; i < vm->opts.nr_vcpus; i++) {
		ret = apply_vcpu(&vm->vcpus[i], &ctl.vcpus[i]);
		if (ret) {
			fprintf(stderr, "gmem-vm: restore: vCPU %u state: %s\n",
				i, strerror(-ret));
			return ret;
		}
	}
	for (unsigned int i = 0; i < GMVM_MAX_VCPUS; i++)
		free_state(&ctl.vcpus[i]);
	vm->restored = true;
	return 0;
}

int snapshot_restore(struct vm *vm, const struct vm_opts *user,
		     const char *path)
{
	uint8_t state_key[SNAP_MAC_SIZE], file_key[SNAP_MAC_SIZE];
	static struct snap_state s;
	struct snap_in in = { .fd = -1 };
	struct vm_opts opts = *user;
	uint64_t t0 = now_ns();
	int ret;

	if (!key_page())
		return -ENOKEY;
	ret = snapshot_key_load(user->key_file, ctl.key);
	if (ret)
		return -ENOKEY;
	ret = derive(ctl.key, "gmem-vm snapshot v1 state", state_key);
	if (!ret)
		ret = derive(ctl.key, "gmem-vm snapshot v1 file", file_key);
	in.mac = ret ? NULL : mac_new(file_key);
	in.buf = malloc(SNAP_IO_BUF);
	if (!ret && (!in.mac || !in.buf))
		ret = -ENOMEM;
	if (!ret) {
		in.fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in.fd < 0) {
			ret = -errno;
			fprintf(stderr, "gmem-vm: restore: %s: %s\n", path,
				strerror(errno));
		}
	}
	if (!ret)
		ret = read_state(&in, state_key, &s);
	if (!ret)
		ret = check_given(user, &s);
	if (!ret) {
		opts.mem_size = s.mem_size;
		opts.nr_vcpus = s.nr_vcpus;
		opts.backing = (enum gm_backing)s.backing;
		opts.pages = (enum gm_pages)s.pages;
		opts.init_private = s.init_private;
		opts.conversion = (enum conv_mode)s.conversion;
		opts.guest = s.guest;
		opts.restoring = true;
		ret = vm_create(vm, &opts);
		if (ret == -EOPNOTSUPP)
			goto out; /* no guest_memfd here: a skip */
	}
	if (!ret)
		ret = read_memory(vm, &in);
	if (!ret)
		ret = apply(vm, &s);
	if (!ret && !opts.quiet)
		fprintf(stderr,
			"gmem-vm: restored %s: %s, %llu MiB on %s, %u vCPU%s, "
			"restore #%llu, %.1f ms\n",
			path, s.guest, (unsigned long long)(s.mem_size >> 20),
			gm_backing_name(vm->backing), s.nr_vcpus,
			s.nr_vcpus > 1 ? "s" : "",
			(unsigned long long)vm->restores,
			(now_ns() - t0) / 1e6);
	if (ret && ret != -ENOKEY)
		fprintf(stderr,
			"gmem-vm: restore %s failed: %s; nothing "
			"ran\n",
			path, restore_error(ret));
	if (ret == -EOPNOTSUPP)
		ret = -EIO; /* only a missing guest_memfd is a skip */
out:
	if (in.fd >= 0)
		close(in.fd);
	EVP_MAC_CTX_free(in.mac);
	free(in.buf);
	OPENSSL_cleanse(state_key, sizeof(state_key));
	OPENSSL_cleanse(file_key, sizeof(file_key));
	/* a snapshot of the restored VM needs the key again */
	ctl.armed = !ret && opts.snapshot;
	if (!ctl.armed)
		key_wipe();
	return ret;
}
