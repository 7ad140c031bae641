// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Listen-address parsing, and the server over real loopback sockets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* mkstemp, struct timeval under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "http.h"
#include "expected.h"
#include "test.h"

static int parse(const char *s, struct listen_addr *a, char *err, size_t n)
{
	err[0] = '\0';
	return http_parse_listen_address(s, a, err, n);
}

static int port_of(const struct listen_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void test_parse_good(void)
{
	struct listen_addr a;
	char err[256];

	CHECK_INT(parse(":10190", &a, err, sizeof(err)), 0);
	CHECK_INT(a.ss.ss_family, AF_INET6);
	CHECK_INT(a.dual_stack, 1);
	CHECK_INT(port_of(&a), 10190);

	CHECK_INT(parse("127.0.0.1:80", &a, err, sizeof(err)), 0);
	CHECK_INT(a.ss.ss_family, AF_INET);
	CHECK_INT(a.dual_stack, 0);
	CHECK_INT(port_of(&a), 80);
	CHECK_INT(((struct sockaddr_in *)&a.ss)->sin_addr.s_addr,
		  htonl(INADDR_LOOPBACK));

	CHECK_INT(parse("[::1]:65535", &a, err, sizeof(err)), 0);
	CHECK_INT(a.ss.ss_family, AF_INET6);
	CHECK_INT(a.dual_stack, 0);
	CHECK_INT(port_of(&a), 65535);

	CHECK_INT(parse("0.0.0.0:0", &a, err, sizeof(err)), 0);
	CHECK_INT(port_of(&a), 0);
	CHECK_INT(parse("[::]:9", &a, err, sizeof(err)), 0);
	CHECK_STR(err, "");
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"", "10190", "localhost", ":", ":abc", ":65536", ":-1",
		":+80", ": 80", ":80 ", ":123456", ":0x50", "::1:80",
		"[::1]", "[::1]80", "[]:80", "[::1:80", "[127.0.0.1]:80",
		"[::1]:", "1.2.3.4:",
	};
	struct listen_addr a;
	char err[256];
	size_t i;
	int all = 1, named = 1, one_line = 1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &a, err, sizeof(err)) != -EINVAL) {
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
			all = 0;
		}
		named &= strstr(err, "--web.listen-address") != NULL;
		one_line &= strchr(err, '\n') == NULL && err[0];
	}
	CHECK(all);
	CHECK(named);
	CHECK(one_line);
	CHECK_INT(http_parse_listen_address(NULL, &a, err, sizeof(err)),
		  -EINVAL);
	parse("::1:80", &a, err, sizeof(err));
	CHECK(strstr(err, "brackets") != NULL);
}

/* A render callback that counts its calls and can be told to fail. */
struct fake_render {
	int calls;
	int fail;
};

static int render(void *ctx, struct strbuf *out)
{
	struct fake_render *r = ctx;

	r->calls++;
	if (r->fail)
		return -EIO;
	sb_printf(out, "# HELP t_total Test.\n# TYPE t_total counter\n"
		       "t_total %d\n", r->calls);
	return 0;
}

/*
 * One HTTP/1.0 request over a fresh connection; the whole response (the
 * server closes) into resp.  Returns the status code or -1.
 */
static int request(const char *ip, int port, const char *method,
		   const char *path, char *resp, size_t size)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	char req[512];
	size_t got = 0;
	ssize_t n;
	int fd, status = -1, family = strchr(ip, ':') ? AF_INET6 : AF_INET;

	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		len = sizeof(*s4);
	}
	resp[0] = '\0';
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len))
		goto out;
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: test\r\n%s\r\n",
		 method, path, strcmp(method, "POST") ? "" :
		 "Content-Length: 3\r\n");
	if (write(fd, req, strlen(req)) < 0)
		goto out;
	if (!strcmp(method, "POST") && write(fd, "a=b", 3) < 0)
		goto out;
	while (got + 1 < size && (n = read(fd, resp + got, size - 1 - got)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*c %d", &status) != 1)
		status = -1;
out:
	close(fd);
	return status;
}

static const char *body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p ? p + 4 : "";
}

#define RENDERED "# HELP t_total Test.\n# TYPE t_total counter\nt_total 1\n"

static void test_server(void)
{
	struct fake_render fr = { 0 };
	struct http_server *srv;
	char resp[8192];
	int port;

	srv = http_start("127.0.0.1:0", "/metrics", render, &fr);
	CHECK(srv != NULL);
	if (!srv)
		return;
	port = http_port(srv);
	CHECK(port > 0);

	CHECK_INT(request("127.0.0.1", port, "GET", "/metrics", resp,
			  sizeof(resp)), 200);
	CHECK(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4; "
			   "charset=utf-8\r\n") != NULL);
	/* the render callback's text, then the server's own families */
	CHECK(!strncmp(body_of(resp), RENDERED "# HELP kvm_unsync_http_",
		       strlen(RENDERED "# HELP kvm_unsync_http_")));
	CHECK_LINE(body_of(resp), "kvm_unsync_http_connections 1");
	CHECK_LINE(body_of(resp), "kvm_unsync_http_connections_closed_total"
		   "{reason=\"deadline\"} 0");
	CHECK_LINE(body_of(resp), "kvm_unsync_http_connections_closed_total"
		   "{reason=\"evicted\"} 0");
	/* the server's own families, byte for byte */
	check_expected("metrics-http.prom", body_of(resp));
	CHECK_INT(fr.calls, 1);

	/* the query string is not part of the path */
	CHECK_INT(request("127.0.0.1", port, "GET", "/metrics?x=1", resp,
			  sizeof(resp)), 200);

	CHECK_INT(request("127.0.0.1", port, "HEAD", "/metrics", resp,
			  sizeof(resp)), 200);
	CHECK_STR(body_of(resp), "");

	CHECK_INT(request("127.0.0.1", port, "GET", "/", resp, sizeof(resp)),
		  200);
	CHECK(strstr(resp, "Content-Type: text/html") != NULL);
	CHECK(strstr(body_of(resp), "<a href=\"/metrics\">") != NULL);

	CHECK_INT(request("127.0.0.1", port, "GET", "/nope", resp,
			  sizeof(resp)), 404);
	CHECK_INT(request("127.0.0.1", port, "GET", "/metrics/", resp,
			  sizeof(resp)), 404);

	fr.calls = 0;
	CHECK_INT(request("127.0.0.1", port, "POST", "/metrics", resp,
			  sizeof(resp)), 405);
	CHECK(strstr(resp, "\r\nAllow: GET, HEAD\r\n") != NULL);
	CHECK_INT(request("127.0.0.1", port, "DELETE", "/", resp,
			  sizeof(resp)), 405);
	CHECK_INT(fr.calls, 0);

	fr.fail = 1;
	CHECK_INT(request("127.0.0.1", port, "GET", "/metrics", resp,
			  sizeof(resp)), 500);
	http_stop(srv);
}

/* Run fn with stderr captured; returns what it printed. */
static void capture_stderr(struct http_server *(*fn)(const char *),
			   const char *arg, struct http_server **srv,
			   char *out, size_t size)
{
	char path[] = "/tmp/unit-stderr.XXXXXX";
	int fd = mkstemp(path), saved;
	ssize_t n;

	out[0] = '\0';
	*srv = NULL;
	if (fd < 0)
		return;
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	*srv = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
}

static struct fake_render quiet;

static struct http_server *start_at(const char *addr)
{
	return http_start(addr, "/metrics", render, &quiet);
}

static struct http_server *start_path(const char *path)
{
	return http_start("127.0.0.1:0", path, render, &quiet);
}

static int one_line(const char *s)
{
	const char *nl = strchr(s, '\n');

	return nl && nl[1] == '\0';
}

static void test_start_errors(void)
{
	struct http_server *a, *b;
	char addr[64], msg[1024];

	a = start_at("127.0.0.1:0");
	CHECK(a != NULL);
	if (!a)
		return;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_port(a));
	capture_stderr(start_at, addr, &b, msg, sizeof(msg));
	CHECK(b == NULL);
	CHECK(one_line(msg));
	CHECK(strstr(msg, "--web.listen-address") != NULL);
	CHECK(strstr(msg, "Address already in use") != NULL);
	http_stop(b);
	http_stop(a);
	/* stopped means the port is free again */
	a = start_at(addr);
	CHECK(a != NULL);
	http_stop(a);

	capture_stderr(start_at, "localhost", &b, msg, sizeof(msg));
	CHECK(b == NULL);
	CHECK(one_line(msg));
	CHECK(strstr(msg, "--web.listen-address") != NULL);

	capture_stderr(start_path, "metrics", &b, msg, sizeof(msg));
	CHECK(b == NULL);
	CHECK(one_line(msg));
	CHECK(strstr(msg, "--web.telemetry-path") != NULL);
}

/* ":port" takes IPv4 clients too (on IPv6 hosts through mapped addresses). */
static void test_dual_stack(void)
{
	struct fake_render fr = { 0 };
	struct http_server *srv;
	char resp[4096];

	srv = http_start(":0", "/m", render, &fr);
	CHECK(srv != NULL);
	if (!srv)
		return;
	CHECK_INT(request("127.0.0.1", http_port(srv), "GET", "/m", resp,
			  sizeof(resp)), 200);
	if (request("::1", http_port(srv), "GET", "/m", resp,
		    sizeof(resp)) == 200)
		CHECK(strstr(body_of(resp), "t_total 2") != NULL);
	else
		SKIP("no IPv6 loopback");
	http_stop(srv);
}

/*
 * One HTTP/1.1 response with a Content-Length off fd, into resp: its
 * status, or -1 (the connection closed first, or no length).
 */
static int read_response(int fd, char *resp, size_t size)
{
	size_t got = 0, want = 0;
	const char *cl, *body;
	int status;
	ssize_t n;

	resp[0] = '\0';
	for (;;) {
		body = strstr(resp, "\r\n\r\n");
		if (body) {
			cl = strcasestr(resp, "\r\nContent-Length: ");
			if (!cl || cl > body)
				return -1;
			want = (size_t)(body + 4 - resp) +
			       strtoul(cl + 18, NULL, 10);
			if (got >= want)
				break;
		}
		if (got + 1 >= size)
			return -1;
		n = read(fd, resp + got, size - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		resp[got] = '\0';
	}
	if (got != want || sscanf(resp, "HTTP/1.1 %d", &status) != 1)
		return -1;
	return status;
}

/*
 * HTTP/1.1 keeps the connection: several requests on one, each answered
 * (the last of them a 404 and a HEAD), the server counting one connection
 * and saying no "Connection: close"; one that asks for a close gets it.
 */
static void test_keep_alive(void)
{
	static const char *const reqs[] = {
		"GET /metrics", "GET /metrics", "GET /", "GET /nope",
		"HEAD /metrics", "GET /metrics",
	};
	static const int want[] = { 200, 200, 200, 404, 200, 200 };
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct fake_render fr = { 0 };
	struct http_server *srv;
	char resp[8192], req[128];
	int fd;
	size_t i;

	srv = http_start("127.0.0.1:0", "/metrics", render, &fr);
	CHECK(srv != NULL);
	if (!srv)
		return;
	a.sin_port = htons(http_port(srv));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		CHECK(0);
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		snprintf(req, sizeof(req), "%s HTTP/1.1\r\nHost: test\r\n%s\r\n",
			 reqs[i], i + 1 < sizeof(reqs) / sizeof(reqs[0]) ? "" :
			 "Connection: close\r\n");
		CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
		if (!strncmp(reqs[i], "HEAD", 4)) {
			/* no body to wait for: the headers are the answer */
			CHECK(read(fd, resp, sizeof(resp) - 1) > 0);
			CHECK(!strncmp(resp, "HTTP/1.1 200 ", 13));
			continue;
		}
		CHECK_INT(read_response(fd, resp, sizeof(resp)), want[i]);
		if (i + 1 < sizeof(reqs) / sizeof(reqs[0]))
			CHECK(strcasestr(resp, "\r\nConnection: close") == NULL);
		if (want[i] == 200 && !strncmp(reqs[i], "GET /metrics", 12))
			CHECK_LINE(body_of(resp), "kvm_unsync_http_connections 1");
	}
	CHECK(strcasestr(resp, "\r\nConnection: close\r\n") != NULL);
	CHECK(read(fd, resp, sizeof(resp)) == 0);	/* closed behind it */
	CHECK_INT(fr.calls, 4);	/* the HEAD renders too */
out:
	if (fd >= 0)
		close(fd);
	http_stop(srv);
}

UNIT_SUITE(http)
{
	test_parse_good();
	test_parse_bad();
	test_server();
	test_keep_alive();
	test_start_errors();
	test_dual_stack();
}
