/* The Discord gateway connection: one websocket per shard, on the caller's
 * libuv loop.
 *
 * A `struct discord_ws` owns one libwebsockets context on the loop; every
 * shard's `struct discord_gateway` borrows it. The gateway follows the
 * rules in session.h (heartbeats, zombie detection, resume, op 7 and op 9,
 * close codes), inflates zlib-stream with zstream.h, paces its sends (120
 * per minute, heartbeats never starved) and IDENTIFYs through an identify
 * gate that the shards share.
 *
 * Names are resolved with uv_getaddrinfo before each connect (libwebsockets
 * would block the loop on getaddrinfo); the socket goes to the address
 * while Host and the TLS server name stay the URL's host, so certificate
 * checks still see the real name.
 *
 * Shutting down, in this order: discord_gateway_stop() on every shard; in
 * the last stop callback (or later, still on the loop)
 * discord_ws_stop(); once uv_run() has returned, discord_ws_free(). Then
 * uv_loop_close() returns 0. */
#ifndef HB_DISCORD_GATEWAY_H
#define HB_DISCORD_GATEWAY_H

#include "adapters/discord/session.h"
#include "adapters/discord/zstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct discord_ws;
struct discord_gateway;

/* ---- the shared websocket context --------------------------------------- */

/** Create the libwebsockets context on `loop` (borrowed; it must outlive the
 *  context). Returns NULL on failure (logged). */
struct discord_ws *discord_ws_new(uv_loop_t *loop);

/** Begin destroying the context, from inside the loop, after every gateway
 *  on it has stopped. uv_run() can then return. */
void discord_ws_stop(struct discord_ws *ws);

/** Finish destroying the context and free it, after uv_run() returned.
 *  Calls discord_ws_stop() first if it was not called. NULL is allowed. */
void discord_ws_free(struct discord_ws *ws);

/* ---- one shard's connection --------------------------------------------- */

enum discord_gateway_state {
    DISCORD_GW_IDLE = 0,   /* created, not started */
    DISCORD_GW_CONNECTING, /* resolving, connecting, or waiting to identify */
    DISCORD_GW_CONNECTED,  /* websocket open, HELLO not yet answered by READY */
    DISCORD_GW_IDENTIFIED, /* READY or RESUMED seen: events flow */
    DISCORD_GW_RESUMING,   /* reconnecting to resume the session */
    DISCORD_GW_STOPPED,    /* stopped for good (close code 4004, 4010-4014, or stop) */
};

/** A dispatch (op 0) the caller asked for. `type` is the event name ("MESSAGE_CREATE"),
 *  `d` the raw JSON of the payload's "d" (NUL-terminated, d_len bytes); both
 *  are valid only during the call. The JSON inside `d` is not validated:
 *  parse it and skip it when it does not parse. */
typedef void (*discord_gateway_event_cb)(struct discord_gateway *gw, const char *type, int64_t seq,
                                         const char *d, size_t d_len, void *data);

/** The connection changed state; for DISCORD_GW_STOPPED, close_code says why
 *  (0 after discord_gateway_stop()). */
typedef void (*discord_gateway_state_cb)(struct discord_gateway *gw,
                                         enum discord_gateway_state state, int close_code,
                                         void *data);

typedef void (*discord_gateway_stop_cb)(struct discord_gateway *gw, void *data);

struct discord_gateway_options {
    const char *url;   /* "wss://gateway.discord.gg"; "ws://127.0.0.1:PORT" in tests */
    const char *token; /* bot token (copied; registered as a log secret) */
    uint32_t intents;  /* gateway intents bit set */
    unsigned shard_id;
    unsigned shard_count;           /* 0 means 1 */
    const char *const *events;      /* dispatch types to deliver, NULL-terminated; NULL: all */
    size_t max_payload;             /* largest decompressed payload in bytes; 0: 16 MiB */
    enum discord_compress compress; /* transport compression (zstream.h); 0: zlib-stream */
    bool inflate_inline; /* benchmarks: inflate on the loop, not a thread of its own (ginflate.h) */
    struct discord_identify_gate
        *gate; /* shared by the shards (borrowed); NULL: own, concurrency 1 */
    discord_gateway_event_cb on_event;
    discord_gateway_state_cb on_state; /* may be NULL */
    void *data;                        /* passed to the callbacks */
    double (*jitter)(
        void *data); /* random in [0,1) for heartbeat and backoff jitter; NULL: internal */
};

/** Status for health checks: a snapshot the caller may keep. */
struct discord_gateway_status {
    enum discord_gateway_state state;
    uint32_t latency_ms; /* last heartbeat round trip */
    unsigned connects;   /* websocket connections opened */
    unsigned reconnects; /* connections lost or dropped that were followed by another */
    unsigned identifies; /* IDENTIFY sent */
    unsigned resumes;    /* RESUMED received */
    int64_t seq;         /* last sequence number */
    int last_close_code; /* the last close code seen or sent (0: none or dropped) */
    size_t send_queue;   /* sends waiting for the rate limit */
};

/** Create a shard's connection on the context (borrowed). Options are
 *  copied (the events list too; the gate is borrowed). Returns NULL on bad
 *  options or no memory. */
struct discord_gateway *discord_gateway_new(struct discord_ws *ws,
                                            const struct discord_gateway_options *opt);

/** Connect, and keep connected until stopped. Returns 0 or a negative error. */
int discord_gateway_start(struct discord_gateway *gw);

/** Queue a payload (a whole JSON object, e.g. op 3 presence or op 8 request
 *  guild members); it goes out once the shard is identified, within the
 *  send limit. The text is copied. Returns 0, HB_ESTATE when stopped,
 *  HB_EBUSY when too many sends wait. */
int discord_gateway_send(struct discord_gateway *gw, const char *json);

/** Close with 1000 (the session ends), then free the gateway; cb (may be
 *  NULL) runs once everything is released, and gw is gone after it. */
void discord_gateway_stop(struct discord_gateway *gw, discord_gateway_stop_cb cb, void *data);

void discord_gateway_status(const struct discord_gateway *gw, struct discord_gateway_status *out);

/** The shard this connection serves. */
unsigned discord_gateway_shard(const struct discord_gateway *gw);

const char *discord_gateway_state_name(enum discord_gateway_state state);

#endif
