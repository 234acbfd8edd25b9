/* `rill serve`: HTTP/2 (h2 over TLS by ALPN, h2c) and HTTP/1.1 on the same listeners, serving a
 * document root or the built-in demo site. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "proxy/proxy.h"
#include "proxy/proxy_spec.h"
#include "rill/server.h"

static const char usage[] =
    "usage: rill serve [options]\n\n"
    "Serve HTTP/2 (h2 over TLS by ALPN; h2c by prior knowledge or Upgrade) and HTTP/1.1.\n"
    "Without --root, serves the built-in demo site.\n\n"
    "  --listen HOST:PORT            cleartext listener (default 127.0.0.1:8080; 'none' to disable;\n"
    "                                port 0: a free one, named on the start-up line)\n"
    "  --tls-listen HOST:PORT        TLS listener (default 127.0.0.1:8443; 'none' to disable)\n"
    "  --cert FILE --key FILE        certificate chain and key (PEM); without them a self-signed\n"
    "                                certificate for localhost is made and kept in --state-dir\n"
    "  --state-dir DIR               where the self-signed certificate lives\n"
    "                                (default $XDG_STATE_HOME/rill or ~/.local/state/rill)\n"
    "  --root DIR                    serve static files from DIR\n"
    "  --threads N                   worker threads (default: number of CPUs)\n"
    "  --access-log FILE             combined log format; '-' for stdout\n"
    "  --max-connections N           (default 10000)\n"
    "  --max-concurrent-streams N    per HTTP/2 connection (default 100)\n"
    "  --initial-window-size BYTES   HTTP/2 stream receive window (default 262144)\n"
    "  --connection-window-size BYTES  HTTP/2 connection receive window (default 1048576)\n"
    "  --max-header-list-size BYTES  largest request head, else 431 (default 65536): HTTP/2\n"
    "                                counts the decoded fields as SETTINGS_MAX_HEADER_LIST_SIZE\n"
    "                                does, HTTP/1.1 the head's bytes; an HTTP/1.1 request line\n"
    "                                over 8192 bytes gets 414\n"
    "  --idle-timeout MS             close idle connections (default 120000)\n"
    "  --header-timeout MS           HTTP/1.1: a request head must arrive within (default 10000)\n"
    "  --shutdown-timeout MS         graceful shutdown deadline (default 10000)\n"
    "  --no-connect-protocol         do not offer RFC 8441 extended CONNECT\n"
    "  --ws-origin ORIGIN            allow WebSockets from this Origin only (repeatable;\n"
    "                                '*' for any); others get 403\n"
    "  --proxy PREFIX=URL[,URL...]   reverse proxy: paths starting with PREFIX go to the URLs in\n"
    "                                turn (repeatable); http:// (HTTP/1.1), h2c:// (HTTP/2 by\n"
    "                                prior knowledge), https:// (ALPN h2, else HTTP/1.1)\n"
    "  --proxy-timeout MS            a backend's response head must come within (default 30000);\n"
    "                                else 504\n"
    "  --proxy-half-close-timeout MS  a tunnel one side of which ended is closed when the other\n"
    "                                has not ended within (default 60000)\n"
    "  --proxy-pipeline N            HTTP/1.1 backends: up to N requests on a connection at once\n"
    "                                (GET and HEAD without a body sent before the answer ahead;\n"
    "                                1-64, default 1: none)\n"
    "  --proxy-insecure              https:// backends: do not verify their certificates\n"
    "  --proxy-forwarding LIST       the forwarding fields added to requests: some of forwarded,\n"
    "                                x-forwarded-for, x-forwarded-proto, x-forwarded-host, via,\n"
    "                                comma-separated, or 'none' (default: all of them)\n"
    "  --config FILE                 YAML configuration: routes with several backends, per-route\n"
    "                                timeouts, balancing, health, forwarding and header edits,\n"
    "                                and the settings above (the flags win over the file's)\n\n"
    "SIGTERM/SIGINT shut down gracefully; SIGHUP reloads the certificate and the --config file.\n";

static int parse_u32(const char *flag, const char *text, uint32_t min, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || end == text || text[0] == '-' || v > UINT32_MAX || v < min)
        return cli_usage_error("serve", "%s wants a number >= %u, not '%s'", flag, min, text);
    *out = (uint32_t)v;
    return 0;
}

/* The length of "HOST" in "HOST:PORT" ("[::1]:8080" too). */
static int host_len(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    return colon ? (int)(colon - addr) : (int)strlen(addr);
}

int rill_cmd_serve(int argc, char **argv)
{
    rill_server_options o;
    rill_server_options_init(&o);
    const char *root = NULL;
    uint32_t threads = 0;
    const char *origins[64];
    size_t norigins = 0;
    const char *proxies[64];
    size_t nproxies = 0;
    rill_proxy_options po;
    rill_proxy_options_init(&po);
    const char *config_file = NULL;
    bool given_listen = false, given_tls_listen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--proxy-insecure") == 0) {
            po.insecure = true;
            continue;
        }
        if (strcmp(a, "--no-connect-protocol") == 0) {
            o.enable_connect_protocol = false;
            continue;
        }
        if (a[0] != '-' || a[1] != '-')
            return cli_usage_error("serve", "unexpected argument '%s'", a);
        static const char *const with_value[] = {
            "--listen", "--tls-listen", "--cert", "--key", "--state-dir", "--root", "--threads",
            "--access-log", "--max-connections", "--max-concurrent-streams",
            "--initial-window-size", "--connection-window-size", "--max-header-list-size",
            "--idle-timeout", "--header-timeout", "--shutdown-timeout", "--ws-origin", "--proxy",
            "--proxy-timeout", "--proxy-half-close-timeout", "--proxy-forwarding", "--proxy-pipeline",
            "--config"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= strcmp(a, with_value[k]) == 0;
        if (!known)
            return cli_usage_error("serve", "unknown option '%s'", a);
        if (i + 1 >= argc)
            return cli_usage_error("serve", "%s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(a, "--listen") == 0)
            o.listen = strcmp(v, "none") == 0 ? NULL : v, given_listen = true;
        else if (strcmp(a, "--tls-listen") == 0)
            o.tls_listen = strcmp(v, "none") == 0 ? NULL : v, given_tls_listen = true;
        else if (strcmp(a, "--config") == 0)
            config_file = v;
        else if (strcmp(a, "--cert") == 0)
            o.cert_file = v;
        else if (strcmp(a, "--key") == 0)
            o.key_file = v;
        else if (strcmp(a, "--state-dir") == 0)
            o.state_dir = v;
        else if (strcmp(a, "--root") == 0)
            root = v;
        else if (strcmp(a, "--access-log") == 0)
            o.access_log = v;
        else if (strcmp(a, "--ws-origin") == 0) {
            if (norigins == sizeof origins / sizeof *origins)
                return cli_usage_error("serve", "too many --ws-origin");
            origins[norigins++] = v;
        }
        else if (strcmp(a, "--proxy") == 0) {
            if (nproxies == sizeof proxies / sizeof *proxies)
                return cli_usage_error("serve", "too many --proxy");
            proxies[nproxies++] = v;
        }
        else if (strcmp(a, "--proxy-forwarding") == 0) {
            char why[256];
            if (!rill_proxy_parse_forwarding(v, &po.forwarding, why, sizeof why))
                return cli_usage_error("serve", "%s", why);
            po.forwarding_given = true;
        }
        else if (strcmp(a, "--proxy-timeout") == 0)
            rc = parse_u32(a, v, 1, &po.timeout_ms);
        else if (strcmp(a, "--proxy-half-close-timeout") == 0)
            rc = parse_u32(a, v, 1, &po.half_close_ms);
        else if (strcmp(a, "--proxy-pipeline") == 0) {
            uint32_t depth = 0;
            rc = parse_u32(a, v, 1, &depth);
            if (!rc && depth > PROXY_PIPELINE_MAX)
                return cli_usage_error("serve", "%s wants a number from 1 to %u, not '%s'", a,
                                       PROXY_PIPELINE_MAX, v);
            po.pipeline = depth;
        }
        else if (strcmp(a, "--threads") == 0)
            rc = parse_u32(a, v, 1, &threads);
        else if (strcmp(a, "--max-connections") == 0)
            rc = parse_u32(a, v, 1, &o.max_connections);
        else if (strcmp(a, "--max-concurrent-streams") == 0)
            rc = parse_u32(a, v, 1, &o.max_concurrent_streams);
        else if (strcmp(a, "--initial-window-size") == 0)
            rc = parse_u32(a, v, 0, &o.initial_window_size);
        else if (strcmp(a, "--connection-window-size") == 0)
            rc = parse_u32(a, v, 65535, &o.connection_window_size);
        else if (strcmp(a, "--max-header-list-size") == 0)
            rc = parse_u32(a, v, 1, &o.max_header_list_size);
        else if (strcmp(a, "--idle-timeout") == 0)
            rc = parse_u32(a, v, 1, &o.idle_timeout_ms);
        else if (strcmp(a, "--header-timeout") == 0)
            rc = parse_u32(a, v, 1, &o.header_timeout_ms);
        else if (strcmp(a, "--shutdown-timeout") == 0)
            rc = parse_u32(a, v, 0, &o.shutdown_timeout_ms);
        if (rc)
            return rc;
    }
    char err[512] = "";
    /* The file's settings fill in what the flags did not say. */
    struct proxy_spec *file = NULL;
    if (config_file) {
        int rc = proxy_config_load(config_file, &file, err, sizeof err);
        if (rc == RILL_ERR_INVALID_ARG || rc == RILL_ERR_IO) {
            fprintf(stderr, "rill serve: %s\n", err); /* the line says where: no usage hint */
            return RILL_EXIT_USAGE;
        }
        if (rc < 0) {
            fprintf(stderr, "rill serve: %s\n", rill_strerror(rc));
            return 1;
        }
        const struct serve_file_settings *f = &file->serve;
        if (f->listen && !given_listen)
            o.listen = strcmp(f->listen, "none") == 0 ? NULL : f->listen;
        if (f->tls_listen && !given_tls_listen)
            o.tls_listen = strcmp(f->tls_listen, "none") == 0 ? NULL : f->tls_listen;
        if (f->cert && !o.cert_file)
            o.cert_file = f->cert;
        if (f->key && !o.key_file)
            o.key_file = f->key;
        if (f->state_dir && !o.state_dir)
            o.state_dir = f->state_dir;
        if (f->access_log && !o.access_log)
            o.access_log = f->access_log;
        if (f->root && !root)
            root = f->root;
        if (f->threads && !threads)
            threads = f->threads;
    }
    o.threads = threads;

    rill_server *srv;
    int rc = rill_server_new(&o, &srv, err, sizeof err);
    /* The server copied the options: the file's strings may go with its routes (the proxy's). */
    if (rc == RILL_ERR_INVALID_ARG) {
        proxy_spec_free(file);
        return cli_usage_error("serve", "%s", err);
    }
    if (rc < 0) {
        proxy_spec_free(file);
        fprintf(stderr, "rill serve: %s\n", rill_strerror(rc));
        return 1;
    }
    /* Proxy routes first: a bad --proxy is bad usage, and one for "/" takes the demo's place. */
    rill_proxy *proxy = NULL;
    bool proxy_root = false;
    if ((nproxies || config_file) && rill_proxy_new(srv, &po, &proxy) < 0) {
        proxy_spec_free(file);
        fprintf(stderr, "rill serve: %s\n", rill_strerror(RILL_ERR_NOMEM));
        rill_server_free(srv);
        return 1;
    }
    rc = RILL_OK;
    for (size_t k = 0; k < nproxies && rc == RILL_OK; k++)
        rc = rill_proxy_add(proxy, proxies[k], err, sizeof err);
    if (proxy && rc == RILL_OK) {
        rc = rill_proxy_start(proxy, config_file, file, err, sizeof err);
        proxy_root = rill_proxy_takes_root(proxy);
    } else {
        proxy_spec_free(file);
    }
    if (rc == RILL_OK && proxy_root && root)
        rc = RILL_ERR_INVALID_ARG,
        snprintf(err, sizeof err, "--root and a proxy route for '/' (--proxy /=... or in --config) "
                                    "both want the path '/'");
    if (rc < 0) {
        rill_server_free(srv);
        rill_proxy_free(proxy);
        if (rc == RILL_ERR_INVALID_ARG)
            return cli_usage_error("serve", "%s", err);
        fprintf(stderr, "rill serve: %s\n", rill_strerror(rc));
        return 1;
    }
    rc = norigins ? rill_server_websocket_origins(srv, origins, norigins) : RILL_OK;
    if (rc == RILL_OK && !proxy_root)
        rc = root ? rill_server_static(srv, "/", root, err, sizeof err) : rill_server_demo(srv);
    if (rc < 0) {
        fprintf(stderr, "rill serve: %s\n", err[0] ? err : rill_strerror(rc));
        rill_server_free(srv);
        rill_proxy_free(proxy);
        return 1;
    }
    rc = rill_server_bind(srv, err, sizeof err);
    if (rc == RILL_OK) {
        /* The port bound, not the one asked for: ":0" means the kernel chose. */
        if (o.listen)
            fprintf(stderr, "rill serve: http://%.*s:%u/ (h2c, HTTP/1.1)\n", host_len(o.listen),
                    o.listen, rill_server_port(srv, false));
        if (o.tls_listen)
            fprintf(stderr, "rill serve: https://%.*s:%u/ (h2, HTTP/1.1)\n", host_len(o.tls_listen),
                    o.tls_listen, rill_server_port(srv, true));
        rc = rill_server_run(srv, err, sizeof err);
    }
    rill_server_free(srv);
    rill_proxy_free(proxy); /* after the server: its routes point into the proxy */
    if (rc == RILL_ERR_INVALID_ARG)
        return cli_usage_error("serve", "%s", err);
    if (rc < 0) {
        fprintf(stderr, "rill serve: %s\n", err[0] ? err : rill_strerror(rc));
        return 1;
    }
    fprintf(stderr, "rill serve: stopped\n");
    return 0;
}
