# SPDX-License-Identifier: Apache-2.0
# corral-server's device request decoders: what an unauthenticated (enroll) or authenticated
# (report) device's bytes reach first.
corral_add_fuzzer(fuzz_server_enroll SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_server_enroll.c
	LIBS corral_server_core)
corral_add_fuzzer(fuzz_server_report SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_server_report.c
	LIBS corral_server_core)
