/* One Discord gateway shard: the protocol state machine. HELLO starts the
 * heartbeat, IDENTIFY (through the shared identify gate) or RESUME follows,
 * dispatches are filtered and handed to the caller, and every closed
 * connection is turned into a reconnect, a resume or a stop. The websocket
 * glue (the lws context and callback, the send queues, connecting) is in
 * gateway_conn.c. */
#include "adapters/discord/gateway.h"

#include "adapters/discord/gateway_internal.h"
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

#define GW_MAX_PAYLOAD_DEFAULT (16u << 20)
#define GW_USER_QUEUE_MAX 1000
#define GW_TYPE_MAX 64

static void gw__heartbeat_tick(uv_timer_t *t);
static void gw__retry_tick(uv_timer_t *t);

const char *discord_gateway_state_name(enum discord_gateway_state state)
{
    switch (state) {
    case DISCORD_GW_IDLE:
        return "idle";
    case DISCORD_GW_CONNECTING:
        return "connecting";
    case DISCORD_GW_CONNECTED:
        return "connected";
    case DISCORD_GW_IDENTIFIED:
        return "identified";
    case DISCORD_GW_RESUMING:
        return "resuming";
    case DISCORD_GW_STOPPED:
        return "stopped";
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

void gw__set_state(struct discord_gateway *gw, enum discord_gateway_state state, int code)
{
    if (gw->state == state)
        return;
    gw->state = state;
    if (gw->on_state != NULL)
        gw->on_state(gw, state, code, gw->data);
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

void gw__conn_end(struct discord_gateway *gw, const char *error)
{
    /* What the connection received before its end is taken in first, as
     * it would have been had it been inflated as it came. */
    ginflate_drain(gw->gx);
    ginflate_free(gw->gx);
    gw->gx = NULL;
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
             gw->close_why == GW_WHY_ZOMBIE   ? "no heartbeat ack"
             : gw->close_why == GW_WHY_OP7    ? "reconnect requested"
             : gw->close_why == GW_WHY_OP9    ? "invalid session"
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
    if ((len == 5 && memcmp(type, "READY", 5) == 0) ||
        (len == 7 && memcmp(type, "RESUMED", 7) == 0))
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
    discord_session_dispatch(&gw->session, seq, "READY",
                             cJSON_IsString(sid) ? sid->valuestring : NULL,
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

void gw__payload(struct discord_gateway *gw, const char *json, size_t len)
{
    struct discord_payload p;
    if (discord_payload_scan(json, len, gw__want_scan, gw, &p) < 0) {
        /* Every payload comes out of the connection's one zlib stream:
         * one that does not scan means the stream went out of step, and
         * what follows cannot be trusted either. Resume now, not when a
         * heartbeat goes unanswered. */
        log_warn("discord.gateway.bad_payload", "shard=%u bytes=%zu action=resume", gw->shard_id,
                 len);
        gw__drop(gw, GW_WHY_STREAM, DISCORD_CLOSE_RESUMABLE, 0);
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
    gw->compress = opt->compress;
    gw->inflate_inline = opt->inflate_inline;
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

void gw__finish_stop(struct discord_gateway *gw)
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
