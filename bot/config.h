/* The configuration: one INI-style file (bot.conf), one declarative schema.
 *
 * The file has sections ([bot], [storage], ...) and repeated named sections
 * ([provider "openai"], [model "gpt-4o-mini"]). Every section and key is a
 * row in one schema table in config_schema.c; a row names the key, its type, its
 * default, its limits, whether a change applies live or needs a restart, and
 * where the value lands in struct config (by offsetof). Adding a setting is
 * one step: add a field to the section struct below and a row to the table
 * (the key's name is the field's name), then document it in bot.conf.example
 * (a test checks that every key is documented there).
 *
 * Any key `foo_env = NAME` reads foo from the environment variable NAME, so
 * secrets need not sit in the file. Loading collects every problem (with its
 * line) instead of stopping at the first. */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include "base/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_FILE_MAX (1024 * 1024) /* larger files are refused, in bytes */

enum config_log_format { CONFIG_LOG_TEXT = 0, CONFIG_LOG_JSON = 1 };
enum config_storage_backend { CONFIG_STORAGE_SQLITE = 0, CONFIG_STORAGE_POSTGRES = 1 };
enum config_discord_compress { CONFIG_DISCORD_ZSTD = 0, CONFIG_DISCORD_ZLIB = 1 };
enum config_provider_kind {
    CONFIG_PROVIDER_OPENAI = 0,
    CONFIG_PROVIDER_ANTHROPIC = 1,
    CONFIG_PROVIDER_DEMO = 2,
};
enum config_modality { CONFIG_MODALITY_TEXT = 0, CONFIG_MODALITY_IMAGE = 1 };
/* Same order as core/provider.h's enum provider_max_tokens_field. */
enum config_max_tokens_field {
    CONFIG_MAX_TOKENS_AUTO = 0,
    CONFIG_MAX_TOKENS = 1,
    CONFIG_MAX_COMPLETION_TOKENS = 2,
};
/* Same order as core/filter.h's enum filter_kind and enum filter_action. */
enum config_filter_kind {
    CONFIG_FILTER_WORDS = 0,
    CONFIG_FILTER_PATTERN = 1,
    CONFIG_FILTER_EMAIL = 2,
    CONFIG_FILTER_PHONE = 3,
    CONFIG_FILTER_CARD = 4,
};
enum config_filter_action {
    CONFIG_FILTER_BLOCK = 0,
    CONFIG_FILTER_REDACT = 1,
    CONFIG_FILTER_REVIEW = 2,
};
/* Same order as core/access.h's enum access_reply. */
enum config_blocked_reply { CONFIG_BLOCKED_MESSAGE = 0, CONFIG_BLOCKED_SILENT = 1 };

struct config_bot {
    char *name;                        /* display name of the bot */
    enum log_level log_level;          /* minimum level written */
    enum config_log_format log_format; /* text (key=value) or json lines */
    int64_t shutdown_grace;            /* seconds work in flight may finish after SIGTERM */
    char *persona;                     /* the default [persona]; NULL: none */
};

struct config_storage {
    enum config_storage_backend backend; /* which store implementation */
    char *path;                          /* database file (sqlite) */
    char *postgres_url;                  /* libpq connection string (postgres); a secret */
    int64_t reservation_timeout;         /* seconds before a pending reservation is voided */
    int64_t lease;         /* postgres: seconds a daemon's heartbeat and leases last */
    int64_t postgres_pool; /* postgres: connections per daemon: one writes, the rest read */
    int64_t spin_us;       /* microseconds the loop polls for the store's answers */
};

struct config_ledger {
    int64_t welcome_bonus; /* credits granted to a new wallet */
};

struct config_console {
    bool enabled;       /* read commands from stdin */
    char *user;         /* the local user's name; wallet console:<user> */
    bool admin;         /* the console user may run admin commands */
    char *image_dir;    /* folder where images sent to the console are saved */
    char *history_file; /* lines typed at the terminal, kept between runs; "" none */
};

struct config_discord {
    bool enabled;
    char *token;          /* bot token (secret) */
    char *application_id; /* the application's snowflake id */
    char *api_base;       /* REST base URL, with the API version */
    char *gateway_url;    /* gateway URL override; NULL: the one /gateway/bot gives */
    int64_t intents;      /* gateway intents bit set */
    enum config_discord_compress compress; /* gateway transport compression */
    char *shards;                          /* "auto" (Discord's recommendation) or a total count */
    int64_t shard_first;                   /* first shard this daemon runs */
    int64_t shard_last;                    /* last shard this daemon runs; -1: the last one */
    int64_t rest_connections;              /* REST connections at most (the pool) */
    char *guild_id;             /* register commands in this guild only; NULL: globally */
    bool interactions_endpoint; /* also take interactions at POST /interactions/discord */
    char *public_key;           /* the application's Ed25519 public key (64 hex digits) */
};

struct config_telegram {
    bool enabled;
    char *token;              /* bot token (secret) */
    char *api_base;           /* Bot API base URL, without the /bot<token> part */
    int64_t poll_timeout;     /* seconds a getUpdates long poll waits for updates */
    int64_t pipeline;         /* calls in flight per connection; 0: no pipelining */
    int64_t max_inflight;     /* Bot API sends in flight at once */
    int64_t sends_per_second; /* Bot API sends per second overall */
    int64_t send_queue_max;   /* polling pauses at this many queued sends or outbox rows */
    char *admins;             /* user ids with admin rights: "123, 456" */
    char *stars_packages;     /* Stars packages /deposit offers: "stars:credits, ..." */
    bool webhook;             /* take updates at POST /webhooks/telegram instead of polling */
    char *webhook_secret;     /* the X-Telegram-Bot-Api-Secret-Token expected (secret) */
    char *webhook_url;        /* public URL for setWebhook at start; NULL: the operator sets it */
};

struct config_server {
    bool enabled;        /* serve HTTP: webhooks, /healthz, /metrics */
    char *address;       /* listen address */
    int64_t port;        /* listen port */
    int64_t max_body;    /* largest request body accepted, in bytes */
    char *metrics_token; /* bearer token /metrics asks for (secret); NULL: none */
};

struct config_api {
    bool enabled;     /* the OpenAI-compatible API and /api/v1 on the server (bot/api.h) */
    int64_t max_body; /* largest API request body, in bytes (413 beyond) */
};

struct config_payments {
    char *reference_key; /* HMAC key for payment references and memos (secret) */
    char *packages;      /* "price:credits, ..." prices in minor units */
    char *currency;      /* ISO code of the package prices, lower case */
};

struct config_card {
    bool enabled;
    char *webhook_secret; /* signing secret of the webhook endpoint (secret) */
    char *checkout_url;   /* the operator's checkout link */
    int64_t tolerance;    /* seconds a signature timestamp may be old */
    int match_on;         /* Paddle: the amount that picks a package (enum payments_match) */
};

struct config_hedera {
    bool enabled;
    char *mirror_url;            /* mirror node REST base URL */
    char *treasury;              /* account deposits go to ("0.0.1234") */
    int64_t tinybars_per_credit; /* HBAR rate: tinybars for one credit */
    char *tokens;                /* "token_id:units_per_credit, ..." HTS tokens accepted */
    int64_t poll_interval;       /* seconds between polls */
};

struct config_provider {
    char *name;                     /* the section's name: [provider "NAME"] */
    enum config_provider_kind kind; /* wire protocol spoken */
    char *base_url;                 /* API base URL; NULL for kind demo when unset */
    char *api_key;                  /* secret; NULL when the server needs none */
    int64_t timeout;                /* seconds a request may take */
    int64_t max_concurrent;         /* requests in flight at once */
    char *headers;                  /* extra headers "Name: value; Name2: value"; NULL: none */
    char *api_version;              /* anthropic-version header; NULL: the adapter's default */
};

struct config_model {
    char *name;     /* the section's name: [model "NAME"], as users see it */
    char *provider; /* name of a [provider] section */
    char *upstream; /* model id sent to the provider; default: name */
    enum config_modality modality;
    int64_t price_request;     /* credits per request */
    int64_t price_input_1k;    /* credits per 1000 input tokens */
    int64_t price_output_1k;   /* credits per 1000 output tokens */
    int64_t max_output_tokens; /* cap on tokens generated per request */
    bool enabled;              /* offered to users */
    char *sizes;               /* image sizes "512x512, 256x256", the first is the default */
    char *fallbacks;           /* comma-separated models tried in order when this one fails */
    char *allow;               /* who may use it: wallet ids, scope:<platform>:<id>, dm, admins */
    char *system_prompt;       /* text models: the system prompt; NULL: none */
    char *temperature;         /* a number 0 to 2, checked at load; NULL: not sent */
    char *top_p;               /* a number 0 to 1, checked at load; NULL: not sent */
    char *stop;                /* a JSON array of strings, checked at load; NULL: none */
    char *extra_body;          /* a JSON object merged into the request body; NULL: none */
    enum config_max_tokens_field max_tokens_field; /* the output cap's key (OpenAI wire) */
    bool vision;                                   /* text models: sees attached images */
    int64_t price_per_image;                       /* credits per attached image (vision) */
};

/* A persona (core/catalog.h): a system prompt and generation settings
 * members and admins choose by name. */
struct config_persona {
    char *name;          /* the section's name: [persona "NAME"], as members see it */
    char *description;   /* one line shown to members by /persona */
    char *system_prompt; /* the prompt; with system_prompt_file, the file's text read at load */
    char *system_prompt_file; /* a file holding the prompt, relative to bot.conf's folder */
    char *model;              /* the default text model with this persona; NULL: as usual */
    char *temperature;        /* a number 0 to 2, checked at load; NULL: the model's */
    char *top_p;              /* a number 0 to 1, checked at load; NULL: the model's */
    int64_t max_tokens;    /* output cap, at most the model's max_output_tokens; 0: the model's */
    char *stop;            /* a JSON array of strings; NULL: the model's */
    char *extra_body;      /* a JSON object merged over the model's; NULL: none */
    char *forbidden_words; /* comma-separated words blocked while the persona is in use */
    char *allow;           /* who may choose it: as [model] allow; NULL: everyone */
    bool show_prompt;      /* /persona NAME may show the system prompt to members */
    bool approval;         /* its generations wait for an admin ([approval] enabled) */
};

struct config_limits {
    int64_t user_per_hour;  /* generations per member per clock hour; 0: no limit */
    int64_t pool_per_day;   /* generations per group per UTC day; 0: no limit */
    int64_t tokens_per_day; /* tokens for everyone per UTC day; 0: no limit */
    int64_t queue_max;      /* jobs waiting, everyone */
    int64_t user_queue;     /* jobs waiting per member */
    int64_t user_in_flight; /* jobs running per member */
    int64_t prompt_max;     /* characters in a prompt */
    int64_t memory_tokens;  /* tokens of conversation remembered for /chat */
    int64_t retry_max;      /* retries per model after 429 or 5xx */
    int64_t job_timeout;    /* seconds a job may take, retries and fallbacks included */

    /* Images members attach to a chat turn. */
    int64_t image_max_bytes; /* largest image a member may attach, in bytes */

    /* Conversations /chat remembers. */
    int64_t conversation_idle;      /* seconds of silence after which one starts over */
    int64_t conversation_retention; /* seconds a stored one is kept after its last turn */
};

struct config_filter {
    char *name;                       /* the section's name: [filter "NAME"] */
    enum config_filter_kind kind;     /* words, pattern, email, phone or card */
    enum config_filter_action action; /* block, redact or review */
    char *words;                      /* words: comma-separated words or phrases */
    bool leet;                        /* words: also read 0 1 3 4 5 7 8 @ $ as letters */
    char *pattern;                    /* pattern: POSIX extended regular expression */
    char *replacement;                /* redact: text put in place of a match */
};

/* The approval queue (core/approval.h): which generations wait for an admin. */
struct config_approval {
    bool enabled;             /* hold generations by the rules below */
    int64_t above;            /* hold when the reserved cost is above this many credits; 0: off */
    char *models;             /* comma-separated models that always need approval; NULL: none */
    int64_t new_member_days;  /* hold for wallets younger than this many days; 0: off */
    int64_t new_member_spent; /* hold for wallets that spent less than this; 0: off */
    int64_t timeout;          /* seconds a held job waits before it is voided */
    char *discord_channel;    /* Discord channel id where admins are told; NULL: none */
    char *telegram_chat;      /* Telegram chat id where admins are told; NULL: none */
    char *reasons;            /* comma-separated reject reasons offered as buttons */
};

/* Who may use the bot (core/access.h): lists of "<platform>:<id>". */
struct config_access {
    char *allow_users;  /* only these members (per platform named); NULL: everyone */
    char *block_users;  /* never these members */
    char *allow_roles;  /* Discord: members holding one of these roles also get in */
    char *block_roles;  /* Discord: never members holding one of these roles */
    char *allow_groups; /* only in these Discord servers / Telegram groups */
    char *block_groups; /* never in these Discord servers / Telegram groups */
    bool dms;           /* direct messages (and the console) are answered */
    enum config_blocked_reply blocked_reply; /* a refused member hears a message or nothing */
};

/* [features]: what the bot offers at all (groups may narrow it by command). */
struct config_features {
    bool chat;      /* /chat, /new and chat turns */
    bool images;    /* /imagine */
    bool payments;  /* /deposit */
    bool approvals; /* holding generations for an admin's approval */
};

/* [notices]: what members are told without asking. */
struct config_notices {
    int64_t low_balance;     /* credits; a wallet or pool falling below it is told once; 0: never */
    bool upvotes;            /* tell creators their images were upvoted (at most hourly) */
    int64_t upvote_interval; /* seconds between two upvote notices to one member */
};

/* [revenue]: how every settled generation's charge is split (core/revenue.h). */
struct config_revenue {
    char *shares;       /* "ACCOUNT PART, ..." adding up to 100 %; NULL: all to system:revenue */
    char *remainder;    /* the account rounding leftovers go to; NULL: the first unscoped share */
    char *adjustable;   /* "ACCOUNT LOW-HIGH, ..." shares group admins may move; NULL: none */
    char *holder_roles; /* "discord:<role id>, ...": members seen with one hold (core/holders.h) */
    char *holder_members; /* "<platform>:<group>/<user>[*weight], ...": listed holders */
    int holder_payout;    /* enum holders_every: weekly (0) or daily (1) */
};

/* [contest]: how a group's contest pays its prize (core/contest.h). */
struct config_contest {
    int64_t winners;       /* creators paid, 1..10 */
    char *split;           /* their parts in percent, best first: "50,30,20" (100 or less in all) */
    char *weight_roles;    /* "discord:<role id> N, ...": those roles' votes count N */
    bool weight_holders;   /* a holder's vote counts their holding (core/holders.h) */
    char *schedule;        /* "telegram:<group>, discord:<guild>/<channel>, ...": contests run
                              by themselves there (core/contest_schedule.h) */
    char *schedule_period; /* "week" or a number of days */
    int64_t schedule_prize; /* credits; 0: the prize account's balance at the end */
};

/* [gallery]: how long generated images are kept in the store
 * (core/gallery.h): for Regenerate, /gallery and contests. */
struct config_gallery {
    int64_t retention;  /* seconds an image is kept after it was made */
    int64_t max_images; /* most images kept, the newest; 0: no cap */
};

/* [alerts]: rules over the daemon's own counters, and where alerts go. */
struct config_alerts {
    bool enabled;
    bool console;                   /* write alerts to the log (and so the console's terminal) */
    char *discord_channel;          /* a Discord channel id to post in; NULL: none */
    char *telegram_chat;            /* a Telegram chat id to post in; NULL: none */
    char *webhook_url;              /* POST a JSON object per alert here; NULL: none */
    int64_t interval;               /* seconds between two evaluations */
    int64_t window;                 /* seconds the rates and the p95 look back */
    int64_t min_samples;            /* rates and the p95 need this many events in the window */
    int64_t repeat_after;           /* seconds: a rule fires at most once per this */
    int64_t credits_per_day;        /* credits spent since 00:00 UTC; 0: off */
    int64_t provider_error_percent; /* failed generations, % of finished; 0: off */
    int64_t filter_hit_percent;     /* filter checks that blocked or redacted, %; 0: off */
    int64_t latency_p95_ms;         /* provider time to first byte, p95, ms; 0: off */
    bool storage_errors;            /* any failed storage commit in the window */
    bool payments;                  /* any failed payment webhook or unmatched payment */
    int64_t platform_down;          /* seconds a Discord shard or the Telegram poller may be
                                       down before it alerts; 0: off */
};

/** A validated configuration. Transparent and read-only for its users; every
 *  string is owned by the struct and freed by config_free(). */
struct config {
    char *path; /* the file it was loaded from */
    struct config_bot bot;
    struct config_storage storage;
    struct config_ledger ledger;
    struct config_console console;
    struct config_discord discord;
    struct config_telegram telegram;
    struct config_server server;
    struct config_api api;
    struct config_payments payments;
    struct config_card stripe;
    struct config_card paddle;
    struct config_hedera hedera;
    struct config_provider *providers; /* in file order */
    size_t nproviders;
    struct config_model *models; /* in file order */
    size_t nmodels;
    struct config_persona *personas; /* in file order */
    size_t npersonas;
    struct config_limits limits;
    struct config_filter *filters; /* in file order */
    size_t nfilters;
    struct config_access access;
    struct config_features features;
    struct config_notices notices;
    struct config_revenue revenue;
    struct config_contest contest;
    struct config_gallery gallery;
    struct config_alerts alerts;
    struct config_approval approval;
};

/* ---- The schema (read-only; config_schema.c holds the table). ---- */

enum config_type {
    CONFIG_STRING,  /* char *, any text */
    CONFIG_BOOL,    /* bool: true/false, yes/no, on/off, 1/0 */
    CONFIG_INT,     /* int64_t within [min, max] */
    CONFIG_SECONDS, /* int64_t seconds within [min, max]; accepts 90, 90s, 5m, 2h, 1d */
    CONFIG_ENUM,    /* an enum (int-sized) holding the index into choices */
    CONFIG_URL,     /* char *, an http:// or https:// URL */
    CONFIG_SECRET,  /* char *, non-empty, registered for log redaction */
};

#define CONFIG_KEY_REQUIRED 0x1u              /* must be set */
#define CONFIG_KEY_REQUIRED_WHEN_ENABLED 0x2u /* must be set when the section's enabled is true */
#define CONFIG_KEY_LIVE 0x4u                  /* a change applies without a restart */
#define CONFIG_KEY_DEFAULT_NAME 0x8u          /* default is the section's name */

struct config_key_schema {
    const char *name; /* key in the file, same as the struct field */
    enum config_type type;
    size_t offset;              /* of the field within the section struct */
    const char *def;            /* default, written as in the file; NULL: none */
    int64_t min, max;           /* CONFIG_INT and CONFIG_SECONDS limits */
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated names */
    unsigned flags;             /* CONFIG_KEY_* */
    const char *help;           /* one line: meaning and unit */
};

struct config_section_schema {
    const char *name;    /* [name] or [name "INSTANCE"] */
    bool repeatable;     /* named instances, stored as an array */
    size_t offset;       /* of the section struct (or the array pointer) in struct config */
    size_t count_offset; /* repeatable: of the size_t count in struct config */
    size_t item_size;    /* repeatable: sizeof one element */
    const struct config_key_schema *keys;
    size_t nkeys;
    const char *help;
};

/** The schema table; *count receives the number of sections. Static data. */
const struct config_section_schema *config_schema_get(size_t *count);

/* ---- Problems found while loading. ---- */

struct config_problem {
    int line;      /* 1-based line in the file; 0 when about the whole file */
    char *message; /* heap, one sentence without the FILE:LINE prefix */
};

/** Everything wrong with one file, sorted by line. Embedded by the caller. */
struct config_problems {
    char *file; /* the file's path as given (heap) */
    struct config_problem *items;
    size_t count;
    size_t cap;
};

/** Prepare an empty list. */
void config_problems_init(struct config_problems *p);
/** Free every problem; the list is empty and reusable afterwards. */
void config_problems_free(struct config_problems *p);
/** Write each problem as "FILE:LINE: message" (or "FILE: message") to out,
 *  one per line. Returns the number written. */
size_t config_problems_print(const struct config_problems *p, FILE *out);
/** Log each problem at error level as event config.problem. */
void config_problems_log(const struct config_problems *p);

/* ---- Loading. ---- */

/** Read, parse and validate the file at path. On success returns 0, *out is
 *  a new config the caller frees with config_free(), every secret in it is
 *  registered with log_secret_add(), and problems is empty. On failure
 *  returns HB_ECONFIG (the file is wrong: problems says where and why),
 *  HB_EIO (it cannot be read; problems says why too) or HB_ENOMEM, and *out
 *  is NULL. problems must be initialised; earlier contents are dropped. Warns
 *  (log_warn) when the file is readable by group or others. Blocks on the
 *  file system; safe to call from any thread (parses are serialised, as
 *  libinih keeps its options in globals). */
int config_load(const char *path, struct config **out, struct config_problems *problems);

/** Free a config from config_load(). NULL is fine. */
void config_free(struct config *cfg);

/** Register every secret value of cfg with log_secret_add(). */
void config_secrets_register(const struct config *cfg);

/** Log a warning when the file is readable or writable by group or others
 *  (it may hold secrets). Returns 0 when private, 1 when it warned, or a
 *  negative libuv-style error when stat fails. */
int config_file_check_mode(const char *path);

/** Find a provider or model section by name; NULL when there is none.
 *  The result is borrowed from cfg. */
const struct config_provider *config_provider_find(const struct config *cfg, const char *name);
const struct config_model *config_model_find(const struct config *cfg, const char *name);
const struct config_persona *config_persona_find(const struct config *cfg, const char *name);

/* ---- Comparing two configs. ---- */

enum config_change_kind {
    CONFIG_CHANGE_VALUE,   /* a key's value differs */
    CONFIG_CHANGE_ADDED,   /* a repeatable section instance appeared */
    CONFIG_CHANGE_REMOVED, /* a repeatable section instance disappeared */
};

/** One difference. Every string is borrowed from the schema or the configs
 *  and lives as long as they do. Values are not carried (they may be
 *  secret). */
struct config_change {
    enum config_change_kind kind;
    const char *section;  /* schema name: "bot", "provider" */
    const char *instance; /* repeatable sections: the instance name; else NULL */
    const char *key;      /* CONFIG_CHANGE_VALUE: the key; else NULL */
    bool live;            /* applies without a restart */
};

typedef void (*config_diff_cb)(const struct config_change *change, void *data);

/** Compare two configs through the schema and call cb once per difference,
 *  in schema order. Returns the number of differences. */
size_t config_diff(const struct config *old_cfg, const struct config *new_cfg, config_diff_cb cb,
                   void *data);

#endif
