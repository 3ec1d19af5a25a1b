/* The Discord gateway's websocket glue: the libwebsockets context shared by
 * every shard, the per-connection callback, the queues of frames waiting to
 * be written under the send limit, and connecting (resolving, then trying
 * each address). The protocol itself is in gateway.c. */
#include "adapters/discord/gateway.h"

#include "adapters/discord/gateway_internal.h"
#include "base/error.h"
#include "base/log.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_QUERY "v=10&encoding=json&compress="
#define GW_CLOSE_GRACE_S 3 /* a close handshake that takes longer is cut */
/* lws 4.1 keeps the close opcode out of its public enum; the value is 4. */
#define LWS_WRITE_CLOSE_FRAME ((enum lws_write_protocol)4)

static void gw__send_tick(uv_timer_t *t);

/* ---- the shared context ------------------------------------------------- */

static int gw__lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len);

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
        log_error("discord.ws.create", "error=%s",
                  "libwebsockets context failed (libwebsockets-evlib-uv installed?)");
        free(ws);
        return NULL;
    }
    return ws;
}

void discord_ws_stop(struct discord_ws *ws)
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
    discord_ws_stop(ws);
    /* The second call, after uv_run() returned, frees what the first one
     * could not while the loop still held lws's handles. */
    lws_context_destroy(ws->ctx);
    free(ws);
}

/* ---- send queue --------------------------------------------------------- */

struct gw_send *gw__send_new(const char *json, size_t len, bool heartbeat, bool secret)
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

void gw__queue_push(struct gw_queue *q, struct gw_send *s, bool front)
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

void gw__queue_clear(struct gw_queue *q)
{
    struct gw_send *s;
    while ((s = gw__queue_pop(q)) != NULL)
        gw__send_free(s);
}

void gw__want_write(struct discord_gateway *gw)
{
    if (gw->wsi != NULL && gw->conn_open)
        lws_callback_on_writable(gw->wsi);
}

/* Queue a control payload for this connection. Heartbeats jump the queue. */
int gw__send_ctl(struct discord_gateway *gw, const char *json, bool heartbeat, bool secret)
{
    struct gw_send *s = gw__send_new(json, strlen(json), heartbeat, secret);
    if (s == NULL)
        return HB_ENOMEM;
    gw__queue_push(&gw->ctl, s, heartbeat);
    gw__want_write(gw);
    return 0;
}

/* ---- closing ------------------------------------------------------------ */

/* Decide to drop this connection; the close frame goes out from the
 * connection's next callback. */
void gw__drop(struct discord_gateway *gw, enum gw_why why, int code, uint32_t wait_ms)
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

/* ---- the connection ----------------------------------------------------- */

/* A payload (or a failure) of the connection's stream, in order. */
static void gw__inflated(void *data, const struct ginflated *r)
{
    struct discord_gateway *gw = data;
    if (gw->close_code != 0)
        return; /* leaving: nothing more is read */
    if ((r->switched || r->text) && !gw->transport_noted) {
        gw->transport_noted = true;
        log_warn("discord.gateway.transport", "shard=%u asked=%s got=%s", gw->shard_id,
                 discord_compress_name(gw->compress),
                 r->text ? "uncompressed" : discord_compress_name(r->kind));
    }
    if (r->rc == 1) {
        gw__payload(gw, r->json, r->len);
        return;
    }
    if (r->rc == HB_EOVERFLOW) {
        log_warn("discord.gateway.too_large", "shard=%u max_bytes=%zu", gw->shard_id,
                 gw->max_payload);
        return;
    }
    /* A broken zlib stream cannot be picked up again mid-way: a new
     * connection (resuming) starts a new one. */
    log_warn("discord.gateway.stream", "shard=%u error=%s", gw->shard_id, hb_strerror(r->rc));
    gw__drop(gw, GW_WHY_STREAM, DISCORD_CLOSE_RESUMABLE, 0);
}

/* Too much waits to be inflated: stop reading the socket until it is. */
static void gw__inflate_flow(void *data, bool pause)
{
    struct discord_gateway *gw = data;
    if (gw->wsi != NULL && gw->conn_open)
        lws_rx_flow_control(gw->wsi, pause ? 0 : 1);
}

static void gw__receive(struct discord_gateway *gw, struct lws *wsi, const void *in, size_t len)
{
    if (gw->close_code != 0 || gw->gx == NULL)
        return; /* leaving: nothing more is read */
    bool end = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    /* Text is JSON as it is: a gateway (or a proxy) that ignores compress. */
    int rc = ginflate_push(gw->gx, in, len, lws_frame_is_binary(wsi) != 0, end);
    if (rc < 0) {
        struct ginflated failed = {.rc = rc};
        gw__inflated(gw, &failed); /* the stream cannot go on */
    }
}

/* Send the close frame ourselves. lws 4.1 on libuv does not send the frame
 * set by lws_close_reason() when a WRITEABLE callback returns -1: it kills
 * the connection at once ("uv repeat"), and the peer never learns the
 * code. Returns what lws_write did. */
static int gw__close_frame(struct lws *wsi, int code)
{
    unsigned char frame[LWS_PRE + 2];
    frame[LWS_PRE] = (unsigned char)((code >> 8) & 0xff);
    frame[LWS_PRE + 1] = (unsigned char)(code & 0xff);
    return lws_write(wsi, frame + LWS_PRE, 2, LWS_WRITE_CLOSE_FRAME);
}

static int gw__writable(struct discord_gateway *gw, struct lws *wsi)
{
    if (gw->close_code != 0) {
        if (gw->close_sent)
            return 0;
        gw->close_sent = true;
        /* A zombie's socket is dropped at once: nobody answers there.
         * Otherwise the close handshake (RFC 6455 5.5.1): the server's
         * close frame in answer ends the connection, or the grace set by
         * gw__drop does. */
        if (gw__close_frame(wsi, gw->close_code) < 0 || gw->close_why == GW_WHY_ZOMBIE)
            return -1;
        return 0;
    }
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

static int gw__lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
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
        gw__set_state(
            gw, gw->state == DISCORD_GW_RESUMING ? DISCORD_GW_RESUMING : DISCORD_GW_CONNECTED, 0);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        gw = lws_get_opaque_user_data(wsi);
        if (gw == NULL)
            return -1;
        gw__receive(gw, wsi, in, len);
        if (gw->close_code != 0 && !gw->close_sent) {
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
    int n = snprintf(gw->path, sizeof(gw->path), "%s%.*s?%s%s", slash, (int)plen, p, GW_QUERY,
                     discord_compress_name(gw->compress));
    if (n < 0 || (size_t)n >= sizeof(gw->path))
        return HB_EINVAL;
    return 0;
}

void gw__connect_fail(struct discord_gateway *gw, const char *error)
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

    struct ginflate *gx = ginflate_new(gw->loop, gw->compress, gw->max_payload, gw->inflate_inline,
                                       gw__inflated, gw__inflate_flow, gw);
    if (gx == NULL)
        return HB_ENOMEM;
    gw->gx = gx;
    gw->transport_noted = false;
    discord_send_limit_init(&gw->limit);
    gw->peer_close_code = 0;
    gw->close_code = 0;
    gw->close_sent = false;
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
    } else if (gw->conn_live && gw->gx == gx) {
        /* It failed without a callback. (One that failed with a callback
         * may already have started the next address's connection: that
         * one stays.) */
        gw->conn_live = false;
        ginflate_free(gw->gx);
        gw->gx = NULL;
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
int gw__connect(struct discord_gateway *gw)
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

static void gw__send_tick(uv_timer_t *t)
{
    struct discord_gateway *gw = GW_OWNER(t, send_timer);
    gw__want_write(gw);
}
