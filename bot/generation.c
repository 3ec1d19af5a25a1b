#include "bot/generation.h"

#include "adapters/anthropic/anthropic.h"
#include "adapters/demo/demo.h"
#include "adapters/openai/openai.h"
#include "base/error.h"
#include "base/log.h"
#include "base/text.h"
#include "core/apikey.h"
#include "core/cluster.h"
#include "core/contest.h"
#include "core/feature.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/persona.h"
#include "core/revenue.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct provider *generation__provider(const struct config_provider *cp, uv_loop_t *loop,
                                             struct http_client *http)
{
    struct provider_settings s = {.name = cp->name,
                                  .base_url = cp->base_url,
                                  .api_key = cp->api_key,
                                  .headers = cp->headers,
                                  .api_version = cp->api_version};
    switch (cp->kind) {
    case CONFIG_PROVIDER_OPENAI:
        return openai_provider_new(http, &s);
    case CONFIG_PROVIDER_ANTHROPIC:
        return anthropic_provider_new(http, &s);
    case CONFIG_PROVIDER_DEMO:
        return demo_provider_new(loop, GENERATION_DEMO_STEP_MS);
    }
    return NULL;
}

#define GENERATION_WORDS_MAX 256

/* A number key the config has checked; false when unset. */
static bool generation__number(const char *text, double *out)
{
    if (text == NULL)
        return false;
    *out = strtod(text, NULL);
    return true;
}

/* The stop sequences of a model into stop[] (PROVIDER_STOP_MAX slots),
 * borrowed from *json, which the caller deletes. The config has checked
 * the array; anything else in it is skipped. */
static size_t generation__stop(const char *text, cJSON **json, const char **stop)
{
    *json = text != NULL ? cJSON_Parse(text) : NULL;
    size_t n = 0;
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, *json)
    {
        if (n < PROVIDER_STOP_MAX && cJSON_IsString(item))
            stop[n++] = item->valuestring;
    }
    return n;
}

struct catalog *generation_catalog_build(const struct config *cfg, uv_loop_t *loop,
                                         struct http_client *http, char *err, size_t errcap)
{
    struct catalog *cat = NULL;
    bool taken = false;
    size_t np = cfg->nproviders, nm = cfg->nmodels, nf = cfg->nfilters, npe = cfg->npersonas;
    struct catalog_provider_spec *ps = calloc(np + 1, sizeof(*ps));
    struct catalog_model_spec *ms = calloc(nm + 1, sizeof(*ms));
    struct filter_rule *rules = calloc(nf + 1, sizeof(*rules));
    char **copies = calloc(nf + 1, sizeof(*copies));
    const char **words = calloc((nf + 1) * GENERATION_WORDS_MAX, sizeof(*words));
    cJSON **stops = calloc(nm + 1, sizeof(*stops));
    const char **stop = calloc((nm + 1) * PROVIDER_STOP_MAX, sizeof(*stop));
    /* Personas: their specs, stop arrays and forbidden words the same way. */
    struct catalog_persona_spec *pes = calloc(npe + 1, sizeof(*pes));
    cJSON **pstops = calloc(npe + 1, sizeof(*pstops));
    const char **pstop = calloc((npe + 1) * PROVIDER_STOP_MAX, sizeof(*pstop));
    char **pcopies = calloc(npe + 1, sizeof(*pcopies));
    const char **pwords = calloc((npe + 1) * GENERATION_WORDS_MAX, sizeof(*pwords));
    if (ps == NULL || ms == NULL || rules == NULL || copies == NULL || words == NULL ||
        stops == NULL || stop == NULL || pes == NULL || pstops == NULL || pstop == NULL ||
        pcopies == NULL || pwords == NULL) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        const struct config_provider *cp = &cfg->providers[i];
        ps[i].name = cp->name;
        ps[i].provider = generation__provider(cp, loop, http);
        ps[i].timeout_ms = (uint64_t)cp->timeout * 1000;
        ps[i].max_concurrent = (unsigned)cp->max_concurrent;
    }
    for (size_t i = 0; i < nm; i++) {
        const struct config_model *cm = &cfg->models[i];
        ms[i] = (struct catalog_model_spec){
            .name = cm->name,
            .provider = cm->provider,
            .upstream = cm->upstream,
            .modality = cm->modality == CONFIG_MODALITY_IMAGE ? PROVIDER_IMAGE : PROVIDER_TEXT,
            .price_request = cm->price_request,
            .price_input_1k = cm->price_input_1k,
            .price_output_1k = cm->price_output_1k,
            .max_output_tokens = cm->max_output_tokens,
            .sizes = cm->sizes,
            .fallbacks = cm->fallbacks,
            .allow = cm->allow,
            .enabled = cm->enabled,
            .system_prompt = cm->system_prompt,
            .stop = stop + i * PROVIDER_STOP_MAX,
            .extra_body = cm->extra_body,
            .max_tokens_field = (enum provider_max_tokens_field)cm->max_tokens_field,
            .vision = cm->vision,
            .price_image = cm->price_per_image,
        };
        ms[i].temperature_set = generation__number(cm->temperature, &ms[i].temperature);
        ms[i].top_p_set = generation__number(cm->top_p, &ms[i].top_p);
        ms[i].nstop = generation__stop(cm->stop, &stops[i], stop + i * PROVIDER_STOP_MAX);
    }
    for (size_t i = 0; i < nf; i++) {
        const struct config_filter *cf = &cfg->filters[i];
        copies[i] = cf->words != NULL ? strdup(cf->words) : NULL;
        const char **w = words + i * GENERATION_WORDS_MAX;
        rules[i] = (struct filter_rule){
            .name = cf->name,
            .kind = (enum filter_kind)cf->kind,
            .action = (enum filter_action)cf->action,
            .words = w,
            .nwords = text_words_split(copies[i], w, GENERATION_WORDS_MAX),
            .leet = cf->leet,
            .pattern = cf->pattern,
            .replacement = cf->replacement,
        };
    }
    for (size_t i = 0; i < npe; i++) {
        const struct config_persona *cp = &cfg->personas[i];
        pcopies[i] = cp->forbidden_words != NULL ? strdup(cp->forbidden_words) : NULL;
        const char **w = pwords + i * GENERATION_WORDS_MAX;
        pes[i] = (struct catalog_persona_spec){
            .name = cp->name,
            .description = cp->description,
            .system_prompt = cp->system_prompt,
            .model = cp->model,
            .max_tokens = cp->max_tokens,
            .stop = pstop + i * PROVIDER_STOP_MAX,
            .extra_body = cp->extra_body,
            .forbidden = w,
            .nforbidden = text_words_split(pcopies[i], w, GENERATION_WORDS_MAX),
            .allow = cp->allow,
            .show_prompt = cp->show_prompt,
            .approval = cp->approval,
        };
        pes[i].temperature_set = generation__number(cp->temperature, &pes[i].temperature);
        pes[i].top_p_set = generation__number(cp->top_p, &pes[i].top_p);
        pes[i].nstop = generation__stop(cp->stop, &pstops[i], pstop + i * PROVIDER_STOP_MAX);
    }
    const struct config_limits *l = &cfg->limits;
    struct catalog_spec spec = {
        .providers = ps,
        .nproviders = np,
        .models = ms,
        .nmodels = nm,
        .limits = {.user_per_hour = l->user_per_hour,
                   .pool_per_day = l->pool_per_day,
                   .tokens_per_day = l->tokens_per_day,
                   .queue_max = l->queue_max,
                   .user_queue = l->user_queue,
                   .user_in_flight = l->user_in_flight,
                   .prompt_max = l->prompt_max,
                   .memory_tokens = l->memory_tokens,
                   .conversation_idle_ms = l->conversation_idle * 1000,
                   .conversation_retention_ms = l->conversation_retention * 1000,
                   .retry_max = l->retry_max,
                   .job_timeout_ms = l->job_timeout * 1000,
                   .image_max_bytes = l->image_max_bytes,
                   .image_retention_ms = cfg->gallery.retention * 1000,
                   .images_max = cfg->gallery.max_images},
        .filter_rules = rules,
        .nfilter_rules = nf,
        .personas = pes,
        .npersonas = npe,
        .default_persona = cfg->bot.persona,
    };
    cat = catalog_new(&spec, err, errcap); /* takes the providers, also on failure */
    taken = true;
out:
    if (ps != NULL && !taken) {
        for (size_t i = 0; i < np; i++) {
            if (ps[i].provider != NULL)
                ps[i].provider->ops->free(ps[i].provider);
        }
    }
    free(ps);
    free(ms);
    free(rules);
    for (size_t i = 0; copies != NULL && i < nf; i++)
        free(copies[i]);
    free(copies);
    free(words);
    for (size_t i = 0; stops != NULL && i < nm; i++)
        cJSON_Delete(stops[i]);
    free(stops);
    free(stop);
    for (size_t i = 0; pstops != NULL && i < npe; i++)
        cJSON_Delete(pstops[i]);
    for (size_t i = 0; pcopies != NULL && i < npe; i++)
        free(pcopies[i]);
    free(pes);
    free(pstops);
    free(pstop);
    free(pcopies);
    free(pwords);
    return cat;
}

void generation_approval_rules(const struct config *cfg, struct approval_rules *out)
{
    const struct config_approval *a = &cfg->approval;
    memset(out, 0, sizeof(*out));
    out->enabled = a->enabled;
    out->above = a->above;
    out->new_member_days = a->new_member_days;
    out->new_member_spent = a->new_member_spent;
    out->timeout_ms = a->timeout * 1000;
    snprintf(out->models, sizeof(out->models), "%s", a->models != NULL ? a->models : "");
    snprintf(out->discord_channel, sizeof(out->discord_channel), "%s",
             a->discord_channel != NULL ? a->discord_channel : "");
    snprintf(out->telegram_chat, sizeof(out->telegram_chat), "%s",
             a->telegram_chat != NULL ? a->telegram_chat : "");
    snprintf(out->reasons, sizeof(out->reasons), "%s", a->reasons != NULL ? a->reasons : "");
}

static void generation__recovered(int rc, size_t voided, void *data)
{
    (void)data;
    if (rc < 0)
        log_warn("generate.recover_failed", "error=%s", hb_strerror(rc));
    else if (voided > 0)
        log_info("generate.recovered",
                 "voided=%zu note=\"interrupted jobs refunded; members are told\"", voided);
}

/* Every heartbeat: the jobs of daemons whose heartbeat ran out are voided
 * by whichever daemon looks first (the void ids make a second look a
 * no-op), and the API keys are read again. */
static void generation__tick(void *data)
{
    struct core *core = data;
    if (core->generate != NULL) {
        generate_recover_orphans(core->generate, generation__recovered, NULL);
        /* An admin's decision made through another daemon, for a job held
         * here. */
        generate_approvals_asked(core->generate);
    }
    /* A key another daemon made or revoked counts here within a beat, and
     * so does a wallet link. */
    apikeys_refresh(core);
    link_dir_refresh(core);
}

/* Another daemon (or this one) committed a change to what every daemon
 * keeps in memory: read it again now, so that a key revoked on one daemon
 * is refused by every other at its next request, and a group's switch,
 * override or persona counts everywhere at once, not at the next read.
 * A read asked for while one is under way follows it. */
static void generation__changed(const char *what, void *data)
{
    struct core *core = data;
    struct store *store = core->ledger != NULL ? ledger_store(core->ledger) : NULL;
    bool all = strcmp(what, "*") == 0;
    log_info("cluster.changed", "what=%s", what);
    if (all || strcmp(what, "apikeys") == 0)
        apikeys_refresh(core);
    if (all || strcmp(what, "wallet_links") == 0)
        link_dir_refresh(core);
    if ((all || strcmp(what, "chat_settings") == 0) && core->personas != NULL)
        persona_dir_refresh_after(core);
    if ((all || strcmp(what, "state:" FEATURE_NS) == 0) && core->features != NULL && store != NULL)
        features_refresh_after(core->features, store);
    if ((all || strcmp(what, "state:" REVENUE_NS) == 0) && core->revenue != NULL && store != NULL)
        revenue_refresh_after(core->revenue, store);
    if ((all || strcmp(what, "state:" CONTEST_NS) == 0) && core->contests != NULL)
        contests_load_after(core->contests);
}

int generation_engine_start(uv_loop_t *loop, struct core *core, const struct config *cfg,
                            struct http_client *http)
{
    char err[512] = "";
    struct catalog *cat = generation_catalog_build(cfg, loop, http, err, sizeof(err));
    if (cat == NULL) {
        log_error("generate.catalog_refused", "problem=%s", err);
        return HB_ECONFIG;
    }
    core->generate = generate_new(loop, core, cat, NULL);
    catalog_unref(cat);
    if (core->generate == NULL)
        return HB_ENOMEM;
    struct approval_rules rules;
    generation_approval_rules(cfg, &rules);
    generate_approval_configure(core->generate, &rules);
    if (cfg->storage.backend == CONFIG_STORAGE_POSTGRES) {
        core->cluster =
            cluster_new(loop, ledger_store(core->ledger), generate_run(core->generate),
                        cfg->storage.lease * 1000, &core->clock, generation__tick, core);
        if (core->cluster == NULL)
            return HB_ENOMEM;
        int lrc = cluster_on_change(core->cluster, generation__changed, core);
        if (lrc < 0)
            log_warn("cluster.listen_failed",
                     "error=%s note=\"what another daemon changes counts here at the next "
                     "heartbeat (keys, links) or minute (switches, overrides, personas, "
                     "contests)\"",
                     hb_strerror(lrc));
    }
    int rc = generate_recover(core->generate, generation__recovered, NULL);
    if (rc < 0)
        log_warn("generate.recover_failed", "error=%s", hb_strerror(rc));
    return 0;
}

void generation_engine_leave(struct core *core)
{
    cluster_free(core->cluster);
    core->cluster = NULL;
}
