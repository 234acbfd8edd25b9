/* The system's CA store for a client context that verifies. OpenSSL's default paths read the
 * whole bundle file (/usr/lib/ssl/cert.pem: ~140 certificates) into every context: 17 ms of CPU
 * per `rill get https://...` on a 2-core Xeon, three times the rest of a small request. The hashed
 * directory beside it (/etc/ssl/certs on Debian, written together with the bundle by
 * update-ca-certificates) holds the same CAs and is read one issuer at a time, when a chain asks
 * for it. So the directory alone stands in for the pair when both are the system's own; anything
 * else (SSL_CERT_FILE or SSL_CERT_DIR naming other places, a directory without hash links) gets
 * OpenSSL's defaults. Trusting the directory alone never trusts more than the defaults would. */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/tls_internal.h"

/* Whether dir holds c_rehash's links ("5ad8a5d6.0"), by which a lookup finds an issuer. */
static bool has_hash_links(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    const struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t i = 0;
        while (i < 8 && isxdigit((unsigned char)n[i]))
            i++;
        found = i == 8 && n[8] == '.' && isdigit((unsigned char)n[9]);
    }
    closedir(d);
    return found;
}

static bool same_path(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

const char *tls_store_dir(const char *file_env, const char *dir_env, const char *sys_file,
                          const char *sys_dir)
{
    if (file_env && !same_path(file_env, sys_file))
        return NULL;
    if (dir_env && !same_path(dir_env, sys_dir))
        return NULL;
    return has_hash_links(sys_dir) ? sys_dir : NULL;
}

bool tls_load_system_store(SSL_CTX *c)
{
    const char *dir = tls_store_dir(getenv(X509_get_default_cert_file_env()),
                                    getenv(X509_get_default_cert_dir_env()),
                                    X509_get_default_cert_file(), X509_get_default_cert_dir());
    return dir ? SSL_CTX_load_verify_dir(c, dir) == 1 : SSL_CTX_set_default_verify_paths(c) == 1;
}
