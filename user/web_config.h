/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The --web.config.file format operators know from node_exporter (the
 * Prometheus exporter-toolkit): TLS with optional client certificates, and
 * HTTP basic auth with bcrypt hashes.
 *
 *   tls_server_config:
 *     cert_file: server.crt          # or cert: <inline PEM>
 *     key_file: server.key           # or key: <inline PEM>
 *     client_auth_type: RequireAndVerifyClientCert
 *     client_ca_file: ca.crt         # or client_ca: <inline PEM>
 *     min_version: TLS13             # TLS10..TLS13, default TLS12
 *     max_version: TLS13             # default TLS13
 *   basic_auth_users:
 *     alice: $2y$10$...              # bcrypt ($2a$, $2b$, $2y$)
 *
 * Every other key, including the toolkit's keys this exporter does not
 * implement (cipher_suites, http_server_config, rate_limit, ...), is an
 * error: a setting the operator wrote must never be silently ignored.
 * Relative file names are relative to the config file's directory.
 *
 * Errors are one line, without a newline, naming the file and, for
 * syntax and schema errors, the line.
 */
#ifndef __WEB_CONFIG_H
#define __WEB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define WEB_CONFIG_MAX_SIZE	(1 << 20)	/* config and PEM files */

enum web_client_auth {
	WEB_CLIENT_AUTH_NONE,		/* NoClientCert */
	WEB_CLIENT_AUTH_REQUEST,	/* RequestClientCert (not verified) */
	WEB_CLIENT_AUTH_REQUIRE_ANY,	/* RequireAnyClientCert (not verified) */
	WEB_CLIENT_AUTH_VERIFY_IF_GIVEN,/* VerifyClientCertIfGiven */
	WEB_CLIENT_AUTH_REQUIRE_VERIFY,	/* RequireAndVerifyClientCert */
};

enum web_tls_version {
	WEB_TLS10 = 10,
	WEB_TLS11 = 11,
	WEB_TLS12 = 12,
	WEB_TLS13 = 13,
};

struct web_user {
	char *name;
	char *hash;		/* bcrypt, "$2b$10$..." */
};

struct web_config {
	bool tls;		/* tls_server_config given */
	/* as written in the file (NULL if absent); *_file already joined */
	char *cert_file, *key_file, *client_ca_file;
	/* PEM text: inline in the file, or read by web_config_load() */
	char *cert_pem, *key_pem, *client_ca_pem;
	enum web_client_auth client_auth;
	enum web_tls_version min_version, max_version;
	struct web_user *users;
	size_t nr_users;
};

/*
 * Parse YAML text (len bytes, need not be NUL-terminated) into *cfg.  name
 * is the file name for messages; dir (may be NULL) is prefixed to relative
 * *_file names.  Reads no file.  Returns 0, or -EINVAL with a message in
 * err; *cfg is then empty (web_config_free() is still safe).
 */
int web_config_parse(const char *text, size_t len, const char *name,
		     const char *dir, struct web_config *cfg,
		     char *err, size_t err_size);

/*
 * Read and parse path, read the PEM files it names, and check with GnuTLS
 * that the certificate and key load and match and that the client CA file
 * holds a certificate.  Returns 0 or -errno with a one-line message.
 */
int web_config_load(const char *path, struct web_config *cfg,
		    char *err, size_t err_size);

void web_config_free(struct web_config *cfg);

/*
 * The GnuTLS priority string for the configured version range, e.g.
 * "NORMAL:-VERS-ALL:+VERS-TLS1.3".  Returns 0, or -ENOSPC.
 */
int web_config_priorities(const struct web_config *cfg, char *buf,
			  size_t size);

/* Same TLS settings and material (so a reload need not restart TLS). */
bool web_config_same_tls(const struct web_config *a,
			 const struct web_config *b);

/*
 * What new would take away from old, as a phrase ("turns basic auth
 * off"), or NULL.  A reload does not apply such a file: one cut short
 * mid-write can drop a whole section, and must not open the port (see
 * http_reload).  Turning TLS, client certificate checks or basic auth off
 * takes a restart.
 */
const char *web_config_weakens(const struct web_config *old,
			       const struct web_config *new);

/*
 * An Authorization header value "Basic base64(user:password)": the scheme
 * is case-insensitive, spaces around the token are allowed, the base64
 * must be strict (padding, no junk).  Returns 0 with NUL-terminated user
 * and password, or -EINVAL (not Basic, bad base64, no ':', too long, NUL
 * in the decoded text).
 */
int web_parse_basic_auth(const char *header, char *user, size_t user_size,
			 char *pass, size_t pass_size);

/*
 * true if password matches the bcrypt hash; the comparison takes the
 * same time whatever bytes differ.
 */
bool web_bcrypt_check(const char *hash, const char *password);

/*
 * The most a bcrypt hash may cost: 2^12 rounds take about 0.2 s of CPU
 * on a 2020s server core, well under a second even on a loaded host.
 * exporter-toolkit (Go's bcrypt) takes up to 31, which is hours a check.
 */
#define WEB_BCRYPT_MAX_COST	12

/* The cost of a hash web_bcrypt_shaped() accepted: 4-31. */
int web_bcrypt_cost(const char *hash);

/* The cost of the hash an unknown user name is checked against. */
int web_config_dummy_cost(const struct web_config *cfg);

/*
 * Copy user's hash into hash (size: at least 61) and return true; for a
 * user not in cfg, copy a hash nobody knows the password of, of
 * web_config_dummy_cost(), and return false.
 */
bool web_config_user_hash(const struct web_config *cfg, const char *user,
			  char *hash, size_t size);

/*
 * true if user is in cfg and password matches.  An unknown user costs a
 * bcrypt all the same, so timing does not tell which users exist.
 */
bool web_config_check_user(const struct web_config *cfg, const char *user,
			   const char *password);

#endif /* __WEB_CONFIG_H */
