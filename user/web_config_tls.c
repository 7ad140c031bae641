// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The TLS side of a web config (see web_config.h): the certificate, key
 * and client CA checked with GnuTLS at load, so a bad file fails at start
 * or on reload and not at the first handshake; the priority string for
 * the version range; whether a reload changes any of it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include "web_config.h"
#include "web_config_internal.h"

static gnutls_datum_t datum(const char *s)
{
	gnutls_datum_t d = { (unsigned char *)s, (unsigned int)strlen(s) };

	return d;
}

/* Load the material the way libmicrohttpd will, to fail now, not later. */
int web_config_check_tls(const char *path, const struct web_config *c,
			 char *err, size_t err_size)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t cert = datum(c->cert_pem), key = datum(c->key_pem);
	const char *cert_name = c->cert_file ? c->cert_file : "(inline)";
	const char *key_name = c->key_file ? c->key_file : "(inline)";
	gnutls_x509_crt_t *list;
	unsigned int n = 0, i;
	int e;

	/*
	 * Parse the certificates on their own first: GnuTLS 3.7's
	 * set_x509_key_mem2() leaks on a malformed certificate.
	 */
	e = gnutls_x509_crt_list_import2(&list, &n, &cert,
					 GNUTLS_X509_FMT_PEM, 0);
	if (e < 0) {
		snprintf(err, err_size, "web config %s: cert_file %s: cannot "
			 "load: %s", path, cert_name, gnutls_strerror(e));
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
	if (gnutls_certificate_allocate_credentials(&cred)) {
		snprintf(err, err_size, "web config %s: out of memory", path);
		return -ENOMEM;
	}
	e = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key,
						 GNUTLS_X509_FMT_PEM, NULL, 0);
	if (e < 0) {
		snprintf(err, err_size, "web config %s: cert_file %s, key_file "
			 "%s: cannot load: %s", path, cert_name, key_name,
			 gnutls_strerror(e));
		goto out;
	}
	if (c->client_ca_pem) {
		gnutls_datum_t ca = datum(c->client_ca_pem);

		e = gnutls_certificate_set_x509_trust_mem(cred, &ca,
							  GNUTLS_X509_FMT_PEM);
		if (e <= 0) {
			snprintf(err, err_size, "web config %s: client_ca_file "
				 "%s: %s", path, c->client_ca_file ?
				 c->client_ca_file : "(inline)",
				 e < 0 ? gnutls_strerror(e) :
				 "no certificate in it");
			e = -1;
			goto out;
		}
	}
	e = 0;
out:
	gnutls_certificate_free_credentials(cred);
	return e ? -EINVAL : 0;
}

int web_config_priorities(const struct web_config *cfg, char *buf,
			  size_t size)
{
	size_t n;
	int v;

	n = (size_t)snprintf(buf, size, "NORMAL:-VERS-ALL");
	for (v = cfg->min_version; v <= (int)cfg->max_version && n < size; v++)
		n += (size_t)snprintf(buf + n, size - n, ":+VERS-TLS1.%d",
				      v - WEB_TLS10);
	return n < size ? 0 : -ENOSPC;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool web_config_same_tls(const struct web_config *a,
			 const struct web_config *b)
{
	return a->tls == b->tls && same_str(a->cert_pem, b->cert_pem) &&
	       same_str(a->key_pem, b->key_pem) &&
	       same_str(a->client_ca_pem, b->client_ca_pem) &&
	       a->client_auth == b->client_auth &&
	       a->min_version == b->min_version &&
	       a->max_version == b->max_version;
}

/* A client must show a certificate, whatever it is. */
static bool requires_cert(enum web_client_auth a)
{
	return a == WEB_CLIENT_AUTH_REQUIRE_ANY ||
	       a == WEB_CLIENT_AUTH_REQUIRE_VERIFY;
}

/* A certificate shown is checked against the CA. */
static bool verifies_cert(enum web_client_auth a)
{
	return a == WEB_CLIENT_AUTH_VERIFY_IF_GIVEN ||
	       a == WEB_CLIENT_AUTH_REQUIRE_VERIFY;
}

const char *web_config_weakens(const struct web_config *old,
			       const struct web_config *new)
{
	if (old->tls && !new->tls)
		return "turns TLS off";
	if (requires_cert(old->client_auth) && !requires_cert(new->client_auth))
		return "stops requiring client certificates";
	if (verifies_cert(old->client_auth) && !verifies_cert(new->client_auth))
		return "stops verifying client certificates";
	if (old->nr_users && !new->nr_users)
		return "turns basic auth off";
	return NULL;
}
