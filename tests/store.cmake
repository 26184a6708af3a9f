# The store tests (libgmem core, issue 2 item 10). Each runs once per
# backing (argv[1]: guest_memfd or memfd); see tests/test_util.h.
gm_add_test(test_store SOURCES test_store.c test_util.c BACKINGS LABELS store)
gm_add_test(test_convert SOURCES test_convert.c test_util.c BACKINGS LABELS store)
gm_add_test(test_pin SOURCES test_pin.c test_util.c BACKINGS LABELS store)
gm_add_test(test_rollback SOURCES test_rollback.c test_util.c BACKINGS INTERNAL LABELS store)
gm_add_test(test_view SOURCES test_view.c test_util.c BACKINGS LABELS store)
gm_add_test(test_access SOURCES test_access.c test_util.c BACKINGS LABELS store)
gm_add_test(test_stress SOURCES test_stress.c test_util.c BACKINGS LABELS store)

# Generous limits (sanitizer builds are several times slower); a hang fails.
foreach(t store convert pin rollback view access stress)
  foreach(b guest_memfd memfd)
    set_tests_properties(test_${t}.${b} PROPERTIES TIMEOUT 300)
  endforeach()
endforeach()
