/* The Discord gateway session rules, as a state machine with no I/O.
 *
 * The connection code feeds it what the gateway says (HELLO, dispatches,
 * heartbeat ACKs, op 7, op 9, close codes) and the timer ticks, and does
 * what it answers: send IDENTIFY, RESUME or a heartbeat, reconnect (and
 * then resume or identify anew), or stop the shard for good. Keeping the
 * rules here, apart from the sockets, lets tests walk every path. */
#ifndef HB_DISCORD_SESSION_H
#define HB_DISCORD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum discord_op {
    DISCORD_OP_DISPATCH = 0,
    DISCORD_OP_HEARTBEAT = 1,
    DISCORD_OP_IDENTIFY = 2,
    DISCORD_OP_PRESENCE = 3,
    DISCORD_OP_RESUME = 6,
    DISCORD_OP_RECONNECT = 7,
    DISCORD_OP_INVALID_SESSION = 9,
    DISCORD_OP_HELLO = 10,
    DISCORD_OP_HEARTBEAT_ACK = 11,
};

enum discord_action {
    DISCORD_ACT_NONE = 0,
    DISCORD_ACT_IDENTIFY,  /* send IDENTIFY (through the identify gate) */
    DISCORD_ACT_RESUME,    /* send RESUME with session id and seq */
    DISCORD_ACT_HEARTBEAT, /* send a heartbeat with the last seq now */
    DISCORD_ACT_RECONNECT, /* close (not 1000/1001) and connect again, resuming if possible */
    DISCORD_ACT_STOP,      /* the shard must not reconnect (bad token, shard, intents) */
};

/** Close code a client uses to drop a connection it wants to resume: any
 *  code other than 1000/1001 keeps the session alive on Discord's side. */
#define DISCORD_CLOSE_RESUMABLE 4900

struct discord_session {
    char session_id[128];
    char resume_url[512];       /* from READY; empty until then */
    int64_t seq;                /* last sequence number seen, -1 for none */
    uint32_t heartbeat_ms;      /* from HELLO */
    bool ack_pending;           /* a heartbeat went out and no ACK came yet */
    uint64_t heartbeat_sent_ms; /* when the last heartbeat went out */
    uint32_t latency_ms;        /* heartbeat round trip */
    unsigned failures;          /* connection attempts since the last READY/RESUMED */
    bool identified;            /* READY or RESUMED seen on this connection */
};

/** A fresh session (no id, seq -1). */
void discord_session_init(struct discord_session *s);

/** HELLO: remember the interval; *first_ms is the delay before the first
 *  heartbeat (interval x jitter, jitter in [0,1)). Answers RESUME when the
 *  session can be resumed, else IDENTIFY. */
enum discord_action discord_session_hello(struct discord_session *s, uint32_t interval_ms,
                                          double jitter, uint32_t *first_ms);

/** The heartbeat timer fired. A heartbeat whose ACK never came means a zombie
 *  connection: RECONNECT (and resume). Otherwise HEARTBEAT. */
enum discord_action discord_session_heartbeat_due(struct discord_session *s, uint64_t now_ms);

/** The server asked for a heartbeat (op 1): HEARTBEAT at once. */
enum discord_action discord_session_heartbeat_asked(struct discord_session *s, uint64_t now_ms);

/** HEARTBEAT_ACK (op 11). */
void discord_session_ack(struct discord_session *s, uint64_t now_ms);

/** A dispatch (op 0) with its sequence number (<0 when absent). READY gives
 *  session_id and resume_gateway_url; READY and RESUMED reset the failure
 *  count. type, session_id and resume_url may be NULL. */
void discord_session_dispatch(struct discord_session *s, int64_t seq, const char *type,
                              const char *session_id, const char *resume_url);

/** RECONNECT (op 7): RECONNECT and resume. */
enum discord_action discord_session_reconnect_asked(struct discord_session *s);

/** INVALID_SESSION (op 9) with its `d`: when resumable, RECONNECT and
 *  resume; otherwise the session is forgotten and the answer is RECONNECT to
 *  identify anew after *wait_ms (a random 1-5 s from jitter in [0,1)). */
enum discord_action discord_session_invalid(struct discord_session *s, bool resumable,
                                            double jitter, uint32_t *wait_ms);

/** The connection closed with `code` (0 when it dropped without a close
 *  frame). 4004 and 4010-4014 answer STOP. 4007 and 4009 forget the session.
 *  Anything else answers RECONNECT after *wait_ms of jittered exponential
 *  backoff (jitter in [0,1)). */
enum discord_action discord_session_closed(struct discord_session *s, int code, double jitter,
                                           uint32_t *wait_ms);

/** Can the next connection resume (an id and a sequence number are known)? */
bool discord_session_resumable(const struct discord_session *s);

/** A short reason for a close code, for logs ("authentication failed"). */
const char *discord_close_reason(int code);

/* ---- send pacing -------------------------------------------------------- */

#define DISCORD_SEND_LIMIT 120 /* gateway sends per window, per connection */
#define DISCORD_SEND_WINDOW_MS 60000
#define DISCORD_SEND_HEARTBEAT_RESERVE 4 /* sends kept back for heartbeats */

/** A sliding window of the last DISCORD_SEND_LIMIT send times. */
struct discord_send_limit {
    uint64_t at[DISCORD_SEND_LIMIT];
    size_t head; /* index of the oldest entry */
    size_t count;
};

void discord_send_limit_init(struct discord_send_limit *l);

/** May a send go out now? Heartbeats may use the reserve the others may not,
 *  so they are never starved. Returns 0 and records the send, or the number
 *  of milliseconds to wait. */
uint64_t discord_send_limit_take(struct discord_send_limit *l, uint64_t now_ms, bool heartbeat);

/* ---- identify pacing ---------------------------------------------------- */

#define DISCORD_IDENTIFY_SPACING_MS 5000
#define DISCORD_IDENTIFY_BUCKETS_MAX 64

/** One IDENTIFY per rate-limit bucket per 5 s; a shard's bucket is
 *  shard_id % max_concurrency. */
struct discord_identify_gate {
    unsigned max_concurrency;
    uint32_t spacing_ms; /* time between two IDENTIFYs of one bucket (5000; tests shorten it) */
    uint64_t next_ms[DISCORD_IDENTIFY_BUCKETS_MAX];
};

void discord_identify_gate_init(struct discord_identify_gate *g, unsigned max_concurrency);

/** May shard `shard_id` identify now? Returns 0 and books the slot, or the
 *  number of milliseconds to wait. */
uint64_t discord_identify_gate_take(struct discord_identify_gate *g, unsigned shard_id,
                                    uint64_t now_ms);

/** The shard that receives a guild's events: (guild_id >> 22) % num_shards. */
unsigned discord_shard_for_guild(uint64_t guild_id, unsigned num_shards);

#endif
