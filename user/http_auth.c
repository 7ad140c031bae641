// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Who may ask the HTTP server (see http_internal.h): the basic-auth users
 * of the web config, checked per request off the server's thread (in an
 * auth_pool, the connection suspended meanwhile), and the client-certificate
 * policy, set up for each TLS handshake and checked again per request.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero under -std=c11 */
#endif
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include "auth_pool.h"
#include "http_internal.h"
#include "web_config.h"

#define REALM		"Basic realm=\"kvm-unsync-exporter\", charset=\"UTF-8\""

/* A static plain-text answer with one header of its own. */
static enum MHD_Result reply_with(struct MHD_Connection *conn,
				  unsigned int code, const char *text,
				  const char *header, const char *value)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	MHD_add_response_header(resp, header, value);
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* 401 with a Basic challenge: wrong password, or none. */
enum MHD_Result http_reply_unauthorized(struct MHD_Connection *conn)
{
	return reply_with(conn, MHD_HTTP_UNAUTHORIZED, "401 unauthorized\n",
			  MHD_HTTP_HEADER_WWW_AUTHENTICATE, REALM);
}

/*
 * 503 or 429: the check was not run.  Retry-After, so a client that
 * honours it comes back when a check has had time to finish.
 */
enum MHD_Result http_reply_auth_refused(struct MHD_Connection *conn,
					enum http_auth state)
{
	if (state == HTTP_AUTH_LIMIT)
		return reply_with(conn, MHD_HTTP_TOO_MANY_REQUESTS,
				  "429 too many password checks from this "
				  "address\n",
				  MHD_HTTP_HEADER_RETRY_AFTER, "1");
	return reply_with(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			  "503 too many password checks queued\n",
			  MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

/* A check is done: its connection goes back to libmicrohttpd's loop. */
static void resume(struct auth_job *j)
{
	MHD_resume_connection(j->done_ctx);
}

/* Where the request comes from, and which daemon serves it. */
static void job_origin(struct auth_job *j, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		memcpy(&j->peer, ci->client_addr, sizeof(struct sockaddr_in));
	else if (ci && ci->client_addr &&
		 ci->client_addr->sa_family == AF_INET6)
		memcpy(&j->peer, ci->client_addr, sizeof(struct sockaddr_in6));
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
	j->owner = ci ? ci->daemon : NULL;
	j->done = resume;
	j->done_ctx = conn;
}

/*
 * A job for the request's credentials, or NULL: no users configured
 * (*state OK), no or bad credentials (DENIED), out of memory (BUSY).
 */
static struct http_auth_req *auth_req_new(struct http_server *srv,
					  struct MHD_Connection *conn,
					  enum http_auth *state)
{
	struct http_auth_req *r;
	const char *hdr;

	pthread_mutex_lock(&srv->auth_lock);
	*state = HTTP_AUTH_OK;
	if (!srv->cfg || !srv->cfg->nr_users) {
		pthread_mutex_unlock(&srv->auth_lock);
		return NULL;
	}
	*state = HTTP_AUTH_DENIED;
	hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					  MHD_HTTP_HEADER_AUTHORIZATION);
	r = hdr ? calloc(1, sizeof(*r)) : NULL;
	if (hdr && !r)
		*state = HTTP_AUTH_BUSY;
	if (r && web_parse_basic_auth(hdr, r->job.user, sizeof(r->job.user),
				      r->job.pass, sizeof(r->job.pass))) {
		free(r);
		r = NULL;
	}
	if (r)
		r->job.known = web_config_user_hash(srv->cfg, r->job.user,
						    r->job.hash,
						    sizeof(r->job.hash));
	pthread_mutex_unlock(&srv->auth_lock);
	return r;
}

/*
 * No users configured, or the credentials are a recent success: OK at
 * once.  Otherwise the connection is suspended and the check queued
 * (PENDING: *req_ctx is the request's struct http_auth_req, and
 * http_auth_end() says how it went once libmicrohttpd calls again), or
 * refused (BUSY, LIMIT), or there is nothing to check (DENIED).
 */
enum http_auth http_auth_begin(struct http_server *srv,
			       struct MHD_Connection *conn, void **req_ctx)
{
	struct http_auth_req *r;
	enum http_auth state;
	enum auth_submit sub;

	r = auth_req_new(srv, conn, &state);
	if (!r)
		return state;
	if (auth_pool_cached(srv->auth, &r->job)) {
		free(r);
		return HTTP_AUTH_OK;
	}
	job_origin(&r->job, conn);
	/* before the submit: a worker may resume it at once */
	MHD_suspend_connection(conn);
	sub = auth_pool_submit(srv->auth, &r->job);
	if (sub != AUTH_SUBMIT_QUEUED) {
		r->refused = sub == AUTH_SUBMIT_LIMIT ? HTTP_AUTH_LIMIT :
			     HTTP_AUTH_BUSY;
		MHD_resume_connection(conn);
	}
	*req_ctx = r;
	return HTTP_AUTH_PENDING;
}

/* How the check of a suspended request went (see http_auth_begin). */
enum http_auth http_auth_end(const struct http_auth_req *r)
{
	if (r->refused != HTTP_AUTH_OK)
		return r->refused;
	switch (r->job.result) {
	case AUTH_RESULT_OK:
		return HTTP_AUTH_OK;
	case AUTH_RESULT_DENIED:
		return HTTP_AUTH_DENIED;
	default:
		return HTTP_AUTH_BUSY;
	}
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
