/* `rill serve` — interim HTTP/1.1-only server for the demo page.
 * The server issue replaces this with the event-loop server (h2, h2c, TLS); it exists so that
 * `make run` serves something real from the first commit. One request per connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"

static volatile sig_atomic_t stopping;

static void on_stop_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int parse_host_port(const char *spec, struct sockaddr_in *addr)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

static void answer(int fd)
{
    char req[8192];
    size_t have = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (have < sizeof req - 1 && poll(&p, 1, 5000) == 1) {
        ssize_t n = read(fd, req + have, sizeof req - 1 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        req[have] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[have] = '\0';
    const char *status = "200 OK";
    const char *body = "<!doctype html><title>rill</title><h1>rill</h1>"
                       "<p>This page came over <b>HTTP/1.1</b>.</p>\n";
    if (strncmp(req, "GET / ", 6) != 0 && strncmp(req, "HEAD / ", 7) != 0) {
        status = strstr(req, "\r\n\r\n") ? "404 Not Found" : "400 Bad Request";
        body = strstr(req, "\r\n\r\n") ? "not found\n" : "bad request\n";
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nServer: rill\r\n\r\n",
                     status, strlen(body));
    if (write(fd, head, (size_t)n) < 0)
        return;
    if (strncmp(req, "HEAD ", 5) != 0 && write(fd, body, strlen(body)) < 0)
        return;
}

int rill_cmd_serve(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:8080";
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: rill serve [--listen HOST:PORT]\n\n"
                   "Serve the demo page over HTTP/1.1 (interim; h2 arrives with the server).\n\n"
                   "  --listen HOST:PORT   cleartext listener (default 127.0.0.1:8080)\n");
            return 0;
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_spec = argv[++i];
        } else if (strcmp(argv[i], "--listen") == 0) {
            return cli_usage_error("serve", "--listen needs HOST:PORT");
        } else {
            return cli_usage_error("serve", "unknown option '%s'", argv[i]);
        }
    }
    struct sockaddr_in addr;
    if (parse_host_port(listen_spec, &addr) != 0)
        return cli_usage_error("serve", "bad --listen address '%s' (want HOST:PORT)", listen_spec);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 128) != 0) {
        fprintf(stderr, "rill serve: cannot listen on %s: %s\n", listen_spec, strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "rill serve: listening on http://%s/\n", listen_spec);

    while (!stopping) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 500) != 1)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        answer(fd);
        close(fd);
    }
    close(lfd);
    fprintf(stderr, "rill serve: stopped\n");
    return 0;
}
