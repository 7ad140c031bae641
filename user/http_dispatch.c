// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One request to the HTTP server (see http_internal.h): who asks is
 * checked (http_auth.c), then the method and the URL pick the answer:
 * the metrics (gzip'd when the request allows it), the landing page, 405
 * or 404.  HTTP/1.1 connections are kept alive between requests.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <microhttpd.h>
#include "conn_guard.h"
#include "http_gzip.h"
#include "http_internal.h"
#include "metrics.h"
#include "prom_text.h"

#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

static void html_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;
	const char *rep;
	char c[2] = { 0 };

	out[0] = '\0';
	for (; *s; s++) {
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default: c[0] = *s; rep = c; break;
		}
		if (n + strlen(rep) + 1 > size)
			break;
		memcpy(out + n, rep, strlen(rep) + 1);
		n += strlen(rep);
	}
}

char *http_landing_page(const char *path)
{
	char esc[1024];
	struct strbuf b;
	size_t len;

	html_escape(esc, sizeof(esc), path);
	sb_init(&b);
	sb_printf(&b,
		  "<!DOCTYPE html>\n"
		  "<html>\n"
		  "<head><meta charset=\"utf-8\">"
		  "<title>kvm-unsync-exporter</title></head>\n"
		  "<body>\n"
		  "<h1>kvm-unsync-exporter</h1>\n"
		  "<p>KVM shadow MMU unsync walk metrics.</p>\n"
		  "<p><a href=\"%s\">Metrics</a></p>\n"
		  "</body>\n"
		  "</html>\n", esc);
	if (sb_error(&b)) {
		sb_free(&b);
		return NULL;
	}
	return sb_steal(&b, &len);
}

/* encoding: NULL, or the Content-Encoding of a body that depends on it */
static enum MHD_Result reply_enc(struct MHD_Connection *conn,
				 unsigned int code, const char *type,
				 const char *encoding, char *body, size_t len,
				 enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					"GET, HEAD");
	if (encoding) {
		/* caches keep the two bodies apart */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
					MHD_HTTP_HEADER_ACCEPT_ENCODING);
		if (*encoding)
			MHD_add_response_header(resp,
						MHD_HTTP_HEADER_CONTENT_ENCODING,
						encoding);
	}
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	return reply_enc(conn, code, type, NULL, body, len, mode);
}

static enum MHD_Result reply_text(struct MHD_Connection *conn,
				  unsigned int code, const char *text)
{
	return reply(conn, code, "text/plain; charset=utf-8", (char *)text,
		     strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* The server's own families, after the render callback's. */
static void render_guard(struct http_server *srv, struct strbuf *b)
{
	struct conn_guard_stats st;

	conn_guard_get_stats(srv->guard, &st);
	metrics_render_http(b, &st);
}

static enum MHD_Result add_accept_encoding(void *cls, enum MHD_ValueKind kind,
					   const char *key, const char *value)
{
	(void)kind;
	if (!strcasecmp(key, MHD_HTTP_HEADER_ACCEPT_ENCODING))
		accept_encoding_add(cls, value);
	return MHD_YES;
}

/* Every Accept-Encoding line of the request, as one list (RFC 9110 5.3). */
static bool wants_gzip(struct MHD_Connection *conn)
{
	struct accept_encoding ae = ACCEPT_ENCODING_INIT;

	MHD_get_connection_values(conn, MHD_HEADER_KIND, add_accept_encoding,
				  &ae);
	return accept_encoding_gzip(&ae);
}

static enum MHD_Result reply_metrics(struct http_server *srv,
				     struct MHD_Connection *conn)
{
	struct strbuf b;
	char *body, *gz;
	size_t len, gz_len;
	int err;

	sb_init(&b);
	pthread_mutex_lock(&srv->lock);
	err = srv->render(srv->ctx, &b);
	pthread_mutex_unlock(&srv->lock);
	if (!err)
		render_guard(srv, &b);
	if (!err)
		err = sb_error(&b);
	if (err) {
		sb_free(&b);
		return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "error: scrape failed\n");
	}
	body = sb_steal(&b, &len);
	if (!body)
		return reply_enc(conn, MHD_HTTP_OK, CONTENT_TYPE, "", "", 0,
				 MHD_RESPMEM_PERSISTENT);
	/* out of memory for the compressed copy: the plain page will do */
	if (wants_gzip(conn) && !gzip_compress(body, len, &gz, &gz_len)) {
		free(body);
		return reply_enc(conn, MHD_HTTP_OK, CONTENT_TYPE, "gzip", gz,
				 gz_len, MHD_RESPMEM_MUST_FREE);
	}
	return reply_enc(conn, MHD_HTTP_OK, CONTENT_TYPE, "", body, len,
			 MHD_RESPMEM_MUST_FREE);
}

/* The guard's handle of a connection (set by on_connection), or NULL. */
static struct conn_guard_conn *guarded(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/*
 * *req_ctx of a request past its first call, until a password check makes
 * it a struct http_auth_req.
 */
static char request_seen;

/* A request answered, or given up: its connection may wait for the next. */
void http_on_completed(void *cls, struct MHD_Connection *conn,
		       void **req_ctx, enum MHD_RequestTerminationCode toe)
{
	const struct tls_run *tls = cls;

	(void)toe;
	if (*req_ctx != &request_seen)
		free(*req_ctx);	/* a struct http_auth_req, or NULL */
	*req_ctx = NULL;
	conn_guard_answered(tls->srv->guard, guarded(conn));
}

/*
 * libmicrohttpd (0.9.75) closes the connection after any answer queued on
 * the first call for a request, before it has looked for a body (it sets
 * discard_request): every answer would say "Connection: close".  So a GET
 * or HEAD is only marked on the first call and answered on the last (no
 * body left, *upload_data_size 0), and its connection stays open for the
 * next request, unless the request asked for a close or is HTTP/1.0.  Any
 * other method is still answered at once, the connection closed behind
 * it, so no body of a request we refuse is read.  So is a GET or HEAD with
 * a chunked body: libmicrohttpd answers a chunk line longer than its
 * buffer (a 20 KB chunk extension) with a 500 that blames us.
 */

enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
			    const char *url, const char *method,
			    const char *version, const char *upload_data,
			    size_t *upload_data_size, void **req_ctx)
{
	const struct tls_run *tls = cls;
	struct http_server *srv = tls->srv;
	bool get_or_head = !strcmp(method, MHD_HTTP_METHOD_GET) ||
			   !strcmp(method, MHD_HTTP_METHOD_HEAD);
	enum http_auth auth;

	(void)version;
	(void)upload_data;
	if (!*req_ctx) {
		conn_guard_request(srv->guard, guarded(conn)); /* headers in */
		if (!http_client_cert_ok(tls, conn))
			return MHD_NO;	/* close, no answer */
		if (!get_or_head)
			return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "405 method not allowed\n");
		if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
				MHD_HTTP_HEADER_TRANSFER_ENCODING))
			return reply_text(conn, MHD_HTTP_BAD_REQUEST,
					  "400 bad request: a chunked body "
					  "in a GET or HEAD\n");
		*req_ctx = &request_seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* a GET with a body: read and dropped, within the deadline */
		*upload_data_size = 0;
		return MHD_YES;
	}
	auth = *req_ctx == &request_seen ? http_auth_begin(srv, conn, req_ctx) :
	       http_auth_end(*req_ctx);
	if (auth == HTTP_AUTH_PENDING)
		return MHD_YES;	/* called again when the check is done */
	if (auth == HTTP_AUTH_DENIED)
		return http_reply_unauthorized(conn);
	if (auth != HTTP_AUTH_OK)
		return http_reply_auth_refused(conn, auth);
	if (!strcmp(url, srv->path))
		return reply_metrics(srv, conn);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8",
			     srv->landing, strlen(srv->landing),
			     MHD_RESPMEM_PERSISTENT);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
}
