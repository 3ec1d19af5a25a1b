/* The configuration schema: one table row per key and section, and the
 * helpers that reach a field through it. See config.h for the file's shape. */
#include "bot/config_internal.h"
#include "storage/store.h"

#include <stdint.h>
#include <string.h>

/* Enum fields are written through an int pointer: the enums here must be
 * int-sized (GCC and Clang make them unsigned int, which may alias int). */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_storage_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_provider_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_modality) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_filter_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_max_tokens_field) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_filter_action) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_blocked_reply) == sizeof(int), "enum size");

/* ---- The schema ---------------------------------------------------------- */

/* The choices lists follow the C enums' order: the stored value is the index. */
static const char *const config_log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const config_log_formats[] = {"text", "json", NULL};
static const char *const config_holder_payouts[] = {"weekly", "daily", NULL}; /* holders_every */
static const char *const config_backends[] = {"sqlite", "postgres", NULL};
static const char *const config_compress[] = {"zstd-stream", "zlib-stream", NULL};
static const char *const config_match_on[] = {"subtotal", "total", NULL}; /* payments_match */
static const char *const config_provider_kinds[] = {"openai", "anthropic", "demo", NULL};
static const char *const config_modalities[] = {"text", "image", NULL};
static const char *const config_max_tokens_fields[] = {"auto", "max_tokens",
                                                       "max_completion_tokens", NULL};
static const char *const config_filter_kinds[] = {"words", "pattern", "email",
                                                  "phone", "card",    NULL};
static const char *const config_filter_actions[] = {"block", "redact", "review", NULL};

#define LIVE CONFIG_KEY_LIVE
#define RESTART 0u

/* One row per key. The key's name is the struct field's name. */
#define K_STRING(S, f, def, fl, help)                                                              \
    {                                                                                              \
#f, CONFIG_STRING, offsetof(S, f), def, 0, 0, NULL, fl, help                               \
    }
#define K_BOOL(S, f, def, fl, help)                                                                \
    {                                                                                              \
#f, CONFIG_BOOL, offsetof(S, f), def, 0, 0, NULL, fl, help                                 \
    }
#define CONFIG__STR_(x) #x
#define CONFIG__STR(x) CONFIG__STR_(x)
#define K_INT(S, f, def, lo, hi, fl, help)                                                         \
    {                                                                                              \
#f, CONFIG_INT, offsetof(S, f), def, lo, hi, NULL, fl, help                                \
    }
#define K_SECONDS(S, f, def, lo, hi, fl, help)                                                     \
    {                                                                                              \
#f, CONFIG_SECONDS, offsetof(S, f), def, lo, hi, NULL, fl, help                            \
    }
#define K_ENUM(S, f, def, ch, fl, help)                                                            \
    {                                                                                              \
#f, CONFIG_ENUM, offsetof(S, f), def, 0, 0, ch, fl, help                                   \
    }
#define K_URL(S, f, def, fl, help)                                                                 \
    {                                                                                              \
#f, CONFIG_URL, offsetof(S, f), def, 0, 0, NULL, fl, help                                  \
    }
#define K_SECRET(S, f, fl, help)                                                                   \
    {                                                                                              \
#f, CONFIG_SECRET, offsetof(S, f), NULL, 0, 0, NULL, fl, help                              \
    }

static const struct config_key_schema config_keys_bot[] = {
    K_STRING(struct config_bot, name, "HAI Bot", LIVE, "the bot's display name"),
    K_ENUM(struct config_bot, log_level, "info", config_log_levels, LIVE,
           "minimum level of log lines written"),
    K_ENUM(struct config_bot, log_format, "text", config_log_formats, LIVE,
           "log line format: key=value text or one JSON object per line"),
    K_SECONDS(struct config_bot, shutdown_grace, "10", 0, 600, LIVE,
              "seconds work in flight may finish after SIGTERM"),
    K_STRING(struct config_bot, persona, NULL, LIVE,
             "the [persona] used where no admin or member chose one; default none"),
};

static const struct config_key_schema config_keys_storage[] = {
    K_ENUM(struct config_storage, backend, "sqlite", config_backends, RESTART,
           "where the ledger is stored"),
    K_STRING(struct config_storage, path, "haibot.db", RESTART, "database file (sqlite)"),
    K_SECRET(struct config_storage, postgres_url, RESTART,
             "libpq connection string (postgres), best given as postgres_url_env"),
    K_SECONDS(struct config_storage, reservation_timeout, "600", 10, 86400, LIVE,
              "seconds before an unsettled credit reservation is voided"),
    K_SECONDS(struct config_storage, lease, "15", 3, 600, RESTART,
              "postgres: seconds without a heartbeat before another daemon takes over"),
    K_INT(struct config_storage, postgres_pool, "3", 1, 16, RESTART,
          "postgres: connections per daemon; one carries the writes, the others pages to show"),
    K_INT(struct config_storage, spin_us, CONFIG__STR(STORE_SPIN_US_DEFAULT), 0, 10000, RESTART,
          "microseconds the loop polls for the store's answer before it sleeps; 0: at once"),
};

static const struct config_key_schema config_keys_ledger[] = {
    K_INT(struct config_ledger, welcome_bonus, "100", 0, CREDITS_MAX, LIVE,
          "credits granted to each new wallet"),
};

static const struct config_key_schema config_keys_console[] = {
    K_BOOL(struct config_console, enabled, "true", RESTART, "read commands from standard input"),
    K_STRING(struct config_console, user, "operator", LIVE,
             "the local user's name (wallet console:<user>)"),
    K_BOOL(struct config_console, admin, "true", LIVE,
           "whether the console user may run admin commands"),
    K_STRING(struct config_console, image_dir, ".", RESTART,
             "folder where images sent to the console are saved"),
    K_STRING(struct config_console, history_file, "~/.haibot_history", RESTART,
             "file that keeps the commands typed at the terminal between runs (never prompts); "
             "empty: none kept"),
};

static const struct config_key_schema config_keys_discord[] = {
    K_BOOL(struct config_discord, enabled, "false", RESTART, "connect to Discord"),
    K_SECRET(struct config_discord, token, CONFIG_KEY_REQUIRED_WHEN_ENABLED, "bot token"),
    K_STRING(struct config_discord, application_id, NULL, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
             "the application's id (a snowflake)"),
    K_URL(struct config_discord, api_base, "https://discord.com/api/v10", RESTART,
          "REST API base URL, with the version"),
    K_STRING(struct config_discord, gateway_url, NULL, RESTART,
             "gateway URL override (tests); default: the one GET /gateway/bot gives"),
    K_INT(struct config_discord, intents, "4609", 0, 0x7fffffff, RESTART,
          "gateway intents bit set (guilds, guild messages, direct messages)"),
    K_ENUM(struct config_discord, compress, "zstd-stream", config_compress, RESTART,
           "gateway transport compression: zstd-stream (decoded about four times as fast) "
           "or zlib-stream"),
    K_STRING(struct config_discord, shards, "auto", RESTART,
             "total shard count, or auto for Discord's recommendation"),
    K_INT(struct config_discord, shard_first, "0", 0, 4095, RESTART,
          "first shard this daemon runs"),
    K_INT(struct config_discord, shard_last, "-1", -1, 4095, RESTART,
          "last shard this daemon runs; -1: the last one"),
    K_INT(struct config_discord, rest_connections, "8", 1, 256, RESTART,
          "connections to the REST API at most, shared by every request (a burst of "
          "interactions among them; multiplexed over HTTP/2, which Discord speaks)"),
    K_STRING(struct config_discord, guild_id, NULL, RESTART,
             "register commands in this guild only (instant, for testing); default: globally"),
    K_BOOL(struct config_discord, interactions_endpoint, "false", RESTART,
           "also take interactions over HTTP at POST /interactions/discord (needs [server])"),
    K_STRING(struct config_discord, public_key, NULL, RESTART,
             "the application's public key (64 hex digits) that signs endpoint requests"),
};

static const struct config_key_schema config_keys_telegram[] = {
    K_BOOL(struct config_telegram, enabled, "false", RESTART, "poll the Telegram Bot API"),
    K_SECRET(struct config_telegram, token, CONFIG_KEY_REQUIRED_WHEN_ENABLED, "bot token"),
    K_URL(struct config_telegram, api_base, "https://api.telegram.org", RESTART,
          "Bot API base URL (a local Bot API server works too)"),
    K_SECONDS(struct config_telegram, poll_timeout, "30", 1, 300, RESTART,
              "seconds a getUpdates long poll waits for updates"),
    K_INT(struct config_telegram, pipeline, "8", 0, 64, RESTART,
          "Bot API calls written ahead on each connection (HTTP/1.1 pipelining); 0: each "
          "call its own transfer"),
    K_INT(struct config_telegram, max_inflight, "100", 1, 1000, RESTART,
          "Bot API sends in flight at once; at least a poll's 100 updates, so the replies of "
          "one poll go out together and the next poll waits one round trip for them"),
    K_INT(struct config_telegram, sends_per_second, "30", 1, 100000, RESTART,
          "Bot API sends per second overall (Telegram's limit is 30; raise it for a local Bot "
          "API server or a bot with a raised limit)"),
    K_INT(struct config_telegram, send_queue_max, "1000", 10, 1000000, RESTART,
          "polling pauses while this many sends are queued or this many outbox rows wait"),
    K_STRING(struct config_telegram, admins, "", LIVE,
             "Telegram user ids with admin rights, separated by commas"),
    K_STRING(struct config_telegram, stars_packages, "", LIVE,
             "Stars packages /deposit offers, as stars:credits pairs separated by commas"),
    K_BOOL(struct config_telegram, webhook, "false", RESTART,
           "take updates at POST /webhooks/telegram instead of polling (needs [server])"),
    K_SECRET(struct config_telegram, webhook_secret, RESTART,
             "secret token Telegram sends with each webhook request"),
    K_URL(struct config_telegram, webhook_url, NULL, RESTART,
          "public URL of the webhook, given to setWebhook at start; default: set by the operator"),
};

static const struct config_key_schema config_keys_server[] = {
    K_BOOL(struct config_server, enabled, "false", RESTART,
           "serve HTTP (payment webhooks, /healthz, /metrics)"),
    K_STRING(struct config_server, address, "127.0.0.1", RESTART, "listen address"),
    K_INT(struct config_server, port, "8080", 1, 65535, RESTART, "listen port"),
    K_INT(struct config_server, max_body, "65536", 1024, 16777216, RESTART,
          "largest request body accepted, in bytes"),
    K_SECRET(struct config_server, metrics_token, RESTART,
             "bearer token /metrics asks for; optional"),
};

static const struct config_key_schema config_keys_api[] = {
    K_BOOL(struct config_api, enabled, "false", RESTART,
           "serve the OpenAI-compatible API (/v1) and /api/v1 to members' API keys; needs "
           "[server]"),
    K_INT(struct config_api, max_body, "65536", 1024, 16777216, RESTART,
          "largest API request body, in bytes (at most [server] max_body)"),
};

static const struct config_key_schema config_keys_payments[] = {
    K_SECRET(struct config_payments, reference_key, RESTART,
             "key that signs payment references and memos; required for any payment method"),
    K_STRING(struct config_payments, packages, NULL, RESTART,
             "card packages: price:credits, comma-separated, prices in minor units"),
    K_STRING(struct config_payments, currency, "usd", RESTART, "currency of the package prices"),
};

static const struct config_key_schema config_keys_stripe[] = {
    K_BOOL(struct config_card, enabled, "false", RESTART, "accept Stripe checkout payments"),
    K_SECRET(struct config_card, webhook_secret, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
             "the webhook endpoint's signing secret (whsec_...)"),
    K_URL(struct config_card, checkout_url, NULL, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
          "the operator's payment link; the member's reference is appended"),
    K_SECONDS(struct config_card, tolerance, "300", 1, 86400, RESTART,
              "seconds a signature timestamp may be old"),
};

static const struct config_key_schema config_keys_paddle[] = {
    K_BOOL(struct config_card, enabled, "false", RESTART, "accept Paddle checkout payments"),
    K_SECRET(struct config_card, webhook_secret, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
             "the notification destination's secret key"),
    K_URL(struct config_card, checkout_url, NULL, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
          "the operator's checkout page; the member's reference is appended"),
    K_SECONDS(struct config_card, tolerance, "300", 1, 86400, RESTART,
              "seconds a signature timestamp may be old"),
    K_ENUM(struct config_card, match_on, "subtotal", config_match_on, RESTART,
           "the amount that picks a package: subtotal (before tax) or total"),
};

static const struct config_key_schema config_keys_hedera[] = {
    K_BOOL(struct config_hedera, enabled, "false", RESTART, "credit HBAR and token deposits"),
    K_URL(struct config_hedera, mirror_url, "https://mainnet-public.mirrornode.hedera.com", RESTART,
          "mirror node REST base URL"),
    K_STRING(struct config_hedera, treasury, NULL, CONFIG_KEY_REQUIRED_WHEN_ENABLED,
             "the account deposits are sent to (0.0.N)"),
    K_INT(struct config_hedera, tinybars_per_credit, "1000000", 1, CREDITS_MAX, RESTART,
          "tinybars that buy one credit"),
    K_STRING(struct config_hedera, tokens, NULL, RESTART,
             "HTS tokens accepted: token_id:units_per_credit, comma-separated"),
    K_SECONDS(struct config_hedera, poll_interval, "15", 1, 3600, RESTART,
              "seconds between polls of the mirror node"),
};

static const struct config_key_schema config_keys_provider[] = {
    K_ENUM(struct config_provider, kind, NULL, config_provider_kinds, LIVE | CONFIG_KEY_REQUIRED,
           "wire protocol: openai (and compatible servers), anthropic, or demo (offline)"),
    K_URL(struct config_provider, base_url, NULL, LIVE,
          "API base URL; required unless kind = demo"),
    K_SECRET(struct config_provider, api_key, LIVE, "API key; optional (local servers need none)"),
    K_SECONDS(struct config_provider, timeout, "120", 1, 600, LIVE, "seconds one request may take"),
    K_INT(struct config_provider, max_concurrent, "4", 1, 1000, LIVE, "requests in flight at once"),
    K_STRING(struct config_provider, headers, NULL, LIVE,
             "extra request headers: \"Name: value; Name2: value\""),
    K_STRING(struct config_provider, api_version, NULL, LIVE,
             "anthropic: the anthropic-version header; default 2023-06-01"),
};

static const struct config_key_schema config_keys_model[] = {
    K_STRING(struct config_model, provider, NULL, LIVE | CONFIG_KEY_REQUIRED,
             "name of the [provider] section serving this model"),
    K_STRING(struct config_model, upstream, NULL, LIVE | CONFIG_KEY_DEFAULT_NAME,
             "model id sent to the provider; default: the section's name"),
    K_ENUM(struct config_model, modality, "text", config_modalities, LIVE,
           "what the model makes: text or image"),
    K_INT(struct config_model, price_request, "0", 0, CREDITS_MAX, LIVE, "credits per request"),
    K_INT(struct config_model, price_input_1k, "0", 0, CREDITS_MAX, LIVE,
          "credits per 1000 input tokens"),
    K_INT(struct config_model, price_output_1k, "0", 0, CREDITS_MAX, LIVE,
          "credits per 1000 output tokens"),
    K_INT(struct config_model, max_output_tokens, "1024", 1, 1000000, LIVE,
          "most tokens generated per request"),
    K_BOOL(struct config_model, enabled, "true", LIVE, "offer this model to users"),
    K_STRING(struct config_model, sizes, NULL, LIVE,
             "image sizes allowed, \"512x512, 256x256\"; the first is the default"),
    K_STRING(struct config_model, fallbacks, NULL, LIVE,
             "models tried in order when this one fails, comma-separated"),
    K_STRING(struct config_model, allow, NULL, LIVE,
             "who may use it: wallet ids, scope:<platform>:<id>, dm, admins; default everyone"),
    K_STRING(struct config_model, system_prompt, NULL, LIVE,
             "text: the system prompt sent before the conversation; default none"),
    K_STRING(struct config_model, temperature, NULL, LIVE,
             "text: sampling temperature, a number from 0 to 2; default: not sent"),
    K_STRING(struct config_model, top_p, NULL, LIVE,
             "text: nucleus sampling, a number from 0 to 1; default: not sent"),
    K_STRING(struct config_model, stop, NULL, LIVE,
             "text: stop sequences, a JSON array of strings like [\"END\"]; default none"),
    K_STRING(struct config_model, extra_body, NULL, LIVE,
             "a JSON object merged into the request body (it cannot set model, messages, "
             "stream, system or prompt)"),
    K_ENUM(struct config_model, max_tokens_field, "auto", config_max_tokens_fields, LIVE,
           "openai: the output cap's key; auto: max_completion_tokens for upstream ids "
           "beginning o1, o3, o4 or gpt-5, else max_tokens"),
    K_BOOL(struct config_model, vision, "false", LIVE,
           "text: the model sees images members attach to a chat turn"),
    K_INT(struct config_model, price_per_image, "0", 0, CREDITS_MAX, LIVE,
          "vision: credits per attached image, on top of the tokens"),
};

static const struct config_key_schema config_keys_persona[] = {
    K_STRING(struct config_persona, description, NULL, LIVE,
             "one line shown to members by /persona"),
    K_STRING(struct config_persona, system_prompt, NULL, LIVE,
             "the system prompt; {date}, {user}, {server} and {model} are filled in"),
    K_STRING(struct config_persona, system_prompt_file, NULL, LIVE,
             "a file holding the system prompt (instead of system_prompt), relative to bot.conf"),
    K_STRING(struct config_persona, model, NULL, LIVE,
             "the text model used with this persona unless the member names one"),
    K_STRING(struct config_persona, temperature, NULL, LIVE,
             "sampling temperature, 0 to 2, over the model's; default: the model's"),
    K_STRING(struct config_persona, top_p, NULL, LIVE,
             "nucleus sampling, 0 to 1, over the model's; default: the model's"),
    K_INT(struct config_persona, max_tokens, "0", 0, 1000000, LIVE,
          "most tokens generated, at most the model's max_output_tokens; 0: the model's"),
    K_STRING(struct config_persona, stop, NULL, LIVE,
             "stop sequences, a JSON array of strings, instead of the model's"),
    K_STRING(struct config_persona, extra_body, NULL, LIVE,
             "a JSON object merged into the request body over the model's extra_body"),
    K_STRING(struct config_persona, forbidden_words, NULL, LIVE,
             "comma-separated words blocked in prompts and answers while the persona is in use"),
    K_STRING(struct config_persona, allow, NULL, LIVE,
             "who may use it: wallet ids, scope:<platform>:<id>, dm, admins; default everyone"),
    K_BOOL(struct config_persona, show_prompt, "false", LIVE,
           "whether /persona NAME shows members the system prompt"),
    K_BOOL(struct config_persona, approval, "false", LIVE,
           "its generations wait for an admin's approval (with [approval] enabled)"),
};

static const struct config_key_schema config_keys_limits[] = {
    K_INT(struct config_limits, user_per_hour, "0", 0, 1000000, LIVE,
          "generations per member per clock hour; 0: no limit"),
    K_INT(struct config_limits, pool_per_day, "0", 0, 100000000, LIVE,
          "generations per group per UTC day; 0: no limit"),
    K_INT(struct config_limits, tokens_per_day, "0", 0, CREDITS_MAX, LIVE,
          "tokens for everyone per UTC day; 0: no limit"),
    K_INT(struct config_limits, queue_max, "64", 1, 100000, LIVE, "jobs waiting, everyone"),
    K_INT(struct config_limits, user_queue, "2", 1, 1000, LIVE, "jobs waiting per member"),
    K_INT(struct config_limits, user_in_flight, "1", 1, 100, LIVE, "jobs running per member"),
    K_INT(struct config_limits, prompt_max, "4000", 1, 6000, LIVE, "characters in a prompt"),
    K_INT(struct config_limits, memory_tokens, "2000", 1, 1000000, LIVE,
          "tokens of conversation /chat remembers"),
    K_SECONDS(struct config_limits, conversation_idle, "1d", 60, 365 * 86400, LIVE,
              "a conversation silent this long starts over by itself"),
    K_SECONDS(struct config_limits, conversation_retention, "30d", 3600, 3650 * 86400, LIVE,
              "stored conversations are deleted this long after their last turn"),
    K_INT(struct config_limits, retry_max, "2", 0, 10, LIVE,
          "retries per model after HTTP 429 or 5xx"),
    K_SECONDS(struct config_limits, job_timeout, "300", 5, 3600, LIVE,
              "seconds a job may take, retries and fallbacks included"),
    K_INT(struct config_limits, image_max_bytes, "5242880", 1024, 20971520, LIVE,
          "largest image a member may attach to a chat turn, in bytes (at most 20 MiB)"),
};

static const struct config_key_schema config_keys_filter[] = {
    K_ENUM(struct config_filter, kind, NULL, config_filter_kinds, LIVE | CONFIG_KEY_REQUIRED,
           "words, pattern, email, phone or card"),
    K_ENUM(struct config_filter, action, "block", config_filter_actions, LIVE,
           "block the whole text or redact the matches"),
    K_STRING(struct config_filter, words, NULL, LIVE, "words: comma-separated words or phrases"),
    K_BOOL(struct config_filter, leet, "false", LIVE,
           "words: also read 0 1 3 4 5 7 8 @ $ as letters"),
    K_STRING(struct config_filter, pattern, NULL, LIVE,
             "pattern: POSIX extended regular expression"),
    K_STRING(struct config_filter, replacement, NULL, LIVE, "redact: text put in place of a match"),
};

/* [access]: who may use the bot. Lists of "<platform>:<id>", checked by
 * config_check.c with core/access.h. */
static const char *const config_blocked_replies[] = {"message", "silent", NULL};
static const struct config_key_schema config_keys_access[] = {
    K_STRING(struct config_access, allow_users, NULL, LIVE,
             "only these members: discord:<id>, telegram:<id>, console:<name>"),
    K_STRING(struct config_access, block_users, NULL, LIVE, "never these members"),
    K_STRING(struct config_access, allow_roles, NULL, LIVE,
             "members holding one of these Discord roles get in: discord:<role id>"),
    K_STRING(struct config_access, block_roles, NULL, LIVE,
             "never members holding one of these Discord roles"),
    K_STRING(struct config_access, allow_groups, NULL, LIVE,
             "only in these servers or groups: discord:<guild id>, telegram:<chat id>"),
    K_STRING(struct config_access, block_groups, NULL, LIVE, "never in these servers or groups"),
    K_BOOL(struct config_access, dms, "yes", LIVE, "answer direct messages (and the console)"),
    K_ENUM(struct config_access, blocked_reply, "message", config_blocked_replies, LIVE,
           "what a refused member gets: one short message, or silence"),
};

static const struct config_key_schema config_keys_features[] = {
    K_BOOL(struct config_features, chat, "on", LIVE, "/chat, /new and chat turns"),
    K_BOOL(struct config_features, images, "on", LIVE, "/imagine"),
    K_BOOL(struct config_features, payments, "on", LIVE, "/deposit"),
    K_BOOL(struct config_features, approvals, "on", LIVE,
           "holding generations for an admin's approval"),
};

static const struct config_key_schema config_keys_revenue[] = {
    K_STRING(struct config_revenue, shares, NULL, LIVE,
             "shares of every charge: ACCOUNT PART, ... (25%, 12.5% or 2500bp; 100% in all)"),
    K_STRING(struct config_revenue, remainder, NULL, LIVE,
             "the account rounding leftovers go to; default the first share without <scope>"),
    K_STRING(struct config_revenue, adjustable, NULL, LIVE,
             "shares group admins may move with /admin revenue: ACCOUNT LOW-HIGH, ..."),
    K_STRING(struct config_revenue, holder_roles, NULL, LIVE,
             "Discord members seen holding one of these roles share holders:<scope>: "
             "discord:<role id>, ..."),
    K_STRING(struct config_revenue, holder_members, NULL, LIVE,
             "listed holders sharing holders:<scope>: <platform>:<group>/<user>[*weight], ..."),
    K_ENUM(struct config_revenue, holder_payout, "weekly", config_holder_payouts, LIVE,
           "when the holder accounts are paid out pro rata: weekly or daily"),
};

static const struct config_key_schema config_keys_contest[] = {
    K_INT(struct config_contest, winners, "3", 1, 10, LIVE, "creators a contest pays, best first"),
    K_STRING(struct config_contest, split, "50,30,20", LIVE,
             "their parts of the prize in percent, one per winner (100 or less in all)"),
    K_STRING(struct config_contest, weight_roles, NULL, LIVE,
             "contest votes of members holding these Discord roles count more: "
             "discord:<role id> N, ..."),
    K_BOOL(struct config_contest, weight_holders, "off", LIVE,
           "a holder's contest vote counts their holding weight ([revenue] holder_*)"),
    K_STRING(struct config_contest, schedule, NULL, LIVE,
             "groups whose contests start and end by themselves: telegram:<group>, "
             "discord:<server>/<channel>, ..."),
    K_STRING(struct config_contest, schedule_period, "week", LIVE,
             "a scheduled contest's window: week (Monday to Monday, UTC) or a number of days"),
    K_INT(struct config_contest, schedule_prize, "0", 0, CREDITS_MAX, LIVE,
          "credits a scheduled contest pays; 0: the prize account's balance at its end"),
};

static const struct config_key_schema config_keys_gallery[] = {
    K_SECONDS(struct config_gallery, retention, "30d", 86400, 3650 * 86400, LIVE,
              "generated images are deleted from the store this long after they were made"),
    K_INT(struct config_gallery, max_images, "10000", 0, 100000000, LIVE,
          "most generated images kept, the newest (the oldest go first); 0: no cap"),
};

static const struct config_key_schema config_keys_notices[] = {
    K_INT(struct config_notices, low_balance, "0", 0, CREDITS_MAX, LIVE,
          "credits: a wallet or pool falling below it is told once per crossing; 0: never"),
    K_BOOL(struct config_notices, upvotes, "on", LIVE,
           "tell creators when their images are upvoted"),
    K_SECONDS(struct config_notices, upvote_interval, "3600", 60, 604800, LIVE,
              "least time between two upvote notices to one member"),
};

static const struct config_key_schema config_keys_alerts[] = {
    K_BOOL(struct config_alerts, enabled, "false", LIVE, "evaluate the alert rules"),
    K_BOOL(struct config_alerts, console, "true", LIVE, "write alerts to the log"),
    K_STRING(struct config_alerts, discord_channel, NULL, LIVE,
             "a Discord channel id alerts are posted in"),
    K_STRING(struct config_alerts, telegram_chat, NULL, LIVE,
             "a Telegram chat id alerts are posted in"),
    K_URL(struct config_alerts, webhook_url, NULL, LIVE, "POST each alert as JSON to this URL"),
    K_SECONDS(struct config_alerts, interval, "30", 1, 3600, LIVE,
              "seconds between two evaluations"),
    K_SECONDS(struct config_alerts, window, "300", 10, 86400, LIVE,
              "how far back rates and the p95 look"),
    K_INT(struct config_alerts, min_samples, "10", 1, 1000000, LIVE,
          "events a rate or the p95 needs in the window"),
    K_SECONDS(struct config_alerts, repeat_after, "900", 0, 86400, LIVE,
              "a rule fires at most once per this"),
    K_INT(struct config_alerts, credits_per_day, "0", 0, CREDITS_MAX, LIVE,
          "credits spent since 00:00 UTC above which it alerts; 0: off"),
    K_INT(struct config_alerts, provider_error_percent, "0", 0, 100, LIVE,
          "failed generations in percent of finished ones; 0: off"),
    K_INT(struct config_alerts, filter_hit_percent, "0", 0, 100, LIVE,
          "content-filter checks that blocked or redacted, in percent; 0: off"),
    K_INT(struct config_alerts, latency_p95_ms, "0", 0, 3600000, LIVE,
          "provider time to first byte, 95th percentile, in ms; 0: off"),
    K_BOOL(struct config_alerts, storage_errors, "true", LIVE, "any failed storage commit"),
    K_BOOL(struct config_alerts, payments, "true", LIVE,
           "any failed payment webhook or unmatched payment"),
    K_SECONDS(struct config_alerts, platform_down, "120", 0, 86400, LIVE,
              "a Discord shard or the Telegram poller down this long; 0: off"),
};

/* [approval]: generations that wait for an admin (core/approval.h);
 * config_check.c checks the models and the destinations. */
static const struct config_key_schema config_keys_approval[] = {
    K_BOOL(struct config_approval, enabled, "false", LIVE,
           "hold generations for an admin's approval by the rules below"),
    K_INT(struct config_approval, above, "0", 0, CREDITS_MAX, LIVE,
          "hold when the reserved cost is above this many credits; 0: off"),
    K_STRING(struct config_approval, models, NULL, LIVE,
             "models that always need approval, separated by commas"),
    K_INT(struct config_approval, new_member_days, "0", 0, 36500, LIVE,
          "hold for members whose wallet is younger than this many days; 0: off"),
    K_INT(struct config_approval, new_member_spent, "0", 0, CREDITS_MAX, LIVE,
          "hold for members who spent fewer credits than this; 0: off"),
    K_SECONDS(struct config_approval, timeout, "24h", 60, 2592000, LIVE,
              "how long a held job waits; then its reservation is voided"),
    K_STRING(struct config_approval, discord_channel, NULL, LIVE,
             "Discord channel id where admins see held jobs"),
    K_STRING(struct config_approval, telegram_chat, NULL, LIVE,
             "Telegram chat id where admins see held jobs (with buttons)"),
    K_STRING(struct config_approval, reasons, "Not allowed here, Too expensive, Unclear prompt",
             LIVE, "reject reasons offered as buttons, separated by commas"),
};

#define SECTION(n, field, keys, help)                                                              \
    {                                                                                              \
        n, false, offsetof(struct config, field), 0, 0, keys, sizeof(keys) / sizeof(keys[0]), help \
    }
#define SECTIONS(n, field, count, type, keys, help)                                                \
    {                                                                                              \
        n, true, offsetof(struct config, field), offsetof(struct config, count), sizeof(type),     \
            keys, sizeof(keys) / sizeof(keys[0]), help                                             \
    }

const struct config_section_schema config__schema[] = {
    SECTION("bot", bot, config_keys_bot, "the daemon itself"),
    SECTION("storage", storage, config_keys_storage, "where credits are kept"),
    SECTION("ledger", ledger, config_keys_ledger, "credit rules"),
    SECTION("console", console, config_keys_console, "the local console adapter"),
    SECTION("discord", discord, config_keys_discord, "the Discord adapter"),
    SECTION("telegram", telegram, config_keys_telegram, "the Telegram adapter"),
    SECTION("server", server, config_keys_server, "the HTTP server"),
    SECTION("api", api, config_keys_api, "the metered API paid in credits"),
    SECTION("payments", payments, config_keys_payments, "what deposits buy"),
    SECTION("stripe", stripe, config_keys_stripe, "Stripe checkout and webhooks"),
    SECTION("paddle", paddle, config_keys_paddle, "Paddle checkout and webhooks"),
    SECTION("hedera", hedera, config_keys_hedera, "HBAR and token deposits by memo"),
    SECTIONS("provider", providers, nproviders, struct config_provider, config_keys_provider,
             "a model provider (repeatable, named)"),
    SECTIONS("model", models, nmodels, struct config_model, config_keys_model,
             "a model offered to users (repeatable, named)"),
    SECTIONS("persona", personas, npersonas, struct config_persona, config_keys_persona,
             "a persona: system prompt and settings members choose (repeatable, named)"),
    SECTION("limits", limits, config_keys_limits, "generation limits and the queue"),
    SECTIONS("filter", filters, nfilters, struct config_filter, config_keys_filter,
             "a content filter rule for prompts and outputs (repeatable, named)"),
    SECTION("access", access, config_keys_access, "who may use the bot"),
    SECTION("features", features, config_keys_features, "what the bot offers, for everyone"),
    SECTION("notices", notices, config_keys_notices, "what members are told without asking"),
    SECTION("revenue", revenue, config_keys_revenue, "how each generation's charge is shared"),
    SECTION("contest", contest, config_keys_contest, "how a group's contest pays its prize"),
    SECTION("gallery", gallery, config_keys_gallery,
            "how long generated images are kept, for Regenerate, /gallery and contests"),
    SECTION("alerts", alerts, config_keys_alerts, "alerts to operators"),
    SECTION("approval", approval, config_keys_approval, "generations that wait for an admin"),
};

const size_t config__nsections = sizeof(config__schema) / sizeof(config__schema[0]);

const struct config_section_schema *config_schema_get(size_t *count)
{
    *count = config__nsections;
    return config__schema;
}

/* ---- Field access through the schema ------------------------------------ */

/* Repeatable sections keep their elements in an array whose pointer sits in
 * struct config; memcpy reads and writes it without type punning. */
void *config__array_get(const struct config *cfg, const struct config_section_schema *s)
{
    void *arr;
    memcpy(&arr, (const char *)cfg + s->offset, sizeof(arr));
    return arr;
}

void config__array_set(struct config *cfg, const struct config_section_schema *s, void *arr)
{
    memcpy((char *)cfg + s->offset, &arr, sizeof(arr));
}

size_t *config__count(const struct config *cfg, const struct config_section_schema *s)
{
    return (size_t *)(void *)((char *)(uintptr_t)cfg + s->count_offset);
}

size_t config__instances(const struct config *cfg, const struct config_section_schema *s)
{
    return s->repeatable ? *config__count(cfg, s) : 1;
}

/* The section struct of one instance (index 0 for single sections). */
void *config__item(const struct config *cfg, const struct config_section_schema *s, size_t index)
{
    if (!s->repeatable)
        return (char *)(uintptr_t)cfg + s->offset;
    return (char *)config__array_get(cfg, s) + index * s->item_size;
}

/* Repeatable sections begin with the instance name (char *name). */
const char *config__item_name(const void *item)
{
    const char *const *name = item;
    return *name;
}

void *config__field(void *item, const struct config_key_schema *k)
{
    return (char *)item + k->offset;
}

bool config__is_string_type(enum config_type t)
{
    return t == CONFIG_STRING || t == CONFIG_URL || t == CONFIG_SECRET;
}

const struct config_section_schema *config__section_find(const char *name)
{
    for (size_t i = 0; i < config__nsections; i++) {
        if (strcmp(config__schema[i].name, name) == 0)
            return &config__schema[i];
    }
    return NULL;
}

const struct config_key_schema *config__key_find(const struct config_section_schema *s,
                                                 const char *name, size_t len, size_t *idx)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        if (strlen(s->keys[k].name) == len && strncmp(s->keys[k].name, name, len) == 0) {
            *idx = k;
            return &s->keys[k];
        }
    }
    return NULL;
}
