/* session_events_server: the core API (rill_server_on_session / on_stream) and the session events,
 * on the public headers only. Every event is one line on stdout, flushed, for
 * tests/integration/test_server_core_api.py to read:
 *
 *   session ID PROTOCOL             on_session (PROTOCOL: 1 HTTP/1.1, 2 h2c, 3 h2)
 *   settings ID WINDOW FRAME        on_remote_settings: initial window, max frame size
 *   stream ID STREAM PATH           on_stream
 *   done ID STREAM COMPLETED        rill_server_response_on_close (1 completed, 0 cut off)
 *   goaway ID CODE LAST             on_goaway
 *   close ID                        on_close
 *
 * Paths, all claimed by on_stream (anything else goes to a 404 route):
 *   /core     answered with rill_server_stream_respond: x-session and x-stream fields, no body
 *   /hold     headers now, the body when a later /close or /destroy arrives
 *   /close    calls rill_server_session_close, answers "bye", then finishes a held stream
 *   /destroy  calls rill_server_session_destroy(ENHANCE_YOUR_CALM) without answering
 *
 * usage: session_events_server --listen HOST:PORT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill/server.h"

#define FIELD(n, v) {(const uint8_t *)(n), strlen(n), (const uint8_t *)(v), strlen(v), 0}

static rill_server_stream *held; /* one worker thread: no locking */

static void on_session(rill_server_session *session, void *user)
{
    (void)user;
    printf("session %" PRIu64 " %d\n", rill_server_session_id(session), (int)rill_server_session_protocol(session));
    fflush(stdout);
}

static void on_done(rill_server_response *res, bool completed, void *user)
{
    (void)user;
    printf("done %" PRIu64 " %d %d\n", rill_server_session_id(rill_server_stream_session(res)), (int)rill_server_stream_id(res),
           completed ? 1 : 0);
    fflush(stdout);
    if (res == held)
        held = NULL;
}

static bool on_stream(rill_server_stream *stream, const rill_header *headers, size_t count, void *user)
{
    (void)headers;
    (void)count;
    (void)user;
    rill_server_session *session = rill_server_stream_session(stream);
    const char *path = rill_server_request_path(stream);
    uint64_t sid = rill_server_session_id(session);
    printf("stream %" PRIu64 " %d %s\n", sid, (int)rill_server_stream_id(stream), path);
    fflush(stdout);
    rill_server_response_on_close(stream, on_done, NULL);
    char sid_text[24], stream_text[16];
    snprintf(sid_text, sizeof sid_text, "%" PRIu64, sid);
    snprintf(stream_text, sizeof stream_text, "%d", (int)rill_server_stream_id(stream));
    if (strcmp(path, "/core") == 0) {
        rill_header fields[] = {FIELD(":status", "200"), FIELD("x-session", sid_text),
                                FIELD("x-stream", stream_text)};
        rill_server_stream_respond(stream, fields, 3, true);
    } else if (strcmp(path, "/hold") == 0) {
        rill_header fields[] = {FIELD(":status", "200"), FIELD("content-type", "text/plain")};
        rill_server_stream_respond(stream, fields, 2, false);
        held = stream;
    } else if (strcmp(path, "/close") == 0) {
        rill_server_session_close(session); /* first: HTTP/1.1 then says connection: close */
        rill_server_response_end(stream, "bye\n", 4);
        if (held && rill_server_stream_session(held) == session) /* in flight: still finishes */
            rill_server_response_end(held, "held\n", 5);
    } else if (strcmp(path, "/destroy") == 0) {
        rill_server_session_destroy(session, RILL_H2_ENHANCE_YOUR_CALM);
    } else {
        return false;
    }
    return true;
}

static void on_remote_settings(rill_server_session *session, const rill_h2_settings *s, void *user)
{
    (void)user;
    printf("settings %" PRIu64 " %" PRIu32 " %" PRIu32 "\n", rill_server_session_id(session),
           s->initial_window_size, s->max_frame_size);
    fflush(stdout);
}

static void on_goaway(rill_server_session *session, uint32_t code, int32_t last, void *user)
{
    (void)user;
    printf("goaway %" PRIu64 " %" PRIu32 " %d\n", rill_server_session_id(session), code, (int)last);
    fflush(stdout);
}

static void on_close(rill_server_session *session, void *user)
{
    (void)user;
    printf("close %" PRIu64 "\n", rill_server_session_id(session));
    fflush(stdout);
}

static void not_found(rill_server_request *req, rill_server_response *res, void *user)
{
    (void)req;
    (void)user;
    rill_server_response_set_status(res, 404);
    rill_server_response_end(res, "not here\n", 9);
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--listen") != 0) {
        fprintf(stderr, "usage: session_events_server --listen HOST:PORT\n");
        return 2;
    }
    rill_server_options o;
    rill_server_options_init(&o);
    o.listen = argv[2];
    o.tls_listen = NULL;
    o.threads = 1;
    char err[256];
    rill_server *s;
    if (rill_server_new(&o, &s, err, sizeof err) < 0) {
        fprintf(stderr, "session_events_server: %s\n", err);
        return 2;
    }
    rill_server_session_events events = {.size = sizeof events, .on_close = on_close,
                                  .on_goaway = on_goaway, .on_remote_settings = on_remote_settings};
    rill_server_on_session(s, on_session, NULL);
    rill_server_on_session_events(s, &events, NULL);
    rill_server_on_stream(s, on_stream, NULL);
    rill_server_route(s, "/", not_found, NULL);
    int rc = rill_server_run(s, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "session_events_server: %s\n", err);
    rill_server_free(s);
    return rc < 0 ? 1 : 0;
}
