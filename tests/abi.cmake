# The library's ABI (docs/api-stability.md), all against libgmem.so:
# - test_abi: programs built against older and newer struct layouts;
# - abi.symbols: libgmem.so exports exactly the public functions, gm_* only,
#   in the version node, under the SONAME of include/gmem/version.h;
# - abi.baseline: abidiff against the committed abi/libgmem.abi fails on an
#   incompatible change (scripts/abi-baseline.sh regenerates it).
gm_add_test(test_abi SOURCES test_abi.c LABELS abi)
target_compile_definitions(test_abi PRIVATE GM_PROJECT_VERSION="${PROJECT_VERSION}")

add_test(NAME abi.symbols COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/abi-symbols.sh
  $<TARGET_FILE:gmem> ${CMAKE_C_COMPILER})
add_test(NAME abi.baseline COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/abi-check.sh
  $<TARGET_FILE:gmem>)
set_tests_properties(abi.symbols abi.baseline PROPERTIES LABELS abi SKIP_RETURN_CODE 77)
