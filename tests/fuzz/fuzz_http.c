// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the HTTP endpoint's own request handling: method,
 * URL and path dispatch, the 405/404/500 answers and the metrics body
 * (user/http_dispatch.c).  libmicrohttpd parses the bytes; what this
 * proves is that nothing a client sends drives our callback into a crash,
 * a sanitizer report or an answer that is not HTTP.
 *
 * The servers are the daemon's own, started once on 127.0.0.1 (ports
 * chosen by the kernel): one plain, one with a --web.config.file that sets
 * a basic-auth user (fuzz:pw, bcrypt cost 4 so a check stays cheap).  Each
 * input goes over a fresh loopback connection.  The first input byte picks
 * what the render callback does (ok, empty body, error), whether an empty
 * line is sent after the request (unless bit 0x4 is set) and which server
 * (bit 0x8: the one with auth); the rest is the request.  An answer, if any, must be HTTP.
 * No answer within 10 ms is accepted: libmicrohttpd waits for the rest of
 * an incomplete request (up to the 15 s request deadline, even after
 * the client shut its write side), so the harness resets the connection
 * and moves on.
 *
 *   tests/fuzz/run.sh http
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "http.h"
#include "prom_text.h"

/* fuzz:pw */
#define AUTH_CONFIG \
	"basic_auth_users:\n" \
	"  fuzz: $2b$04$abcdefghijklmnopqrstuuyvPXIbu7xe6/CED2DzX8z6Si09MlzlW\n"

static struct http_server *srv, *srv_auth;
static int port, port_auth;
static volatile int render_mode;

static int render(void *ctx, struct strbuf *out)
{
	(void)ctx;
	switch (render_mode % 3) {
	case 0:
		sb_printf(out, "# TYPE kvm_unsync_vms gauge\nkvm_unsync_vms 0\n");
		return 0;
	case 1:
		return 0;	/* empty body */
	default:
		return -EIO;	/* a failed map read: 500 */
	}
}

static void stop(void)
{
	http_stop(srv);
	http_stop(srv_auth);
}

static struct http_server *start_auth(void)
{
	struct http_options o = HTTP_OPTIONS_INIT;
	static char dir[] = "/tmp/kue-fuzz-http.XXXXXX";
	char path[sizeof(dir) + 16];
	FILE *f;

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/web.yml", dir);
	f = fopen(path, "w");
	if (!f || fputs(AUTH_CONFIG, f) < 0 || fclose(f))
		abort();
	o.listen_address = "127.0.0.1:0";
	o.web_config_file = path;
	return http_start_opts(&o, render, NULL);
}

static void start_once(void)
{
	if (srv)
		return;
	signal(SIGPIPE, SIG_IGN);
	srv = http_start("127.0.0.1:0", "/metrics", render, NULL);
	srv_auth = start_auth();
	if (!srv || !srv_auth)
		abort();
	port = http_port(srv);
	port_auth = http_port(srv_auth);
	if (port <= 0 || port_auth <= 0)
		abort();
	atexit(stop);
}

static int connect_loopback(int to_port)
{
	struct sockaddr_in sin = { 0 };
	struct timeval tv = { .tv_usec = 10 * 1000 };
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	sin.sin_family = AF_INET;
	sin.sin_port = htons(to_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		abort();
	return fd;
}

static void send_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len) {
		n = send(fd, c, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;	/* the server may close early on a bad request */
		c += n;
		len -= n;
	}
}

/* Close with a reset, so the server drops its side at once. */
static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	uint8_t ctl;
	int fd;

	if (size < 1 || size > 16384)
		return 0;
	start_once();
	ctl = data[0];
	render_mode = ctl & 0x3;
	data++;
	size--;

	fd = connect_loopback(ctl & 0x8 ? port_auth : port);
	send_all(fd, data, size);
	if (!(ctl & 0x4))
		send_all(fd, "\r\n\r\n", 4);
	/* A complete request is answered, then EOF closes a keep-alive. */
	shutdown(fd, SHUT_WR);
	for (;;) {
		n = recv(fd, buf + (got < 8 ? got : 8),
			 got < 8 ? 8 - got : sizeof(buf) - 8, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EOF, reset, or no (more) answer in 200 ms */
		got += n;
	}
	reset_close(fd);
	/* No answer is fine (see above); anything else must be HTTP. */
	if (got && (got < 8 || memcmp(buf, "HTTP/1.", 7)))
		abort();
	return 0;
}
