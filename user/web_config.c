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
 * The schema needs three levels and, with every user, some two thousand
 * keys and values; libyaml's scanner is quadratic in the nesting depth
 * (200 KB of '[' took a minute), so anything far past that is refused
 * before the tree is built.
 */
#define MAX_DEPTH	16
#define MAX_NODES	(2 * MAX_USERS + 256)

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

/* line: 1-based, 0 for none */
static int vfail(struct parse *p, size_t line, const char *fmt, va_list ap)
{
	char why[256];

	vsnprintf(why, sizeof(why), fmt, ap);
	if (line)
		snprintf(p->err, p->err_size, "web config %s: line %zu: %s",
			 p->name, line, why);
	else
		snprintf(p->err, p->err_size, "web config %s: %s", p->name,
			 why);
	return -EINVAL;
}

static int fail(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = vfail(p, at ? at->start_mark.line + 1 : 0, fmt, ap);
	va_end(ap);
	return e;
}

static int fail_line(struct parse *p, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_line(struct parse *p, size_t line, const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = vfail(p, line, fmt, ap);
	va_end(ap);
	return e;
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

struct key_at {
	const char *name;
	size_t at;		/* its place in the mapping */
};

static int key_at_cmp(const void *a, const void *b)
{
	const struct key_at *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->at > y->at) - (x->at < y->at);
}

/*
 * The place of the first key that repeats an earlier one (n if none),
 * sorting the names: comparing each key with all before it took 30 s on
 * a file of 40,000 keys.  keys[] holds the n names, in file order.
 */
static size_t first_repeat(struct key_at *keys, size_t n)
{
	size_t i, first = n;

	qsort(keys, n, sizeof(*keys), key_at_cmp);
	for (i = 1; i < n; i++)
		if (!strcmp(keys[i - 1].name, keys[i].name) &&
		    keys[i].at < first)
			first = keys[i].at;
	return first;
}

/* Mapping keys are non-empty strings, each once. */
static int check_keys(struct parse *p, const yaml_node_t *map)
{
	const yaml_node_pair_t *start = map->data.mapping.pairs.start;
	size_t i, n = (size_t)(map->data.mapping.pairs.top - start);
	struct key_at *keys;
	const yaml_node_t *k;

	keys = calloc(n ? n : 1, sizeof(*keys));
	if (!keys)
		return fail(p, NULL, "out of memory");
	for (i = 0; i < n; i++) {
		k = node(p, start[i].key);
		if (!scalar(k) || is_null(k)) {
			free(keys);
			return fail(p, k, "mapping keys must be strings");
		}
		if (strlen(scalar(k)) != k->data.scalar.length) {
			free(keys);
			return fail(p, k, "NUL byte in a key");
		}
		keys[i] = (struct key_at){ scalar(k), i };
	}
	i = first_repeat(keys, n);
	free(keys);
	if (i == n)
		return 0;
	k = node(p, start[i].key);
	return fail(p, k, "\"%s\" given twice", scalar(k));
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
		return 0;	/* refused by the caller: turns nothing on */
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

/*
 * Walk the events up to the first that goes deeper or further than a web
 * config ever does.  Bad YAML is left to the load, which says what is
 * wrong with it.
 */
static int check_shape(struct parse *p, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, nodes = 0, err = 0;
	bool end = false;

	if (!yaml_parser_initialize(&parser))
		return fail(p, NULL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!end && !err && yaml_parser_parse(&parser, &ev)) {
		size_t line = ev.start_mark.line + 1;

		switch (ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > MAX_DEPTH)
				err = fail_line(p, line, "nested deeper than "
						"%d levels", MAX_DEPTH);
			/* fall through */
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			if (!err && ++nodes > MAX_NODES)
				err = fail_line(p, line, "more than %d keys "
						"and values", MAX_NODES);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			end = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return err;
}

/*
 * After the first document is parsed: nothing else in the file, and
 * something turned on.
 */
static int check_rest(struct parse *p, yaml_parser_t *parser)
{
	yaml_document_t extra;
	int ret = 0;

	/* a second document would be ignored: refuse it */
	if (!yaml_parser_load(parser, &extra))
		return fail(p, NULL, "bad YAML after the first document: %s",
			    parser->problem ? parser->problem : "error");
	if (yaml_document_get_root_node(&extra))
		ret = fail(p, NULL, "more than one YAML document");
	yaml_document_delete(&extra);
	/*
	 * A file that turns nothing on is most likely empty or cut short
	 * (an editor mid-write): taking it for "plain HTTP, no users" would
	 * open the port to anyone.
	 */
	if (!ret && !p->cfg->tls && !p->cfg->nr_users)
		ret = fail(p, NULL, "turns on neither TLS nor basic auth "
			   "(empty or cut short?): complete it, or drop "
			   "--web.config.file to serve plain HTTP");
	return ret;
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
	yaml_document_t doc;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->min_version = WEB_TLS12;
	cfg->max_version = WEB_TLS13;
	err[0] = '\0';
	if (len > WEB_CONFIG_MAX_SIZE)
		return fail(&p, NULL, "larger than %d bytes",
			    WEB_CONFIG_MAX_SIZE);
	ret = check_shape(&p, text, len);
	if (ret) {
		one_line(err);
		return ret;
	}
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
	if (!ret)
		ret = check_rest(&p, &parser);
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

#define NOT_REGULAR	"not a regular file (a FIFO, device or directory " \
			"could block or never end)"
#define TOO_LARGE	"larger than 1 MiB"

static int read_fd(int fd, size_t size, char **out, size_t *len,
		   const char **why)
{
	size_t got = 0;
	ssize_t n = 0;
	char *buf;

	/* one byte more than fstat said, to see a file that grew */
	buf = malloc(size + 2);
	if (!buf)
		return -ENOMEM;
	while (got <= size && (n = read(fd, buf + got, size + 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got > size) {
		free(buf);
		if (n < 0)
			return -errno;
		*why = "grew while being read (still being written?)";
		return -EAGAIN;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/*
 * The whole file, NUL-terminated, at most WEB_CONFIG_MAX_SIZE bytes, read
 * once into memory.  Only a regular file: the main thread reads it on
 * SIGHUP, and a FIFO or a device could hold it (and SIGTERM) for ever.
 * O_NONBLOCK keeps the open itself from waiting on a FIFO's writer.
 * Returns 0 or -errno, and *why says it if strerror() would not.
 */
static int read_file(const char *path, char **out, size_t *len,
		     const char **why)
{
	struct stat st;
	int fd, err;

	*why = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		*why = NOT_REGULAR;
		err = -EINVAL;
	} else if (st.st_size > WEB_CONFIG_MAX_SIZE) {
		*why = TOO_LARGE;
		err = -EFBIG;
	} else {
		err = read_fd(fd, (size_t)st.st_size, out, len, why);
	}
	close(fd);
	return err;
}

static int read_pem(const char *cfg_path, const char *key, const char *path,
		    char **out, char *err, size_t err_size)
{
	const char *why;
	size_t len;
	int e = read_file(path, out, &len, &why);

	if (e) {
		snprintf(err, err_size, "web config %s: %s %s: cannot read: %s",
			 cfg_path, key, path, why ? why : strerror(-e));
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
	const char *why;
	size_t len;
	int e;

	memset(cfg, 0, sizeof(*cfg));
	e = read_file(path, &text, &len, &why);
	if (e) {
		snprintf(err, err_size, "web config %s: cannot read: %s", path,
			 why ? why : strerror(-e));
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
