// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --web.config.file (see web_config.h): the YAML schema, every key checked
 * and every mistake one line naming the file and the line, and the files
 * the config names read in.  The TLS material is judged by
 * web_config_tls.c, the basic-auth hashes by basic_auth.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf, explicit_bzero under -std=c11 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "web_config.h"
#include "web_config_internal.h"

#define MAX_USERS	1024

/*
 * Messages quote names from the file, and YAML can put a newline or any
 * control byte in one: keep the message on one line.
 */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

struct parse {
	yaml_document_t *doc;
	const char *name;
	const char *dir;
	struct web_config *cfg;
	char *err;
	size_t err_size;
};

static int fail(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (at)
		snprintf(p->err, p->err_size, "web config %s: line %zu: %s",
			 p->name, at->start_mark.line + 1, why);
	else
		snprintf(p->err, p->err_size, "web config %s: %s", p->name,
			 why);
	return -EINVAL;
}

static yaml_node_t *node(struct parse *p, int id)
{
	return yaml_document_get_node(p->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ?
		(const char *)n->data.scalar.value : NULL;
}

/* "", ~ or null written plainly: the key is there without a value. */
static bool is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	if (!s || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") ||
	       !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* A scalar without NUL bytes in it (YAML can escape one in). */
static int get_string(struct parse *p, const yaml_node_t *key,
		      const yaml_node_t *val, const char **out)
{
	const char *s = scalar(val);

	if (!s)
		return fail(p, val, "%s: want a string", scalar(key));
	if (strlen(s) != val->data.scalar.length)
		return fail(p, val, "%s: NUL byte in value", scalar(key));
	*out = s;
	return 0;
}

static int set_str(struct parse *p, const yaml_node_t *key,
		   const yaml_node_t *val, char **dst)
{
	const char *s;
	int err;

	if (*dst)
		return fail(p, key, "%s given twice", scalar(key));
	if (is_null(val))
		return 0;
	err = get_string(p, key, val, &s);
	if (err)
		return err;
	*dst = strdup(s);
	return *dst ? 0 : fail(p, NULL, "out of memory");
}

static int set_file(struct parse *p, const yaml_node_t *key,
		    const yaml_node_t *val, char **dst)
{
	const char *s;
	int err, n;

	if (*dst)
		return fail(p, key, "%s given twice", scalar(key));
	if (is_null(val))
		return 0;
	err = get_string(p, key, val, &s);
	if (err)
		return err;
	if (s[0] == '/' || !p->dir || !*p->dir)
		*dst = strdup(s);
	else if ((n = asprintf(dst, "%s/%s", p->dir, s)) < 0)
		*dst = NULL;
	return *dst ? 0 : fail(p, NULL, "out of memory");
}

static const struct {
	const char *name;
	enum web_client_auth v;
} client_auths[] = {
	{ "NoClientCert", WEB_CLIENT_AUTH_NONE },
	{ "RequestClientCert", WEB_CLIENT_AUTH_REQUEST },
	{ "RequireAnyClientCert", WEB_CLIENT_AUTH_REQUIRE_ANY },
	{ "VerifyClientCertIfGiven", WEB_CLIENT_AUTH_VERIFY_IF_GIVEN },
	{ "RequireAndVerifyClientCert", WEB_CLIENT_AUTH_REQUIRE_VERIFY },
};

static int parse_version(struct parse *p, const yaml_node_t *key,
			 const yaml_node_t *val, enum web_tls_version *out)
{
	static const char *const names[] = { "TLS10", "TLS11", "TLS12",
					     "TLS13" };
	const char *s;
	size_t i;
	int err;

	if (is_null(val))
		return 0;
	err = get_string(p, key, val, &s);
	if (err)
		return err;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum web_tls_version)(WEB_TLS10 + i);
			return 0;
		}
	}
	return fail(p, val, "%s: unknown TLS version \"%s\" (TLS10, TLS11, "
		    "TLS12 or TLS13)", scalar(key), s);
}

/* Keys of the toolkit's format that this exporter does not implement. */
static bool toolkit_only(const char *k)
{
	static const char *const keys[] = {
		"client_allowed_sans", "cipher_suites",
		"prefer_server_cipher_suites", "curve_preferences",
		"http_server_config", "rate_limit",
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i]))
			return true;
	return false;
}

static int unknown_key(struct parse *p, const yaml_node_t *key,
		       const char *section)
{
	const char *k = scalar(key);

	if (toolkit_only(k))
		return fail(p, key, "%s%s%s is not supported by "
			    "kvm-unsync-exporter", section ? section : "",
			    section ? "." : "", k);
	return fail(p, key, "unknown key \"%s\"%s%s", k,
		    section ? " in " : "", section ? section : "");
}

/* Mapping keys are non-empty strings, each once. */
static int check_keys(struct parse *p, const yaml_node_t *map)
{
	yaml_node_pair_t *a, *b;

	for (a = map->data.mapping.pairs.start;
	     a < map->data.mapping.pairs.top; a++) {
		const yaml_node_t *k = node(p, a->key);

		if (!scalar(k) || is_null(k))
			return fail(p, k, "mapping keys must be strings");
		if (strlen(scalar(k)) != k->data.scalar.length)
			return fail(p, k, "NUL byte in a key");
		for (b = map->data.mapping.pairs.start; b < a; b++)
			if (!strcmp(scalar(node(p, b->key)), scalar(k)))
				return fail(p, k, "\"%s\" given twice",
					    scalar(k));
	}
	return 0;
}

static int parse_tls(struct parse *p, const yaml_node_t *map)
{
	struct web_config *c = p->cfg;
	yaml_node_pair_t *pair;
	bool auth_set = false;
	int err;

	if (is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return fail(p, map, "tls_server_config: want a mapping");
	err = check_keys(p, map);
	if (err)
		return err;
	c->tls = true;
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node(p, pair->key);
		const yaml_node_t *v = node(p, pair->value);
		const char *key = scalar(k);

		if (!strcmp(key, "cert_file"))
			err = set_file(p, k, v, &c->cert_file);
		else if (!strcmp(key, "key_file"))
			err = set_file(p, k, v, &c->key_file);
		else if (!strcmp(key, "client_ca_file"))
			err = set_file(p, k, v, &c->client_ca_file);
		else if (!strcmp(key, "cert"))
			err = set_str(p, k, v, &c->cert_pem);
		else if (!strcmp(key, "key"))
			err = set_str(p, k, v, &c->key_pem);
		else if (!strcmp(key, "client_ca"))
			err = set_str(p, k, v, &c->client_ca_pem);
		else if (!strcmp(key, "min_version"))
			err = parse_version(p, k, v, &c->min_version);
		else if (!strcmp(key, "max_version"))
			err = parse_version(p, k, v, &c->max_version);
		else if (!strcmp(key, "client_auth_type")) {
			const char *s;
			size_t i;

			auth_set = !is_null(v);
			if (!auth_set)
				continue;
			err = get_string(p, k, v, &s);
			if (err)
				return err;
			for (i = 0; i < sizeof(client_auths) /
					sizeof(client_auths[0]); i++)
				if (!strcmp(s, client_auths[i].name))
					break;
			if (i == sizeof(client_auths) / sizeof(client_auths[0]))
				return fail(p, v, "client_auth_type: unknown "
					    "value \"%s\"", s);
			c->client_auth = client_auths[i].v;
		} else
			err = unknown_key(p, k, "tls_server_config");
		if (err)
			return err;
	}
	if (c->cert_file && c->cert_pem)
		return fail(p, map, "tls_server_config: cert and cert_file "
			    "are exclusive");
	if (c->key_file && c->key_pem)
		return fail(p, map, "tls_server_config: key and key_file are "
			    "exclusive");
	if (c->client_ca_file && c->client_ca_pem)
		return fail(p, map, "tls_server_config: client_ca and "
			    "client_ca_file are exclusive");
	if (!c->cert_file && !c->cert_pem)
		return fail(p, map, "tls_server_config: missing cert_file");
	if (!c->key_file && !c->key_pem)
		return fail(p, map, "tls_server_config: missing key_file");
	if (c->min_version > c->max_version)
		return fail(p, map, "tls_server_config: min_version is above "
			    "max_version");
	if ((c->client_auth == WEB_CLIENT_AUTH_VERIFY_IF_GIVEN ||
	     c->client_auth == WEB_CLIENT_AUTH_REQUIRE_VERIFY) &&
	    !c->client_ca_file && !c->client_ca_pem)
		return fail(p, map, "tls_server_config: client_auth_type %s "
			    "needs client_ca_file",
			    c->client_auth == WEB_CLIENT_AUTH_REQUIRE_VERIFY ?
			    "RequireAndVerifyClientCert" :
			    "VerifyClientCertIfGiven");
	if (!auth_set && (c->client_ca_file || c->client_ca_pem))
		return fail(p, map, "tls_server_config: client_ca_file "
			    "without client_auth_type (want "
			    "RequireAndVerifyClientCert?)");
	if (c->client_auth == WEB_CLIENT_AUTH_NONE &&
	    (c->client_ca_file || c->client_ca_pem))
		return fail(p, map, "tls_server_config: client_ca_file with "
			    "client_auth_type NoClientCert");
	return 0;
}

static int parse_users(struct parse *p, const yaml_node_t *map)
{
	struct web_config *c = p->cfg;
	yaml_node_pair_t *pair;
	size_t n;
	int err;

	if (is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return fail(p, map, "basic_auth_users: want a mapping of user "
			    "names to bcrypt hashes");
	err = check_keys(p, map);
	if (err)
		return err;
	n = (size_t)(map->data.mapping.pairs.top -
		     map->data.mapping.pairs.start);
	if (n > MAX_USERS)
		return fail(p, map, "basic_auth_users: more than %d users",
			    MAX_USERS);
	if (!n)
		return 0;
	c->users = calloc(n, sizeof(*c->users));
	if (!c->users)
		return fail(p, NULL, "out of memory");
	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node(p, pair->key);
		const yaml_node_t *v = node(p, pair->value);
		struct web_user *u = &c->users[c->nr_users];
		const char *h;

		if (strchr(scalar(k), ':'))
			return fail(p, k, "basic_auth_users: user name \"%s\" "
				    "has a ':'", scalar(k));
		if (is_null(v) || !scalar(v))
			return fail(p, v, "basic_auth_users: %s: want a bcrypt "
				    "hash", scalar(k));
		err = get_string(p, k, v, &h);
		if (err)
			return err;
		if (!web_bcrypt_shaped(h))
			return fail(p, v, "basic_auth_users: %s: not a bcrypt "
				    "hash ($2a$, $2b$ or $2y$, cost 04-31, 60 "
				    "characters)", scalar(k));
		if (web_bcrypt_cost(h) > WEB_BCRYPT_MAX_COST)
			return fail(p, v, "basic_auth_users: %s: bcrypt cost %d "
				    "is above %d, the most a check may take "
				    "here: hash the password again with a "
				    "lower cost (htpasswd -nBC %d %s)",
				    scalar(k), web_bcrypt_cost(h),
				    WEB_BCRYPT_MAX_COST, WEB_BCRYPT_MAX_COST,
				    scalar(k));
		u->name = strdup(scalar(k));
		u->hash = strdup(h);
		c->nr_users++;
		if (!u->name || !u->hash)
			return fail(p, NULL, "out of memory");
	}
	return 0;
}

static int parse_root(struct parse *p, const yaml_node_t *root)
{
	yaml_node_pair_t *pair;
	int err;

	if (!root || is_null(root))
		return 0;	/* an empty file: plain HTTP, no auth */
	if (root->type != YAML_MAPPING_NODE)
		return fail(p, root, "want a mapping at the top level");
	err = check_keys(p, root);
	if (err)
		return err;
	for (pair = root->data.mapping.pairs.start;
	     pair < root->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = node(p, pair->key);
		const yaml_node_t *v = node(p, pair->value);

		if (!strcmp(scalar(k), "tls_server_config"))
			err = parse_tls(p, v);
		else if (!strcmp(scalar(k), "basic_auth_users"))
			err = parse_users(p, v);
		else
			err = unknown_key(p, k, NULL);
		if (err)
			return err;
	}
	return 0;
}

int web_config_parse(const char *text, size_t len, const char *name,
		     const char *dir, struct web_config *cfg,
		     char *err, size_t err_size)
{
	struct parse p = {
		.name = name, .dir = dir, .cfg = cfg,
		.err = err, .err_size = err_size,
	};
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->min_version = WEB_TLS12;
	cfg->max_version = WEB_TLS13;
	err[0] = '\0';
	if (len > WEB_CONFIG_MAX_SIZE)
		return fail(&p, NULL, "larger than %d bytes",
			    WEB_CONFIG_MAX_SIZE);
	if (!yaml_parser_initialize(&parser))
		return fail(&p, NULL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		char why[200];

		snprintf(why, sizeof(why), "%s%s%s",
			 parser.problem ? parser.problem : "YAML error",
			 parser.context ? " " : "",
			 parser.context ? parser.context : "");
		snprintf(err, err_size, "web config %s: line %zu: bad YAML: %s",
			 name, parser.problem_mark.line + 1, why);
		one_line(err);
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	p.doc = &doc;
	ret = parse_root(&p, yaml_document_get_root_node(&doc));
	if (!ret) {
		/* a second document would be ignored: refuse it */
		if (!yaml_parser_load(&parser, &extra)) {
			ret = fail(&p, NULL, "bad YAML after the first "
				   "document: %s", parser.problem ?
				   parser.problem : "error");
		} else {
			if (yaml_document_get_root_node(&extra))
				ret = fail(&p, NULL, "more than one YAML "
					   "document");
			yaml_document_delete(&extra);
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (ret) {
		web_config_free(cfg);
		one_line(err);
	}
	return ret;
}

void web_config_free(struct web_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->client_ca_file);
	free(cfg->cert_pem);
	if (cfg->key_pem) {
		explicit_bzero(cfg->key_pem, strlen(cfg->key_pem));
		free(cfg->key_pem);
	}
	free(cfg->client_ca_pem);
	for (i = 0; i < cfg->nr_users; i++) {
		free(cfg->users[i].name);
		free(cfg->users[i].hash);
	}
	free(cfg->users);
	memset(cfg, 0, sizeof(*cfg));
}

/* The whole file, NUL-terminated, at most WEB_CONFIG_MAX_SIZE bytes. */
static int read_file(const char *path, char **out, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	char *buf;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto out;
	}
	err = -EISDIR;
	if (S_ISDIR(st.st_mode))
		goto out;
	err = -EFBIG;
	if (st.st_size > WEB_CONFIG_MAX_SIZE)
		goto out;
	err = -ENOMEM;
	buf = malloc(WEB_CONFIG_MAX_SIZE + 1);
	if (!buf)
		goto out;
	/* read to EOF: the size of /dev/stdin or a FIFO says nothing */
	while (got <= WEB_CONFIG_MAX_SIZE &&
	       (n = read(fd, buf + got, WEB_CONFIG_MAX_SIZE + 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got > WEB_CONFIG_MAX_SIZE) {
		err = n < 0 ? -errno : -EFBIG;
		free(buf);
		goto out;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	err = 0;
out:
	close(fd);
	return err;
}

static int read_pem(const char *cfg_path, const char *key, const char *path,
		    char **out, char *err, size_t err_size)
{
	size_t len;
	int e = read_file(path, out, &len);

	if (e) {
		snprintf(err, err_size, "web config %s: %s %s: cannot read: %s",
			 cfg_path, key, path, strerror(-e));
		return e;
	}
	if (strlen(*out) != len) {
		snprintf(err, err_size, "web config %s: %s %s: NUL byte in "
			 "the file, not PEM", cfg_path, key, path);
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

int web_config_load(const char *path, struct web_config *cfg,
		    char *err, size_t err_size)
{
	char *text = NULL, *dir, *slash;
	size_t len;
	int e;

	memset(cfg, 0, sizeof(*cfg));
	e = read_file(path, &text, &len);
	if (e) {
		snprintf(err, err_size, "web config %s: cannot read: %s", path,
			 strerror(-e));
		one_line(err);
		return e;
	}
	dir = strdup(path);
	if (!dir) {
		free(text);
		snprintf(err, err_size, "web config %s: out of memory", path);
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	e = web_config_parse(text, len, path, slash ? dir : NULL, cfg, err,
			     err_size);
	free(dir);
	free(text);
	if (e || !cfg->tls)
		return e;
	if (cfg->cert_file)
		e = read_pem(path, "cert_file", cfg->cert_file, &cfg->cert_pem,
			     err, err_size);
	if (!e && cfg->key_file)
		e = read_pem(path, "key_file", cfg->key_file, &cfg->key_pem,
			     err, err_size);
	if (!e && cfg->client_ca_file)
		e = read_pem(path, "client_ca_file", cfg->client_ca_file,
			     &cfg->client_ca_pem, err, err_size);
	if (!e)
		e = web_config_check_tls(path, cfg, err, err_size);
	if (e) {
		web_config_free(cfg);
		one_line(err);
	}
	return e;
}
