/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The exporter's HTTP endpoint (libmicrohttpd, one internal polling
 * thread): GET/HEAD only; the telemetry path serves the render callback's
 * text, "/" a small landing page, anything else 404.  Optionally TLS,
 * client certificates and basic auth from a --web.config.file (see
 * web_config.h), re-read by http_reload().
 */
#ifndef __HTTP_H
#define __HTTP_H

#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include "prom_text.h"

/*
 * Default port.  Prometheus keeps a registry of exporter default ports
 * (the "Default port allocations" page of its wiki) so that exporters on
 * one host do not collide.  The 9100-9999 range it started with has been
 * fully allocated since 2023, and new entries continue above 10000.  10190
 * is past the allocations we could confirm; it must be checked against
 * the live list, and reserved there, before the first release.
 */
#define HTTP_DEFAULT_PORT		10190
#define HTTP_DEFAULT_LISTEN_ADDRESS	":10190"
#define HTTP_DEFAULT_TELEMETRY_PATH	"/metrics"

/*
 * Bounds that keep slow or half-open clients from starving a scrape: a
 * connection that sends nothing for HTTP_CONNECTION_TIMEOUT seconds is
 * closed, and a request's headers must fit in HTTP_CONNECTION_MEMORY_LIMIT
 * (431 past it).  Those are libmicrohttpd's; see conn_guard.h for the
 * rest: a request must be received and answered within
 * HTTP_REQUEST_DEADLINE seconds of its connection opening (or, kept alive,
 * within the idle timeout plus that of the last answer), and a new
 * connection that takes its address past HTTP_PER_IP_CONNECTION_LIMIT live
 * ones, or the server past HTTP_EVICT_AT, drops the one (of that address,
 * or of any) that has waited longest for its request.  The gap between
 * HTTP_EVICT_AT and the hard limit holds one address's burst.
 *
 * HTTP/1.1 connections are kept alive, so a scraper reuses its connection
 * (and TLS session) from one scrape to the next.  An idle one still holds
 * a slot, and waiting for its next request it is among the first evicted.
 * A client that closes it to open the next one is not held to it: a
 * connection whose client has hung up is not live, though libmicrohttpd
 * counts it against the address until it has read that end of stream, at
 * the earliest after accepting the newcomer.  Its own per-address limit is
 * therefore a hard one above the guard's, HTTP_PER_IP_HARD_LIMIT.
 */
#define HTTP_CONNECTION_LIMIT		32	/* a scraper or two, and curl */
#define HTTP_PER_IP_CONNECTION_LIMIT	8	/* live, from one address */
#define HTTP_PER_IP_HARD_LIMIT		(2 * HTTP_PER_IP_CONNECTION_LIMIT)
#define HTTP_EVICT_AT	(HTTP_CONNECTION_LIMIT - HTTP_PER_IP_CONNECTION_LIMIT)
#define HTTP_CONNECTION_TIMEOUT		30	/* seconds a connection may idle */
/* Prometheus gives up on a scrape after 10 s by default */
#define HTTP_REQUEST_DEADLINE		15	/* seconds */
#define HTTP_CONNECTION_MEMORY_LIMIT	(16 * 1024)	/* bytes */

/*
 * Basic-auth password checks (bcrypt) run on HTTP_AUTH_WORKERS threads of
 * their own, never on the thread that serves every connection: a request
 * waiting for its check is suspended, and the others are served meanwhile.
 * At most HTTP_AUTH_QUEUE + HTTP_AUTH_WORKERS checks are queued or
 * running (past it: 503; the last queued waits five checks), at most
 * HTTP_AUTH_PER_ADDR are queued or running for one client address (past
 * it: 429), and the last HTTP_AUTH_CACHE successes are remembered (an
 * HMAC of user, password and hash under a random key), so a scraper that
 * sends the same credentials costs one check, not one per scrape.
 */
#define HTTP_AUTH_WORKERS		2
#define HTTP_AUTH_QUEUE			8
#define HTTP_AUTH_PER_ADDR		2
#define HTTP_AUTH_CACHE			32

/*
 * Builds the telemetry page into out (empty on entry).  Called with the
 * scrape mutex held, so scrapes never overlap; anything it does after the
 * last append (deleting dead VMs) happens after the body is built.
 * Returns 0, or -errno for a 500.
 */
typedef int (*http_render_fn)(void *ctx, struct strbuf *out);

#define HTTP_FLAG_LISTEN_ADDRESS	"--web.listen-address"

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int dual_stack;		/* ":port": [::] with IPv4 mapped in */
};

/*
 * Parse a --web.listen-address value strictly: "host:port", ":port" or
 * "[v6addr]:port"; port is decimal 0-65535 (0: any free port).  host is a
 * numeric address or a name resolved now.  On error returns -EINVAL and
 * writes a one-line message naming the flag into err (listen_address.c).
 */
int http_parse_listen_address(const char *s, struct listen_addr *out,
			      char *err, size_t err_size);

/*
 * A bound, listening, non-blocking socket on a (listen_socket.c), or
 * -errno with *what naming the call that failed.  ":port" on a host
 * without IPv6 falls back to IPv4's wildcard, and a is changed to match.
 */
int listen_socket_open(struct listen_addr *a, const char **what);
/* The same, or one line on stderr naming the flag, address and call. */
int listen_socket_open_flag(struct listen_addr *a, const char *address);
/* The port of an IPv4 or IPv6 address. */
int listen_addr_port(const struct sockaddr_storage *ss);

/*
 * A port below ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE,
 * which the HTTP thread never has: the caller (main, still privileged)
 * binds it here and hands the server the socket as socket activation
 * would.  Returns the fd, -1 when the HTTP thread can bind it itself (or
 * the address is bad: http_start says why), -2 after one line on stderr.
 */
int listen_socket_open_privileged(const char *address);

struct http_server;

struct http_options {
	/* parsed as --web.listen-address; ignored when listen_fd >= 0 */
	const char *listen_address;
	/*
	 * >= 0: serve on this already bound, listening TCP socket (systemd
	 * socket activation).  The server owns it once http_start_opts()
	 * succeeded (http_stop() closes it); on failure the caller still does.
	 */
	int listen_fd;
	const char *telemetry_path;
	/* --web.config.file: NULL or "" for plain HTTP without auth */
	const char *web_config_file;
};

#define HTTP_OPTIONS_INIT {						\
	.listen_address = HTTP_DEFAULT_LISTEN_ADDRESS,			\
	.listen_fd = -1,						\
	.telemetry_path = HTTP_DEFAULT_TELEMETRY_PATH,			\
}

/*
 * Listen and serve from a thread of libmicrohttpd's.  Returns NULL after
 * printing one line to stderr (bad address, port in use, bad web config:
 * "web config FILE: ...", ...).
 */
struct http_server *http_start_opts(const struct http_options *o,
				    http_render_fn render, void *ctx);
/* http_start_opts() with a listen address, no fd, no web config. */
struct http_server *http_start(const char *listen_address,
			       const char *telemetry_path,
			       http_render_fn render, void *ctx);
/*
 * Load and check a web config file as http_start_opts() would, to fail
 * early at start-up: 0, or -EINVAL after one line on stderr.  NULL or ""
 * is fine (no config).
 */
int http_check_web_config(const char *path);
/*
 * Re-read the web config file (on SIGHUP; call it from the main loop, not
 * from the signal handler).  New users apply to the next request; new TLS
 * settings start a new libmicrohttpd daemon on the same listening socket,
 * which is never closed, so no connection is refused meanwhile (requests
 * in flight get up to a second to finish).  A bad file, or one that would
 * turn TLS, client certificate checks or basic auth off
 * (web_config_weakens), keeps the old settings: one line on stderr,
 * returns -EINVAL.  One line on success too.  Without a config file:
 * nothing, returns 0.
 */
int http_reload(struct http_server *srv);
/*
 * A flag a signal handler sets when the process is to end: a reload then
 * stops waiting for the old TLS server's requests, so SIGTERM during a
 * reload still ends the agent within a second.  NULL: none.
 */
void http_reload_stop_flag(const volatile sig_atomic_t *flag);
/* The port actually bound (useful with port 0). */
int http_port(const struct http_server *srv);
/* Stop serving and free; waits for a scrape in progress.  NULL is fine. */
void http_stop(struct http_server *srv);

#endif /* __HTTP_H */
