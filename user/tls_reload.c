// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A web config re-read while serving (http.h http_reload): new users take
 * the place of the old under the lock the requests take, new TLS settings
 * a new libmicrohttpd daemon on the same listening socket.  Each daemon
 * runs with its own copy of the TLS settings (struct tls_run), so the old
 * config can go while the old daemon drains.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero, usleep under -std=c11 */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <microhttpd.h>
#include "http.h"
#include "http_internal.h"
#include "web_config.h"

#define RELOAD_GRACE_MS	1000	/* for requests in flight on a TLS change */

static const volatile sig_atomic_t *stop_flag;

void http_reload_stop_flag(const volatile sig_atomic_t *flag)
{
	stop_flag = flag;
}

void tls_run_free(struct tls_run *t)
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

struct tls_run *tls_run_new(struct http_server *srv,
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

/* Give requests in flight on a quiesced daemon a moment to finish. */
static void drain(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di;
	int ms;

	for (ms = 0; ms < RELOAD_GRACE_MS; ms += 50) {
		di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		if (!di || !di->num_connections || (stop_flag && *stop_flag))
			return;
		usleep(50 * 1000);
	}
}

int http_reload(struct http_server *srv)
{
	struct web_config *cfg, *old;
	struct tls_run *tls = NULL, *old_tls;
	struct MHD_Daemon *old_daemon;
	const char *weaker;
	MHD_socket fd;

	if (!srv || !srv->config_path)
		return 0;
	cfg = http_load_config(srv->config_path,
			       "; keeping the previous one");
	if (!cfg)
		return -EINVAL;
	weaker = srv->cfg ? web_config_weakens(srv->cfg, cfg) : NULL;
	if (weaker) {
		fprintf(stderr, "web config %s: the new file %s, which takes a "
			"restart, not a reload (a file cut short must not open "
			"the port); keeping the previous one\n",
			srv->config_path, weaker);
		goto bad;
	}
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
		srv->daemon = http_start_daemon(srv, tls);
		if (!srv->daemon) {
			fprintf(stderr, "web config %s: the new TLS settings do "
				"not start, keeping the previous ones\n",
				srv->config_path);
			srv->daemon = http_start_daemon(srv, old_tls);
			drain(old_daemon);
			http_stop_daemon(srv, old_daemon);
			if (!srv->daemon)
				fprintf(stderr, "http: cannot serve again on the "
					"listening socket\n");
			goto bad;
		}
		srv->tls = tls;
		drain(old_daemon);
		http_stop_daemon(srv, old_daemon);	/* leaves the quiesced fd open */
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
