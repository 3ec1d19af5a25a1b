#include "bot/adapters.h"

#include "adapters/console/console.h"
#include "adapters/discord/discord.h"
#include "adapters/telegram/telegram.h"
#include "base/error.h"
#include "base/log.h"
#include "bot/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- console ------------------------------------------------------------ */

static bool adapters__console_enabled(const struct config *cfg)
{
    return cfg->console.enabled;
}

static struct console_options adapters__console_options(const struct config *cfg)
{
    return (struct console_options){.user = cfg->console.user,
                                    .admin = cfg->console.admin,
                                    .image_dir = cfg->console.image_dir,
                                    .history_file = cfg->console.history_file,
                                    .in_fd = 0,
                                    .out_fd = 1};
}

static int adapters__console_make(const struct config *cfg, const struct adapters_env *env,
                                  struct adapter **out)
{
    struct console_options opts = adapters__console_options(cfg);
    *out = console_new(env->loop, &opts, env->host);
    return *out != NULL ? 0 : HB_ENOMEM;
}

static int adapters__console_reload(struct adapter *a, const struct config *cfg)
{
    struct console_options opts = adapters__console_options(cfg);
    return a->ops->reload(a, &opts);
}

/* ---- Discord ------------------------------------------------------------ */

static bool adapters__discord_enabled(const struct config *cfg)
{
    return cfg->discord.enabled;
}

static int adapters__discord_make(const struct config *cfg, const struct adapters_env *env,
                                  struct adapter **out)
{
    const struct config_discord *c = &cfg->discord;
    struct discord_options o = {
        .token = c->token,
        .application_id = c->application_id,
        .api_base = c->api_base,
        .gateway_url = c->gateway_url,
        .guild_id = c->guild_id,
        .intents = (uint32_t)c->intents,
        .compress =
            c->compress == CONFIG_DISCORD_ZLIB ? DISCORD_COMPRESS_ZLIB : DISCORD_COMPRESS_ZSTD,
        .shards =
            c->shards != NULL && strcmp(c->shards, "auto") != 0 ? (unsigned)atoi(c->shards) : 0,
        .shard_first = (int)c->shard_first,
        .shard_last = (int)c->shard_last,
        .rest_connections = (unsigned)c->rest_connections,
        .http = env->http,
        /* Interactions over HTTP too when [discord] interactions_endpoint. */
        .public_key = c->interactions_endpoint ? c->public_key : NULL,
        .store = env->store,
        .models = env->models,
        .models_data = env->models_data,
        .core = env->core,
    };
    *out = discord_new(env->loop, &o, env->host);
    return *out != NULL ? 0 : HB_ENOMEM;
}

/* The Discord adapter's live part is its command registration, which
 * follows [features] (read through core, not through options). */
static int adapters__discord_reload(struct adapter *a, const struct config *cfg)
{
    (void)cfg;
    return a->ops->reload(a, NULL);
}

/* ---- Telegram ----------------------------------------------------------- */

static bool adapters__telegram_enabled(const struct config *cfg)
{
    return cfg->telegram.enabled;
}

static struct telegram_options adapters__telegram_options(const struct config *cfg)
{
    const struct config_telegram *tc = &cfg->telegram;
    return (struct telegram_options){.token = tc->token,
                                     .api_base = tc->api_base,
                                     .poll_timeout_s = tc->poll_timeout,
                                     .pipeline = (unsigned)tc->pipeline,
                                     .pipeline_off = tc->pipeline == 0,
                                     .max_inflight = (unsigned)tc->max_inflight,
                                     .global_per_s = (uint64_t)tc->sends_per_second,
                                     .queue_max = (size_t)tc->send_queue_max,
                                     .admins = tc->admins,
                                     .stars_packages = tc->stars_packages,
                                     .webhook = tc->webhook,
                                     .webhook_url = tc->webhook_url,
                                     .webhook_secret = tc->webhook_secret};
}

static int adapters__telegram_make(const struct config *cfg, const struct adapters_env *env,
                                   struct adapter **out)
{
    const struct config_telegram *tc = &cfg->telegram;
    if (telegram_ids_parse(tc->admins, (int64_t[64]){0}, 64) < 0 ||
        telegram_packages_parse(tc->stars_packages, (struct telegram_package[16]){{0, 0}}, 16) <
            0) {
        log_error("adapter.start_failed",
                  "adapter=telegram problem=[telegram] admins must be user ids separated by "
                  "commas, stars_packages stars:credits pairs (at most 64 and 16)");
        return HB_ECONFIG;
    }
    struct telegram_options opts = adapters__telegram_options(cfg);
    *out = telegram_new(env->loop, env->http, env->core, &opts, env->host);
    return *out != NULL ? 0 : HB_ENOMEM;
}

static int adapters__telegram_reload(struct adapter *a, const struct config *cfg)
{
    struct telegram_options opts = adapters__telegram_options(cfg);
    return a->ops->reload(a, &opts);
}

/* ---- health ------------------------------------------------------------- */

bool adapters_part_down(struct adapter *const *list, size_t n, char *name, size_t cap)
{
    for (size_t a = 0; a < n; a++) {
        const struct adapter *ad = list[a];
        for (size_t i = 0; ad->ops->health != NULL; i++) {
            struct adapter_health h;
            memset(&h, 0, sizeof(h));
            if (!ad->ops->health(list[a], i, &h))
                break;
            if (h.state != ADAPTER_HEALTH_UP) {
                snprintf(name, cap, "%s", h.name);
                return true;
            }
        }
    }
    return false;
}

/* ---- the table ---------------------------------------------------------- */

const struct adapters_kind adapters_kinds[] = {
    {"discord", adapters__discord_enabled, adapters__discord_make, adapters__discord_reload},
    {"telegram", adapters__telegram_enabled, adapters__telegram_make, adapters__telegram_reload},
    {"console", adapters__console_enabled, adapters__console_make, adapters__console_reload},
};

const size_t adapters_nkinds = sizeof(adapters_kinds) / sizeof(adapters_kinds[0]);
