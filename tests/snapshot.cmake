# Export and import of stores (issue 10 item 1): round trips, sealing and
# the rejection of every changed stream, once per backing. INTERNAL: it
# re-MACs streams with lib/snapshot_crypto.c to reach the record checks.
gm_add_test(test_snapshot SOURCES test_snapshot.c test_util.c BACKINGS INTERNAL LABELS store)
foreach(b guest_memfd memfd)
  set_tests_properties(test_snapshot.${b} PROPERTIES TIMEOUT 300)
endforeach()
