# SPDX-License-Identifier: Apache-2.0
# Warnings, sanitizers and static analysis for corral's own targets.
# corral_target_defaults(TARGET [TEST]) applies them; generated code is compiled without
# -Werror-prone extra warnings (see proto/).

set(CORRAL_WARNINGS
	-Wall -Wextra -Wformat=2 -Wformat-security -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wpointer-arith -Wcast-align -Wwrite-strings -Wvla
	-Wno-unused-parameter -Wno-missing-field-initializers -fno-strict-aliasing)
if(CORRAL_WERROR)
	list(APPEND CORRAL_WARNINGS -Werror)
endif()
add_compile_definitions(_GNU_SOURCE)
add_compile_options(-fstack-protector-strong -fPIE)
if(NOT CORRAL_SANITIZE)
	add_compile_options($<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
endif()
add_link_options(-pie -Wl,-z,relro,-z,now)

if(CORRAL_SANITIZE)
	add_compile_options(-fsanitize=${CORRAL_SANITIZE} -fno-omit-frame-pointer
		-fno-sanitize-recover=all)
	add_link_options(-fsanitize=${CORRAL_SANITIZE})
	add_compile_definitions(CORRAL_SANITIZED=1)
endif()

# Fuzz builds: instrument every library for coverage, or libFuzzer sees only the harness and
# cannot steer into the parsers (the fuzz targets link with -fsanitize=fuzzer).
if(CORRAL_FUZZ)
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(CORRAL_CLANG_TIDY)
	find_program(CLANG_TIDY_EXE NAMES clang-tidy-14 clang-tidy REQUIRED)
endif()
if(CORRAL_CPPCHECK)
	find_program(CPPCHECK_EXE NAMES cppcheck REQUIRED)
endif()

# corral_target_defaults(<target> [TEST]): warnings for our code; static analysis on non-test
# targets only (CUnit's *_FATAL longjmp asserts confuse clang-tidy).
function(corral_target_defaults target)
	cmake_parse_arguments(A "TEST" "" "" ${ARGN})
	target_compile_options(${target} PRIVATE ${CORRAL_WARNINGS})
	target_include_directories(${target} PRIVATE ${PROJECT_BINARY_DIR}/generated)
	if(NOT A_TEST)
		# Fuzz builds: instrument every library for coverage, or libFuzzer sees only the harness and
# cannot steer into the parsers (the fuzz targets link with -fsanitize=fuzzer).
if(CORRAL_FUZZ)
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(CORRAL_CLANG_TIDY)
			set_target_properties(${target} PROPERTIES C_CLANG_TIDY
				"${CLANG_TIDY_EXE};--config-file=${PROJECT_SOURCE_DIR}/.clang-tidy;--header-filter=${PROJECT_SOURCE_DIR}/(lib|endpoint|server-stub)/.*")
		endif()
		if(CORRAL_CPPCHECK)
			set_target_properties(${target} PROPERTIES C_CPPCHECK
				"${CPPCHECK_EXE};--quiet;--enable=warning,performance,portability;--inline-suppr;--suppress=*:*.pb-c.h;--suppress=*:*.skel.h")
		endif()
	endif()
endfunction()

# corral_add_library(<name> SOURCES ... [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
# One static library per module; headers in the module folder are public to dependants.
function(corral_add_library name)
	cmake_parse_arguments(A "" "" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
	add_library(${name} STATIC ${A_SOURCES})
	target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
	target_link_libraries(${name} PUBLIC ${A_PUBLIC_LIBS} PRIVATE ${A_PRIVATE_LIBS})
	corral_target_defaults(${name})
endfunction()

# corral_add_executable(<name> SOURCES ... [LIBS ...])
function(corral_add_executable name)
	cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
	add_executable(${name} ${A_SOURCES})
	target_link_libraries(${name} PRIVATE ${A_LIBS})
	corral_target_defaults(${name})
	set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()
