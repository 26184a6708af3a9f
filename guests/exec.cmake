# gmem-vm exec (docs/exec.md): a static glibc program and Debian's
# busybox-static in the guest, compared with native runs (guests/exec.sh).
# Built with the system compiler and glibc's libc.a, without the project's
# flags: a real program, not a guest of the runtime.
set(GMVM_EXEC_HELLO ${CMAKE_CURRENT_BINARY_DIR}/exec_hello)
add_custom_command(OUTPUT ${GMVM_EXEC_HELLO}
  COMMAND ${CMAKE_C_COMPILER} -static -O2 -o ${GMVM_EXEC_HELLO}
    ${CMAKE_CURRENT_SOURCE_DIR}/exec_hello.c
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/exec_hello.c VERBATIM)
add_custom_target(exec-hello ALL DEPENDS ${GMVM_EXEC_HELLO})
foreach(b guest_memfd memfd)
  add_test(NAME vm.exec.${b}
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/exec.sh $<TARGET_FILE:gmem-vm>
      ${GMVM_EXEC_HELLO} ${b})
  set_tests_properties(vm.exec.${b} PROPERTIES SKIP_RETURN_CODE 77
    LABELS "vm" TIMEOUT 120)
endforeach()
