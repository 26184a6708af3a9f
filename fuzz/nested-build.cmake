# cmake -DSRC= -DBIN= -DCLANG= -P nested-build.cmake: configure and build
# the libFuzzer targets with clang in BIN (a CTest fixture).
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC} -B ${BIN}
    -DCMAKE_C_COMPILER=${CLANG} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    -DGMEM_FUZZ=ON -DGMEM_FUZZ_CI_SECONDS=${SECONDS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the libFuzzer build failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BIN} --target fuzz-all -j 2
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the libFuzzer targets failed")
endif()
