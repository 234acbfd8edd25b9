/* Which listening addresses this process holds. SO_REUSEPORT lets every loop listen on the
 * same address, but it would equally let a second server (any process of the same user that
 * sets it) share a port already in use and take half of its connections. So the first listener
 * on an address binds without it (the bind fails if anyone listens there) and sets it only
 * once listening; later listeners of this process on that address join with it set. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/io_internal.h"

struct claim {
    struct rill_io_addr addr;
    unsigned listeners;
};

static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct claim *claims;
static size_t nclaims, claims_cap;

static bool same_addr(const struct rill_io_addr *a, const struct rill_io_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return false;
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static struct claim *find(const struct rill_io_addr *addr)
{
    for (size_t i = 0; i < nclaims; i++)
        if (same_addr(&claims[i].addr, addr))
            return &claims[i];
    return NULL;
}

static bool reserve(void)
{
    if (nclaims < claims_cap)
        return true;
    size_t cap = claims_cap ? 2 * claims_cap : 4;
    struct claim *grown = realloc(claims, cap * sizeof *grown);
    if (!grown) {
        errno = ENOMEM;
        return false;
    }
    claims = grown;
    claims_cap = cap;
    return true;
}

int io_port_bind_listen(int fd, const struct rill_io_addr *addr, int backlog,
                        struct rill_io_addr *bound)
{
    int one = 1;
    pthread_mutex_lock(&claims_lock);
    bool joining = rill_io_addr_port(addr) != 0 && find(addr) != NULL;
    if (joining)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    int rc = -1;
    bound->len = sizeof bound->ss;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0 && listen(fd, backlog) == 0 &&
        getsockname(fd, (struct sockaddr *)&bound->ss, &bound->len) == 0)
        rc = 0;
    if (rc == 0 && !joining) {
        /* Set after listen: the kernel checks it at each later bind, so this process's other
         * loops may join, and nobody could before. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 || !reserve())
            rc = -1;
        else
            claims[nclaims++] = (struct claim){.addr = *bound, .listeners = 0};
    }
    if (rc == 0)
        find(bound)->listeners++;
    int saved = errno;
    pthread_mutex_unlock(&claims_lock);
    errno = saved;
    return rc;
}

void io_port_release(const struct rill_io_addr *addr)
{
    pthread_mutex_lock(&claims_lock);
    struct claim *c = find(addr);
    if (c && --c->listeners == 0)
        *c = claims[--nclaims];
    pthread_mutex_unlock(&claims_lock);
}
