#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The demo "agent": runs inside `corral run` and tries, in order, things a coding agent might do,
# some allowed by strict-coding-agent.json and some not. Prints "action|expected|result".
try() { # try ACTION EXPECTED COMMAND...
	local action=$1 expected=$2
	shift 2
	if "$@" >/dev/null 2>&1; then r=allowed; else r=denied; fi
	echo "$action|$expected|$r"
}
try "read a file in the workdir" allowed cat ./README
try "write the workdir" allowed sh -c 'echo result > ./out.txt'
try "read ~/.ssh/id_ed25519" denied cat "$HOME/.ssh/id_ed25519"
try "write /etc" denied sh -c 'echo x > /etc/corral-demo'
try "write ~/.bashrc (outside the workdir)" denied sh -c 'echo x >> "$HOME/.bashrc"'
try "fetch https://allowed.test/ (via proxy)" allowed curl -sfk --max-time 5 -o /dev/null https://allowed.test/
try "fetch https://evil.test/ (via proxy)" denied curl -sfk --max-time 5 -o /dev/null https://evil.test/
try "connect to 192.0.2.20:443 directly" denied curl -sfk --max-time 5 --noproxy '*' -o /dev/null https://192.0.2.20/
# A real DNS query (A evil.test) straight to the lab's resolver: exfiltration through DNS.
dns_query() { printf '\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04evil\x04test\x00\x00\x01\x00\x01' >/dev/udp/192.0.2.53/53; }
try "DNS query to 192.0.2.53 for evil.test" denied dns_query
try "io_uring_setup" denied /usr/local/libexec/corral-demo-io-uring
