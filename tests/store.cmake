# The store tests (libgmem core): each runs once per backing.
foreach(t store convert pin rollback view access stress)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/test_${t}.c)
    gm_add_test(test_${t} SOURCES test_${t}.c test_util.c BACKINGS LABELS store)
  endif()
endforeach()
