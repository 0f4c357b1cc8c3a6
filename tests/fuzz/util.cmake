corral_add_fuzzer(fuzz_util_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_util_parse.c LIBS corral_util)
