# The gmem command-line tool: tests/test_cli.sh with the gmem binary.
if(TARGET gmem-cli)
  set(GM_CLI_TEST sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:gmem-cli>)
  add_test(NAME cli.usage COMMAND ${GM_CLI_TEST} usage)
  add_test(NAME cli.caps COMMAND ${GM_CLI_TEST} caps)
  set(GM_CLI_TESTS cli.usage cli.caps)
  foreach(b auto guest_memfd memfd)
    add_test(NAME cli.walkthrough.${b} COMMAND ${GM_CLI_TEST} walkthrough ${b})
    list(APPEND GM_CLI_TESTS cli.walkthrough.${b})
  endforeach()
  # make demo's script, on this build.
  add_test(NAME cli.demo COMMAND sh ${PROJECT_SOURCE_DIR}/scripts/demo.sh ${PROJECT_BINARY_DIR})
  list(APPEND GM_CLI_TESTS cli.demo)
  set_tests_properties(${GM_CLI_TESTS} PROPERTIES SKIP_RETURN_CODE 77 LABELS cli)
  # caps reads the huge-page settings that the huge-page tests change
  set_tests_properties(cli.caps cli.demo PROPERTIES RESOURCE_LOCK hugepages)
endif()

# cmake --install and a program built against it with pkg-config.
add_test(NAME install COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh ${PROJECT_BINARY_DIR})
# A sanitizer build installs an instrumented libgmem.so: the program needs the
# sanitizer's runtime too.
set_tests_properties(install PROPERTIES LABELS cli
  ENVIRONMENT "GMEM_TEST_LDFLAGS=${GMEM_SANITIZE_LINK}")
