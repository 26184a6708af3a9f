# The extent map (lib/extent_map.c): randomized against references, memory
# bounds, the reserve contract.
gm_add_test(test_extent_map SOURCES test_extent_map.c INTERNAL)
