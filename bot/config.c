/* The configuration: problems, suggestions, values and loading. The schema
 * lives in config_schema.c, the reader in config_read.c, the cross-field
 * checks in config_check.c and the comparison in config_diff.c. See config.h
 * for the file's shape. */
#include "bot/config_internal.h"

#include "base/error.h"
#include "base/text.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Problems ------------------------------------------------------------ */

void config_problems_init(struct config_problems *p)
{
    memset(p, 0, sizeof(*p));
}

void config_problems_free(struct config_problems *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->items[i].message);
    free(p->items);
    free(p->file);
    memset(p, 0, sizeof(*p));
}

int config__problem_vadd(struct config_problems *p, int line, const char *fmt, va_list ap)
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

int config__problem_add(struct config_problems *p, int line, const char *fmt, ...)
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

void config__suggest_init(struct config_suggest *s, const char *word)
{
    s->word = word;
    s->best = NULL;
    s->dist = SIZE_MAX;
}

void config__suggest_try(struct config_suggest *s, const char *candidate)
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
const char *config__suggest_result(const struct config_suggest *s)
{
    size_t len = strlen(s->word);
    size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return s->best != NULL && s->dist > 0 && s->dist <= limit ? s->best : NULL;
}

/* ---- Value parsing ------------------------------------------------------- */

/* Parses text as key k into field. Returns 0, or HB_ECONFIG after adding a
 * problem at line, or HB_ENOMEM. */
int config__value_set(struct config_problems *p, int line, const char *section,
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
    for (size_t i = 0; i < config__nsections; i++) {
        const struct config_section_schema *s = &config__schema[i];
        size_t n = config__instances(cfg, s);
        for (size_t j = 0; j < n; j++)
            config__item_free(s, config__item(cfg, s, j));
        if (s->repeatable)
            free(config__array_get(cfg, s));
    }
    free(cfg->path);
    free(cfg);
}

/* ---- Loading -------------------------------------------------------------- */

/* A relative storage path is relative to the folder of the config file, not
 * to wherever the daemon happens to be started: otherwise a start from
 * another folder silently opens a new, empty ledger. The folder is made
 * absolute, so the path the start logs is the one a backup needs. */
static int config__storage_path_resolve(struct config *cfg, const char *conf_path)
{
    char *rel = cfg->storage.path;
    if (rel == NULL || rel[0] == '\0' || rel[0] == '/')
        return 0;
    char *copy = strdup(conf_path);
    if (copy == NULL)
        return HB_ENOMEM;
    const char *dir = dirname(copy);
    char abs[PATH_MAX];
    if (realpath(dir, abs) != NULL)
        dir = abs;
    size_t len = strlen(dir) + 1 + strlen(rel) + 1;
    char *joined = malloc(len);
    if (joined != NULL)
        snprintf(joined, len, "%s/%s", dir, rel);
    free(copy);
    if (joined == NULL)
        return HB_ENOMEM;
    free(cfg->storage.path);
    cfg->storage.path = joined;
    return 0;
}

int config_load(const char *path, struct config **out, struct config_problems *problems)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    struct config_parser ps;
    memset(&ps, 0, sizeof(ps));
    *out = NULL;
    config_problems_free(problems);
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
    rc = config__storage_path_resolve(ps.cfg, path);
    if (rc < 0)
        goto out;
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
    for (size_t i = 0; i < config__nsections; i++) {
        const struct config_section_schema *s = &config__schema[i];
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
    log_warn("config.mode", "file=%s mode=%03o problem=readable or writable by other users hint=%s",
             path, (unsigned)(st.st_mode & 0777),
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

const struct config_persona *config_persona_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npersonas; i++) {
        if (strcmp(cfg->personas[i].name, name) == 0)
            return &cfg->personas[i];
    }
    return NULL;
}
