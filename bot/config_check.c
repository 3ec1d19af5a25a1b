/* The configuration's checks after parsing: required keys, per-instance
 * defaults, and rules across keys or sections. */
#include "bot/config_internal.h"

#include "base/error.h"
#include "base/text.h"
#include "core/access.h"
#include "core/filter.h"
#include "core/provider.h"
#include "core/contest.h"
#include "core/contest_schedule.h"
#include "core/holders.h"
#include "core/revenue.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* [approval]: each model named is a [model] section, the Discord channel is
 * a snowflake, the Telegram chat a chat id; reported on the key's line. */
static int config__approval_check(struct config_parser *ps, const struct config_inst *in)
{
    const struct config_approval *a = &ps->cfg->approval;
    size_t idx = 0;
    int rc = 0;
    if (a->models != NULL && config__key_find(in->sec, "models", 6, &idx) != NULL) {
        char *copy = strdup(a->models);
        if (copy == NULL)
            return HB_ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, ",", &save); w != NULL && rc == 0;
             w = strtok_r(NULL, ",", &save)) {
            while (*w == ' ' || *w == '\t')
                w++;
            size_t len = strlen(w);
            while (len > 0 && (w[len - 1] == ' ' || w[len - 1] == '\t'))
                w[--len] = '\0';
            if (len > 0 && config_model_find(ps->cfg, w) == NULL)
                rc = config__problem_add(ps->problems, in->key_lines[idx],
                                         "[approval]: models names \"%s\", which is not a [model] "
                                         "section",
                                         w);
        }
        free(copy);
    }
    const char *ch = a->discord_channel;
    if (rc == 0 && ch != NULL && config__key_find(in->sec, "discord_channel", 15, &idx) != NULL) {
        bool ok = strlen(ch) >= 5 && strlen(ch) <= 20;
        for (const char *c = ch; ok && *c != '\0'; c++)
            ok = isdigit((unsigned char)*c);
        if (!ok)
            rc = config__problem_add(ps->problems, in->key_lines[idx],
                                     "[approval]: discord_channel must be a channel id (digits)");
    }
    const char *tc = a->telegram_chat;
    if (rc == 0 && tc != NULL && config__key_find(in->sec, "telegram_chat", 13, &idx) != NULL) {
        char *end = NULL;
        long long v = strtoll(tc, &end, 10);
        if (end == tc || *end != '\0' || v == 0)
            rc = config__problem_add(ps->problems, in->key_lines[idx],
                                     "[approval]: telegram_chat must be a chat id (an integer, "
                                     "negative for groups)");
    }
    return rc;
}

/* Every fallback names a model of the file. */
static int config__fallbacks_check(struct config_parser *ps, const struct config_model *m, int line)
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

/* The line that set a key of an instance, or the section's line. */
static int config__key_line(const struct config_inst *in, const char *key)
{
    size_t idx = 0;
    if (config__key_find(in->sec, key, strlen(key), &idx) == NULL || in->key_lines[idx] == 0)
        return in->line;
    return in->key_lines[idx];
}

/* A number setting (temperature, top_p) from lo to hi. */
static int config__number_check(struct config_parser *ps, const struct config_inst *in,
                                const char *label, const char *key, const char *text, double lo,
                                double hi)
{
    if (text == NULL)
        return 0;
    char *end = NULL;
    double v = strtod(text, &end);
    if (end != text && *end == '\0' && isfinite(v) && v >= lo && v <= hi)
        return 0;
    return config__problem_add(ps->problems, config__key_line(in, key),
                               "%s: %s must be a number from %g to %g", label, key, lo, hi);
}

/* A JSON setting: it parses, whole, into the kind asked for. The value is
 * never repeated (it may hold a key or prompt text); where it breaks is. */
static cJSON *config__json_parse(struct config_parser *ps, const struct config_inst *in,
                                 const char *label, const char *key, const char *text, bool array,
                                 int *rc)
{
    const char *end = NULL;
    cJSON *json = cJSON_ParseWithOpts(text, &end, true);
    const char *want = array ? "a JSON array of strings, like [\"END\"]"
                             : "a JSON object, like {\"reasoning_effort\": \"low\"}";
    if (json == NULL) {
        size_t at = end != NULL && end >= text ? (size_t)(end - text) + 1 : 1;
        *rc = config__problem_add(ps->problems, config__key_line(in, key),
                                  "%s: %s is not valid JSON (broken at character %zu); it must be "
                                  "%s on one line",
                                  label, key, at, want);
        return NULL;
    }
    if (array ? !cJSON_IsArray(json) : !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        *rc = config__problem_add(ps->problems, config__key_line(in, key), "%s: %s must be %s",
                                  label, key, want);
        return NULL;
    }
    return json;
}

/* Generation parameters of a model or a persona (label names the section):
 * numbers in range, stop a JSON array of at most PROVIDER_STOP_MAX
 * non-empty strings, extra_body a JSON object that leaves what the engine
 * decides alone. */
static int config__params_check(struct config_parser *ps, const struct config_inst *in,
                                const char *label, bool anthropic, const char *temperature,
                                const char *top_p, const char *stop_text, const char *extra_text)
{
    int rc = config__number_check(ps, in, label, "temperature", temperature, 0, anthropic ? 1 : 2);
    if (rc == 0)
        rc = config__number_check(ps, in, label, "top_p", top_p, 0, 1);
    if (rc == 0 && stop_text != NULL) {
        cJSON *stop = config__json_parse(ps, in, label, "stop", stop_text, true, &rc);
        int n = cJSON_GetArraySize(stop);
        const cJSON *item = NULL;
        bool strings = true;
        cJSON_ArrayForEach(item, stop)
        {
            strings = strings && cJSON_IsString(item) && item->valuestring[0] != '\0';
        }
        if (stop != NULL && (!strings || n < 1 || n > PROVIDER_STOP_MAX))
            rc = config__problem_add(ps->problems, config__key_line(in, "stop"),
                                     "%s: stop must be a JSON array of 1 to %d non-empty strings",
                                     label, PROVIDER_STOP_MAX);
        cJSON_Delete(stop);
    }
    if (rc == 0 && extra_text != NULL) {
        cJSON *extra = config__json_parse(ps, in, label, "extra_body", extra_text, false, &rc);
        const cJSON *item = NULL;
        cJSON_ArrayForEach(item, extra)
        {
            if (rc == 0 && provider_extra_body_key_fixed(item->string))
                rc = config__problem_add(ps->problems, config__key_line(in, "extra_body"),
                                         "%s: extra_body cannot set \"%s\" (the bot decides it)",
                                         label, item->string);
        }
        cJSON_Delete(extra);
    }
    return rc;
}

static int config__model_params_check(struct config_parser *ps, const struct config_inst *in,
                                      const struct config_model *m)
{
    const struct config_provider *p =
        m->provider != NULL ? config_provider_find(ps->cfg, m->provider) : NULL;
    bool anthropic = p != NULL && p->kind == CONFIG_PROVIDER_ANTHROPIC;
    char label[CONFIG_NAME_MAX * 2 + 16];
    snprintf(label, sizeof(label), "[model \"%s\"]", m->name);
    int rc = config__params_check(ps, in, label, anthropic, m->temperature, m->top_p, m->stop,
                                  m->extra_body);
    if (rc == 0 && m->vision && m->modality != CONFIG_MODALITY_TEXT)
        rc = config__problem_add(ps->problems, config__key_line(in, "vision"),
                                 "[model \"%s\"]: vision is for text models (one that reads "
                                 "images members attach); this one makes images",
                                 m->name);
    if (rc == 0 && m->price_per_image > 0 && !m->vision)
        rc = config__problem_add(ps->problems, config__key_line(in, "price_per_image"),
                                 "[model \"%s\"]: price_per_image needs vision = true", m->name);
    return rc;
}

/* A persona's system prompt file, read whole into system_prompt (relative
 * to the folder of bot.conf). Its text is never repeated in a problem. */
static int config__persona_file_read(struct config_parser *ps, const struct config_inst *in,
                                     struct config_persona *p, const char *label)
{
    int line = config__key_line(in, "system_prompt_file");
    if (p->system_prompt != NULL)
        return config__problem_add(ps->problems, line,
                                   "%s: set system_prompt or system_prompt_file, not both", label);
    char *path = NULL;
    if (p->system_prompt_file[0] == '/') {
        path = strdup(p->system_prompt_file);
    } else {
        const char *conf = ps->cfg->path != NULL ? ps->cfg->path : "";
        const char *slash = strrchr(conf, '/');
        int dirlen = slash != NULL ? (int)(slash - conf) : 1;
        if (asprintf(&path, "%.*s/%s", dirlen, slash != NULL ? conf : ".", p->system_prompt_file) <
            0)
            path = NULL;
    }
    if (path == NULL)
        return HB_ENOMEM;
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        rc = config__problem_add(ps->problems, line, "%s: system_prompt_file %s cannot be read: %s",
                                 label, path, strerror(errno));
        goto out;
    }
    char *text = malloc(CONFIG_PROMPT_MAX + 2);
    size_t n = text != NULL ? fread(text, 1, CONFIG_PROMPT_MAX + 1, f) : 0;
    if (text == NULL) {
        rc = HB_ENOMEM;
    } else if (ferror(f)) {
        rc = config__problem_add(ps->problems, line, "%s: system_prompt_file %s cannot be read",
                                 label, path);
    } else if (n > CONFIG_PROMPT_MAX) {
        rc = config__problem_add(ps->problems, line,
                                 "%s: system_prompt_file %s is larger than %d bytes", label, path,
                                 CONFIG_PROMPT_MAX);
    } else if (memchr(text, '\0', n) != NULL) {
        rc = config__problem_add(ps->problems, line, "%s: system_prompt_file %s is not text", label,
                                 path);
    } else {
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
            n--;
        text[n] = '\0';
        p->system_prompt = text;
        text = NULL;
    }
    free(text);
    fclose(f);
out:
    free(path);
    return rc;
}

/* A persona: a name a button can carry, a prompt (inline or from its
 * file), a text model when one is named, the parameters as on models, and
 * forbidden words that build a filter rule. */
static int config__persona_check(struct config_parser *ps, const struct config_inst *in,
                                 struct config_persona *p)
{
    char label[CONFIG_NAME_MAX * 2 + 16];
    snprintf(label, sizeof(label), "[persona \"%s\"]", p->name);
    size_t len = strlen(p->name);
    bool name_ok = len <= CONFIG_PERSONA_NAME_MAX;
    for (const char *c = p->name; *c != '\0'; c++)
        name_ok = name_ok && (isalnum((unsigned char)*c) || *c == '_' || *c == '-');
    if (!name_ok)
        return config__problem_add(ps->problems, in->line,
                                   "%s: a persona's name is 1 to %d letters, digits, _ or -", label,
                                   CONFIG_PERSONA_NAME_MAX);
    if (strcasecmp(p->name, "none") == 0)
        return config__problem_add(ps->problems, in->line,
                                   "%s: \"none\" is what /persona none means; choose another name",
                                   label);
    int rc = 0;
    if (p->system_prompt_file != NULL)
        rc = config__persona_file_read(ps, in, p, label);
    if (rc == 0 && p->system_prompt != NULL && strlen(p->system_prompt) > CONFIG_PROMPT_MAX)
        rc = config__problem_add(ps->problems, config__key_line(in, "system_prompt"),
                                 "%s: system_prompt is longer than %d bytes", label,
                                 CONFIG_PROMPT_MAX);
    bool anthropic = false;
    if (rc == 0 && p->model != NULL) {
        const struct config_model *m = config_model_find(ps->cfg, p->model);
        const struct config_provider *prov =
            m != NULL && m->provider != NULL ? config_provider_find(ps->cfg, m->provider) : NULL;
        anthropic = prov != NULL && prov->kind == CONFIG_PROVIDER_ANTHROPIC;
        if (m == NULL)
            rc = config__problem_add(ps->problems, config__key_line(in, "model"),
                                     "%s: model \"%s\" is not a [model] section", label, p->model);
        else if (m->modality != CONFIG_MODALITY_TEXT)
            rc = config__problem_add(ps->problems, config__key_line(in, "model"),
                                     "%s: model \"%s\" makes images; a persona needs a text model",
                                     label, p->model);
    }
    if (rc == 0)
        rc = config__params_check(ps, in, label, anthropic, p->temperature, p->top_p, p->stop,
                                  p->extra_body);
    if (rc == 0 && p->forbidden_words != NULL) {
        char *copy = strdup(p->forbidden_words);
        const char *words[256];
        size_t nwords = text_words_split(copy, words, 256);
        struct filter_rule rule = {.name = p->name,
                                   .kind = FILTER_KIND_WORDS,
                                   .action = FILTER_ACTION_BLOCK,
                                   .words = words,
                                   .nwords = nwords};
        char err[256] = "";
        struct filter *built = filter_new(&rule, 1, err, sizeof(err));
        if (built == NULL)
            rc = config__problem_add(ps->problems, config__key_line(in, "forbidden_words"),
                                     "%s: forbidden_words: %s", label, err);
        filter_free(built);
        free(copy);
    }
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
            rc = config__problem_add(
                ps->problems, 0, "[discord] interactions_endpoint needs [server] enabled = true");
    }
    const struct config_storage *st = &ps->cfg->storage;
    if (rc == 0 && st->backend == CONFIG_STORAGE_POSTGRES &&
        (st->postgres_url == NULL || st->postgres_url[0] == '\0'))
        rc = config__problem_add(ps->problems, 0,
                                 "[storage] backend = postgres needs postgres_url_env = the name "
                                 "of a variable holding the connection string (or postgres_url)");
    if (rc == 0 && ps->cfg->api.enabled && !ps->cfg->server.enabled)
        rc = config__problem_add(ps->problems, 0, "[api] enabled needs [server] enabled = true");
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

/* Every [access] list entry is "<platform>:<id>" with an id that platform
 * uses; a wrong one is reported on its own line. */
static int config__access_check(struct config_parser *ps, const struct config_inst *in)
{
    static const struct {
        const char *key;
        enum access_list_kind kind;
    } lists[] = {
        {"allow_users", ACCESS_LIST_USERS},   {"block_users", ACCESS_LIST_USERS},
        {"allow_roles", ACCESS_LIST_ROLES},   {"block_roles", ACCESS_LIST_ROLES},
        {"allow_groups", ACCESS_LIST_GROUPS}, {"block_groups", ACCESS_LIST_GROUPS},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]) && rc == 0; i++) {
        size_t idx = 0;
        const struct config_key_schema *k =
            config__key_find(in->sec, lists[i].key, strlen(lists[i].key), &idx);
        if (k == NULL || in->key_lines[idx] == 0 || in->key_bad[idx])
            continue;
        char **value = config__field(config__item(ps->cfg, in->sec, in->index), k);
        char err[256];
        rc = access_list_check(*value, lists[i].kind, err, sizeof(err));
        if (rc == HB_EINVAL)
            rc = config__problem_add(ps->problems, in->key_lines[idx], "[access] %s: %s",
                                     lists[i].key, err);
    }
    return rc;
}

/* [contest]: winners and split agree (one part per winner, 100 % or less);
 * a problem is reported on the split's line. */
static int config__contest_check(struct config_parser *ps, const struct config_inst *in)
{
    const struct config_contest *c = &ps->cfg->contest;
    struct contest_rules rules;
    char err[256];
    struct contest_schedule *sched = malloc(sizeof(*sched));
    if (sched == NULL)
        return HB_ENOMEM;
    int rc = contest_rules_parse(c->winners, c->split, &rules, err, sizeof(err));
    if (rc == 0)
        rc = contest_weights_parse(c->weight_roles, c->weight_holders, &rules, err, sizeof(err));
    if (rc == 0)
        rc = contest_schedule_parse(c->schedule, c->schedule_period, c->schedule_prize, sched, err,
                                    sizeof(err));
    free(sched);
    if (rc == 0)
        return 0;
    const char *key = strncmp(err, "weight_roles", 12) == 0      ? "weight_roles"
                      : strncmp(err, "schedule:", 9) == 0        ? "schedule"
                      : strncmp(err, "schedule_period", 15) == 0 ? "schedule_period"
                                                                 : "split";
    int line = config__key_line(in, key);
    return config__problem_add(ps->problems, line != 0 ? line : in->line, "[contest] %s", err);
}

/* [revenue]: the shares parse, add up to 100 % and name real shares; a
 * problem is reported on the line of the key it is about. */
static int config__revenue_check(struct config_parser *ps, const struct config_inst *in)
{
    const struct config_revenue *r = &ps->cfg->revenue;
    struct revenue_split split;
    char err[256];
    int rc = revenue_split_parse(r->shares, r->remainder, r->adjustable, &split, err, sizeof(err));
    if (rc == 0) {
        /* The holders: parsed, and agreeing with the split's holder share. */
        struct holders_config *h = malloc(sizeof(*h));
        if (h == NULL)
            return HB_ENOMEM;
        rc = holders_config_parse(r->holder_roles, r->holder_members,
                                  (enum holders_every)r->holder_payout, h, err, sizeof(err));
        if (rc == 0)
            rc = holders_config_check(&split, h, err, sizeof(err));
        free(h);
        if (rc == 0)
            return 0;
    }
    const char *key = strncmp(err, "adjustable", 10) == 0       ? "adjustable"
                      : strncmp(err, "remainder:", 10) == 0     ? "remainder"
                      : strncmp(err, "holder_roles", 12) == 0   ? "holder_roles"
                      : strncmp(err, "holder_members", 14) == 0 ? "holder_members"
                                                                : "shares";
    int line = config__key_line(in, key);
    return config__problem_add(ps->problems, line != 0 ? line : in->line, "[revenue] %s", err);
}

/* The line that set a key of [bot], or 0. */
static int config__bot_key_line(struct config_parser *ps, const char *key)
{
    const struct config_section_schema *bot = config__section_find("bot");
    for (size_t i = 0; i < ps->ninsts; i++) {
        if (ps->insts[i].sec == bot)
            return config__key_line(&ps->insts[i], key);
    }
    return 0;
}

/* Required keys, per-instance defaults, and rules across keys or sections. */
int config__validate(struct config_parser *ps)
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
    if (rc == 0 && ps->cfg->bot.persona != NULL &&
        config_persona_find(ps->cfg, ps->cfg->bot.persona) == NULL)
        rc = config__problem_add(ps->problems, config__bot_key_line(ps, "persona"),
                                 "[bot] persona \"%s\" is not a [persona] section",
                                 ps->cfg->bot.persona);
    if (rc < 0)
        return rc;

    const struct config_section_schema *prov = config__section_find("provider");
    const struct config_section_schema *model = config__section_find("model");
    const struct config_section_schema *filt = config__section_find("filter");
    const struct config_section_schema *access = config__section_find("access");
    const struct config_section_schema *persona = config__section_find("persona");
    const struct config_section_schema *approval = config__section_find("approval");
    const struct config_section_schema *revenue = config__section_find("revenue");
    const struct config_section_schema *contest = config__section_find("contest");
    for (size_t i = 0; i < ps->ninsts && rc == 0; i++) {
        struct config_inst *in = &ps->insts[i];
        if (in->sec == persona) {
            rc = config__persona_check(ps, in, config__item(ps->cfg, persona, in->index));
            continue;
        }
        if (in->sec == approval) {
            rc = config__approval_check(ps, in);
            continue;
        }
        if (in->sec == access) {
            rc = config__access_check(ps, in);
            continue;
        }
        if (in->sec == revenue) {
            rc = config__revenue_check(ps, in);
            continue;
        }
        if (in->sec == contest) {
            rc = config__contest_check(ps, in);
            continue;
        }
        if (in->sec == filt) {
            /* A pattern that does not build is reported on its own line. */
            const struct config_filter *f = config__item(ps->cfg, filt, in->index);
            size_t pat_idx = 0;
            int line = in->line;
            if (f->pattern != NULL && config__key_find(filt, "pattern", 7, &pat_idx) != NULL &&
                in->key_lines[pat_idx] != 0)
                line = in->key_lines[pat_idx];
            rc = config__filter_check(ps, f, line);
            continue;
        }
        if (in->sec == model) {
            rc = config__fallbacks_check(ps, config__item(ps->cfg, model, in->index), in->line);
            if (rc == 0)
                rc = config__model_params_check(ps, in, config__item(ps->cfg, model, in->index));
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
