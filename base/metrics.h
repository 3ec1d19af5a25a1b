/* The metrics registry: counters, gauges and histograms with labels, read
 * out in the Prometheus text exposition format.
 *
 * A leaf utility like base/log.h: any layer may count (storage counts its
 * commits from its own thread), so every update takes one process-wide
 * mutex for a few dozen nanoseconds. Families are declared once, at
 * startup or as static data below, and live for the whole process; a
 * labelled family creates a series the first time a set of label values
 * is seen, up to METRICS_SERIES_MAX per family (more are counted in
 * haibot_metrics_dropped_total and otherwise ignored, so a bug cannot
 * grow memory without bound).
 *
 * Label values are passed as an array in the family's label order:
 *
 *     metrics_counter_add(metrics_std()->commands, (const char *[]){"balance", "ok"}, 1);
 *
 * metrics_std() holds the families the daemon exposes; the ones no module
 * reports yet read 0. */
#ifndef HB_METRICS_H
#define HB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_LABELS_MAX 3       /* labels per family */
#define METRICS_SERIES_MAX 256     /* label combinations per family */
#define METRICS_LABEL_VALUE_MAX 64 /* longer values are cut, in bytes */
#define METRICS_BUCKETS_MAX 16     /* histogram upper bounds, +Inf excluded */

enum metrics_type { METRICS_COUNTER = 0, METRICS_GAUGE = 1, METRICS_HISTOGRAM = 2 };

struct metrics_family;

/** The families the daemon registers at startup. */
struct metrics_std {
    struct metrics_family *commands;           /* counter {command, outcome} */
    struct metrics_family *generations;        /* counter {model, outcome} */
    struct metrics_family *credits_moved;      /* counter {kind}, credits */
    struct metrics_family *queue_depth;        /* gauge: generation jobs waiting */
    struct metrics_family *provider_latency;   /* histogram {provider}, seconds */
    struct metrics_family *gateway_reconnects; /* counter {platform} */
    struct metrics_family *gateway_resumes;    /* counter {platform} */
    struct metrics_family *ratelimit_waits;    /* counter {platform} */
    struct metrics_family *http_429;           /* counter {platform} */
    struct metrics_family *storage_commit;     /* histogram: seconds per commit */
    struct metrics_family *storage_batch;      /* histogram: operations per commit */
    struct metrics_family *webhooks;           /* counter {provider, outcome} */
    struct metrics_family *deposits;           /* counter {method, outcome} */
    struct metrics_family *filter_checks;      /* counter: texts the content filter checked */
    struct metrics_family *filter_hits;        /* counter {action}: blocked, redacted */
    struct metrics_family *approvals;          /* counter {outcome}: held jobs decided */
    struct metrics_family *storage_errors;     /* counter: storage transactions that failed */
};

/** Declare a family (name, help and label names copied; bounds copied,
 *  ascending, for histograms). Returns the existing family when the name
 *  is already declared with the same type, NULL on a bad argument or no
 *  memory. Families are freed only by metrics_shutdown(). */
struct metrics_family *metrics_family_new(const char *name, const char *help,
                                          enum metrics_type type, const char *const *labels,
                                          size_t nlabels, const double *bounds, size_t nbounds);

/** The standard families, declared on first use. Never NULL unless memory
 *  ran out at the first call (then every member is NULL, which every
 *  update below accepts). */
const struct metrics_std *metrics_std(void);

/** Add v (>= 0) to a counter series. fam may be NULL (nothing happens);
 *  values has the family's number of labels (NULL when it has none). */
void metrics_counter_add(struct metrics_family *fam, const char *const *values, double v);

/** Set a gauge series to v. */
void metrics_gauge_set(struct metrics_family *fam, const char *const *values, double v);

/** Record one observation in a histogram series. */
void metrics_observe(struct metrics_family *fam, const char *const *values, double v);

/** A series' current value (counter, gauge) or observation count
 *  (histogram); 0 when it does not exist. For tests and /healthz. */
double metrics_value(struct metrics_family *fam, const char *const *values);

/** The sum over a family's series whose label number `label` equals value
 *  (value NULL: every series): counters and gauges their values,
 *  histograms their counts. 0 for fam NULL. For the alert rules. */
double metrics_sum(struct metrics_family *fam, size_t label, const char *value);

/** A histogram's observations merged over all its series: bounds[i] and
 *  counts[i] (per bucket, not cumulative) for each bound and a last +Inf
 *  bucket, at most max of them. Returns how many were written (0 for a
 *  family that is not a histogram). */
size_t metrics_histogram_merged(struct metrics_family *fam, double *bounds, double *counts,
                                size_t max);

/** Render every family in the text exposition format (version 0.0.4),
 *  with process_resident_memory_bytes read now. Returns a heap string the
 *  caller frees (NULL on no memory) and its length in *len. */
char *metrics_render(size_t *len);

/** Reset every series to zero (tests). */
void metrics_reset(void);

/** Free every family (clean exits and leak checks). metrics_std() declares
 *  them again when called afterwards. */
void metrics_shutdown(void);

#endif
