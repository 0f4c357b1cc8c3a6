// SPDX-License-Identifier: Apache-2.0
/*
 * Device request decoders (see decode.h): every byte a device sends passes through here before
 * any handler looks at it.
 */
#include "decode.h"

#include <errno.h>
#include <string.h>

int srv_decode_enroll(const uint8_t *buf, size_t len, size_t max, Corral__EnrollRequest **ret,
                      const char **ret_detail)
{
	if (len > max) {
		*ret_detail = "body over the limit";
		return -EMSGSIZE;
	}
	Corral__EnrollRequest *in = corral__enroll_request__unpack(NULL, len, buf);
	if (!in) {
		*ret_detail = "body is not an EnrollRequest";
		return -EBADMSG;
	}
	const char *why = NULL;
	if (!in->token || !*in->token || in->csr_der.len == 0)
		why = "token and csr_der are required";
	else if (strlen(in->hostname) > 255 || strlen(in->agent_version) > 64)
		why = "hostname or agent_version too long";
	if (why) {
		corral__enroll_request__free_unpacked(in, NULL);
		*ret_detail = why;
		return -EBADMSG;
	}
	*ret = in;
	return 0;
}

int srv_decode_renew(const uint8_t *buf, size_t len, size_t max, Corral__RenewRequest **ret,
                     const char **ret_detail)
{
	if (len > max) {
		*ret_detail = "body over the limit";
		return -EMSGSIZE;
	}
	Corral__RenewRequest *in = corral__renew_request__unpack(NULL, len, buf);
	if (!in || in->csr_der.len == 0) {
		if (in)
			corral__renew_request__free_unpacked(in, NULL);
		*ret_detail = "body is not a RenewRequest with a CSR";
		return -EBADMSG;
	}
	*ret = in;
	return 0;
}

int srv_decode_report(const uint8_t *buf, size_t len, size_t max, size_t max_events,
                      Corral__ReportBatch **ret, const char **ret_detail)
{
	if (len > max) {
		*ret_detail = "body over the limit";
		return -EMSGSIZE;
	}
	Corral__ReportBatch *b = corral__report_batch__unpack(NULL, len, buf);
	if (!b) {
		*ret_detail = "body is not a ReportBatch";
		return -EBADMSG;
	}
	const char *why = NULL;
	if (b->n_events > max_events)
		why = "too many events in one batch";
	for (size_t i = 0; !why && i < b->n_events; i++)
		if (b->events[i]->seq == 0 || b->events[i]->seq > INT64_MAX)
			why = "event seq must be 1..2^63-1";
	if (why) {
		corral__report_batch__free_unpacked(b, NULL);
		*ret_detail = why;
		return -EBADMSG;
	}
	*ret = b;
	return 0;
}
