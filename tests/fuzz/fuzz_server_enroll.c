// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: POST /v1/enroll and /v1/renew bodies as the server handles them before any
 * state changes: the EnrollRequest/RenewRequest decoders, the enrollment-token parser, and the
 * CSR parsing/verification/issuance of the fleet CA (a throwaway CA made at start-up).
 */
#include "ca.h"
#include "decode.h"
#include "srv_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct srv_ca *ca;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/corral-fuzz-ca-XXXXXX";
	char err[256];
	if (!mkdtemp(dir) ||
	    srv_ca_open(dir, "fuzz.example", "127.0.0.1", &ca, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_server_enroll: cannot create a CA: %s\n", err);
		abort();
	}
	return 0;
}

static void issue(const ProtobufCBinaryData *csr)
{
	uint8_t *der = NULL;
	size_t len = 0;
	char serial[SRV_CA_SERIAL_HEX];
	int64_t exp = 0;
	if (srv_ca_issue(ca, csr->data, csr->len, "d-fuzz", 3600, &der, &len, serial, &exp) == 0)
		free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	Corral__EnrollRequest *in = NULL;
	if (srv_decode_enroll(data, size, SRV_ENROLL_BODY_MAX, &in, &why) == 0) {
		char id[17];
		uint8_t sha[SRV_SHA256_LEN];
		(void)srv_token_parse(in->token, id, sha);
		issue(&in->csr_der);
		corral__enroll_request__free_unpacked(in, NULL);
	}
	Corral__RenewRequest *rn = NULL;
	if (srv_decode_renew(data, size, SRV_ENROLL_BODY_MAX, &rn, &why) == 0) {
		issue(&rn->csr_der);
		corral__renew_request__free_unpacked(rn, NULL);
	}
	return 0;
}
