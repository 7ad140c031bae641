// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* HTTP endpoint on libmicrohttpd (see http.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* SOCK_CLOEXEC under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include "conn_guard.h"
#include "http.h"
#include "metrics.h"
#include "web_config.h"

#define FLAG_ADDR	HTTP_FLAG_LISTEN_ADDRESS
#define FLAG_PATH	"--web.telemetry-path"
#define FLAG_CONFIG	"--web.config.file"
#define REALM		"Basic realm=\"kvm-unsync-exporter\", charset=\"UTF-8\""
#define AUTH_MAX	256	/* user name or password, bytes */
#define RELOAD_GRACE_MS	1000	/* for requests in flight on a TLS change */
#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

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
	unsigned int mhd_flags;
	int port;
};

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return listen_addr_port(&ss);
}

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

static char *landing_page(const char *path)
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

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code,
			     const char *type, char *body, size_t len,
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
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
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

static enum MHD_Result reply_metrics(struct http_server *srv,
				     struct MHD_Connection *conn)
{
	struct strbuf b;
	char *body;
	size_t len;
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
		return reply(conn, MHD_HTTP_OK, CONTENT_TYPE, "", 0,
			     MHD_RESPMEM_PERSISTENT);
	return reply(conn, MHD_HTTP_OK, CONTENT_TYPE, body, len,
		     MHD_RESPMEM_MUST_FREE);
}

/* 401 with a Basic challenge: wrong password, or none. */
static enum MHD_Result reply_unauthorized(struct MHD_Connection *conn)
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
static bool authorized(struct http_server *srv, struct MHD_Connection *conn)
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
 * on_connection); check again here so that a session this code did not
 * configure can never get through.
 */
static bool client_cert_ok(const struct tls_run *tls,
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

/* The guard's handle of a connection (set by on_connection), or NULL. */
static struct conn_guard_conn *guarded(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* A request answered, or given up: its connection may wait for the next. */
static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **req_ctx, enum MHD_RequestTerminationCode toe)
{
	const struct tls_run *tls = cls;

	(void)req_ctx;
	(void)toe;
	conn_guard_answered(tls->srv->guard, guarded(conn));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_ctx)
{
	const struct tls_run *tls = cls;
	struct http_server *srv = tls->srv;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_ctx;
	conn_guard_request(srv->guard, guarded(conn));	/* headers are in */
	if (!client_cert_ok(tls, conn))
		return MHD_NO;	/* close, no answer */
	if (!authorized(srv, conn))
		return reply_unauthorized(conn);
	/* answered on the first call, before any body is read */
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "405 method not allowed\n");
	if (!strcmp(url, srv->path))
		return reply_metrics(srv, conn);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8",
			     srv->landing, strlen(srv->landing),
			     MHD_RESPMEM_PERSISTENT);
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "404 page not found\n");
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
static void tls_setup(const struct tls_run *tls, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;		/* client_cert_ok() refuses the requests */
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

/*
 * Every connection is registered with the guard as it opens and forgotten
 * as it closes: libmicrohttpd calls CLOSED before it closes the socket, so
 * the guard never shuts down a number reused for another file.
 */
static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	const struct tls_run *tls = cls;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		conn_guard_closed(tls->srv->guard, *socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	*socket_ctx = ci ? conn_guard_opened(tls->srv->guard, ci->connect_fd) :
		      NULL;
	if (tls->cert)
		tls_setup(tls, conn);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

static void tls_run_free(struct tls_run *t)
{
	if (!t)
		return;
	free(t->cert);
	if (t->key) {
		explicit_bzero(t->key, strlen(t->key));
		free(t->key);
	}
	free(t->ca);
	free(t);
}

static struct tls_run *tls_run_new(struct http_server *srv,
				   const struct web_config *cfg)
{
	struct tls_run *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->srv = srv;
	if (!cfg || !cfg->tls)
		return t;
	t->cert = strdup(cfg->cert_pem);
	t->key = strdup(cfg->key_pem);
	t->ca = cfg->client_ca_pem ? strdup(cfg->client_ca_pem) : NULL;
	t->client_auth = cfg->client_auth;
	if (!t->cert || !t->key || (cfg->client_ca_pem && !t->ca) ||
	    web_config_priorities(cfg, t->priorities, sizeof(t->priorities))) {
		tls_run_free(t);
		return NULL;
	}
	return t;
}

static void server_free(struct http_server *srv)
{
	conn_guard_free(srv->guard);	/* every connection is closed */
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->auth_lock);
	if (srv->cfg) {
		web_config_free(srv->cfg);
		free(srv->cfg);
	}
	tls_run_free(srv->tls);
	free(srv->config_path);
	free(srv->path);
	free(srv->landing);
	free(srv);
}

static struct http_server *server_new(const char *path, http_render_fn render,
				      void *ctx)
{
	struct http_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->auth_lock, NULL);
	srv->listen_fd = -1;
	srv->render = render;
	srv->ctx = ctx;
	srv->path = strdup(path);
	srv->landing = landing_page(path);
	srv->guard = conn_guard_new(HTTP_EVICT_AT, HTTP_REQUEST_DEADLINE * 1000,
				    (HTTP_CONNECTION_TIMEOUT +
				     HTTP_REQUEST_DEADLINE) * 1000);
	if (!srv->path || !srv->landing || !srv->guard) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

/* A daemon on srv->listen_fd, with TLS when tls->cert is set. */
static struct MHD_Daemon *start_daemon(struct http_server *srv,
				       struct tls_run *tls)
{
	/*
	 * What both kinds of daemon take.  In an option array a callback
	 * goes in .value and its closure in .ptr_value.
	 */
	struct MHD_OptionItem common[] = {
		{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL },
		{ MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTION_LIMIT, NULL },
		{ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		  HTTP_PER_IP_CONNECTION_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		  HTTP_CONNECTION_MEMORY_LIMIT, NULL },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, tls },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, tls },
		{ MHD_OPTION_END, 0, NULL },
	};

	if (!tls->cert)
		return MHD_start_daemon(srv->mhd_flags, 0, NULL, NULL, handle,
					tls, MHD_OPTION_ARRAY, common,
					MHD_OPTION_END);
	return MHD_start_daemon(srv->mhd_flags | MHD_USE_TLS, 0, NULL, NULL,
				handle, tls, MHD_OPTION_ARRAY, common,
				MHD_OPTION_HTTPS_MEM_CERT, tls->cert,
				MHD_OPTION_HTTPS_MEM_KEY, tls->key,
				MHD_OPTION_HTTPS_PRIORITIES, tls->priorities,
				tls->ca ? MHD_OPTION_HTTPS_MEM_TRUST :
				MHD_OPTION_END, tls->ca,
				MHD_OPTION_END);
}

/*
 * Load the web config; NULL and one line on stderr if it is bad, with
 * suffix (may be "") at its end.
 */
static struct web_config *load_config(const char *path, const char *suffix)
{
	struct web_config *cfg = calloc(1, sizeof(*cfg));
	char err[1024];

	if (!cfg) {
		fprintf(stderr, "web config %s: out of memory%s\n", path,
			suffix);
		return NULL;
	}
	if (web_config_load(path, cfg, err, sizeof(err))) {
		fprintf(stderr, "%s%s\n", err, suffix);
		free(cfg);
		return NULL;
	}
	return cfg;
}

int http_check_web_config(const char *path)
{
	struct web_config *cfg;

	if (!path || !*path)
		return 0;
	cfg = load_config(path, "");
	if (!cfg)
		return -EINVAL;
	web_config_free(cfg);
	free(cfg);
	return 0;
}

/* A socket handed to us (systemd): a listening TCP stream socket. */
static int adopt_listener(int fd)
{
	int v = 0, fl;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len))
		return -errno;
	if (!v)
		return -EINVAL;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len))
		return -errno;
	if (v != SOCK_STREAM)
		return -ESOCKTNOSUPPORT;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -errno;
	return 0;
}

struct http_server *http_start_opts(const struct http_options *o,
				    http_render_fn render, void *ctx)
{
	const char *telemetry_path = o->telemetry_path;
	struct http_server *srv;
	struct listen_addr a;
	char err[512], where[128];
	int fd;

	if (!telemetry_path || telemetry_path[0] != '/') {
		fprintf(stderr, "invalid %s \"%s\": must start with '/'\n",
			FLAG_PATH, telemetry_path ? telemetry_path : "");
		return NULL;
	}
	if (o->listen_fd < 0 &&
	    http_parse_listen_address(o->listen_address, &a, err,
				      sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	srv = server_new(telemetry_path, render, ctx);
	if (!srv) {
		fprintf(stderr, "http: out of memory\n");
		return NULL;
	}
	if (o->web_config_file && *o->web_config_file) {
		srv->config_path = strdup(o->web_config_file);
		srv->cfg = srv->config_path ?
			   load_config(srv->config_path, "") : NULL;
		if (!srv->cfg)
			goto fail;
		if (srv->cfg->tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			fprintf(stderr, "web config %s: this libmicrohttpd has "
				"no TLS support\n", srv->config_path);
			goto fail;
		}
	}
	srv->tls = tls_run_new(srv, srv->cfg);
	if (!srv->tls) {
		fprintf(stderr, "http: out of memory\n");
		goto fail;
	}
	/*
	 * MHD_USE_AUTO picks epoll on Linux: select() cannot take fds past
	 * 1024, and this process holds many BPF program, link and map fds.
	 * MHD_USE_ITC lets a reload hand the listening socket to a new
	 * daemon (MHD_quiesce_daemon) without closing it.
	 */
	srv->mhd_flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			 MHD_USE_AUTO | MHD_USE_ITC;
	if (o->listen_fd >= 0) {
		fd = adopt_listener(o->listen_fd);
		snprintf(where, sizeof(where), "listening socket fd %d",
			 o->listen_fd);
		if (fd < 0) {
			fprintf(stderr, "cannot serve on %s: %s\n", where,
				fd == -EINVAL ? "not a listening socket" :
				strerror(-fd));
			goto fail;
		}
		fd = o->listen_fd;
	} else {
		fd = listen_socket_open_flag(&a, o->listen_address);
		if (fd < 0)
			goto fail;
		snprintf(where, sizeof(where), "%s \"%s\"", FLAG_ADDR,
			 o->listen_address);
		if (a.ss.ss_family == AF_INET6 && a.dual_stack)
			srv->mhd_flags |= MHD_USE_DUAL_STACK;
	}
	srv->listen_fd = fd;
	srv->port = bound_port(fd);
	srv->daemon = start_daemon(srv, srv->tls);
	if (!srv->daemon) {
		fprintf(stderr, "cannot serve on %s: libmicrohttpd failed to "
			"start\n", where);
		if (o->listen_fd < 0)
			close(fd);
		goto fail;
	}
	return srv;
fail:
	server_free(srv);
	return NULL;
}

struct http_server *http_start(const char *listen_address,
			       const char *telemetry_path,
			       http_render_fn render, void *ctx)
{
	struct http_options o = {
		.listen_address = listen_address,
		.listen_fd = -1,
		.telemetry_path = telemetry_path,
	};

	return http_start_opts(&o, render, ctx);
}

/* Give requests in flight on a quiesced daemon a moment to finish. */
static void drain(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di;
	int ms;

	for (ms = 0; ms < RELOAD_GRACE_MS; ms += 50) {
		di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!di || !di->num_connections)
			return;
		usleep(50 * 1000);
	}
}

int http_reload(struct http_server *srv)
{
	struct web_config *cfg, *old;
	struct tls_run *tls = NULL, *old_tls;
	struct MHD_Daemon *old_daemon;
	MHD_socket fd;

	if (!srv || !srv->config_path)
		return 0;
	cfg = load_config(srv->config_path, "; keeping the previous one");
	if (!cfg)
		return -EINVAL;
	if (!web_config_same_tls(cfg, srv->cfg)) {
		tls = tls_run_new(srv, cfg);
		if (!tls) {
			fprintf(stderr, "web config %s: out of memory, keeping "
				"the previous one\n", srv->config_path);
			goto bad;
		}
		/*
		 * The listening socket stays open throughout: connections
		 * that arrive meanwhile wait in its backlog.
		 */
		fd = MHD_quiesce_daemon(srv->daemon);
		if (fd == MHD_INVALID_SOCKET) {
			fprintf(stderr, "web config %s: cannot hand over the "
				"listening socket, keeping the previous one\n",
				srv->config_path);
			goto bad;
		}
		old_daemon = srv->daemon;
		old_tls = srv->tls;
		srv->daemon = start_daemon(srv, tls);
		if (!srv->daemon) {
			fprintf(stderr, "web config %s: the new TLS settings do "
				"not start, keeping the previous ones\n",
				srv->config_path);
			srv->daemon = start_daemon(srv, old_tls);
			drain(old_daemon);
			MHD_stop_daemon(old_daemon);
			if (!srv->daemon)
				fprintf(stderr, "http: cannot serve again on the "
					"listening socket\n");
			goto bad;
		}
		srv->tls = tls;
		drain(old_daemon);
		MHD_stop_daemon(old_daemon);	/* leaves the quiesced fd open */
		tls_run_free(old_tls);
	}
	pthread_mutex_lock(&srv->auth_lock);
	old = srv->cfg;
	srv->cfg = cfg;
	pthread_mutex_unlock(&srv->auth_lock);
	web_config_free(old);
	free(old);
	fprintf(stderr, "web config %s: reloaded (%s, %zu basic auth user%s)\n",
		srv->config_path, cfg->tls ? "TLS" : "plain HTTP",
		cfg->nr_users, cfg->nr_users == 1 ? "" : "s");
	return 0;
bad:
	tls_run_free(tls);
	web_config_free(cfg);
	free(cfg);
	return -EINVAL;
}

int http_port(const struct http_server *srv)
{
	return srv ? srv->port : -1;
}

void http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* joins the polling thread and closes the listening socket */
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	else if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	server_free(srv);
}
