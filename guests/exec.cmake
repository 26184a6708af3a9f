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
# The device fed malformed requests directly, without KVM (a host program
# on the VMM's own sources, like fuzz/fuzz_memctl.c).
file(GLOB gmvm_exec_vmm_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/vmm/*.c)
list(REMOVE_ITEM gmvm_exec_vmm_sources ${PROJECT_SOURCE_DIR}/vmm/main.c)
add_executable(exec_sysdev exec_sysdev.c ${gmvm_exec_vmm_sources})
target_include_directories(exec_sysdev PRIVATE ${PROJECT_SOURCE_DIR}/vmm)
target_link_libraries(exec_sysdev PRIVATE gmvm-shim-blob gmvm-measure gmem
  gmem_kvm_uapi Threads::Threads)
add_test(NAME vm.exec.sysdev
  COMMAND sh -c "d=$(mktemp -d) && echo hello >$d/a.txt && $0 $d; r=$?; rm -rf $d; exit $r"
    $<TARGET_FILE:exec_sysdev>)
set_tests_properties(vm.exec.sysdev PROPERTIES LABELS "vm" TIMEOUT 60)
foreach(b guest_memfd memfd)
  add_test(NAME vm.exec.${b}
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/exec.sh $<TARGET_FILE:gmem-vm>
      ${GMVM_EXEC_HELLO} ${b})
  set_tests_properties(vm.exec.${b} PROPERTIES SKIP_RETURN_CODE 77
    LABELS "vm" TIMEOUT 120)
endforeach()
