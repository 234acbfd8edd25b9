/* Helpers shared by the I/O and TLS tests: blocking clients with timeouts, a loop on its own
 * thread, and a guard that fails a test instead of letting it hang. Header-only (static). */
#ifndef RILL_TEST_IO_UTIL_H
#define RILL_TEST_IO_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rill/io.h"

/* Generous: the suite runs under ASan on a loaded 2-core machine. */
#define TEST_TIMEOUT_MS 60000

static inline void set_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking listening socket on 127.0.0.1 at a port the kernel picks (in *port); -1 on
 * failure. */
static inline int tcp_listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Input arrives in pieces: data written `piece` bytes at a time (0: whole), a moment apart, so
 * that the peer reads them separately. */
static inline void send_in_pieces(int fd, const void *data, size_t len, size_t piece)
{
    const char *p = data;
    if (!piece)
        piece = len;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        send(fd, p + off, n, MSG_NOSIGNAL);
        if (n < len)
            usleep(200);
    }
}

/* A blocking client socket connected to 127.0.0.1:port (-1 on failure), with I/O timeouts. */
static inline int tcp_connect_rcvbuf(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    set_timeouts(fd, TEST_TIMEOUT_MS);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int tcp_connect(uint16_t port)
{
    return tcp_connect_rcvbuf(port, 0);
}

static inline bool read_exact(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static inline bool write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Deterministic payload byte i of stream `seed`. */
static inline uint8_t pattern(uint32_t seed, size_t i)
{
    uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;
    return (uint8_t)(x >> 13);
}

/* Sends len pattern bytes on every fd while reading the echo back concurrently (poll), checking
 * every byte. With start_fd >= 0 the client is lazy: it reads nothing until start_fd becomes
 * readable (the server says it applied back-pressure) or it has sent everything, so the server's
 * output queue must build up first. Returns true when all echoes arrived intact. */
static inline bool pump_echo(const int *fds, int n, size_t len, int start_fd)
{
    bool lazy = start_fd >= 0;
    size_t *sent = calloc((size_t)n, sizeof *sent), *got = calloc((size_t)n, sizeof *got);
    bool *reading = calloc((size_t)n, sizeof *reading);
    struct pollfd *p = calloc((size_t)n + 1, sizeof *p);
    uint8_t buf[32768];
    bool ok = sent && got && p && reading;
    for (int i = 0; i < n && ok; i++)
        reading[i] = !lazy;
    int remaining = n;
    while (ok && remaining > 0) {
        for (int i = 0; i < n; i++) {
            p[i].fd = got[i] < len ? fds[i] : -1;
            p[i].events = (short)((reading[i] || sent[i] == len ? POLLIN : 0) | (sent[i] < len ? POLLOUT : 0));
            p[i].revents = 0;
        }
        p[n] = (struct pollfd){.fd = lazy ? start_fd : -1, .events = POLLIN};
        int r = poll(p, (nfds_t)n + 1, TEST_TIMEOUT_MS);
        if (r <= 0) {
            ok = false;
            break;
        }
        if (p[n].revents & POLLIN) {
            lazy = false;
            for (int i = 0; i < n; i++)
                reading[i] = true;
        }
        for (int i = 0; i < n && ok; i++) {
            /* Send until the socket refuses, so that "blocked" is always observed. */
            while ((p[i].revents & POLLOUT) && sent[i] < len && ok) {
                size_t want = len - sent[i] < sizeof buf ? len - sent[i] : sizeof buf;
                for (size_t k = 0; k < want; k++)
                    buf[k] = pattern((uint32_t)i, sent[i] + k);
                ssize_t w = send(fds[i], buf, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0)
                    sent[i] += (size_t)w;
                else if (w < 0 && errno != EAGAIN)
                    ok = false;
                if (w < (ssize_t)want)
                    break; /* the send buffer is full */
            }
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t rd = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
                if (rd > 0) {
                    for (ssize_t k = 0; k < rd; k++)
                        if (buf[k] != pattern((uint32_t)i, got[i] + (size_t)k))
                            ok = false;
                    got[i] += (size_t)rd;
                    if (got[i] == len)
                        remaining--;
                } else if (rd == 0 || errno != EAGAIN) {
                    ok = false;
                }
            }
        }
    }
    free(sent);
    free(got);
    free(reading);
    free(p);
    return ok;
}

/* A loop running on its own thread. */
struct loop_thread {
    rill_io_loop *loop;
    pthread_t th;
    int rc;
};

static inline void *loop_thread_main(void *arg)
{
    struct loop_thread *lt = arg;
    lt->rc = rill_io_loop_run(lt->loop);
    return NULL;
}

static inline void loop_thread_start(struct loop_thread *lt)
{
    pthread_create(&lt->th, NULL, loop_thread_main, lt);
}

static inline void loop_thread_stop(struct loop_thread *lt)
{
    rill_io_loop_stop(lt->loop);
    pthread_join(lt->th, NULL);
}

/* Stops a loop that is still running after TEST_TIMEOUT_MS, so a broken test fails, not hangs. */
struct guard {
    rill_io_loop *loop;
    rill_io_timer *timer;
    bool fired;
};

static inline void guard_fired(rill_io_timer *t, void *arg)
{
    (void)t;
    struct guard *g = arg;
    g->fired = true;
    rill_io_loop_stop(g->loop);
}

static inline void guard_arm(struct guard *g, rill_io_loop *loop)
{
    g->loop = loop;
    g->fired = false;
    g->timer = rill_io_timer_new(loop, guard_fired, g);
    rill_io_timer_arm(g->timer, TEST_TIMEOUT_MS);
}

static inline void guard_free(struct guard *g)
{
    rill_io_timer_free(g->timer);
    g->timer = NULL;
}

/* Waits on a semaphore with a deadline; false on timeout. */
static inline bool sem_wait_ms(sem_t *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(s, &ts) != 0)
        if (errno != EINTR)
            return false;
    return true;
}

#endif
