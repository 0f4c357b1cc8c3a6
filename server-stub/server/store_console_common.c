// SPDX-License-Identifier: Apache-2.0
/*
 * What the SQLite and PostgreSQL console backends share (store_console.h): the device state
 * classifier, the device JSON built from plain values and the overview's per-group tallies.
 * Keeping them here is what makes both backends answer the console with the same JSON; the
 * backends only read rows and hand the values over.
 */
#include "store_console.h"

#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[SRV_CONSOLE_STATES] = {
        "revoked", "not-seen",    "pending",  "failing",
        "stale",   "out-of-date", "degraded", "compliant",
};

const char *srv_console_state_name(enum srv_console_state state)
{
	return (unsigned)state < SRV_CONSOLE_STATES ? state_names[state] : "compliant";
}

enum srv_console_state srv_console_classify(bool revoked, bool not_seen, bool pending, bool failing,
                                            bool stale, bool out_of_date, bool degraded)
{
	return revoked       ? SRV_CONSOLE_REVOKED
	       : not_seen    ? SRV_CONSOLE_NOT_SEEN
	       : pending     ? SRV_CONSOLE_PENDING
	       : failing     ? SRV_CONSOLE_FAILING
	       : stale       ? SRV_CONSOLE_STALE
	       : out_of_date ? SRV_CONSOLE_OUT_OF_DATE
	       : degraded    ? SRV_CONSOLE_DEGRADED
	                     : SRV_CONSOLE_COMPLIANT;
}

static const char *s_or_empty(const char *s)
{
	return s ? s : "";
}

json_t *srv_console_device_json(const struct srv_console_device_row *d)
{
	static const char *const freshness[] = {"unknown", "fresh", "stale", "no-policy"};
	json_t *o = json_pack(
	        "{ss ss ss ss sI sI sb sI sI sI sI sI ss ss ss sI sI ss}", "device_id",
	        s_or_empty(d->device_id), "group", s_or_empty(d->group), "hostname",
	        s_or_empty(d->hostname), "agent_version", s_or_empty(d->agent_version),
	        "enrolled_at", (json_int_t)d->enrolled_at, "cert_expires_at",
	        (json_int_t)d->cert_expires_at, "revoked", d->revoked, "acked_seq",
	        (json_int_t)d->acked_seq, "last_seen", (json_int_t)d->last_seen, "heartbeat_at",
	        (json_int_t)d->heartbeat_at, "policy_version", (json_int_t)d->policy_version,
	        "trust_root_version", (json_int_t)d->trust_root_version, "freshness",
	        d->freshness >= 0 && d->freshness < 4 ? freshness[d->freshness] : "unknown",
	        "kernel_release", s_or_empty(d->kernel_release), "cert_serial",
	        s_or_empty(d->cert_serial), "head_version", (json_int_t)d->head_version,
	        "violations", (json_int_t)d->violations, "state", s_or_empty(d->state));
	if (!o)
		return NULL;
	json_object_set_new(o, "features_missing", json_string(s_or_empty(d->features_missing)));
	if (d->revoked)
		json_object_set_new(o, "revoked_at", json_integer(d->revoked_at));
	if (d->reject_version > 0)
		json_object_set_new(o, "reject",
		                    json_pack("{sI ss sI}", "version",
		                              (json_int_t)d->reject_version, "reason",
		                              s_or_empty(d->reject_reason), "time_ms",
		                              (json_int_t)d->reject_ms));
	const char *texts[2] = {d->features_requested, d->features_enforced};
	const char *names[2] = {"features_requested", "features_enforced"};
	for (int i = 0; i < 2; i++) {
		json_t *feat = json_loads(s_or_empty(texts[i]), 0, NULL);
		json_object_set_new(o, names[i], feat ? feat : json_null());
	}
	return o;
}

/* ---- overview tallies (groups and versions are few: plain arrays) ------------------------- */

struct ov_version {
	int64_t version, n;
};

struct ov_group {
	char name[SRV_ID_MAX];
	int64_t head, devices;
	struct ov_version *v;
	size_t nv;
};

struct srv_console_overview {
	struct ov_group *g;
	size_t n;
	int64_t counts[SRV_CONSOLE_STATES], total, degraded;
};

int srv_console_overview_new(struct srv_console_overview **ret)
{
	struct srv_console_overview *ov = calloc(1, sizeof(*ov));
	if (!ov)
		return -ENOMEM;
	*ret = ov;
	return 0;
}

void srv_console_overview_free(struct srv_console_overview *ov)
{
	if (!ov)
		return;
	for (size_t i = 0; i < ov->n; i++)
		free(ov->g[i].v);
	free(ov->g);
	free(ov);
}

static struct ov_group *ov_group(struct srv_console_overview *ov, const char *name, int64_t head)
{
	for (size_t i = 0; i < ov->n; i++)
		if (strcmp(ov->g[i].name, name) == 0)
			return &ov->g[i];
	struct ov_group *ng = realloc(ov->g, (ov->n + 1) * sizeof(*ng));
	if (!ng)
		return NULL;
	ov->g = ng;
	struct ov_group *g = &ov->g[ov->n++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->head = head;
	return g;
}

int srv_console_overview_group(struct srv_console_overview *ov, const char *group, int64_t head)
{
	return ov_group(ov, s_or_empty(group), head) ? 0 : -ENOMEM;
}

static int ov_count(struct ov_group *g, int64_t version)
{
	size_t i = 0;
	while (i < g->nv && g->v[i].version < version)
		i++;
	if (i == g->nv || g->v[i].version != version) {
		/* Insert, keeping versions ascending. */
		struct ov_version *nv = realloc(g->v, (g->nv + 1) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		g->v = nv;
		memmove(&g->v[i + 1], &g->v[i], (g->nv - i) * sizeof(*nv));
		g->v[i] = (struct ov_version){version, 0};
		g->nv++;
	}
	g->v[i].n++;
	g->devices++;
	return 0;
}

int srv_console_overview_device(struct srv_console_overview *ov, const char *group,
                                int64_t policy_version, bool revoked, bool not_seen, bool pending,
                                bool failing, bool stale, bool degraded)
{
	struct ov_group *grp = ov_group(ov, s_or_empty(group), 0);
	if (!grp)
		return -ENOMEM;
	enum srv_console_state state = srv_console_classify(
	        revoked, not_seen, pending, failing, stale, policy_version < grp->head, degraded);
	ov->counts[state]++;
	ov->total++;
	/* Revoked devices enforce nothing any more: not part of the rollout picture. */
	if (revoked)
		return 0;
	if (degraded)
		ov->degraded++;
	return ov_count(grp, policy_version);
}

json_t *srv_console_overview_json(const struct srv_console_overview *ov)
{
	json_t *out = json_pack("{so s[] s[] sI sI}", "states", json_object(), "groups", "degraded",
	                        "degraded_total", (json_int_t)ov->degraded, "devices_total",
	                        (json_int_t)ov->total);
	if (!out)
		return NULL;
	json_t *states = json_object_get(out, "states"), *groups = json_object_get(out, "groups");
	/* Fixed order, for readers that show them in the order received. */
	static const enum srv_console_state order[SRV_CONSOLE_STATES] = {
	        SRV_CONSOLE_COMPLIANT, SRV_CONSOLE_DEGRADED, SRV_CONSOLE_OUT_OF_DATE,
	        SRV_CONSOLE_STALE,     SRV_CONSOLE_FAILING,  SRV_CONSOLE_PENDING,
	        SRV_CONSOLE_NOT_SEEN,  SRV_CONSOLE_REVOKED};
	for (size_t i = 0; i < SRV_CONSOLE_STATES; i++)
		json_object_set_new(states, state_names[order[i]],
		                    json_integer(ov->counts[order[i]]));
	for (size_t i = 0; i < ov->n; i++) {
		const struct ov_group *g = &ov->g[i];
		json_t *vers = json_array();
		for (size_t k = 0; k < g->nv; k++)
			json_array_append_new(vers, json_pack("{sI sI}", "version",
			                                      (json_int_t)g->v[k].version,
			                                      "devices", (json_int_t)g->v[k].n));
		json_array_append_new(groups,
		                      json_pack("{ss sI so sI}", "group", g->name, "head_version",
		                                (json_int_t)g->head, "versions", vers, "devices",
		                                (json_int_t)g->devices));
	}
	return out;
}

const char *srv_console_vkind_name(int k)
{
	const ProtobufCEnumValue *v =
	        protobuf_c_enum_descriptor_get_value(&corral__violation_kind__descriptor, k);
	return v ? v->name : "VIOLATION_KIND_UNKNOWN";
}
