# SPDX-License-Identifier: Apache-2.0
# endpoint/net parsers of untrusted bytes: the TLS ClientHello SNI parser, the hostname
# normaliser, and the proxy's request handling (CONNECT / absolute-form HTTP) end to end.
corral_add_fuzzer(fuzz_net_sni SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_net_sni.c LIBS corral_egress)
corral_add_fuzzer(fuzz_net_host SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_net_host.c LIBS corral_egress)
corral_add_fuzzer(fuzz_net_request SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_net_request.c
	LIBS corral_egress)
