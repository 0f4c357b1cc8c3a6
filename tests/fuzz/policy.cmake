# SPDX-License-Identifier: Apache-2.0
# lib/policy: the compiler, linter and compact-source helper on arbitrary bytes.
# The library itself is compiled with coverage instrumentation in this (fuzz-only) build, or
# libFuzzer would see only the harness and could not steer into the compiler.
if(TARGET corral_policy)
	target_compile_options(corral_policy PRIVATE -fsanitize=fuzzer-no-link)
endif()
corral_add_fuzzer(fuzz_policy_compile SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_policy_compile.c
	LIBS corral_policy)
