// SPDX-License-Identifier: MIT
/*
 * gmem-vm: a small reference VMM that runs KVM guests on gmem memory.
 *
 *   gmem-vm run GUEST.elf [--mem SIZE] [--vcpus N]
 *           [--backing auto|guest_memfd|memfd] [--init private|shared]
 *           [--conversion inplace|destructive] [--json] [--quiet]
 *   gmem-vm measure GUEST.elf [the same options]: print the launch digest
 *           that `run` would report, without KVM and without running
 *   gmem-vm exec [options] [--] PROGRAM ARGS...: an unmodified static
 *           Linux program beside the system-call shim (docs/exec.md)
 *   gmem-vm run ... --snapshot FILE [--snapshot-on request|signal]
 *           [--snapshot-exit] [--key-file KEY]: snapshot the running VM
 *   gmem-vm restore FILE [--key-file KEY] [options]: resume a snapshot
 *
 * Exit status: the guest's exit code; 120 if the guest crashed, 121 if the
 * VMM failed, 122 on bad usage, 77 if /dev/kvm is absent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: gmem-vm run GUEST.elf [options]\n"
		"       gmem-vm measure GUEST.elf [options]: the launch "
		"digest, computed without KVM\n"
		"       (measure needs --backing guest_memfd or memfd)\n"
		"       gmem-vm exec [options] [--] PROGRAM ARGS...: a static "
		"Linux program, its memory private (report on stderr)\n"
		"       gmem-vm restore FILE [options]: resume a snapshot "
		"(shape options, if given, must match it)\n"
		"  --mem SIZE          guest memory, a multiple of 2M "
		"(default 64M; suffixes K, M, G)\n"
		"  --vcpus N           vCPUs, 1..%d (default 1)\n"
		"  --backing KIND      auto (default: guest_memfd where the "
		"kernel has it), guest_memfd or memfd\n"
		"  --page-size KIND    4k (default), 2m-thp, 2m-hugetlb or "
		"1g-hugetlb: the backing's pages (huge ones: memfd)\n"
		"  --init STATE        private (default) or shared: the "
		"state guest data starts in\n"
		"  --conversion MODE   inplace (default) or destructive: "
		"how conversions treat contents\n"
		"  --json              print the closing report as JSON on "
		"stdout (guest console on stderr)\n"
		"  --quiet             no closing report\n"
		"  --snapshot FILE     snapshot the VM into FILE on a guest "
		"request or SIGUSR1\n"
		"  --snapshot-on WHAT  request, signal or request,signal "
		"(default)\n"
		"  --snapshot-exit     stop the VM once the snapshot is "
		"written (exit status 0)\n"
		"  --dir HOSTDIR       exec: the program's files, a "
		"sandbox (openat2 RESOLVE_BENEATH)\n"
		"  --rw                exec: the sandbox is writable (else "
		"EROFS)\n"
		"  --key-file FILE     the snapshot key: 32 bytes or 64 hex "
		"digits (else GMEM_SNAPSHOT_KEY, hex)\n"
		"exit status: the guest's exit code; %d guest crash, %d VMM "
		"error, %d usage, %d no /dev/kvm\n",
		GMVM_MAX_VCPUS, GMVM_EXIT_CRASH, GMVM_EXIT_VMM, GMVM_EXIT_USAGE,
		GMVM_EXIT_SKIP);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "gmem-vm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return GMVM_EXIT_USAGE;
}

/* gmem-vm measure: the launch digest of the same layout, in no VM. */
static int measure(struct vm_opts *opts, struct vm *vm)
{
	char hex[2 * LAUNCH_DIGEST_SIZE + 1];
	int ret;

	if (opts->backing == GM_BACKING_AUTO)
		return bad_usage("measure: name --backing guest_memfd or "
				 "memfd (auto depends on the host's kernel)%s",
				 "");
	opts->measure_only = true;
	ret = vm_create(vm, opts);
	if (!ret)
		launch_digest_hex(vm->launch_digest, hex);
	vm_destroy(vm);
	if (ret)
		return GMVM_EXIT_VMM;
	if (opts->json)
		printf("{\"launch_digest\": \"%s\"}\n", hex);
	else
		printf("%s\n", hex);
	return 0;
}

/* Run the created VM to its end; the exit status. */
/* Start the vCPUs, wait for the end, report to out; the exit status. */
static int run_vm(struct vm *vm, const struct vm_opts *opts, FILE *out)
{
	unsigned int started = 0;
	int code;

	fflush(out);
	vm->base.sz = sizeof(vm->base);
	gm_store_stats(vm->store, &vm->base);
	vm->start_ns = now_ns();
	for (unsigned int i = 0; i < opts->nr_vcpus; i++) {
		if (cpu_start(&vm->vcpus[i])) {
			vm_stop(vm, GMVM_EXIT_VMM);
			break;
		}
		started++;
	}
	for (unsigned int i = 0; i < started; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
	vm->end_ns = now_ns();
	if (!atomic_load(&vm->stopping)) {
		fprintf(stderr, "gmem-vm: every vCPU finished without an exit "
				"request\n");
		atomic_store(&vm->crashed, true);
		vm_stop(vm, GMVM_EXIT_CRASH);
	}
	code = atomic_load(&vm->exit_code);
	/* re-merge the huge regions conversions split (THP stores) */
	gm_store_compact(vm->store);
	fflush(vm->console);
	if (opts->json)
		report_json(vm, out);
	else if (!opts->quiet)
		report_print(vm, out);
	if (opts->exec_argv && !opts->quiet)
		sysdev_report(vm, out, opts->json);
	vm_destroy(vm);
	snapshot_fini();
	return code;
}

/* gmem-vm restore FILE: the VM of the snapshot, resumed. */
static int restore(const struct vm_opts *opts, struct vm *vm, const char *path)
{
	int ret;

	if (access("/dev/kvm", F_OK) && errno == ENOENT) {
		fprintf(stderr, "gmem-vm: /dev/kvm is absent: cannot restore "
				"here (skip)\n");
		return GMVM_EXIT_SKIP;
	}
	bus_init();
	ret = snapshot_restore(vm, opts, path);
	if (ret) {
		/* vm_create ran (vm->opts set) only past the file's checks */
		if (vm->opts.restoring)
			vm_destroy(vm);
		snapshot_fini();
		return ret == -EOPNOTSUPP ? GMVM_EXIT_SKIP : GMVM_EXIT_VMM;
	}
	return run_vm(vm, &vm->opts, stdout);
}

static int parse_snapshot_on(const char *s, unsigned int *on)
{
	if (!strcmp(s, "request"))
		*on = SNAP_ON_REQUEST;
	else if (!strcmp(s, "signal"))
		*on = SNAP_ON_SIGNAL;
	else if (!strcmp(s, "request,signal") || !strcmp(s, "signal,request"))
		*on = SNAP_ON_REQUEST | SNAP_ON_SIGNAL;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "backing", required_argument, NULL, 'b' },
		{ "init", required_argument, NULL, 'i' },
		{ "page-size", required_argument, NULL, 'P' },
		{ "conversion", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "snapshot-on", required_argument, NULL, 'o' },
		{ "snapshot-exit", no_argument, NULL, 'x' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' },
		{ "rw", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vm_opts opts = {
		.mem_size = 64ull << 20,
		.nr_vcpus = 1,
		.backing = GM_BACKING_AUTO,
		.init_private = true,
		.conversion = CONV_INPLACE,
		.snapshot_on = SNAP_ON_REQUEST | SNAP_ON_SIGNAL,
	};
	static struct vm vm;
	int opt, ret, code;
	bool exec;
	FILE *out;
	char *end;

	if (argc >= 2 && (!strcmp(argv[1], "--help") ||
			  !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "measure") &&
			 strcmp(argv[1], "exec") && strcmp(argv[1], "restore")))
		return bad_usage("expected a command: run, measure, exec or "
				 "restore%s",
				 "");
	exec = !strcmp(argv[1], "exec");
	out = exec ? stderr : stdout; /* exec: stdout is the program's */
	optind = 2;
	/* exec: options end at the program, whose own options follow */
	while ((opt = getopt_long(argc, argv,
				  exec ? "+m:c:b:i:C:P:jqh" : "m:c:b:i:C:P:jqh",
				  longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (parse_size(optarg, &opts.mem_size) ||
			    !opts.mem_size || opts.mem_size % (2ull << 20) ||
			    opts.mem_size > (256ull << 30))
				return bad_usage("--mem %s: want a multiple of "
						 "2M, at most 256G",
						 optarg);
			opts.restore_given |= RESTORE_GIVEN_MEM;
			break;
		case 'c':
			opts.nr_vcpus = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || !*optarg || opts.nr_vcpus < 1 ||
			    opts.nr_vcpus > GMVM_MAX_VCPUS)
				return bad_usage("--vcpus %s: want 1..16",
						 optarg);
			opts.restore_given |= RESTORE_GIVEN_VCPUS;
			break;
		case 'b':
			if (gm_backing_parse(optarg, &opts.backing))
				return bad_usage("--backing: %s",
						 gm_last_error());
			opts.restore_given |= RESTORE_GIVEN_BACKING;
			break;
		case 'P':
			if (gm_pages_parse(optarg, &opts.pages))
				return bad_usage("--page-size: %s",
						 gm_last_error());
			opts.restore_given |= RESTORE_GIVEN_PAGES;
			break;
		case 'i':
			if (!strcmp(optarg, "private"))
				opts.init_private = true;
			else if (!strcmp(optarg, "shared"))
				opts.init_private = false;
			else
				return bad_usage("--init %s: want private or "
						 "shared",
						 optarg);
			opts.restore_given |= RESTORE_GIVEN_INIT;
			break;
		case 'C':
			if (!strcmp(optarg, "inplace"))
				opts.conversion = CONV_INPLACE;
			else if (!strcmp(optarg, "destructive"))
				opts.conversion = CONV_DESTRUCTIVE;
			else
				return bad_usage("--conversion %s: want "
						 "inplace or destructive",
						 optarg);
			opts.restore_given |= RESTORE_GIVEN_CONVERSION;
			break;
		case 's':
			opts.snapshot = optarg;
			break;
		case 'o':
			if (parse_snapshot_on(optarg, &opts.snapshot_on))
				return bad_usage("--snapshot-on %s: want "
						 "request, signal or "
						 "request,signal",
						 optarg);
			break;
		case 'x':
			opts.snapshot_exit = true;
			break;
		case 'k':
			opts.key_file = optarg;
			break;
		case 'd':
			opts.exec_dir = optarg;
			break;
		case 'w':
			opts.exec_rw = true;
			break;
		case 'j':
			opts.json = true;
			break;
		case 'q':
			opts.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return GMVM_EXIT_USAGE;
		}
	}
	if (exec && optind < argc) {
		opts.exec_argv = &argv[optind];
	} else if (exec || optind != argc - 1) {
		return bad_usage(
			strcmp(argv[1], "restore") ?
				"%s: expected one GUEST.elf or PROGRAM" :
				"%s: expected one snapshot FILE",
			argv[1]);
	}
	if ((opts.exec_dir || opts.exec_rw) && (!exec || !opts.exec_dir))
		return bad_usage("--dir and --rw go with gmem-vm exec (--rw "
				 "with --dir)%s",
				 "");
	if ((opts.snapshot_exit || opts.key_file) && !opts.snapshot &&
	    strcmp(argv[1], "restore"))
		return bad_usage("--snapshot-exit and --key-file go with "
				 "--snapshot FILE%s",
				 "");
	if (!strcmp(argv[1], "restore"))
		return restore(&opts, &vm, argv[optind]);
	opts.guest = argv[optind];
	if (!strcmp(argv[1], "measure"))
		return measure(&opts, &vm);

	if (access("/dev/kvm", F_OK) && errno == ENOENT) {
		fprintf(stderr, "gmem-vm: /dev/kvm is absent: cannot run "
				"guests here (skip)\n");
		return GMVM_EXIT_SKIP;
	}
	bus_init();
	ret = vm_create(&vm, &opts);
	if (ret) {
		/* --backing guest_memfd on a kernel without it: skip */
		code = vm.store || ret != -EOPNOTSUPP ? GMVM_EXIT_VMM :
							GMVM_EXIT_SKIP;
		vm_destroy(&vm);
		return code;
	}
	/* the key is read before the guest runs: a missing one fails now */
	if (snapshot_arm(&vm)) {
		vm_destroy(&vm);
		return GMVM_EXIT_VMM;
	}
	if (!opts.quiet && !opts.json)
		fprintf(out,
			"gmem-vm: %s, %llu MiB on %s (init %s, conversion %s), "
			"%u vCPU%s\n",
			opts.guest, (unsigned long long)(opts.mem_size >> 20),
			gm_backing_name(vm.backing),
			opts.init_private ? "private" : "shared",
			opts.conversion == CONV_DESTRUCTIVE ? "destructive" :
							      "in place",
			opts.nr_vcpus, opts.nr_vcpus > 1 ? "s" : "");
	return run_vm(&vm, &opts, out);
}
