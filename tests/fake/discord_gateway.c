/* The fake Discord gateway: a libwebsockets server on its own loop (or
 * thread) that speaks the gateway protocol, scripted by the test through
 * commands. This file holds the commands, the server and its lifecycle;
 * what goes over one connection is in discord_gateway_wire.c. See
 * tests/fake/discord_gateway.h. */
#include "tests/fake/discord_gateway.h"

#include "tests/fake/discord_gateway_internal.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

void fake__seen(struct fake_gateway *f, enum fake_gateway_seen what)
{
    if (f->opt.on_seen != NULL)
        f->opt.on_seen(f, what, f->opt.data);
}

char *fake__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void fake__item_free(struct fake_item *it)
{
    free(it->type);
    free(it->text);
    free(it);
}

void fake__list_push(struct fake_list *l, struct fake_item *it, bool front)
{
    if (front) {
        it->next = l->head;
        l->head = it;
        if (l->tail == NULL)
            l->tail = it;
        return;
    }
    it->next = NULL;
    if (l->tail != NULL)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
}

struct fake_item *fake__list_pop(struct fake_list *l)
{
    struct fake_item *it = l->head;
    if (it != NULL) {
        l->head = it->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return it;
}

static void fake__list_clear(struct fake_list *l)
{
    struct fake_item *it;
    while ((it = fake__list_pop(l)) != NULL)
        fake__item_free(it);
}

struct fake_item *fake__item(enum fake_kind kind, const char *type, const char *text)
{
    struct fake_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        abort(); /* test code: out of memory is not a case worth handling */
    it->kind = kind;
    it->type = fake__strdup(type);
    it->text = fake__strdup(text);
    return it;
}

/* ---- commands --------------------------------------------------------------- */

static void fake__apply(struct fake_gateway *f, struct fake_item *it)
{
    struct fake_conn *c = f->current;
    if (it->kind == FK_DROP_ACKS) {
        if (c != NULL)
            c->drop_acks = it->code != 0;
        fake__item_free(it);
        return;
    }
    if (c == NULL || c->closing) {
        fake__list_push(&f->pending, it, false);
        return;
    }
    if (it->kind == FK_KICK)
        c->closing = true; /* later commands wait for the next connection */
    fake__queue(c, it, false);
}

static void fake__close_all(struct fake_gateway *f);

static void fake__async(uv_async_t *a)
{
    struct fake_gateway *f = a->data;
    struct fake_list got;
    pthread_mutex_lock(&f->mu);
    got = f->cmds;
    f->cmds.head = f->cmds.tail = NULL;
    pthread_mutex_unlock(&f->mu);
    struct fake_item *it;
    while ((it = fake__list_pop(&got)) != NULL) {
        if (it->kind == FK_STOP) {
            fake__item_free(it);
            fake__list_clear(&got);
            fake__close_all(f);
            return;
        }
        fake__apply(f, it);
    }
}

static void fake__command(struct fake_gateway *f, struct fake_item *it)
{
    pthread_mutex_lock(&f->mu);
    fake__list_push(&f->cmds, it, false);
    pthread_mutex_unlock(&f->mu);
    uv_async_send(&f->async);
}

void fake_gateway_dispatch(struct fake_gateway *f, const char *type, const char *d_json)
{
    fake__command(f, fake__item(FK_DISPATCH, type, d_json));
}

void fake_gateway_dispatch_missed(struct fake_gateway *f, const char *type, const char *d_json)
{
    fake__command(f, fake__item(FK_MISSED, type, d_json));
}

void fake_gateway_burst(struct fake_gateway *f, const char *type, size_t count, size_t d_bytes)
{
    if (count == 0)
        return;
    struct fake_item *it = fake__item(FK_BURST, type, NULL);
    it->count = count;
    it->d_bytes = d_bytes;
    fake__command(f, it);
}

void fake_gateway_flood(struct fake_gateway *f, const char *type, size_t count, size_t d_bytes)
{
    if (count == 0)
        return;
    struct fake_item *it = fake__item(FK_FLOOD, type, NULL);
    it->count = count;
    it->d_bytes = d_bytes;
    fake__command(f, it);
}

void fake_gateway_drop_acks(struct fake_gateway *f, bool drop)
{
    struct fake_item *it = fake__item(FK_DROP_ACKS, NULL, NULL);
    it->code = drop ? 1 : 0;
    fake__command(f, it);
}

void fake_gateway_reconnect(struct fake_gateway *f)
{
    fake__command(f, fake__item(FK_TEXT, NULL, "{\"t\":null,\"s\":null,\"op\":7,\"d\":null}"));
}

void fake_gateway_invalid_session(struct fake_gateway *f, bool resumable)
{
    /* Without resume, the session is gone on the fake's side too. */
    struct fake_item *it = fake__item(FK_INVALID, NULL, NULL);
    it->code = resumable ? 1 : 0;
    fake__command(f, it);
}

void fake_gateway_heartbeat_request(struct fake_gateway *f)
{
    fake__command(f, fake__item(FK_TEXT, NULL, "{\"t\":null,\"s\":null,\"op\":1,\"d\":null}"));
}

void fake_gateway_kick(struct fake_gateway *f, int code)
{
    struct fake_item *it = fake__item(FK_KICK, NULL, NULL);
    it->code = code;
    fake__command(f, it);
}

void fake_gateway_send_text(struct fake_gateway *f, const char *text)
{
    fake__command(f, fake__item(FK_TEXT, NULL, text));
}

void fake_gateway_send_corrupt(struct fake_gateway *f)
{
    fake__command(f, fake__item(FK_CORRUPT, NULL, NULL));
}

void fake_gateway_stats(struct fake_gateway *f, struct fake_gateway_stats *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}

const char *fake_gateway_url(const struct fake_gateway *f)
{
    return f->url;
}

int fake_gateway_port(const struct fake_gateway *f)
{
    return f->port;
}

/* ---- libwebsockets ---------------------------------------------------------- */

static void fake__conn_gone(struct fake_conn *c)
{
    struct fake_gateway *f = c->f;
    if (f == NULL)
        return;
    if (c->z_ready)
        deflateEnd(&c->z);
    c->z_ready = false;
    ZSTD_freeCCtx(c->zc);
    c->zc = NULL;
    fake__list_clear(&c->items);
    fake__cycle_free(&c->cycle);
    free(c->rx);
    c->rx = NULL;
    if (f->current == c)
        f->current = NULL;
    c->f = NULL;
    fake__seen(f, FAKE_SEEN_GONE);
}

static int fake__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct fake_conn *c = user;
    struct fake_gateway *f = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        memset(c, 0, sizeof(*c));
        c->f = f;
        c->wsi = wsi;
        if (deflateInit2(&c->z, f->opt.level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        c->z_ready = true;
        pthread_mutex_lock(&f->mu);
        f->st.connections++;
        f->st.query[0] = '\0';
        f->st.host[0] = '\0';
        lws_hdr_copy(wsi, f->st.query, sizeof(f->st.query), WSI_TOKEN_HTTP_URI_ARGS);
        lws_hdr_copy(wsi, f->st.host, sizeof(f->st.host), WSI_TOKEN_HOST);
        bool zstd =
            f->opt.send == FAKE_SEND_ZSTD ||
            (f->opt.send == FAKE_SEND_ASKED && strstr(f->st.query, "compress=zstd-stream") != NULL);
        c->text = f->opt.send == FAKE_SEND_TEXT;
        pthread_mutex_unlock(&f->mu);
        if (zstd && (c->zc = ZSTD_createCCtx()) == NULL)
            return -1;
        if (f->current != NULL)
            f->current->closing = true;
        f->current = c;
        char hello[128];
        snprintf(hello, sizeof(hello),
                 "{\"t\":null,\"s\":null,\"op\":10,\"d\":{\"heartbeat_interval\":%u}}",
                 f->opt.heartbeat_ms);
        fake__queue_text(c, hello, false);
        /* Commands that waited for a connection. */
        struct fake_list waiting = f->pending;
        f->pending.head = f->pending.tail = NULL;
        struct fake_item *it;
        while ((it = fake__list_pop(&waiting)) != NULL)
            fake__apply(f, it);
        fake__seen(f, FAKE_SEEN_CONNECT);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        if (c == NULL || c->f == NULL)
            return 0;
        char *grown = realloc(c->rx, c->rx_len + len + 1);
        if (grown == NULL)
            return -1;
        c->rx = grown;
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
            return 0;
        c->rx[c->rx_len] = '\0';
        fake__client_payload(c, c->rx, c->rx_len);
        c->rx_len = 0;
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (c == NULL || c->f == NULL)
            return 0;
        return fake__writable(c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c != NULL && c->f != NULL) {
            const unsigned char *b = in;
            pthread_mutex_lock(&f->mu);
            f->st.client_closes++;
            f->st.last_client_close = (b != NULL && len >= 2) ? (b[0] << 8) | b[1] : 0;
            pthread_mutex_unlock(&f->mu);
            c->closing = true;
            fake__seen(f, FAKE_SEEN_CLOSE);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c != NULL)
            fake__conn_gone(c);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols fake_protocols[] = {
    {"discord-gateway", fake__callback, sizeof(struct fake_conn), 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int fake__listen(struct fake_gateway *f)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {f->loop};
    /* LWSDBG=1 in the environment shows everything libwebsockets says. */
    lws_set_log_level(getenv("LWSDBG") != NULL ? 0xfff : (LLL_ERR | LLL_WARN), NULL);
    info.port = 0; /* an ephemeral port */
    info.iface = "127.0.0.1";
    info.protocols = fake_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.user = f;
    info.pt_serv_buf_size = 64 * 1024;
    f->ctx = lws_create_context(&info);
    if (f->ctx == NULL)
        return -1;
    f->port = lws_get_vhost_listen_port(lws_get_vhost_by_name(f->ctx, "default"));
    if (f->port <= 0) {
        lws_context_destroy(f->ctx);
        f->ctx = NULL;
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "ws://127.0.0.1:%d", f->port);
    if (uv_async_init(f->loop, &f->async, fake__async) < 0)
        return -1;
    f->async.data = f;
    return 0;
}

static struct fake_gateway *fake__alloc(const struct fake_gateway_options *opt)
{
    struct fake_gateway *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (opt != NULL)
        f->opt = *opt;
    if (f->opt.heartbeat_ms == 0)
        f->opt.heartbeat_ms = 200;
    if (f->opt.level == 0)
        f->opt.level = 6;
    f->st.last_heartbeat_seq = -1;
    f->st.last_resume_seq = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    return f;
}

static void fake__release(struct fake_gateway *f)
{
    fake__list_clear(&f->cmds);
    fake__list_clear(&f->pending);
    fake__log_clear(f);
    free(f->log);
    free(f->zbuf);
    free(f->gen);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    free(f);
}

struct fake_gateway *fake_gateway_new(uv_loop_t *loop, const struct fake_gateway_options *opt)
{
    struct fake_gateway *f = fake__alloc(opt);
    if (f == NULL)
        return NULL;
    f->loop = loop;
    if (fake__listen(f) < 0) {
        if (f->ctx != NULL) {
            lws_context_destroy(f->ctx);
            lws_context_destroy(f->ctx);
        }
        fake__release(f);
        return NULL;
    }
    return f;
}

static void fake__close_all(struct fake_gateway *f)
{
    if (f->closed)
        return;
    f->closed = true;
    uv_close((uv_handle_t *)&f->async, NULL);
    lws_context_destroy(f->ctx);
}

void fake_gateway_close(struct fake_gateway *f)
{
    fake__close_all(f);
}

static void *fake__thread(void *arg)
{
    struct fake_gateway *f = arg;
    bool ok = uv_loop_init(&f->own_loop) == 0;
    f->loop = &f->own_loop;
    if (ok && fake__listen(f) < 0)
        ok = false;
    pthread_mutex_lock(&f->mu);
    f->started = true;
    f->start_failed = !ok;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    if (ok)
        uv_run(f->loop, UV_RUN_DEFAULT);
    if (f->ctx != NULL)
        lws_context_destroy(f->ctx);
    uv_run(f->loop, UV_RUN_DEFAULT);
    uv_loop_close(f->loop);
    return NULL;
}

struct fake_gateway *fake_gateway_start_thread(const struct fake_gateway_options *opt)
{
    struct fake_gateway *f = fake__alloc(opt);
    if (f == NULL)
        return NULL;
    f->threaded = true;
    if (pthread_create(&f->thread, NULL, fake__thread, f) != 0) {
        fake__release(f);
        return NULL;
    }
    pthread_mutex_lock(&f->mu);
    while (!f->started)
        pthread_cond_wait(&f->cond, &f->mu);
    bool failed = f->start_failed;
    pthread_mutex_unlock(&f->mu);
    if (failed) {
        pthread_join(f->thread, NULL);
        fake__release(f);
        return NULL;
    }
    return f;
}

void fake_gateway_free(struct fake_gateway *f)
{
    if (f == NULL)
        return;
    if (f->threaded) {
        fake__command(f, fake__item(FK_STOP, NULL, NULL));
        pthread_join(f->thread, NULL);
    } else {
        fake__close_all(f);
        lws_context_destroy(f->ctx);
    }
    fake__release(f);
}
