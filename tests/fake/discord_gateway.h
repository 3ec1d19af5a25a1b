/* A fake Discord gateway for tests and benchmarks.
 *
 * A libwebsockets server on 127.0.0.1 (an ephemeral port) speaking the
 * gateway protocol with the transport compression the client's URL asks
 * for: zlib-stream (one deflate stream per connection, a sync flush per
 * payload) or zstd-stream (one zstd stream per connection, flushed after
 * each payload, at zstd's default level): HELLO on connect, READY for
 * IDENTIFY (with resume_gateway_url pointing back here), the events missed
 * since the given seq and then RESUMED for RESUME, an ACK per heartbeat.
 *
 * Runs either on the caller's loop (fake_gateway_new; tests) or on a loop
 * of its own in its own thread (fake_gateway_start_thread; benchmarks).
 * The script calls may come from any thread: they queue a command that
 * runs on the fake's loop, in call order, against the newest connection
 * (or the next one, when none is open). */
#ifndef HB_TEST_FAKE_DISCORD_GATEWAY_H
#define HB_TEST_FAKE_DISCORD_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fake_gateway;

/* What the fake saw the client do, for tests that wait on it. */
enum fake_gateway_seen {
    FAKE_SEEN_CONNECT, /* a websocket opened */
    FAKE_SEEN_IDENTIFY,
    FAKE_SEEN_RESUME,
    FAKE_SEEN_HEARTBEAT,
    FAKE_SEEN_CLOSE, /* the client sent a close frame (code in the stats) */
    FAKE_SEEN_GONE,  /* a connection ended */
};

/* What the fake sends, whatever the client's URL asks for: a gateway or a
 * proxy that ignores compress. */
enum fake_gateway_send {
    FAKE_SEND_ASKED = 0, /* the transport the URL's compress names */
    FAKE_SEND_ZLIB,
    FAKE_SEND_ZSTD,
    FAKE_SEND_TEXT, /* uncompressed JSON in text messages (no floods) */
};

struct fake_gateway_options {
    uint32_t heartbeat_ms; /* interval in HELLO; 0: 200 */
    int level;             /* deflate level; 0: 6 (zstd: its default) */
    enum fake_gateway_send send;
    /* Called on the fake's loop; may be NULL. */
    void (*on_seen)(struct fake_gateway *f, enum fake_gateway_seen what, void *data);
    void *data;
};

struct fake_gateway_stats {
    unsigned connections;
    unsigned identifies;
    unsigned resumes;
    unsigned heartbeats;
    unsigned acks;              /* heartbeat ACKs sent */
    unsigned other_ops;         /* payloads with other ops (presence, ...) */
    unsigned client_closes;     /* close frames from the client */
    int last_client_close;      /* code of the last one */
    int64_t last_heartbeat_seq; /* -1 for null */
    char last_resume_session[64];
    int64_t last_resume_seq;
    char session_id[64]; /* the current session, "" when none */
    int64_t seq;         /* the current session's last seq */
    uint32_t identify_intents;
    int identify_shard[2];
    char identify_token[128];
    char query[128];    /* query string of the last connection */
    char host[128];     /* Host header of the last connection */
    size_t events_sent; /* dispatches written, replays included */
    /* CLOCK_MONOTONIC seconds at which the last flood's cycle was
     * compressed and its first frame was about to go out: a bench's clock
     * starts here, not at the command, so that the fake's one-time
     * preparation is not counted as the client's time. 0 before any. */
    double flood_ready_at;
};

/** A fake listening on 127.0.0.1 on `loop` (borrowed). NULL on failure. */
struct fake_gateway *fake_gateway_new(uv_loop_t *loop, const struct fake_gateway_options *opt);

/** The same, on a loop and thread of its own. Free with fake_gateway_free(). */
struct fake_gateway *fake_gateway_start_thread(const struct fake_gateway_options *opt);

/** "ws://127.0.0.1:PORT" (valid as long as the fake). */
const char *fake_gateway_url(const struct fake_gateway *f);
int fake_gateway_port(const struct fake_gateway *f);

/** Loop mode: begin shutting down, on the loop (uv_run can then return). */
void fake_gateway_close(struct fake_gateway *f);

/** Loop mode: finish after uv_run returned. Thread mode: stop the thread and
 *  free everything. */
void fake_gateway_free(struct fake_gateway *f);

void fake_gateway_stats(struct fake_gateway *f, struct fake_gateway_stats *out);

/* ---- script ------------------------------------------------------------- */

/** A dispatch with the next seq; d_json is the raw "d" (copied). */
void fake_gateway_dispatch(struct fake_gateway *f, const char *type, const char *d_json);

/** A dispatch the client misses: it takes the next seq and is kept for a
 *  resume, but is not sent on this connection. */
void fake_gateway_dispatch_missed(struct fake_gateway *f, const char *type, const char *d_json);

/** `count` dispatches of `type`, each "d" about d_bytes of realistic JSON
 *  (MESSAGE_CREATE-like; GUILD_CREATE carries a channel list). */
void fake_gateway_burst(struct fake_gateway *f, const char *type, size_t count, size_t d_bytes);

/** Benchmarks: like a burst, but a cycle of payloads is compressed once and
 *  sent again and again (seq numbers repeat every cycle; flood events are
 *  not kept for resumes). */
void fake_gateway_flood(struct fake_gateway *f, const char *type, size_t count, size_t d_bytes);

/** Stop (or restart) answering heartbeats on the current connection. */
void fake_gateway_drop_acks(struct fake_gateway *f, bool drop);

void fake_gateway_reconnect(struct fake_gateway *f);                       /* op 7 */
void fake_gateway_invalid_session(struct fake_gateway *f, bool resumable); /* op 9 */
void fake_gateway_heartbeat_request(struct fake_gateway *f);               /* op 1 */

/** Close the current connection with `code`. */
void fake_gateway_kick(struct fake_gateway *f, int code);

/** Send arbitrary text as one payload through zlib (malformed JSON...). */
void fake_gateway_send_text(struct fake_gateway *f, const char *text);

/** Send a frame that breaks the zlib stream. */
void fake_gateway_send_corrupt(struct fake_gateway *f);

#endif
