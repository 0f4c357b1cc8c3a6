# SPDX-License-Identifier: Apache-2.0
# corrald's parsers of outside bytes: the configuration files and the local IPC frames.
corral_add_fuzzer(fuzz_corrald_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_corrald_config.c
	LIBS corral_daemon)
corral_add_fuzzer(fuzz_corrald_ipc SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_corrald_ipc.c
	LIBS corral_daemon)
# Kernel audit records (Landlock denials) read from the audit netlink group.
corral_add_fuzzer(fuzz_corrald_fsaudit SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_corrald_fsaudit.c
	LIBS corral_daemon)
# Frames between corrald and its crypto helper corrald-crypto (both directions' checks).
corral_add_fuzzer(fuzz_corrald_crypto SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_corrald_crypto.c
	LIBS corral_daemon)
