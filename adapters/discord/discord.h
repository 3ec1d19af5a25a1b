/* The Discord adapter: gateway shards, REST, application commands and
 * interactions, behind the one adapter interface (adapters/adapter.h).
 *
 * Starting: GET /gateway/bot gives the URL, the recommended shard count and
 * the identify concurrency; the adapter opens the configured shards (all,
 * or a range so several daemons can split one bot) on the shared
 * websocket context. In parallel it renders the command table into
 * application commands and bulk-overwrites them, unless their hash matches
 * the one stored after the last overwrite.
 *
 * Interactions: a slash command is dispatched at once; when the handler
 * answers during the dispatch the answer is the interaction callback
 * itself (type 4, or 7 for a button), otherwise the callback is deferred
 * (type 5, or 6 for a button) and later messages edit @original, at most
 * one edit per edit interval (progress in between is coalesced). Text over
 * 2,000 characters continues in follow-ups. An ephemeral first answer to a
 * deferred public reply deletes the placeholder and follows up
 * ephemerally. Autocomplete for an option named "model" lists the enabled
 * models. Mentions of the bot, replies to its messages and direct messages
 * are dispatched as "chat <text>" and answered in the channel.
 *
 * HTTP: with a public key set, the adapter serves Discord's interactions
 * endpoint (POST /interactions/discord, its routes operation): it checks
 * each request's Ed25519 signature, answers PING, and hands verified
 * interactions to the same path as the gateway's.
 *
 * Ownership: the loop, http client and store are borrowed and must outlive
 * the adapter; options are copied. The adapter makes the libwebsockets
 * context its shards share when it starts and lets go of it in two steps,
 * as libwebsockets on a foreign libuv loop needs: its close operation
 * begins destroying it inside the loop once the shards have stopped, and
 * its release operation, after uv_run() returned, finishes and frees the
 * adapter. */
#ifndef HB_DISCORD_H
#define HB_DISCORD_H

#include "adapters/adapter.h"
#include "adapters/discord/gateway.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct store;

#define DISCORD_INTENT_GUILDS (1u << 0)
#define DISCORD_INTENT_GUILD_MESSAGES (1u << 9)
#define DISCORD_INTENT_DIRECT_MESSAGES (1u << 12)
#define DISCORD_INTENT_MESSAGE_CONTENT (1u << 15)
#define DISCORD_INTENTS_DEFAULT                                                                    \
    (DISCORD_INTENT_GUILDS | DISCORD_INTENT_GUILD_MESSAGES | DISCORD_INTENT_DIRECT_MESSAGES)

/** Enabled model names for autocomplete: fill at most max borrowed names
 *  (valid during the call) and return how many. */
typedef size_t (*discord_models_fn)(void *data, const char **names, size_t max);

struct discord_options {
    const char *token; /* bot token (registered as a log secret) */
    const char *application_id;
    const char *api_base;    /* NULL: https://discord.com/api/v10 */
    const char *gateway_url; /* NULL: the one GET /gateway/bot gives */
    const char *guild_id;    /* register commands in this guild only; NULL or "": globally */
    uint32_t intents;        /* 0: DISCORD_INTENTS_DEFAULT */
    unsigned shards;         /* total shard count; 0: Discord's recommendation */
    int shard_first;         /* first shard this daemon runs */
    int shard_last;          /* last one; -1: the last of all */
    struct http_client *http;
    const char *public_key;   /* serve POST /interactions/discord, checking signatures with
                                 this key (64 hex digits); NULL or "": no endpoint */
    struct store *store;      /* remembers the commands' hash and keeps notices in the outbox
                                 until sent; NULL: always overwrite, notices not kept */
    discord_models_fn models; /* may be NULL: autocomplete answers an empty list */
    void *models_data;
    uint64_t edit_interval_ms;      /* least time between two edits of one message; 0: 1500 */
    uint32_t identify_spacing_ms;   /* between IDENTIFYs of one bucket; 0: 5000 (tests shorten) */
    unsigned global_per_s;          /* REST global limit; 0: 50 */
    unsigned rest_connections;      /* REST connections at most, a pool of the adapter's own;
                                       0: 8 */
    enum discord_compress compress; /* gateway transport compression; 0: zlib-stream */
    bool prefilter_off;             /* benchmarks: parse every MESSAGE_CREATE whole (as before
                                       the raw check), for the figure it replaces */
    bool inflate_inline;            /* benchmarks: inflate the gateway stream on the loop (as
                                       before ginflate.h), for the figure it replaces */
    double (*jitter)(void *data);   /* NULL: random */
    uint64_t notice_backoff_ms;     /* first wait before a failed notice is tried again, doubling
                                       for each of its DC_NOTICE_ATTEMPTS tries; 0: 1000 */
    struct core *core; /* borrowed: [limits] image_max_bytes of its catalog for attached
                          images; NULL: the default cap */
};

/** Counters, for health checks and tests. */
struct discord_adapter_stats {
    uint64_t interactions;    /* INTERACTION_CREATE handled (duplicates not counted) */
    uint64_t duplicates;      /* events seen twice and dropped */
    uint64_t acks;            /* interaction callbacks answered 2xx */
    uint64_t ack_failures;    /* callbacks that failed or were refused */
    uint64_t messages;        /* MESSAGE_CREATE dispatched as a conversation */
    uint64_t guilds_seen;     /* GUILD_CREATE and GUILD_UPDATE taken in */
    uint64_t message_creates; /* MESSAGE_CREATE received (for the bot or not) */
    uint64_t skipped;         /* MESSAGE_CREATE passed over unparsed: a guild message whose bytes
                                 name neither the bot nor a role it holds */
    uint64_t edits;           /* @original and channel message edits sent */
    uint64_t followups;       /* follow-up messages sent */
    unsigned commands_put;    /* application command overwrites done */
    bool commands_current;    /* the registered commands match the table */
    unsigned shards_open;     /* shards running in this daemon */
};

/** Make the adapter (not started). Returns NULL on bad options (logged) or
 *  no memory. */
struct adapter *discord_new(uv_loop_t *loop, const struct discord_options *opt,
                            const struct adapter_host *host);

/** Where the first response to an interaction received over HTTP goes:
 *  json is the interaction response (borrowed for the call), or NULL when
 *  the adapter does not answer the interaction (malformed, seen before, a
 *  type it does not handle, or the adapter is closing). */
typedef void (*discord_respond_fn)(void *data, const char *json, size_t len);

/** Handle one interaction as Discord posts it to an interactions endpoint
 *  (the signature already checked, PING already answered): the same path
 *  as INTERACTION_CREATE from the gateway, except that the first response
 *  (types 4 to 8) goes to respond instead of a REST callback. respond is
 *  called exactly once, before this returns; later messages (edits of
 *  @original, follow-ups) go through REST as usual. The HTTP answer is
 *  written after respond returns and nothing reports when Discord has it,
 *  so the first REST call of such an interaction is repeated once, half a
 *  second later, if Discord answers it 404. */
void discord_interaction_feed(struct adapter *a, const char *json, size_t len,
                              discord_respond_fn respond, void *data);

/** The counters of a Discord adapter. */
void discord_adapter_stats(const struct adapter *a, struct discord_adapter_stats *out);

/** The gateway state of this daemon's shard at index i (0 .. shards_open-1
 *  from the stats). Returns false when there is no such shard (any more). */
bool discord_adapter_shard(const struct adapter *a, size_t i, unsigned *shard_id,
                           struct discord_gateway_status *out);

/** Split text for Discord's 2,000-character messages: the byte length of
 *  the first piece (at most max characters, cut after a newline or space
 *  when one is near the end, never inside a UTF-8 sequence). */
size_t discord_text_cut(const char *text, size_t max_chars);

/** Split text into Discord messages of at most max_chars characters each
 *  (max_chars well above a fence line, e.g. 2000), keeping ``` code blocks
 *  whole: a block that would not fit in the rest of a message starts the
 *  next one, and a block longer than a message is closed at the cut and
 *  reopened, with its language, in the next. *out receives a heap array of
 *  heap strings (free each, then the array). Returns how many, or
 *  HB_ENOMEM. */
int discord_text_split(const char *text, size_t max_chars, char ***out);

/** Whether text (len bytes) ends inside a ``` block; lang (33 bytes, may be
 *  NULL) receives that block's language, or "". */
bool discord_fence_open(const char *text, size_t len, char lang[33]);

#endif
