# SPDX-License-Identifier: Apache-2.0
# corral_add_test(<name> SOURCES ... LIBS ... LABELS unit|integration|privileged [TIMEOUT s])
# Builds a CUnit program linked with the test harness and registers it with ctest.
# Exit code 77 means "skipped" (missing root or kernel feature; the program prints why).
# BUILD_ONLY builds the program without registering it (it is run by a wrapper test, e.g. one
# that first starts a PostgreSQL cluster).
function(corral_add_test name)
	cmake_parse_arguments(A "BUILD_ONLY" "TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
	add_executable(${name} ${A_SOURCES})
	target_link_libraries(${name} PRIVATE corral_test_harness ${A_LIBS})
	corral_target_defaults(${name} TEST)
	set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
	if(A_BUILD_ONLY)
		return()
	endif()
	add_test(NAME ${name} COMMAND ${name})
	if(NOT A_TIMEOUT)
		set(A_TIMEOUT 120)
	endif()
	set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
		SKIP_RETURN_CODE 77
		ENVIRONMENT "CORRAL_SOURCE_DIR=${PROJECT_SOURCE_DIR};CORRAL_BINARY_DIR=${PROJECT_BINARY_DIR};${A_ENV}")
endfunction()
