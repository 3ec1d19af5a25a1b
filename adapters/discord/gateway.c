#include "adapters/discord/gateway.h"

#include "adapters/discord/payload.h"
#include "adapters/discord/zstream.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_QUERY "v=10&encoding=json&compress=zlib-stream"
#define GW_MAX_PAYLOAD_DEFAULT (16u << 20)
#define GW_USER_QUEUE_MAX 1000
#define GW_TYPE_MAX 64
#define GW_CLOSE_GRACE_S 3 /* a close handshake that takes longer is cut */
/* lws 4.1 keeps the close opcode out of its public enum; the value is 4. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

/* ---- the shared context ------------------------------------------------- */

struct discord_ws {
    uv_loop_t *loop;
    struct lws_context *ctx;
    int destroy_calls; /* lws_context_destroy() runs twice: on the loop, then after it */
};

static int gw__lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len);

static const struct lws_protocols gw_protocols[] = {
    {"discord-gateway", gw__lws_callback, 0, 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* libwebsockets' own messages go through the logger (and so through
 * redaction); errors as warnings, the rest is noise for an operator. */
static void gw__lws_log(int level, const char *line)
{
    log_external(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", line);
}

struct discord_ws *discord_ws_new(uv_loop_t *loop)
{
    struct discord_ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->loop = loop;
    lws_set_log_level(LLL_ERR | LLL_WARN, gw__lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    void *loops[1] = {loop};
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = gw_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = loops;
    info.user = ws;
    info.timeout_secs = 20;
    info.connect_timeout_secs = 20;
    /* One read can then carry a burst of small compressed events. */
    info.pt_serv_buf_size = 64 * 1024;
    ws->ctx = lws_create_context(&info);
    if (ws->ctx == NULL) {
        log_error("discord.ws.create", "error=%s", "libwebsockets context failed (libwebsockets-evlib-uv installed?)");
        free(ws);
        return NULL;
    }
    return ws;
}

void discord_ws_close(struct discord_ws *ws)
{
    if (ws == NULL || ws->destroy_calls > 0)
        return;
    ws->destroy_calls = 1;
    lws_context_destroy(ws->ctx);
}

void discord_ws_free(struct discord_ws *ws)
{
    if (ws == NULL)
        return;
    discord_ws_close(ws);
    /* The second call, after uv_run() returned, frees what the first one
     * could not while the loop still held lws's handles. */
    lws_context_destroy(ws->ctx);
    free(ws);
}

/* ---- one shard ---------------------------------------------------------- */

enum gw_why {
    GW_WHY_NONE = 0, /* the server closed, or the connection dropped */
    GW_WHY_ZOMBIE,   /* no heartbeat ACK */
    GW_WHY_OP7,      /* the server asked for a reconnect */
    GW_WHY_OP9,      /* invalid session */
    GW_WHY_STREAM,   /* the zlib stream broke or a payload was too large */
    GW_WHY_STOP,     /* discord_gateway_stop() */
};

enum gw_retry { GW_RETRY_NONE = 0, GW_RETRY_CONNECT, GW_RETRY_IDENTIFY };

struct gw_send {
    struct gw_send *next;
    bool heartbeat;
    bool secret; /* carries the token: wiped before it is freed */
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes, then the JSON */
};

struct gw_queue {
    struct gw_send *head;
    struct gw_send *tail;
    size_t len;
};

struct discord_gateway {
    struct discord_ws *ws;
    uv_loop_t *loop;

    /* options, copied */
    char *url;
    char *token;
    uint32_t intents;
    unsigned shard_id;
    unsigned shard_count;
    char **events; /* NULL: every event */
    size_t nevents;
    size_t max_payload;
    struct discord_identify_gate own_gate;
    struct discord_identify_gate *gate;
    discord_gateway_event_cb on_event;
    discord_gateway_state_cb on_state;
    void *data;
    double (*jitter)(void *data);
    uint64_t rng;

    struct discord_session session;
    struct discord_send_limit limit;
    struct discord_zstream zs;
    enum discord_gateway_state state;
    struct discord_gateway_status st;

    /* the current connection */
    struct lws *wsi;     /* NULL until the connect call returned */
    bool conn_live;      /* a connection exists (connecting or open) */
    bool conn_open;      /* the websocket handshake completed */
    int peer_close_code; /* from the server's close frame, 0 without one */
    int close_code;      /* the code we close with; 0 while not closing */
    enum gw_why close_why;
    uint32_t close_wait_ms; /* op 9: how long to wait before identifying anew */

    /* where the current connection goes */
    char host[256];
    char path[600];
    int port;
    bool tls;
    uv_getaddrinfo_t gai;
    bool resolving;
    struct addrinfo *addrs;
    struct addrinfo *next_addr;

    uv_timer_t heartbeat_timer;
    uv_timer_t retry_timer;
    uv_timer_t send_timer;
    enum gw_retry retry_what;
    int handles_open;

    struct gw_queue ctl;  /* this connection's heartbeats, IDENTIFY, RESUME */
    struct gw_queue user; /* the caller's payloads, sent once identified */

    bool stopping;
    discord_gateway_stop_cb stop_cb;
    void *stop_data;
};

#define GW_OWNER(ptr, field) \
    ((struct discord_gateway *)(void *)((char *)(ptr) - offsetof(struct discord_gateway, field)))

static int gw__connect(struct discord_gateway *gw);
static void gw__finish_stop(struct discord_gateway *gw);
static void gw__heartbeat_tick(uv_timer_t *t);
static void gw__retry_tick(uv_timer_t *t);
static void gw__send_tick(uv_timer_t *t);

const char *discord_gateway_state_name(enum discord_gateway_state state)
{
    switch (state) {
    case DISCORD_GW_IDLE: return "idle";
    case DISCORD_GW_CONNECTING: return "connecting";
    case DISCORD_GW_CONNECTED: return "connected";
    case DISCORD_GW_IDENTIFIED: return "identified";
    case DISCORD_GW_RESUMING: return "resuming";
    case DISCORD_GW_STOPPED: return "stopped";
    }
    return "unknown";
}

static double gw__jitter(struct discord_gateway *gw)
{
    if (gw->jitter != NULL)
        return gw->jitter(gw->data);
    /* xorshift64*: jitter needs spread, not secrecy. */
    gw->rng ^= gw->rng >> 12;
    gw->rng ^= gw->rng << 25;
    gw->rng ^= gw->rng >> 27;
    return (double)((gw->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void gw__set_state(struct discord_gateway *gw, enum discord_gateway_state state, int code)
{
    if (gw->state == state)
        return;
    gw->state = state;
    if (gw->on_state != NULL)
        gw->on_state(gw, state, code, gw->data);
}

/* ---- send queue --------------------------------------------------------- */

static struct gw_send *gw__send_new(const char *json, size_t len, bool heartbeat, bool secret)
{
    struct gw_send *s = malloc(sizeof(*s) + LWS_PRE + len + 1);
    if (s == NULL)
        return NULL;
    s->next = NULL;
    s->heartbeat = heartbeat;
    s->secret = secret;
    s->len = len;
    memcpy(s->buf + LWS_PRE, json, len);
    s->buf[LWS_PRE + len] = '\0';
    return s;
}

static void gw__send_free(struct gw_send *s)
{
    if (s->secret)
        explicit_bzero(s->buf + LWS_PRE, s->len);
    free(s);
}

static void gw__queue_push(struct gw_queue *q, struct gw_send *s, bool front)
{
    if (front) {
        s->next = q->head;
        q->head = s;
        if (q->tail == NULL)
            q->tail = s;
    } else {
        if (q->tail != NULL)
            q->tail->next = s;
        else
            q->head = s;
        q->tail = s;
    }
    q->len++;
}

static struct gw_send *gw__queue_pop(struct gw_queue *q)
{
    struct gw_send *s = q->head;
    if (s == NULL)
        return NULL;
    q->head = s->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->len--;
    return s;
}

static void gw__queue_clear(struct gw_queue *q)
{
    struct gw_send *s;
    while ((s = gw__queue_pop(q)) != NULL)
        gw__send_free(s);
}

static void gw__want_write(struct discord_gateway *gw)
{
    if (gw->wsi != NULL && gw->conn_open)
        lws_callback_on_writable(gw->wsi);
}

/* Queue a control payload for this connection. Heartbeats jump the queue. */
static int gw__send_ctl(struct discord_gateway *gw, const char *json, bool heartbeat, bool secret)
{
    struct gw_send *s = gw__send_new(json, strlen(json), heartbeat, secret);
    if (s == NULL)
        return HB_ENOMEM;
    gw__queue_push(&gw->ctl, s, heartbeat);
    gw__want_write(gw);
    return 0;
}

static void gw__send_heartbeat(struct discord_gateway *gw)
{
    char json[64];
    if (gw->session.seq >= 0)
        snprintf(json, sizeof(json), "{\"op\":1,\"d\":%lld}", (long long)gw->session.seq);
    else
        snprintf(json, sizeof(json), "{\"op\":1,\"d\":null}");
    if (gw__send_ctl(gw, json, true, false) < 0)
        log_warn("discord.gateway.heartbeat", "shard=%u error=%s", gw->shard_id,
                 hb_strerror(HB_ENOMEM));
}

static int gw__send_json(struct discord_gateway *gw, cJSON *root, bool secret)
{
    int rc = HB_ENOMEM;
    char *text = cJSON_PrintUnformatted(root);
    if (text != NULL) {
        rc = gw__send_ctl(gw, text, false, secret);
        if (secret)
            explicit_bzero(text, strlen(text));
        cJSON_free(text);
    }
    cJSON_Delete(root);
    return rc;
}

static void gw__send_identify(struct discord_gateway *gw)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(root, "d");
    cJSON *props = cJSON_AddObjectToObject(d, "properties");
    cJSON *shard = cJSON_AddArrayToObject(d, "shard");
    cJSON_AddNumberToObject(root, "op", DISCORD_OP_IDENTIFY);
    cJSON_AddStringToObject(d, "token", gw->token);
    cJSON_AddNumberToObject(d, "intents", gw->intents);
    cJSON_AddStringToObject(props, "os", "linux");
    cJSON_AddStringToObject(props, "browser", "haibot");
    cJSON_AddStringToObject(props, "device", "haibot");
    cJSON_AddItemToArray(shard, cJSON_CreateNumber(gw->shard_id));
    cJSON_AddItemToArray(shard, cJSON_CreateNumber(gw->shard_count));
    /* Any NULL above leaves the object short; the print below then fails
     * or sends an IDENTIFY Discord refuses, either way logged. */
    if (gw__send_json(gw, root, true) < 0) {
        log_warn("discord.gateway.identify", "shard=%u error=%s", gw->shard_id,
                 hb_strerror(HB_ENOMEM));
        return;
    }
    gw->st.identifies++;
    log_info("discord.gateway.identify", "shard=%u/%u intents=%u", gw->shard_id, gw->shard_count,
             gw->intents);
}

static void gw__send_resume(struct discord_gateway *gw)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(root, "d");
    cJSON_AddNumberToObject(root, "op", DISCORD_OP_RESUME);
    cJSON_AddStringToObject(d, "token", gw->token);
    cJSON_AddStringToObject(d, "session_id", gw->session.session_id);
    cJSON_AddNumberToObject(d, "seq", (double)gw->session.seq);
    if (gw__send_json(gw, root, true) < 0) {
        log_warn("discord.gateway.resume", "shard=%u error=%s", gw->shard_id,
                 hb_strerror(HB_ENOMEM));
        return;
    }
    log_info("discord.gateway.resume", "shard=%u seq=%lld", gw->shard_id,
             (long long)gw->session.seq);
}

/* IDENTIFY waits for the shard's slot in the shared identify gate. */
static void gw__identify(struct discord_gateway *gw)
{
    uint64_t wait = discord_identify_gate_take(gw->gate, gw->shard_id, uv_now(gw->loop));
    if (wait > 0) {
        gw->retry_what = GW_RETRY_IDENTIFY;
        uv_timer_start(&gw->retry_timer, gw__retry_tick, wait, 0);
        log_debug("discord.gateway.identify_wait", "shard=%u wait_ms=%llu", gw->shard_id,
                  (unsigned long long)wait);
        return;
    }
    gw__send_identify(gw);
}

/* ---- closing ------------------------------------------------------------ */

/* Decide to drop this connection; the close frame goes out from the
 * connection's next callback. */
static void gw__drop(struct discord_gateway *gw, enum gw_why why, int code, uint32_t wait_ms)
{
    if (!gw->conn_live || gw->close_code != 0)
        return;
    gw->close_why = why;
    gw->close_code = code;
    gw->close_wait_ms = wait_ms;
    uv_timer_stop(&gw->heartbeat_timer);
    if (gw->wsi == NULL)
        return;
    if (!gw->conn_open) {
        lws_set_timeout(gw->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    lws_callback_on_writable(gw->wsi);
    /* A dead peer may never let the close frame out: cut it after a grace. */
    lws_set_timeout(gw->wsi, PENDING_TIMEOUT_USER_OK, GW_CLOSE_GRACE_S);
}

static void gw__conn_end(struct discord_gateway *gw, const char *error)
{
    bool was_open = gw->conn_open;
    gw->conn_live = false;
    gw->conn_open = false;
    gw->wsi = NULL;
    uv_timer_stop(&gw->heartbeat_timer);
    uv_timer_stop(&gw->send_timer);
    if (gw->retry_what == GW_RETRY_IDENTIFY) {
        uv_timer_stop(&gw->retry_timer);
        gw->retry_what = GW_RETRY_NONE;
    }
    gw__queue_clear(&gw->ctl);
    discord_zstream_close(&gw->zs);

    if (gw->stopping) {
        if (gw->addrs != NULL) {
            uv_freeaddrinfo(gw->addrs);
            gw->addrs = NULL;
        }
        gw__finish_stop(gw);
        return;
    }
    if (!was_open && gw->close_why == GW_WHY_NONE && gw->next_addr != NULL) {
        log_debug("discord.gateway.connect_next", "shard=%u error=%s", gw->shard_id,
                  error != NULL ? error : "-");
        if (gw__connect(gw) == 0)
            return;
    }
    if (gw->addrs != NULL) {
        uv_freeaddrinfo(gw->addrs);
        gw->addrs = NULL;
        gw->next_addr = NULL;
    }

    int code = gw->close_why != GW_WHY_NONE ? gw->close_code : gw->peer_close_code;
    bool healthy = gw->session.identified && gw->session.failures == 0;
    uint32_t wait = 0;
    enum discord_action act = discord_session_closed(&gw->session, code, gw__jitter(gw), &wait);
    gw->st.last_close_code = code;
    if (act == DISCORD_ACT_STOP) {
        log_error("discord.gateway.stopped", "shard=%u code=%d reason=%s", gw->shard_id, code,
                  discord_close_reason(code));
        gw__set_state(gw, DISCORD_GW_STOPPED, code);
        return;
    }
    /* Our own drops of a healthy session resume at once, as Discord asks for
     * op 7; op 9 without a session waits the 1-5 s it was given. */
    if (gw->close_why == GW_WHY_OP9 && gw->close_wait_ms > wait)
        wait = gw->close_wait_ms;
    else if (healthy && (gw->close_why == GW_WHY_OP7 || gw->close_why == GW_WHY_ZOMBIE ||
                         gw->close_why == GW_WHY_STREAM || gw->close_why == GW_WHY_OP9))
        wait = 0;
    gw->st.reconnects++;
    metrics_counter_add(metrics_std()->gateway_reconnects, (const char *[]){"discord"}, 1);
    bool resume = discord_session_resumable(&gw->session);
    log_info("discord.gateway.reconnect", "shard=%u code=%d reason=%s wait_ms=%u resume=%d%s%s",
             gw->shard_id, code,
             gw->close_why == GW_WHY_ZOMBIE ? "no heartbeat ack"
             : gw->close_why == GW_WHY_OP7  ? "reconnect requested"
             : gw->close_why == GW_WHY_OP9  ? "invalid session"
             : gw->close_why == GW_WHY_STREAM ? "broken stream"
                                              : discord_close_reason(code),
             wait, resume ? 1 : 0, error != NULL ? " error=" : "", error != NULL ? error : "");
    gw__set_state(gw, resume ? DISCORD_GW_RESUMING : DISCORD_GW_CONNECTING, code);
    gw->retry_what = GW_RETRY_CONNECT;
    uv_timer_start(&gw->retry_timer, gw__retry_tick, wait, 0);
}

/* ---- receiving ---------------------------------------------------------- */

static bool gw__wanted(struct discord_gateway *gw, const char *type, size_t len)
{
    if (gw->events == NULL)
        return true;
    for (size_t i = 0; i < gw->nevents; i++) {
        if (strlen(gw->events[i]) == len && memcmp(gw->events[i], type, len) == 0)
            return true;
    }
    return false;
}

/* READY and RESUMED are always looked at: the session needs them. */
static bool gw__want_scan(const char *type, size_t len, void *data)
{
    if ((len == 5 && memcmp(type, "READY", 5) == 0) || (len == 7 && memcmp(type, "RESUMED", 7) == 0))
        return true;
    return gw__wanted(data, type, len);
}

static void gw__ready(struct discord_gateway *gw, int64_t seq, const char *d, size_t d_len)
{
    cJSON *root = cJSON_ParseWithLength(d, d_len);
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(root, "session_id");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(root, "resume_gateway_url");
    if (!cJSON_IsString(sid) || !cJSON_IsString(url))
        log_warn("discord.gateway.ready", "shard=%u error=%s", gw->shard_id,
                 "READY without session_id or resume_gateway_url");
    discord_session_dispatch(&gw->session, seq, "READY", cJSON_IsString(sid) ? sid->valuestring : NULL,
                             cJSON_IsString(url) ? url->valuestring : NULL);
    cJSON_Delete(root);
    log_info("discord.gateway.ready", "shard=%u", gw->shard_id);
}

static void gw__dispatch(struct discord_gateway *gw, const struct discord_payload *p)
{
    char type[GW_TYPE_MAX];
    if (p->type == NULL || p->type_len >= sizeof(type)) {
        discord_session_dispatch(&gw->session, p->seq, NULL, NULL, NULL);
        return;
    }
    memcpy(type, p->type, p->type_len);
    type[p->type_len] = '\0';
    if (p->skipped) {
        discord_session_dispatch(&gw->session, p->seq, type, NULL, NULL);
        return;
    }
    if (strcmp(type, "READY") == 0) {
        gw__ready(gw, p->seq, p->d != NULL ? p->d : "", p->d != NULL ? p->d_len : 0);
        gw__set_state(gw, DISCORD_GW_IDENTIFIED, 0);
        gw__want_write(gw); /* the caller's queued payloads may go now */
    } else if (strcmp(type, "RESUMED") == 0) {
        discord_session_dispatch(&gw->session, p->seq, type, NULL, NULL);
        gw->st.resumes++;
        metrics_counter_add(metrics_std()->gateway_resumes, (const char *[]){"discord"}, 1);
        log_info("discord.gateway.resumed", "shard=%u seq=%lld", gw->shard_id,
                 (long long)gw->session.seq);
        gw__set_state(gw, DISCORD_GW_IDENTIFIED, 0);
        gw__want_write(gw);
    } else {
        discord_session_dispatch(&gw->session, p->seq, type, NULL, NULL);
    }
    if (p->d == NULL || gw->on_event == NULL || !gw__wanted(gw, type, p->type_len))
        return;
    /* Hand `d` over NUL-terminated without copying: the byte after it is a
     * comma, a brace or a space of the payload buffer, which this
     * connection owns until the next read. */
    char *end = (char *)(uintptr_t)(p->d + p->d_len);
    char saved = *end;
    *end = '\0';
    gw->on_event(gw, type, p->seq, p->d, p->d_len, gw->data);
    *end = saved;
}

static void gw__hello(struct discord_gateway *gw, const struct discord_payload *p)
{
    cJSON *d = cJSON_ParseWithLength(p->d != NULL ? p->d : "", p->d != NULL ? p->d_len : 0);
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(d, "heartbeat_interval");
    double interval = cJSON_IsNumber(iv) ? iv->valuedouble : 0;
    cJSON_Delete(d);
    if (interval < 1 || interval > 600000) {
        log_warn("discord.gateway.hello", "shard=%u error=%s", gw->shard_id,
                 "HELLO without a usable heartbeat_interval");
        gw__drop(gw, GW_WHY_STREAM, DISCORD_CLOSE_RESUMABLE, 0);
        return;
    }
    uint32_t first = 0;
    enum discord_action act =
        discord_session_hello(&gw->session, (uint32_t)interval, gw__jitter(gw), &first);
    uv_timer_start(&gw->heartbeat_timer, gw__heartbeat_tick, first, (uint64_t)interval);
    if (act == DISCORD_ACT_RESUME)
        gw__send_resume(gw);
    else
        gw__identify(gw);
}

static void gw__payload(struct discord_gateway *gw, const char *json, size_t len)
{
    struct discord_payload p;
    if (discord_payload_scan(json, len, gw__want_scan, gw, &p) < 0) {
        log_warn("discord.gateway.bad_payload", "shard=%u bytes=%zu", gw->shard_id, len);
        return;
    }
    uint64_t now = uv_now(gw->loop);
    uint32_t wait = 0;
    switch (p.op) {
    case DISCORD_OP_DISPATCH:
        gw__dispatch(gw, &p);
        break;
    case DISCORD_OP_HEARTBEAT:
        if (discord_session_heartbeat_asked(&gw->session, now) == DISCORD_ACT_HEARTBEAT)
            gw__send_heartbeat(gw);
        break;
    case DISCORD_OP_RECONNECT:
        discord_session_reconnect_asked(&gw->session);
        gw__drop(gw, GW_WHY_OP7, DISCORD_CLOSE_RESUMABLE, 0);
        break;
    case DISCORD_OP_INVALID_SESSION: {
        bool resumable = p.d != NULL && p.d_len == 4 && memcmp(p.d, "true", 4) == 0;
        discord_session_invalid(&gw->session, resumable, gw__jitter(gw), &wait);
        log_info("discord.gateway.invalid_session", "shard=%u resumable=%d wait_ms=%u",
                 gw->shard_id, resumable ? 1 : 0, wait);
        gw__drop(gw, GW_WHY_OP9, DISCORD_CLOSE_RESUMABLE, wait);
        break;
    }
    case DISCORD_OP_HELLO:
        gw__hello(gw, &p);
        break;
    case DISCORD_OP_HEARTBEAT_ACK:
        discord_session_ack(&gw->session, now);
        gw->st.latency_ms = gw->session.latency_ms;
        break;
    default:
        log_debug("discord.gateway.op", "shard=%u op=%d", gw->shard_id, p.op);
        break;
    }
}

static void gw__receive(struct discord_gateway *gw, struct lws *wsi, const void *in, size_t len)
{
    if (gw->close_code != 0)
        return; /* leaving: nothing more is read */
    int end = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    const char *json = NULL;
    size_t jlen = 0;
    int rc = discord_zstream_feed_part(&gw->zs, in, len, end, &json, &jlen);
    if (rc == 1) {
        gw__payload(gw, json, jlen);
        return;
    }
    if (rc == HB_EOVERFLOW) {
        log_warn("discord.gateway.too_large", "shard=%u max_bytes=%zu", gw->shard_id,
                 gw->max_payload);
        return;
    }
    if (rc < 0) {
        /* A broken zlib stream cannot be picked up again mid-way: a new
         * connection (resuming) starts a new one. */
        log_warn("discord.gateway.stream", "shard=%u error=%s", gw->shard_id, hb_strerror(rc));
        gw__drop(gw, GW_WHY_STREAM, DISCORD_CLOSE_RESUMABLE, 0);
    }
}

/* Send the close frame ourselves, then drop the socket. lws 4.1 on libuv
 * does not send the frame set by lws_close_reason() when a WRITEABLE
 * callback returns -1: it kills the connection at once ("uv repeat"), and
 * the peer never learns the code. */
static int gw__close_now(struct lws *wsi, int code)
{
    unsigned char frame[LWS_PRE + 2];
    frame[LWS_PRE] = (unsigned char)((code >> 8) & 0xff);
    frame[LWS_PRE + 1] = (unsigned char)(code & 0xff);
    lws_write(wsi, frame + LWS_PRE, 2, LWS_WRITE_CLOSE_FRAME);
    return -1;
}

static int gw__writable(struct discord_gateway *gw, struct lws *wsi)
{
    if (gw->close_code != 0)
        return gw__close_now(wsi, gw->close_code);
    struct gw_queue *q = &gw->ctl;
    if (q->head == NULL && gw->state == DISCORD_GW_IDENTIFIED)
        q = &gw->user;
    struct gw_send *s = q->head;
    if (s == NULL)
        return 0;
    uint64_t wait = discord_send_limit_take(&gw->limit, uv_now(gw->loop), s->heartbeat);
    if (wait > 0) {
        if (!uv_is_active((uv_handle_t *)&gw->send_timer))
            uv_timer_start(&gw->send_timer, gw__send_tick, wait, 0);
        return 0;
    }
    gw__queue_pop(q);
    int n = lws_write(wsi, s->buf + LWS_PRE, s->len, LWS_WRITE_TEXT);
    gw__send_free(s);
    if (n < 0) {
        log_warn("discord.gateway.write", "shard=%u error=%s", gw->shard_id, "write failed");
        return -1;
    }
    if (gw->ctl.head != NULL || (gw->user.head != NULL && gw->state == DISCORD_GW_IDENTIFIED))
        lws_callback_on_writable(wsi);
    return 0;
}

static int gw__lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len)
{
    (void)user;
    struct discord_gateway *gw;
    /* Only the reasons below touch the gateway: others (WSI_DESTROY above
     * all) may come after the gateway is gone. */
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        gw = lws_get_opaque_user_data(wsi);
        if (gw != NULL && gw->conn_live) {
            lws_set_opaque_user_data(wsi, NULL);
            gw__conn_end(gw, in != NULL ? (const char *)in : "connection failed");
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        gw = lws_get_opaque_user_data(wsi);
        if (gw == NULL)
            return -1;
        gw->wsi = wsi;
        gw->conn_open = true;
        gw->st.connects++;
        if (gw->addrs != NULL) {
            uv_freeaddrinfo(gw->addrs);
            gw->addrs = NULL;
            gw->next_addr = NULL;
        }
        log_info("discord.gateway.connected", "shard=%u host=%s", gw->shard_id, gw->host);
        if (gw->close_code != 0) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        gw__set_state(gw, gw->state == DISCORD_GW_RESUMING ? DISCORD_GW_RESUMING
                                                           : DISCORD_GW_CONNECTED, 0);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        gw = lws_get_opaque_user_data(wsi);
        if (gw == NULL)
            return -1;
        gw__receive(gw, wsi, in, len);
        if (gw->close_code != 0) {
            lws_close_reason(wsi, (enum lws_close_status)gw->close_code, NULL, 0);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        gw = lws_get_opaque_user_data(wsi);
        if (gw == NULL)
            return -1;
        return gw__writable(gw, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        gw = lws_get_opaque_user_data(wsi);
        if (gw != NULL && in != NULL && len >= 2) {
            const unsigned char *b = in;
            gw->peer_close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        gw = lws_get_opaque_user_data(wsi);
        if (gw != NULL && gw->conn_live) {
            lws_set_opaque_user_data(wsi, NULL);
            gw__conn_end(gw, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- connecting --------------------------------------------------------- */

/* Split ws[s]://host[:port][/path] into the parts libwebsockets needs. */
static int gw__parse_url(struct discord_gateway *gw, const char *url)
{
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) {
        gw->tls = true;
        gw->port = 443;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        gw->tls = false;
        gw->port = 80;
        p = url + 5;
    } else {
        return HB_EINVAL;
    }
    size_t hlen = strcspn(p, ":/?");
    if (hlen == 0 || hlen >= sizeof(gw->host))
        return HB_EINVAL;
    memcpy(gw->host, p, hlen);
    gw->host[hlen] = '\0';
    p += hlen;
    if (*p == ':') {
        char *endp;
        long port = strtol(p + 1, &endp, 10);
        if (port <= 0 || port > 65535)
            return HB_EINVAL;
        gw->port = (int)port;
        p = endp;
    }
    /* Keep the URL's path, drop its query: ours says version and encoding. */
    size_t plen = strcspn(p, "?");
    const char *slash = plen > 0 && p[0] == '/' ? "" : "/";
    int n = snprintf(gw->path, sizeof(gw->path), "%s%.*s?%s", slash, (int)plen, p, GW_QUERY);
    if (n < 0 || (size_t)n >= sizeof(gw->path))
        return HB_EINVAL;
    return 0;
}

static void gw__connect_fail(struct discord_gateway *gw, const char *error)
{
    /* Treated as a connection that opened nowhere: backoff, then retry. */
    gw->conn_live = true;
    gw->conn_open = false;
    gw->close_why = GW_WHY_NONE;
    gw->peer_close_code = 0;
    gw->next_addr = NULL;
    gw__conn_end(gw, error);
}

/* Open a websocket to the next resolved address. */
static int gw__connect_addr(struct discord_gateway *gw)
{
    struct addrinfo *ai = gw->next_addr;
    char addr[64] = "";
    gw->next_addr = ai->ai_next;
    if (ai->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)ai->ai_addr, addr, sizeof(addr));
    else
        uv_ip4_name((const struct sockaddr_in *)(const void *)ai->ai_addr, addr, sizeof(addr));

    int rc = discord_zstream_init(&gw->zs, gw->max_payload);
    if (rc < 0)
        return rc;
    discord_send_limit_init(&gw->limit);
    gw->peer_close_code = 0;
    gw->close_code = 0;
    gw->close_why = GW_WHY_NONE;
    gw->conn_live = true;
    gw->conn_open = false;
    gw->wsi = NULL;

    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = gw->ws->ctx;
    i.address = addr;
    i.port = gw->port;
    i.path = gw->path;
    i.host = gw->host; /* Host header and TLS server name: the real name */
    i.origin = gw->host;
    i.ssl_connection = gw->tls ? LCCSCF_USE_SSL : 0;
    i.local_protocol_name = gw_protocols[0].name;
    i.opaque_user_data = gw;
    log_debug("discord.gateway.connect", "shard=%u host=%s address=%s port=%d", gw->shard_id,
              gw->host, addr, gw->port);
    struct lws *wsi = lws_client_connect_via_info(&i);
    if (gw->conn_live && wsi != NULL) {
        gw->wsi = wsi;
        if (gw->close_code != 0 || gw->stopping)
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (gw->conn_live) {
        /* It failed without a callback. */
        gw->conn_live = false;
        discord_zstream_close(&gw->zs);
        return HB_EIO;
    }
    return 0;
}

static void gw__resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct discord_gateway *gw = req->data;
    gw->resolving = false;
    if (gw->stopping) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        gw__finish_stop(gw);
        return;
    }
    if (status < 0 || res == NULL) {
        log_warn("discord.gateway.resolve", "shard=%u host=%s error=%s", gw->shard_id, gw->host,
                 uv_strerror(status));
        if (res != NULL)
            uv_freeaddrinfo(res);
        gw__connect_fail(gw, "name resolution failed");
        return;
    }
    gw->addrs = res;
    gw->next_addr = res;
    if (gw__connect(gw) < 0) {
        uv_freeaddrinfo(gw->addrs);
        gw->addrs = NULL;
        gw__connect_fail(gw, "connect failed");
    }
}

/* With addresses in hand, try the next; without, resolve the target first. */
static int gw__connect(struct discord_gateway *gw)
{
    if (gw->next_addr != NULL)
        return gw__connect_addr(gw);
    const char *url = gw->url;
    if (discord_session_resumable(&gw->session) && gw->session.resume_url[0] != '\0')
        url = gw->session.resume_url;
    if (gw__parse_url(gw, url) < 0) {
        log_warn("discord.gateway.url", "shard=%u error=%s", gw->shard_id, "bad gateway URL");
        if (url == gw->url)
            return HB_EINVAL;
        /* A resume URL we cannot use: go to the main one. */
        if (gw__parse_url(gw, gw->url) < 0)
            return HB_EINVAL;
    }
    char port[8];
    snprintf(port, sizeof(port), "%d", gw->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gw->gai.data = gw;
    int rc = uv_getaddrinfo(gw->loop, &gw->gai, gw__resolved, gw->host, port, &hints);
    if (rc < 0)
        return rc;
    gw->resolving = true;
    return 0;
}

/* ---- timers ------------------------------------------------------------- */

static void gw__heartbeat_tick(uv_timer_t *t)
{
    struct discord_gateway *gw = GW_OWNER(t, heartbeat_timer);
    if (!gw->conn_open)
        return;
    if (discord_session_heartbeat_due(&gw->session, uv_now(gw->loop)) == DISCORD_ACT_RECONNECT) {
        log_warn("discord.gateway.zombie", "shard=%u error=%s", gw->shard_id,
                 "no heartbeat ACK since the last heartbeat");
        gw__drop(gw, GW_WHY_ZOMBIE, DISCORD_CLOSE_RESUMABLE, 0);
        return;
    }
    gw__send_heartbeat(gw);
}

static void gw__retry_tick(uv_timer_t *t)
{
    struct discord_gateway *gw = GW_OWNER(t, retry_timer);
    enum gw_retry what = gw->retry_what;
    gw->retry_what = GW_RETRY_NONE;
    if (gw->stopping)
        return;
    if (what == GW_RETRY_IDENTIFY) {
        if (gw->conn_open && gw->close_code == 0)
            gw__identify(gw);
        return;
    }
    if (what == GW_RETRY_CONNECT && !gw->conn_live && !gw->resolving) {
        int rc = gw__connect(gw);
        if (rc < 0)
            gw__connect_fail(gw, hb_strerror(rc));
    }
}

static void gw__send_tick(uv_timer_t *t)
{
    struct discord_gateway *gw = GW_OWNER(t, send_timer);
    gw__want_write(gw);
}

/* ---- lifecycle ---------------------------------------------------------- */

static char *gw__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void gw__free(struct discord_gateway *gw)
{
    gw__queue_clear(&gw->ctl);
    gw__queue_clear(&gw->user);
    if (gw->events != NULL) {
        for (size_t i = 0; i < gw->nevents; i++)
            free(gw->events[i]);
        free(gw->events);
    }
    if (gw->token != NULL) {
        explicit_bzero(gw->token, strlen(gw->token));
        free(gw->token);
    }
    free(gw->url);
    free(gw);
}

struct discord_gateway *discord_gateway_new(struct discord_ws *ws,
                                            const struct discord_gateway_options *opt)
{
    if (ws == NULL || opt == NULL || opt->url == NULL || opt->token == NULL ||
        opt->token[0] == '\0')
        return NULL;
    unsigned count = opt->shard_count == 0 ? 1 : opt->shard_count;
    if (opt->shard_id >= count)
        return NULL;
    struct discord_gateway *gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return NULL;
    gw->ws = ws;
    gw->loop = ws->loop;
    gw->url = gw__strdup(opt->url);
    gw->token = gw__strdup(opt->token);
    if (gw->url == NULL || gw->token == NULL)
        goto fail;
    log_secret_add(opt->token);
    if (opt->events != NULL) {
        while (opt->events[gw->nevents] != NULL)
            gw->nevents++;
        gw->events = calloc(gw->nevents + 1, sizeof(*gw->events));
        if (gw->events == NULL)
            goto fail;
        for (size_t i = 0; i < gw->nevents; i++) {
            gw->events[i] = gw__strdup(opt->events[i]);
            if (gw->events[i] == NULL)
                goto fail;
        }
    }
    gw->intents = opt->intents;
    gw->shard_id = opt->shard_id;
    gw->shard_count = count;
    gw->max_payload = opt->max_payload != 0 ? opt->max_payload : GW_MAX_PAYLOAD_DEFAULT;
    discord_identify_gate_init(&gw->own_gate, 1);
    gw->gate = opt->gate != NULL ? opt->gate : &gw->own_gate;
    gw->on_event = opt->on_event;
    gw->on_state = opt->on_state;
    gw->data = opt->data;
    gw->jitter = opt->jitter;
    gw->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)gw << 16) ^ 0x9e3779b97f4a7c15ULL;
    if (gw->rng == 0)
        gw->rng = 1;
    discord_session_init(&gw->session);
    discord_send_limit_init(&gw->limit);
    uv_timer_init(gw->loop, &gw->heartbeat_timer);
    uv_timer_init(gw->loop, &gw->retry_timer);
    uv_timer_init(gw->loop, &gw->send_timer);
    gw->handles_open = 3;
    return gw;
fail:
    gw__free(gw);
    return NULL;
}

int discord_gateway_start(struct discord_gateway *gw)
{
    if (gw->state != DISCORD_GW_IDLE || gw->stopping)
        return HB_ESTATE;
    gw__set_state(gw, DISCORD_GW_CONNECTING, 0);
    int rc = gw__connect(gw);
    if (rc < 0)
        gw__set_state(gw, DISCORD_GW_IDLE, 0);
    return rc;
}

int discord_gateway_send(struct discord_gateway *gw, const char *json)
{
    if (gw->stopping || gw->state == DISCORD_GW_STOPPED)
        return HB_ESTATE;
    if (gw->user.len >= GW_USER_QUEUE_MAX)
        return HB_EBUSY;
    struct gw_send *s = gw__send_new(json, strlen(json), false, false);
    if (s == NULL)
        return HB_ENOMEM;
    gw__queue_push(&gw->user, s, false);
    if (gw->state == DISCORD_GW_IDENTIFIED)
        gw__want_write(gw);
    return 0;
}

static void gw__handle_closed(uv_handle_t *h)
{
    struct discord_gateway *gw = h->data;
    if (--gw->handles_open > 0)
        return;
    if (gw->stop_cb != NULL)
        gw->stop_cb(gw, gw->stop_data);
    gw__free(gw);
}

static void gw__finish_stop(struct discord_gateway *gw)
{
    gw->state = DISCORD_GW_STOPPED;
    gw->heartbeat_timer.data = gw;
    gw->retry_timer.data = gw;
    gw->send_timer.data = gw;
    uv_close((uv_handle_t *)&gw->heartbeat_timer, gw__handle_closed);
    uv_close((uv_handle_t *)&gw->retry_timer, gw__handle_closed);
    uv_close((uv_handle_t *)&gw->send_timer, gw__handle_closed);
}

void discord_gateway_stop(struct discord_gateway *gw, discord_gateway_stop_cb cb, void *data)
{
    if (gw == NULL || gw->stopping)
        return;
    gw->stopping = true;
    gw->stop_cb = cb;
    gw->stop_data = data;
    uv_timer_stop(&gw->heartbeat_timer);
    uv_timer_stop(&gw->retry_timer);
    uv_timer_stop(&gw->send_timer);
    gw->retry_what = GW_RETRY_NONE;
    log_info("discord.gateway.stop", "shard=%u", gw->shard_id);
    if (gw->conn_live) {
        /* 1000 ends the session on Discord's side, as a stop should. */
        gw->close_code = 0;
        gw__drop(gw, GW_WHY_STOP, LWS_CLOSE_STATUS_NORMAL, 0);
        return;
    }
    if (gw->resolving) {
        uv_cancel((uv_req_t *)&gw->gai);
        return;
    }
    gw__finish_stop(gw);
}

void discord_gateway_status(const struct discord_gateway *gw, struct discord_gateway_status *out)
{
    *out = gw->st;
    out->state = gw->state;
    out->seq = gw->session.seq;
    out->latency_ms = gw->session.latency_ms;
    out->send_queue = gw->ctl.len + gw->user.len;
}

unsigned discord_gateway_shard(const struct discord_gateway *gw)
{
    return gw->shard_id;
}
