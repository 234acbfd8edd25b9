/* Receiving header blocks: HEADERS, PUSH_PROMISE and CONTINUATION frames (RFC 9113 sections 6.2,
 * 6.6, 6.10), HPACK decoding into the field set, and what each block means for its stream
 * (request, response, 1xx, trailers, promise) under the section 5.1 and section 8 rules. */
#include "common/small_copy.h"
#include "h2/h2_internal.h"

/* The field set's arrays inside the pooled block, after the struct. */
static void hblock_inline(struct h2_hblock *hb)
{
    size_t fields_at = (sizeof *hb + 15) & ~(size_t)15;
    size_t bytes_at = fields_at + H2_HBLOCK_INLINE_FIELDS * sizeof(rill_header);
    hb->fs = (struct h2_fieldset){.fields = (rill_header *)((uint8_t *)hb + fields_at),
                                  .cap = H2_HBLOCK_INLINE_FIELDS,
                                  .bytes = (uint8_t *)hb + bytes_at,
                                  .bytes_cap = H2_HBLOCK_POOLED - bytes_at};
    hb->fields_inline = hb->bytes_inline = true;
}

static bool hblock_ensure(rill_h2_session *s)
{
    if (s->hblk)
        return true;
    const rill_h2_buffer_pool *pool = s->prof->pool;
    struct h2_hblock *hb = pool ? pool->get(H2_HBLOCK_POOLED, pool->ctx) : h2_malloc(s, sizeof *hb);
    if (!hb)
        return false;
    memset(hb, 0, sizeof *hb);
    hb->s = s;
    if (pool) {
        hb->pooled = true;
        hblock_inline(hb);
    }
    s->hblk = hb;
    return true;
}

void h2_hblock_free(rill_h2_session *s, bool all)
{
    struct h2_hblock *hb = s->hblk;
    if (!hb)
        return;
    if (!hb->fields_inline)
        h2_free(s, hb->fs.fields);
    if (!hb->bytes_inline)
        h2_free(s, hb->fs.bytes);
    memset(&hb->fs, 0, sizeof hb->fs);
    hb->fields_inline = hb->bytes_inline = false;
    if (hb->pooled)
        hblock_inline(hb);
    if (all) {
        h2_free(s, hb->buf);
        if (hb->pooled)
            s->prof->pool->put(hb, H2_HBLOCK_POOLED, s->prof->pool->ctx);
        else
            h2_free(s, hb);
        s->hblk = NULL;
    }
}

/* Grows one of the field set's arrays; one inside the pooled block moves to the heap. */
__attribute__((noinline, cold)) static void *grow(struct h2_hblock *hb, void *old, size_t old_size, bool *is_inline, size_t size)
{
    if (!*is_inline)
        return h2_realloc(hb->s, old, size);
    void *p = h2_malloc(hb->s, size);
    if (p) {
        memcpy(p, old, old_size);
        *is_inline = false;
    }
    return p;
}

static int collect_field(const rill_header *f, void *user)
{
    struct h2_hblock *hb = user;
    struct h2_fieldset *fs = &hb->fs;
    if (fs->count == fs->cap) {
        size_t ncap = fs->cap ? fs->cap * 2 : 16;
        rill_header *nf = grow(hb, fs->fields, fs->cap * sizeof *nf, &hb->fields_inline, ncap * sizeof *nf);
        if (!nf)
            return RILL_ERR_NOMEM;
        fs->fields = nf;
        fs->cap = ncap;
    }
    size_t need = f->name_len + f->value_len + 2; /* each followed by a NUL: see on_headers in rill/h2.h */
    if (!fs->bytes || fs->used + need > fs->bytes_cap) {
        size_t ncap = fs->bytes_cap ? fs->bytes_cap : 512;
        while (ncap < fs->used + need)
            ncap *= 2;
        uintptr_t was = (uintptr_t)fs->bytes;
        uint8_t *nb = grow(hb, fs->bytes, fs->used, &hb->bytes_inline, ncap);
        if (!nb)
            return RILL_ERR_NOMEM;
        for (size_t i = 0; i < fs->count; i++) { /* rare: the fields collected so far move too */
            fs->fields[i].name = nb + ((uintptr_t)fs->fields[i].name - was);
            fs->fields[i].value = nb + ((uintptr_t)fs->fields[i].value - was);
        }
        fs->bytes = nb;
        fs->bytes_cap = ncap;
    }
    rill_header *d = &fs->fields[fs->count++];
    uint8_t *b = fs->bytes + fs->used;
    small_copy(b, f->name, f->name_len);
    b[f->name_len] = '\0';
    d->name = b;
    d->name_len = f->name_len;
    b += f->name_len + 1;
    small_copy(b, f->value, f->value_len);
    b[f->value_len] = '\0';
    d->value = b;
    d->value_len = f->value_len;
    fs->used += f->name_len + f->value_len + 2;
    d->flags = f->flags;
    return 0;
}

static int discard_field(const rill_header *f, void *user)
{
    (void)user;
    (void)f;
    return 0;
}

static int ensure_decoder(rill_h2_session *s)
{
    if (s->dec)
        return 0;
    /* Created late, but in the state the peer's encoder assumes: the protocol's initial 4096, then
     * any acknowledged change, so a lowered size still demands its size update. */
    s->dec = rill_hpack_decoder_new(RILL_HPACK_DEFAULT_TABLE_SIZE);
    if (!s->dec)
        return RILL_ERR_NOMEM;
    rill_hpack_decoder_mark_valid_fields(s->dec, true); /* table entries are checked once */
    if (h2_acked(s)->header_table_size != RILL_HPACK_DEFAULT_TABLE_SIZE)
        rill_hpack_decoder_set_max_table_size(s->dec, h2_acked(s)->header_table_size);
    uint32_t lim = s->local->max_header_list_size;
    rill_hpack_decoder_set_max_header_list_size(s->dec, lim && lim < H2_HEADER_LIST_CAP ? lim : H2_HEADER_LIST_CAP);
    return 0;
}

/* Decodes a block; returns RILL_OK, RILL_ERR_HEADER_LIST_TOO_LARGE, or fails the connection and
 * returns another negative code. */
static int decode_block(rill_h2_session *s, const uint8_t *block, size_t len, bool collect)
{
    if (ensure_decoder(s) != 0 || !hblock_ensure(s)) {
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
        return RILL_ERR_NOMEM;
    }
    struct h2_fieldset *fs = &s->hblk->fs;
    fs->count = 0;
    fs->used = 0;
    int rc = rill_hpack_decode_block(s->dec, block, len, collect ? collect_field : discard_field, s->hblk);
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE || rc == 0)
        return rc;
    if (rc == RILL_ERR_NOMEM)
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
    else
        h2_connection_error(s, RILL_H2_COMPRESSION_ERROR, "header block");
    return rc < 0 ? rc : RILL_ERR_COMPRESSION;
}

static int deliver_headers(rill_h2_session *s, int32_t sid, enum rill_h2_headers_kind kind, bool end)
{
    if (!H2_CB(s, on_headers))
        return 0;
    const struct h2_fieldset *fs = &s->hblk->fs;
    int rc = H2_CB(s, on_headers)(s, sid, kind, fs->fields, fs->count, end ? RILL_H2_FLAG_END_STREAM : 0,
                               s->user);
    if (rc < 0)
        h2_cb_fail(s, rc);
    return rc;
}

/* A refused request is a stream reset without useful work, and its block was decoded for nothing:
 * it costs one reset plus one per 256 bytes of the block (a 16 KiB block 65 of the 1000), so
 * complete oversized blocks (an HPACK bomb sent whole, again and again) are cut within a few
 * hundred KB like unfinished ones. */
static void answer_431(rill_h2_session *s, struct h2_stream *st, bool request_ended, size_t block_len)
{
    if (!h2_charge_reset(s, 1 + (uint32_t)(block_len / 256), "oversized header flood"))
        return;
    static const uint8_t name[] = ":status", value[] = "431";
    rill_header f = {name, 7, value, 3, 0};
    int32_t sid = st->id;
    st->flags |= SF_FINAL_SENT | SF_HEADERS_SENT | SF_RESPONDED;
    if (h2_encode_headers(s, RILL_H2_HEADERS, sid, 0, H2_FLAG_END_STREAM, &f, 1) != 0)
        return;
    h2_end_local(s, st);
    if (!request_ended)
        h2_stream_error(s, sid, RILL_H2_NO_ERROR); /* stop the request body (section 8.1) */
}

/* Server: a HEADERS frame that opens stream sid. */
static void request_headers(rill_h2_session *s, int32_t sid, const uint8_t *block, size_t len,
                            bool end, bool self_dep)
{
    bool ignore = s->goaway_sent && sid > s->goaway_last_sent;
    uint32_t limit = s->local->max_concurrent_streams; /* the smaller of announced and acknowledged */
    if (h2_acked(s)->max_concurrent_streams < limit)
        limit = h2_acked(s)->max_concurrent_streams;
    bool refuse = !ignore && s->peer_active >= limit;
    int rc = decode_block(s, block, len, !ignore && !refuse && !self_dep);
    if (h2_dead(s))
        return;
    if (ignore)
        return;
    h2_peer_id_used(s, sid);
    if (h2_dead(s))
        return;
    if (self_dep) {
        h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    if (refuse) {
        /* Refused streams cost a decode and a reset each: rationed like resets. */
        if (h2_charge_reset(s, 1, "refused stream flood"))
            h2_stream_error(s, sid, RILL_H2_REFUSED_STREAM);
        return;
    }
    struct h2_stream *st = h2_stream_new(s, sid, end ? H2_HALF_CLOSED_REMOTE : H2_OPEN);
    if (!st) {
        h2_stream_error(s, sid, RILL_H2_REFUSED_STREAM);
        return;
    }
    st->flags |= SF_HEADERS_RECV;
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
        answer_431(s, st, end, len);
        return;
    }
    struct h2_msg_info mi;
    bool ok = h2_message_valid(s->hblk->fs.fields, s->hblk->fs.count, H2_MSG_REQUEST,
                               s->local->enable_connect_protocol == 1, &mi);
    if (ok && end && mi.content_length > 0)
        ok = false; /* promised a body that cannot come */
    if (!ok) {
        h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    st->content_length = mi.content_length;
    if (mi.head)
        st->flags |= SF_HEAD | SF_SEND_NO_BODY;
    if (mi.connect)
        st->flags |= SF_CONNECT | SF_TUNNEL;
    if (mi.urgency >= 0)
        st->urgency = (uint8_t)mi.urgency;
    if (mi.incremental > 0)
        st->flags |= SF_INCREMENTAL;
    for (int k = 0; k < 4; k++)
        if (s->tab->early_prio[k].id == sid) {
            /* A PRIORITY_UPDATE overrides the priority header field. */
            st->urgency = s->tab->early_prio[k].urgency;
            st->flags = (uint16_t)(s->tab->early_prio[k].incremental ? st->flags | SF_INCREMENTAL
                                                                       : st->flags & ~SF_INCREMENTAL);
            s->tab->early_prio[k].id = 0;
        }
    if (deliver_headers(s, sid, RILL_H2_HEADERS_REQUEST, end) < 0)
        return;
    if (end && (st = h2_stream_find(s, sid)) != NULL) {
        /* on_end_stream after the request, state already half-closed (remote) */
        if (H2_CB(s, on_end_stream)) {
            int r = H2_CB(s, on_end_stream)(s, sid, s->user);
            if (r < 0)
                h2_cb_fail(s, r);
        }
    }
}

/* A HEADERS frame on a stream that exists: a response, 1xx, pushed response or trailers. */
static void stream_headers(rill_h2_session *s, struct h2_stream *st, const uint8_t *block, size_t len,
                           bool end, bool self_dep)
{
    int32_t sid = st->id;
    uint32_t err = 0;
    bool conn_err = false;
    enum h2_msg kind = H2_MSG_TRAILERS;
    switch (st->state) {
    case H2_RESERVED_LOCAL: conn_err = true; break;
    case H2_HALF_CLOSED_REMOTE: err = RILL_H2_STREAM_CLOSED; break;
    case H2_RESERVED_REMOTE: kind = H2_MSG_RESPONSE; break;
    default:
        if (s->role == RILL_H2_CLIENT && !(st->flags & SF_FINAL_RECV))
            kind = H2_MSG_RESPONSE;
        else if (!end || (st->flags & SF_TUNNEL))
            err = RILL_H2_PROTOCOL_ERROR; /* trailers must end the stream; tunnels have none */
        break;
    }
    if (conn_err) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on reserved (local) stream");
        return;
    }
    if (self_dep && !err)
        err = RILL_H2_PROTOCOL_ERROR;
    int rc = decode_block(s, block, len, !err);
    if (h2_dead(s))
        return;
    if (err) {
        h2_peer_stream_error(s, sid, err);
        return;
    }
    if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
        if (s->role == RILL_H2_SERVER && !(st->flags & SF_HEADERS_SENT))
            answer_431(s, st, end, len);
        else
            h2_peer_stream_error(s, sid, RILL_H2_CANCEL);
        return;
    }
    struct h2_msg_info mi;
    if (!h2_message_valid(s->hblk->fs.fields, s->hblk->fs.count, kind, false, &mi)) {
        h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
        return;
    }
    enum rill_h2_headers_kind ev = RILL_H2_HEADERS_TRAILERS;
    if (kind == H2_MSG_RESPONSE) {
        if (mi.status < 200) {
            if (end) {
                h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR); /* 1xx cannot end a stream */
                return;
            }
            ev = RILL_H2_HEADERS_INFORMATIONAL;
        } else {
            ev = RILL_H2_HEADERS_RESPONSE;
            st->flags |= SF_FINAL_RECV;
            st->content_length = mi.content_length;
            if ((st->flags & SF_HEAD) || mi.status == 204 || mi.status == 304)
                st->flags |= SF_RECV_NO_BODY;
            if ((st->flags & SF_CONNECT) && mi.status < 300)
                st->flags |= SF_TUNNEL;
            if (end && st->content_length > 0 && !(st->flags & SF_RECV_NO_BODY)) {
                h2_peer_stream_error(s, sid, RILL_H2_PROTOCOL_ERROR);
                return;
            }
        }
        if (st->state == H2_RESERVED_REMOTE)
            h2_stream_set_state(s, st, H2_HALF_CLOSED_LOCAL);
    }
    st->flags |= SF_HEADERS_RECV;
    if (deliver_headers(s, sid, ev, end) < 0)
        return;
    if (end && (st = h2_stream_find(s, sid)) != NULL)
        h2_end_stream_recv(s, st);
}

static void headers_for_closed(rill_h2_session *s, int32_t sid, const uint8_t *block, size_t len)
{
    int how = h2_closed_lookup(s, sid);
    if (how == H2_CLOSED_NORMAL) {
        h2_connection_error(s, RILL_H2_STREAM_CLOSED, "HEADERS on closed stream");
        return;
    }
    if (how == 0 && !h2_is_local_id(s, sid) && s->role == RILL_H2_SERVER &&
        h2_peer_id_was_used(s, sid) == 0) {
        /* A new stream must have a higher id than every earlier one (section 5.1.1). A used one
         * that is no longer remembered is just closed: a stream error below. */
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "stream id not increasing");
        return;
    }
    /* Keep the HPACK state in step even though the fields go nowhere. */
    decode_block(s, block, len, false);
    if (h2_dead(s))
        return;
    if (how == H2_CLOSED_PEER_RST || how == 0)
        h2_peer_stream_error(s, sid, RILL_H2_STREAM_CLOSED);
}

static void headers_complete(rill_h2_session *s, const uint8_t *block, size_t len)
{
    int32_t sid = s->hb_sid;
    bool end = (s->hb_flags & H2_FLAG_END_STREAM) != 0;
    bool self_dep = (s->hb_flags & 0x80u) != 0; /* private marker set while parsing */
    if (s->hb_type == RILL_H2_PUSH_PROMISE) {
        int32_t pid = s->hb_promised;
        if (!h2_stream_find(s, sid)) {
            decode_block(s, block, len, false); /* the associated stream was reset by us */
            if (!h2_dead(s))
                h2_stream_error(s, pid, RILL_H2_CANCEL);
            return;
        }
        /* Promises do not count toward concurrency, so they get their own cap. */
        bool refuse = s->reserved_remote >= s->local->max_concurrent_streams;
        int rc = decode_block(s, block, len, !refuse);
        if (h2_dead(s))
            return;
        if (refuse) {
            if (h2_charge_reset(s, 1, "PUSH_PROMISE flood"))
                h2_stream_error(s, pid, RILL_H2_REFUSED_STREAM);
            return;
        }
        struct h2_stream *ps = h2_stream_new(s, pid, H2_RESERVED_REMOTE);
        if (!ps) {
            h2_stream_error(s, pid, RILL_H2_REFUSED_STREAM);
            return;
        }
        struct h2_msg_info mi;
        if (rc == RILL_ERR_HEADER_LIST_TOO_LARGE) {
            h2_peer_stream_error(s, pid, RILL_H2_CANCEL);
            return;
        }
        if (!h2_message_valid(s->hblk->fs.fields, s->hblk->fs.count, H2_MSG_PUSH_REQUEST, false, &mi)) {
            h2_peer_stream_error(s, pid, RILL_H2_PROTOCOL_ERROR);
            return;
        }
        if (mi.head)
            ps->flags |= SF_HEAD;
        ps->flags |= SF_HEADERS_SENT | SF_END_QUEUED;
        if (H2_CB(s, on_push_promise)) {
            int r = H2_CB(s, on_push_promise)(s, sid, pid, s->hblk->fs.fields, s->hblk->fs.count, s->user);
            if (r < 0)
                h2_cb_fail(s, r);
        }
        return;
    }
    struct h2_stream *st = h2_stream_find(s, sid);
    if (st) {
        stream_headers(s, st, block, len, end, self_dep);
        return;
    }
    if (s->role == RILL_H2_SERVER && h2_after_goaway(s, sid) && sid > s->last_peer_id) {
        request_headers(s, sid, block, len, end, self_dep); /* decoded for HPACK, then ignored */
        return;
    }
    if (!h2_is_idle(s, sid)) {
        headers_for_closed(s, sid, block, len);
        return;
    }
    if (h2_is_local_id(s, sid) || s->role == RILL_H2_CLIENT) {
        /* Servers open streams only with PUSH_PROMISE; clients only with odd ids. */
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on idle stream");
        return;
    }
    request_headers(s, sid, block, len, end, self_dep);
}

/* Appends to the block being collected; first says it is the block's first fragment. */
static bool hb_append(rill_h2_session *s, const uint8_t *p, size_t n, bool first)
{
    if (!hblock_ensure(s)) {
        h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
        return false;
    }
    struct h2_hblock *hb = s->hblk;
    if (first)
        hb->len = 0;
    if ((size_t)hb->len + n > s->prof->max_header_block) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "header block too large");
        return false;
    }
    if (hb->len + n > hb->cap) {
        size_t ncap = hb->cap ? hb->cap : 4096;
        while (ncap < hb->len + n)
            ncap *= 2;
        uint8_t *nb = h2_realloc(s, hb->buf, ncap);
        if (!nb) {
            h2_connection_error(s, RILL_H2_INTERNAL_ERROR, "out of memory");
            return false;
        }
        hb->buf = nb;
        hb->cap = (uint32_t)ncap;
    }
    if (n)
        memcpy(hb->buf + hb->len, p, n);
    hb->len += (uint32_t)n;
    return true;
}

/* Strips padding (and the priority fields of HEADERS); returns false after a connection error. */
static bool unpad(rill_h2_session *s, const uint8_t **p, size_t *len, size_t fixed, bool *self_dep)
{
    size_t off = 0, pad = 0;
    if (s->fflags & H2_FLAG_PADDED) {
        if (*len < 1) {
            h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "frame too short for padding");
            return false;
        }
        pad = (*p)[0];
        off = 1;
    }
    if (s->ftype == RILL_H2_HEADERS && (s->fflags & H2_FLAG_PRIORITY)) {
        if (*len < off + 5) {
            h2_connection_error(s, RILL_H2_FRAME_SIZE_ERROR, "HEADERS too short for priority");
            return false;
        }
        *self_dep = (int32_t)(h2_get32(*p + off) & 0x7fffffffu) == s->fsid;
        off += 5;
    }
    if (*len < off + fixed || pad > *len - off - fixed) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "padding exceeds payload");
        return false;
    }
    *p += off;
    *len -= off + pad;
    return true;
}

void h2_on_headers_frame(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "HEADERS on stream 0");
        return;
    }
    bool self_dep = false;
    if (!unpad(s, &p, &len, 0, &self_dep))
        return;
    if (!(s->fflags & H2_FLAG_END_STREAM) && len == 0 && !h2_flood_take(s, FL_EMPTY)) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "empty HEADERS flood");
        return;
    }
    s->hb_sid = s->fsid;
    s->hb_type = RILL_H2_HEADERS;
    s->hb_flags = (uint8_t)((s->fflags & H2_FLAG_END_STREAM) | (self_dep ? 0x80u : 0));
    s->hb_conts = 0;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        headers_complete(s, p, len); /* in place: no copy */
        return;
    }
    if (hb_append(s, p, len, true))
        s->expect_continuation = true;
}

void h2_on_push_promise_frame(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (s->role == RILL_H2_SERVER) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE from a client");
        return;
    }
    if (h2_acked(s)->enable_push == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "push disabled");
        return;
    }
    if (s->fsid == 0) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE on stream 0");
        return;
    }
    bool unused = false;
    if (!unpad(s, &p, &len, 4, &unused))
        return;
    int32_t pid = (int32_t)(h2_get32(p) & 0x7fffffffu);
    struct h2_stream *st = h2_stream_find(s, s->fsid);
    /* A promise on a stream we reset was in flight: it still reserves the promised stream
     * (section 5.1), which headers_complete then cancels. */
    bool we_reset = !st && h2_closed_lookup(s, s->fsid) == H2_CLOSED_LOCAL_RST;
    if (!we_reset && (!st || (st->state != H2_OPEN && st->state != H2_HALF_CLOSED_LOCAL))) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "PUSH_PROMISE on a stream that cannot carry it");
        return;
    }
    if (pid == 0 || (pid & 1) || !h2_is_idle(s, pid)) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "bad promised stream id");
        return;
    }
    h2_peer_id_used(s, pid);
    if (h2_dead(s))
        return;
    s->hb_sid = s->fsid;
    s->hb_promised = pid;
    s->hb_type = RILL_H2_PUSH_PROMISE;
    s->hb_flags = 0;
    s->hb_conts = 0;
    p += 4;
    len -= 4;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        headers_complete(s, p, len);
        return;
    }
    if (hb_append(s, p, len, true))
        s->expect_continuation = true;
}

void h2_on_continuation(rill_h2_session *s, const uint8_t *p, size_t len)
{
    if (!s->expect_continuation) {
        h2_connection_error(s, RILL_H2_PROTOCOL_ERROR, "CONTINUATION without a header block");
        return;
    }
    if (++s->hb_conts > s->prof->max_continuations) {
        h2_connection_error(s, RILL_H2_ENHANCE_YOUR_CALM, "CONTINUATION flood");
        return;
    }
    if (!hb_append(s, p, len, false))
        return;
    if (s->fflags & H2_FLAG_END_HEADERS) {
        s->expect_continuation = false;
        headers_complete(s, s->hblk->buf, s->hblk->len);
    }
}

