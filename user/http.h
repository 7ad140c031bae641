/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The exporter's HTTP endpoint (libmicrohttpd, one internal polling
 * thread): GET/HEAD only; the telemetry path serves the render callback's
 * text, "/" a small landing page, anything else 404.
 */
#ifndef __HTTP_H
#define __HTTP_H

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

#define HTTP_CONNECTION_LIMIT	32	/* a scraper or two, and curl */
#define HTTP_CONNECTION_TIMEOUT	30	/* seconds a connection may idle */

/*
 * Builds the telemetry page into out (empty on entry).  Called with the
 * scrape mutex held, so scrapes never overlap; anything it does after the
 * last append (deleting dead VMs) happens after the body is built.
 * Returns 0, or -errno for a 500.
 */
typedef int (*http_render_fn)(void *ctx, struct strbuf *out);

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int dual_stack;		/* ":port": [::] with IPv4 mapped in */
};

/*
 * Parse a --web.listen-address value strictly: "host:port", ":port" or
 * "[v6addr]:port"; port is decimal 0-65535 (0: any free port).  host is a
 * numeric address or a name resolved now.  On error returns -EINVAL and
 * writes a one-line message naming the flag into err.
 */
int http_parse_listen_address(const char *s, struct listen_addr *out,
			      char *err, size_t err_size);

struct http_server;

/*
 * Listen and serve from a thread of libmicrohttpd's.  Returns NULL after
 * printing one line to stderr (bad address, port in use, ...).
 */
struct http_server *http_start(const char *listen_address,
			       const char *telemetry_path,
			       http_render_fn render, void *ctx);
/* The port actually bound (useful with port 0). */
int http_port(const struct http_server *srv);
/* Stop serving and free; waits for a scrape in progress.  NULL is fine. */
void http_stop(struct http_server *srv);

#endif /* __HTTP_H */
