/* A self-signed certificate for localhost, made once with the OpenSSL 3 API and kept in a state
 * directory so that browsers and curl --cacert can trust it across restarts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rill/tls.h"
#include "tls/tls_internal.h"

#define CERT_NAME "localhost-cert.pem"
#define KEY_NAME "localhost-key.pem"
#define VALID_DAYS 365
#define MIN_REMAINING_SECONDS (24 * 3600)


int rill_tls_default_state_dir(char *buf, size_t buflen)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, buflen, "%s/rill", xdg);
    else if (home && *home)
        n = snprintf(buf, buflen, "%s/.local/state/rill", home);
    else
        return RILL_ERR_NOT_FOUND;
    return n < 0 || (size_t)n >= buflen ? RILL_ERR_BUFFER_TOO_SMALL : RILL_OK;
}

/* mkdir -p; the last component gets mode 0700 (it will hold a private key). */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        tls_say(err, errlen, "state directory path too long");
        return RILL_ERR_INVALID_ARG;
    }
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            tls_say(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            return RILL_ERR_IO;
        }
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        tls_say(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
        return RILL_ERR_IO;
    }
    return RILL_OK;
}

/* True if the pair loads, matches, and stays valid for at least another day. */
static bool existing_pair_usable(const char *cert_path, const char *key_path)
{
    bool ok = false;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    FILE *f = fopen(cert_path, "r");
    if (f) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    f = fopen(key_path, "r");
    if (f) {
        k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (x && k && X509_check_private_key(x, k) == 1) {
        time_t soon = time(NULL) + MIN_REMAINING_SECONDS;
        ok = X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return ok;
}

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    X509_NAME *name = X509_NAME_new();
    bool ok = x && serial && name && X509_set_version(x, 2) /* v3 */
              && BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
              BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) /* tolerate small clock skew */
              && X509_gmtime_adj(X509_getm_notAfter(x), (long)VALID_DAYS * 24 * 3600) &&
              X509_set_pubkey(x, key) &&
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"rill", -1, -1, 0) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                                         0) &&
              X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
              add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
              add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
              add_ext(x, NID_key_usage, "critical,digitalSignature") &&
              add_ext(x, NID_ext_key_usage, "serverAuth") && add_ext(x, NID_subject_key_identifier, "hash") &&
              X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(serial);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes through a temporary file and rename(), so a reader never sees half a PEM file. */
static int write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        tls_say(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return RILL_ERR_IO;
    }
    fchmod(fd, mode); /* the umask must not widen or narrow it */
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        tls_say(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return RILL_ERR_IO;
    }
    int ok = cert ? PEM_write_X509(f, cert) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        tls_say(err, errlen, "cannot write %s: %s", path, ok ? strerror(errno) : "PEM encoding failed");
        unlink(tmp);
        return RILL_ERR_IO;
    }
    return RILL_OK;
}

int rill_tls_self_signed(const char *dir, char *cert_path, char *key_path, size_t pathlen, bool *created,
                         char *err, size_t errlen)
{
    if (created)
        *created = false;
    char state[4096];
    if (!dir) {
        if (rill_tls_default_state_dir(state, sizeof state) != RILL_OK) {
            tls_say(err, errlen, "no state directory: set XDG_STATE_HOME or HOME");
            return RILL_ERR_NOT_FOUND;
        }
        dir = state;
    }
    int rc = make_dirs(dir, err, errlen);
    if (rc != RILL_OK)
        return rc;
    int n1 = snprintf(cert_path, pathlen, "%s/%s", dir, CERT_NAME);
    int n2 = snprintf(key_path, pathlen, "%s/%s", dir, KEY_NAME);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= pathlen || (size_t)n2 >= pathlen) {
        tls_say(err, errlen, "state directory path too long");
        return RILL_ERR_BUFFER_TOO_SMALL;
    }
    if (existing_pair_usable(cert_path, key_path))
        return RILL_OK;

    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = key ? make_cert(key) : NULL;
    if (!cert) {
        unsigned long e = ERR_peek_last_error();
        tls_say(err, errlen, "cannot generate a certificate: %s",
            e && ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "OpenSSL error");
        ERR_clear_error();
        EVP_PKEY_free(key);
        return RILL_ERR_TLS;
    }
    /* Key first: a reader that sees the new certificate also finds its key. */
    rc = write_pem(key_path, 0600, NULL, key, err, errlen);
    if (rc == RILL_OK)
        rc = write_pem(cert_path, 0644, cert, NULL, err, errlen);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rc == RILL_OK && created)
        *created = true;
    return rc;
}
