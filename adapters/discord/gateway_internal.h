/* What the Discord gateway's own files share: the shard's struct, its send
 * queues, and the calls between the protocol (gateway.c) and the websocket
 * glue (gateway_conn.c). Private to adapters/discord/gateway*.c;
 * gateway.h is the public API. */
#ifndef HB_GATEWAY_INTERNAL_H
#define HB_GATEWAY_INTERNAL_H

#include "adapters/discord/gateway.h"
#include "adapters/discord/session.h"
#include "adapters/discord/ginflate.h"
#include "base/util.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct discord_ws {
    uv_loop_t *loop;
    struct lws_context *ctx;
    int destroy_calls; /* lws_context_destroy() runs twice: on the loop, then after it */
};

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
    enum discord_compress compress;
    bool inflate_inline; /* benchmarks: inflate on the loop (ginflate.h) */
    struct discord_identify_gate own_gate;
    struct discord_identify_gate *gate;
    discord_gateway_event_cb on_event;
    discord_gateway_state_cb on_state;
    void *data;
    double (*jitter)(void *data);
    uint64_t rng;

    struct discord_session session;
    struct discord_send_limit limit;
    struct ginflate *gx;  /* the current connection's stream */
    bool transport_noted; /* its transport, when not the one asked, was logged */
    enum discord_gateway_state state;
    struct discord_gateway_status st;

    /* the current connection */
    struct lws *wsi;     /* NULL until the connect call returned */
    bool conn_live;      /* a connection exists (connecting or open) */
    bool conn_open;      /* the websocket handshake completed */
    int peer_close_code; /* from the server's close frame, 0 without one */
    int close_code;      /* the code we close with; 0 while not closing */
    enum gw_why close_why;
    bool close_sent;        /* our close frame went out: the server's answer ends it */
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

#define GW_OWNER(ptr, field) container_of(ptr, struct discord_gateway, field)

/* ---- the protocol (gateway.c) ---- */

/* Enter state and tell the caller; nothing when already there. */
void gw__set_state(struct discord_gateway *gw, enum discord_gateway_state state, int code);
/* The connection is gone (error: why it failed, or NULL): reconnect, resume
 * or stop. */
void gw__conn_end(struct discord_gateway *gw, const char *error);
/* Close the shard's timers; the stop callback runs when the last one is
 * closed. */
void gw__finish_stop(struct discord_gateway *gw);
/* One complete payload received. */
void gw__payload(struct discord_gateway *gw, const char *json, size_t len);

/* ---- the websocket glue (gateway_conn.c) ---- */

struct gw_send *gw__send_new(const char *json, size_t len, bool heartbeat, bool secret);
/* Append s to q, or put it first (heartbeats). */
void gw__queue_push(struct gw_queue *q, struct gw_send *s, bool front);
void gw__queue_clear(struct gw_queue *q);
/* Ask for a writable callback while the connection is open. */
void gw__want_write(struct discord_gateway *gw);
/* Queue a control payload for this connection. Heartbeats jump the queue. */
int gw__send_ctl(struct discord_gateway *gw, const char *json, bool heartbeat, bool secret);
/* Decide to drop this connection; the close frame goes out from the
 * connection's next callback. */
void gw__drop(struct discord_gateway *gw, enum gw_why why, int code, uint32_t wait_ms);
/* Start a connection: resolve the host, or try its next address. */
int gw__connect(struct discord_gateway *gw);
/* A connection could not be started: end it as if it had failed. */
void gw__connect_fail(struct discord_gateway *gw, const char *error);

#endif
