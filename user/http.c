// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTP endpoint on libmicrohttpd (see http.h): the server core.  Start
 * and stop, the listening socket adopted or opened, the web config loaded
 * and the libmicrohttpd daemon started with its limits and callbacks;
 * each request goes to http_dispatch.c, a reload to tls_reload.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* strdup under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <microhttpd.h>
#include "auth_pool.h"
#include "conn_guard.h"
#include "http.h"
#include "http_internal.h"
#include "log_limit.h"
#include "web_config.h"

#define FLAG_ADDR	HTTP_FLAG_LISTEN_ADDRESS
#define FLAG_PATH	"--web.telemetry-path"
#define FLAG_CONFIG	"--web.config.file"

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return listen_addr_port(&ss);
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
		http_tls_setup(tls, conn);
}

/*
 * libmicrohttpd logs a line for every refused or broken connection: a
 * bounded number of them, and how many were left out.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct log_limit limit;
	unsigned long dropped;
	bool ok;

	(void)cls;
	pthread_mutex_lock(&lock);
	ok = log_limit_allow(&limit, time(NULL), &dropped);
	if (dropped)
		fprintf(stderr, "http: %lu more messages like these left out in %d s\n",
			dropped, LOG_LIMIT_WINDOW_S);
	if (ok) {
		fputs("http: ", stderr);
		vfprintf(stderr, fmt, ap);
	}
	pthread_mutex_unlock(&lock);
}

static void server_free(struct http_server *srv)
{
	auth_pool_free(srv->auth);	/* no daemon left to resume into */
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
	struct auth_pool_limits lim = {
		.workers = HTTP_AUTH_WORKERS,
		.queue = HTTP_AUTH_QUEUE,
		.per_addr = HTTP_AUTH_PER_ADDR,
		.cache = HTTP_AUTH_CACHE,
	};
	struct http_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->auth_lock, NULL);
	srv->listen_fd = -1;
	srv->render = render;
	srv->ctx = ctx;
	srv->path = strdup(path);
	srv->landing = http_landing_page(path);
	srv->guard = conn_guard_new(HTTP_EVICT_AT, HTTP_PER_IP_CONNECTION_LIMIT,
				    HTTP_REQUEST_DEADLINE * 1000,
				    (HTTP_CONNECTION_TIMEOUT +
				     HTTP_REQUEST_DEADLINE) * 1000);
	srv->auth = auth_pool_new(&lim, web_bcrypt_check);
	if (!srv->path || !srv->landing || !srv->guard || !srv->auth) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

/*
 * Called with the request line's URI before libmicrohttpd parses its
 * query: the query is cut off there.  No page here takes an argument,
 * and libmicrohttpd 0.9.75 stalls on a query of a few hundred arguments
 * (each takes a header record from the connection's 16 KB pool, which
 * runs out) until the request deadline.  The URI lies in the
 * connection's read buffer, which libmicrohttpd parses in place: the
 * path ends at the '?' as before, and the query it then parses is empty.
 */
static void *drop_query(void *cls, const char *uri,
			struct MHD_Connection *conn)
{
	char *q = strchr(uri, '?');

	(void)cls;
	(void)conn;
	if (q)
		q[1] = '\0';
	return NULL;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * libmicrohttpd's percent-decoding, but "%00" is left as it is: decoded,
 * it ends the path early, and "/metrics%00junk" would be "/metrics".
 */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *conn,
				char *s)
{
	char *out = s;
	const char *in = s;
	int hi, lo;

	(void)cls;
	(void)conn;
	while (*in) {
		hi = in[0] == '%' ? hex_digit(in[1]) : -1;
		lo = hi >= 0 ? hex_digit(in[2]) : -1;
		if (lo < 0 || (hi | lo) == 0) {
			*out++ = *in++;
			continue;
		}
		*out++ = (char)(hi << 4 | lo);
		in += 3;
	}
	*out = '\0';
	return (size_t)(out - s);
}

/* A daemon on srv->listen_fd, with TLS when tls->cert is set. */
struct MHD_Daemon *http_start_daemon(struct http_server *srv,
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
		  HTTP_PER_IP_HARD_LIMIT, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONNECTION_TIMEOUT, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		  HTTP_CONNECTION_MEMORY_LIMIT, NULL },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, tls },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_on_completed,
		  tls },
		{ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)drop_query, NULL },
		{ MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_keep_nul,
		  NULL },
		{ MHD_OPTION_END, 0, NULL },
	};

	if (!tls->cert)
		return MHD_start_daemon(srv->mhd_flags, 0, NULL, NULL,
					http_handle, tls, MHD_OPTION_ARRAY,
					common, MHD_OPTION_END);
	return MHD_start_daemon(srv->mhd_flags | MHD_USE_TLS, 0, NULL, NULL,
				http_handle, tls, MHD_OPTION_ARRAY, common,
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
struct web_config *http_load_config(const char *path, const char *suffix)
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
	cfg = http_load_config(path, "");
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
			   http_load_config(srv->config_path, "") : NULL;
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
	 * daemon (MHD_quiesce_daemon) without closing it, and a connection
	 * suspended for a password check be resumed from another thread.
	 */
	srv->mhd_flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			 MHD_USE_AUTO | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
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
	srv->daemon = http_start_daemon(srv, srv->tls);
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

int http_port(const struct http_server *srv)
{
	return srv ? srv->port : -1;
}

/*
 * libmicrohttpd must not be stopped with a connection suspended: the
 * daemon's password checks are answered first (queued ones refused, a
 * running one waited for, a fifth of a second at most at the highest
 * cost allowed), and no new one is taken.
 */
void http_stop_daemon(struct http_server *srv, struct MHD_Daemon *d)
{
	auth_pool_release(srv->auth, d);
	MHD_stop_daemon(d);
	auth_pool_forget(srv->auth, d);
}

void http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	/* joins the polling thread and closes the listening socket */
	if (srv->daemon)
		http_stop_daemon(srv, srv->daemon);
	else if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	server_free(srv);
}
