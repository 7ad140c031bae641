// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Who may ask the HTTP server (see http_internal.h): the basic-auth users
 * of the web config, checked per request, and the client-certificate
 * policy, set up for each TLS handshake and checked again per request.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero under -std=c11 */
#endif
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include "http_internal.h"
#include "web_config.h"

#define REALM		"Basic realm=\"kvm-unsync-exporter\", charset=\"UTF-8\""
#define AUTH_MAX	256	/* user name or password, bytes */

/* 401 with a Basic challenge: wrong password, or none. */
enum MHD_Result http_reply_unauthorized(struct MHD_Connection *conn)
{
	static const char text[] = "401 unauthorized\n";
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, REALM);
	ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* No users configured, or the request's Basic credentials match one. */
bool http_authorized(struct http_server *srv, struct MHD_Connection *conn)
{
	char user[AUTH_MAX], pass[AUTH_MAX];
	const char *hdr;
	bool ok;

	pthread_mutex_lock(&srv->auth_lock);
	if (!srv->cfg || !srv->cfg->nr_users) {
		pthread_mutex_unlock(&srv->auth_lock);
		return true;
	}
	hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_AUTHORIZATION);
	ok = hdr && !web_parse_basic_auth(hdr, user, sizeof(user), pass,
					  sizeof(pass)) &&
	     web_config_check_user(srv->cfg, user, pass);
	pthread_mutex_unlock(&srv->auth_lock);
	explicit_bzero(pass, sizeof(pass));
	return ok;
}

/*
 * The handshake already enforced the client-certificate policy (see
 * http_tls_setup); check again here so that a session this code did not
 * configure can never get through.
 */
bool http_client_cert_ok(const struct tls_run *tls,
			 struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;
	unsigned int status = 1, n = 0;

	if (!tls->cert || (tls->client_auth != WEB_CLIENT_AUTH_REQUIRE_VERIFY &&
		     tls->client_auth != WEB_CLIENT_AUTH_VERIFY_IF_GIVEN))
		return true;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return false;
	session = ci->tls_session;
	if (!gnutls_certificate_get_peers(session, &n) || !n)
		return tls->client_auth == WEB_CLIENT_AUTH_VERIFY_IF_GIVEN;
	return gnutls_certificate_verify_peers2(session, &status) == 0 &&
	       status == 0;
}

/*
 * Run by GnuTLS during the handshake once the client's certificate (or
 * none) has arrived: 0 lets the handshake go on.  A missing certificate
 * is the business of GNUTLS_CERT_REQUIRE; one that is there must chain
 * to client_ca_file.
 */
static int verify_client(gnutls_session_t session)
{
	unsigned int status = 1, n = 0;

	if (!gnutls_certificate_get_peers(session, &n) || !n)
		return 0;
	if (gnutls_certificate_verify_peers2(session, &status) || status)
		return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
	return 0;
}

/*
 * A new TLS connection, before its handshake: set what the handshake
 * demands of the client.  libmicrohttpd only ever "requests" a
 * certificate and never verifies it; GNUTLS_CERT_REQUIRE and a verify
 * function make a missing or untrusted certificate fail the handshake.
 */
void http_tls_setup(const struct tls_run *tls, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;	/* http_client_cert_ok() refuses the requests */
	session = ci->tls_session;
	switch (tls->client_auth) {
	case WEB_CLIENT_AUTH_NONE:
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_IGNORE);
		break;
	case WEB_CLIENT_AUTH_REQUEST:
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_REQUEST);
		break;
	case WEB_CLIENT_AUTH_REQUIRE_ANY:
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_REQUIRE);
		break;
	case WEB_CLIENT_AUTH_VERIFY_IF_GIVEN:
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_REQUEST);
		gnutls_session_set_verify_function(session, verify_client);
		break;
	case WEB_CLIENT_AUTH_REQUIRE_VERIFY:
		gnutls_certificate_server_set_request(session,
						      GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_function(session, verify_client);
		break;
	}
}
