# SPDX-License-Identifier: Apache-2.0
# lib/policy: the compiler, linter and compact-source helper on arbitrary bytes.
# (Every library is coverage-instrumented in fuzz builds: cmake/CorralCompiler.cmake.)
corral_add_fuzzer(fuzz_policy_compile SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_policy_compile.c
	LIBS corral_policy)
