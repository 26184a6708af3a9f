# The pins' interval tree (lib/pin_tree.c, internal) against
# a reference model, and pin creation raced against GM_CONVERT_REVOKE (run by
# make check-tsan through its label).
gm_add_test(test_pin_tree SOURCES test_pin_tree.c test_util.c INTERNAL)
gm_add_test(test_pin_race SOURCES test_pin_race.c test_util.c BACKINGS LABELS store)
foreach(b guest_memfd memfd)
  set_tests_properties(test_pin_race.${b} PROPERTIES TIMEOUT 300)
endforeach()
