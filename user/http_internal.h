/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the HTTP server's files share, and nothing else includes: the
 * server's state and the calls between its parts.  http.h is the API.
 *
 *   http.c           the server core: start, stop, libmicrohttpd's daemon
 *   http_dispatch.c  one request: routing and the answers
 *   http_gzip.c      Accept-Encoding and gzip bodies (http_gzip.h)
 *   http_auth.c      basic auth and client certificates
 *   tls_reload.c     a new web config on the same listening socket
 */
#ifndef __HTTP_INTERNAL_H
#define __HTTP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>
#include "auth_pool.h"
#include "conn_guard.h"
#include "http.h"
#include "web_config.h"

/*
 * What one libmicrohttpd daemon was started with, handed to its callbacks:
 * copies of the TLS settings, so a reload can free its config while the
 * daemon still runs.  Plain HTTP when cert is NULL.
 */
struct tls_run {
	struct http_server *srv;
	char *cert, *key, *ca;
	char priorities[128];
	enum web_client_auth client_auth;
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct tls_run *tls;	/* the running daemon's */
	pthread_mutex_t lock;	/* one scrape at a time */
	pthread_mutex_t auth_lock;	/* guards cfg */
	struct web_config *cfg;	/* NULL: no --web.config.file */
	char *config_path;
	http_render_fn render;
	void *ctx;
	char *path;
	char *landing;		/* HTML of "/" */
	int listen_fd;		/* owned by the daemon while it runs */
	struct conn_guard *guard;	/* deadlines, eviction */
	struct auth_pool *auth;	/* password checks */
	unsigned int mhd_flags;
	int port;
};

/* http.c */

/* A daemon on srv->listen_fd, with TLS when tls->cert is set. */
struct MHD_Daemon *http_start_daemon(struct http_server *srv,
				     struct tls_run *tls);
/*
 * Load the web config; NULL and one line on stderr if it is bad, with
 * suffix (may be "") at its end.
 */
struct web_config *http_load_config(const char *path, const char *suffix);

/* http_dispatch.c */

/* The HTML of "/", linking to path; NULL when out of memory. */
char *http_landing_page(const char *path);
/* libmicrohttpd's access handler; cls is the daemon's struct tls_run. */
enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
			    const char *url, const char *method,
			    const char *version, const char *upload_data,
			    size_t *upload_data_size, void **req_ctx);
/* A request answered, or given up: its connection may wait for the next. */
void http_on_completed(void *cls, struct MHD_Connection *conn,
		       void **req_ctx, enum MHD_RequestTerminationCode toe);

/* Stop a daemon of srv's, its password checks first. */
void http_stop_daemon(struct http_server *srv, struct MHD_Daemon *d);

/* http_auth.c */

enum http_auth {
	HTTP_AUTH_OK,		/* no users, or the right password */
	HTTP_AUTH_DENIED,	/* 401 */
	HTTP_AUTH_PENDING,	/* suspended for a check: wait for the call */
	HTTP_AUTH_BUSY,		/* 503: no room for the check */
	HTTP_AUTH_LIMIT,	/* 429: the address's checks are all in use */
};

/* A request's check: its *req_ctx from http_auth_begin() on. */
struct http_auth_req {
	struct auth_job job;
	enum http_auth refused;	/* BUSY or LIMIT: never queued */
};

/*
 * Start checking the request's credentials; PENDING suspends conn and
 * sets *req_ctx to a struct http_auth_req (free it when done).
 */
enum http_auth http_auth_begin(struct http_server *srv,
			       struct MHD_Connection *conn, void **req_ctx);
/* How the check of a resumed request went: OK, DENIED, BUSY or LIMIT. */
enum http_auth http_auth_end(const struct http_auth_req *r);
/* 401 with a Basic challenge: wrong password, or none. */
enum MHD_Result http_reply_unauthorized(struct MHD_Connection *conn);
/* 503 (BUSY) or 429 (LIMIT), with Retry-After. */
enum MHD_Result http_reply_auth_refused(struct MHD_Connection *conn,
					enum http_auth state);
/* The client-certificate policy holds for this connection's session. */
bool http_client_cert_ok(const struct tls_run *tls,
			 struct MHD_Connection *conn);
/* Set what a new TLS connection's handshake demands of the client. */
void http_tls_setup(const struct tls_run *tls, struct MHD_Connection *conn);

/* tls_reload.c */

/* A copy of cfg's TLS settings (none: plain HTTP), or NULL. */
struct tls_run *tls_run_new(struct http_server *srv,
			    const struct web_config *cfg);
void tls_run_free(struct tls_run *t);

#endif /* __HTTP_INTERNAL_H */
