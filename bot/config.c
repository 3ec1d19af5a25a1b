/* The configuration: schema table, parser (over libinih), validation and
 * comparison. See config.h for the file's shape. */
#include "bot/config.h"

#include "base/error.h"
#include "base/text.h"
#include "core/filter.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enum fields are written through an int pointer: the enums here must be
 * int-sized (GCC and Clang make them unsigned int, which may alias int). */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_storage_backend) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_provider_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_modality) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_filter_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_filter_action) == sizeof(int), "enum size");

/* ---- The schema ---------------------------------------------------------- */

/* The choices lists follow the C enums' order: the stored value is the index. */
static const char *const config_log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const config_log_formats[] = {"text", "json", NULL};
static const char *const config_backends[] = {"sqlite", NULL};
static const char *const config_provider_kinds[] = {"openai", "anthropic", "demo", NULL};
static const char *const config_modalities[] = {"text", "image", NULL};
static const char *const config_filter_kinds[] = {"words", "pattern", "email", "phone", "card",
                                                  NULL};
static const char *const config_filter_actions[] = {"block", "redact", NULL};

#define LIVE CONFIG_KEY_LIVE
#define RESTART 0u
#define CREDITS_MAX ((int64_t)1000000000000) /* 10^12: far above any price, far below overflow */

/* One row per key. The key's name is the struct field's name. */
#define K_STRING(S, f, def, fl, help)                                                              \
    {                                                                                              \
#f, CONFIG_STRING, offsetof(S, f), def, 0, 0, NULL, fl, help                               \
    }
#define K_BOOL(S, f, def, fl, help)                                                                \
    {                                                                                              \
#f, CONFIG_BOOL, offsetof(S, f), def, 0, 0, NULL, fl, help                                 \
    }
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
};

static const struct config_key_schema config_keys_storage[] = {
    K_ENUM(struct config_storage, backend, "sqlite", config_backends, RESTART,
           "where the ledger is stored"),
    K_STRING(struct config_storage, path, "haibot.db", RESTART, "database file"),
    K_SECONDS(struct config_storage, reservation_timeout, "600", 10, 86400, LIVE,
              "seconds before an unsettled credit reservation is voided"),
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
    K_STRING(struct config_discord, shards, "auto", RESTART,
             "total shard count, or auto for Discord's recommendation"),
    K_INT(struct config_discord, shard_first, "0", 0, 4095, RESTART,
          "first shard this daemon runs"),
    K_INT(struct config_discord, shard_last, "-1", -1, 4095, RESTART,
          "last shard this daemon runs; -1: the last one"),
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
};

static const struct config_key_schema config_keys_hedera[] = {
    K_BOOL(struct config_hedera, enabled, "false", RESTART, "credit HBAR and token deposits"),
    K_URL(struct config_hedera, mirror_url, "https://mainnet-public.mirrornode.hedera.com",
          RESTART, "mirror node REST base URL"),
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
    K_INT(struct config_limits, retry_max, "2", 0, 10, LIVE,
          "retries per model after HTTP 429 or 5xx"),
    K_SECONDS(struct config_limits, job_timeout, "300", 5, 3600, LIVE,
              "seconds a job may take, retries and fallbacks included"),
};

static const struct config_key_schema config_keys_filter[] = {
    K_ENUM(struct config_filter, kind, NULL, config_filter_kinds, LIVE | CONFIG_KEY_REQUIRED,
           "words, pattern, email, phone or card"),
    K_ENUM(struct config_filter, action, "block", config_filter_actions, LIVE,
           "block the whole text or redact the matches"),
    K_STRING(struct config_filter, words, NULL, LIVE, "words: comma-separated words or phrases"),
    K_BOOL(struct config_filter, leet, "false", LIVE, "words: also read 0 1 3 4 5 7 8 @ $ as letters"),
    K_STRING(struct config_filter, pattern, NULL, LIVE, "pattern: POSIX extended regular expression"),
    K_STRING(struct config_filter, replacement, NULL, LIVE, "redact: text put in place of a match"),
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

static const struct config_section_schema config_schema[] = {
    SECTION("bot", bot, config_keys_bot, "the daemon itself"),
    SECTION("storage", storage, config_keys_storage, "where credits are kept"),
    SECTION("ledger", ledger, config_keys_ledger, "credit rules"),
    SECTION("console", console, config_keys_console, "the local console adapter"),
    SECTION("discord", discord, config_keys_discord, "the Discord adapter"),
    SECTION("telegram", telegram, config_keys_telegram, "the Telegram adapter"),
    SECTION("server", server, config_keys_server, "the HTTP server"),
    SECTION("payments", payments, config_keys_payments, "what deposits buy"),
    SECTION("stripe", stripe, config_keys_stripe, "Stripe checkout and webhooks"),
    SECTION("paddle", paddle, config_keys_paddle, "Paddle checkout and webhooks"),
    SECTION("hedera", hedera, config_keys_hedera, "HBAR and token deposits by memo"),
    SECTIONS("provider", providers, nproviders, struct config_provider, config_keys_provider,
             "a model provider (repeatable, named)"),
    SECTIONS("model", models, nmodels, struct config_model, config_keys_model,
             "a model offered to users (repeatable, named)"),
    SECTION("limits", limits, config_keys_limits, "generation limits and the queue"),
    SECTIONS("filter", filters, nfilters, struct config_filter, config_keys_filter,
             "a content filter rule for prompts and outputs (repeatable, named)"),
};

#define CONFIG_NSECTIONS (sizeof(config_schema) / sizeof(config_schema[0]))

const struct config_section_schema *config_schema_get(size_t *count)
{
    *count = CONFIG_NSECTIONS;
    return config_schema;
}

/* ---- Field access through the schema ------------------------------------ */

/* Repeatable sections keep their elements in an array whose pointer sits in
 * struct config; memcpy reads and writes it without type punning. */
static void *config__array_get(const struct config *cfg, const struct config_section_schema *s)
{
    void *arr;
    memcpy(&arr, (const char *)cfg + s->offset, sizeof(arr));
    return arr;
}

static void config__array_set(struct config *cfg, const struct config_section_schema *s, void *arr)
{
    memcpy((char *)cfg + s->offset, &arr, sizeof(arr));
}

static size_t *config__count(const struct config *cfg, const struct config_section_schema *s)
{
    return (size_t *)(void *)((char *)(uintptr_t)cfg + s->count_offset);
}

static size_t config__instances(const struct config *cfg, const struct config_section_schema *s)
{
    return s->repeatable ? *config__count(cfg, s) : 1;
}

/* The section struct of one instance (index 0 for single sections). */
static void *config__item(const struct config *cfg, const struct config_section_schema *s,
                          size_t index)
{
    if (!s->repeatable)
        return (char *)(uintptr_t)cfg + s->offset;
    return (char *)config__array_get(cfg, s) + index * s->item_size;
}

/* Repeatable sections begin with the instance name (char *name). */
static const char *config__item_name(const void *item)
{
    const char *const *name = item;
    return *name;
}

static void *config__field(void *item, const struct config_key_schema *k)
{
    return (char *)item + k->offset;
}

static bool config__is_string_type(enum config_type t)
{
    return t == CONFIG_STRING || t == CONFIG_URL || t == CONFIG_SECRET;
}

/* ---- Problems ------------------------------------------------------------ */

void config_problems_init(struct config_problems *p)
{
    memset(p, 0, sizeof(*p));
}

void config_problems_close(struct config_problems *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->items[i].message);
    free(p->items);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

__attribute__((format(printf, 3, 0)))
static int config__problem_vadd(struct config_problems *p, int line, const char *fmt, va_list ap)
{
    int rc = 0;
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
        rc = HB_ENOMEM;
        goto out;
    }
    if (p->count == p->cap) {
        size_t cap = p->cap == 0 ? 8 : p->cap * 2;
        struct config_problem *grown = realloc(p->items, cap * sizeof(*grown));
        if (grown == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
        p->items = grown;
        p->cap = cap;
    }
    p->items[p->count].line = line;
    p->items[p->count].message = msg;
    p->count++;
    msg = NULL;
out:
    free(msg);
    return rc;
}

static int config__problem_add(struct config_problems *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config__problem_add(struct config_problems *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = config__problem_vadd(p, line, fmt, ap);
    va_end(ap);
    return rc;
}

/* Sort by line, keeping the order of problems found on the same line. */
static void config__problems_sort(struct config_problems *p)
{
    for (size_t i = 1; i < p->count; i++) {
        struct config_problem cur = p->items[i];
        size_t j = i;
        while (j > 0 && p->items[j - 1].line > cur.line) {
            p->items[j] = p->items[j - 1];
            j--;
        }
        p->items[j] = cur;
    }
}

size_t config_problems_print(const struct config_problems *p, FILE *out)
{
    const char *file = p->file != NULL ? p->file : "(config)";
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].line > 0)
            fprintf(out, "%s:%d: %s\n", file, p->items[i].line, p->items[i].message);
        else
            fprintf(out, "%s: %s\n", file, p->items[i].message);
    }
    return p->count;
}

void config_problems_log(const struct config_problems *p)
{
    const char *file = p->file != NULL ? p->file : "(config)";
    for (size_t i = 0; i < p->count; i++)
        log_error("config.problem", "file=%s line=%d problem=%s", file, p->items[i].line,
                  p->items[i].message);
}

/* ---- Suggestions --------------------------------------------------------- */

#define CONFIG_NAME_MAX 64

/* Tracks the closest candidate to a misspelt word. */
struct config_suggest {
    const char *word;
    const char *best;
    size_t dist;
};

static void config__suggest_init(struct config_suggest *s, const char *word)
{
    s->word = word;
    s->best = NULL;
    s->dist = SIZE_MAX;
}

static void config__suggest_try(struct config_suggest *s, const char *candidate)
{
    size_t d = text_distance(s->word, candidate);
    /* A cut-short word ("de" for "demo") is a likely slip however short. */
    size_t len = strlen(s->word);
    if (len >= 2 && len < strlen(candidate) && strncasecmp(s->word, candidate, len) == 0)
        d = 1;
    if (d < s->dist) {
        s->dist = d;
        s->best = candidate;
    }
}

/* The best candidate when it is close enough to be a likely typo, else NULL. */
static const char *config__suggest_result(const struct config_suggest *s)
{
    size_t len = strlen(s->word);
    size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return s->best != NULL && s->dist > 0 && s->dist <= limit ? s->best : NULL;
}

/* ---- Value parsing ------------------------------------------------------- */

/* Parses text as key k into field. Returns 0, or HB_ECONFIG after adding a
 * problem at line, or HB_ENOMEM. */
static int config__value_set(struct config_problems *p, int line, const char *section,
                             const struct config_key_schema *k, void *field, const char *text)
{
    int rc = 0;
    switch (k->type) {
    case CONFIG_SECRET:
        if (text[0] == '\0') {
            rc = config__problem_add(p, line, "%s.%s must not be empty", section, k->name);
            goto fail;
        }
        /* fall through */
    case CONFIG_STRING:
    case CONFIG_URL: {
        if (k->type == CONFIG_URL) {
            const char *host = NULL;
            if (strncmp(text, "http://", 7) == 0)
                host = text + 7;
            else if (strncmp(text, "https://", 8) == 0)
                host = text + 8;
            bool bad = host == NULL || host[0] == '\0' || host[0] == '/';
            for (const char *c = text; !bad && *c != '\0'; c++)
                bad = isspace((unsigned char)*c) || iscntrl((unsigned char)*c);
            if (bad) {
                rc = config__problem_add(p, line,
                                         "%s.%s: \"%s\" is not a URL (expected http://HOST... "
                                         "or https://HOST...)",
                                         section, k->name, text);
                goto fail;
            }
        }
        char *copy = strdup(text);
        if (copy == NULL)
            return HB_ENOMEM;
        char **slot = field;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case CONFIG_BOOL: {
        if (text_bool_parse(text, (bool *)field) == 0)
            return 0;
        rc = config__problem_add(p, line, "%s.%s: expected true or false, got \"%s\"", section,
                                 k->name, text);
        goto fail;
    }
    case CONFIG_INT:
    case CONFIG_SECONDS: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        bool ok = end != text && errno == 0 && !isspace((unsigned char)text[0]);
        int64_t unit = 1;
        if (ok && k->type == CONFIG_SECONDS && *end != '\0' && end[1] == '\0') {
            switch (*end) {
            case 's':
                unit = 1;
                end++;
                break;
            case 'm':
                unit = 60;
                end++;
                break;
            case 'h':
                unit = 3600;
                end++;
                break;
            case 'd':
                unit = 86400;
                end++;
                break;
            default:
                break;
            }
        }
        ok = ok && *end == '\0';
        if (!ok && errno != ERANGE) {
            if (k->type == CONFIG_SECONDS)
                rc = config__problem_add(p, line,
                                         "%s.%s: expected a duration in seconds (like 30, 30s, "
                                         "5m, 2h), got \"%s\"",
                                         section, k->name, text);
            else
                rc = config__problem_add(p, line, "%s.%s: expected a whole number, got \"%s\"",
                                         section, k->name, text);
            goto fail;
        }
        bool in_range = ok && (v >= 0 ? v <= INT64_MAX / unit : v >= INT64_MIN / unit);
        int64_t value = in_range ? (int64_t)v * unit : 0;
        in_range = in_range && value >= k->min && value <= k->max;
        if (!in_range) {
            const char *unit_name = k->type == CONFIG_SECONDS ? " seconds" : "";
            if (k->max >= CREDITS_MAX)
                rc = config__problem_add(p, line, "%s.%s: %s is out of range (at least %lld%s)",
                                         section, k->name, text, (long long)k->min, unit_name);
            else
                rc = config__problem_add(p, line, "%s.%s: %s is out of range (%lld to %lld%s)",
                                         section, k->name, text, (long long)k->min,
                                         (long long)k->max, unit_name);
            goto fail;
        }
        *(int64_t *)field = value;
        return 0;
    }
    case CONFIG_ENUM: {
        struct config_suggest s;
        config__suggest_init(&s, text);
        for (int i = 0; k->choices[i] != NULL; i++) {
            if (strcasecmp(text, k->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
            config__suggest_try(&s, k->choices[i]);
        }
        char list[256] = "";
        for (int i = 0; k->choices[i] != NULL; i++) {
            if (i > 0)
                strncat(list, ", ", sizeof(list) - strlen(list) - 1);
            strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
        }
        const char *hint = config__suggest_result(&s);
        if (hint != NULL)
            rc =
                config__problem_add(p, line, "%s.%s: \"%s\" is not one of %s; did you mean \"%s\"?",
                                    section, k->name, text, list, hint);
        else
            rc = config__problem_add(p, line, "%s.%s: \"%s\" is not one of %s", section, k->name,
                                     text, list);
        goto fail;
    }
    }
    rc = config__problem_add(p, line, "%s.%s: unsupported type", section, k->name);
fail:
    return rc < 0 ? rc : HB_ECONFIG;
}

/* ---- Freeing ------------------------------------------------------------- */

static void config__item_free(const struct config_section_schema *s, void *item)
{
    if (s->repeatable) {
        char **name = item;
        free(*name);
        *name = NULL;
    }
    for (size_t k = 0; k < s->nkeys; k++) {
        if (!config__is_string_type(s->keys[k].type))
            continue;
        char **slot = config__field(item, &s->keys[k]);
        free(*slot);
        *slot = NULL;
    }
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < CONFIG_NSECTIONS; i++) {
        const struct config_section_schema *s = &config_schema[i];
        size_t n = config__instances(cfg, s);
        for (size_t j = 0; j < n; j++)
            config__item_free(s, config__item(cfg, s, j));
        if (s->repeatable)
            free(config__array_get(cfg, s));
    }
    free(cfg->path);
    free(cfg);
}

/* ---- Parsing ------------------------------------------------------------- */

/* One section instance as seen in the file. */
struct config_inst {
    const struct config_section_schema *sec;
    size_t index;   /* element of a repeatable section's array; 0 otherwise */
    int line;       /* line of its header; 0 when the file has none */
    int *key_lines; /* per schema key: the line that set it, 0 when unset */
    bool *key_bad;  /* per schema key: its value was refused (already reported) */
};

struct config_parser {
    struct config *cfg;
    struct config_problems *problems;
    const char *buf; /* the whole file */
    size_t len;
    size_t pos;
    int line;                  /* line last handed to inih */
    int last_problem_line;     /* line of the newest problem found by the reader */
    size_t nsettings;          /* key = value lines seen */
    struct config_inst *insts; /* every section instance, in file order */
    size_t ninsts;
    struct config_inst *cur; /* the section keys currently land in; NULL: none */
    bool skip;               /* the current section is broken: ignore its keys */
    int rc;                  /* HB_ENOMEM stops everything */
};

static void config__parser_oom(struct config_parser *ps, int rc)
{
    if (rc == HB_ENOMEM)
        ps->rc = HB_ENOMEM;
}

static int config__inst_add(struct config_parser *ps, const struct config_section_schema *s,
                            size_t index, int line, struct config_inst **out)
{
    struct config_inst *grown = realloc(ps->insts, (ps->ninsts + 1) * sizeof(*grown));
    if (grown == NULL)
        return HB_ENOMEM;
    ps->insts = grown;
    struct config_inst *in = &ps->insts[ps->ninsts];
    in->sec = s;
    in->index = index;
    in->line = line;
    in->key_lines = calloc(s->nkeys, sizeof(int));
    in->key_bad = calloc(s->nkeys, sizeof(bool));
    ps->ninsts++;
    if (in->key_lines == NULL || in->key_bad == NULL)
        return HB_ENOMEM;
    *out = in;
    return 0;
}

/* Fill an instance with the schema's defaults (parsed like file values, so a
 * wrong default in the table is reported rather than silently stored). */
static int config__defaults_apply(struct config_parser *ps, const struct config_section_schema *s,
                                  void *item)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        const struct config_key_schema *key = &s->keys[k];
        if (key->def == NULL)
            continue;
        int rc =
            config__value_set(ps->problems, 0, s->name, key, config__field(item, key), key->def);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const struct config_section_schema *config__section_find(const char *name)
{
    for (size_t i = 0; i < CONFIG_NSECTIONS; i++) {
        if (strcmp(config_schema[i].name, name) == 0)
            return &config_schema[i];
    }
    return NULL;
}

static struct config_inst *
config__inst_find(struct config_parser *ps, const struct config_section_schema *s, const char *name)
{
    for (size_t i = 0; i < ps->ninsts; i++) {
        struct config_inst *in = &ps->insts[i];
        if (in->sec != s)
            continue;
        if (!s->repeatable)
            return in;
        if (strcmp(config__item_name(config__item(ps->cfg, s, in->index)), name) == 0)
            return in;
    }
    return NULL;
}

/* Appends a zeroed, defaulted element named name to a repeatable section. */
static int config__element_add(struct config_parser *ps, const struct config_section_schema *s,
                               const char *name, size_t *index)
{
    size_t *count = config__count(ps->cfg, s);
    char *arr = realloc(config__array_get(ps->cfg, s), (*count + 1) * s->item_size);
    if (arr == NULL)
        return HB_ENOMEM;
    config__array_set(ps->cfg, s, arr);
    void *item = arr + *count * s->item_size;
    memset(item, 0, s->item_size);
    (*count)++;
    char **slot = item;
    *slot = strdup(name);
    if (*slot == NULL)
        return HB_ENOMEM;
    *index = *count - 1;
    return config__defaults_apply(ps, s, item);
}

static int config__reader_problem(struct config_parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int config__reader_problem(struct config_parser *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = config__problem_vadd(ps->problems, ps->line, fmt, ap);
    va_end(ap);
    ps->last_problem_line = ps->line;
    config__parser_oom(ps, rc);
    return rc;
}

static bool config__is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Where an inline comment (" ;" or " #", as inih is told) begins, or end. */
static const char *config__comment_find(const char *s, const char *end)
{
    for (const char *c = s; c < end; c++) {
        if ((*c == ';' || *c == '#') && c > s && isspace((unsigned char)c[-1]))
            return c;
    }
    return end;
}

/* A section header line: [name] or [name "instance"]. Sets the current
 * section, or skip when the header is wrong (its keys are then ignored: one
 * problem for the header is clearer than one per key). */
static void config__header_parse(struct config_parser *ps, const char *s, const char *end)
{
    int rc = 0;
    char kind[CONFIG_NAME_MAX + 1];
    char *inst_name = NULL;
    ps->cur = NULL;
    ps->skip = true;
    const char *close = memchr(s, ']', (size_t)(end - s));
    if (close == NULL) {
        config__reader_problem(ps, "unterminated section header (missing \"]\")");
        goto out;
    }
    for (const char *c = close + 1; c < end; c++) {
        if (*c == ';' || *c == '#')
            break;
        if (!isspace((unsigned char)*c)) {
            config__reader_problem(ps, "unexpected text after the section header");
            goto out;
        }
    }
    const char *c = s + 1;
    while (c < close && isspace((unsigned char)*c))
        c++;
    size_t n = 0;
    while (c < close && config__is_name_char(*c) && n < CONFIG_NAME_MAX)
        kind[n++] = *c++;
    kind[n] = '\0';
    while (c < close && isspace((unsigned char)*c))
        c++;
    if (n == 0) {
        config__reader_problem(ps, "a section header needs a name, like [bot]");
        goto out;
    }
    if (c < close) {
        const char *q = c < close && *c == '"' ? memchr(c + 1, '"', (size_t)(close - c - 1)) : NULL;
        const char *after = q != NULL ? q + 1 : close;
        while (after < close && isspace((unsigned char)*after))
            after++;
        if (q == NULL || after != close) {
            config__reader_problem(ps,
                                   "section [%s]: the name must be in double quotes, like "
                                   "[%s \"NAME\"]",
                                   kind, kind);
            goto out;
        }
        inst_name = strndup(c + 1, (size_t)(q - c - 1));
        if (inst_name == NULL) {
            ps->rc = HB_ENOMEM;
            goto out;
        }
    }
    const struct config_section_schema *sec = config__section_find(kind);
    if (sec == NULL) {
        struct config_suggest sg;
        config__suggest_init(&sg, kind);
        for (size_t i = 0; i < CONFIG_NSECTIONS; i++)
            config__suggest_try(&sg, config_schema[i].name);
        const char *hint = config__suggest_result(&sg);
        if (hint != NULL)
            config__reader_problem(ps, "unknown section [%s]; did you mean [%s]?", kind, hint);
        else
            config__reader_problem(ps, "unknown section [%s]", kind);
        goto out;
    }
    if (sec->repeatable && inst_name == NULL) {
        config__reader_problem(ps, "section [%s] needs a name, like [%s \"NAME\"]", kind, kind);
        goto out;
    }
    if (!sec->repeatable && inst_name != NULL) {
        config__reader_problem(ps, "section [%s] takes no name (there is only one)", kind);
        goto out;
    }
    if (inst_name != NULL && inst_name[0] == '\0') {
        config__reader_problem(ps, "section [%s] needs a non-empty name", kind);
        goto out;
    }
    struct config_inst *in = config__inst_find(ps, sec, inst_name);
    if (in != NULL && in->line > 0) {
        if (inst_name != NULL)
            config__reader_problem(ps, "duplicate section [%s \"%s\"] (first on line %d)", kind,
                                   inst_name, in->line);
        else
            config__reader_problem(ps, "duplicate section [%s] (first on line %d)", kind, in->line);
        goto out;
    }
    if (in == NULL) {
        size_t index = 0;
        rc = config__element_add(ps, sec, inst_name, &index);
        if (rc == 0)
            rc = config__inst_add(ps, sec, index, ps->line, &in);
        if (rc < 0) {
            config__parser_oom(ps, rc);
            goto out;
        }
    }
    in->line = ps->line;
    ps->cur = in;
    ps->skip = false;
out:
    free(inst_name);
}

/* Looks at one line before inih does, to catch what inih would report only
 * as "first error on line N" (or not at all), and to track sections with
 * their line numbers. Returns false when the line must not reach inih. */
static bool config__line_check(struct config_parser *ps, const char *s, const char *end)
{
    if (ps->line == 1 && end - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (s == end || *s == ';' || *s == '#')
        return true;
    if (*s == '[') {
        config__header_parse(ps, s, end);
        return ps->cur != NULL;
    }
    const char *stop = config__comment_find(s, end);
    const char *eq = memchr(s, '=', (size_t)(stop - s));
    if (eq == NULL) {
        config__reader_problem(ps, "expected KEY = VALUE");
        return false;
    }
    if (eq == s) {
        config__reader_problem(ps, "a key is missing before \"=\"");
        return false;
    }
    return true;
}

/* inih's reader: hands over one line at a time, counting lines. */
static char *config__reader(char *str, int num, void *stream)
{
    struct config_parser *ps = stream;
    if (ps->pos >= ps->len || ps->rc < 0)
        return NULL;
    const char *start = ps->buf + ps->pos;
    const char *nl = memchr(start, '\n', ps->len - ps->pos);
    size_t n = nl != NULL ? (size_t)(nl - start) + 1 : ps->len - ps->pos;
    ps->pos += n;
    ps->line++;
    if (n + 1 > (size_t)num) {
        config__reader_problem(ps, "line too long (the limit is %d characters)", num - 2);
        strcpy(str, "\n");
        return str;
    }
    if (!config__line_check(ps, start, start + n)) {
        strcpy(str, "\n");
        return str;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    return str;
}

static bool config__env_name_valid(const char *name)
{
    if (name[0] == '\0' || isdigit((unsigned char)name[0]))
        return false;
    for (const char *c = name; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_')
            return false;
    }
    return true;
}

static const struct config_key_schema *config__key_find(const struct config_section_schema *s,
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

static void config__key_unknown(struct config_parser *ps, const char *name)
{
    const struct config_section_schema *s = ps->cur->sec;
    struct config_suggest sg;
    char env[CONFIG_NAME_MAX + 8];
    size_t len = strlen(name);
    bool is_env = len > 4 && strcmp(name + len - 4, "_env") == 0;
    config__suggest_init(&sg, name);
    for (size_t k = 0; k < s->nkeys; k++) {
        if (is_env) {
            snprintf(env, sizeof(env), "%s_env", s->keys[k].name);
            if (text_distance(name, env) < sg.dist) {
                sg.dist = text_distance(name, env);
                sg.best = s->keys[k].name;
            }
        } else {
            config__suggest_try(&sg, s->keys[k].name);
        }
    }
    const char *hint = config__suggest_result(&sg);
    /* A key of another section was probably put under the wrong header. */
    char where[160] = "";
    size_t base_len = is_env ? len - 4 : len;
    for (size_t i = 0; i < CONFIG_NSECTIONS && hint == NULL; i++) {
        size_t idx;
        if (&config_schema[i] == s ||
            config__key_find(&config_schema[i], name, base_len, &idx) == NULL)
            continue;
        size_t used = strlen(where);
        snprintf(where + used, sizeof(where) - used, "%s[%s]", used > 0 ? " or " : "",
                 config_schema[i].name);
    }
    int rc;
    if (hint != NULL)
        rc = config__problem_add(ps->problems, ps->line,
                                 "unknown key \"%s\" in [%s]; did you mean \"%s%s\"?", name,
                                 s->name, hint, is_env ? "_env" : "");
    else if (where[0] != '\0')
        rc = config__problem_add(ps->problems, ps->line,
                                 "unknown key \"%s\" in [%s]; it belongs under %s", name, s->name,
                                 where);
    else
        rc = config__problem_add(ps->problems, ps->line, "unknown key \"%s\" in [%s]", name,
                                 s->name);
    config__parser_oom(ps, rc);
}

/* inih's handler: one key = value line. Never stops the parse (returns 1)
 * so that every problem is found. */
static int config__handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_parser *ps = user;
    (void)section; /* the reader tracks sections itself, with their lines */
    if (ps->rc < 0)
        return 1;
    ps->nsettings++;
    if (ps->skip)
        return 1;
    if (ps->cur == NULL) {
        config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                   "\"%s\" is outside any section; put it under "
                                                   "a header like [bot]",
                                                   name));
        return 1;
    }
    const struct config_section_schema *s = ps->cur->sec;
    size_t len = strlen(name);
    size_t idx = 0;
    bool from_env = false;
    const struct config_key_schema *k = config__key_find(s, name, len, &idx);
    if (k == NULL && len > 4 && strcmp(name + len - 4, "_env") == 0) {
        k = config__key_find(s, name, len - 4, &idx);
        from_env = k != NULL;
    }
    if (k == NULL) {
        config__key_unknown(ps, name);
        return 1;
    }
    int first = ps->cur->key_lines[idx];
    if (first != 0) {
        config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                   "duplicate key \"%s\" in [%s] (first set on "
                                                   "line %d)",
                                                   k->name, s->name, first));
        return 1;
    }
    ps->cur->key_lines[idx] = ps->line;

    char *unquoted = NULL;
    const char *text = value;
    if (from_env) {
        if (!config__env_name_valid(value)) {
            config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                       "%s: \"%s\" is not an environment variable "
                                                       "name",
                                                       name, value));
            return 1;
        }
        text = getenv(value);
        if (text == NULL) {
            config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                       "environment variable %s is not set (%s.%s "
                                                       "reads it)",
                                                       value, s->name, k->name));
            return 1;
        }
    } else {
        /* A value in double quotes keeps its spaces; the quotes go. */
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            unquoted = strndup(value + 1, vlen - 2);
            if (unquoted == NULL) {
                ps->rc = HB_ENOMEM;
                return 1;
            }
            text = unquoted;
        }
    }
    const char *secname = s->name;
    char label[CONFIG_NAME_MAX * 2 + 8];
    if (s->repeatable) {
        snprintf(label, sizeof(label), "%s \"%s\"", s->name,
                 config__item_name(config__item(ps->cfg, s, ps->cur->index)));
        secname = label;
    }
    void *item = config__item(ps->cfg, s, ps->cur->index);
    int rc = config__value_set(ps->problems, ps->line, secname, k, config__field(item, k), text);
    ps->cur->key_bad[idx] = rc < 0;
    config__parser_oom(ps, rc);
    free(unquoted);
    return 1;
}

/* ---- Validation after parsing --------------------------------------------- */

static bool config__enabled(const struct config_section_schema *s, void *item)
{
    size_t idx;
    const struct config_key_schema *k = config__key_find(s, "enabled", 7, &idx);
    return k != NULL && k->type == CONFIG_BOOL && *(bool *)config__field(item, k);
}

static void config__section_label(const struct config_section_schema *s, void *item, char *buf,
                                  size_t cap)
{
    if (s->repeatable)
        snprintf(buf, cap, "[%s \"%s\"]", s->name, config__item_name(item));
    else
        snprintf(buf, cap, "[%s]", s->name);
}

/* A filter rule must build: words given, a pattern that compiles. */
static int config__filter_check(struct config_parser *ps, const struct config_filter *f, int line)
{
    char *copy = f->words != NULL ? strdup(f->words) : NULL;
    const char *words[256];
    size_t nwords = text_words_split(copy, words, 256);
    struct filter_rule rule = {.name = f->name,
                               .kind = (enum filter_kind)f->kind,
                               .action = (enum filter_action)f->action,
                               .words = words,
                               .nwords = nwords,
                               .leet = f->leet,
                               .pattern = f->pattern,
                               .replacement = f->replacement};
    char err[256] = "";
    struct filter *built = filter_new(&rule, 1, err, sizeof(err));
    int rc = 0;
    if (built == NULL)
        rc = config__problem_add(ps->problems, line, "[filter \"%s\"]: %s", f->name, err);
    filter_free(built);
    free(copy);
    return rc;
}

/* Every fallback names a model of the file. */
static int config__fallbacks_check(struct config_parser *ps, const struct config_model *m,
                                   int line)
{
    if (m->fallbacks == NULL)
        return 0;
    char *copy = strdup(m->fallbacks);
    if (copy == NULL)
        return HB_ENOMEM;
    int rc = 0;
    for (char *save = NULL, *w = strtok_r(copy, ",", &save); w != NULL && rc == 0;
         w = strtok_r(NULL, ",", &save)) {
        while (*w == ' ' || *w == '\t')
            w++;
        size_t len = strlen(w);
        while (len > 0 && (w[len - 1] == ' ' || w[len - 1] == '\t'))
            w[--len] = '\0';
        if (len == 0)
            continue;
        if (config_model_find(ps->cfg, w) == NULL)
            rc = config__problem_add(ps->problems, line,
                                     "[model \"%s\"]: fallback \"%s\" is not a [model] section",
                                     m->name, w);
        else if (strcmp(w, m->name) == 0)
            rc = config__problem_add(ps->problems, line,
                                     "[model \"%s\"] lists itself as a fallback", m->name);
    }
    free(copy);
    return rc;
}

static bool config__hex_is(const char *s, size_t digits)
{
    if (s == NULL || strlen(s) != digits)
        return false;
    for (size_t i = 0; i < digits; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* Endpoints on the HTTP server need the server, and their keys. */
static int config__endpoints_check(struct config_parser *ps)
{
    const struct config_discord *dc = &ps->cfg->discord;
    int rc = 0;
    if (dc->enabled && dc->interactions_endpoint) {
        if (!config__hex_is(dc->public_key, 64))
            rc = config__problem_add(ps->problems, 0,
                                     "[discord] interactions_endpoint needs public_key = the "
                                     "application's public key (64 hex digits)");
        else if (!ps->cfg->server.enabled)
            rc = config__problem_add(ps->problems, 0,
                                     "[discord] interactions_endpoint needs [server] enabled = true");
    }
    const struct config_telegram *tc = &ps->cfg->telegram;
    if (rc == 0 && tc->enabled && tc->webhook) {
        bool ok = tc->webhook_secret != NULL && strlen(tc->webhook_secret) <= 256 &&
                  tc->webhook_secret[0] != '\0';
        for (const char *c = ok ? tc->webhook_secret : ""; *c != '\0'; c++) {
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
                ok = false;
        }
        if (!ok)
            rc = config__problem_add(ps->problems, 0,
                                     "[telegram] webhook needs webhook_secret = 1 to 256 of "
                                     "A-Z, a-z, 0-9, _ and - (better: webhook_secret_env)");
        else if (!ps->cfg->server.enabled)
            rc = config__problem_add(ps->problems, 0,
                                     "[telegram] webhook needs [server] enabled = true");
    }
    return rc;
}

/* Required keys, per-instance defaults, and rules across keys or sections. */
static int config__validate(struct config_parser *ps)
{
    int rc = 0;
    char label[CONFIG_NAME_MAX * 2 + 8];
    for (size_t i = 0; i < ps->ninsts && rc == 0; i++) {
        struct config_inst *in = &ps->insts[i];
        const struct config_section_schema *s = in->sec;
        void *item = config__item(ps->cfg, s, in->index);
        bool enabled = config__enabled(s, item);
        config__section_label(s, item, label, sizeof(label));
        for (size_t k = 0; k < s->nkeys && rc == 0; k++) {
            const struct config_key_schema *key = &s->keys[k];
            bool set = in->key_lines[k] != 0;
            if (!set && (key->flags & CONFIG_KEY_DEFAULT_NAME)) {
                char **slot = config__field(item, key);
                *slot = strdup(config__item_name(item));
                if (*slot == NULL)
                    rc = HB_ENOMEM;
                continue;
            }
            bool required = (key->flags & CONFIG_KEY_REQUIRED) ||
                            ((key->flags & CONFIG_KEY_REQUIRED_WHEN_ENABLED) && enabled);
            if (!required)
                continue;
            if (!set) {
                if (key->flags & CONFIG_KEY_REQUIRED)
                    rc = config__problem_add(ps->problems, in->line, "%s needs %s = ...", label,
                                             key->name);
                else
                    rc = config__problem_add(ps->problems, in->line,
                                             "%s is enabled but %s is not set", label, key->name);
                continue;
            }
            if (config__is_string_type(key->type)) {
                char **slot = config__field(item, key);
                if (*slot != NULL && (*slot)[0] == '\0')
                    rc = config__problem_add(ps->problems, in->key_lines[k],
                                             "%s: %s must not be empty", label, key->name);
            }
        }
    }
    if (rc < 0)
        return rc;

    if (ps->cfg->discord.shards != NULL && strcmp(ps->cfg->discord.shards, "auto") != 0) {
        char *end = NULL;
        long n = strtol(ps->cfg->discord.shards, &end, 10);
        if (end == ps->cfg->discord.shards || *end != '\0' || n < 1 || n > 4096)
            rc = config__problem_add(ps->problems, 0,
                                     "[discord] shards must be auto or a count from 1 to 4096");
    }
    if (rc == 0)
        rc = config__endpoints_check(ps);
    if (rc < 0)
        return rc;

    const struct config_section_schema *prov = config__section_find("provider");
    const struct config_section_schema *model = config__section_find("model");
    const struct config_section_schema *filt = config__section_find("filter");
    for (size_t i = 0; i < ps->ninsts && rc == 0; i++) {
        struct config_inst *in = &ps->insts[i];
        if (in->sec == filt) {
            rc = config__filter_check(ps, config__item(ps->cfg, filt, in->index), in->line);
            continue;
        }
        if (in->sec == model) {
            rc = config__fallbacks_check(ps, config__item(ps->cfg, model, in->index), in->line);
            if (rc < 0)
                break;
        }
        if (in->sec == prov) {
            struct config_provider *p = config__item(ps->cfg, prov, in->index);
            size_t kind_idx = 0;
            config__key_find(prov, "kind", 4, &kind_idx);
            bool kind_set = in->key_lines[kind_idx] != 0 && !in->key_bad[kind_idx];
            if (kind_set && p->kind != CONFIG_PROVIDER_DEMO && p->base_url == NULL)
                rc = config__problem_add(ps->problems, in->line,
                                         "[provider \"%s\"] needs base_url = ... (only kind = "
                                         "demo works without one)",
                                         p->name);
        } else if (in->sec == model) {
            struct config_model *m = config__item(ps->cfg, model, in->index);
            if (m->provider == NULL || config_provider_find(ps->cfg, m->provider) != NULL)
                continue;
            struct config_suggest sg;
            config__suggest_init(&sg, m->provider);
            for (size_t j = 0; j < ps->cfg->nproviders; j++)
                config__suggest_try(&sg, ps->cfg->providers[j].name);
            const char *hint = config__suggest_result(&sg);
            size_t idx;
            config__key_find(model, "provider", 8, &idx);
            int line = in->key_lines[idx];
            if (hint != NULL)
                rc = config__problem_add(ps->problems, line,
                                         "[model \"%s\"]: provider \"%s\" is not defined; did you "
                                         "mean \"%s\"?",
                                         m->name, m->provider, hint);
            else
                rc = config__problem_add(ps->problems, line,
                                         "[model \"%s\"]: provider \"%s\" is not defined (add a "
                                         "[provider \"%s\"] section)",
                                         m->name, m->provider, m->provider);
        }
    }
    return rc;
}

/* ---- Loading -------------------------------------------------------------- */

/* Reads the whole file, refusing what is too large before reading it. */
static int config__file_read(const char *path, struct config_problems *p, char **buf_out,
                             size_t *len_out)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = config__problem_add(p, 0, "cannot open: %s", strerror(errno));
        rc = rc < 0 ? rc : HB_EIO;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = config__problem_add(p, 0, "not a regular file");
        rc = rc < 0 ? rc : HB_EIO;
        goto out;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        rc = config__problem_add(p, 0, "file too large (%lld bytes; the limit is %d)",
                                 (long long)st.st_size, CONFIG_FILE_MAX);
        rc = rc < 0 ? rc : HB_ECONFIG;
        goto out;
    }
    /* The file may grow between fstat and read: read at most one byte more
     * than the limit to notice. */
    buf = malloc(CONFIG_FILE_MAX + 2);
    if (buf == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = config__problem_add(p, 0, "cannot read: %s", strerror(errno));
            rc = rc < 0 ? rc : HB_EIO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CONFIG_FILE_MAX) {
            rc = config__problem_add(p, 0, "file too large (over %d bytes)", CONFIG_FILE_MAX);
            rc = rc < 0 ? rc : HB_ECONFIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* libinih keeps its options in globals: one parse at a time, and the options
 * are set on every parse so nothing else in the process can change how the
 * file is read. */
static pthread_mutex_t config_ini_lock = PTHREAD_MUTEX_INITIALIZER;

static void config__ini_options_set(void)
{
    /* Multiline is off: an indented line is its own setting (or an error),
     * never silently glued to the value above it. Lines are read into a heap
     * buffer large enough for long API keys. */
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_start_comment_prefixes = (char *)";#";
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = (char *)";#";
    ini_use_stack = false;
    ini_max_line = 4096;
    ini_initial_alloc = 4096;
    ini_allow_realloc = false;
    ini_stop_on_first_error = false;
    ini_allow_no_value = false;
}

static int config__parse(struct config_parser *ps)
{
    int rc = 0;

    for (size_t i = 0; i < CONFIG_NSECTIONS; i++) {
        const struct config_section_schema *s = &config_schema[i];
        if (s->repeatable)
            continue;
        struct config_inst *in = NULL;
        rc = config__inst_add(ps, s, 0, 0, &in);
        if (rc == 0)
            rc = config__defaults_apply(ps, s, config__item(ps->cfg, s, 0));
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&config_ini_lock);
    config__ini_options_set();
    int bad = ini_parse_stream(config__reader, ps, config__handler, ps);
    pthread_mutex_unlock(&config_ini_lock);
    if (ps->rc < 0)
        return ps->rc;
    if (bad == -2)
        return HB_ENOMEM;
    /* Whatever inih refused should have been caught by the reader first. */
    if (bad > 0 && bad != ps->last_problem_line) {
        bool seen = false;
        for (size_t i = 0; i < ps->problems->count; i++)
            seen = seen || ps->problems->items[i].line == bad;
        if (!seen)
            rc = config__problem_add(ps->problems, bad, "cannot parse this line");
        if (rc < 0)
            return rc;
    }
    if (ps->nsettings == 0 && ps->problems->count == 0)
        return config__problem_add(ps->problems, 0, "the file is empty (no settings)");
    return config__validate(ps);
}

int config_load(const char *path, struct config **out, struct config_problems *problems)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    struct config_parser ps;
    memset(&ps, 0, sizeof(ps));
    *out = NULL;
    config_problems_close(problems);
    problems->file = strdup(path);
    if (problems->file == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    rc = config__file_read(path, problems, &buf, &len);
    if (rc < 0)
        goto out;
    const char *nul = memchr(buf, '\0', len);
    if (nul != NULL) {
        int line = 1;
        for (const char *c = buf; c < nul; c++)
            line += *c == '\n';
        rc = config__problem_add(problems, line, "binary file (a NUL byte on this line)");
        rc = rc < 0 ? rc : HB_ECONFIG;
        goto out;
    }
    (void)config_file_check_mode(path);

    ps.cfg = calloc(1, sizeof(*ps.cfg));
    if (ps.cfg == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    ps.cfg->path = strdup(path);
    if (ps.cfg->path == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    ps.problems = problems;
    ps.buf = buf;
    ps.len = len;
    rc = config__parse(&ps);
    if (rc < 0)
        goto out;
    if (problems->count > 0) {
        rc = HB_ECONFIG;
        goto out;
    }
    config_secrets_register(ps.cfg);
    *out = ps.cfg;
    ps.cfg = NULL;
out:
    config__problems_sort(problems);
    for (size_t i = 0; i < ps.ninsts; i++) {
        free(ps.insts[i].key_lines);
        free(ps.insts[i].key_bad);
    }
    free(ps.insts);
    config_free(ps.cfg);
    free(buf);
    return rc;
}

void config_secrets_register(const struct config *cfg)
{
    for (size_t i = 0; i < CONFIG_NSECTIONS; i++) {
        const struct config_section_schema *s = &config_schema[i];
        size_t n = config__instances(cfg, s);
        for (size_t j = 0; j < n; j++) {
            void *item = config__item(cfg, s, j);
            for (size_t k = 0; k < s->nkeys; k++) {
                if (s->keys[k].type != CONFIG_SECRET)
                    continue;
                char **slot = config__field(item, &s->keys[k]);
                if (*slot != NULL)
                    log_secret_add(*slot);
            }
        }
    }
}

int config_file_check_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
        return 0;
    log_warn("config.mode", "file=%s mode=%03o problem=readable or writable by other users hint=%s", path, (unsigned)(st.st_mode & 0777),
             "the file may hold secrets; make it private with chmod 600");
    return 1;
}

const struct config_provider *config_provider_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    }
    return NULL;
}

const struct config_model *config_model_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++) {
        if (strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    }
    return NULL;
}

/* ---- Comparing ------------------------------------------------------------ */

static bool config__value_equal(const struct config_key_schema *k, void *a, void *b)
{
    void *fa = config__field(a, k);
    void *fb = config__field(b, k);
    switch (k->type) {
    case CONFIG_STRING:
    case CONFIG_URL:
    case CONFIG_SECRET: {
        const char *sa = *(char **)fa;
        const char *sb = *(char **)fb;
        if (sa == NULL || sb == NULL)
            return sa == sb;
        return strcmp(sa, sb) == 0;
    }
    case CONFIG_BOOL:
        return *(bool *)fa == *(bool *)fb;
    case CONFIG_INT:
    case CONFIG_SECONDS:
        return *(int64_t *)fa == *(int64_t *)fb;
    case CONFIG_ENUM:
        return *(int *)fa == *(int *)fb;
    }
    return false;
}

static bool config__section_live(const struct config_section_schema *s)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        if (!(s->keys[k].flags & CONFIG_KEY_LIVE))
            return false;
    }
    return true;
}

static size_t config__item_diff(const struct config_section_schema *s, const char *instance,
                                void *a, void *b, config_diff_cb cb, void *data)
{
    size_t n = 0;
    for (size_t k = 0; k < s->nkeys; k++) {
        if (config__value_equal(&s->keys[k], a, b))
            continue;
        struct config_change ch = {CONFIG_CHANGE_VALUE, s->name, instance, s->keys[k].name,
                                   (s->keys[k].flags & CONFIG_KEY_LIVE) != 0};
        cb(&ch, data);
        n++;
    }
    return n;
}

static void *config__item_find(const struct config *cfg, const struct config_section_schema *s,
                               const char *name)
{
    size_t n = config__instances(cfg, s);
    for (size_t j = 0; j < n; j++) {
        void *item = config__item(cfg, s, j);
        if (strcmp(config__item_name(item), name) == 0)
            return item;
    }
    return NULL;
}

size_t config_diff(const struct config *old_cfg, const struct config *new_cfg, config_diff_cb cb,
                   void *data)
{
    size_t n = 0;
    for (size_t i = 0; i < CONFIG_NSECTIONS; i++) {
        const struct config_section_schema *s = &config_schema[i];
        if (!s->repeatable) {
            n += config__item_diff(s, NULL, config__item(old_cfg, s, 0),
                                   config__item(new_cfg, s, 0), cb, data);
            continue;
        }
        bool live = config__section_live(s);
        size_t nold = config__instances(old_cfg, s);
        size_t nnew = config__instances(new_cfg, s);
        for (size_t j = 0; j < nold; j++) {
            void *a = config__item(old_cfg, s, j);
            void *b = config__item_find(new_cfg, s, config__item_name(a));
            if (b != NULL) {
                n += config__item_diff(s, config__item_name(a), a, b, cb, data);
                continue;
            }
            struct config_change ch = {CONFIG_CHANGE_REMOVED, s->name, config__item_name(a), NULL,
                                       live};
            cb(&ch, data);
            n++;
        }
        for (size_t j = 0; j < nnew; j++) {
            void *b = config__item(new_cfg, s, j);
            if (config__item_find(old_cfg, s, config__item_name(b)) != NULL)
                continue;
            struct config_change ch = {CONFIG_CHANGE_ADDED, s->name, config__item_name(b), NULL,
                                       live};
            cb(&ch, data);
            n++;
        }
    }
    return n;
}
