# The extent map (lib/extent_map*.c, lib/emap_*.c): randomized against
# references, memory bounds, the reserve contract. Its invariant checker
# (lib/testing/, outside the library's sources) is built in here only.
gm_add_test(test_extent_map SOURCES test_extent_map.c
  ${PROJECT_SOURCE_DIR}/lib/testing/emap_testing.c INTERNAL)
