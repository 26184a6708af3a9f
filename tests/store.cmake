# The store tests (libgmem core, issue 2 item 10). Each runs once per
# backing (argv[1]: guest_memfd or memfd; memfd-thp with HUGE, memfd-hugetlb2m
# with HUGETLB); see tests/test_util.h. test_store (4 KiB size rules) does not run
# on hugetlb; test_view runs there in units of whole huge pages (tu_unit).
gm_add_test(test_store SOURCES test_store.c test_util.c BACKINGS LABELS store)
gm_add_test(test_convert SOURCES test_convert.c test_util.c BACKINGS HUGE HUGETLB LABELS store)
gm_add_test(test_pin SOURCES test_pin.c test_util.c BACKINGS HUGE HUGETLB LABELS store)
gm_add_test(test_rollback SOURCES test_rollback.c test_util.c BACKINGS INTERNAL LABELS store)
gm_add_test(test_view SOURCES test_view.c test_util.c BACKINGS HUGE HUGETLB LABELS store)
gm_add_test(test_access SOURCES test_access.c test_util.c BACKINGS HUGE HUGETLB LABELS store)
gm_add_test(test_stress SOURCES test_stress.c test_util.c BACKINGS HUGETLB LABELS store)
gm_add_test(test_lifetime SOURCES test_lifetime.c test_util.c BACKINGS HUGETLB LABELS store)

# Generous limits (sanitizer builds are several times slower); a hang fails.
foreach(t store convert pin rollback view access stress lifetime)
  foreach(b guest_memfd memfd)
    set_tests_properties(test_${t}.${b} PROPERTIES TIMEOUT 300)
  endforeach()
endforeach()

# Private pages out of every host path (issue 8): forced reads, fork, exec,
# smaps flags; and a real core dump (sets the system's core_pattern for its
# run and restores it; not under sanitizers, whose runtimes shape dumps).
gm_add_test(test_exposure SOURCES test_exposure.c test_util.c BACKINGS HUGE HUGETLB LABELS store)
gm_add_test(test_coredump SOURCES test_coredump.c test_util.c BACKINGS LABELS nosan)
foreach(b guest_memfd memfd)
  set_tests_properties(test_coredump.${b} PROPERTIES RESOURCE_LOCK core_pattern)
endforeach()

# Huge backings (issue 9): sets shmem THP and hugetlb pools for its run and
# restores them; the lock keeps other tests touching them out meanwhile.
gm_add_test(test_huge SOURCES test_huge.c huge_fixture.c test_util.c INTERNAL LABELS store)
set_tests_properties(test_huge PROPERTIES RESOURCE_LOCK hugepages TIMEOUT 300)
