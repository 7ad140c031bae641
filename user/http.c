// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* HTTP endpoint on libmicrohttpd (see http.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* getaddrinfo, SOCK_CLOEXEC under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <microhttpd.h>
#include "http.h"

#define FLAG_ADDR	"--web.listen-address"
#define FLAG_PATH	"--web.telemetry-path"
#define CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"
#define LISTEN_BACKLOG	64

struct http_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;	/* one scrape at a time */
	http_render_fn render;
	void *ctx;
	char *path;
	char *landing;		/* HTML of "/" */
	int port;
};

/* Decimal 0-65535, digits only: no sign, no spaces, no hex. */
static int parse_port(const char *s, int *port)
{
	long v = 0;
	int n;

	for (n = 0; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (s[n] - '0');
	}
	if (!n || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int resolve(const char *host, bool v6_only, int port,
		   struct listen_addr *out)
{
	struct addrinfo hints = { 0 }, *res;
	int err;

	hints.ai_family = v6_only ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | (v6_only ? AI_NUMERICHOST : 0);
	err = getaddrinfo(host, NULL, &hints, &res);
	if (err)
		return err;
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	if (res->ai_family == AF_INET6)
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

static void any_dual_stack(struct listen_addr *out, int port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_any;
	sin6->sin6_port = htons(port);
	out->len = sizeof(*sin6);
	out->dual_stack = 1;
}

int http_parse_listen_address(const char *s, struct listen_addr *out,
			      char *err, size_t err_size)
{
	const char *why = NULL, *port_s;
	char host[256];
	bool bracket = false;
	size_t hlen;
	int port, gai;

	memset(out, 0, sizeof(*out));
	if (!s || !*s) {
		why = "empty";
		goto bad;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || close[1] != ':') {
			why = "want [IPv6 address]:port";
			goto bad;
		}
		hlen = (size_t)(close - s - 1);
		s++;
		port_s = close + 2;
		bracket = true;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon) {
			why = "missing :port";
			goto bad;
		}
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen)) {
			why = "IPv6 addresses need brackets, as in [::1]:port";
			goto bad;
		}
		port_s = colon + 1;
	}
	if (hlen >= sizeof(host)) {
		why = "host name too long";
		goto bad;
	}
	if (parse_port(port_s, &port)) {
		why = "port must be a number from 0 to 65535";
		goto bad;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (!hlen) {
		any_dual_stack(out, port);
		return 0;
	}
	gai = resolve(host, bracket, port, out);
	if (!gai)
		return 0;
	why = gai_strerror(gai);
bad:
	snprintf(err, err_size, "invalid %s \"%s%s\": %s", FLAG_ADDR,
		 bracket ? "[" : "", s ? s : "", why);
	return -EINVAL;
}

/* The wildcard IPv4 address, for hosts without IPv6. */
static void any_v4(struct listen_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	int port = ntohs(((struct sockaddr_in6 *)&a->ss)->sin6_port);

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_ANY);
	sin->sin_port = htons(port);
	a->len = sizeof(*sin);
}

/* Bound, listening, non-blocking socket, or -errno with *what set. */
static int open_listener(struct listen_addr *a, const char **what)
{
	int fd, one = 1, v6only;

	*what = "socket";
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0 && a->dual_stack && errno == EAFNOSUPPORT) {
		any_v4(a);	/* IPv6 disabled on this host */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
				     SOCK_NONBLOCK, 0);
	}
	if (fd < 0)
		return -errno;
	/* restart without waiting for TIME_WAIT connections to expire */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6) {
		v6only = !a->dual_stack;
		*what = "setsockopt(IPV6_V6ONLY)";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			       sizeof(v6only)))
			goto fail;
	}
	*what = "bind";
	if (bind(fd, (struct sockaddr *)&a->ss, a->len))
		goto fail;
	*what = "listen";
	if (listen(fd, LISTEN_BACKLOG))
		goto fail;
	return fd;
fail:
	one = -errno;
	close(fd);
	return one;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_ctx)
{
	struct http_server *srv = cls;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_ctx;
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

static void server_free(struct http_server *srv)
{
	pthread_mutex_destroy(&srv->lock);
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
	srv->render = render;
	srv->ctx = ctx;
	srv->path = strdup(path);
	srv->landing = landing_page(path);
	if (!srv->path || !srv->landing) {
		server_free(srv);
		return NULL;
	}
	return srv;
}

static int start_daemon(struct http_server *srv, int fd, bool dual_stack)
{
	/*
	 * MHD_USE_AUTO picks epoll on Linux: select() cannot take fds past
	 * 1024, and this process holds many BPF program, link and map fds.
	 */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_ERROR_LOG | MHD_USE_AUTO;

	if (dual_stack)
		flags |= MHD_USE_DUAL_STACK;
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv,
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			MHD_OPTION_LISTEN_SOCKET, fd,
			MHD_OPTION_CONNECTION_LIMIT,
			(unsigned int)HTTP_CONNECTION_LIMIT,
			MHD_OPTION_CONNECTION_TIMEOUT,
			(unsigned int)HTTP_CONNECTION_TIMEOUT,
			MHD_OPTION_END);
	return srv->daemon ? 0 : -1;
}

struct http_server *http_start(const char *listen_address,
			       const char *telemetry_path,
			       http_render_fn render, void *ctx)
{
	struct http_server *srv;
	struct listen_addr a;
	const char *what;
	char err[512];
	int fd;

	if (!telemetry_path || telemetry_path[0] != '/') {
		fprintf(stderr, "invalid %s \"%s\": must start with '/'\n",
			FLAG_PATH, telemetry_path ? telemetry_path : "");
		return NULL;
	}
	if (http_parse_listen_address(listen_address, &a, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return NULL;
	}
	srv = server_new(telemetry_path, render, ctx);
	if (!srv) {
		fprintf(stderr, "http: out of memory\n");
		return NULL;
	}
	fd = open_listener(&a, &what);
	if (fd < 0) {
		fprintf(stderr, "cannot listen on %s \"%s\": %s: %s\n",
			FLAG_ADDR, listen_address, what, strerror(-fd));
		server_free(srv);
		return NULL;
	}
	srv->port = bound_port(fd);
	if (start_daemon(srv, fd, a.ss.ss_family == AF_INET6 && a.dual_stack)) {
		fprintf(stderr, "cannot serve on %s \"%s\": libmicrohttpd "
			"failed to start\n", FLAG_ADDR, listen_address);
		close(fd);
		server_free(srv);
		return NULL;
	}
	return srv;
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
	MHD_stop_daemon(srv->daemon);
	server_free(srv);
}
