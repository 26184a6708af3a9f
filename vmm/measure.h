/* SPDX-License-Identifier: MIT */
/*
 * Measured launch: the guest image is populated into the store through the
 * run-time conversion path, and a SHA-256 launch digest is taken over what
 * was loaded, the attribute map, the hypervisor-visible ranges and every
 * vCPU's initial registers. The layout hashed is in docs/abi.md
 * ("Launch digest"). Depends only on libgmem and libcrypto, so that the
 * benchmark can drive the same code.
 */
#ifndef GMVM_MEASURE_H
#define GMVM_MEASURE_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include <gmem/gmem.h>

#define LAUNCH_DIGEST_SIZE 32
#define LAUNCH_DIGEST_VERSION 1

/* A page-aligned run of the image: contents and the state it launches in. */
struct launch_region {
	uint64_t gpa; /* page-aligned */
	uint64_t len; /* a multiple of the page size, > 0 */
	enum gm_attr attr;
	const void *data; /* len bytes; the caller's, kept until populated */
};

/* What gmem-vm sets in a vCPU before its first instruction. */
struct launch_vcpu {
	struct kvm_regs regs;
	struct kvm_segment cs, ds, es, fs, gs, ss, tr;
	struct kvm_dtable gdt, idt;
	uint64_t cr0, cr3, cr4, efer;
};

/* A gpa range [start, end), for the hypervisor-visible list. */
struct launch_range {
	uint64_t start, end;
};

struct launch_measure;

/* Start a digest (hashes the version/domain tag). */
int launch_measure_begin(struct launch_measure **m);
/*
 * Populate the regions into the store, in gpa order (sorted here; they must
 * not overlap), and hash each page as (gpa, length, attribute, contents):
 * each region is made shared, written with gm_write, then converted in
 * place to its state with gm_convert (the path the guest's CONVERT takes).
 */
int launch_populate(struct launch_measure *m, struct gm_store *store,
		    struct launch_region *regions, unsigned int nr);
/* Hash the store's attribute map, extent by extent. */
int launch_measure_attr_map(struct launch_measure *m, struct gm_store *store);
/* Hash the hypervisor-visible ranges (sorted here). */
int launch_measure_ranges(struct launch_measure *m, struct launch_range *r,
			  unsigned int nr);
/* Hash the vCPUs' initial state, vCPU 0 first. */
int launch_measure_vcpus(struct launch_measure *m,
			 const struct launch_vcpu *vcpus, unsigned int nr);
/* Finish: the digest; frees m whatever happens. */
int launch_measure_end(struct launch_measure *m,
		       uint8_t digest[LAUNCH_DIGEST_SIZE]);
/* Free without a digest (m may be NULL). */
void launch_measure_abort(struct launch_measure *m);

/* Lower-case hex of the digest into out (2 * size + 1 bytes). */
void launch_digest_hex(const uint8_t digest[LAUNCH_DIGEST_SIZE],
		       char out[2 * LAUNCH_DIGEST_SIZE + 1]);

#endif /* GMVM_MEASURE_H */
