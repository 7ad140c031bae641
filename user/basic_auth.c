// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HTTP basic auth for the web config's users (see web_config.h): the
 * Authorization header decoded strictly, passwords checked against the
 * users' bcrypt hashes in constant time, and the shape a hash must have
 * to be accepted in basic_auth_users.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero under -std=c11 */
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <crypt.h>
#include "web_config.h"
#include "web_config_internal.h"

/* A bcrypt hash is "$2b$NN$" and 53 characters of salt and digest. */
#define BCRYPT_LEN	60

/*
 * Checked against for unknown users so they cost what known ones do: the
 * salt and digest of a random string nobody knows, after "$2b$NN$" with
 * the configured users' cost (see web_config_dummy_cost).
 */
static const char dummy_tail[] =
	"U2M6hPJefCFB7UmvoVbhuuRsGeNDL5phWShcXVZFVq40OjNZTUwzy";

/* bcrypt's shape: $2a$, $2b$ or $2y$, two-digit cost 04-31, 53 chars. */
int web_bcrypt_cost(const char *h)
{
	return (h[4] - '0') * 10 + (h[5] - '0');
}

bool web_bcrypt_shaped(const char *h)
{
	size_t i;
	int cost;

	if (strlen(h) != BCRYPT_LEN || h[0] != '$' || h[1] != '2' ||
	    !strchr("aby", h[2]) || h[3] != '$' || h[6] != '$')
		return false;
	if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9')
		return false;
	cost = web_bcrypt_cost(h);
	if (cost < 4 || cost > 31)
		return false;
	for (i = 7; i < BCRYPT_LEN; i++)
		if (!strchr("./ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789", h[i]))
			return false;
	return true;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict standard base64 (with padding) of n chars into out; -1 if bad. */
static long b64_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t i, o = 0;

	if (n % 4)
		return -1;
	for (i = 0; i < n; i += 4) {
		int v[4], k, pad = 0;
		uint32_t w = 0;

		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad)	/* "=" then a character */
				return -1;
			v[k] = b64_value(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		/* the unused bits before padding must be zero */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			return -1;
		if (o + 3 - (size_t)pad > size)
			return -1;
		out[o++] = (char)(w >> 16);
		if (pad < 2)
			out[o++] = (char)(w >> 8);
		if (pad < 1)
			out[o++] = (char)w;
	}
	return (long)o;
}

int web_parse_basic_auth(const char *header, char *user, size_t user_size,
			 char *pass, size_t pass_size)
{
	char dec[1024];
	const char *s, *end, *colon;
	long n;
	size_t ulen, plen;

	if (!header || strncasecmp(header, "Basic", 5) ||
	    (header[5] != ' ' && header[5] != '\t'))
		return -EINVAL;
	for (s = header + 5; *s == ' ' || *s == '\t'; s++)
		;
	for (end = s + strlen(s); end > s && (end[-1] == ' ' ||
					      end[-1] == '\t'); end--)
		;
	n = b64_decode(s, (size_t)(end - s), dec, sizeof(dec));
	if (n <= 0 || memchr(dec, '\0', (size_t)n))
		return -EINVAL;
	colon = memchr(dec, ':', (size_t)n);
	if (!colon)
		return -EINVAL;
	ulen = (size_t)(colon - dec);
	plen = (size_t)n - ulen - 1;
	if (ulen >= user_size || plen >= pass_size)
		return -EINVAL;
	memcpy(user, dec, ulen);
	user[ulen] = '\0';
	memcpy(pass, colon + 1, plen);
	pass[plen] = '\0';
	explicit_bzero(dec, sizeof(dec));
	return 0;
}

bool web_bcrypt_check(const char *hash, const char *password)
{
	struct crypt_data *data;
	const char *out;
	unsigned char diff = 0;
	size_t i, n;

	if (!hash || !password)
		return false;
	data = calloc(1, sizeof(*data));
	if (!data)
		return false;
	out = crypt_rn(password, hash, data, (int)sizeof(*data));
	n = strlen(hash);
	if (!out || out[0] == '*' || strlen(out) != n) {
		free(data);
		return false;
	}
	for (i = 0; i < n; i++)
		diff |= (unsigned char)(out[i] ^ hash[i]);
	explicit_bzero(data, sizeof(*data));
	free(data);
	return diff == 0;
}

/*
 * The highest cost among the users: an unknown name then costs what the
 * dearest known one does.  Users of lower cost still answer faster than an
 * unknown name, which only hashes of one cost avoid (README says so).
 */
int web_config_dummy_cost(const struct web_config *cfg)
{
	int cost = 0, c;
	size_t i;

	for (i = 0; i < cfg->nr_users; i++) {
		c = web_bcrypt_cost(cfg->users[i].hash);
		if (c > cost)
			cost = c;
	}
	return cost ? cost : 10;
}

bool web_config_user_hash(const struct web_config *cfg, const char *user,
			  char *hash, size_t size)
{
	size_t i;

	for (i = 0; i < cfg->nr_users; i++) {
		if (!strcmp(cfg->users[i].name, user)) {
			snprintf(hash, size, "%s", cfg->users[i].hash);
			return true;
		}
	}
	snprintf(hash, size, "$2b$%02d$%s", web_config_dummy_cost(cfg),
		 dummy_tail);
	return false;
}

bool web_config_check_user(const struct web_config *cfg, const char *user,
			   const char *password)
{
	char hash[BCRYPT_LEN + 1];
	bool known, ok;

	known = web_config_user_hash(cfg, user, hash, sizeof(hash));
	ok = web_bcrypt_check(hash, password);
	return known && ok;
}
