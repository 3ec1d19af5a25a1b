#include "base/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct metrics_series {
    char values[METRICS_LABELS_MAX][METRICS_LABEL_VALUE_MAX];
    double value;                              /* counter or gauge; histogram: sum */
    uint64_t count;                            /* histogram: observations */
    uint64_t buckets[METRICS_BUCKETS_MAX + 1]; /* histogram: per bound, last is +Inf */
};

struct metrics_family {
    struct metrics_family *next; /* registry order */
    char *name;
    char *help;
    enum metrics_type type;
    char *labels[METRICS_LABELS_MAX];
    size_t nlabels;
    double bounds[METRICS_BUCKETS_MAX];
    size_t nbounds;
    struct metrics_series *series; /* created on first use */
    size_t nseries;
    size_t cap;
};

static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family *metrics_head;
static struct metrics_family *metrics_tail;
static struct metrics_std metrics_std_families;
static bool metrics_std_ready;
static uint64_t metrics_dropped; /* updates refused: too many series */

static void metrics__family_free(struct metrics_family *f)
{
    free(f->name);
    free(f->help);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->series);
    free(f);
}

/* Metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':'). */
static bool metrics__name_ok(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

static struct metrics_family *metrics__find(const char *name)
{
    for (struct metrics_family *f = metrics_head; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

struct metrics_family *metrics_family_new(const char *name, const char *help,
                                          enum metrics_type type, const char *const *labels,
                                          size_t nlabels, const double *bounds, size_t nbounds)
{
    if (!metrics__name_ok(name, true) || nlabels > METRICS_LABELS_MAX ||
        nbounds > METRICS_BUCKETS_MAX || (type == METRICS_HISTOGRAM && nbounds == 0))
        return NULL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!metrics__name_ok(labels[i], false) || strcmp(labels[i], "le") == 0)
            return NULL;
    }
    for (size_t i = 1; i < nbounds; i++) {
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    }
    pthread_mutex_lock(&metrics_mu);
    struct metrics_family *f = metrics__find(name);
    if (f != NULL) {
        pthread_mutex_unlock(&metrics_mu);
        return f->type == type && f->nlabels == nlabels ? f : NULL;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto fail;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto fail;
    for (size_t i = 0; i < nlabels; i++) {
        f->labels[i] = strdup(labels[i]);
        if (f->labels[i] == NULL)
            goto fail;
        f->nlabels = i + 1;
    }
    if (nbounds > 0)
        memcpy(f->bounds, bounds, nbounds * sizeof(bounds[0]));
    f->nbounds = type == METRICS_HISTOGRAM ? nbounds : 0;
    if (metrics_tail != NULL)
        metrics_tail->next = f;
    else
        metrics_head = f;
    metrics_tail = f;
    pthread_mutex_unlock(&metrics_mu);
    return f;
fail:
    if (f != NULL)
        metrics__family_free(f);
    pthread_mutex_unlock(&metrics_mu);
    return NULL;
}

static const double metrics_latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5,   1,    2.5,   5,    10,  30};
static const double metrics_commit_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                               0.05,   0.1,   0.25,  0.5,   1};
static const double metrics_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

const struct metrics_std *metrics_std(void)
{
    pthread_mutex_lock(&metrics_mu);
    bool ready = metrics_std_ready;
    pthread_mutex_unlock(&metrics_mu);
    if (ready)
        return &metrics_std_families;
    static const char *const l_cmd[] = {"command", "outcome"};
    static const char *const l_gen[] = {"model", "outcome"};
    static const char *const l_kind[] = {"kind"};
    static const char *const l_provider[] = {"provider"};
    static const char *const l_platform[] = {"platform"};
    static const char *const l_hook[] = {"provider", "outcome"};
    static const char *const l_dep[] = {"method", "outcome"};
    static const char *const l_action[] = {"action"};
    static const char *const l_outcome[] = {"outcome"};
#define NB(a) (sizeof(a) / sizeof(a[0]))
    struct metrics_std s = {
        .commands = metrics_family_new("haibot_commands_total", "Commands run, by outcome.",
                                       METRICS_COUNTER, l_cmd, 2, NULL, 0),
        .generations = metrics_family_new("haibot_generations_total",
                                          "Generations finished, by model and outcome.",
                                          METRICS_COUNTER, l_gen, 2, NULL, 0),
        .credits_moved = metrics_family_new("haibot_credits_moved_total",
                                            "Credits moved by committed ledger transfers, by kind.",
                                            METRICS_COUNTER, l_kind, 1, NULL, 0),
        .queue_depth = metrics_family_new("haibot_queue_depth", "Generation jobs waiting to run.",
                                          METRICS_GAUGE, NULL, 0, NULL, 0),
        .provider_latency = metrics_family_new(
            "haibot_provider_latency_seconds", "Time from request to first byte, by provider.",
            METRICS_HISTOGRAM, l_provider, 1, metrics_latency_bounds, NB(metrics_latency_bounds)),
        .gateway_reconnects = metrics_family_new("haibot_gateway_reconnects_total",
                                                 "Gateway connections lost and reopened.",
                                                 METRICS_COUNTER, l_platform, 1, NULL, 0),
        .gateway_resumes =
            metrics_family_new("haibot_gateway_resumes_total", "Gateway sessions resumed.",
                               METRICS_COUNTER, l_platform, 1, NULL, 0),
        .ratelimit_waits = metrics_family_new("haibot_ratelimit_waits_total",
                                              "Requests held back by a rate limit.",
                                              METRICS_COUNTER, l_platform, 1, NULL, 0),
        .http_429 = metrics_family_new("haibot_http_429_total",
                                       "HTTP 429 answers received from a platform.",
                                       METRICS_COUNTER, l_platform, 1, NULL, 0),
        .storage_commit = metrics_family_new(
            "haibot_storage_commit_seconds", "Time one storage transaction took to commit.",
            METRICS_HISTOGRAM, NULL, 0, metrics_commit_bounds, NB(metrics_commit_bounds)),
        .storage_batch = metrics_family_new(
            "haibot_storage_batch_size", "Operations sharing one storage commit.",
            METRICS_HISTOGRAM, NULL, 0, metrics_batch_bounds, NB(metrics_batch_bounds)),
        .webhooks = metrics_family_new("haibot_webhooks_total",
                                       "Payment webhooks received, by provider and outcome.",
                                       METRICS_COUNTER, l_hook, 2, NULL, 0),
        .deposits =
            metrics_family_new("haibot_deposits_total", "Deposits seen, by method and outcome.",
                               METRICS_COUNTER, l_dep, 2, NULL, 0),
        .filter_checks = metrics_family_new(
            "haibot_filter_checks_total", "Texts (prompts and outputs) the content filter checked.",
            METRICS_COUNTER, NULL, 0, NULL, 0),
        .filter_hits =
            metrics_family_new("haibot_filter_hits_total",
                               "Content-filter checks that blocked or redacted, by action.",
                               METRICS_COUNTER, l_action, 1, NULL, 0),
        .approvals =
            metrics_family_new("haibot_approvals_total", "Held generations decided, by outcome.",
                               METRICS_COUNTER, l_outcome, 1, NULL, 0),
        .storage_errors = metrics_family_new("haibot_storage_errors_total",
                                             "Storage transactions that failed to commit.",
                                             METRICS_COUNTER, NULL, 0, NULL, 0),
    };
#undef NB
    pthread_mutex_lock(&metrics_mu);
    metrics_std_families = s;
    metrics_std_ready = true;
    pthread_mutex_unlock(&metrics_mu);
    return &metrics_std_families;
}

/* A series' labels equal these values (cut as when stored). */
static bool metrics__labels_equal(const struct metrics_family *f, const struct metrics_series *s,
                                  const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = values != NULL && values[i] != NULL ? values[i] : "";
        if (strncmp(s->values[i], v, METRICS_LABEL_VALUE_MAX - 1) != 0)
            return false;
    }
    return true;
}

/* The series for these label values, created when absent. Called locked. */
static struct metrics_series *metrics__series(struct metrics_family *f, const char *const *values,
                                              bool create)
{
    for (size_t i = 0; i < f->nseries; i++) {
        if (metrics__labels_equal(f, &f->series[i], values))
            return &f->series[i];
    }
    if (!create)
        return NULL;
    if (f->nseries == METRICS_SERIES_MAX) {
        metrics_dropped++;
        return NULL;
    }
    if (f->nseries == f->cap) {
        size_t cap = f->cap == 0 ? 4 : f->cap * 2;
        struct metrics_series *n = realloc(f->series, cap * sizeof(*n));
        if (n == NULL) {
            metrics_dropped++;
            return NULL;
        }
        f->series = n;
        f->cap = cap;
    }
    struct metrics_series *s = &f->series[f->nseries++];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < f->nlabels; i++)
        snprintf(s->values[i], sizeof(s->values[i]), "%s",
                 values != NULL && values[i] != NULL ? values[i] : "");
    return s;
}

void metrics_counter_add(struct metrics_family *fam, const char *const *values, double v)
{
    if (fam == NULL || fam->type != METRICS_COUNTER || !(v >= 0))
        return;
    pthread_mutex_lock(&metrics_mu);
    struct metrics_series *s = metrics__series(fam, values, true);
    if (s != NULL)
        s->value += v;
    pthread_mutex_unlock(&metrics_mu);
}

void metrics_gauge_set(struct metrics_family *fam, const char *const *values, double v)
{
    if (fam == NULL || fam->type != METRICS_GAUGE || isnan(v))
        return;
    pthread_mutex_lock(&metrics_mu);
    struct metrics_series *s = metrics__series(fam, values, true);
    if (s != NULL)
        s->value = v;
    pthread_mutex_unlock(&metrics_mu);
}

void metrics_observe(struct metrics_family *fam, const char *const *values, double v)
{
    if (fam == NULL || fam->type != METRICS_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&metrics_mu);
    struct metrics_series *s = metrics__series(fam, values, true);
    if (s != NULL) {
        size_t b = 0;
        while (b < fam->nbounds && v > fam->bounds[b])
            b++;
        s->buckets[b]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&metrics_mu);
}

double metrics_value(struct metrics_family *fam, const char *const *values)
{
    if (fam == NULL)
        return 0;
    pthread_mutex_lock(&metrics_mu);
    struct metrics_series *s = metrics__series(fam, values, false);
    double v = s == NULL ? 0 : fam->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&metrics_mu);
    return v;
}

double metrics_sum(struct metrics_family *fam, size_t label, const char *value)
{
    if (fam == NULL)
        return 0;
    double sum = 0;
    pthread_mutex_lock(&metrics_mu);
    for (size_t i = 0; i < fam->nseries; i++) {
        const struct metrics_series *s = &fam->series[i];
        if (value != NULL && (label >= fam->nlabels ||
                              strncmp(s->values[label], value, METRICS_LABEL_VALUE_MAX - 1) != 0))
            continue;
        sum += fam->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
    }
    pthread_mutex_unlock(&metrics_mu);
    return sum;
}

size_t metrics_histogram_merged(struct metrics_family *fam, double *bounds, double *counts,
                                size_t max)
{
    if (fam == NULL || fam->type != METRICS_HISTOGRAM)
        return 0;
    pthread_mutex_lock(&metrics_mu);
    size_t n = fam->nbounds + 1 < max ? fam->nbounds + 1 : max;
    for (size_t b = 0; b < n; b++) {
        bounds[b] = b < fam->nbounds ? fam->bounds[b] : INFINITY;
        counts[b] = 0;
        for (size_t i = 0; i < fam->nseries; i++)
            counts[b] += (double)fam->series[i].buckets[b];
    }
    pthread_mutex_unlock(&metrics_mu);
    return n;
}

/* ---- exposition ---------------------------------------------------------- */

static void metrics__escape(FILE *out, const char *s, bool help)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (*s == '"' && !help)
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

static void metrics__number(FILE *out, double v)
{
    if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", out);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(out, "%.0f", v);
    else
        fprintf(out, "%.17g", v);
}

/* name{labels[,le="x"]} value */
static void metrics__sample(FILE *out, const struct metrics_family *f, const char *suffix,
                            const struct metrics_series *s, const char *le, double v)
{
    fprintf(out, "%s%s", f->name, suffix);
    if (f->nlabels > 0 || le != NULL) {
        fputc('{', out);
        for (size_t i = 0; i < f->nlabels; i++) {
            fprintf(out, "%s%s=\"", i > 0 ? "," : "", f->labels[i]);
            metrics__escape(out, s->values[i], false);
            fputc('"', out);
        }
        if (le != NULL)
            fprintf(out, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le);
        fputc('}', out);
    }
    fputc(' ', out);
    metrics__number(out, v);
    fputc('\n', out);
}

static void metrics__family_render(FILE *out, const struct metrics_family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    fprintf(out, "# HELP %s ", f->name);
    metrics__escape(out, f->help, true);
    fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
    struct metrics_series zero;
    memset(&zero, 0, sizeof(zero));
    size_t n = f->nseries;
    /* A family without labels always shows its one series, 0 until used. */
    bool show_zero = n == 0 && f->nlabels == 0;
    for (size_t i = 0; i < n || show_zero; i++) {
        const struct metrics_series *s = show_zero ? &zero : &f->series[i];
        show_zero = false;
        if (f->type != METRICS_HISTOGRAM) {
            metrics__sample(out, f, "", s, NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        for (size_t b = 0; b <= f->nbounds; b++) {
            char le[32];
            cum += s->buckets[b];
            if (b == f->nbounds)
                snprintf(le, sizeof(le), "+Inf");
            else
                snprintf(le, sizeof(le), "%g", f->bounds[b]);
            metrics__sample(out, f, "_bucket", s, le, (double)cum);
        }
        metrics__sample(out, f, "_sum", s, NULL, s->value);
        metrics__sample(out, f, "_count", s, NULL, (double)s->count);
    }
}

/* Resident set size from /proc/self/statm (pages), or 0 when unreadable. */
static double metrics__rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

char *metrics_render(size_t *len)
{
    metrics_std();
    char *text = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&text, &n);
    if (out == NULL)
        return NULL;
    double rss = metrics__rss_bytes();
    pthread_mutex_lock(&metrics_mu);
    for (const struct metrics_family *f = metrics_head; f != NULL; f = f->next)
        metrics__family_render(out, f);
    fprintf(out,
            "# HELP haibot_metrics_dropped_total Metric updates refused: too many series.\n"
            "# TYPE haibot_metrics_dropped_total counter\nhaibot_metrics_dropped_total %llu\n",
            (unsigned long long)metrics_dropped);
    pthread_mutex_unlock(&metrics_mu);
    fputs("# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
          "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
          out);
    metrics__number(out, rss);
    fputc('\n', out);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    if (len != NULL)
        *len = n;
    return text;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&metrics_mu);
    for (struct metrics_family *f = metrics_head; f != NULL; f = f->next)
        f->nseries = 0;
    metrics_dropped = 0;
    pthread_mutex_unlock(&metrics_mu);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&metrics_mu);
    struct metrics_family *f = metrics_head;
    metrics_head = metrics_tail = NULL;
    metrics_std_ready = false;
    memset(&metrics_std_families, 0, sizeof(metrics_std_families));
    pthread_mutex_unlock(&metrics_mu);
    while (f != NULL) {
        struct metrics_family *next = f->next;
        metrics__family_free(f);
        f = next;
    }
}
