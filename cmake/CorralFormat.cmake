# SPDX-License-Identifier: Apache-2.0
# `format` rewrites, `format-check` fails on any file not formatted per .clang-format.
find_program(CLANG_FORMAT_EXE NAMES clang-format-14 clang-format)
if(CLANG_FORMAT_EXE)
	file(GLOB_RECURSE CORRAL_FORMAT_FILES CONFIGURE_DEPENDS
		${PROJECT_SOURCE_DIR}/lib/*.[ch] ${PROJECT_SOURCE_DIR}/endpoint/*.[ch]
		${PROJECT_SOURCE_DIR}/server-stub/*.[ch] ${PROJECT_SOURCE_DIR}/tests/*.[ch]
		${PROJECT_SOURCE_DIR}/bench/*.[ch])
	add_custom_target(format COMMAND ${CLANG_FORMAT_EXE} -i ${CORRAL_FORMAT_FILES}
		COMMENT "clang-format -i")
	add_custom_target(format-check COMMAND ${CLANG_FORMAT_EXE} --dry-run -Werror ${CORRAL_FORMAT_FILES}
		COMMENT "clang-format --dry-run -Werror")
endif()
