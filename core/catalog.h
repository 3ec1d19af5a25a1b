/* The model catalog: providers, models, prices, limits and the content
 * filter, as one immutable, reference-counted snapshot.
 *
 * The daemon builds a catalog from bot.conf (it translates the config into
 * a struct catalog_spec and makes the provider objects); a reload builds a
 * new one and swaps it in. A job holds a reference to the snapshot it was
 * admitted under, so its model, price and provider stay as they were while
 * it runs, whatever the operator changes meanwhile. */
#ifndef HB_CATALOG_H
#define HB_CATALOG_H

#include "core/filter.h"
#include "core/provider.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct invocation;

/** One provider in a spec. The catalog takes ownership of `provider` (it
 *  frees it with its vtable when the last reference goes), also when
 *  catalog_new() fails. */
struct catalog_provider_spec {
    const char *name;
    struct provider *provider;
    uint64_t timeout_ms;     /* one attempt */
    unsigned max_concurrent; /* attempts in flight at once */
};

/** One model in a spec. Strings are borrowed during catalog_new(). */
struct catalog_model_spec {
    const char *name;     /* what members type */
    const char *provider; /* a provider spec's name */
    const char *upstream; /* id sent to the provider; NULL: name */
    enum provider_modality modality;
    int64_t price_request;   /* credits per request */
    int64_t price_input_1k;  /* credits per 1000 input tokens */
    int64_t price_output_1k; /* credits per 1000 output tokens */
    int64_t max_output_tokens;
    const char *sizes;     /* image: "512x512, 256x256" (first is the default); NULL: 512x512 */
    const char *fallbacks; /* other model names, tried in order; NULL: none */
    const char *allow;     /* who may use it: wallet ids ("discord:42"), scopes
                              ("scope:discord:99"), "dm", "admins"; NULL or "": everyone */
    bool enabled;
    /* Text generation parameters, sent as struct provider_request says. */
    const char *system_prompt; /* NULL or "": none */
    bool temperature_set;
    double temperature;
    bool top_p_set;
    double top_p;
    const char *const *stop; /* nstop stop sequences (at most PROVIDER_STOP_MAX) */
    size_t nstop;
    const char *extra_body; /* a JSON object's text, checked by the config; NULL: none */
    enum provider_max_tokens_field max_tokens_field;
    bool vision;         /* text: the model sees images a member attaches */
    int64_t price_image; /* credits per attached image, on top of the tokens */
};

/** One persona in a spec (see bot.conf's [persona]). Strings are borrowed
 *  during catalog_new(). */
struct catalog_persona_spec {
    const char *name;          /* what members type */
    const char *description;   /* shown by /persona; NULL: none */
    const char *system_prompt; /* NULL or "": the model's own */
    const char *model;         /* default text model; NULL: as without a persona */
    bool temperature_set;
    double temperature;
    bool top_p_set;
    double top_p;
    int64_t max_tokens;      /* 0: the model's max_output_tokens (never more than it) */
    const char *const *stop; /* nstop stop sequences replacing the model's; 0: the model's */
    size_t nstop;
    const char *extra_body;       /* a JSON object merged over the model's; NULL: none */
    const char *const *forbidden; /* nforbidden words blocked while it is in use */
    size_t nforbidden;
    const char *allow; /* who may use it, as on models; NULL or "": everyone */
    bool show_prompt;  /* members may read the system prompt */
    bool approval;     /* its generations wait for an admin (with [approval] enabled) */
};

/** Limits and queue settings. Zero means "no limit" for the rate limits and
 *  the default named for the rest. */
struct catalog_limits {
    int64_t user_per_hour;  /* generations per member per clock hour */
    int64_t pool_per_day;   /* generations per group scope per UTC day */
    int64_t tokens_per_day; /* all tokens (in + out) per UTC day, everyone */
    int64_t queue_max;      /* jobs waiting, everyone; default 64 */
    int64_t user_queue;     /* jobs waiting per member; default 2 */
    int64_t user_in_flight; /* jobs running per member; default 1 */
    int64_t prompt_max;     /* characters in a prompt; default 4000 */
    int64_t memory_tokens;  /* conversation memory budget; default 2000 */
    int64_t retry_max;      /* retries per model on 429/5xx; default 2 */
    int64_t job_timeout_ms; /* a job's whole life; default 300000 */
    int64_t progress_ms;    /* least time between progress edits; default 500 */

    /* Images members attach to a chat turn. */
    int64_t image_max_bytes; /* largest one; default CATALOG_IMAGE_MAX_BYTES_DEFAULT */

    /* Conversations /chat remembers. */
    int64_t conversation_idle_ms;      /* silent this long, one starts over; default 1 day */
    int64_t conversation_retention_ms; /* stored ones older go; default 30 days */

    /* Generated images kept in the store ([gallery], core/gallery.h). */
    int64_t image_retention_ms; /* older ones go; default 30 days */
    int64_t images_max;         /* most kept, the newest; 0: no cap */
};

struct catalog_spec {
    const struct catalog_provider_spec *providers;
    size_t nproviders;
    const struct catalog_model_spec *models;
    size_t nmodels;
    struct catalog_limits limits;
    const struct filter_rule *filter_rules; /* borrowed; may be 0 rules */
    size_t nfilter_rules;
    const struct catalog_persona_spec *personas; /* may be 0 of them */
    size_t npersonas;
    const char *default_persona; /* the bot's default persona; NULL: none */
};

struct catalog_provider {
    char *name;
    struct provider *provider;
    uint64_t timeout_ms;
    unsigned max_concurrent;
};

struct catalog_size {
    unsigned width, height;
};

struct catalog_model {
    char *name;
    char *upstream;
    const struct catalog_provider *provider;
    enum provider_modality modality;
    int64_t price_request, price_input_1k, price_output_1k;
    int64_t max_output_tokens;
    struct catalog_size *sizes;
    size_t nsizes;
    char **fallbacks;
    size_t nfallbacks;
    char **allow;
    size_t nallow;
    bool enabled;
    char *system_prompt;  /* NULL: none */
    size_t system_bytes;  /* its length: counted as input in every estimate */
    bool temperature_set; /* send temperature */
    double temperature;
    bool top_p_set; /* send top_p */
    double top_p;
    char **stop; /* stop sequences */
    size_t nstop;
    char *extra_body; /* JSON object text merged into the body; NULL: none */
    enum provider_max_tokens_field max_tokens_field;
    bool vision;         /* sees attached images (text models only) */
    int64_t price_image; /* credits per attached image */
};

struct catalog_persona {
    char *name;
    char *description;   /* "" when none */
    char *system_prompt; /* NULL: the model's own */
    char *model;         /* default text model; NULL: none */
    bool temperature_set;
    double temperature;
    bool top_p_set;
    double top_p;
    int64_t max_tokens; /* 0: the model's */
    char **stop;        /* replaces the model's when nstop > 0 */
    size_t nstop;
    char *extra_body;      /* merged over the model's; NULL: none */
    struct filter *filter; /* its forbidden words (one rule named after it); NULL: none */
    char **allow;
    size_t nallow;
    bool show_prompt;
    bool approval;
};

/** What an attached image counts as in the estimates and the daily token
 *  cap: input tokens (Anthropic bills at most about 1,600 for an image it
 *  takes; OpenAI's high detail at most 1,445 on its 4o models). */
#define CATALOG_IMAGE_TOKENS 1600

/** Default of catalog_limits.image_max_bytes: 5 MiB. */
#define CATALOG_IMAGE_MAX_BYTES_DEFAULT (5 * 1024 * 1024)

struct catalog;

/** Build a snapshot with one reference. Returns NULL with a sentence in err
 *  (an unknown provider or fallback, a fallback of another modality, a demo
 *  model as the fallback of a real one, a bad size, a bad filter rule, out
 *  of memory). */
struct catalog *catalog_new(const struct catalog_spec *spec, char *err, size_t errcap);

void catalog_ref(struct catalog *c);
/** Drop a reference; the last one frees the snapshot and its providers. */
void catalog_unref(struct catalog *c);

const struct catalog_limits *catalog_limits_get(const struct catalog *c);
/** The content filter (never NULL; it may have no rules). */
const struct filter *catalog_filter(const struct catalog *c);

size_t catalog_model_count(const struct catalog *c);
const struct catalog_model *catalog_model_at(const struct catalog *c, size_t i);
/** A model by name (case-insensitive), or NULL. */
const struct catalog_model *catalog_model_find(const struct catalog *c, const char *name);
/** The first enabled model of a modality, or NULL. */
const struct catalog_model *catalog_model_default(const struct catalog *c,
                                                  enum provider_modality modality);
/** Whether the invoking member may use the model in the invocation's scope. */
bool catalog_model_allowed(const struct catalog_model *m, const struct invocation *inv);
/** Whether a size is allowed; on success *out is it. "" or NULL: the first. */
bool catalog_model_size(const struct catalog_model *m, const char *text, struct catalog_size *out);

size_t catalog_persona_count(const struct catalog *c);
const struct catalog_persona *catalog_persona_at(const struct catalog *c, size_t i);
/** A persona by name (case-insensitive), or NULL. */
const struct catalog_persona *catalog_persona_find(const struct catalog *c, const char *name);
/** The bot's default persona ([bot] persona), or NULL. */
const struct catalog_persona *catalog_persona_default(const struct catalog *c);
/** Whether the invoking member may use the persona in the invocation's scope
 *  (its allow list, as catalog_model_allowed). */
bool catalog_persona_allowed(const struct catalog_persona *p, const struct invocation *inv);

/** Upper bound of a request's cost: the request price, input (input_bytes
 *  plus the model's system prompt) priced at one token per byte (a token is
 *  never shorter than a byte) and the full max_output_tokens. */
int64_t catalog_estimate(const struct catalog_model *m, size_t input_bytes);
/** The same with the system prompt's bytes and the output cap given (a
 *  persona's): system_bytes replace the model's own system prompt. */
int64_t catalog_estimate_with(const struct catalog_model *m, size_t input_bytes,
                              size_t system_bytes, int64_t max_output_tokens);
/** The cost of reported usage: the request price plus the exact token
 *  price (input and output together), rounded down to whole credits, so
 *  never more than the configured price. */
int64_t catalog_cost(const struct catalog_model *m, long input_tokens, long output_tokens);

#endif
