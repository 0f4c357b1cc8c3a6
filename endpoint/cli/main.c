// SPDX-License-Identifier: Apache-2.0
/*
 * corral: the local command-line interface to corrald. Finds the daemon at --socket PATH,
 * $CORRAL_SOCKET or the default /run/corral/corrald.sock; every command is one IpcRequest and
 * one IpcResponse on a SOCK_SEQPACKET connection. Policy files travel as a descriptor
 * (SCM_RIGHTS): the daemon reads them with its own size cap and never opens a path the caller
 * names. Output is for people by default and JSON with --json.
 */
#include "cleanup.h"
#include "ipc.h"
#include "util.h"

#include "corral_version.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <corral.pb-c.h>
#include <jansson.h>

#define DEFAULT_SOCKET "/run/corral/corrald.sock"

static const char *socket_path = NULL;

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: corral [--socket PATH] COMMAND [OPTIONS]\n\n"
	        "Commands:\n"
	        "  status [--json]            enrollment, policy version and freshness, outbox\n"
	        "  events [--json] [--limit N] most recent events (newest first)\n"
	        "  policy show [--json]       the policy in force, its version, expiry, signers\n"
	        "  policy apply FILE          apply a signed policy bundle (root only)\n"
	        "  flush                      upload pending events now (root only)\n"
	        "  run -- COMMAND...          run an agent in its sandbox\n\n"
	        "The daemon socket is --socket PATH, else $CORRAL_SOCKET, else %s.\n",
	        DEFAULT_SOCKET);
}

static const char *freshness_name(Corral__Freshness f)
{
	switch (f) {
	case CORRAL__FRESHNESS__FRESHNESS_FRESH:
		return "fresh";
	case CORRAL__FRESHNESS__FRESHNESS_STALE:
		return "stale";
	case CORRAL__FRESHNESS__FRESHNESS_NO_POLICY:
		return "no-policy";
	default:
		return "unknown";
	}
}

static const char *kind_name(Corral__EventKind k)
{
	const ProtobufCEnumValue *v =
	        protobuf_c_enum_descriptor_get_value(&corral__event_kind__descriptor, (int)k);
	return v ? v->name + strlen("EVENT_KIND_") : "UNKNOWN";
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	if (t <= 0)
		snprintf(buf, len, "never");
	else
		util_format_rfc3339(t, buf, len);
}

/* Sends `rq` (with an optional descriptor) and returns the unpacked response, or NULL after
 * printing why. */
static Corral__IpcResponse *call(Corral__IpcRequest *rq, int fd)
{
	int s = cd_ipc_connect(socket_path);
	if (s < 0) {
		if (s == -ENOENT || s == -ECONNREFUSED)
			fprintf(stderr,
			        "corral: corrald is not running (no daemon at %s).\n"
			        "Start it (systemctl start corrald) or point --socket / "
			        "CORRAL_SOCKET at it.\n",
			        socket_path);
		else
			fprintf(stderr, "corral: cannot connect to %s: %s\n", socket_path,
			        strerror(-s));
		return NULL;
	}
	int r = cd_ipc_send(s, &rq->base, CD_IPC_FRAME_MAX, fd >= 0 ? &fd : NULL, fd >= 0);
	if (r < 0) {
		fprintf(stderr, "corral: send: %s\n", strerror(-r));
		close(s);
		return NULL;
	}
	_cleanup_free_ uint8_t *buf = NULL;
	ssize_t n = cd_ipc_recv(s, CD_IPC_FRAME_MAX, &buf, NULL, 0, NULL);
	close(s);
	if (n <= 0) {
		fprintf(stderr, "corral: no answer from corrald (%s)\n",
		        n == 0 ? "connection closed" : strerror((int)-n));
		return NULL;
	}
	Corral__IpcResponse *resp = corral__ipc_response__unpack(NULL, (size_t)n, buf);
	if (!resp) {
		fprintf(stderr, "corral: malformed answer from corrald\n");
		return NULL;
	}
	if (resp->body_case == CORRAL__IPC_RESPONSE__BODY_ERROR) {
		fprintf(stderr, "corral: %s\n", resp->error->message);
		corral__ipc_response__free_unpacked(resp, NULL);
		return NULL;
	}
	return resp;
}

static json_t *features_json(const Corral__KernelFeatures *f)
{
	if (!f)
		return json_null();
	json_t *ctl = json_array();
	for (size_t i = 0; i < f->n_cgroup_controllers; i++)
		json_array_append_new(ctl, json_string(f->cgroup_controllers[i]));
	return json_pack("{s:i, s:b, s:b, s:b, s:b, s:b, s:b, s:o}", "landlock_abi",
	                 (int)f->landlock_abi, "seccomp", f->seccomp, "seccomp_user_notify",
	                 f->seccomp_user_notify, "cgroup_v2", f->cgroup_v2, "cgroup_v1_fallback",
	                 f->cgroup_v1_fallback, "bpf_cgroup", f->bpf_cgroup, "user_namespaces",
	                 f->user_namespaces, "cgroup_controllers", ctl);
}

static json_t *strings_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static int cmd_status(bool as_json)
{
	Corral__StatusRequest sr = CORRAL__STATUS_REQUEST__INIT;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_STATUS;
	rq.status = &sr;
	Corral__IpcResponse *resp = call(&rq, -1);
	if (!resp)
		return 1;
	if (resp->body_case != CORRAL__IPC_RESPONSE__BODY_STATUS) {
		fprintf(stderr, "corral: unexpected answer\n");
		corral__ipc_response__free_unpacked(resp, NULL);
		return 1;
	}
	Corral__StatusResponse *s = resp->status;
	int rc = 0;
	if (as_json) {
		json_t *j = json_pack(
		        "{s:b, s:b, s:s, s:s, s:o, s:I, s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:s, "
		        "s:I, s:o}",
		        "enrolled", s->enrolled, "offline", s->offline, "device_id", s->device_id,
		        "server_url", s->server_url, "groups", strings_json(s->groups, s->n_groups),
		        "policy_version", (json_int_t)s->policy_version, "freshness",
		        freshness_name(s->freshness), "policy_expires_at",
		        (json_int_t)s->policy_expires_at, "last_sync_ms",
		        (json_int_t)s->last_sync_ms, "outbox_depth", (json_int_t)s->outbox_depth,
		        "enforced", features_json(s->enforced), "trust_root_version",
		        (json_int_t)s->trust_root_version, "trust_root_expires_at",
		        (json_int_t)s->trust_root_expires_at, "agent_version", s->agent_version,
		        "certificate_expires_at", (json_int_t)s->certificate_expires_at,
		        "signer_key_ids", strings_json(s->signer_key_ids, s->n_signer_key_ids));
		rc = print_json(j);
	} else {
		char t1[32], t2[32], t3[32];
		fmt_time(s->policy_expires_at, t1, sizeof(t1));
		fmt_time(s->last_sync_ms / 1000, t2, sizeof(t2));
		fmt_time(s->certificate_expires_at, t3, sizeof(t3));
		printf("corrald %s\n", s->agent_version);
		if (s->offline)
			printf("mode:          offline (policy from `corral policy apply`)\n");
		else
			printf("enrolled:      %s\nserver:        %s\n", s->enrolled ? "yes" : "no",
			       s->server_url);
		printf("device id:     %s\n", *s->device_id ? s->device_id : "-");
		printf("groups:        ");
		for (size_t i = 0; i < s->n_groups; i++)
			printf("%s%s", i ? ", " : "", s->groups[i]);
		printf("%s\n", s->n_groups ? "" : "-");
		printf("policy:        version %" PRIu64 ", %s, expires %s\n", s->policy_version,
		       freshness_name(s->freshness), t1);
		printf("trust root:    version %" PRIu64 "\n", s->trust_root_version);
		if (!s->offline)
			printf("last sync:     %s\ncertificate:   expires %s\n", t2, t3);
		printf("outbox:        %" PRIu64 " events pending\n", s->outbox_depth);
		const Corral__KernelFeatures *f = s->enforced;
		if (f) {
			printf("kernel:        landlock abi %u, seccomp %s%s, cgroup %s",
			       f->landlock_abi, f->seccomp ? "yes" : "no",
			       f->seccomp_user_notify ? " (notify)" : "",
			       f->cgroup_v2 ? "v2" : "v1");
			for (size_t i = 0; i < f->n_cgroup_controllers; i++)
				printf("%s%s", i ? "," : " [", f->cgroup_controllers[i]);
			printf("%s, bpf %s, userns %s\n", f->n_cgroup_controllers ? "]" : "",
			       f->bpf_cgroup ? "yes" : "no", f->user_namespaces ? "yes" : "no");
		}
	}
	corral__ipc_response__free_unpacked(resp, NULL);
	return rc;
}

static void event_summary(const Corral__Event *e, char *buf, size_t len)
{
	switch (e->detail_case) {
	case CORRAL__EVENT__DETAIL_VIOLATION:
		snprintf(buf, len, "%s %s", e->violation->target, e->violation->detail);
		break;
	case CORRAL__EVENT__DETAIL_POLICY_APPLIED:
		snprintf(buf, len, "version %" PRIu64, e->policy_applied->version);
		break;
	case CORRAL__EVENT__DETAIL_POLICY_REJECTED:
		snprintf(buf, len, "%s: %s", e->policy_rejected->reason,
		         e->policy_rejected->detail);
		break;
	case CORRAL__EVENT__DETAIL_HEARTBEAT:
		snprintf(buf, len, "policy %" PRIu64 " %s, outbox %" PRIu64,
		         e->heartbeat->policy_version, freshness_name(e->heartbeat->freshness),
		         e->heartbeat->outbox_depth);
		break;
	case CORRAL__EVENT__DETAIL_AGENT_HEALTH:
		snprintf(buf, len, "%s %s", e->agent_health->state, e->agent_health->detail);
		break;
	case CORRAL__EVENT__DETAIL_DROPPED:
		snprintf(buf, len,
		         "heartbeats %" PRIu64 ", sessions %" PRIu64 ", violations %" PRIu64
		         ", other %" PRIu64,
		         e->dropped->heartbeats, e->dropped->sessions, e->dropped->violations,
		         e->dropped->other);
		break;
	default:
		snprintf(buf, len, "%s", "");
	}
}

static int cmd_events(bool as_json, uint32_t limit)
{
	Corral__EventsRequest er = CORRAL__EVENTS_REQUEST__INIT;
	er.limit = limit;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_EVENTS;
	rq.events = &er;
	Corral__IpcResponse *resp = call(&rq, -1);
	if (!resp)
		return 1;
	if (resp->body_case != CORRAL__IPC_RESPONSE__BODY_EVENTS) {
		corral__ipc_response__free_unpacked(resp, NULL);
		return 1;
	}
	Corral__EventsResponse *r = resp->events;
	int rc = 0;
	if (as_json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < r->n_events; i++) {
			const Corral__Event *e = r->events[i];
			char sum[512];
			event_summary(e, sum, sizeof(sum));
			json_array_append_new(arr, json_pack("{s:I, s:I, s:s, s:I, s:s}", "seq",
			                                     (json_int_t)e->seq, "time_ms",
			                                     (json_int_t)e->time_ms, "kind",
			                                     kind_name(e->kind), "policy_version",
			                                     (json_int_t)e->policy_version,
			                                     "summary", sum));
		}
		rc = print_json(
		        json_pack("{s:I, s:o}", "pending", (json_int_t)r->pending, "events", arr));
	} else {
		printf("%-8s %-20s %-22s %s\n", "SEQ", "TIME", "KIND", "DETAIL");
		for (size_t i = 0; i < r->n_events; i++) {
			const Corral__Event *e = r->events[i];
			char t[32], sum[512];
			fmt_time(e->time_ms / 1000, t, sizeof(t));
			event_summary(e, sum, sizeof(sum));
			printf("%-8" PRIu64 " %-20s %-22s %s\n", e->seq, t, kind_name(e->kind),
			       sum);
		}
		printf("(%" PRIu64 " pending upload)\n", r->pending);
	}
	corral__ipc_response__free_unpacked(resp, NULL);
	return rc;
}

static int cmd_policy_apply(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "corral: %s: %s\n", path, strerror(errno));
		return 1;
	}
	Corral__PolicyApplyRequest pa = CORRAL__POLICY_APPLY_REQUEST__INIT;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_POLICY_APPLY;
	rq.policy_apply = &pa;
	Corral__IpcResponse *resp = call(&rq, fd);
	close(fd);
	if (!resp)
		return 1;
	int rc = 1;
	if (resp->body_case == CORRAL__IPC_RESPONSE__BODY_POLICY_APPLY) {
		Corral__PolicyApplyResponse *r = resp->policy_apply;
		if (r->applied) {
			printf("applied: version %" PRIu64 "\n", r->version);
			rc = 0;
		} else {
			printf("rejected: %s: %s\n", r->reason, r->detail);
		}
	}
	corral__ipc_response__free_unpacked(resp, NULL);
	return rc;
}

static int cmd_policy_show(bool as_json)
{
	Corral__PolicyShowRequest ps = CORRAL__POLICY_SHOW_REQUEST__INIT;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_POLICY_SHOW;
	rq.policy_show = &ps;
	Corral__IpcResponse *resp = call(&rq, -1);
	if (!resp)
		return 1;
	if (resp->body_case != CORRAL__IPC_RESPONSE__BODY_POLICY_SHOW) {
		corral__ipc_response__free_unpacked(resp, NULL);
		return 1;
	}
	Corral__PolicyShowResponse *s = resp->policy_show;
	int rc = 0;
	if (as_json) {
		json_t *profiles = json_array();
		if (s->policy)
			for (size_t i = 0; i < s->policy->n_profiles; i++)
				json_array_append_new(profiles,
				                      json_string(s->policy->profiles[i]->name));
		json_t *src = NULL;
		if (s->source_json && *s->source_json)
			src = json_loads(s->source_json, 0, NULL);
		rc = print_json(json_pack(
		        "{s:b, s:I, s:I, s:s, s:o, s:s, s:o, s:o}", "present", s->present,
		        "version", (json_int_t)s->version, "expires_at", (json_int_t)s->expires_at,
		        "freshness", freshness_name(s->freshness), "signer_key_ids",
		        strings_json(s->signer_key_ids, s->n_signer_key_ids), "name",
		        s->policy && s->policy->name ? s->policy->name : "", "profiles", profiles,
		        "source", src ? src : json_null()));
	} else if (!s->present) {
		printf("no policy applied (freshness: %s)\n", freshness_name(s->freshness));
	} else {
		char t[32];
		fmt_time(s->expires_at, t, sizeof(t));
		printf("policy:     %s\nversion:    %" PRIu64 "\nexpires:    %s\nfreshness:  %s\n",
		       s->policy && s->policy->name ? s->policy->name : "-", s->version, t,
		       freshness_name(s->freshness));
		for (size_t i = 0; i < s->n_signer_key_ids; i++)
			printf("%s %s\n", i ? "           " : "signed by: ", s->signer_key_ids[i]);
		if (s->policy) {
			printf("profiles:  ");
			for (size_t i = 0; i < s->policy->n_profiles; i++)
				printf(" %s%s", s->policy->profiles[i]->name,
				       s->policy->default_profile &&
				                       strcmp(s->policy->default_profile,
				                              s->policy->profiles[i]->name) == 0
				               ? " (default)"
				               : "");
			printf("\n");
		}
		if (s->source_json && *s->source_json)
			printf("\n%s\n", s->source_json);
	}
	corral__ipc_response__free_unpacked(resp, NULL);
	return rc;
}

static int cmd_flush(void)
{
	Corral__FlushRequest fr = CORRAL__FLUSH_REQUEST__INIT;
	Corral__IpcRequest rq = CORRAL__IPC_REQUEST__INIT;
	rq.body_case = CORRAL__IPC_REQUEST__BODY_FLUSH;
	rq.flush = &fr;
	Corral__IpcResponse *resp = call(&rq, -1);
	if (!resp)
		return 1;
	if (resp->body_case == CORRAL__IPC_RESPONSE__BODY_FLUSH)
		printf("upload started: %" PRIu64 " events pending, acknowledged up to %" PRIu64
		       "\n",
		       resp->flush->pending, resp->flush->acked_seq);
	corral__ipc_response__free_unpacked(resp, NULL);
	return 0;
}

static bool has_flag(int argc, char **argv, const char *flag)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], flag) == 0)
			return true;
	return false;
}

static int unknown_args(int argc, char **argv, const char *const *allowed)
{
	for (int i = 0; i < argc; i++) {
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(argv[i], *a) == 0;
		if (!ok) {
			fprintf(stderr, "corral: unexpected argument '%s' (see --help)\n", argv[i]);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("corral %s\n", CORRAL_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			socket_path = argv[++i];
			continue;
		}
		fprintf(stderr, "corral: unknown option '%s' (see --help)\n", argv[i]);
		return 2;
	}
	if (!socket_path)
		socket_path = getenv("CORRAL_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = DEFAULT_SOCKET;
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i++];
	int rest_c = argc - i;
	char **rest = argv + i;
	if (has_flag(rest_c, rest, "--help") || has_flag(rest_c, rest, "-h")) {
		usage(stdout);
		return 0;
	}
	bool as_json = has_flag(rest_c, rest, "--json");
	if (strcmp(cmd, "status") == 0) {
		static const char *const ok[] = {"--json", NULL};
		return unknown_args(rest_c, rest, ok) ? 2 : cmd_status(as_json);
	}
	if (strcmp(cmd, "events") == 0) {
		uint64_t limit = 20;
		for (int k = 0; k < rest_c; k++) {
			if (strcmp(rest[k], "--json") == 0)
				continue;
			if (strcmp(rest[k], "--limit") == 0 && k + 1 < rest_c &&
			    util_parse_u64(rest[k + 1], &limit) == 0 && limit > 0 && limit <= 200) {
				k++;
				continue;
			}
			fprintf(stderr, "corral: events [--json] [--limit 1-200]\n");
			return 2;
		}
		return cmd_events(as_json, (uint32_t)limit);
	}
	if (strcmp(cmd, "policy") == 0 && rest_c >= 1) {
		if (strcmp(rest[0], "apply") == 0 && rest_c == 2)
			return cmd_policy_apply(rest[1]);
		if (strcmp(rest[0], "show") == 0) {
			static const char *const ok[] = {"--json", NULL};
			return unknown_args(rest_c - 1, rest + 1, ok) ? 2
			                                              : cmd_policy_show(as_json);
		}
		fprintf(stderr, "corral: policy apply FILE | policy show [--json]\n");
		return 2;
	}
	if (strcmp(cmd, "flush") == 0)
		return rest_c ? 2 : cmd_flush();
	if (strcmp(cmd, "run") == 0) {
		fprintf(stderr, "corral: run is not available in this build yet\n");
		return 2;
	}
	fprintf(stderr, "corral: unknown command '%s' (see --help)\n", cmd);
	return 2;
}
