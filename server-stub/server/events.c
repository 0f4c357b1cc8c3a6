// SPDX-License-Identifier: Apache-2.0
/*
 * Renders stored device events (serialized corral.Event) as the admin API's JSON. Shared by
 * every storage backend so the API shape does not depend on the database.
 */
#include "store.h"

#include <string.h>

static const char *kind_name(Corral__EventKind k)
{
	const ProtobufCEnumValue *v =
	        protobuf_c_enum_descriptor_get_value(&corral__event_kind__descriptor, (int)k);
	return v ? v->name : "EVENT_KIND_UNKNOWN";
}

static json_t *violation_json(const Corral__Violation *v)
{
	const ProtobufCEnumValue *k =
	        protobuf_c_enum_descriptor_get_value(&corral__violation_kind__descriptor, v->kind);
	return json_pack("{ss si ss ss ss sb si}", "kind", k ? k->name : "?", "pid", (int)v->pid,
	                 "comm", v->comm, "target", v->target, "detail", v->detail, "audit_only",
	                 v->audit_only, "suppressed", (int)v->suppressed);
}

json_t *srv_event_json(const uint8_t *buf, size_t len)
{
	Corral__Event *ev = corral__event__unpack(NULL, len, buf);
	if (!ev)
		return NULL;
	json_t *o = json_pack("{sI sI ss ss si ss ss sI}", "seq", (json_int_t)ev->seq, "time_ms",
	                      (json_int_t)ev->time_ms, "kind", kind_name(ev->kind), "session_id",
	                      ev->session_id, "uid", (int)ev->uid, "user", ev->user, "profile",
	                      ev->profile, "policy_version", (json_int_t)ev->policy_version);
	if (o) {
		json_t *d = NULL;
		/* The detail members share a union: only the one named by detail_case exists. */
		switch (ev->detail_case) {
		case CORRAL__EVENT__DETAIL_VIOLATION:
			d = violation_json(ev->violation);
			break;
		case CORRAL__EVENT__DETAIL_POLICY_APPLIED:
			d = json_pack("{sI}", "version", (json_int_t)ev->policy_applied->version);
			break;
		case CORRAL__EVENT__DETAIL_POLICY_REJECTED:
			d = json_pack("{ss ss sI}", "reason", ev->policy_rejected->reason, "detail",
			              ev->policy_rejected->detail, "version",
			              (json_int_t)ev->policy_rejected->version);
			break;
		case CORRAL__EVENT__DETAIL_HEARTBEAT:
			d = json_pack("{sI si sI ss}", "policy_version",
			              (json_int_t)ev->heartbeat->policy_version, "freshness",
			              (int)ev->heartbeat->freshness, "trust_root_version",
			              (json_int_t)ev->heartbeat->trust_root_version,
			              "agent_version", ev->heartbeat->agent_version);
			break;
		case CORRAL__EVENT__DETAIL_SESSION_EXIT:
			d = json_pack("{si si sI}", "exit_status", ev->session_exit->exit_status,
			              "term_signal", ev->session_exit->term_signal, "duration_ms",
			              (json_int_t)ev->session_exit->duration_ms);
			break;
		case CORRAL__EVENT__DETAIL_AGENT_HEALTH:
			d = json_pack("{ss ss}", "state", ev->agent_health->state, "detail",
			              ev->agent_health->detail);
			break;
		default:
			break;
		}
		if (d)
			json_object_set_new(o, "detail", d);
	}
	corral__event__free_unpacked(ev, NULL);
	return o;
}
