/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the web config's files share, and nothing else includes:
 * web_config.c reads and parses the file and calls on the others for what
 * it cannot judge itself.  web_config.h is the API.
 *
 *   web_config.c      the YAML schema, reading the files it names
 *   web_config_tls.c  GnuTLS checks of the TLS material
 *   basic_auth.c      Authorization headers and bcrypt hashes
 */
#ifndef __WEB_CONFIG_INTERNAL_H
#define __WEB_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include "web_config.h"

/*
 * The certificate and key load and match, and the client CA (if any)
 * holds a certificate.  path names the config file in the message.
 * Returns 0, or -EINVAL or -ENOMEM with a message in err.
 */
int web_config_check_tls(const char *path, const struct web_config *c,
			 char *err, size_t err_size);

/*
 * h has bcrypt's shape: $2a$, $2b$ or $2y$, a two-digit cost 04-31 and 53
 * characters of salt and digest.  Says nothing of the password.
 */
bool web_bcrypt_shaped(const char *h);

#endif /* __WEB_CONFIG_INTERNAL_H */
