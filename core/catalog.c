/* The model catalog: an immutable snapshot built from the operator's
 * settings. See catalog.h. */
#include "core/catalog.h"

#include "core/command.h"
#include "base/error.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct catalog {
    unsigned refs;
    struct catalog_provider *providers;
    size_t nproviders;
    struct catalog_model *models;
    size_t nmodels;
    struct catalog_limits limits;
    struct filter *filter;
    struct catalog_persona *personas;
    size_t npersonas;
    const struct catalog_persona *default_persona; /* NULL: none */
};

/* Split a comma-separated list into trimmed, non-empty heap strings. */
static int catalog__list(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (text == NULL)
        return 0;
    size_t cap = 1;
    for (const char *p = text; *p != '\0'; p++)
        cap += *p == ',';
    char **items = calloc(cap, sizeof(*items));
    if (items == NULL)
        return HB_ENOMEM;
    const char *p = text;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        const char *s = p;
        const char *e = p + len;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s) {
            items[*n] = strndup(s, (size_t)(e - s));
            if (items[*n] == NULL) {
                for (size_t i = 0; i < *n; i++)
                    free(items[i]);
                free(items);
                *n = 0;
                return HB_ENOMEM;
            }
            (*n)++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    *out = items;
    return 0;
}

static void catalog__list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static int catalog__size_parse(const char *text, struct catalog_size *out)
{
    unsigned w = 0, h = 0;
    char tail;
    if (sscanf(text, "%ux%u%c", &w, &h, &tail) != 2 || w < 1 || h < 1 || w > 4096 || h > 4096)
        return HB_EINVAL;
    out->width = w;
    out->height = h;
    return 0;
}

static void catalog__free(struct catalog *c)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        struct catalog_model *m = &c->models[i];
        free(m->name);
        free(m->upstream);
        free(m->sizes);
        catalog__list_free(m->fallbacks, m->nfallbacks);
        catalog__list_free(m->allow, m->nallow);
        free(m->system_prompt);
        catalog__list_free(m->stop, m->nstop);
        free(m->extra_body);
    }
    free(c->models);
    for (size_t i = 0; i < c->npersonas; i++) {
        struct catalog_persona *p = &c->personas[i];
        free(p->name);
        free(p->description);
        free(p->system_prompt);
        free(p->model);
        catalog__list_free(p->stop, p->nstop);
        free(p->extra_body);
        filter_free(p->filter);
        catalog__list_free(p->allow, p->nallow);
    }
    free(c->personas);
    for (size_t i = 0; i < c->nproviders; i++) {
        struct catalog_provider *p = &c->providers[i];
        free(p->name);
        if (p->provider != NULL)
            p->provider->ops->free(p->provider);
    }
    free(c->providers);
    filter_free(c->filter);
    free(c);
}

static void catalog__err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void catalog__err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void catalog__limits_default(struct catalog_limits *l)
{
    if (l->queue_max <= 0)
        l->queue_max = 64;
    if (l->user_queue <= 0)
        l->user_queue = 2;
    if (l->user_in_flight <= 0)
        l->user_in_flight = 1;
    if (l->prompt_max <= 0)
        l->prompt_max = 4000;
    if (l->memory_tokens <= 0)
        l->memory_tokens = 2000;
    if (l->conversation_idle_ms <= 0)
        l->conversation_idle_ms = 86400000LL;
    if (l->conversation_retention_ms <= 0)
        l->conversation_retention_ms = 30 * 86400000LL;
    if (l->image_retention_ms <= 0)
        l->image_retention_ms = 30 * 86400000LL;
    if (l->images_max < 0)
        l->images_max = 0;
    if (l->retry_max < 0)
        l->retry_max = 0;
    if (l->job_timeout_ms <= 0)
        l->job_timeout_ms = 300000;
    if (l->progress_ms <= 0)
        l->progress_ms = 500;
    if (l->image_max_bytes <= 0)
        l->image_max_bytes = CATALOG_IMAGE_MAX_BYTES_DEFAULT;
}

/* The text generation parameters: copied, with the bounds the request
 * struct promises. */
static int catalog__params_build(struct catalog_model *m, const struct catalog_model_spec *s,
                                 char *err, size_t errcap)
{
    if (s->nstop > PROVIDER_STOP_MAX) {
        catalog__err(err, errcap, "model \"%s\": more than %d stop sequences", s->name,
                     PROVIDER_STOP_MAX);
        return HB_ECONFIG;
    }
    m->temperature_set = s->temperature_set;
    m->temperature = s->temperature;
    m->top_p_set = s->top_p_set;
    m->top_p = s->top_p;
    m->max_tokens_field = s->max_tokens_field;
    /* Only a text model reads an image it is given. */
    m->vision = m->modality == PROVIDER_TEXT && s->vision;
    m->price_image = m->vision ? s->price_image : 0;
    /* A picture has no system prompt: an image model never pays for one. */
    if (m->modality == PROVIDER_TEXT && s->system_prompt != NULL && s->system_prompt[0] != '\0') {
        m->system_prompt = strdup(s->system_prompt);
        if (m->system_prompt == NULL)
            return HB_ENOMEM;
        m->system_bytes = strlen(m->system_prompt);
    }
    if (s->extra_body != NULL && s->extra_body[0] != '\0') {
        m->extra_body = strdup(s->extra_body);
        if (m->extra_body == NULL)
            return HB_ENOMEM;
    }
    if (s->nstop == 0)
        return 0;
    m->stop = calloc(s->nstop, sizeof(*m->stop));
    if (m->stop == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < s->nstop; i++) {
        m->stop[i] = strdup(s->stop[i]);
        if (m->stop[i] == NULL)
            return HB_ENOMEM;
        m->nstop++;
    }
    return 0;
}

static int catalog__model_build(struct catalog *c, struct catalog_model *m,
                                const struct catalog_model_spec *s, char *err, size_t errcap)
{
    m->name = strdup(s->name);
    m->upstream = strdup(s->upstream != NULL ? s->upstream : s->name);
    if (m->name == NULL || m->upstream == NULL)
        return HB_ENOMEM;
    for (size_t j = 0; j < c->nproviders; j++) {
        if (strcmp(c->providers[j].name, s->provider) == 0)
            m->provider = &c->providers[j];
    }
    if (m->provider == NULL) {
        catalog__err(err, errcap, "model \"%s\": provider \"%s\" is not defined", s->name,
                     s->provider);
        return HB_ECONFIG;
    }
    m->modality = s->modality;
    m->price_request = s->price_request;
    m->price_input_1k = s->price_input_1k;
    m->price_output_1k = s->price_output_1k;
    m->max_output_tokens = s->max_output_tokens > 0 ? s->max_output_tokens : 1024;
    m->enabled = s->enabled;
    char **sizes = NULL;
    size_t nsizes = 0;
    int rc = catalog__list(s->sizes != NULL ? s->sizes : "512x512", &sizes, &nsizes);
    if (rc < 0)
        return rc;
    m->sizes = calloc(nsizes > 0 ? nsizes : 1, sizeof(*m->sizes));
    if (m->sizes == NULL)
        rc = HB_ENOMEM;
    for (size_t j = 0; j < nsizes && rc == 0; j++) {
        if (catalog__size_parse(sizes[j], &m->sizes[j]) < 0) {
            catalog__err(err, errcap, "model \"%s\": size \"%s\" is not WIDTHxHEIGHT", s->name,
                         sizes[j]);
            rc = HB_ECONFIG;
        }
    }
    m->nsizes = nsizes;
    catalog__list_free(sizes, nsizes);
    if (rc < 0)
        return rc;
    if (m->nsizes == 0) {
        m->sizes[0].width = m->sizes[0].height = 512;
        m->nsizes = 1;
    }
    rc = catalog__list(s->fallbacks, &m->fallbacks, &m->nfallbacks);
    if (rc == 0)
        rc = catalog__list(s->allow, &m->allow, &m->nallow);
    if (rc == 0)
        rc = catalog__params_build(m, s, err, errcap);
    return rc;
}

/* Fallbacks must exist, make the same thing, and never put a demo behind a
 * real model. */
static int catalog__fallbacks_check(const struct catalog *c, char *err, size_t errcap)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        const struct catalog_model *m = &c->models[i];
        for (size_t j = 0; j < m->nfallbacks; j++) {
            const struct catalog_model *f = catalog_model_find(c, m->fallbacks[j]);
            if (f == NULL) {
                catalog__err(err, errcap, "model \"%s\": fallback \"%s\" is not defined", m->name,
                             m->fallbacks[j]);
                return HB_ECONFIG;
            }
            if (f == m) {
                catalog__err(err, errcap, "model \"%s\" lists itself as a fallback", m->name);
                return HB_ECONFIG;
            }
            if (f->modality != m->modality) {
                catalog__err(err, errcap, "model \"%s\": fallback \"%s\" makes %s, not %s", m->name,
                             f->name, f->modality == PROVIDER_TEXT ? "text" : "images",
                             m->modality == PROVIDER_TEXT ? "text" : "images");
                return HB_ECONFIG;
            }
            if (f->provider->provider->demo && !m->provider->provider->demo) {
                catalog__err(err, errcap,
                             "model \"%s\": the demo model \"%s\" cannot be the fallback of a "
                             "real model",
                             m->name, f->name);
                return HB_ECONFIG;
            }
        }
    }
    return 0;
}

/* Copies n strings into a new array. */
static int catalog__strings(const char *const *in, size_t n, char ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    *out = calloc(n, sizeof(**out));
    if (*out == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = strdup(in[i]);
        if ((*out)[i] == NULL)
            return HB_ENOMEM;
        (*nout)++;
    }
    return 0;
}

static char *catalog__dup(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* A persona: copied, its model checked, its forbidden words built into a
 * filter rule of their own. */
static int catalog__persona_build(struct catalog *c, struct catalog_persona *p,
                                  const struct catalog_persona_spec *s, char *err, size_t errcap)
{
    if (s->nstop > PROVIDER_STOP_MAX) {
        catalog__err(err, errcap, "persona \"%s\": more than %d stop sequences", s->name,
                     PROVIDER_STOP_MAX);
        return HB_ECONFIG;
    }
    p->name = strdup(s->name);
    p->description = strdup(s->description != NULL ? s->description : "");
    if (p->name == NULL || p->description == NULL)
        return HB_ENOMEM;
    p->system_prompt = catalog__dup(s->system_prompt);
    p->model = catalog__dup(s->model);
    p->extra_body = catalog__dup(s->extra_body);
    if ((s->system_prompt != NULL && s->system_prompt[0] != '\0' && p->system_prompt == NULL) ||
        (s->model != NULL && s->model[0] != '\0' && p->model == NULL) ||
        (s->extra_body != NULL && s->extra_body[0] != '\0' && p->extra_body == NULL))
        return HB_ENOMEM;
    if (p->model != NULL) {
        const struct catalog_model *m = catalog_model_find(c, p->model);
        if (m == NULL || m->modality != PROVIDER_TEXT) {
            catalog__err(err, errcap, "persona \"%s\": model \"%s\" is not a text model", s->name,
                         p->model);
            return HB_ECONFIG;
        }
    }
    p->temperature_set = s->temperature_set;
    p->temperature = s->temperature;
    p->top_p_set = s->top_p_set;
    p->top_p = s->top_p;
    p->max_tokens = s->max_tokens > 0 ? s->max_tokens : 0;
    p->show_prompt = s->show_prompt;
    p->approval = s->approval;
    int rc = catalog__strings(s->stop, s->nstop, &p->stop, &p->nstop);
    if (rc == 0)
        rc = catalog__list(s->allow, &p->allow, &p->nallow);
    if (rc == 0 && s->nforbidden > 0) {
        struct filter_rule rule = {.name = s->name,
                                   .kind = FILTER_KIND_WORDS,
                                   .action = FILTER_ACTION_BLOCK,
                                   .words = s->forbidden,
                                   .nwords = s->nforbidden};
        char ferr[256] = "";
        p->filter = filter_new(&rule, 1, ferr, sizeof(ferr));
        if (p->filter == NULL) {
            catalog__err(err, errcap, "persona \"%s\": forbidden words: %s", s->name, ferr);
            rc = HB_ECONFIG;
        }
    }
    return rc;
}

static int catalog__personas_build(struct catalog *c, const struct catalog_spec *spec, char *err,
                                   size_t errcap)
{
    c->personas = calloc(spec->npersonas > 0 ? spec->npersonas : 1, sizeof(*c->personas));
    if (c->personas == NULL)
        return HB_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < spec->npersonas && rc == 0; i++) {
        c->npersonas = i + 1;
        rc = catalog__persona_build(c, &c->personas[i], &spec->personas[i], err, errcap);
    }
    if (rc == 0 && spec->default_persona != NULL && spec->default_persona[0] != '\0') {
        c->default_persona = catalog_persona_find(c, spec->default_persona);
        if (c->default_persona == NULL) {
            catalog__err(err, errcap, "the default persona \"%s\" is not defined",
                         spec->default_persona);
            rc = HB_ECONFIG;
        }
    }
    return rc;
}

struct catalog *catalog_new(const struct catalog_spec *spec, char *err, size_t errcap)
{
    int rc = 0;
    struct catalog *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        for (size_t i = 0; i < spec->nproviders; i++) {
            if (spec->providers[i].provider != NULL)
                spec->providers[i].provider->ops->free(spec->providers[i].provider);
        }
        catalog__err(err, errcap, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->limits = spec->limits;
    catalog__limits_default(&c->limits);
    c->providers = calloc(spec->nproviders > 0 ? spec->nproviders : 1, sizeof(*c->providers));
    if (c->providers == NULL) {
        for (size_t i = 0; i < spec->nproviders; i++) {
            if (spec->providers[i].provider != NULL)
                spec->providers[i].provider->ops->free(spec->providers[i].provider);
        }
        free(c);
        catalog__err(err, errcap, "out of memory");
        return NULL;
    }
    /* Take every provider first, so a failure below frees them all. */
    c->nproviders = spec->nproviders;
    for (size_t i = 0; i < spec->nproviders; i++) {
        const struct catalog_provider_spec *ps = &spec->providers[i];
        struct catalog_provider *p = &c->providers[i];
        p->provider = ps->provider;
        p->name = strdup(ps->name);
        p->timeout_ms = ps->timeout_ms > 0 ? ps->timeout_ms : 120000;
        p->max_concurrent = ps->max_concurrent > 0 ? ps->max_concurrent : 4;
        if (p->name == NULL)
            rc = HB_ENOMEM;
        else if (p->provider == NULL) {
            catalog__err(err, errcap, "provider \"%s\" could not be created", ps->name);
            rc = HB_ECONFIG;
        }
    }
    if (rc < 0)
        goto fail;
    c->models = calloc(spec->nmodels > 0 ? spec->nmodels : 1, sizeof(*c->models));
    if (c->models == NULL) {
        rc = HB_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < spec->nmodels && rc == 0; i++) {
        c->nmodels = i + 1;
        rc = catalog__model_build(c, &c->models[i], &spec->models[i], err, errcap);
    }
    if (rc < 0)
        goto fail;
    rc = catalog__fallbacks_check(c, err, errcap);
    if (rc == 0)
        rc = catalog__personas_build(c, spec, err, errcap);
    if (rc < 0)
        goto fail;
    char ferr[256] = "";
    c->filter = filter_new(spec->filter_rules, spec->nfilter_rules, ferr, sizeof(ferr));
    if (c->filter == NULL) {
        catalog__err(err, errcap, "content filter: %s", ferr);
        rc = HB_ECONFIG;
        goto fail;
    }
    return c;
fail:
    if (rc == HB_ENOMEM)
        catalog__err(err, errcap, "out of memory");
    catalog__free(c);
    return NULL;
}

void catalog_ref(struct catalog *c)
{
    c->refs++;
}

void catalog_unref(struct catalog *c)
{
    if (c != NULL && --c->refs == 0)
        catalog__free(c);
}

const struct catalog_limits *catalog_limits_get(const struct catalog *c)
{
    return &c->limits;
}

const struct filter *catalog_filter(const struct catalog *c)
{
    return c->filter;
}

size_t catalog_model_count(const struct catalog *c)
{
    return c->nmodels;
}

const struct catalog_model *catalog_model_at(const struct catalog *c, size_t i)
{
    return i < c->nmodels ? &c->models[i] : NULL;
}

const struct catalog_model *catalog_model_find(const struct catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        if (strcasecmp(c->models[i].name, name) == 0)
            return &c->models[i];
    }
    return NULL;
}

const struct catalog_model *catalog_model_default(const struct catalog *c,
                                                  enum provider_modality modality)
{
    for (size_t i = 0; i < c->nmodels; i++) {
        if (c->models[i].enabled && c->models[i].modality == modality && c->models[i].nallow == 0)
            return &c->models[i];
    }
    return NULL;
}

static bool catalog__allowed(char *const *allow, size_t nallow, const struct invocation *inv);

bool catalog_model_allowed(const struct catalog_model *m, const struct invocation *inv)
{
    return catalog__allowed(m->allow, m->nallow, inv);
}

size_t catalog_persona_count(const struct catalog *c)
{
    return c->npersonas;
}

const struct catalog_persona *catalog_persona_at(const struct catalog *c, size_t i)
{
    return i < c->npersonas ? &c->personas[i] : NULL;
}

const struct catalog_persona *catalog_persona_find(const struct catalog *c, const char *name)
{
    for (size_t i = 0; name != NULL && i < c->npersonas; i++) {
        if (strcasecmp(c->personas[i].name, name) == 0)
            return &c->personas[i];
    }
    return NULL;
}

const struct catalog_persona *catalog_persona_default(const struct catalog *c)
{
    return c->default_persona;
}

/* An allow list ("discord:42", "scope:discord:99", "dm", "admins") against
 * the invoking member; an empty list lets everyone in. */
static bool catalog__allowed(char *const *allow, size_t nallow, const struct invocation *inv)
{
    if (nallow == 0)
        return true;
    char wallet[COMMAND_ID_MAX + 16];
    char scope[COMMAND_ID_MAX + 24];
    snprintf(wallet, sizeof(wallet), "%s:%s", command_platform_name(inv->platform), inv->user_id);
    snprintf(scope, sizeof(scope), "scope:%s:%s", command_platform_name(inv->platform),
             inv->scope_id);
    for (size_t i = 0; i < nallow; i++) {
        const char *a = allow[i];
        if (strcmp(a, wallet) == 0 || (inv->admin && strcmp(a, "admins") == 0) ||
            (inv->scope == COMMAND_SCOPE_DM && strcmp(a, "dm") == 0) ||
            (inv->scope == COMMAND_SCOPE_GROUP && strcmp(a, scope) == 0))
            return true;
    }
    return false;
}

bool catalog_persona_allowed(const struct catalog_persona *p, const struct invocation *inv)
{
    return catalog__allowed(p->allow, p->nallow, inv);
}

bool catalog_model_size(const struct catalog_model *m, const char *text, struct catalog_size *out)
{
    if (text == NULL || text[0] == '\0') {
        *out = m->sizes[0];
        return true;
    }
    struct catalog_size s;
    if (catalog__size_parse(text, &s) < 0)
        return false;
    for (size_t i = 0; i < m->nsizes; i++) {
        if (m->sizes[i].width == s.width && m->sizes[i].height == s.height) {
            *out = s;
            return true;
        }
    }
    return false;
}

/* ceil(tokens * price / 1000) without overflow for sane inputs. */
static int64_t catalog__per_1k(int64_t tokens, int64_t price)
{
    if (tokens <= 0 || price <= 0)
        return 0;
    if (tokens > INT64_MAX / price)
        return INT64_MAX / 4;
    return (tokens * price + 999) / 1000;
}

int64_t catalog_estimate(const struct catalog_model *m, size_t input_bytes)
{
    return catalog_estimate_with(m, input_bytes, m->system_bytes, m->max_output_tokens);
}

int64_t catalog_estimate_with(const struct catalog_model *m, size_t input_bytes,
                              size_t system_bytes, int64_t max_output_tokens)
{
    int64_t input = (int64_t)input_bytes + (int64_t)system_bytes;
    return m->price_request + catalog__per_1k(input, m->price_input_1k) +
           catalog__per_1k(max_output_tokens, m->price_output_1k);
}

/* tokens * price into *sum, false when it would overflow. */
static bool catalog__mul_add(int64_t *sum, int64_t tokens, int64_t price)
{
    if (tokens <= 0 || price <= 0)
        return true;
    if (tokens > (INT64_MAX - *sum) / price)
        return false;
    *sum += tokens * price;
    return true;
}

int64_t catalog_cost(const struct catalog_model *m, long input_tokens, long output_tokens)
{
    /* The exact price is in thousandths of a credit; the member pays the
     * whole credits of it, rounded down, so never more than the configured
     * price. The fraction left over is the operator's, never the member's. */
    int64_t milli = 0;
    if (!catalog__mul_add(&milli, input_tokens, m->price_input_1k) ||
        !catalog__mul_add(&milli, output_tokens, m->price_output_1k))
        return INT64_MAX / 4;
    return m->price_request + milli / 1000;
}
