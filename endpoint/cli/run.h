/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `corral run [--profile NAME] [--] COMMAND [ARG...]`: runs COMMAND in a sandbox session that
 * corrald starts for the caller (see run.c).
 */
#pragma once

/*
 * Runs the command; `argc`/`argv` are the arguments after "run". Returns the process exit
 * code: the session's exit status, 128 + signal when it was killed, 2 for usage errors and
 * refusals (no policy, profile not selectable), 126 when the session could not start (127
 * when the command was not found), 1 when corrald cannot be reached.
 */
int cli_run(const char *socket_path, int argc, char **argv);
