// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: POST /v1/report bodies: the ReportBatch decoder and, for batches it
 * accepts, the re-serialisation of each event (as stored) and its rendering for the admin API,
 * which must honour the oneof detail (a union) whatever kind the device claims.
 */
#include "decode.h"
#include "srv.h"
#include "store.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	Corral__ReportBatch *b = NULL;
	if (srv_decode_report(data, size, SRV_REPORT_BODY_MAX_DEFAULT, SRV_REPORT_EVENTS_MAX, &b,
	                      &why) < 0)
		return 0;
	for (size_t i = 0; i < b->n_events; i++) {
		size_t len = corral__event__get_packed_size(b->events[i]);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf)
			break;
		corral__event__pack(b->events[i], buf);
		json_t *j = srv_event_json(buf, len);
		if (j) {
			char *s = json_dumps(j, JSON_COMPACT);
			free(s);
			json_decref(j);
		}
		free(buf);
	}
	corral__report_batch__free_unpacked(b, NULL);
	return 0;
}
