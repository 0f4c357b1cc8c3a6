/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small simulated fleet for the console's tests, created through corral-server's real APIs:
 * groups, a trust root and two signed policy bundles (admin API), devices enrolled with
 * P-256 CSRs and reports of heartbeats, sessions, violations and a policy rejection (device
 * API, mTLS). Also starts and stops the server binary. Test code only.
 */
#pragma once

#include "https.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fleet_device {
	char name[32];
	char group[32];
	char id[64];
	char crt[640];
	char key[640];
};

#define FLEET_DEVICES 12

struct fleet {
	char dir[400];
	int pid;
	unsigned port;
	char admin[256];
	char viewer[256];
	struct fleet_device dev[FLEET_DEVICES];
	unsigned violations_total; /* violations reported */
};

/* Starts corral-server on 127.0.0.1:0 with its data in dir/data. 0 or -1. */
int fleet_server_start(struct fleet *f, const char *dir);
/* SIGTERM, then wait. Returns the exit status or -1. */
int fleet_server_stop(struct fleet *f);

/* One HTTPS request (bearer: admin token or NULL; dev: client certificate or NULL). */
int fleet_http(const struct fleet *f, const char *method, const char *path, const void *body,
               size_t len, const char *ctype, const struct fleet_device *dev, const char *bearer,
               struct th_response *out);
/* GET/POST JSON under /api/v1/; returns the status and *ret the parsed body (may be NULL). */
long fleet_api(const struct fleet *f, const char *method, const char *path, const char *json,
               const char *bearer, json_t **ret);

/* Creates the groups, trust root, bundles, devices and their reports described in fleet.c. */
int fleet_seed(struct fleet *f);
