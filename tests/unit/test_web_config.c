// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --web.config.file: the parser (valid files and each error), loading the
 * PEM files, bcrypt, the Authorization header, and the server with basic
 * auth, reloads, a passed-in listening socket and its connection bounds
 * over real loopback sockets.  TLS over the wire is tested with curl in
 * tests/bare/test_web.py.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* mkdtemp, struct timeval under -std=c11 */
#endif
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "http.h"
#include "test.h"
#include "web_config.h"

/* A self-signed P-256 certificate (valid for a century), its key, and a
 * key that does not match it. */
static const char test_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBgDCCASWgAwIBAgIUG+ulsRnyn75AXwW1vxtQi2X6oe8wCgYIKoZIzj0EAwIw\n"
	"FDESMBAGA1UEAwwJdW5pdC10ZXN0MCAXDTI2MTEyNTAxNDU1OFoYDzIxMjYxMTAx\n"
	"MDE0NTU4WjAUMRIwEAYDVQQDDAl1bml0LXRlc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
	"PQMBBwNCAAQdSncTv3t/WaEZOMd4oqRs9InN73gkmjIShCCh83apRZKDSPRjGNeL\n"
	"4zFRrF4ocK/5WS0VrlOXqMyTX9NUaIdZo1MwUTAdBgNVHQ4EFgQU7TBn5uMHyWTI\n"
	"SBgHAns6/QhSse8wHwYDVR0jBBgwFoAU7TBn5uMHyWTISBgHAns6/QhSse8wDwYD\n"
	"VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA1FdnGecHYJ3ktsaUzaRq\n"
	"50oDmhtHzW9zf243AsP6uz0CIQCDMGxYZj5ldoeERLQwkFQ+lQQIK5C+66MOMwrK\n"
	"HuktYg==\n"
	"-----END CERTIFICATE-----\n";

static const char test_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqjPAXHkuu3T2ty4g\n"
	"Ke+RieC/pj+9FqzYCXgbKQW3zQChRANCAAQdSncTv3t/WaEZOMd4oqRs9InN73gk\n"
	"mjIShCCh83apRZKDSPRjGNeL4zFRrF4ocK/5WS0VrlOXqMyTX9NUaIdZ\n"
	"-----END PRIVATE KEY-----\n";

static const char other_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDt9eLFvd2Ns9LSAE\n"
	"46TDXfZV8J7dnMWLO8uSmHvDrO2hRANCAATYgmMkSLAAVQWmbkNbWaQTGSKZ0rfP\n"
	"cnqWGbef8pJ5ybllQt467oasVw1VKFhls/ifY+XeXW04ZDRNm9dnr0Jy\n"
	"-----END PRIVATE KEY-----\n";


static char tmpdir[64];

static int parse_text(const char *text, struct web_config *c, char *err,
		      size_t n)
{
	return web_config_parse(text, strlen(text), "web.yml", "/etc/kue", c,
				err, n);
}

/* A bcrypt hash of password with cost 4 (fast), made here. */
static void make_hash(const char *password, char *out, size_t size)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *d = calloc(1, sizeof(*d));
	const char *h = NULL;

	out[0] = '\0';
	if (d && crypt_gensalt_rn("$2b$", 4, NULL, 0, setting,
				  sizeof(setting)))
		h = crypt_rn(password, setting, d, (int)sizeof(*d));
	if (h && h[0] == '$')
		snprintf(out, size, "%s", h);
	free(d);
}

static void test_parse_valid(void)
{
	struct web_config c;
	char err[512], prio[128], text[2048], hash[128];

	/* a null section beside one that turns something on */
	CHECK_INT(parse_text("tls_server_config:\nbasic_auth_users: {a: "
			     "'$2y$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj0"
			     "3dBjxJRxKF7C'}\n", &c, err, sizeof(err)), 0);
	CHECK(!c.tls && c.nr_users == 1);
	web_config_free(&c);

	make_hash("secret", hash, sizeof(hash));
	CHECK(hash[0] == '$');
	snprintf(text, sizeof(text),
		 "tls_server_config:\n"
		 "  cert_file: server.crt\n"
		 "  key_file: /abs/server.key\n"
		 "  client_auth_type: RequireAndVerifyClientCert\n"
		 "  client_ca_file: \"ca dir/ca.crt\"\n"
		 "  min_version: TLS13\n"
		 "basic_auth_users:\n"
		 "  alice: %s\n"
		 "  'bob smith': '$2y$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n",
		 hash);
	CHECK_INT(parse_text(text, &c, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK(c.tls);
	CHECK_STR(c.cert_file, "/etc/kue/server.crt");
	CHECK_STR(c.key_file, "/abs/server.key");
	CHECK_STR(c.client_ca_file, "/etc/kue/ca dir/ca.crt");
	CHECK(c.cert_pem == NULL);	/* parse reads no file */
	CHECK_INT(c.client_auth, WEB_CLIENT_AUTH_REQUIRE_VERIFY);
	CHECK_INT(c.min_version, WEB_TLS13);
	CHECK_INT(c.max_version, WEB_TLS13);
	CHECK_INT(c.nr_users, 2);
	if (c.nr_users == 2) {
		CHECK_STR(c.users[0].name, "alice");
		CHECK_STR(c.users[0].hash, hash);
		CHECK_STR(c.users[1].name, "bob smith");
	}
	CHECK_INT(web_config_priorities(&c, prio, sizeof(prio)), 0);
	CHECK_STR(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3");
	CHECK_INT(web_config_priorities(&c, prio, 10), -ENOSPC);
	web_config_free(&c);

	/* defaults, inline PEM, no dir: names stay as written */
	snprintf(text, sizeof(text), "tls_server_config:\n"
		 "  cert: |\n    x\n"
		 "  key_file: k.pem\n"
		 "  client_auth_type: NoClientCert\n");
	CHECK_INT(web_config_parse(text, strlen(text), "w", NULL, &c, err,
				   sizeof(err)), 0);
	CHECK_STR(c.cert_pem, "x\n");
	CHECK_STR(c.key_file, "k.pem");
	CHECK_INT(c.client_auth, WEB_CLIENT_AUTH_NONE);
	CHECK_INT(c.min_version, WEB_TLS12);
	CHECK_INT(c.max_version, WEB_TLS13);
	CHECK_INT(web_config_priorities(&c, prio, sizeof(prio)), 0);
	CHECK_STR(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3");
	web_config_free(&c);

	CHECK_INT(parse_text("tls_server_config: {cert_file: a, key_file: b, "
			     "min_version: TLS10, max_version: TLS12, "
			     "client_auth_type: VerifyClientCertIfGiven, "
			     "client_ca_file: c}\n", &c, err, sizeof(err)), 0);
	CHECK_INT(c.client_auth, WEB_CLIENT_AUTH_VERIFY_IF_GIVEN);
	CHECK_INT(web_config_priorities(&c, prio, sizeof(prio)), 0);
	CHECK_STR(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.1:"
			"+VERS-TLS1.2");
	web_config_free(&c);
	web_config_free(&c);	/* twice is fine */
}

struct bad_case {
	const char *text;
	const char *want;	/* in the message */
};

static void test_parse_errors(void)
{
	static const struct bad_case cases[] = {
		{ "a: [\n", "line 2: bad YAML" },
		{ "\tx: 1\n", "bad YAML" },
		{ "- 1\n- 2\n", "line 1: want a mapping at the top level" },
		{ "just text\n", "want a mapping" },
		{ "tls_server_configs: {}\n", "unknown key \"tls_server_configs\"" },
		/* a newline in a name never splits the message */
		{ "\"a\\nb\": 1\n", "unknown key \"a?b\"" },
		{ "rate_limit: {burst: 2}\n", "rate_limit is not supported" },
		{ "http_server_config: {http2: false}\n",
		  "http_server_config is not supported" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "cipher_suites: [X]}\n",
		  "tls_server_config.cipher_suites is not supported" },
		{ "tls_server_config: {cert_file: a, key_file: b, certfile: c}\n",
		  "unknown key \"certfile\" in tls_server_config" },
		{ "basic_auth_users: {}\nbasic_auth_users: {}\n",
		  "line 2: \"basic_auth_users\" given twice" },
		{ "tls_server_config: {cert_file: a, cert_file: b, key_file: c}\n",
		  "\"cert_file\" given twice" },
		{ "tls_server_config: [a]\n", "tls_server_config: want a mapping" },
		{ "tls_server_config: {key_file: b}\n", "missing cert_file" },
		{ "tls_server_config: {cert_file: a}\n", "missing key_file" },
		{ "tls_server_config: {cert: a, cert_file: a, key_file: b}\n",
		  "cert and cert_file are exclusive" },
		{ "tls_server_config: {cert_file: [a], key_file: b}\n",
		  "cert_file: want a string" },
		{ "tls_server_config: {cert_file: \"a\\0b\", key_file: b}\n",
		  "NUL byte" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "min_version: TLS14}\n",
		  "min_version: unknown TLS version \"TLS14\"" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "min_version: TLS13, max_version: TLS12}\n",
		  "min_version is above max_version" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "client_auth_type: RequireClientCert}\n",
		  "client_auth_type: unknown value \"RequireClientCert\"" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "client_auth_type: RequireAndVerifyClientCert}\n",
		  "RequireAndVerifyClientCert needs client_ca_file" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "client_ca_file: c}\n",
		  "client_ca_file without client_auth_type" },
		{ "tls_server_config: {cert_file: a, key_file: b, "
		  "client_auth_type: NoClientCert, client_ca_file: c}\n",
		  "client_ca_file with client_auth_type NoClientCert" },
		{ "basic_auth_users: [alice]\n", "basic_auth_users: want a mapping" },
		{ "basic_auth_users:\n  alice: secret\n",
		  "line 2: basic_auth_users: alice: not a bcrypt hash" },
		{ "basic_auth_users:\n  alice:\n", "alice: want a bcrypt hash" },
		{ "basic_auth_users:\n  alice: [x]\n", "alice: want a bcrypt hash" },
		{ "basic_auth_users:\n  alice: '$2b$03$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n",
		  "not a bcrypt hash" },
		{ "basic_auth_users:\n  alice: '$1$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n",
		  "not a bcrypt hash" },
		{ "basic_auth_users:\n  'a:b': '$2y$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n",
		  "user name \"a:b\" has a ':'" },
		{ "basic_auth_users:\n  [a]: x\n", "mapping keys must be strings" },
		{ "a: 1\n---\nb: 2\n", "unknown key \"a\"" },
		{ "{}\n---\nb: 2\n", "more than one YAML document" },
		{ "{}\n---\n[\n", "bad YAML after the first document" },
	};
	struct web_config c;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse_text(cases[i].text, &c, err, sizeof(err));

		if (r != -EINVAL || !strstr(err, cases[i].want) ||
		    strncmp(err, "web config web.yml: ", 20) ||
		    strchr(err, '\n')) {
			test_failed++;
			fprintf(stderr, "case %zu: %d \"%s\", want \"%s\"\n",
				i, r, err, cases[i].want);
		} else {
			test_passed++;
		}
		CHECK(!c.tls && !c.users && !c.cert_file);	/* emptied */
		web_config_free(&c);
	}
	/* a message cut to the buffer is still a string */
	CHECK_INT(parse_text("x: 1\n", &c, err, 8), -EINVAL);
	CHECK_INT((long long)strlen(err), 7);
}

/*
 * A file that turns on neither TLS nor basic auth is refused: empty,
 * blank, comments, a bare "---", null or empty sections.
 */
static void test_parse_empty(void)
{
	static const char *const texts[] = {
		"", " \n  \n\n", "# nothing\n---\n", "---\n...\n", "~\n",
		"null\n", "{}\n", "tls_server_config:\n",
		"tls_server_config:\nbasic_auth_users: ~\n",
		"basic_auth_users: {}\n",
	};
	struct web_config c;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		CHECK_INT(parse_text(texts[i], &c, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "web config web.yml: turns on neither TLS "
			      "nor basic auth") == err);
		web_config_free(&c);
	}
}

/*
 * Every prefix of a full config, as an editor mid-write leaves it: one
 * that parses must turn something on, and if a reload took it, it would
 * keep TLS, verified client certificates and basic auth in force.
 */
static void test_cut_short(void)
{
	static const char full[] =
		"tls_server_config:\n"
		"  cert_file: server.crt\n"
		"  key_file: server.key\n"
		"  client_auth_type: RequireAndVerifyClientCert\n"
		"  client_ca_file: ca.crt\n"
		"basic_auth_users:\n"
		"  alice: '$2y$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n"
		"  bob: '$2y$10$E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C'\n";
	struct web_config all, c;
	size_t n, parsed = 0, applied = 0;
	char err[512];

	CHECK_INT(parse_text(full, &all, err, sizeof(err)), 0);
	for (n = 0; n < sizeof(full) - 1; n++) {
		if (web_config_parse(full, n, "web.yml", "/etc/kue", &c, err,
				     sizeof(err)))
			continue;
		parsed++;
		CHECK(c.tls || c.nr_users);
		if (!web_config_weakens(&all, &c)) {
			applied++;
			CHECK(c.tls && c.nr_users >= 1 &&
			      c.client_auth == WEB_CLIENT_AUTH_REQUIRE_VERIFY);
		}
		web_config_free(&c);
	}
	/* some prefixes do parse: the weakening check is what stops them */
	CHECK(parsed > applied);
	CHECK(applied > 0);	/* bob's line cut off: alice is still there */
	web_config_free(&all);
}

/* What a reload may not take away, pair by pair. */
static void test_weakens(void)
{
	static const struct {
		enum web_client_auth from, to;
		const char *want;
	} auths[] = {
		{ WEB_CLIENT_AUTH_REQUIRE_VERIFY, WEB_CLIENT_AUTH_VERIFY_IF_GIVEN,
		  "stops requiring client certificates" },
		{ WEB_CLIENT_AUTH_REQUIRE_VERIFY, WEB_CLIENT_AUTH_REQUIRE_ANY,
		  "stops verifying client certificates" },
		{ WEB_CLIENT_AUTH_REQUIRE_ANY, WEB_CLIENT_AUTH_REQUEST,
		  "stops requiring client certificates" },
		{ WEB_CLIENT_AUTH_VERIFY_IF_GIVEN, WEB_CLIENT_AUTH_NONE,
		  "stops verifying client certificates" },
		{ WEB_CLIENT_AUTH_REQUEST, WEB_CLIENT_AUTH_NONE, NULL },
		{ WEB_CLIENT_AUTH_NONE, WEB_CLIENT_AUTH_REQUIRE_VERIFY, NULL },
		{ WEB_CLIENT_AUTH_VERIFY_IF_GIVEN,
		  WEB_CLIENT_AUTH_REQUIRE_VERIFY, NULL },
	};
	struct web_config a = { .tls = true }, b = { .tls = true };
	const char *w;
	size_t i;

	for (i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
		a.client_auth = auths[i].from;
		b.client_auth = auths[i].to;
		w = web_config_weakens(&a, &b);
		if (auths[i].want)
			CHECK_STR(w ? w : "(none)", auths[i].want);
		else
			CHECK(w == NULL);
	}
	a.client_auth = b.client_auth = WEB_CLIENT_AUTH_NONE;
	a.nr_users = b.nr_users = 1;
	b.tls = false;
	CHECK_STR(web_config_weakens(&a, &b), "turns TLS off");
	CHECK(web_config_weakens(&b, &a) == NULL);	/* TLS on: fine */
	a.nr_users = 2;
	b.tls = true;
	CHECK(web_config_weakens(&a, &b) == NULL);	/* fewer users: fine */
	b.nr_users = 0;
	CHECK_STR(web_config_weakens(&a, &b), "turns basic auth off");
}

/* seconds since start */
static double since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* text of n copies of unit, after head */
static char *repeat(const char *head, const char *unit, size_t n)
{
	size_t h = strlen(head), u = strlen(unit), i;
	char *s = malloc(h + u * n + 1);

	if (!s)
		return NULL;
	memcpy(s, head, h);
	for (i = 0; i < n; i++)
		memcpy(s + h + i * u, unit, u);
	s[h + u * n] = '\0';
	return s;
}

static void check_refused_fast(const char *text, const char *want)
{
	struct web_config c;
	struct timespec t0;
	char err[512];

	if (!text) {
		CHECK(!"out of memory");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_INT(web_config_parse(text, strlen(text), "web.yml", NULL, &c,
				   err, sizeof(err)), -EINVAL);
	/* the quadratic parts took 13 s to a minute here; this is a bound
	 * far above the linear time, not a benchmark */
	CHECK(since(&t0) < 5.0);
	if (!strstr(err, want))
		fprintf(stderr, "got \"%s\", want \"%s\"\n", err, want);
	CHECK(strstr(err, want) != NULL);
	web_config_free(&c);
}

/* Deep nesting, many keys: refused before libyaml's quadratic paths. */
static void test_parse_shape(void)
{
	char *t;
	size_t i;

	/* 200 KB of '[' took 67 s */
	t = repeat("basic_auth_users: ", "[", 200000);
	check_refused_fast(t, "line 1: nested deeper than 16 levels");
	free(t);
	t = repeat("a:\n", "- ", 400000);
	check_refused_fast(t, "nested deeper than 16 levels");
	free(t);
	t = repeat("", "{a: ", 100000);
	check_refused_fast(t, "nested deeper than 16 levels");
	free(t);
	/* 40,000 users (389 KB) held the main thread 13 s */
	t = malloc(40000 * 16 + 32);
	if (t) {
		strcpy(t, "basic_auth_users:\n");
		for (i = 0; i < 40000; i++)
			sprintf(t + strlen(t), "  u%zu: x\n", i);
	}
	check_refused_fast(t, "more than 2304 keys and values");
	free(t);
	/* under the node bound, many keys: still fast, and the first
	 * repeat in file order is the one named */
	t = malloc(1100 * 16 + 64);
	if (t) {
		strcpy(t, "basic_auth_users:\n");
		for (i = 0; i < 1100; i++)
			sprintf(t + strlen(t), "  u%zu: x\n", i);
		strcat(t, "  u7: x\n  u3: x\n");
	}
	check_refused_fast(t, "line 1102: \"u7\" given twice");
	free(t);
	check_refused_fast("a: 1\nb: 1\nb: 2\na: 2\n",
			   "line 3: \"b\" given twice");
}

static void write_file(const char *name, const char *text, char *path,
		       size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static int load(const char *yml, struct web_config *c, char *err, size_t n)
{
	char path[256];

	write_file("web.yml", yml, path, sizeof(path));
	return web_config_load(path, c, err, n);
}

/*
 * web_config_load(path) in a child with a 5 s alarm: a FIFO without a
 * writer held start-up (and, on SIGHUP, SIGTERM) for ever.  0 if it
 * failed with want in its message, 1 if not, -1 if it hung.
 */
static int load_in_child(const char *path, const char *want)
{
	struct web_config c;
	char err[1024];
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (!pid) {
		alarm(5);
		if (web_config_load(path, &c, err, sizeof(err)) >= 0 ||
		    !strstr(err, want)) {
			fprintf(stderr, "%s: \"%s\"\n", path, err);
			_exit(1);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	if (WIFSIGNALED(status))
		return -1;
	return WEXITSTATUS(status) ? 1 : 0;
}

/* Only regular files, of at most 1 MiB, config and PEM files alike. */
static void test_load_special(void)
{
	static const char not_regular[] = "cannot read: not a regular file";
	char fifo[256], big[256], cfg[256], yml[512];
	FILE *f;

	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	CHECK_INT(mkfifo(fifo, 0600), 0);
	CHECK_INT(load_in_child(fifo, not_regular), 0);
	CHECK_INT(load_in_child(tmpdir, not_regular), 0);
	CHECK_INT(load_in_child("/dev/null", not_regular), 0);
	snprintf(yml, sizeof(yml), "tls_server_config: {cert_file: server.crt, "
		 "key_file: fifo}\n");
	write_file("web.yml", yml, cfg, sizeof(cfg));
	CHECK_INT(load_in_child(cfg, "key_file "), 0);
	CHECK_INT(load_in_child(cfg, "/fifo: cannot read: not a regular file"),
		  0);
	snprintf(yml, sizeof(yml), "tls_server_config: {cert_file: /dev/zero, "
		 "key_file: server.key}\n");
	write_file("web.yml", yml, cfg, sizeof(cfg));
	CHECK_INT(load_in_child(cfg, "/dev/zero: cannot read: not a regular"),
		  0);

	/* a byte over 1 MiB: refused before it is read */
	snprintf(big, sizeof(big), "%s/big.yml", tmpdir);
	f = fopen(big, "w");
	if (f) {
		CHECK_INT(ftruncate(fileno(f), WEB_CONFIG_MAX_SIZE + 1), 0);
		fclose(f);
	}
	CHECK_INT(load_in_child(big, "cannot read: larger than 1 MiB"), 0);
	snprintf(yml, sizeof(yml), "tls_server_config: {cert_file: big.yml, "
		 "key_file: server.key}\n");
	write_file("web.yml", yml, cfg, sizeof(cfg));
	CHECK_INT(load_in_child(cfg, "big.yml: cannot read: larger than 1 MiB"),
		  0);
	unlink(big);
	unlink(fifo);
}

static void test_load(void)
{
	struct web_config c;
	char err[1024], path[256], text[512];
	int r;

	write_file("server.crt", test_cert, path, sizeof(path));
	write_file("server.key", test_key, path, sizeof(path));
	write_file("other.key", other_key, path, sizeof(path));
	write_file("garbage.pem", "-----BEGIN CERTIFICATE-----\nnope\n"
		   "-----END CERTIFICATE-----\n", path, sizeof(path));

	/* relative names are relative to the config file's directory */
	r = load("tls_server_config:\n  cert_file: server.crt\n"
		 "  key_file: server.key\n"
		 "  client_auth_type: RequireAndVerifyClientCert\n"
		 "  client_ca_file: server.crt\n", &c, err, sizeof(err));
	CHECK_INT(r, 0);
	if (!r) {
		CHECK_STR(c.cert_pem, test_cert);
		CHECK_STR(c.key_pem, test_key);
		CHECK_STR(c.client_ca_pem, test_cert);
	} else {
		fprintf(stderr, "%s\n", err);
	}
	web_config_free(&c);

	snprintf(path, sizeof(path), "%s/none.yml", tmpdir);
	CHECK_INT(web_config_load(path, &c, err, sizeof(err)), -ENOENT);
	snprintf(text, sizeof(text), "web config %s: cannot read: No such file "
		 "or directory", path);
	CHECK_STR(err, text);
	test_load_special();

	CHECK_INT(load("tls_server_config: {cert_file: missing.crt, "
		       "key_file: server.key}\n", &c, err, sizeof(err)),
		  -ENOENT);
	CHECK(strstr(err, "cert_file ") && strstr(err, "/missing.crt: cannot "
						     "read: No such file"));
	CHECK_INT(load("tls_server_config: {cert_file: server.crt, "
		       "key_file: other.key}\n", &c, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "/other.key: cannot load: ") != NULL);
	CHECK_INT(load("tls_server_config: {cert_file: garbage.pem, "
		       "key_file: server.key}\n", &c, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "cert_file ") && strstr(err, "/garbage.pem: cannot "
						     "load: "));
	CHECK_INT(load("tls_server_config: {cert_file: server.crt, "
		       "key_file: server.key, client_auth_type: "
		       "RequireAndVerifyClientCert, client_ca_file: "
		       "server.key}\n", &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "client_ca_file ") != NULL);
	CHECK_INT(load("basic_auth_users: nope: x\n", &c, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "/web.yml: line 1: bad YAML") != NULL);
	CHECK(strchr(err, '\n') == NULL);
	web_config_free(&c);
}

static void test_bcrypt(void)
{
	struct web_config c = { 0 };
	struct web_user users[2];
	char hash[128], y[128];

	make_hash("correct horse", hash, sizeof(hash));
	CHECK_INT((long long)strlen(hash), 60);
	CHECK(!strncmp(hash, "$2b$04$", 7));
	CHECK(web_bcrypt_check(hash, "correct horse"));
	CHECK(!web_bcrypt_check(hash, "correct hors"));
	CHECK(!web_bcrypt_check(hash, "correct horse "));
	CHECK(!web_bcrypt_check(hash, ""));
	/* $2y$ (htpasswd's) is the same algorithm */
	snprintf(y, sizeof(y), "%s", hash);
	y[2] = 'y';
	CHECK(web_bcrypt_check(y, "correct horse"));
	/* one digest character changed */
	y[2] = 'b';
	y[59] = y[59] == 'a' ? 'b' : 'a';
	CHECK(!web_bcrypt_check(y, "correct horse"));
	CHECK(!web_bcrypt_check("*0", "x"));
	CHECK(!web_bcrypt_check("", ""));
	CHECK(!web_bcrypt_check(NULL, "x"));
	CHECK(!web_bcrypt_check("$2b$04$short", "x"));

	users[0].name = "alice";
	users[0].hash = hash;
	users[1].name = "bob";
	users[1].hash = y;
	c.users = users;
	c.nr_users = 2;
	CHECK(web_config_check_user(&c, "alice", "correct horse"));
	CHECK(!web_config_check_user(&c, "alice", "wrong"));
	CHECK(!web_config_check_user(&c, "Alice", "correct horse"));
	CHECK(!web_config_check_user(&c, "carol", "correct horse"));
	CHECK(!web_config_check_user(&c, "bob", "correct horse"));
}

/* A hash of cost shaped as bcrypt's, without running it. */
static void shaped_hash(int cost, char *out, size_t size)
{
	snprintf(out, size, "$2b$%02d$%s", cost,
		 "E4ZRcsD/3VLtlfTSMorcQOyKdYODcqi.c5V3IHOj03dBjxJRxKF7C");
}

/*
 * A cost past WEB_BCRYPT_MAX_COST is refused at load, in one line naming
 * the user and the cost; WEB_BCRYPT_MAX_COST itself and below load.
 */
static void test_bcrypt_cost_bound(void)
{
	static const int costs[] = { 4, 10, 12, 13, 14, 20, 31 };
	struct web_config c;
	char text[256], hash[64], err[512], want[128];
	size_t i;
	int r;

	for (i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
		shaped_hash(costs[i], hash, sizeof(hash));
		CHECK_INT(web_bcrypt_cost(hash), costs[i]);
		snprintf(text, sizeof(text), "basic_auth_users:\n"
			 "  carol: '%s'\n", hash);
		r = parse_text(text, &c, err, sizeof(err));
		web_config_free(&c);
		if (costs[i] <= 12) {
			CHECK_INT(r, 0);
			continue;
		}
		CHECK_INT(r, -EINVAL);
		snprintf(want, sizeof(want), "line 2: basic_auth_users: carol: "
			 "bcrypt cost %d is above 12", costs[i]);
		CHECK(strstr(err, want) != NULL);
		CHECK(strchr(err, '\n') == NULL);
	}
}

/*
 * An unknown user name is checked against a hash of the configured
 * users' (highest) cost, not a fixed one: the check an unknown name costs
 * is the one a known name costs (item: names leak through timing).  That
 * the hash is one bcrypt really runs at that cost, not one it refuses at
 * once, is checked by running it.
 */
static void test_dummy_cost(void)
{
	struct web_config c = { 0 };
	struct web_user users[2];
	char h5[64], h12[64], got[64], setting[64];
	struct crypt_data *d = calloc(1, sizeof(*d));
	const char *out;

	shaped_hash(5, h5, sizeof(h5));
	shaped_hash(12, h12, sizeof(h12));
	users[0].name = "alice";
	users[0].hash = h12;
	users[1].name = "bob";
	users[1].hash = h5;
	c.users = users;
	c.nr_users = 1;
	CHECK_INT(web_config_dummy_cost(&c), 12);
	CHECK(!web_config_user_hash(&c, "mallory", got, sizeof(got)));
	CHECK(!strncmp(got, "$2b$12$", 7));
	CHECK_INT(web_bcrypt_cost(got), 12);
	CHECK(web_config_user_hash(&c, "alice", got, sizeof(got)));
	CHECK_STR(got, h12);
	c.nr_users = 2;
	CHECK_INT(web_config_dummy_cost(&c), 12);
	users[0].hash = h5;
	CHECK_INT(web_config_dummy_cost(&c), 5);
	CHECK(!web_config_user_hash(&c, "mallory", got, sizeof(got)));
	CHECK_INT(web_bcrypt_cost(got), 5);
	/* a setting libxcrypt runs, to a 60-character bcrypt hash */
	out = d ? crypt_rn("guess", got, d, (int)sizeof(*d)) : NULL;
	CHECK(out && !strncmp(out, "$2b$05$", 7) && strlen(out) == 60);
	snprintf(setting, sizeof(setting), "%.29s", got);
	CHECK(out && !strncmp(out, setting, 29));
	c.nr_users = 0;
	CHECK_INT(web_config_dummy_cost(&c), 10);
	free(d);
}

static void test_basic_header(void)
{
	char u[32], p[32];

	CHECK_INT(web_parse_basic_auth("Basic YWxpY2U6c2VjcmV0", u, sizeof(u),
				       p, sizeof(p)), 0);
	CHECK_STR(u, "alice");
	CHECK_STR(p, "secret");
	CHECK_INT(web_parse_basic_auth("basic \t YWxpY2U6c2VjcmV0  ", u,
				       sizeof(u), p, sizeof(p)), 0);
	CHECK_STR(u, "alice");
	/* "a:b:c": the password keeps its colons; empty parts are fine */
	CHECK_INT(web_parse_basic_auth("BASIC YTpiOmM=", u, sizeof(u), p,
				       sizeof(p)), 0);
	CHECK_STR(u, "a");
	CHECK_STR(p, "b:c");
	CHECK_INT(web_parse_basic_auth("Basic Ojo=", u, sizeof(u), p,
				       sizeof(p)), 0);	/* "::" */
	CHECK_STR(u, "");
	CHECK_STR(p, ":");
	CHECK_INT(web_parse_basic_auth("Basic YWxpY2U6", u, sizeof(u), p,
				       sizeof(p)), 0);	/* "alice:" */
	CHECK_STR(p, "");

	static const char *const bad[] = {
		"", "Basic", "Basic ", "BasicYWxpY2U6c2VjcmV0",
		"Bearer YWxpY2U6c2VjcmV0", "Digest username=\"a\"",
		"Basic YWxpY2U",		/* length not a multiple of 4 */
		"Basic YWxpY2U6c2VjcmV0=",
		"Basic YWxp Y2U6",		/* space inside */
		"Basic YW=pY2U6",		/* '=' inside */
		"Basic YWxpY2U=",		/* "alice": no colon */
		"Basic YR==",			/* non-zero bits in padding */
		"Basic YWI6YwBk",		/* "ab:c\0d" */
		"Basic ****",
		/* 40-byte user, more than the buffer */
		"Basic YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpi",
	};
	size_t i;
	int all = 1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (web_parse_basic_auth(bad[i], u, sizeof(u), p,
					 sizeof(p)) != -EINVAL) {
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
			all = 0;
		}
	}
	CHECK(all);
	CHECK_INT(web_parse_basic_auth(NULL, u, sizeof(u), p, sizeof(p)),
		  -EINVAL);
}

/* The server, over loopback. */

static int render(void *ctx, struct strbuf *out)
{
	(*(int *)ctx)++;
	sb_printf(out, "t_total 1\n");
	return 0;
}

/* A TCP connection to 127.0.0.1:port from source address src (or any). */
static int dial(const char *src, int port)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (src) {
		inet_pton(AF_INET, src, &a.sin_addr);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	}
	a.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* GET path with extra header lines; the status, the response in resp. */
static int get(int port, const char *path, const char *headers, char *resp,
	       size_t size)
{
	size_t got = 0, hlen = strlen(headers);
	char *req = malloc(hlen + 256);
	int fd, status = -1;
	ssize_t n;

	resp[0] = '\0';
	fd = dial(NULL, port);
	if (fd < 0 || !req)
		goto out;
	snprintf(req, hlen + 256, "GET %s HTTP/1.0\r\nHost: t\r\n%s\r\n", path,
		 headers);
	if (write(fd, req, strlen(req)) < 0)
		goto out;
	while (got + 1 < size && (n = read(fd, resp + got, size - 1 - got)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*c %d", &status) != 1)
		status = -1;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	return status;
}

static void test_server_auth(void)
{
	struct http_options o = HTTP_OPTIONS_INIT;
	struct http_server *srv;
	char path[256], yml[512], hash[128], resp[4096];
	int calls = 0, port;

	make_hash("s3cret", hash, sizeof(hash));
	snprintf(yml, sizeof(yml), "basic_auth_users:\n  alice: '%s'\n", hash);
	write_file("auth.yml", yml, path, sizeof(path));
	o.listen_address = "127.0.0.1:0";
	o.web_config_file = path;
	srv = http_start_opts(&o, render, &calls);
	CHECK(srv != NULL);
	if (!srv)
		return;
	port = http_port(srv);
	CHECK_INT(get(port, "/metrics", "", resp, sizeof(resp)), 401);
	CHECK(strstr(resp, "\r\nWWW-Authenticate: Basic realm=") != NULL);
	CHECK_INT(calls, 0);
	/* alice:s3cret, alice:wrong, bob:s3cret */
	CHECK_INT(get(port, "/metrics", "Authorization: Basic YWxpY2U6czNjcmV0"
		      "\r\n", resp, sizeof(resp)), 200);
	CHECK_INT(calls, 1);
	CHECK_INT(get(port, "/metrics", "Authorization: Basic YWxpY2U6d3Jvbmc="
		      "\r\n", resp, sizeof(resp)), 401);
	CHECK_INT(get(port, "/", "Authorization: Basic Ym9iOnMzY3JldA==\r\n",
		      resp, sizeof(resp)), 401);
	CHECK_INT(get(port, "/", "Authorization: Bearer x\r\n", resp,
		      sizeof(resp)), 401);

	/* reload: bob replaces alice on the next request */
	snprintf(yml, sizeof(yml), "basic_auth_users:\n  bob: '%s'\n", hash);
	write_file("auth.yml", yml, path, sizeof(path));
	CHECK_INT(http_reload(srv), 0);
	CHECK_INT(get(port, "/", "Authorization: Basic Ym9iOnMzY3JldA==\r\n",
		      resp, sizeof(resp)), 200);
	CHECK_INT(get(port, "/", "Authorization: Basic YWxpY2U6czNjcmV0\r\n",
		      resp, sizeof(resp)), 401);
	/* a bad file keeps bob */
	write_file("auth.yml", "basic_auth_users: [\n", path, sizeof(path));
	CHECK_INT(http_reload(srv), -EINVAL);
	CHECK_INT(get(port, "/", "Authorization: Basic Ym9iOnMzY3JldA==\r\n",
		      resp, sizeof(resp)), 200);
	/*
	 * an empty file (an editor mid-write), or one that drops the users:
	 * refused, bob still needed.  It opened /metrics to anyone.
	 */
	write_file("auth.yml", "", path, sizeof(path));
	CHECK_INT(http_reload(srv), -EINVAL);
	write_file("auth.yml", "tls_server_config: {cert_file: server.crt, "
		   "key_file: server.key}\n", path, sizeof(path));
	CHECK_INT(http_reload(srv), -EINVAL);
	CHECK_INT(get(port, "/metrics", "", resp, sizeof(resp)), 401);
	CHECK_INT(get(port, "/", "Authorization: Basic Ym9iOnMzY3JldA==\r\n",
		      resp, sizeof(resp)), 200);
	CHECK_INT(http_port(srv), port);
	http_stop(srv);

	/* a bad file at start: no server */
	write_file("bad.yml", "nope: 1\n", path, sizeof(path));
	o.web_config_file = path;
	CHECK(http_check_web_config(path) == -EINVAL);
	CHECK(http_start_opts(&o, render, &calls) == NULL);
	CHECK_INT(http_check_web_config(NULL), 0);
}

static void test_listen_fd(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct http_options o = HTTP_OPTIONS_INIT;
	struct http_server *srv;
	socklen_t len = sizeof(a);
	char resp[4096];
	int fd, calls = 0;

	/* a socket that does not listen is refused, and stays the caller's */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	o.listen_fd = fd;
	CHECK(http_start_opts(&o, render, &calls) == NULL);
	CHECK(fcntl(fd, F_GETFD) >= 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_INT(listen(fd, 16), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	srv = http_start_opts(&o, render, &calls);
	CHECK(srv != NULL);
	if (!srv) {
		close(fd);
		return;
	}
	CHECK_INT(http_port(srv), ntohs(a.sin_port));
	CHECK_INT(get(ntohs(a.sin_port), "/metrics", "", resp, sizeof(resp)),
		  200);
	CHECK_INT(calls, 1);
	http_stop(srv);
	CHECK(fcntl(fd, F_GETFD) < 0);	/* the server closed it */
}

/* source addresses of the slow clients: 127.0.0.2 and up */
#define HTTP_SLOW_ADDRS	5

static void test_bounds(void)
{
	int fds[HTTP_SLOW_ADDRS * HTTP_PER_IP_CONNECTION_LIMIT], i, n = 0;
	int calls = 0, port;
	struct http_server *srv;
	char resp[4096], *big, src[16];
	size_t big_len = 2 * HTTP_CONNECTION_MEMORY_LIMIT;

	srv = http_start("127.0.0.1:0", "/metrics", render, &calls);
	CHECK(srv != NULL);
	if (!srv)
		return;
	port = http_port(srv);

	/*
	 * Half-open connections, a byte of a request on each and never the
	 * rest, from more addresses than the per-address limit can stop:
	 * more than the server has slots.  libmicrohttpd alone would keep
	 * them for its 30 s idle timeout; get() gives up after 5 s.
	 */
	for (i = 0; i < (int)(sizeof(fds) / sizeof(fds[0])); i++) {
		snprintf(src, sizeof(src), "127.0.0.%d",
			 2 + i / HTTP_PER_IP_CONNECTION_LIMIT);
		fds[n] = dial(src, port);
		if (fds[n] >= 0 && write(fds[n], "G", 1) == 1)
			n++;
		else if (fds[n] >= 0)
			close(fds[n]);
	}
	if (n > HTTP_CONNECTION_LIMIT) {
		/* ...do not keep a scrape from another one out */
		CHECK_INT(get(port, "/metrics", "", resp, sizeof(resp)), 200);
		CHECK(strstr(resp, "closed_total{reason=\"evicted\"} 0\n") ==
		      NULL);
		CHECK(strstr(resp, "closed_total{reason=\"evicted\"} ") != NULL);
	} else {
		SKIP("cannot bind 127.0.0.2-6");
	}
	for (i = 0; i < n; i++)
		close(fds[i]);

	/* headers past the memory limit: an error status, and still serving */
	big = malloc(big_len + 32);
	if (big) {
		memcpy(big, "X-Big: ", 7);
		memset(big + 7, 'a', big_len);
		memcpy(big + 7 + big_len, "\r\n", 3);
		i = get(port, "/metrics", big, resp, sizeof(resp));
		CHECK(i == 431 || i == 413);
		free(big);
	}
	CHECK_INT(get(port, "/metrics", "", resp, sizeof(resp)), 200);
	http_stop(srv);
}

static void rm_tmpdir(void)
{
	static const char *const names[] = {
		"server.crt", "server.key", "other.key", "garbage.pem",
		"web.yml", "auth.yml", "bad.yml",
	};
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

UNIT_SUITE(web_config)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/unit-web.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		SKIP("mkdtemp failed");
		return;
	}
	test_parse_valid();
	test_parse_errors();
	test_parse_empty();
	test_cut_short();
	test_weakens();
	test_parse_shape();
	test_load();
	test_bcrypt();
	test_bcrypt_cost_bound();
	test_dummy_cost();
	test_basic_header();
	test_server_auth();
	test_listen_fd();
	test_bounds();
	rm_tmpdir();
}
