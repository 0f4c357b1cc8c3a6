// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: corrald's parser of kernel audit records (Landlock access and domain
 * records read from the audit netlink group) and the domain -> session mapping behind it.
 * The first input byte picks the record type (even: access 1423, odd: domain 1424; a multiple
 * of 16: another type), the rest is the record text. One reader lives across inputs with one
 * session whose creator is pid 7 running /x, so sequences of records reach the mapping too.
 */
#include "fsaudit.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard(void *userdata, Corral__Event *ev)
{
	(void)userdata;
	(void)ev;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cd_fsaudit *reader;
	static struct cd_fsaudit_record rec;
	if (size < 1)
		return 0;
	if (!reader) {
		struct cd_fsaudit_session s = {
		        .pid = 7, .session_id = "s", .user = "u", .profile = "p"};
		if (cd_fsaudit_new(CD_FSAUDIT_MODE_OFF, 7, "/x", NULL, discard, NULL, &reader) <
		            0 ||
		    cd_fsaudit_session_add(reader, &s) < 0)
			abort();
	}
	int type = data[0] % 16 == 0 ? 1300
	           : data[0] % 2     ? CD_FSAUDIT_TYPE_DOMAIN
	                             : CD_FSAUDIT_TYPE_ACCESS;
	const char *why = NULL;
	int r = cd_fsaudit_parse(type, data + 1, size - 1, &rec, &why);
	if (r < 0 && !why)
		abort(); /* every refusal names its reason */
	(void)cd_fsaudit_handle(reader, type, data + 1, size - 1);
	return 0;
}
