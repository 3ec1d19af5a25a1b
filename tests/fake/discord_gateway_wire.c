/* The fake Discord gateway's wire: the payloads it generates, their zlib
 * stream and the write loop (bursts and precompressed floods), and what it
 * answers to the client's IDENTIFY, RESUME and heartbeats. */
#include "tests/fake/discord_gateway.h"

#include "tests/fake/discord_gateway_internal.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define FAKE_FLOOD_CYCLE 2048
/* lws 4.1 keeps the close opcode out of its public enum; the value is 4. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

/* ---- payload text --------------------------------------------------------- */

static void fake__gen_reserve(struct fake_gateway *f, size_t need)
{
    if (need <= f->gencap)
        return;
    size_t cap = f->gencap ? f->gencap : 4096;
    while (cap < need)
        cap *= 2;
    f->gen = realloc(f->gen, cap);
    if (f->gen == NULL)
        abort();
    f->gencap = cap;
}

static const char *const fake_words[] = {
    "the",    "model", "image", "credits", "hello", "render", "a",      "cat",   "in",     "space",
    "please", "with",  "more",  "light",   "and",   "detail", "thanks", "again", "sunset", "city",
};

/* A "d" of about d_bytes, shaped like Discord's: a message, or a guild
 * with a list of channels. Deterministic in seq, so replays match. */
static size_t fake__gen_d(struct fake_gateway *f, size_t at, const char *type, int64_t seq,
                          size_t d_bytes)
{
    fake__gen_reserve(f, at + d_bytes + 1024);
    char *p = f->gen + at;
    char *start = p;
    unsigned long long id = 1100000000000000000ULL + (unsigned long long)seq * 4194304ULL;
    if (strcmp(type, "GUILD_CREATE") == 0) {
        p += sprintf(p,
                     "{\"id\":\"%llu\",\"name\":\"guild %lld\",\"icon\":null,\"owner_id\":"
                     "\"80351110224678912\",\"member_count\":%lld,\"large\":true,\"channels\":[",
                     id, (long long)seq, (long long)(seq * 7 % 100000));
        for (unsigned i = 0; (size_t)(p - start) + 200 < d_bytes; i++)
            p += sprintf(p,
                         "%s{\"id\":\"%llu\",\"type\":0,\"name\":\"channel-%u\",\"position\":%u,"
                         "\"parent_id\":null,\"topic\":\"%s %s\",\"nsfw\":false}",
                         i ? "," : "", id + i + 1, i, i, fake_words[i % 20],
                         fake_words[(i * 7) % 20]);
        p += sprintf(p, "]}");
        return (size_t)(p - start);
    }
    p += sprintf(p,
                 "{\"id\":\"%llu\",\"channel_id\":\"1100000000000000001\",\"guild_id\":"
                 "\"1100000000000000000\",\"author\":{\"id\":\"%llu\",\"username\":\"user%lld\","
                 "\"global_name\":\"User %lld\",\"avatar\":null,\"discriminator\":\"0\"},"
                 "\"timestamp\":\"2026-01-01T00:00:00.000000+00:00\",\"edited_timestamp\":null,"
                 "\"tts\":false,\"mention_everyone\":false,\"mentions\":[],\"mention_roles\":[],"
                 "\"attachments\":[],\"embeds\":[],\"pinned\":false,\"type\":0,\"flags\":0,"
                 "\"content\":\"",
                 id, 80351110224678912ULL + (unsigned long long)(seq % 1000),
                 (long long)(seq % 1000), (long long)(seq % 1000));
    uint64_t r = (uint64_t)seq * 6364136223846793005ULL + 1442695040888963407ULL;
    while ((size_t)(p - start) + 16 < d_bytes) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *w = fake_words[(r >> 33) % 20];
        size_t n = strlen(w);
        memcpy(p, w, n);
        p += n;
        *p++ = ' ';
    }
    p += sprintf(p, "\"}");
    return (size_t)(p - start);
}

/* {"t":TYPE,"s":SEQ,"op":0,"d":D} into f->gen; returns its length. */
static size_t fake__gen_dispatch(struct fake_gateway *f, const char *type, int64_t seq,
                                 const char *d, size_t d_bytes)
{
    size_t dl = d != NULL ? strlen(d) : d_bytes;
    fake__gen_reserve(f, dl + strlen(type) + 2048);
    size_t n =
        (size_t)sprintf(f->gen, "{\"t\":\"%s\",\"s\":%lld,\"op\":0,\"d\":", type, (long long)seq);
    if (d != NULL) {
        memcpy(f->gen + n, d, dl);
        n += dl;
    } else {
        n += fake__gen_d(f, n, type, seq, d_bytes);
    }
    f->gen[n++] = '}';
    f->gen[n] = '\0';
    return n;
}

/* ---- sending ---------------------------------------------------------------- */

static void fake__zreserve(struct fake_gateway *f, size_t need)
{
    if (need <= f->zcap)
        return;
    size_t cap = f->zcap ? f->zcap : 65536;
    while (cap < need)
        cap *= 2;
    f->zbuf = realloc(f->zbuf, cap);
    if (f->zbuf == NULL)
        abort();
    f->zcap = cap;
}

/* A zstd block header: the last block of its frame, raw, empty. A
 * compressor ends a frame after a flush with these three bytes, so they end
 * a frame wherever a flush left it. */
static const unsigned char fake_zstd_end[3] = {0x01, 0x00, 0x00};

/* Compress text with a zstd stream, flushed, into out; prefix: first end
 * the frame in progress. Returns the bytes written. */
static size_t fake__zstd(ZSTD_CCtx *zc, bool prefix, const char *text, size_t len,
                         unsigned char *out, size_t cap)
{
    size_t n = 0;
    if (prefix) {
        memcpy(out, fake_zstd_end, sizeof(fake_zstd_end));
        n = sizeof(fake_zstd_end);
    }
    ZSTD_inBuffer in = {text, len, 0};
    ZSTD_outBuffer o = {out + n, cap - n, 0};
    size_t left;
    do {
        left = ZSTD_compressStream2(zc, &o, &in, ZSTD_e_flush);
        if (ZSTD_isError(left))
            abort();
    } while (left != 0);
    return n + o.pos;
}

/* Compress one payload with the connection's stream and write it as one
 * binary message. zlib: raw deflate with the zlib header written by hand,
 * so it can be reset after a flood without a second header. zstd: one
 * frame flushed after each payload; a new frame (after a flood) first ends
 * the one before. */
static int fake__send_payload(struct fake_conn *c, const char *text, size_t len)
{
    struct fake_gateway *f = c->f;
    if (c->text) {
        fake__zreserve(f, LWS_PRE + len);
        memcpy(f->zbuf + LWS_PRE, text, len);
        return lws_write(c->wsi, f->zbuf + LWS_PRE, len, LWS_WRITE_TEXT) < 0 ? -1 : 0;
    }
    if (c->zc != NULL) {
        size_t cap = ZSTD_compressBound(len) + 64;
        fake__zreserve(f, LWS_PRE + cap);
        size_t n = fake__zstd(c->zc, c->zc_fresh && c->zc_open, text, len, f->zbuf + LWS_PRE, cap);
        c->zc_fresh = false;
        c->zc_open = true;
        return lws_write(c->wsi, f->zbuf + LWS_PRE, n, LWS_WRITE_BINARY) < 0 ? -1 : 0;
    }
    size_t bound = deflateBound(&c->z, (uLong)len) + 64;
    fake__zreserve(f, LWS_PRE + bound);
    unsigned char *out = f->zbuf + LWS_PRE;
    size_t n = 0;
    if (!c->header_sent) {
        out[n++] = 0x78;
        out[n++] = 0x9c;
        c->header_sent = true;
    }
    c->z.next_in = (Bytef *)(uintptr_t)text;
    c->z.avail_in = (uInt)len;
    c->z.next_out = out + n;
    c->z.avail_out = (uInt)(bound - n);
    if (deflate(&c->z, Z_SYNC_FLUSH) != Z_OK)
        return -1;
    n = (size_t)(c->z.next_out - out);
    return lws_write(c->wsi, out, n, LWS_WRITE_BINARY) < 0 ? -1 : 0;
}

static void fake__log_event(struct fake_gateway *f, int64_t seq, const char *type, const char *d,
                            size_t d_bytes)
{
    if (f->nlog == f->caplog) {
        f->caplog = f->caplog ? f->caplog * 2 : 64;
        f->log = realloc(f->log, f->caplog * sizeof(*f->log));
        if (f->log == NULL)
            abort();
    }
    struct fake_event *e = &f->log[f->nlog++];
    e->seq = seq;
    e->type = fake__strdup(type);
    e->d = fake__strdup(d);
    e->d_bytes = d_bytes;
}

void fake__log_clear(struct fake_gateway *f)
{
    for (size_t i = 0; i < f->nlog; i++) {
        free(f->log[i].type);
        free(f->log[i].d);
    }
    f->nlog = 0;
}

static int64_t fake__next_seq(struct fake_gateway *f)
{
    pthread_mutex_lock(&f->mu);
    int64_t s = ++f->st.seq;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void fake__count_events(struct fake_gateway *f, size_t n)
{
    pthread_mutex_lock(&f->mu);
    f->st.events_sent += n;
    pthread_mutex_unlock(&f->mu);
}

void fake__cycle_free(struct fake_cycle *cy)
{
    free(cy->buf);
    free(cy->off);
    free(cy->len);
    memset(cy, 0, sizeof(*cy));
}

/* Compress a cycle of payloads once with a fresh raw deflate stream: it
 * refers only to its own bytes, so it can follow any sync-flushed point of
 * the connection's stream, and follow itself. With zstd the cycle is one
 * frame of its own, whose first payload ends the frame before it (the
 * connection's, or the cycle's last time round). Each payload is framed
 * here (a server's frames are not masked, RFC 6455 5.2). */
static void fake__cycle_build(struct fake_conn *c, const char *type, size_t n, size_t d_bytes)
{
    struct fake_gateway *f = c->f;
    struct fake_cycle *cy = &c->cycle;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, f->opt.level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    ZSTD_CCtx *zc = NULL;
    if (c->text)
        abort(); /* floods are precompressed */
    if (c->zc != NULL) {
        zc = ZSTD_createCCtx();
        if (zc == NULL || !c->zc_open)
            abort(); /* a flood follows HELLO at least */
    }
    size_t cap = LWS_PRE + n * (d_bytes / 2 + 512) + 65536;
    cy->buf = malloc(cap);
    cy->off = calloc(n, sizeof(size_t));
    cy->len = calloc(n, sizeof(size_t));
    if (cy->buf == NULL || cy->off == NULL || cy->len == NULL)
        abort();
    size_t at = LWS_PRE;
    int64_t base = f->st.seq;
    for (size_t i = 0; i < n; i++) {
        size_t len = fake__gen_dispatch(f, type, base + 1 + (int64_t)i, NULL, d_bytes);
        size_t plen;
        if (zc != NULL) {
            size_t bound = ZSTD_compressBound(len) + 64;
            fake__zreserve(f, bound);
            plen = fake__zstd(zc, i == 0, f->gen, len, f->zbuf, bound);
        } else {
            size_t bound = deflateBound(&z, (uLong)len) + 64;
            fake__zreserve(f, bound);
            z.next_in = (Bytef *)f->gen;
            z.avail_in = (uInt)len;
            z.next_out = f->zbuf;
            z.avail_out = (uInt)bound;
            if (deflate(&z, Z_SYNC_FLUSH) != Z_OK)
                abort();
            plen = (size_t)(z.next_out - f->zbuf);
        }
        if (at + 10 + plen > cap) {
            cap = (at + 10 + plen) * 2;
            cy->buf = realloc(cy->buf, cap);
            if (cy->buf == NULL)
                abort();
        }
        unsigned char *h = cy->buf + at;
        size_t hlen = 2;
        h[0] = 0x82; /* FIN, binary */
        if (plen < 126) {
            h[1] = (unsigned char)plen;
        } else if (plen < 65536) {
            h[1] = 126;
            h[2] = (unsigned char)(plen >> 8);
            h[3] = (unsigned char)plen;
            hlen = 4;
        } else {
            h[1] = 127;
            for (int k = 0; k < 8; k++)
                h[2 + k] = (unsigned char)((uint64_t)plen >> (8 * (7 - k)));
            hlen = 10;
        }
        memcpy(h + hlen, f->zbuf, plen);
        cy->off[i] = at;
        cy->len[i] = hlen + plen;
        at += hlen + plen;
    }
    deflateEnd(&z);
    ZSTD_freeCCtx(zc);
    cy->n = n;
    c->cycle_at = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&f->mu);
    f->st.seq = base + (int64_t)n;
    f->st.flood_ready_at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    pthread_mutex_unlock(&f->mu);
}

/* Write what the connection has queued until the socket is full. Returns -1
 * to close the connection. */
int fake__writable(struct fake_conn *c)
{
    struct fake_gateway *f = c->f;
    for (int budget = 0; budget < 256; budget++) {
        if (lws_send_pipe_choked(c->wsi))
            break;
        struct fake_item *it = c->items.head;
        if (it == NULL)
            return 0;
        size_t len;
        switch (it->kind) {
        case FK_TEXT:
            if (fake__send_payload(c, it->text, strlen(it->text)) < 0)
                return -1;
            break;
        case FK_DISPATCH:
        case FK_MISSED: {
            int64_t seq = fake__next_seq(f);
            fake__log_event(f, seq, it->type, it->text, 0);
            if (it->kind == FK_DISPATCH) {
                len = fake__gen_dispatch(f, it->type, seq, it->text, 0);
                if (fake__send_payload(c, f->gen, len) < 0)
                    return -1;
                fake__count_events(f, 1);
            }
            break;
        }
        case FK_BURST: {
            int64_t seq = fake__next_seq(f);
            fake__log_event(f, seq, it->type, NULL, it->d_bytes);
            len = fake__gen_dispatch(f, it->type, seq, NULL, it->d_bytes);
            if (fake__send_payload(c, f->gen, len) < 0)
                return -1;
            fake__count_events(f, 1);
            if (--it->count > 0)
                continue; /* the item stays at the head */
            break;
        }
        case FK_FLOOD: {
            if (c->cycle.n == 0)
                fake__cycle_build(c, it->type,
                                  it->count < FAKE_FLOOD_CYCLE ? it->count : FAKE_FLOOD_CYCLE,
                                  it->d_bytes);
            /* Whole frames, up to 64 KiB of them, in one write. */
            struct fake_cycle *cy = &c->cycle;
            size_t first = c->cycle_at, end = first, bytes = 0;
            while (end < cy->n && end - first < it->count &&
                   (end == first || bytes + cy->len[end] <= 64 * 1024))
                bytes += cy->len[end++];
            if (lws_write(c->wsi, cy->buf + cy->off[first], bytes, LWS_WRITE_RAW) < 0)
                return -1;
            c->cycle_at = end % cy->n;
            fake__count_events(f, end - first);
            it->count -= end - first;
            if (it->count > 0)
                continue;
            fake__cycle_free(cy);
            /* The client's window now holds the flood: start the
             * connection's own stream afresh. */
            deflateReset(&c->z);
            if (c->zc != NULL) {
                ZSTD_CCtx_reset(c->zc, ZSTD_reset_session_only);
                c->zc_fresh = true;
            }
            break;
        }
        case FK_CORRUPT: {
            /* A block with the reserved type 3: inflate cannot go on; nor
             * can zstd, whose block type 3 is reserved too. */
            static const unsigned char junk[] = {0x07, 0xff, 0x13, 0x37, 0x00, 0x00, 0xff, 0xff};
            fake__zreserve(f, LWS_PRE + sizeof(junk));
            memcpy(f->zbuf + LWS_PRE, junk, sizeof(junk));
            if (lws_write(c->wsi, f->zbuf + LWS_PRE, sizeof(junk), LWS_WRITE_BINARY) < 0)
                return -1;
            break;
        }
        case FK_INVALID: {
            const char *text = it->code ? "{\"t\":null,\"s\":null,\"op\":9,\"d\":true}"
                                        : "{\"t\":null,\"s\":null,\"op\":9,\"d\":false}";
            if (!it->code)
                f->session_valid = false;
            if (fake__send_payload(c, text, strlen(text)) < 0)
                return -1;
            break;
        }
        case FK_KICK: {
            /* The close frame is written here: lws 4.1 on libuv drops the
             * one set by lws_close_reason() when WRITEABLE returns -1. */
            unsigned char frame[LWS_PRE + 2];
            frame[LWS_PRE] = (unsigned char)((it->code >> 8) & 0xff);
            frame[LWS_PRE + 1] = (unsigned char)(it->code & 0xff);
            lws_write(c->wsi, frame + LWS_PRE, 2, LWS_WRITE_CLOSE_FRAME);
            c->closing = true;
            fake__item_free(fake__list_pop(&c->items));
            return -1;
        }
        default:
            break;
        }
        fake__item_free(fake__list_pop(&c->items));
    }
    if (c->items.head != NULL)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void fake__queue(struct fake_conn *c, struct fake_item *it, bool front)
{
    struct fake_item *head = c->items.head;
    if (front && head != NULL && head->kind == FK_FLOOD && c->cycle.n > 0) {
        /* A flood under way is one stream of its own: a payload put in the
         * middle of it, compressed with the connection's stream, would
         * break both in the client's window. It goes right after. */
        it->next = head->next;
        head->next = it;
        if (c->items.tail == head)
            c->items.tail = it;
    } else {
        fake__list_push(&c->items, it, front);
    }
    lws_callback_on_writable(c->wsi);
}

void fake__queue_text(struct fake_conn *c, const char *text, bool front)
{
    fake__queue(c, fake__item(FK_TEXT, NULL, text), front);
}

/* ---- what the client says --------------------------------------------------- */

static void fake__ready(struct fake_conn *c)
{
    struct fake_gateway *f = c->f;
    char sid[64];
    f->session_no++;
    snprintf(sid, sizeof(sid), "fake-session-%u", f->session_no);
    fake__log_clear(f);
    f->session_valid = true;
    pthread_mutex_lock(&f->mu);
    snprintf(f->st.session_id, sizeof(f->st.session_id), "%s", sid);
    f->st.seq = 0;
    int shard0 = f->st.identify_shard[0];
    int shard1 = f->st.identify_shard[1];
    pthread_mutex_unlock(&f->mu);
    int64_t seq = fake__next_seq(f);
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"t\":\"READY\",\"s\":%lld,\"op\":0,\"d\":{\"v\":10,\"user\":{\"id\":"
             "\"1100000000000000099\",\"username\":\"fakebot\",\"bot\":true},\"guilds\":[],"
             "\"session_id\":\"%s\",\"resume_gateway_url\":\"%s\",\"shard\":[%d,%d],"
             "\"application\":{\"id\":\"1100000000000000099\",\"flags\":0}}}",
             (long long)seq, sid, f->url, shard0, shard1);
    fake__queue_text(c, text, false);
}

static void fake__resume(struct fake_conn *c, const char *sid, int64_t seq)
{
    struct fake_gateway *f = c->f;
    pthread_mutex_lock(&f->mu);
    bool ok = f->session_valid && strcmp(sid, f->st.session_id) == 0 && seq <= f->st.seq;
    pthread_mutex_unlock(&f->mu);
    if (!ok) {
        fake__queue_text(c, "{\"t\":null,\"s\":null,\"op\":9,\"d\":false}", false);
        return;
    }
    for (size_t i = 0; i < f->nlog; i++) {
        const struct fake_event *e = &f->log[i];
        if (e->seq <= seq)
            continue;
        size_t len = fake__gen_dispatch(f, e->type, e->seq, e->d, e->d_bytes);
        (void)len;
        fake__queue_text(c, f->gen, false);
        fake__count_events(f, 1);
    }
    char text[128];
    snprintf(text, sizeof(text), "{\"t\":\"RESUMED\",\"s\":%lld,\"op\":0,\"d\":{}}",
             (long long)fake__next_seq(f));
    fake__queue_text(c, text, false);
}

void fake__client_payload(struct fake_conn *c, const char *text, size_t len)
{
    struct fake_gateway *f = c->f;
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "d");
    int o = cJSON_IsNumber(op) ? op->valueint : -1;
    if (o == 1) {
        pthread_mutex_lock(&f->mu);
        f->st.heartbeats++;
        f->st.last_heartbeat_seq = cJSON_IsNumber(d) ? (int64_t)d->valuedouble : -1;
        if (!c->drop_acks)
            f->st.acks++;
        pthread_mutex_unlock(&f->mu);
        if (!c->drop_acks)
            fake__queue_text(c, "{\"t\":null,\"s\":null,\"op\":11,\"d\":null}", true);
        fake__seen(f, FAKE_SEEN_HEARTBEAT);
    } else if (o == 2) {
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(d, "token");
        const cJSON *intents = cJSON_GetObjectItemCaseSensitive(d, "intents");
        const cJSON *shard = cJSON_GetObjectItemCaseSensitive(d, "shard");
        pthread_mutex_lock(&f->mu);
        f->st.identifies++;
        snprintf(f->st.identify_token, sizeof(f->st.identify_token), "%s",
                 cJSON_IsString(tok) ? tok->valuestring : "");
        f->st.identify_intents = cJSON_IsNumber(intents) ? (uint32_t)intents->valuedouble : 0;
        f->st.identify_shard[0] = cJSON_IsNumber(cJSON_GetArrayItem(shard, 0))
                                      ? cJSON_GetArrayItem(shard, 0)->valueint
                                      : -1;
        f->st.identify_shard[1] = cJSON_IsNumber(cJSON_GetArrayItem(shard, 1))
                                      ? cJSON_GetArrayItem(shard, 1)->valueint
                                      : -1;
        pthread_mutex_unlock(&f->mu);
        fake__ready(c);
        fake__seen(f, FAKE_SEEN_IDENTIFY);
    } else if (o == 6) {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(d, "session_id");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(d, "seq");
        const char *s = cJSON_IsString(sid) ? sid->valuestring : "";
        int64_t q = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : -1;
        pthread_mutex_lock(&f->mu);
        f->st.resumes++;
        snprintf(f->st.last_resume_session, sizeof(f->st.last_resume_session), "%s", s);
        f->st.last_resume_seq = q;
        pthread_mutex_unlock(&f->mu);
        fake__resume(c, s, q);
        fake__seen(f, FAKE_SEEN_RESUME);
    } else {
        pthread_mutex_lock(&f->mu);
        f->st.other_ops++;
        pthread_mutex_unlock(&f->mu);
    }
    cJSON_Delete(root);
}
