// SPDX-License-Identifier: MIT
/*
 * The closing report: memory state, conversions the guest asked for (the
 * library's counters since the guest started), refused requests by reason,
 * device pins, and what the VMM could and could not read. Text or JSON.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

struct summary {
	struct gm_stats now, d; /* d: since the guest started */
	uint64_t hv_pages;
	uint64_t refused_total;
	uint64_t run_ns;
	int exit_code;
	bool crashed;
	int64_t kvm_pages_2m; /* KVM's 2 MiB mappings (debugfs), -1 unknown */
};

#define KVM_DEBUGFS "/sys/kernel/debug/kvm"

static int64_t read_pages_2m(const char *dir)
{
	char path[512];
	uint64_t v;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), KVM_DEBUGFS "/%s/pages_2m", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fscanf(f, "%" SCNu64, &v);
	fclose(f);
	return n == 1 && v <= INT64_MAX ? (int64_t)v : -1;
}

/*
 * KVM's count of its 2 MiB mappings of this VM: the per-VM debugfs stat
 * pages_2m (x86), in "<pid>-<vm fd>", or the one directory of this process
 * where KVM named it otherwise. -1 where debugfs is not mounted or not
 * readable, or the kernel has no such stat.
 */
static int64_t kvm_pages_2m(const struct vm *vm)
{
	char name[64], prefix[32], only[256] = "";
	int64_t v;
	int found = 0;
	struct dirent *de;
	DIR *d;

	snprintf(name, sizeof(name), "%d-%d", (int)getpid(), vm->vm_fd);
	v = read_pages_2m(name);
	if (v >= 0)
		return v;
	d = opendir(KVM_DEBUGFS);
	if (!d)
		return -1;
	snprintf(prefix, sizeof(prefix), "%d-", (int)getpid());
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) &&
		    found++ == 0)
			snprintf(only, sizeof(only), "%s", de->d_name);
	closedir(d);
	return found == 1 ? read_pages_2m(only) : -1;
}

static void summarize(struct vm *vm, struct summary *s)
{
	memset(s, 0, sizeof(*s));
	s->now.sz = sizeof(s->now);
	gm_store_stats(vm->store, &s->now);
	s->d = s->now;
#define DELTA(f) s->d.f = s->now.f - vm->base.f
	DELTA(to_private_requests);
	DELTA(to_shared_requests);
	DELTA(destructive_requests);
	DELTA(to_private_pages);
	DELTA(to_shared_pages);
	DELTA(destructive_pages);
	DELTA(noop_requests);
	DELTA(failed_requests);
	DELTA(busy_refusals);
	DELTA(vetoes);
	DELTA(convert_ns);
	DELTA(view_mprotects);
	DELTA(pins);
	DELTA(revokes);
	DELTA(access_fallbacks);
#undef DELTA
	for (unsigned int i = 0; i < vm->nr_protected; i++)
		s->hv_pages += (vm->protected[i].end - vm->protected[i].start) /
			       GM_PAGE_SIZE;
	for (int i = 0; i < REFUSE_NR; i++)
		s->refused_total += atomic_load(&vm->refused[i]);
	s->run_ns = vm->end_ns - vm->start_ns;
	s->exit_code = atomic_load(&vm->exit_code);
	s->crashed = atomic_load(&vm->crashed);
	s->kvm_pages_2m = kvm_pages_2m(vm);
}

static const char *conv_name(struct vm *vm)
{
	return vm->opts.conversion == CONV_DESTRUCTIVE ? "destructive" :
							 "inplace";
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

void report_print(struct vm *vm, FILE *out)
{
	char hex[2 * LAUNCH_DIGEST_SIZE + 1];
	struct summary s;

	summarize(vm, &s);
	fprintf(out, "\n== gmem-vm report ==\n");
	fprintf(out, "guest        %s: %s %d\n", vm->opts.guest,
		s.crashed ? "crashed, exit" : "exit code", s.exit_code);
	fprintf(out,
		"memory       %llu MiB on %s, init %s, conversion %s "
		"by default\n",
		ull(vm->opts.mem_size >> 20), gm_backing_name(vm->backing),
		vm->opts.init_private ? "private" : "shared", conv_name(vm));
	fprintf(out,
		"huge pages   %llu MiB of %llu MiB on %s pages; %llu regions "
		"split by conversions, %llu merged again\n",
		ull(s.now.huge_bytes >> 20), ull(vm->opts.mem_size >> 20),
		gm_pages_name(vm->opts.pages), ull(s.now.huge_splits),
		ull(s.now.huge_merges));
	if (s.kvm_pages_2m >= 0)
		fprintf(out,
			"kvm 2m maps  %lld (%llu MiB of guest memory mapped at "
			"2 MiB by KVM, debugfs pages_2m)\n",
			(long long)s.kvm_pages_2m,
			ull((uint64_t)s.kvm_pages_2m * 2));
	else
		fprintf(out, "kvm 2m maps  unknown (no readable KVM debugfs "
			     "pages_2m for this VM)\n");
	launch_digest_hex(vm->launch_digest, hex);
	fprintf(out, "launch       digest %s\n", hex);
	fprintf(out, "vCPUs        %u, %llu exits, ran %.1f ms\n",
		vm->opts.nr_vcpus, ull(atomic_load(&vm->exits)),
		s.run_ns / 1e6);
	fprintf(out,
		"pages now    %llu private, %llu shared (%llu of them "
		"hypervisor-visible: page tables, code, stacks); %llu extents\n",
		ull(s.now.private_pages), ull(s.now.shared_pages),
		ull(s.hv_pages), ull(s.now.extents));
	fprintf(out,
		"conversions  %llu requested by the guest, %llu done, %llu "
		"refused\n",
		ull(atomic_load(&vm->convert_requests)),
		ull(atomic_load(&vm->convert_ok)),
		ull(atomic_load(&vm->convert_requests) -
		    atomic_load(&vm->convert_ok)));
	fprintf(out,
		"             to private: %llu requests, %llu pages; to "
		"shared: %llu requests, %llu pages\n",
		ull(s.d.to_private_requests), ull(s.d.to_private_pages),
		ull(s.d.to_shared_requests), ull(s.d.to_shared_pages));
	fprintf(out,
		"             destructive: %llu requests, %llu pages; "
		"already in state: %llu; failed in the library: %llu\n",
		ull(s.d.destructive_requests), ull(s.d.destructive_pages),
		ull(s.d.noop_requests), ull(s.d.failed_requests));
	fprintf(out,
		"             time converting: %.3f ms in the library, %.3f ms "
		"per VMM clock; %llu host-view mprotects\n",
		s.d.convert_ns / 1e6, atomic_load(&vm->convert_wall_ns) / 1e6,
		ull(s.d.view_mprotects));
	fprintf(out, "refused      %llu requests", ull(s.refused_total));
	for (int i = 0; i < REFUSE_NR; i++) {
		uint64_t n = atomic_load(&vm->refused[i]);

		if (n)
			fprintf(out, ", %s %llu", refuse_names[i], ull(n));
	}
	fprintf(out, "\n");
	fprintf(out,
		"device       %llu requests, %llu pins taken (%llu pins in the "
		"library in all), %llu revoked, %llu still held\n",
		ull(atomic_load(&vm->device_requests)),
		ull(atomic_load(&vm->device_pins)), ull(s.d.pins),
		ull(atomic_load(&vm->device_revoked)),
		ull(chkdev_holds_active()));
	fprintf(out, "ports       ");
	bus_report(out, false);
	fprintf(out, "\n");
	pthread_mutex_lock(&vm->peek_lock);
	if (vm->peeks_ok + vm->peeks_refused) {
		fprintf(out,
			"VMM reads    the guest asked the VMM to peek %llu "
			"times: %llu read, %llu refused\n",
			ull(vm->peeks_ok + vm->peeks_refused),
			ull(vm->peeks_ok), ull(vm->peeks_refused));
		for (unsigned int i = 0; i < vm->nr_peeks; i++) {
			struct peek_record *r = &vm->peeks[i];

			if (r->status < 0)
				fprintf(out,
					"             could NOT read gpa 0x%llx "
					"(%llu bytes): %s\n",
					ull(r->gpa), ull(r->len),
					r->status == -EFAULT ?
						"-EFAULT, private" :
						strerror(-r->status));
			else
				fprintf(out,
					"             could read gpa 0x%llx "
					"(%llu bytes): \"%s\"\n",
					ull(r->gpa), ull(r->len), r->preview);
		}
	}
	pthread_mutex_unlock(&vm->peek_lock);
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

void report_json(struct vm *vm, FILE *out)
{
	char hex[2 * LAUNCH_DIGEST_SIZE + 1];
	struct summary s;

	summarize(vm, &s);
	launch_digest_hex(vm->launch_digest, hex);
	fprintf(out, "{\"guest\": ");
	json_str(out, vm->opts.guest);
	fprintf(out, ", \"launch_digest\": \"%s\"", hex);
	fprintf(out, ", \"exit_code\": %d, \"crashed\": %s", s.exit_code,
		s.crashed ? "true" : "false");
	fprintf(out,
		", \"memory\": {\"size\": %llu, \"backing\": \"%s\", "
		"\"init\": \"%s\", \"conversion\": \"%s\", "
		"\"private_pages\": %llu, \"shared_pages\": %llu, "
		"\"hv_visible_pages\": %llu, \"extents\": %llu, "
		"\"view_extents\": %llu, \"page_size\": \"%s\", "
		"\"huge_bytes\": %llu, \"huge_splits\": %llu, "
		"\"huge_merges\": %llu, \"kvm_pages_2m\": %lld}",
		ull(vm->opts.mem_size), gm_backing_name(vm->backing),
		vm->opts.init_private ? "private" : "shared", conv_name(vm),
		ull(s.now.private_pages), ull(s.now.shared_pages),
		ull(s.hv_pages), ull(s.now.extents), ull(s.now.view_extents),
		gm_pages_name(vm->opts.pages), ull(s.now.huge_bytes),
		ull(s.now.huge_splits), ull(s.now.huge_merges),
		(long long)s.kvm_pages_2m);
	fprintf(out, ", \"vcpus\": %u, \"exits\": %llu, \"run_ns\": %llu",
		vm->opts.nr_vcpus, ull(atomic_load(&vm->exits)), ull(s.run_ns));
	fprintf(out,
		", \"conversions\": {\"requests\": %llu, \"done\": %llu, "
		"\"to_private_requests\": %llu, \"to_private_pages\": %llu, "
		"\"to_shared_requests\": %llu, \"to_shared_pages\": %llu, "
		"\"destructive_requests\": %llu, \"destructive_pages\": %llu, "
		"\"noop_requests\": %llu, \"library_failures\": %llu, "
		"\"busy_refusals\": %llu, \"convert_ns\": %llu, "
		"\"request_ns\": %llu, \"view_mprotects\": %llu}",
		ull(atomic_load(&vm->convert_requests)),
		ull(atomic_load(&vm->convert_ok)), ull(s.d.to_private_requests),
		ull(s.d.to_private_pages), ull(s.d.to_shared_requests),
		ull(s.d.to_shared_pages), ull(s.d.destructive_requests),
		ull(s.d.destructive_pages), ull(s.d.noop_requests),
		ull(s.d.failed_requests), ull(s.d.busy_refusals),
		ull(s.d.convert_ns), ull(atomic_load(&vm->convert_wall_ns)),
		ull(s.d.view_mprotects));
	fprintf(out, ", \"refused\": {\"total\": %llu", ull(s.refused_total));
	for (int i = 0; i < REFUSE_NR; i++)
		fprintf(out, ", \"%s\": %llu", refuse_names[i],
			ull(atomic_load(&vm->refused[i])));
	fprintf(out, "}");
	fprintf(out,
		", \"device\": {\"requests\": %llu, \"pins\": %llu, "
		"\"library_pins\": %llu, \"revoked\": %llu, \"held\": %llu}",
		ull(atomic_load(&vm->device_requests)),
		ull(atomic_load(&vm->device_pins)), ull(s.d.pins),
		ull(atomic_load(&vm->device_revoked)),
		ull(chkdev_holds_active()));
	fprintf(out, ", \"ports\": {");
	bus_report(out, true);
	fprintf(out, "}, \"peeks\": [");
	pthread_mutex_lock(&vm->peek_lock);
	for (unsigned int i = 0; i < vm->nr_peeks; i++) {
		struct peek_record *r = &vm->peeks[i];

		fprintf(out,
			"%s{\"gpa\": %llu, \"len\": %llu, \"readable\": %s, "
			"\"status\": %d, \"data\": ",
			i ? ", " : "", ull(r->gpa), ull(r->len),
			r->status < 0 ? "false" : "true", r->status);
		json_str(out, r->preview);
		fprintf(out, "}");
	}
	pthread_mutex_unlock(&vm->peek_lock);
	fprintf(out, "]}\n");
}
