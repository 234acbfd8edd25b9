#include "server/static_files.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/http_chars.h"
#include "server/mime.h"

struct rill_static_root {
    int dirfd;
};

rill_static_root *rill_static_root_open(const char *dir, int *err)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    rill_static_root *root = malloc(sizeof *root);
    if (!root) {
        close(fd);
        *err = ENOMEM;
        return NULL;
    }
    root->dirfd = fd;
    return root;
}

void rill_static_root_close(rill_static_root *root)
{
    if (root) {
        close(root->dirfd);
        free(root);
    }
}

enum rill_static_status rill_static_normalize(const char *target, size_t len,
                                              char out[RILL_STATIC_PATH_MAX], bool *trailing_slash)
{
    char decoded[RILL_STATIC_PATH_MAX];
    size_t n = 0;
    if (len == 0 || target[0] != '/')
        return RILL_STATIC_BAD_REQUEST;
    for (size_t i = 0; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char c = target[i];
        if (c == '%') {
            int hi = i + 2 < len ? http_hex_value((uint8_t)target[i + 1]) : -1;
            int lo = hi >= 0 ? http_hex_value((uint8_t)target[i + 2]) : -1;
            if (lo < 0)
                return RILL_STATIC_BAD_REQUEST;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || c == '\\' || n + 1 >= sizeof decoded)
            return RILL_STATIC_BAD_REQUEST;
        decoded[n++] = c;
    }
    decoded[n] = '\0';

    /* Resolve segments into out; seg_starts remembers where each kept segment begins. */
    size_t o = 0, depth = 0;
    size_t seg_starts[RILL_STATIC_PATH_MAX / 2];
    *trailing_slash = n > 0 && decoded[n - 1] == '/';
    for (size_t i = 0; i < n;) {
        while (i < n && decoded[i] == '/')
            i++;
        size_t s = i;
        while (i < n && decoded[i] != '/')
            i++;
        size_t seg_len = i - s;
        if (seg_len == 0 || (seg_len == 1 && decoded[s] == '.'))
            continue;
        if (seg_len == 2 && decoded[s] == '.' && decoded[s + 1] == '.') {
            if (depth == 0)
                return RILL_STATIC_BAD_REQUEST; /* above the root */
            o = seg_starts[--depth];
            continue;
        }
        if (decoded[s] == '.' && !(depth == 0 && seg_len == 11 && !memcmp(decoded + s, ".well-known", 11)))
            return RILL_STATIC_FORBIDDEN;
        seg_starts[depth++] = o; /* where this segment's separator goes: popping returns here */
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, decoded + s, seg_len);
        o += seg_len;
    }
    out[o] = '\0';
    return RILL_STATIC_OK;
}

/* pchar (RFC 3986 §3.3) and '/': what a path may carry unescaped. */
static bool path_char_plain(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/", c));
}

char *rill_static_redirect_location(const char *prefix, size_t prefix_len, const char *target,
                                    size_t target_len)
{
    char rel[RILL_STATIC_PATH_MAX];
    bool trailing_slash;
    if (rill_static_normalize(target, target_len, rel, &trailing_slash) != RILL_STATIC_OK)
        return NULL;
    size_t q = 0;
    while (q < target_len && target[q] != '?' && target[q] != '#')
        q++;
    size_t query_len = 0;
    while (q + query_len < target_len && target[q + query_len] != '#')
        query_len++;
    size_t rel_len = strlen(rel);
    char *loc = malloc(prefix_len + 3 * rel_len + query_len + 3);
    if (!loc)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    memcpy(loc, prefix, prefix_len);
    size_t o = prefix_len;
    loc[o++] = '/'; /* rel never starts with '/': the location is "/" or "/x..." with x not '/' */
    for (size_t i = 0; i < rel_len; i++) {
        uint8_t c = (uint8_t)rel[i];
        if (path_char_plain(c)) {
            loc[o++] = (char)c;
        } else {
            loc[o++] = '%';
            loc[o++] = hex[c >> 4];
            loc[o++] = hex[c & 15];
        }
    }
    if (rel_len)
        loc[o++] = '/';
    memcpy(loc + o, target + q, query_len);
    loc[o + query_len] = '\0';
    return loc;
}

bool rill_accept_encoding_allows(const char *value, size_t len, const char *coding)
{
    size_t coding_len = strlen(coding);
    int star = -1, exact = -1; /* -1 absent, 0 refused, 1 accepted */
    const char *p = value, *end = value ? value + len : NULL;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tok_len = (size_t)(p - tok);
        int accepted = 1;
        while (p < end && *p != ',') { /* parameters: only q matters */
            if (*p == ';') {
                p++;
                while (p < end && (*p == ' ' || *p == '\t'))
                    p++;
                if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    p += 2;
                    /* q=0, q=0.0, q=0.00 mean "not acceptable"; any non-zero digit accepts */
                    accepted = 0;
                    while (p < end && *p != ',' && *p != ';') {
                        if (*p >= '1' && *p <= '9')
                            accepted = 1;
                        p++;
                    }
                    continue;
                }
            }
            p++;
        }
        if (tok_len == coding_len && strncasecmp(tok, coding, coding_len) == 0)
            exact = accepted;
        else if (tok_len == 1 && tok[0] == '*')
            star = accepted;
    }
    return exact >= 0 ? exact == 1 : star == 1;
}

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Without openat2 (kernels before 5.6, some sandboxes and valgrind): one component at a time,
 * following no symlink at all, which is stricter than RESOLVE_BENEATH (a link inside the root
 * is refused too) but never leaves the root. rel is already normalised (no "..", no "//"). */
static int open_by_components(int dirfd, const char *rel)
{
    int cur = dirfd;
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        char comp[256];
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n >= sizeof comp) {
            if (cur != dirfd)
                close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        bool last = !slash || !slash[1];
        int fd = openat(cur, n ? comp : ".", OPEN_FLAGS | O_NOFOLLOW | (last ? 0 : O_DIRECTORY));
        int err = errno;
        struct stat link;
        if (fd < 0 && err == ENOTDIR && fstatat(cur, comp, &link, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(link.st_mode))
            err = ELOOP; /* a symlink to a directory: O_DIRECTORY says ENOTDIR */
        if (cur != dirfd)
            close(cur);
        if (fd < 0) {
            errno = err == ELOOP ? EXDEV : err; /* a symlink: refused, as one leaving the root */
            return -1;
        }
        if (last)
            return fd;
        cur = fd;
        p = slash + 1;
    }
}

static int open_beneath(int dirfd, const char *rel)
{
    static _Atomic bool no_openat2;
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how how = {
            .flags = OPEN_FLAGS,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, dirfd, rel[0] ? rel : ".", &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    }
    return open_by_components(dirfd, rel);
}

static enum rill_static_status status_from_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return RILL_STATIC_NOT_FOUND;
    default: /* EXDEV: a symlink leads out of the root; EACCES, ELOOP... */
        return RILL_STATIC_FORBIDDEN;
    }
}

/* Opens rel + suffix if it is a regular file; -1 otherwise. */
static int open_regular(int dirfd, const char *rel, const char *suffix, struct stat *st)
{
    char path[RILL_STATIC_PATH_MAX + 16];
    size_t rl = strlen(rel), sl = strlen(suffix);
    if (rl + sl >= sizeof path)
        return -1;
    memcpy(path, rel, rl);
    memcpy(path + rl, suffix, sl + 1);
    int fd = open_beneath(dirfd, path);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

enum rill_static_status rill_static_open(const rill_static_root *root, const char *target,
                                         size_t target_len, const char *accept_encoding,
                                         size_t accept_encoding_len, struct rill_static_file *out)
{
    char rel[RILL_STATIC_PATH_MAX + 16];
    bool trailing_slash;
    enum rill_static_status st = rill_static_normalize(target, target_len, rel, &trailing_slash);
    if (st != RILL_STATIC_OK)
        return st;

    int fd = open_beneath(root->dirfd, rel);
    if (fd < 0)
        return status_from_errno(errno);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return RILL_STATIC_FORBIDDEN;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        if (!trailing_slash)
            return RILL_STATIC_REDIRECT_DIR;
        size_t rl = strlen(rel);
        memcpy(rel + rl, rl ? "/index.html" : "index.html", rl ? 12 : 11);
        fd = open_beneath(root->dirfd, rel);
        if (fd < 0)
            return status_from_errno(errno);
        if (fstat(fd, &sb) != 0) {
            close(fd);
            return RILL_STATIC_FORBIDDEN;
        }
    } else if (trailing_slash) {
        close(fd);
        return RILL_STATIC_NOT_FOUND; /* "/file.txt/" names no directory */
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return RILL_STATIC_FORBIDDEN;
    }

    memset(out, 0, sizeof *out);
    out->content_type = rill_mime_type(rel);
    out->content_type_len = strlen(out->content_type); /* once per open, not per response */
    static const struct {
        const char *coding, *suffix;
    } variants[] = {{"br", ".br"}, {"gzip", ".gz"}};
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        struct stat vsb;
        int vfd = open_regular(root->dirfd, rel, variants[i].suffix, &vsb);
        if (vfd < 0)
            continue;
        out->has_encoded_variants = true;
        if (out->content_encoding ||
            !rill_accept_encoding_allows(accept_encoding, accept_encoding_len, variants[i].coding)) {
            close(vfd);
            continue;
        }
        close(fd);
        fd = vfd;
        sb = vsb;
        out->content_encoding = variants[i].coding;
    }
    /* The file may have been opened O_NONBLOCK; regular files ignore it, keep it simple. */
    out->fd = fd;
    out->size = (uint64_t)sb.st_size;
    out->mtime_sec = sb.st_mtim.tv_sec;
    out->mtime_nsec = sb.st_mtim.tv_nsec;
    return RILL_STATIC_OK;
}
