#include "adapters/discord/session.h"

#include <stdio.h>
#include <string.h>

#define DISCORD_BACKOFF_BASE_MS 1000u
#define DISCORD_BACKOFF_MAX_MS 60000u

void discord_session_init(struct discord_session *s)
{
    memset(s, 0, sizeof(*s));
    s->seq = -1;
}

bool discord_session_resumable(const struct discord_session *s)
{
    return s->session_id[0] != '\0' && s->seq >= 0;
}

static void discord__forget(struct discord_session *s)
{
    s->session_id[0] = '\0';
    s->resume_url[0] = '\0';
    s->seq = -1;
}

enum discord_action discord_session_hello(struct discord_session *s, uint32_t interval_ms,
                                          double jitter, uint32_t *first_ms)
{
    if (jitter < 0 || jitter >= 1)
        jitter = 0;
    s->heartbeat_ms = interval_ms;
    s->ack_pending = false;
    s->identified = false;
    *first_ms = (uint32_t)((double)interval_ms * jitter);
    return discord_session_resumable(s) ? DISCORD_ACT_RESUME : DISCORD_ACT_IDENTIFY;
}

enum discord_action discord_session_heartbeat_due(struct discord_session *s, uint64_t now_ms)
{
    if (s->ack_pending)
        return DISCORD_ACT_RECONNECT;
    s->ack_pending = true;
    s->heartbeat_sent_ms = now_ms;
    return DISCORD_ACT_HEARTBEAT;
}

enum discord_action discord_session_heartbeat_asked(struct discord_session *s, uint64_t now_ms)
{
    /* An extra heartbeat does not reset the zombie check: the periodic one
     * still expects its ACK before the next tick. */
    if (!s->ack_pending)
        s->heartbeat_sent_ms = now_ms;
    s->ack_pending = true;
    return DISCORD_ACT_HEARTBEAT;
}

void discord_session_ack(struct discord_session *s, uint64_t now_ms)
{
    if (s->ack_pending && now_ms >= s->heartbeat_sent_ms)
        s->latency_ms = (uint32_t)(now_ms - s->heartbeat_sent_ms);
    s->ack_pending = false;
}

void discord_session_dispatch(struct discord_session *s, int64_t seq, const char *type,
                              const char *session_id, const char *resume_url)
{
    if (seq > s->seq)
        s->seq = seq;
    if (type == NULL)
        return;
    if (strcmp(type, "READY") == 0) {
        snprintf(s->session_id, sizeof(s->session_id), "%s", session_id != NULL ? session_id : "");
        snprintf(s->resume_url, sizeof(s->resume_url), "%s", resume_url != NULL ? resume_url : "");
        s->failures = 0;
        s->identified = true;
    } else if (strcmp(type, "RESUMED") == 0) {
        s->failures = 0;
        s->identified = true;
    }
}

enum discord_action discord_session_reconnect_asked(struct discord_session *s)
{
    (void)s;
    return DISCORD_ACT_RECONNECT;
}

enum discord_action discord_session_invalid(struct discord_session *s, bool resumable,
                                            double jitter, uint32_t *wait_ms)
{
    if (jitter < 0 || jitter >= 1)
        jitter = 0;
    if (resumable && discord_session_resumable(s)) {
        *wait_ms = 0;
        return DISCORD_ACT_RECONNECT;
    }
    discord__forget(s);
    *wait_ms = 1000u + (uint32_t)(4000.0 * jitter);
    return DISCORD_ACT_RECONNECT;
}

enum discord_action discord_session_closed(struct discord_session *s, int code, double jitter,
                                           uint32_t *wait_ms)
{
    if (jitter < 0 || jitter >= 1)
        jitter = 0;
    *wait_ms = 0;
    if (code == 4004 || (code >= 4010 && code <= 4014))
        return DISCORD_ACT_STOP;
    if (code == 4007 || code == 4009)
        discord__forget(s);
    /* Jittered exponential backoff: the first retry is quick, a flapping
     * connection waits up to a minute. */
    unsigned shift = s->failures < 6 ? s->failures : 6;
    uint32_t cap = DISCORD_BACKOFF_BASE_MS << shift;
    if (cap > DISCORD_BACKOFF_MAX_MS)
        cap = DISCORD_BACKOFF_MAX_MS;
    if (s->failures == 0 && s->identified)
        cap = DISCORD_BACKOFF_BASE_MS; /* a healthy session that dropped: retry soon */
    *wait_ms = (uint32_t)((double)cap * (0.5 + jitter / 2));
    s->failures++;
    s->identified = false;
    s->ack_pending = false;
    return DISCORD_ACT_RECONNECT;
}

const char *discord_close_reason(int code)
{
    switch (code) {
    case 0:
        return "connection lost";
    case 1000:
        return "normal close";
    case 1001:
        return "going away";
    case 4000:
        return "unknown error";
    case 4001:
        return "unknown opcode";
    case 4002:
        return "decode error";
    case 4003:
        return "not authenticated";
    case 4004:
        return "authentication failed: check the bot token";
    case 4005:
        return "already authenticated";
    case 4007:
        return "invalid sequence";
    case 4008:
        return "rate limited";
    case 4009:
        return "session timed out";
    case 4010:
        return "invalid shard: check the shard settings";
    case 4011:
        return "sharding required: set more shards";
    case 4012:
        return "invalid API version";
    case 4013:
        return "invalid intents";
    case 4014:
        return "disallowed intents: enable them in the developer portal or remove them";
    }
    return "unexpected close";
}

void discord_send_limit_init(struct discord_send_limit *l)
{
    memset(l, 0, sizeof(*l));
}

uint64_t discord_send_limit_take(struct discord_send_limit *l, uint64_t now_ms, bool heartbeat)
{
    /* Drop sends that left the window. */
    while (l->count > 0 && l->at[l->head] + DISCORD_SEND_WINDOW_MS <= now_ms) {
        l->head = (l->head + 1) % DISCORD_SEND_LIMIT;
        l->count--;
    }
    size_t limit =
        heartbeat ? DISCORD_SEND_LIMIT : DISCORD_SEND_LIMIT - DISCORD_SEND_HEARTBEAT_RESERVE;
    if (l->count >= limit) {
        /* Wait until enough old sends leave the window. */
        size_t idx = (l->head + (l->count - limit)) % DISCORD_SEND_LIMIT;
        uint64_t free_at = l->at[idx] + DISCORD_SEND_WINDOW_MS;
        return free_at > now_ms ? free_at - now_ms : 1;
    }
    l->at[(l->head + l->count) % DISCORD_SEND_LIMIT] = now_ms;
    l->count++;
    return 0;
}

void discord_identify_gate_init(struct discord_identify_gate *g, unsigned max_concurrency)
{
    memset(g, 0, sizeof(*g));
    if (max_concurrency == 0)
        max_concurrency = 1;
    if (max_concurrency > DISCORD_IDENTIFY_BUCKETS_MAX)
        max_concurrency = DISCORD_IDENTIFY_BUCKETS_MAX;
    g->max_concurrency = max_concurrency;
    g->spacing_ms = DISCORD_IDENTIFY_SPACING_MS;
}

uint64_t discord_identify_gate_take(struct discord_identify_gate *g, unsigned shard_id,
                                    uint64_t now_ms)
{
    unsigned bucket = shard_id % g->max_concurrency;
    if (g->next_ms[bucket] > now_ms)
        return g->next_ms[bucket] - now_ms;
    g->next_ms[bucket] = now_ms + g->spacing_ms;
    return 0;
}

unsigned discord_shard_for_guild(uint64_t guild_id, unsigned num_shards)
{
    if (num_shards == 0)
        return 0;
    return (unsigned)((guild_id >> 22) % num_shards);
}
