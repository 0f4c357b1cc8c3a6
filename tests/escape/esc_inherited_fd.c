/* SPDX-License-Identifier: Apache-2.0 */
/* Escape class: a file descriptor inherited from the launcher (the runner leaks one opened on
 * the denied tree before spawning). Nothing beyond stdio may be open after exec. */
#include <fcntl.h>
#include <unistd.h>

#include "esc.h"

int main(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		char what[64];
		snprintf(what, sizeof(what), "inherited fd %d", fd);
		if (fcntl(fd, F_GETFD) >= 0)
			esc_expect(0, 0, 0, what);
	}
	if (!esc_status)
		printf("contained: no fd beyond stdio is open\n");
	return esc_status;
}
