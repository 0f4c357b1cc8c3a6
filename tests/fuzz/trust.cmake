# SPDX-License-Identifier: Apache-2.0
# lib/trust fuzz targets: the envelope/bundle decoder and verifier, and trust-root verification.
corral_add_fuzzer(fuzz_trust_bundle SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_trust_bundle.c
	LIBS corral_trust)
corral_add_fuzzer(fuzz_trust_root SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_trust_root.c
	LIBS corral_trust)
