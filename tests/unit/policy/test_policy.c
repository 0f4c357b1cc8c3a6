// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for lib/policy: the compiler on every field (values, defaults, normalisation) and
 * every error path (JSON pointer and reason), the reference examples, the size caps, the
 * compact source helper, and the linter on every finding code (and on the cases that must not
 * produce one).
 *
 * JSON in the tables is written with single quotes and converted, so it stays readable.
 */
#include "harness.h"
#include "policy.h"
#include "policy-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

/* A document with one profile "p" whose body is `body`. */
#define P(body) "{'name':'t','default_profile':'p','profiles':{'p':{" body "}}}"

static char *dq(const char *s)
{
	char *d = strdup(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	for (char *c = d; *c; c++)
		if (*c == '\'')
			*c = '"';
	return d;
}

static int compile_q(const char *single_quoted, Corral__Policy **ret, struct policy_error *err)
{
	_cleanup_free_ char *json = dq(single_quoted);
	return policy_compile(json, strlen(json), ret, err);
}

static Corral__Policy *compile_ok(const char *single_quoted)
{
	Corral__Policy *p = NULL;
	struct policy_error err;
	int r = compile_q(single_quoted, &p, &err);
	if (r < 0)
		fprintf(stderr, "unexpected error: %s: %s\n", err.pointer, err.reason);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	return p;
}

static const Corral__Profile *only(const Corral__Policy *p)
{
	CU_ASSERT_EQUAL_FATAL(p->n_profiles, 1);
	return p->profiles[0];
}

static Corral__Policy *example(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/schema/examples/%s", harness_source_dir(), name);
	Corral__Policy *p = NULL;
	struct policy_error err;
	int r = policy_compile_file(path, &p, &err);
	if (r < 0)
		fprintf(stderr, "%s: %s: %s\n", path, err.pointer, err.reason);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	return p;
}

/* ---- reference examples -------------------------------------------------------------------- */

static void test_example_strict(void)
{
	Corral__Policy *p = example("strict-coding-agent.json");
	CU_ASSERT_STRING_EQUAL(p->name, "strict-coding-agent");
	CU_ASSERT_STRING_EQUAL(p->default_profile, "coding-agent");
	CU_ASSERT_EQUAL(p->n_user_selectable, 1);
	const Corral__Profile *c = policy_find_profile(p, "coding-agent");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->mode, CORRAL__MODE__MODE_ENFORCE);
	CU_ASSERT_TRUE(c->production);
	bool home_read = false, ssh_denied = false, workdir_write = false, tmp_write = false;
	for (size_t i = 0; i < c->filesystem->n_read; i++)
		home_read |= strcmp(c->filesystem->read[i], "${HOME}") == 0;
	for (size_t i = 0; i < c->filesystem->n_deny; i++)
		ssh_denied |= strcmp(c->filesystem->deny[i], "${HOME}/.ssh") == 0;
	for (size_t i = 0; i < c->filesystem->n_write; i++) {
		workdir_write |= strcmp(c->filesystem->write[i], "${WORKDIR}") == 0;
		tmp_write |= strcmp(c->filesystem->write[i], "${TMP}") == 0;
	}
	CU_ASSERT_TRUE(home_read && ssh_denied && workdir_write && tmp_write);
	const Corral__NetworkRules *n = c->network;
	CU_ASSERT_FALSE(n->default_allow);
	CU_ASSERT_EQUAL_FATAL(n->n_allow, 1);
	CU_ASSERT_STRING_EQUAL(n->allow[0]->cidr, "192.0.2.10/32");
	CU_ASSERT_EQUAL(n->allow[0]->port_min, 8080);
	CU_ASSERT_EQUAL(n->allow[0]->port_max, 8080);
	CU_ASSERT_EQUAL(n->allow[0]->protocol, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_EQUAL_FATAL(n->n_hosts, 2);
	CU_ASSERT_STRING_EQUAL(n->hosts[0]->host, "allowed.test");
	CU_ASSERT_EQUAL(n->hosts[0]->port, 443);
	CU_ASSERT_STRING_EQUAL(n->hosts[1]->host, "api.github.com");
	CU_ASSERT_EQUAL(n->dns, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_FALSE(c->syscalls->baseline_disabled);
	CU_ASSERT_EQUAL(c->syscalls->action, CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO);
	CU_ASSERT_EQUAL(c->resources->memory_max_bytes, 1ULL << 30);
	CU_ASSERT_EQUAL(c->resources->pids_max, 256);
	CU_ASSERT_EQUAL(c->resources->cpu_max_percent, 200);
	CU_ASSERT_STRING_EQUAL(c->process->run_as, "");
	CU_ASSERT_EQUAL(c->process->isolation, CORRAL__ISOLATION__ISOLATION_PROCESS);
	CU_ASSERT_EQUAL(c->requires->landlock_abi, 4);
	CU_ASSERT_TRUE(c->requires->seccomp);
	CU_ASSERT_FALSE(c->degrade->network_to_landlock_ports);

	struct policy_findings f = {0};
	CU_ASSERT_EQUAL(policy_lint(p, &f), 0);
	for (size_t i = 0; i < f.count; i++)
		fprintf(stderr, "unexpected finding %s %s\n", f.items[i].code, f.items[i].pointer);
	policy_findings_free(&f);
	corral__policy__free_unpacked(p, NULL);
}

static void test_example_research(void)
{
	Corral__Policy *p = example("research-agent.json");
	CU_ASSERT_EQUAL_FATAL(p->n_profiles, 2);
	/* Document order is kept. */
	CU_ASSERT_STRING_EQUAL(p->profiles[0]->name, "research-agent");
	CU_ASSERT_STRING_EQUAL(p->profiles[1]->name, "offline");
	const Corral__Profile *r = p->profiles[0];
	CU_ASSERT_EQUAL(r->network->dns, CORRAL__DNS_MODE__DNS_FILTERED);
	CU_ASSERT_EQUAL(r->process->isolation, CORRAL__ISOLATION__ISOLATION_NAMESPACE);
	CU_ASSERT_EQUAL(r->requires->n_cgroup_controllers, 2);
	CU_ASSERT_TRUE(r->requires->bpf_network);
	bool wildcard = false;
	for (size_t i = 0; i < r->network->n_hosts; i++)
		wildcard |= strcmp(r->network->hosts[i]->host, "*.wikipedia.org") == 0;
	CU_ASSERT_TRUE(wildcard);
	struct policy_findings f = {0};
	CU_ASSERT_EQUAL(policy_lint(p, &f), 0);
	policy_findings_free(&f);
	corral__policy__free_unpacked(p, NULL);
}

static bool has_finding(const struct policy_findings *f, const char *code, const char *pointer)
{
	for (size_t i = 0; i < f->count; i++)
		if (strcmp(f->items[i].code, code) == 0 &&
		    (!pointer || strcmp(f->items[i].pointer, pointer) == 0))
			return true;
	return false;
}

static void test_example_audited(void)
{
	Corral__Policy *p = example("audited-assistant.json");
	const Corral__Profile *a = only(p);
	CU_ASSERT_EQUAL(a->mode, CORRAL__MODE__MODE_AUDIT);
	CU_ASSERT_TRUE(a->network->default_allow);
	CU_ASSERT_EQUAL(a->network->dns, CORRAL__DNS_MODE__DNS_OPEN);
	CU_ASSERT_EQUAL(a->syscalls->action, CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG);
	CU_ASSERT_TRUE(a->degrade->network_to_landlock_ports && a->degrade->resources &&
	               a->degrade->landlock_partial);
	struct policy_findings f = {0};
	CU_ASSERT_TRUE(policy_lint(p, &f) >= 4);
	CU_ASSERT_TRUE(
	        has_finding(&f, "network-default-allow", "/profiles/assistant/network/default"));
	CU_ASSERT_TRUE(has_finding(&f, "writable-home", "/profiles/assistant/filesystem/write/0"));
	CU_ASSERT_TRUE(has_finding(&f, "readable-secret", "/profiles/assistant/filesystem/read/0"));
	CU_ASSERT_TRUE(has_finding(&f, "no-resource-limits", "/profiles/assistant/resources"));
	/* Audit mode logs anyway: a log action there is not a finding. */
	CU_ASSERT_FALSE(has_finding(&f, "syscall-action-log", NULL));
	policy_findings_free(&f);
	corral__policy__free_unpacked(p, NULL);
}

/* ---- every field ----------------------------------------------------------------------------- */

static void test_defaults(void)
{
	Corral__Policy *p = compile_ok(P(""));
	const Corral__Profile *c = only(p);
	CU_ASSERT_STRING_EQUAL(c->name, "p");
	CU_ASSERT_STRING_EQUAL(c->description, "");
	CU_ASSERT_STRING_EQUAL(p->description, "");
	CU_ASSERT_EQUAL(p->n_user_selectable, 0);
	/* Every sub-message is present with the language's defaults. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->filesystem);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->network);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->syscalls);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->resources);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->process);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->requires);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->degrade);
	CU_ASSERT_EQUAL(c->mode, CORRAL__MODE__MODE_ENFORCE);
	CU_ASSERT_FALSE(c->production);
	CU_ASSERT_FALSE(c->network->default_allow);
	CU_ASSERT_EQUAL(c->network->dns, CORRAL__DNS_MODE__DNS_DENY);
	CU_ASSERT_FALSE(c->syscalls->baseline_disabled);
	CU_ASSERT_EQUAL(c->syscalls->action, CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_ERRNO);
	CU_ASSERT_EQUAL(c->resources->memory_max_bytes, 0);
	CU_ASSERT_STRING_EQUAL(c->process->run_as, "");
	CU_ASSERT_FALSE(c->process->allow_root);
	CU_ASSERT_EQUAL(c->requires->landlock_abi, 0);
	CU_ASSERT_FALSE(c->degrade->resources);
	/* Survives a protobuf round trip (what signing does). */
	size_t len = corral__policy__get_packed_size(p);
	_cleanup_free_ uint8_t *buf = malloc(len + 1);
	CU_ASSERT_EQUAL(corral__policy__pack(p, buf), len);
	Corral__Policy *back = corral__policy__unpack(NULL, len, buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_PTR_NOT_NULL(policy_find_profile(back, "p"));
	corral__policy__free_unpacked(back, NULL);
	corral__policy__free_unpacked(p, NULL);
}

static void test_all_fields(void)
{
	Corral__Policy *p = compile_ok(
	        "{'$schema':'x','name':'all','description':'d\\nline two','default_profile':'b',"
	        "'user_selectable':['a','b'],'profiles':{'b':{"
	        "'description':'B','mode':'audit','production':true,"
	        "'filesystem':{'read':['//usr///lib/','${HOME}/','/'],'write':['${TMP}//x'],"
	        "'execute':['///'],'deny':['${WORKDIR}/.git/hooks']},"
	        "'network':{'default':'allow','allow':["
	        "{'cidr':'2001:DB8:0:0::/32','ports':'8000-8100','protocol':'udp'},"
	        "{'cidr':'192.0.2.10','port':1,'protocol':'any'},"
	        "{'cidr':'::ffff:192.0.2.0/120','port':65535},{'cidr':'::1','port':22}],"
	        "'hosts':['API.GitHub.com.:443','*.pypi.org:8443','a_b.example:1'],'dns':'filtered'"
	        "},"
	        "'syscalls':{'baseline':false,'deny':['personality','io_uring_setup'],"
	        "'action':'kill'},"
	        "'resources':{'memory_max':1048576,'pids_max':4194304,'cpu_max':'150%'},"
	        "'process':{'run_as':'agent','isolation':'namespace','env_allow':['PATH','LC_*'],"
	        "'allow_root':true},"
	        "'requires':{'landlock_abi':7,'seccomp':true,'cgroup_controllers':['memory','pids',"
	        "'cpu'],'bpf_network':true,'user_namespaces':true},"
	        "'degrade':{'network_to_landlock_ports':true,'resources':true,'landlock_partial':"
	        "true}"
	        "},'a':{'network':{'dns':'open'},'syscalls':{'action':'log'},"
	        "'resources':{'memory_max':'512M','cpu_max':102400},"
	        "'process':{'run_as':'invoker','isolation':'process'}}}}");
	CU_ASSERT_STRING_EQUAL(p->description, "d\nline two");
	CU_ASSERT_STRING_EQUAL(p->default_profile, "b");
	CU_ASSERT_EQUAL_FATAL(p->n_user_selectable, 2);
	CU_ASSERT_STRING_EQUAL(p->user_selectable[1], "b");
	CU_ASSERT_EQUAL_FATAL(p->n_profiles, 2);
	const Corral__Profile *b = p->profiles[0];
	CU_ASSERT_STRING_EQUAL(b->name, "b");
	CU_ASSERT_STRING_EQUAL(b->description, "B");
	CU_ASSERT_EQUAL(b->mode, CORRAL__MODE__MODE_AUDIT);
	CU_ASSERT_TRUE(b->production);
	const Corral__FilesystemRules *fs = b->filesystem;
	CU_ASSERT_EQUAL_FATAL(fs->n_read, 3);
	CU_ASSERT_STRING_EQUAL(fs->read[0], "/usr/lib");
	CU_ASSERT_STRING_EQUAL(fs->read[1], "${HOME}");
	CU_ASSERT_STRING_EQUAL(fs->read[2], "/");
	CU_ASSERT_STRING_EQUAL(fs->write[0], "${TMP}/x");
	CU_ASSERT_STRING_EQUAL(fs->execute[0], "/");
	CU_ASSERT_STRING_EQUAL(fs->deny[0], "${WORKDIR}/.git/hooks");
	const Corral__NetworkRules *n = b->network;
	CU_ASSERT_TRUE(n->default_allow);
	CU_ASSERT_EQUAL_FATAL(n->n_allow, 4);
	CU_ASSERT_STRING_EQUAL(n->allow[0]->cidr, "2001:db8::/32");
	CU_ASSERT_EQUAL(n->allow[0]->port_min, 8000);
	CU_ASSERT_EQUAL(n->allow[0]->port_max, 8100);
	CU_ASSERT_EQUAL(n->allow[0]->protocol, CORRAL__PROTOCOL__PROTOCOL_UDP);
	CU_ASSERT_STRING_EQUAL(n->allow[1]->cidr, "192.0.2.10/32");
	CU_ASSERT_EQUAL(n->allow[1]->port_min, 1);
	CU_ASSERT_EQUAL(n->allow[1]->protocol, CORRAL__PROTOCOL__PROTOCOL_ANY);
	CU_ASSERT_STRING_EQUAL(n->allow[2]->cidr, "192.0.2.0/24");
	CU_ASSERT_EQUAL(n->allow[2]->port_max, 65535);
	CU_ASSERT_EQUAL(n->allow[2]->protocol, CORRAL__PROTOCOL__PROTOCOL_TCP);
	CU_ASSERT_STRING_EQUAL(n->allow[3]->cidr, "::1/128");
	CU_ASSERT_EQUAL_FATAL(n->n_hosts, 3);
	CU_ASSERT_STRING_EQUAL(n->hosts[0]->host, "api.github.com");
	CU_ASSERT_EQUAL(n->hosts[0]->port, 443);
	CU_ASSERT_STRING_EQUAL(n->hosts[1]->host, "*.pypi.org");
	CU_ASSERT_EQUAL(n->hosts[1]->port, 8443);
	CU_ASSERT_STRING_EQUAL(n->hosts[2]->host, "a_b.example");
	CU_ASSERT_EQUAL(n->dns, CORRAL__DNS_MODE__DNS_FILTERED);
	CU_ASSERT_TRUE(b->syscalls->baseline_disabled);
	CU_ASSERT_EQUAL_FATAL(b->syscalls->n_deny, 2);
	CU_ASSERT_STRING_EQUAL(b->syscalls->deny[1], "io_uring_setup");
	CU_ASSERT_EQUAL(b->syscalls->action, CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_KILL);
	CU_ASSERT_EQUAL(b->resources->memory_max_bytes, 1048576);
	CU_ASSERT_EQUAL(b->resources->pids_max, 4194304);
	CU_ASSERT_EQUAL(b->resources->cpu_max_percent, 150);
	CU_ASSERT_STRING_EQUAL(b->process->run_as, "agent");
	CU_ASSERT_EQUAL(b->process->isolation, CORRAL__ISOLATION__ISOLATION_NAMESPACE);
	CU_ASSERT_EQUAL_FATAL(b->process->n_env_allow, 2);
	CU_ASSERT_STRING_EQUAL(b->process->env_allow[1], "LC_*");
	CU_ASSERT_TRUE(b->process->allow_root);
	CU_ASSERT_EQUAL(b->requires->landlock_abi, 7);
	CU_ASSERT_TRUE(b->requires->seccomp && b->requires->bpf_network &&
	               b->requires->user_namespaces);
	CU_ASSERT_EQUAL_FATAL(b->requires->n_cgroup_controllers, 3);
	CU_ASSERT_STRING_EQUAL(b->requires->cgroup_controllers[2], "cpu");
	CU_ASSERT_TRUE(b->degrade->network_to_landlock_ports && b->degrade->resources &&
	               b->degrade->landlock_partial);
	const Corral__Profile *a = p->profiles[1];
	CU_ASSERT_EQUAL(a->network->dns, CORRAL__DNS_MODE__DNS_OPEN);
	CU_ASSERT_EQUAL(a->syscalls->action, CORRAL__SYSCALL_ACTION__SYSCALL_ACTION_LOG);
	CU_ASSERT_EQUAL(a->resources->memory_max_bytes, 512ULL << 20);
	CU_ASSERT_EQUAL(a->resources->cpu_max_percent, 102400);
	CU_ASSERT_STRING_EQUAL(a->process->run_as, "");
	CU_ASSERT_EQUAL(a->process->isolation, CORRAL__ISOLATION__ISOLATION_PROCESS);
	CU_ASSERT_PTR_NULL(policy_find_profile(p, "c"));
	CU_ASSERT_PTR_NULL(policy_find_profile(NULL, "a"));
	CU_ASSERT_PTR_NULL(policy_find_profile(p, NULL));
	corral__policy__free_unpacked(p, NULL);
}

/* ---- every error ---------------------------------------------------------------------------- */

struct err_case {
	const char *doc; /* single-quoted JSON */
	const char *pointer;
	const char *reason; /* substring */
};

static char long_name_doc[512];
static char long_path_doc[8192];
static char long_label_doc[512];
static char long_host_doc[1024];
static char many_profiles_doc[8192];
static char many_paths_doc[16384];

static void build_long_docs(void)
{
	char name[200];
	memset(name, 'n', 129);
	name[129] = '\0';
	snprintf(long_name_doc, sizeof(long_name_doc),
	         "{'name':'%s','default_profile':'p','profiles':{'p':{}}}", name);
	char path[4200];
	path[0] = '/';
	memset(path + 1, 'a', 4096);
	path[4097] = '\0';
	snprintf(long_path_doc, sizeof(long_path_doc), P("'filesystem':{'read':['%s']}"), path);
	char label[80];
	memset(label, 'l', 64);
	label[64] = '\0';
	snprintf(long_label_doc, sizeof(long_label_doc), P("'network':{'hosts':['%s.com:443']}"),
	         label);
	char host[400];
	size_t o = 0;
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(host + o, sizeof(host) - o, "abcd.");
	snprintf(host + o, sizeof(host) - o, "com");
	snprintf(long_host_doc, sizeof(long_host_doc), P("'network':{'hosts':['%s:443']}"), host);
	o = (size_t)snprintf(many_profiles_doc, sizeof(many_profiles_doc),
	                     "{'name':'t','default_profile':'p0','profiles':{");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(many_profiles_doc + o, sizeof(many_profiles_doc) - o,
		                      "%s'p%d':{}", i ? "," : "", i);
	snprintf(many_profiles_doc + o, sizeof(many_profiles_doc) - o, "}}");
	o = (size_t)snprintf(many_paths_doc, sizeof(many_paths_doc),
	                     "{'name':'t','default_profile':'p','profiles':{'p':{'filesystem':{"
	                     "'read':[");
	for (int i = 0; i < 1025; i++)
		o += (size_t)snprintf(many_paths_doc + o, sizeof(many_paths_doc) - o, "%s'/'",
		                      i ? "," : "");
	snprintf(many_paths_doc + o, sizeof(many_paths_doc) - o, "]}}}}");
}

static const struct err_case err_cases[] = {
        /* document */
        {"[]", "", "must be a JSON object"},
        {"{", "", "line 1"},
        {"{'name':'a','name':'b'}", "", "duplicate"},
        {"{'name':'t','default_profile':'p','profiles':{'p':{'mode':'\\u0000'}}}", "", "line 1"},
        {"{'name':'t','default_profile':'p','profiles':{'p':{}},'bogus':1}", "/bogus",
         "unknown field"},
        {"{'name':'t','default_profile':'p','profiles':{'p':{}},'a/b~c':1}", "/a~1b~0c",
         "unknown field"},
        {"{'default_profile':'p','profiles':{'p':{}}}", "", "missing required field \"name\""},
        {"{'name':'t','profiles':{'p':{}}}", "", "missing required field \"default_profile\""},
        {"{'name':'t','default_profile':'p'}", "", "missing required field \"profiles\""},
        {"{'$schema':1,'name':'t','default_profile':'p','profiles':{'p':{}}}", "/$schema",
         "must be a string"},
        {"{'name':1,'default_profile':'p','profiles':{'p':{}}}", "/name", "must be a string"},
        {"{'name':'','default_profile':'p','profiles':{'p':{}}}", "/name", "must not be empty"},
        {long_name_doc, "/name", "longer than 128"},
        {"{'name':'a\\u0001','default_profile':'p','profiles':{'p':{}}}", "/name",
         "control character"},
        {"{'name':'a\\nb','default_profile':'p','profiles':{'p':{}}}", "/name",
         "control character"},
        {"{'name':'t','description':[],'default_profile':'p','profiles':{'p':{}}}", "/description",
         "must be a string"},
        {"{'name':'t','default_profile':'p','profiles':[]}", "/profiles", "must be an object"},
        {"{'name':'t','default_profile':'p','profiles':{}}", "/profiles", "at least one"},
        {many_profiles_doc, "/profiles", "more than 64"},
        {"{'name':'t','default_profile':'p','profiles':{'Bad':{}}}", "/profiles/Bad",
         "profile name must match"},
        {"{'name':'t','default_profile':'p','profiles':{'-a':{}}}", "/profiles/-a",
         "profile name must match"},
        {"{'name':'t','default_profile':'p','profiles':{'a/b':{}}}", "/profiles/a~1b",
         "profile name must match"},
        {"{'name':'t','default_profile':'p','profiles':{'p':[]}}", "/profiles/p",
         "must be an object"},
        {"{'name':'t','default_profile':'q','profiles':{'p':{}}}", "/default_profile",
         "\"q\" is not a profile"},
        {"{'name':'t','default_profile':1,'profiles':{'p':{}}}", "/default_profile",
         "must be a string"},
        {"{'name':'t','default_profile':'p','user_selectable':'p','profiles':{'p':{}}}",
         "/user_selectable", "must be an array"},
        {"{'name':'t','default_profile':'p','user_selectable':['p','x'],'profiles':{'p':{}}}",
         "/user_selectable/1", "\"x\" is not a profile"},
        {"{'name':'t','default_profile':'p','user_selectable':[1],'profiles':{'p':{}}}",
         "/user_selectable/0", "must be a profile name"},
        {"{'name':'t','default_profile':'p','user_selectable':['p','p'],'profiles':{'p':{}}}",
         "/user_selectable/1", "listed twice"},
        /* profile */
        {P("'netwrok':{}"), "/profiles/p/netwrok", "unknown field"},
        {P("'mode':'strict'"), "/profiles/p/mode", "\"strict\" is not one of"},
        {P("'mode':1"), "/profiles/p/mode", "must be a string"},
        {P("'production':'yes'"), "/profiles/p/production", "must be true or false"},
        {P("'description':'a\\u0007'"), "/profiles/p/description", "control character"},
        {P("'filesystem':[]"), "/profiles/p/filesystem", "must be an object"},
        {P("'network':1"), "/profiles/p/network", "must be an object"},
        {P("'syscalls':true"), "/profiles/p/syscalls", "must be an object"},
        {P("'resources':'x'"), "/profiles/p/resources", "must be an object"},
        {P("'process':null"), "/profiles/p/process", "must be an object"},
        {P("'requires':[]"), "/profiles/p/requires", "must be an object"},
        {P("'degrade':1.5"), "/profiles/p/degrade", "must be an object"},
        /* filesystem */
        {P("'filesystem':{'readonly':[]}"), "/profiles/p/filesystem/readonly", "unknown field"},
        {P("'filesystem':{'read':'/usr'}"), "/profiles/p/filesystem/read", "must be an array"},
        {P("'filesystem':{'write':[1]}"), "/profiles/p/filesystem/write/0", "must be a path"},
        {P("'filesystem':{'read':['usr']}"), "/profiles/p/filesystem/read/0", "not absolute"},
        {P("'filesystem':{'read':['~/.ssh']}"), "/profiles/p/filesystem/read/0", "${HOME}"},
        {P("'filesystem':{'read':['/usr/../etc']}"), "/profiles/p/filesystem/read/0",
         "'..' components"},
        {P("'filesystem':{'execute':['/usr/./bin']}"), "/profiles/p/filesystem/execute/0",
         "'.' components"},
        {P("'filesystem':{'deny':['${FOO}/x']}"), "/profiles/p/filesystem/deny/0",
         "unknown variable ${FOO}"},
        {P("'filesystem':{'read':['${HOMEX}']}"), "/profiles/p/filesystem/read/0",
         "unknown variable"},
        {P("'filesystem':{'read':['${HOME']}"), "/profiles/p/filesystem/read/0",
         "unknown variable"},
        {P("'filesystem':{'read':['/a/${HOME}']}"), "/profiles/p/filesystem/read/0",
         "only at the start"},
        {P("'filesystem':{'read':['/a\\tb']}"), "/profiles/p/filesystem/read/0",
         "control character"},
        {P("'filesystem':{'read':['']}"), "/profiles/p/filesystem/read/0", "empty path"},
        {long_path_doc, "/profiles/p/filesystem/read/0", "longer than 4096"},
        {many_paths_doc, "/profiles/p/filesystem/read", "more than 1024"},
        /* network */
        {P("'network':{'proxy':1}"), "/profiles/p/network/proxy", "unknown field"},
        {P("'network':{'default':'block'}"), "/profiles/p/network/default", "is not one of"},
        {P("'network':{'allow':{}}"), "/profiles/p/network/allow", "must be an array"},
        {P("'network':{'allow':['10.0.0.0/8']}"), "/profiles/p/network/allow/0",
         "must be an object"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':1,'host':'x'}]}"),
         "/profiles/p/network/allow/0/host", "unknown field"},
        {P("'network':{'allow':[{'port':443}]}"), "/profiles/p/network/allow/0",
         "missing required field \"cidr\""},
        {P("'network':{'allow':[{'cidr':10,'port':443}]}"), "/profiles/p/network/allow/0/cidr",
         "must be a string"},
        {P("'network':{'allow':[{'cidr':'10.0.0.300/8','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "not a CIDR"},
        {P("'network':{'allow':[{'cidr':'','port':443}]}"), "/profiles/p/network/allow/0/cidr",
         "not a CIDR"},
        {P("'network':{'allow':[{'cidr':'192.0.2.1/24','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "host bits set"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/33','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "longer than 32 bits"},
        {P("'network':{'allow':[{'cidr':'::/129','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "longer than 128 bits"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/x','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "bad prefix length"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/','port':443}]}"),
         "/profiles/p/network/allow/0/cidr", "bad prefix length"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':0}]}"),
         "/profiles/p/network/allow/0/port", "0 is not a port (1-65535)"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':1},{'cidr':'10.0.0.0/8','port':1},"
           "{'cidr':'10.0.0.0/8','port':70000}]}"),
         "/profiles/p/network/allow/2/port", "70000 is not a port (1-65535)"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':'443'}]}"),
         "/profiles/p/network/allow/0/port", "must be an integer"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':44.3}]}"),
         "/profiles/p/network/allow/0/port", "must be an integer"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':1,'ports':'1-2'}]}"),
         "/profiles/p/network/allow/0", "not both"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8'}]}"), "/profiles/p/network/allow/0",
         "missing required field \"port\""},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'80'}]}"),
         "/profiles/p/network/allow/0/ports", "not a port range"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'80-'}]}"),
         "/profiles/p/network/allow/0/ports", "not a port range"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'123456-2'}]}"),
         "/profiles/p/network/allow/0/ports", "not a port range"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'90-80'}]}"),
         "/profiles/p/network/allow/0/ports", "reversed"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'0-80'}]}"),
         "/profiles/p/network/allow/0/ports", "0 is not a port"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':'80-70000'}]}"),
         "/profiles/p/network/allow/0/ports", "70000 is not a port"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','ports':8080}]}"),
         "/profiles/p/network/allow/0/ports", "must be a string"},
        {P("'network':{'allow':[{'cidr':'10.0.0.0/8','port':1,'protocol':'icmp'}]}"),
         "/profiles/p/network/allow/0/protocol", "is not one of"},
        {P("'network':{'hosts':'a.com:443'}"), "/profiles/p/network/hosts", "must be an array"},
        {P("'network':{'hosts':[443]}"), "/profiles/p/network/hosts/0", "must be a string"},
        {P("'network':{'hosts':['example.com']}"), "/profiles/p/network/hosts/0", "no port"},
        {P("'network':{'hosts':['example.com:0']}"), "/profiles/p/network/hosts/0", "not a port"},
        {P("'network':{'hosts':['example.com:65536']}"), "/profiles/p/network/hosts/0",
         "not a port"},
        {P("'network':{'hosts':['example.com:']}"), "/profiles/p/network/hosts/0", "not a port"},
        {P("'network':{'hosts':['example.com:4x']}"), "/profiles/p/network/hosts/0", "not a port"},
        {P("'network':{'hosts':[':443']}"), "/profiles/p/network/hosts/0", "empty host"},
        {P("'network':{'hosts':['192.0.2.1:443']}"), "/profiles/p/network/hosts/0", "IP literal"},
        {P("'network':{'hosts':['0x7f000001:443']}"), "/profiles/p/network/hosts/0", "IP literal"},
        {P("'network':{'hosts':['10.1:443']}"), "/profiles/p/network/hosts/0", "IP literal"},
        {P("'network':{'hosts':['[::1]:443']}"), "/profiles/p/network/hosts/0", "IP literal"},
        {P("'network':{'hosts':['::1:443']}"), "/profiles/p/network/hosts/0", "IP literal"},
        {P("'network':{'hosts':['a b.com:443']}"), "/profiles/p/network/hosts/0", "space"},
        {P("'network':{'hosts':['a\\u0001b.com:443']}"), "/profiles/p/network/hosts/0",
         "control character"},
        {P("'network':{'hosts':['a..b.com:443']}"), "/profiles/p/network/hosts/0", "empty label"},
        {P("'network':{'hosts':['.a.com:443']}"), "/profiles/p/network/hosts/0", "empty label"},
        {P("'network':{'hosts':['a.com..:443']}"), "/profiles/p/network/hosts/0", "empty label"},
        {long_label_doc, "/profiles/p/network/hosts/0", "longer than 63"},
        {long_host_doc, "/profiles/p/network/hosts/0", "longer than 253"},
        {P("'network':{'hosts':['a.*.com:443']}"), "/profiles/p/network/hosts/0",
         "only as the first label"},
        {P("'network':{'hosts':['*.com:443']}"), "/profiles/p/network/hosts/0", "too broad"},
        {P("'network':{'hosts':['*:443']}"), "/profiles/p/network/hosts/0", "too broad"},
        {P("'network':{'hosts':['a/b.com:443']}"), "/profiles/p/network/hosts/0",
         "not allowed in host names"},
        {P("'network':{'hosts':['*a.com:443']}"), "/profiles/p/network/hosts/0",
         "not allowed in host names"},
        {P("'network':{'hosts':['-a.com:443']}"), "/profiles/p/network/hosts/0",
         "starts or ends with '-'"},
        {P("'network':{'dns':'any'}"), "/profiles/p/network/dns", "is not one of"},
        /* syscalls */
        {P("'syscalls':{'allow':[]}"), "/profiles/p/syscalls/allow", "unknown field"},
        {P("'syscalls':{'baseline':'on'}"), "/profiles/p/syscalls/baseline",
         "must be true or false"},
        {P("'syscalls':{'deny':'ptrace'}"), "/profiles/p/syscalls/deny", "must be an array"},
        {P("'syscalls':{'deny':[1]}"), "/profiles/p/syscalls/deny/0", "must be a system call"},
        {P("'syscalls':{'deny':['ptrace','notasyscall']}"), "/profiles/p/syscalls/deny/1",
         "\"notasyscall\" is not an x86_64 system call"},
        {P("'syscalls':{'deny':['59']}"), "/profiles/p/syscalls/deny/0", "not an x86_64"},
        {P("'syscalls':{'deny':['PTRACE']}"), "/profiles/p/syscalls/deny/0", "not an x86_64"},
        {P("'syscalls':{'deny':['']}"), "/profiles/p/syscalls/deny/0", "not an x86_64"},
        {P("'syscalls':{'deny':['ptrace','ptrace']}"), "/profiles/p/syscalls/deny/1",
         "listed twice"},
        {P("'syscalls':{'action':'trap'}"), "/profiles/p/syscalls/action", "is not one of"},
        /* resources */
        {P("'resources':{'memory':'1G'}"), "/profiles/p/resources/memory", "unknown field"},
        {P("'resources':{'memory_max':'12X'}"), "/profiles/p/resources/memory_max",
         "\"12X\" is not a size"},
        {P("'resources':{'memory_max':-1}"), "/profiles/p/resources/memory_max", "not a size"},
        {P("'resources':{'memory_max':1000}"), "/profiles/p/resources/memory_max",
         "below the minimum of 1M"},
        {P("'resources':{'memory_max':'512K'}"), "/profiles/p/resources/memory_max",
         "below the minimum"},
        {P("'resources':{'memory_max':true}"), "/profiles/p/resources/memory_max",
         "must be a size"},
        {P("'resources':{'pids_max':0}"), "/profiles/p/resources/pids_max",
         "0 is not a process count"},
        {P("'resources':{'pids_max':4194305}"), "/profiles/p/resources/pids_max",
         "not a process count"},
        {P("'resources':{'pids_max':'10'}"), "/profiles/p/resources/pids_max",
         "must be an integer"},
        {P("'resources':{'cpu_max':'0%'}"), "/profiles/p/resources/cpu_max", "not a CPU quota"},
        {P("'resources':{'cpu_max':'102401%'}"), "/profiles/p/resources/cpu_max",
         "not a CPU quota"},
        {P("'resources':{'cpu_max':'abc'}"), "/profiles/p/resources/cpu_max", "not a percentage"},
        {P("'resources':{'cpu_max':'x%'}"), "/profiles/p/resources/cpu_max", "not a percentage"},
        {P("'resources':{'cpu_max':0}"), "/profiles/p/resources/cpu_max", "not a CPU quota"},
        {P("'resources':{'cpu_max':1.5}"), "/profiles/p/resources/cpu_max", "must be a percentage"},
        /* process */
        {P("'process':{'user':'x'}"), "/profiles/p/process/user", "unknown field"},
        {P("'process':{'run_as':'Bad Name'}"), "/profiles/p/process/run_as",
         "neither \"invoker\" nor a local account"},
        {P("'process':{'run_as':''}"), "/profiles/p/process/run_as", "neither"},
        {P("'process':{'run_as':5}"), "/profiles/p/process/run_as", "must be a string"},
        {P("'process':{'isolation':'vm'}"), "/profiles/p/process/isolation", "is not one of"},
        {P("'process':{'env_allow':'PATH'}"), "/profiles/p/process/env_allow", "must be an array"},
        {P("'process':{'env_allow':['PATH',1]}"), "/profiles/p/process/env_allow/1",
         "must be a variable name"},
        {P("'process':{'env_allow':['*']}"), "/profiles/p/process/env_allow/0",
         "not a variable name"},
        {P("'process':{'env_allow':['1ABC']}"), "/profiles/p/process/env_allow/0",
         "not a variable name"},
        {P("'process':{'env_allow':['A-B']}"), "/profiles/p/process/env_allow/0",
         "not a variable name"},
        {P("'process':{'env_allow':['A*B']}"), "/profiles/p/process/env_allow/0",
         "not a variable name"},
        {P("'process':{'allow_root':'true'}"), "/profiles/p/process/allow_root",
         "must be true or false"},
        /* requires */
        {P("'requires':{'landlock':4}"), "/profiles/p/requires/landlock", "unknown field"},
        {P("'requires':{'landlock_abi':8}"), "/profiles/p/requires/landlock_abi",
         "8 is not a Landlock ABI version"},
        {P("'requires':{'landlock_abi':-1}"), "/profiles/p/requires/landlock_abi",
         "not a Landlock ABI"},
        {P("'requires':{'landlock_abi':'4'}"), "/profiles/p/requires/landlock_abi",
         "must be an integer"},
        {P("'requires':{'seccomp':'x'}"), "/profiles/p/requires/seccomp", "must be true or false"},
        {P("'requires':{'cgroup_controllers':'memory'}"), "/profiles/p/requires/cgroup_controllers",
         "must be an array"},
        {P("'requires':{'cgroup_controllers':['io']}"), "/profiles/p/requires/cgroup_controllers/0",
         "must be \"memory\""},
        {P("'requires':{'cgroup_controllers':[1]}"), "/profiles/p/requires/cgroup_controllers/0",
         "must be \"memory\""},
        {P("'requires':{'cgroup_controllers':['cpu','cpu']}"),
         "/profiles/p/requires/cgroup_controllers/1", "listed twice"},
        {P("'requires':{'cgroup_controllers':['cpu','pids','memory','cpu']}"),
         "/profiles/p/requires/cgroup_controllers", "more than 3"},
        {P("'requires':{'bpf_network':1}"), "/profiles/p/requires/bpf_network",
         "must be true or false"},
        {P("'requires':{'user_namespaces':null}"), "/profiles/p/requires/user_namespaces",
         "must be true or false"},
        /* degrade */
        {P("'degrade':{'all':true}"), "/profiles/p/degrade/all", "unknown field"},
        {P("'degrade':{'network_to_landlock_ports':'yes'}"),
         "/profiles/p/degrade/network_to_landlock_ports", "must be true or false"},
        {P("'degrade':{'resources':0}"), "/profiles/p/degrade/resources", "must be true or false"},
        {P("'degrade':{'landlock_partial':[]}"), "/profiles/p/degrade/landlock_partial",
         "must be true or false"},
};

static void test_errors(void)
{
	build_long_docs();
	for (size_t i = 0; i < ELEMENTSOF(err_cases); i++) {
		const struct err_case *c = &err_cases[i];
		Corral__Policy *p = NULL;
		struct policy_error err;
		int r = compile_q(c->doc, &p, &err);
		bool ok = r == -EINVAL && !p && strcmp(err.pointer, c->pointer) == 0 &&
		          strstr(err.reason, c->reason);
		if (!ok)
			fprintf(stderr,
			        "case %zu: r=%d pointer '%s' reason '%s' (want '%s' ~'%s')\n", i, r,
			        r < 0 ? err.pointer : "", r < 0 ? err.reason : "", c->pointer,
			        c->reason);
		CU_ASSERT_TRUE(ok);
		if (p)
			corral__policy__free_unpacked(p, NULL);
	}
}

static void test_error_format(void)
{
	struct policy_error e = {.pointer = "/profiles/coder/network/allow/2/port",
	                         .reason = "70000 is not a port (1-65535)"};
	char buf[600];
	CU_ASSERT_STRING_EQUAL(
	        policy_error_format(&e, buf, sizeof(buf)),
	        "/profiles/coder/network/allow/2/port: 70000 is not a port (1-65535)");
	struct policy_error doc = {.pointer = "", .reason = "line 1 column 2: x"};
	CU_ASSERT_STRING_EQUAL(policy_error_format(&doc, buf, sizeof(buf)),
	                       "(document): line 1 column 2: x");
	CU_ASSERT_STRING_EQUAL(policy_error_format(NULL, buf, sizeof(buf)), "unknown error");
	char small[8];
	CU_ASSERT_EQUAL(strlen(policy_error_format(&e, small, sizeof(small))), 7);
	small[0] = 'x';
	CU_ASSERT_PTR_EQUAL(policy_error_format(&e, small, 0), small);
	CU_ASSERT_EQUAL(small[0], 'x');
	/* A NULL err is allowed on failure. */
	Corral__Policy *p = NULL;
	CU_ASSERT_EQUAL(policy_compile("[]", 2, &p, NULL), -EINVAL);
	CU_ASSERT_EQUAL(policy_compile(NULL, 3, &p, NULL), -EINVAL);
	CU_ASSERT_PTR_NULL(p);
}

/* ---- sizes and files ------------------------------------------------------------------------- */

static char *padded_policy(size_t total)
{
	_cleanup_free_ char *doc = dq(P(""));
	size_t dl = strlen(doc);
	char *buf = malloc(total + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memcpy(buf, doc, dl);
	memset(buf + dl, ' ', total - dl);
	buf[total] = '\0';
	return buf;
}

static void test_size_cap(void)
{
	Corral__Policy *p = NULL;
	struct policy_error err;
	_cleanup_free_ char *at = padded_policy(POLICY_SOURCE_MAX);
	CU_ASSERT_EQUAL(policy_compile(at, POLICY_SOURCE_MAX, &p, &err), 0);
	corral__policy__free_unpacked(p, NULL);
	p = NULL;
	_cleanup_free_ char *over = padded_policy(POLICY_SOURCE_MAX + 1);
	CU_ASSERT_EQUAL(policy_compile(over, POLICY_SOURCE_MAX + 1, &p, &err), -EMSGSIZE);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_STRING_EQUAL(err.pointer, "");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "limit"));
	/* The cap is checked before parsing: garbage past the cap is not even looked at. */
	CU_ASSERT_EQUAL(policy_compile("x", POLICY_SOURCE_MAX + 1, &p, NULL), -EMSGSIZE);
	char *compact = NULL;
	CU_ASSERT_EQUAL(policy_source_compact(over, POLICY_SOURCE_MAX + 1, &compact), -EMSGSIZE);
	CU_ASSERT_PTR_NULL(compact);
}

static void test_files(void)
{
	_cleanup_free_ char *dir = harness_mkdtemp("policy");
	char path[4096];
	Corral__Policy *p = NULL;
	struct policy_error err;

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	CU_ASSERT_EQUAL(policy_compile_file(path, &p, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.pointer, "");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "cannot read"));

	snprintf(path, sizeof(path), "%s/big.json", dir);
	_cleanup_free_ char *over = padded_policy(POLICY_SOURCE_MAX + 1);
	CU_ASSERT_EQUAL(util_write_file_atomic(path, over, POLICY_SOURCE_MAX + 1, 0644), 0);
	CU_ASSERT_EQUAL(policy_compile_file(path, &p, &err), -EMSGSIZE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.reason, "limit"));
	CU_ASSERT_EQUAL(policy_compile_file(path, &p, NULL), -EMSGSIZE);

	snprintf(path, sizeof(path), "%s/bad.json", dir);
	_cleanup_free_ char *bad = dq(P("'mode':'x'"));
	CU_ASSERT_EQUAL(util_write_file_atomic(path, bad, strlen(bad), 0644), 0);
	CU_ASSERT_EQUAL(policy_compile_file(path, &p, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.pointer, "/profiles/p/mode");

	snprintf(path, sizeof(path), "%s/ok.json", dir);
	_cleanup_free_ char *good = dq(P(""));
	CU_ASSERT_EQUAL(util_write_file_atomic(path, good, strlen(good), 0644), 0);
	CU_ASSERT_EQUAL(policy_compile_file(path, &p, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(p);
	corral__policy__free_unpacked(p, NULL);
	harness_rm_rf(dir);
}

static void test_compact(void)
{
	_cleanup_free_ char *src = dq("{ 'name' : 't',\n  'profiles': {'b': {}, 'a': {'mode': "
	                              "'audit'}}, 'default_profile':'a' }");
	_cleanup_free_ char *out = NULL;
	CU_ASSERT_EQUAL(policy_source_compact(src, strlen(src), &out), 0);
	_cleanup_free_ char *want = dq("{'name':'t','profiles':{'b':{},'a':{'mode':'audit'}},"
	                               "'default_profile':'a'}");
	CU_ASSERT_STRING_EQUAL(out, want);
	char *x = NULL;
	CU_ASSERT_EQUAL(policy_source_compact("{", 1, &x), -EINVAL);
	_cleanup_free_ char *dup = dq("{'a':1,'a':2}");
	CU_ASSERT_EQUAL(policy_source_compact(dup, strlen(dup), &x), -EINVAL);
	CU_ASSERT_PTR_NULL(x);
}

/* ---- validators directly (edge cases the tables do not reach) -------------------------------- */

static void test_validators(void)
{
	char why[256];
	char *out = NULL;
	uint32_t port;
	CU_ASSERT_EQUAL(policy_path_normalize("${WORKDIR}", 10, &out, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(out, "${WORKDIR}");
	free(out);
	CU_ASSERT_EQUAL(policy_path_normalize("/a\0b", 4, &out, why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(policy_path_normalize("/a/..b/c.", 9, &out, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(out, "/a/..b/c.");
	free(out);
	CU_ASSERT_EQUAL(policy_host_normalize("a.com\0:1", 8, &out, &port, why, sizeof(why)),
	                -EINVAL);
	CU_ASSERT_EQUAL(policy_host_normalize("x.example.:80", 13, &out, &port, why, sizeof(why)),
	                0);
	CU_ASSERT_STRING_EQUAL(out, "x.example");
	CU_ASSERT_EQUAL(port, 80);
	free(out);
	CU_ASSERT_EQUAL(policy_host_normalize("a-.com:1", 8, &out, &port, why, sizeof(why)),
	                -EINVAL);
	CU_ASSERT_EQUAL(policy_host_normalize("a.com:123456", 12, &out, &port, why, sizeof(why)),
	                -EINVAL);
	CU_ASSERT_EQUAL(policy_cidr_canonical("0.0.0.0/0", 9, &out, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(out, "0.0.0.0/0");
	free(out);
	CU_ASSERT_EQUAL(policy_cidr_canonical("::ffff:0:0/96", 13, &out, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(out, "0.0.0.0/0");
	free(out);
	/* A mapped prefix shorter than /96 is an IPv6 network and stays one. */
	CU_ASSERT_EQUAL(policy_cidr_canonical("::/64", 5, &out, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(out, "::/64");
	free(out);
	CU_ASSERT_EQUAL(policy_cidr_canonical("10.0.0.0/8\0", 11, &out, why, sizeof(why)), -EINVAL);
	char longc[80];
	memset(longc, '1', sizeof(longc));
	CU_ASSERT_EQUAL(policy_cidr_canonical(longc, sizeof(longc), &out, why, sizeof(why)),
	                -EINVAL);
	char q[16];
	CU_ASSERT_STRING_EQUAL(policy_quote("abcdefghijklmnopqrstuvwxyz", 26, q, sizeof(q)),
	                       "abcdefghijkl...");
	CU_ASSERT_STRING_EQUAL(policy_quote("a\x01z", 3, q, sizeof(q)), "a?z");
}

/* ---- linter --------------------------------------------------------------------------------- */

struct lint_case {
	const char *body; /* profile body (single-quoted) */
	const char *code;
	const char *pointer; /* suffix after /profiles/p; NULL = the code must be absent */
};

/* Bodies that set limits, so "no-resource-limits" does not drown the case under test. */
#define LIM "'resources':{'memory_max':'1G','pids_max':64},"

static const struct lint_case lint_cases[] = {
        {LIM "'filesystem':{'write':['/']}", "writable-system-path", "/filesystem/write/0"},
        {LIM "'filesystem':{'write':['/tmp','/etc']}", "writable-system-path",
         "/filesystem/write/1"},
        {LIM "'filesystem':{'write':['/usr/local/bin']}", "writable-system-path",
         "/filesystem/write/0"},
        {LIM "'filesystem':{'write':['/usrx']}", "writable-system-path", NULL},
        {LIM "'filesystem':{'write':['${HOME}']}", "writable-home", "/filesystem/write/0"},
        {LIM "'filesystem':{'write':['/home']}", "writable-home", "/filesystem/write/0"},
        {LIM "'filesystem':{'write':['${HOME}/src']}", "writable-home", NULL},
        {LIM "'filesystem':{'read':['${HOME}']}", "readable-secret", "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['/usr','/']}", "readable-secret", "/filesystem/read/1"},
        {LIM "'filesystem':{'read':['/home']}", "readable-secret", "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['${HOME}/.ssh/id_ed25519']}", "readable-secret",
         "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['/var/run/docker.sock']}", "readable-secret",
         "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['/run']}", "readable-secret", "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['/var']}", "readable-secret", NULL},
        {LIM "'filesystem':{'read':['/run'],'deny':['/var/run/docker.sock']}", "readable-secret",
         NULL},
        {LIM "'filesystem':{'read':['${HOME}/.config']}", "readable-secret", "/filesystem/read/0"},
        {LIM "'filesystem':{'read':['${HOME}'],'deny':['${HOME}/.ssh','${HOME}/.aws',"
             "'${HOME}/.gnupg','${HOME}/.config','${HOME}/.kube','${HOME}/.mozilla']}",
         "readable-secret", NULL},
        {LIM "'filesystem':{'read':['/'],'deny':['/home','/run']}", "readable-secret", NULL},
        {LIM "'filesystem':{'read':['${HOME}'],'deny':['${HOME}']}", "readable-secret", NULL},
        {LIM "'filesystem':{'read':['${WORKDIR}','/usr']}", "readable-secret", NULL},
        {LIM "'filesystem':{'write':['${HOME}/.kube']}", "writable-secret", "/filesystem/write/0"},
        {LIM "'network':{'default':'allow'}", "network-default-allow", "/network/default"},
        {LIM "'network':{'allow':[{'cidr':'10.0.0.0/8','port':1},{'cidr':'0.0.0.0/0','port':443}]}",
         "network-allow-any", "/network/allow/1/cidr"},
        {LIM "'network':{'allow':[{'cidr':'::/0','port':443}]}", "network-allow-any",
         "/network/allow/0/cidr"},
        {LIM "'network':{'allow':[{'cidr':'::ffff:0:0/96','port':443}]}", "network-allow-any",
         "/network/allow/0/cidr"},
        {LIM "'network':{'allow':[{'cidr':'0.0.0.0/1','port':443}]}", "network-allow-any", NULL},
        {LIM "'network':{'dns':'open'}", "dns-open", "/network/dns"},
        {LIM "'network':{'default':'allow','dns':'open'}", "dns-open", NULL},
        {LIM "'network':{'dns':'filtered'}", "dns-open", NULL},
        {LIM "'syscalls':{'baseline':false}", "syscall-baseline-disabled", "/syscalls/baseline"},
        {LIM "'syscalls':{'action':'log'}", "syscall-action-log", "/syscalls/action"},
        {LIM "'mode':'audit','syscalls':{'action':'log'}", "syscall-action-log", NULL},
        {"'mode':'enforce'", "no-resource-limits", "/resources"},
        {"'resources':{'cpu_max':100}", "no-memory-limit", "/resources/memory_max"},
        {"'resources':{'cpu_max':100}", "no-pids-limit", "/resources/pids_max"},
        {"'resources':{'memory_max':'1G'}", "no-pids-limit", "/resources/pids_max"},
        {"'resources':{'pids_max':10}", "no-memory-limit", "/resources/memory_max"},
        {"'resources':{'cpu_max':100}", "no-resource-limits", NULL},
        {LIM "'production':true,'mode':'audit'", "audit-in-production", "/mode"},
        {LIM "'production':false,'mode':'audit'", "audit-in-production", NULL},
        {LIM "'production':true", "audit-in-production", NULL},
        {LIM "'process':{'allow_root':true}", "root-allowed", "/process/allow_root"},
        {LIM "'process':{'run_as':'root'}", "root-allowed", "/process/run_as"},
        {LIM "'process':{'run_as':'agent'}", "root-allowed", NULL},
        {LIM "'degrade':{'network_to_landlock_ports':true}", "degrade-allowed",
         "/degrade/network_to_landlock_ports"},
        {LIM "'degrade':{'resources':true}", "degrade-allowed", "/degrade/resources"},
        {LIM "'degrade':{'landlock_partial':true}", "degrade-allowed", "/degrade/landlock_partial"},
        {LIM "'mode':'audit','degrade':{'resources':true}", "degrade-allowed", NULL},
        {LIM "'degrade':{'resources':false}", "degrade-allowed", NULL},
};

static void test_lint_cases(void)
{
	for (size_t i = 0; i < ELEMENTSOF(lint_cases); i++) {
		const struct lint_case *c = &lint_cases[i];
		char doc[2048];
		snprintf(doc, sizeof(doc),
		         "{'name':'t','default_profile':'p','profiles':{'p':{%s}}}", c->body);
		Corral__Policy *p = compile_ok(doc);
		struct policy_findings f = {0};
		int n = policy_lint(p, &f);
		CU_ASSERT_EQUAL(n, (int)f.count);
		char want[256];
		if (c->pointer)
			snprintf(want, sizeof(want), "/profiles/p%s", c->pointer);
		bool got = has_finding(&f, c->code, c->pointer ? want : NULL);
		if (got != (c->pointer != NULL)) {
			fprintf(stderr, "lint case %zu (%s): %s; findings:\n", i, c->code,
			        c->pointer ? "missing" : "unexpected");
			for (size_t k = 0; k < f.count; k++)
				fprintf(stderr, "  %s %s %s\n", f.items[k].code, f.items[k].pointer,
				        f.items[k].message);
		}
		CU_ASSERT_EQUAL(got, c->pointer != NULL);
		/* Every finding has a known code, a pointer into this profile and a reason. */
		for (size_t k = 0; k < f.count; k++) {
			bool known = false;
			for (const char *const *code = policy_lint_codes(); *code; code++)
				known |= strcmp(*code, f.items[k].code) == 0;
			CU_ASSERT_TRUE(known);
			CU_ASSERT_TRUE(util_startswith(f.items[k].pointer, "/profiles/p/"));
			CU_ASSERT_TRUE(strlen(f.items[k].message) > 10);
		}
		policy_findings_free(&f);
		corral__policy__free_unpacked(p, NULL);
	}
}

static void test_lint_codes_covered(void)
{
	/* Each code is exercised by some case above, and documented in docs/policy.md. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/docs/policy.md", harness_source_dir());
	_cleanup_free_ char *doc = NULL;
	size_t len;
	CU_ASSERT_EQUAL_FATAL(util_read_file(path, 1 << 20, &doc, &len), 0);
	for (const char *const *code = policy_lint_codes(); *code; code++) {
		bool tested = false;
		for (size_t i = 0; i < ELEMENTSOF(lint_cases); i++)
			tested |= lint_cases[i].pointer && strcmp(lint_cases[i].code, *code) == 0;
		if (!tested)
			fprintf(stderr, "code %s has no positive test\n", *code);
		CU_ASSERT_TRUE(tested);
		char quoted[80];
		snprintf(quoted, sizeof(quoted), "`%s`", *code);
		if (!strstr(doc, quoted))
			fprintf(stderr, "code %s is not documented\n", *code);
		CU_ASSERT_PTR_NOT_NULL(strstr(doc, quoted));
	}
}

static void test_lint_accumulates(void)
{
	Corral__Policy *p = compile_ok(
	        "{'name':'t','default_profile':'a','profiles':{'a':{},'b':{'network':{'default':"
	        "'allow'}}}}");
	struct policy_findings f = {0};
	int n1 = policy_lint(p, &f);
	CU_ASSERT_EQUAL(n1, 3);
	CU_ASSERT_TRUE(has_finding(&f, "no-resource-limits", "/profiles/a/resources"));
	CU_ASSERT_TRUE(has_finding(&f, "network-default-allow", "/profiles/b/network/default"));
	/* A second call appends. */
	CU_ASSERT_EQUAL(policy_lint(p, &f), 3);
	CU_ASSERT_EQUAL(f.count, 6);
	policy_findings_free(&f);
	CU_ASSERT_EQUAL(f.count, 0);
	CU_ASSERT_PTR_NULL(f.items);
	policy_findings_free(NULL);
	CU_ASSERT_EQUAL(policy_lint(NULL, &f), -EINVAL);
	CU_ASSERT_EQUAL(policy_lint(p, NULL), -EINVAL);
	corral__policy__free_unpacked(p, NULL);
}

/* ---- schema and compiler agree ----------------------------------------------------------------
 */

/* The compiler's field list for the object at `doc`'s "zzz", from its unknown-field error. */
static void compiler_fields(const char *doc, char *out, size_t out_len)
{
	Corral__Policy *p = NULL;
	struct policy_error err;
	out[0] = '\0';
	CU_ASSERT_EQUAL_FATAL(compile_q(doc, &p, &err), -EINVAL);
	const char *list = strstr(err.reason, "expected one of: ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	snprintf(out, out_len, "%s", list + strlen("expected one of: "));
	char *close = strrchr(out, ')');
	if (close)
		*close = '\0';
}

/* Compares the schema object's "properties" keys with a ", "-separated list, as sets. */
static void assert_same_fields(json_t *schema_obj, const char *where, const char *doc)
{
	char list[256];
	compiler_fields(doc, list, sizeof(list));
	json_t *props = json_object_get(schema_obj, "properties");
	CU_ASSERT_PTR_NOT_NULL_FATAL(props);
	size_t n_list = 0;
	for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		n_list++;
		if (!json_object_get(props, tok))
			fprintf(stderr, "%s: compiler field %s missing from schema\n", where, tok);
		CU_ASSERT_PTR_NOT_NULL(json_object_get(props, tok));
	}
	if (json_object_size(props) != n_list)
		fprintf(stderr, "%s: schema has %zu fields, compiler %zu\n", where,
		        json_object_size(props), n_list);
	CU_ASSERT_EQUAL(json_object_size(props), n_list);
	CU_ASSERT_EQUAL(json_object_get(schema_obj, "additionalProperties"), json_false());
}

static void test_schema_matches_compiler(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/schema/policy.schema.json", harness_source_dir());
	json_error_t jerr;
	json_t *schema = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(schema);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(schema, "$schema")),
	                       "https://json-schema.org/draft/2020-12/schema");
	assert_same_fields(schema, "root",
	                   "{'name':'t','default_profile':'p','profiles':{'p':{}},'zzz':1}");
	json_t *profile = json_object_get(json_object_get(schema, "$defs"), "profile");
	assert_same_fields(profile, "profile", P("'zzz':1"));
	static const char *const sections[] = {"filesystem", "network",  "syscalls", "resources",
	                                       "process",    "requires", "degrade"};
	json_t *pprops = json_object_get(profile, "properties");
	for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc), P("'%s':{'zzz':1}"), sections[i]);
		assert_same_fields(json_object_get(pprops, sections[i]), sections[i], doc);
	}
	json_t *allow = json_object_get(
	        json_object_get(json_object_get(json_object_get(pprops, "network"), "properties"),
	                        "allow"),
	        "items");
	assert_same_fields(allow, "network.allow[]", P("'network':{'allow':[{'zzz':1}]}"));
	json_decref(schema);
}

static const struct harness_test compile_tests[] = {
        {"example_strict", test_example_strict},
        {"example_research", test_example_research},
        {"example_audited", test_example_audited},
        {"defaults", test_defaults},
        {"all_fields", test_all_fields},
        {"errors", test_errors},
        {"error_format", test_error_format},
        {"size_cap", test_size_cap},
        {"files", test_files},
        {"compact", test_compact},
        {"validators", test_validators},
        {"schema_matches_compiler", test_schema_matches_compiler},
        {NULL, NULL},
};

static const struct harness_test lint_tests[] = {
        {"cases", test_lint_cases},
        {"codes_covered", test_lint_codes_covered},
        {"accumulates", test_lint_accumulates},
        {NULL, NULL},
};

static const struct harness_suite suites[] = {
        {"compile", NULL, NULL, compile_tests},
        {"lint", NULL, NULL, lint_tests},
        {NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	return harness_main(argc, argv, suites);
}
