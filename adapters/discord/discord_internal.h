/* What the Discord adapter's own files share: its limits, the state of
 * one adapter and of one reply, and the helpers they call across files.
 * Nothing outside adapters/discord/ includes this. */
#ifndef HB_DISCORD_INTERNAL_H
#define HB_DISCORD_INTERNAL_H

#include "adapters/discord/discord.h"
#include "adapters/discord/gateway.h"
#include "adapters/discord/rest.h"
#include "core/command.h"
#include "core/outbox.h"
#include "base/util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct discord_rest_result;

#define DC_TEXT_MAX 2000 /* characters in one Discord message */
/* The outbox rows of this adapter (core/outbox.h): its channel when it is
 * alone on its ledger; with other daemons, each run's are "discord/<run
 * id>" (discord_notice.c). */
#define DC_OUTBOX_CHANNEL "discord"
#define DC_OUTBOX_REPLAY_MAX 1000 /* rows sent again at start; more wait for the next */
#define DC_NOTICE_ATTEMPTS 5      /* tries of a notice before it is kept as undeliverable */
#define DC_NOTICE_BUTTONS_MAX 25  /* buttons under a notice: Discord's five rows of five */
#define DC_FENCE_ROOM 40          /* characters kept for reopening and closing a code block */
#define DC_RECENT 1024            /* event ids remembered against replays */
#define DC_MAX_SHARDS 4096
#define DC_BUTTONS_PER_ROW 5
#define DC_ROWS_MAX 5
#define DC_AUTOCOMPLETE_MAX 25
#define DC_RETRY_MIN_MS 1000
#define DC_RETRY_MAX_MS 60000
#define DC_FLAG_EPHEMERAL 64
#define DC_PERSONAL_HOLD_MS                                                                        \
    1000 /* a personal command's acknowledgement waits this long for its answer, so the answer     \
            can be the one ephemeral callback (Discord allows 3 s in all) */
#define DC_IMAGE_OPTION "image" /* /chat's attachment option (Discord only) */
#define DC_HTTP_RETRY_MS                                                                           \
    500 /* wait before repeating a REST call refused 404 after an HTTP answer */

enum dc_kind {
    DC_KIND_COMMAND,   /* a slash command: @original is the deferred or answered reply */
    DC_KIND_COMPONENT, /* a button press: @original is the message the button is on */
    DC_KIND_MESSAGE,   /* a mention or reply in a channel: answered with channel messages */
};

enum dc_op_kind {
    DC_OP_CALLBACK, /* POST /interactions/{id}/{token}/callback */
    DC_OP_EDIT,     /* PATCH @original, or the bot's channel message */
    DC_OP_FOLLOWUP, /* POST /webhooks/{app}/{token}, or a channel message */
    DC_OP_DELETE,   /* DELETE @original */
};

struct dc_op {
    struct dc_op *next;
    enum dc_op_kind kind;
    bool progress; /* an edit a later one may replace */
    char *json;
    unsigned char *image;
    size_t image_len;
    char *image_name;
    char *image_mime;
};

struct discord;

/* Where an interaction's first response goes. Interactions from the
 * gateway have none and answer with a REST callback; one received over
 * HTTP answers in the HTTP reply. Lives on the stack of
 * discord_interaction_feed: a reply holds it only until its dispatch ends,
 * by which time the first response is decided. */
struct dc_first {
    discord_respond_fn fn;
    void *data;
    bool used; /* fn was called */
};

struct dc_reply {
    struct reply reply;
    struct discord *dc;
    enum dc_kind kind;
    char id[32];
    char token[DISCORD_TOKEN_MAX + 1];
    char channel_id[32];
    char message_id[32];    /* MESSAGE: the member's message we answer */
    char sent_id[32];       /* MESSAGE: our first message, which edits change */
    bool in_dispatch;       /* inside host.dispatch: the callback is not sent yet */
    struct dc_first *first; /* until dispatch ends: the first response's way; NULL: REST */
    bool http_answered;     /* the first response went out as an HTTP answer */
    bool retried;           /* a REST call after it was repeated once already */
    bool acked;             /* the callback is queued (MESSAGE: nothing to ack) */
    bool deferred_public;   /* acked with a public type 5 and nothing shown yet */
    bool personal;          /* COMMAND: answers the member's own figures (acked ephemeral) */
    bool holding;           /* the acknowledgement waits for the answer (pace timer) */
    bool original_used;     /* @original (or sent_id) shows a message of ours */
    bool original_final;    /* ... and it is a final one */
    bool finished;          /* the handler is done */
    bool busy;              /* an op is with the rest client */
    struct dc_op *head, *tail;
    uint64_t last_edit_ms;
    bool pace_init;
    bool pace_armed;
    int refused_rc; /* the rest client refused the head op at once: completed from the timer */
    uv_timer_t pace;
};

struct discord {
    struct adapter adapter;
    uv_loop_t *loop;
    struct adapter_host host;
    char *token;
    char *app_id;
    char *api_base;
    char *gateway_url;
    char *guild_id;
    uint32_t intents;
    unsigned shards_opt;
    int shard_first, shard_last;
    struct http_client *http;
    struct discord_ws *ws; /* owned: made at start, closed after the shards, freed by release */
    char *public_key;      /* the interactions endpoint's key; NULL: no endpoint */
    struct store *store;
    discord_models_fn models;
    void *models_data;
    uint64_t edit_interval_ms;
    uint32_t identify_spacing_ms;
    double (*jitter)(void *data);

    struct discord_rest *rest;
    struct discord_identify_gate gate;
    struct discord_gateway **gws;
    size_t ngws;
    size_t gws_alive;   /* created and not yet freed by a stop */
    size_t gws_fatal;   /* stopped for good by a close code */
    char *resolved_url; /* from /gateway/bot */
    uv_timer_t retry;   /* /gateway/bot again after a failure */
    uint64_t retry_ms;
    char bot_id[32]; /* the bot's user id, from READY */
    char commands_hash[65];
    char *commands_json;

    uint64_t recent[DC_RECENT];
    size_t recent_next;
    struct map *threads; /* thread id -> its parent channel id (heap text), from GUILD_CREATE,
                            THREAD_CREATE and interactions: a mention in a thread finds its
                            channel */
    struct map *guilds;  /* guild id -> its name (heap text), from GUILD_CREATE and GUILD_UPDATE,
                            for a persona's {server} */
    bool prefilter_off;  /* benchmarks: every MESSAGE_CREATE parsed whole */
    bool inflate_inline; /* benchmarks: the gateway stream inflated on the loop */
    enum discord_compress compress;
    struct map *roles; /* guild id -> the bot's role ids there, each followed by a space
                          (heap text, "" for none), from GUILD_CREATE and the bot's own
                          GUILD_MEMBER_UPDATE: a mention of one of them is a mention of it */

    bool started;
    bool commands_busy;  /* a registration is being checked or sent */
    bool commands_again; /* a reload asked for one while busy: run it after */
    bool stopping;
    bool closing;
    bool ended;
    bool rest_closed;
    bool closed;    /* close finished: only release is left */
    size_t refs;    /* replies alive, requests of our own in flight, the open ref */
    size_t handles; /* uv handles open */
    void (*close_cb)(void *data);
    void *close_data;
    struct discord_adapter_stats stats;
    struct dc_notice *notices; /* notices on their way (discord_notice.c) */
    uint64_t notice_backoff_ms;
    char outbox_channel[OUTBOX_CHANNEL_MAX]; /* this run's rows; "" until known */
    uv_timer_t outbox_timer;                 /* with other daemons: look for rows of runs gone */
    bool outbox_looking;                     /* a look is under way */
    struct core *core;                       /* borrowed, may be NULL: the image cap */
    struct dc_img *imgs; /* attachments being fetched for chat turns (discord_image.c) */
};

/* discord_image.c: images members attach to a chat turn */
struct dc_img;
/** [limits] image_max_bytes of the current catalog. */
size_t dc__image_max(const struct discord *dc);
/** Whether an attachment URL may be fetched: https on Discord's CDN hosts,
 *  or the configured API base's origin. */
bool dc__image_url_allowed(const struct discord *dc, const char *url);
/** The first image of a message's attachments: 0 and its URL (borrowed
 *  from atts); HB_ENOTFOUND: no attachment; HB_EPROTO: none is an image;
 *  HB_EOVERFLOW: larger than max; HB_EPERM: not on Discord's CDN. */
int dc__attachment_pick(const struct discord *dc, const cJSON *atts, size_t max, const char **url);
/** The same for /chat's image option among an interaction's options. */
int dc__attachment_option(const struct discord *dc, const cJSON *data, const cJSON *opts,
                          size_t max, const char **url);
/** Fetch url, then dispatch inv (its options taken over) with args (NULL:
 *  typed options) and the image through r; or answer r why not. */
void dc__image_dispatch(struct discord *dc, struct dc_reply *r, struct invocation *inv,
                        const char *args, const char *url);
/** Tell the member why their image was not taken (rc as above). */
void dc__image_refuse(struct reply *reply, int rc, size_t max);
/** Closing: stop the fetches in flight. */
void dc__images_cancel(struct discord *dc);

/* discord.c: small helpers and the lifecycle */
void dc__copy(char *dst, size_t cap, const char *src);
const char *dc__str(const cJSON *obj, const char *name);
/** Where inv happens, as far as the adapter knows: a thread's parent
 *  channel into inv->parent_channel_id (one an interaction named is
 *  remembered) and the guild's name into inv->scope_name. */
void dc__place(struct discord *dc, struct invocation *inv);
/** Remember a guild's name and, from GUILD_CREATE, its active threads'
 *  parents. */
void dc__guild_seen(struct discord *dc, const char *json, size_t len);
/** True when the event id was seen before; remembers it otherwise. */
bool dc__seen(struct discord *dc, const char *id_text);
/** Once the adapter is closing and nothing of it is left on the loop,
 *  begin destroying the websocket context and call the close callback. */
void dc__maybe_closed(struct discord *dc);

/* discord_reply.c: replies, their rendering and their pacing */
/** The message body Discord takes for callbacks, edits and follow-ups;
 *  with_extras adds the image and buttons of msg. */
cJSON *dc__message_json(const char *text, size_t text_len, bool ephemeral,
                        const struct reply_msg *msg, bool with_extras);
/** An interaction response of the given type around data (taken). */
cJSON *dc__callback(int type, cJSON *data);
struct dc_reply *dc__reply_new(struct discord *dc, enum dc_kind kind);
/** The dispatch of r returned: send the first response if none went out. */
void dc__reply_dispatched(struct dc_reply *r);
void dc__reply_pump(struct dc_reply *r);

/* discord_interaction.c: INTERACTION_CREATE, from the gateway or over HTTP */
void dc__interaction(struct discord *dc, const char *json, size_t len, struct dc_first *first);

/** Who sent an interaction or a message, and where: fills inv's ids. */
void dc__identity(const cJSON *d, struct invocation *inv);

/* discord_channel.c: mentions, replies and DMs answered in the channel */
/** Could this MESSAGE_CREATE concern the bot? False only for a guild
 *  message whose bytes name neither the bot's id nor a role it holds there
 *  (a mention, a role mention and a reply to the bot all would): those go
 *  unparsed; in a guild whose roles are not known, only one that mentions
 *  no role at all. True when unsure (a DM, an unknown shape). */
bool dc__message_may_concern(const struct discord *dc, const char *json, size_t len);
/** The bot's roles in the guild of a GUILD_CREATE or GUILD_MEMBER_UPDATE
 *  (parsed as d) remembered, when d says them. */
void dc__roles_seen(struct discord *dc, const cJSON *d, bool member_update);
void dc__message(struct discord *dc, const char *json, size_t len);

/* discord_endpoint.c: the HTTP interactions endpoint */
int dc__routes(struct adapter *a, const struct adapter_route **routes);

/* discord_notice.c: messages no interaction asked for */
int dc__notify(struct adapter *a, const struct notify_target *to, const struct reply_msg *msg);
/** At start: send the outbox rows a kill left; with other daemons, then
 *  every third of a lease, those of runs that are gone. */
void dc__outbox_replay(struct discord *dc);
/** Closing: drop the notices waiting to try again (their rows stay). */
void dc__notices_close(struct discord *dc);

#endif
