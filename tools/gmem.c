// SPDX-License-Identifier: MIT
/*
 * gmem: the command-line tool of libgmem.
 *
 *   gmem caps [--json]     what this machine offers (struct gm_caps)
 *   gmem walkthrough ...   a narrated tour of the store API
 *
 * Exit status: 0 success, 1 failure, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "kvm-uapi.h"

enum { EXIT_USAGE = 2 };

#define WALK_DEFAULT_SIZE (64ULL << 20)
#define WALK_MIN_SIZE (16 * GM_PAGE_SIZE)

static const char usage_text[] =
	"Usage: gmem [--help] COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  caps [--json]           show what this machine offers for guest-first\n"
	"                          memory (KVM guest_memfd, huge pages, ...)\n"
	"  walkthrough [--backing auto|guest_memfd|memfd] [--size SIZE]\n"
	"                          a narrated tour of the store API: private\n"
	"                          and shared pages, conversions, pins, stats\n"
	"                          (SIZE: bytes, or with K, M, G or T; default "
	"64M)\n"
	"  help [COMMAND]          show this help\n"
	"\n"
	"Options:\n"
	"  -h, --help              show this help (also after a command)\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 bad usage.\n";

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gmem%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'gmem --help' for more information.\n");
	return EXIT_USAGE;
}

/*
 * After getopt_long returned '?' or ':' (with opterr = 0): name the
 * offending option.
 */
static int bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		return usage_error(cmd, "option '%s' needs an argument", arg);
	if (optopt && optopt != '?' && strncmp(arg, "--", 2))
		return usage_error(cmd, "unknown option '-%c'", optopt);
	if (optopt && !strncmp(arg, "--", 2) && strchr(arg, '='))
		return usage_error(cmd, "option '%.*s' takes no argument",
				   (int)(strchr(arg, '=') - arg), arg);
	return usage_error(cmd, "unknown or malformed option '%s'", arg);
}

/* "4096", "64K", "64M", "1G", "1T" (also "64MiB", "64MB"): binary units. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (shift) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

/* "64 MiB", "4 KiB", "12288 bytes"; "31.94 MiB" where not exact. */
static const char *fmt_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB",
					     "TiB" };
	unsigned int u = 0;
	uint64_t v = n;

	while (u < 4 && v && !(v & 1023)) {
		v >>= 10;
		u++;
	}
	if (v < 1024 || u == 4) {
		snprintf(buf, len, "%" PRIu64 " %s", v, units[u]);
		return buf;
	}
	for (u = 0; u < 4 && n >= (1024ULL << (10 * u)); u++)
		;
	snprintf(buf, len, "%.2f %s", (double)n / (double)(1ULL << (10 * u)),
		 units[u]);
	return buf;
}

/* ---- caps ---- */

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

/* Names of the bits of a mask, "-" if none; unknown bits as bitN. */
static const char *bit_names(uint64_t mask, const char *const *names,
			     unsigned int nr_names, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < 64 && pos < len; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		if (i < nr_names && names[i])
			pos += snprintf(buf + pos, len - pos, "%s%s",
					pos ? " " : "", names[i]);
		else
			pos += snprintf(buf + pos, len - pos, "%sbit%u",
					pos ? " " : "", i);
	}
	if (!pos)
		snprintf(buf, len, "-");
	return buf;
}

static const char *const gmem_flag_names[] = { "MMAP", "INIT_SHARED",
					       "NO_DIRECT_MAP" };
static const char *const vm_type_names[] = { "DEFAULT", "SW_PROTECTED", "SEV",
					     "SEV_ES",	"SNP",		"TDX" };
static const char *const mem_attr_names[] = { NULL, NULL, NULL, "PRIVATE" };

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What GM_BACKING_AUTO picks on this machine: the library's own answer. */
static const char *auto_backing(void)
{
	enum gm_backing b;

	if (gm_backing_resolve(GM_BACKING_AUTO, -1, &b))
		return "none";
	return gm_backing_name(b);
}

static void print_caps_table(const struct gm_caps *c)
{
	char buf[256], sz[32];

	printf("%-22s %s", "kvm", yes_no(c->kvm));
	if (c->kvm)
		printf(" (/dev/kvm, API version %d)", c->kvm_api_version);
	printf("\n");
	printf("%-22s %s\n", "guest_memfd", yes_no(c->guest_memfd));
	printf("%-22s 0x%" PRIx64 " (%s)\n", "guest_memfd flags",
	       c->guest_memfd_flags,
	       bit_names(c->guest_memfd_flags, gmem_flag_names,
			 ARRAY_SIZE(gmem_flag_names), buf, sizeof(buf)));
	printf("%-22s %s\n", "guest_memfd huge",
	       c->guest_memfd_huge_pages ?
		       "yes" :
		       "no (no guest_memfd flag for huge pages; 4 KiB only)");
	printf("%-22s %s\n", "user memory2", yes_no(c->user_memory2));
	printf("%-22s %s\n", "memory fault info", yes_no(c->memory_fault_info));
	printf("%-22s 0x%" PRIx64 " (%s)\n", "memory attributes",
	       c->memory_attributes,
	       bit_names(c->memory_attributes, mem_attr_names,
			 ARRAY_SIZE(mem_attr_names), buf, sizeof(buf)));
	printf("%-22s 0x%" PRIx64 " (%s)\n", "vm types", c->vm_types,
	       bit_names(c->vm_types, vm_type_names, ARRAY_SIZE(vm_type_names),
			 buf, sizeof(buf)));
	printf("%-22s %s\n", "pre-fault memory", yes_no(c->pre_fault_memory));
	if (!c->nr_hugetlb)
		printf("%-22s none\n", "hugetlb");
	for (unsigned int i = 0; i < c->nr_hugetlb; i++)
		printf("%-22s %s: %" PRIu64 " reserved, %" PRIu64 " free\n",
		       i ? "" : "hugetlb",
		       fmt_size(c->hugetlb[i].size, sz, sizeof(sz)),
		       c->hugetlb[i].nr, c->hugetlb[i].free);
	printf("%-22s %s\n", "thp enabled",
	       c->thp_enabled[0] ? c->thp_enabled : "unknown");
	printf("%-22s %s\n", "thp shmem_enabled",
	       c->thp_shmem[0] ? c->thp_shmem : "unknown");
	printf("%-22s %s\n", "userfaultfd", yes_no(c->userfaultfd));
	if (c->max_map_count >= 0)
		printf("%-22s %ld\n", "vm.max_map_count", c->max_map_count);
	else
		printf("%-22s unknown\n", "vm.max_map_count");
	printf("%-22s %s\n", "auto backing", auto_backing());
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* One key per field of struct gm_caps, same names; keep them stable. */
static void print_caps_json(const struct gm_caps *c)
{
	const char *tf[] = { "false", "true" };

	printf("{\n");
	printf("  \"kvm\": %s,\n", tf[c->kvm]);
	printf("  \"kvm_api_version\": %d,\n", c->kvm_api_version);
	printf("  \"guest_memfd\": %s,\n", tf[c->guest_memfd]);
	printf("  \"guest_memfd_flags\": %" PRIu64 ",\n", c->guest_memfd_flags);
	printf("  \"user_memory2\": %s,\n", tf[c->user_memory2]);
	printf("  \"memory_fault_info\": %s,\n", tf[c->memory_fault_info]);
	printf("  \"memory_attributes\": %" PRIu64 ",\n", c->memory_attributes);
	printf("  \"vm_types\": %" PRIu64 ",\n", c->vm_types);
	printf("  \"pre_fault_memory\": %s,\n", tf[c->pre_fault_memory]);
	printf("  \"nr_hugetlb\": %u,\n", c->nr_hugetlb);
	printf("  \"hugetlb\": [");
	for (unsigned int i = 0; i < c->nr_hugetlb; i++)
		printf("%s\n    {\"size\": %" PRIu64 ", \"nr\": %" PRIu64
		       ", \"free\": %" PRIu64 "}",
		       i ? "," : "", c->hugetlb[i].size, c->hugetlb[i].nr,
		       c->hugetlb[i].free);
	printf("%s],\n", c->nr_hugetlb ? "\n  " : "");
	printf("  \"thp_enabled\": ");
	json_string(c->thp_enabled);
	printf(",\n  \"thp_shmem\": ");
	json_string(c->thp_shmem);
	printf(",\n");
	printf("  \"userfaultfd\": %s,\n", tf[c->userfaultfd]);
	printf("  \"max_map_count\": %ld,\n", c->max_map_count);
	printf("  \"guest_memfd_huge_pages\": %s\n",
	       tf[c->guest_memfd_huge_pages]);
	printf("}\n");
}

static int cmd_caps(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gm_caps caps = { .sz = sizeof(caps) };
	bool json = false;
	int c, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return bad_option("caps", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("caps", "unexpected argument '%s'",
				   argv[optind]);

	ret = gm_caps_probe(&caps);
	if (ret) {
		fprintf(stderr, "gmem caps: %s\n", gm_last_error());
		return 1;
	}
	if (json)
		print_caps_json(&caps);
	else
		print_caps_table(&caps);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "gmem caps: write error: %s\n",
			strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- walkthrough ---- */

struct walk {
	struct gm_store *store;
	uint64_t size;
};

static const char *err_name(int err)
{
	switch (-err) {
	case EFAULT:
		return "-EFAULT";
	case EBUSY:
		return "-EBUSY";
	case EINVAL:
		return "-EINVAL";
	case ERANGE:
		return "-ERANGE";
	case ENOMEM:
		return "-ENOMEM";
	case EOPNOTSUPP:
		return "-EOPNOTSUPP";
	case ENOSPC:
		return "-ENOSPC";
	case EDEADLK:
		return "-EDEADLK";
	}
	return "error";
}

/* A step went other than the walkthrough says: explain and give up. */
static int unexpected(const char *what, int ret)
{
	if (ret < 0)
		fprintf(stderr, "gmem walkthrough: %s failed: %s (%d): %s\n",
			what, err_name(ret), ret, gm_last_error());
	else
		fprintf(stderr, "gmem walkthrough: %s: unexpected result %d\n",
			what, ret);
	return 1;
}

static void step(int n, const char *title)
{
	printf("\n%d. %s\n", n, title);
}

static int convert(struct walk *w, uint64_t off, uint64_t len, enum gm_attr to,
		   unsigned int flags)
{
	int ret = gm_convert(w->store, off, len, to, flags);

	if (ret)
		return unexpected("gm_convert", ret);
	printf("   gm_convert([0x%" PRIx64 ", 0x%" PRIx64 ") -> %s%s) = 0; "
	       "the store now has %" PRIu64 " extent(s)\n",
	       off, off + len, to == GM_ATTR_SHARED ? "shared" : "private",
	       flags & GM_CONVERT_DESTRUCTIVE ? ", destructive" : ", in place",
	       gm_extent_count(w->store));
	return 0;
}

/* gm_read of a private range: must be refused with -EFAULT. */
static int expect_refused(struct walk *w, uint64_t off, size_t len)
{
	char buf[64];
	int ret = gm_read(w->store, off, buf, len);

	if (ret != -EFAULT)
		return unexpected(
			"gm_read of a private page (expected -EFAULT)", ret);
	printf("   gm_read(0x%" PRIx64 ", %zu) refused: -EFAULT: %s\n", off,
	       len, gm_last_error());
	return 0;
}

static int list_extents(struct walk *w)
{
	uint64_t off = 0, n = 0, total = gm_extent_count(w->store);
	char sz[32];

	printf("   %" PRIu64 " extent(s):\n", total);
	while (off < w->size) {
		struct gm_extent ext = { .sz = sizeof(ext) };
		int ret = gm_extent_at(w->store, off, &ext);

		if (ret)
			return unexpected("gm_extent_at", ret);
		if (n++ < 8)
			printf("     [0x%09" PRIx64 ", 0x%09" PRIx64
			       ") %-7s %s\n",
			       ext.off, ext.off + ext.len,
			       ext.attr == GM_ATTR_SHARED ? "shared" :
							    "private",
			       fmt_size(ext.len, sz, sizeof(sz)));
		off = ext.off + ext.len;
	}
	if (n > 8)
		printf("     ... and %" PRIu64 " more\n", n - 8);
	return 0;
}

static void print_stats(const struct gm_stats *s)
{
	printf("   requests: %" PRIu64 " to private, %" PRIu64
	       " to shared (%" PRIu64 " destructive), %" PRIu64
	       " no-op, %" PRIu64 " failed (%" PRIu64 " busy, %" PRIu64
	       " vetoed)\n",
	       s->to_private_requests, s->to_shared_requests,
	       s->destructive_requests, s->noop_requests, s->failed_requests,
	       s->busy_refusals, s->vetoes);
	printf("   pages changed: %" PRIu64 " to private, %" PRIu64
	       " to shared, %" PRIu64 " destructively; %" PRIu64
	       " us converting, %" PRIu64 " mprotect calls\n",
	       s->to_private_pages, s->to_shared_pages, s->destructive_pages,
	       s->convert_ns / 1000, s->view_mprotects);
	printf("   now: %" PRIu64 " private + %" PRIu64
	       " shared pages, %" PRIu64 " extents (%" PRIu64
	       " in the host view), %" PRIu64
	       " bytes of tracking; pins %" PRIu64 " taken, %" PRIu64
	       " active; %" PRIu64 " access fallbacks\n",
	       s->private_pages, s->shared_pages, s->extents, s->view_extents,
	       s->tracking_bytes, s->pins, s->pins_active, s->access_fallbacks);
}

static int walk_steps(struct walk *w)
{
	static const char msg[] = "hello from the host";
	/* A range in the middle of the store, and a second one further on. */
	uint64_t len = w->size / 4 < (64 << 10) ? w->size / 4 : (64 << 10);
	uint64_t off = (w->size / 4) & ~(GM_PAGE_SIZE - 1);
	uint64_t off2 = (w->size / 4 * 3) & ~(GM_PAGE_SIZE - 1);
	char buf[sizeof(msg)];
	struct gm_stats stats;
	struct gm_pin *pin;
	int ret;

	len &= ~(GM_PAGE_SIZE - 1);

	step(2,
	     "A new store is private: the guest's, out of the host's reach.");
	ret = gm_range_is(w->store, 0, w->size, GM_ATTR_PRIVATE);
	if (ret != 1)
		return unexpected("gm_range_is(whole store, private)", ret);
	printf("   gm_range_is(whole store, private) = 1; the host view maps it "
	       "PROT_NONE.\n");
	if (expect_refused(w, off, sizeof(msg)))
		return 1;

	step(3, "Share a range with the host, in place, and use it.");
	if (convert(w, off, len, GM_ATTR_SHARED, 0))
		return 1;
	ret = gm_write(w->store, off, msg, sizeof(msg));
	if (ret)
		return unexpected("gm_write", ret);
	memset(buf, 0, sizeof(buf));
	ret = gm_read(w->store, off, buf, sizeof(buf));
	if (ret || memcmp(buf, msg, sizeof(msg)))
		return unexpected("gm_read back", ret);
	printf("   gm_write then gm_read at 0x%" PRIx64 ": \"%s\"\n", off, buf);

	step(4, "Make it private again, in place: the host loses access.");
	if (convert(w, off, len, GM_ATTR_PRIVATE, 0))
		return 1;
	if (expect_refused(w, off, sizeof(msg)))
		return 1;

	step(5, "Share it again, in place: the bytes were kept.");
	if (convert(w, off, len, GM_ATTR_SHARED, 0))
		return 1;
	memset(buf, 0, sizeof(buf));
	ret = gm_read(w->store, off, buf, sizeof(buf));
	if (ret || memcmp(buf, msg, sizeof(msg)))
		return unexpected("gm_read after an in-place round trip", ret);
	printf("   gm_read(0x%" PRIx64 ") = \"%s\" (kept across private and "
	       "back)\n",
	       off, buf);

	step(6, "A destructive round trip discards the contents.");
	ret = gm_convert(w->store, off, len, GM_ATTR_PRIVATE,
			 GM_CONVERT_DESTRUCTIVE);
	if (!ret)
		ret = gm_convert(w->store, off, len, GM_ATTR_SHARED,
				 GM_CONVERT_DESTRUCTIVE);
	if (ret)
		return unexpected("gm_convert(GM_CONVERT_DESTRUCTIVE)", ret);
	printf("   gm_convert([0x%" PRIx64 ", 0x%" PRIx64 ") -> private -> "
	       "shared, GM_CONVERT_DESTRUCTIVE) = 0, 0\n",
	       off, off + len);
	memset(buf, 0xff, sizeof(buf));
	ret = gm_read(w->store, off, buf, sizeof(buf));
	if (ret)
		return unexpected("gm_read after a destructive round trip",
				  ret);
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return unexpected("destructive round trip left data",
					  buf[i]);
	printf("   gm_read(0x%" PRIx64 ", %zu): all zeroes, no old byte "
	       "left\n",
	       off, sizeof(buf));

	step(7, "A pinned page (a device doing I/O) cannot become private.");
	ret = gm_pin(w->store, off, GM_PAGE_SIZE, 0, &pin);
	if (ret)
		return unexpected("gm_pin", ret);
	ret = gm_convert(w->store, off, len, GM_ATTR_PRIVATE, 0);
	if (ret != -EBUSY) {
		gm_unpin(pin);
		return unexpected("gm_convert of a pinned page (expected "
				  "-EBUSY)",
				  ret);
	}
	printf("   gm_pin(0x%" PRIx64 ", 4096) then gm_convert -> private: "
	       "-EBUSY: %s\n",
	       off, gm_last_error());
	gm_unpin(pin);
	ret = gm_range_is(w->store, off, len, GM_ATTR_SHARED);
	if (ret != 1)
		return unexpected("gm_range_is after a refused conversion",
				  ret);
	printf("   the range is still all shared (all or nothing); after "
	       "gm_unpin it can convert\n");

	step(8, "Extents: maximal runs of equal state.");
	if (convert(w, off2, len, GM_ATTR_SHARED, 0))
		return 1;
	if (list_extents(w))
		return 1;

	step(9, "Statistics (gm_store_stats).");
	ret = gm_store_stats(w->store, &stats);
	if (ret)
		return unexpected("gm_store_stats", ret);
	print_stats(&stats);
	return 0;
}

static int cmd_walkthrough(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backing", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gm_store_opts so = {
		.sz = sizeof(so),
		.size = WALK_DEFAULT_SIZE,
		.backing = GM_BACKING_AUTO,
		.vm_fd = -1, /* the store makes a VM of its own */
	};
	struct walk w = { 0 };
	char sz[32];
	int c, ret, destroyed;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+:b:s:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (gm_backing_parse(optarg, &so.backing))
				return usage_error("walkthrough", "%s",
						   gm_last_error());
			break;
		case 's':
			ret = parse_size(optarg, &so.size);
			if (ret)
				return usage_error(
					"walkthrough",
					"bad size '%s' (bytes, or a number "
					"with K, M, G or T)",
					optarg);
			if (so.size % GM_PAGE_SIZE || so.size < WALK_MIN_SIZE)
				return usage_error(
					"walkthrough",
					"size '%s' must be a multiple of 4096 "
					"and at least 64K",
					optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return bad_option("walkthrough", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("walkthrough", "unexpected argument '%s'",
				   argv[optind]);

	printf("libgmem walkthrough: every page of a store is either shared "
	       "with the host or private to the guest.\n");
	step(1, "Create a store.");
	ret = gm_store_create(&so, &w.store);
	if (ret) {
		fprintf(stderr,
			"gmem walkthrough: gm_store_create (backing %s, %s) "
			"failed: %s\n",
			gm_backing_name(so.backing),
			fmt_size(so.size, sz, sizeof(sz)), gm_last_error());
		return 1;
	}
	w.size = gm_store_size(w.store);
	printf("   gm_store_create: %s, backing %s (asked: %s), every page "
	       "private\n",
	       fmt_size(w.size, sz, sizeof(sz)),
	       gm_backing_name(gm_store_backing(w.store)),
	       gm_backing_name(so.backing));

	ret = walk_steps(&w);
	/* Every step released what it held: destroy cannot refuse. */
	destroyed = gm_store_destroy(w.store);
	if (ret)
		return ret;
	if (destroyed)
		return unexpected("gm_store_destroy", destroyed);
	printf("\n10. gm_store_destroy: done.\n");
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "gmem walkthrough: write error: %s\n",
			strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- main ---- */

static int cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return usage_error("help", "unexpected argument '%s'", argv[2]);
	if (argc == 2 && strcmp(argv[1], "caps") &&
	    strcmp(argv[1], "walkthrough") && strcmp(argv[1], "help"))
		return usage_error("help", "unknown command '%s'", argv[1]);
	fputs(usage_text, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return bad_option(NULL, c, argv);
		}
	}
	if (optind >= argc)
		return usage_error(NULL, "no command given");
	argc -= optind;
	argv += optind;

	if (!strcmp(argv[0], "caps"))
		return cmd_caps(argc, argv);
	if (!strcmp(argv[0], "walkthrough"))
		return cmd_walkthrough(argc, argv);
	if (!strcmp(argv[0], "help"))
		return cmd_help(argc, argv);
	return usage_error(NULL, "unknown command '%s'", argv[0]);
}
