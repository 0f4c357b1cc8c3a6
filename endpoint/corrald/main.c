// SPDX-License-Identifier: Apache-2.0
/* corrald entry point (placeholder while the daemon is assembled). */
int main(void)
{
	return 0;
}
