/* The generation engine: the life of a job, the fair queue, running on a
 * provider, retries and fallbacks. See generate.h for a job's life, and
 * generate_internal.h for the files that hold the other nouns.
 *
 * Everything here runs on the loop thread. A job is reference counted: one
 * reference for its life until the final reply, and one for each
 * operation under way (a ledger or state call, a provider call, the
 * back-off timer). It is freed when the last goes, after its timer closed. */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/hex.h"

#include <openssl/sha.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void generate__dispatch(struct generate *g);
static void job__run_next(struct job *job);

int64_t generate__now(const struct generate *g)
{
    return clock_now_ms(&g->opts.clock);
}

void generate__hit(struct generate *g, const struct filter *f, const struct filter_result *r)
{
    for (size_t i = 0; i < r->nhits; i++) {
        if (r->hits[i] == 0)
            continue;
        const char *name = filter_rule_name(f, i);
        struct gen_hits *h = map_get(g->hits, name);
        if (h == NULL) {
            h = calloc(1, sizeof(*h));
            if (h == NULL || map_set(g->hits, name, h) < 0) {
                free(h);
                continue;
            }
        }
        h->hits += r->hits[i];
    }
}

static struct gen_provider_use *generate__use(struct generate *g, const char *name)
{
    struct gen_provider_use *u = map_get(g->puse, name);
    if (u != NULL)
        return u;
    u = calloc(1, sizeof(*u));
    if (u == NULL || map_set(g->puse, name, u) < 0) {
        free(u);
        return NULL;
    }
    return u;
}

void generate__prune(struct generate *g)
{
    int64_t now = generate__now(g);
    if (now - g->pruned_at < GEN_PRUNE_EVERY_MS)
        return;
    g->pruned_at = now;
    generate__quota_prune(g, now - GEN_IDLE_MS);
    generate__conv_prune(g, now - GEN_IDLE_MS);
    generate__prefs_prune(g, now - GEN_IDLE_MS);
}

/* ---- replies ------------------------------------------------------------ */

void job__say(struct job *job, enum reply_stage stage, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    struct reply_msg msg = {.stage = stage, .text = text};
    reply_send(job->reply, &msg);
    free(text);
}

void job__say_model(struct job *job, enum reply_stage stage, const char *model, const char *tail)
{
    char *text = NULL;
    if (asprintf(&text, "%s%s", model, tail) < 0)
        return;
    struct reply_msg msg = {.stage = stage, .text = text, .markdown_len = strlen(model)};
    reply_send(job->reply, &msg);
    free(text);
}

const char *job__label(const struct catalog_model *m)
{
    return m->provider->provider->demo ? MSG_GEN_DEMO : "";
}

/* ---- life and death ----------------------------------------------------- */

static void generate__maps_free(struct generate *g)
{
    map_free(g->users);
    map_free(g->pools);
    map_free(g->puse);
    map_free(g->convs);
    map_free(g->conv_places);
    map_free(g->conv_msgs);
    free(g->conv_known);
    map_free(g->prefs);
    map_free(g->notices);
    map_free(g->hits);
}

void generate__maybe_free(struct generate *g)
{
    if (!g->closing || g->njobs != 0)
        return;
    void (*cb)(void *) = g->close_cb;
    void *data = g->close_data;
    generate__maps_free(g);
    generate__images_free(g);
    catalog_unref(g->cat);
    free(g);
    if (cb != NULL)
        cb(data);
}

static void job__free(struct job *job)
{
    struct generate *g = job->g;
    job__messages_clear(job);
    for (size_t i = 0; i < job->api_nmsgs; i++)
        free((char *)job->api_msgs[i].content);
    free(job->api_msgs);
    free(job->api_system);
    free(job->prompt);
    invocation_image_free(job->attached);
    free(job->scope_off);
    free(job->text);
    free(job->image);
    catalog_unref(job->cat);
    job__quota_detach(job);
    free(job);
    g->njobs--;
    generate__maybe_free(g);
}

static void job__timer_closed(uv_handle_t *h)
{
    job__free(h->data);
}

void job__unref(struct job *job)
{
    if (--job->refs > 0)
        return;
    if (job->timer_open) {
        job->timer_open = false;
        uv_close((uv_handle_t *)&job->timer, job__timer_closed);
        return;
    }
    job__free(job);
}

static void job__queue_remove(struct job *job)
{
    struct generate *g = job->g;
    if (job->q_prev != NULL)
        job->q_prev->q_next = job->q_next;
    else
        g->queue_head = job->q_next;
    if (job->q_next != NULL)
        job->q_next->q_prev = job->q_prev;
    else
        g->queue_tail = job->q_prev;
    job->q_next = job->q_prev = NULL;
    g->nqueued--;
    metrics_gauge_set(metrics_std()->queue_depth, NULL, (double)g->nqueued);
    if (job->user != NULL)
        job->user->queued--;
}

/* The end: final counters, the reply handle finished, the life reference
 * dropped. */
void job__end(struct job *job, int rc)
{
    struct generate *g = job->g;
    if (job->state == JOB_ENDED)
        return;
    if (job->state == JOB_QUEUED)
        job__queue_remove(job);
    job->state = JOB_ENDED;
    if (rc < 0)
        job__quota_release(job);
    if (job->all_prev != NULL)
        job->all_prev->all_next = job->all_next;
    else
        g->all = job->all_next;
    if (job->all_next != NULL)
        job->all_next->all_prev = job->all_prev;
    if (job->queued_once && g->opts.on_job_end != NULL) {
        struct generate_job_report rep = {
            .rc = rc,
            .charged = job->charged,
            .total_ms = (double)(uv_hrtime() - job->t_submit_ns) / 1e6,
            .provider_ms = (double)job->provider_ns / 1e6,
        };
        g->opts.on_job_end(g->opts.hook_data, &rep);
    }
    if (job->sink.end != NULL)
        job__sink_end(job, rc);
    struct reply *r = job->reply;
    job->reply = NULL;
    if (r != NULL)
        reply_finish(r);
    job__unref(job);
    if (!g->closing)
        generate__dispatch(g);
}

/* Refuse before anything was reserved. */
struct job *job__new(struct generate *g, struct invocation *inv)
{
    /* Activity is what grows the maps, so it is also what prunes them. */
    generate__prune(g);
    struct job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->g = g;
    job->refs = 1;
    job->reply = inv->reply;
    job->who = *inv;
    job->who.image = NULL; /* generate_submit takes it */
    memset(job->who.opts, 0, sizeof(job->who.opts));
    job->who.reply = NULL;
    job->who.spec = NULL;
    job->in_tokens = job->out_tokens = -1;
    job->t_submit_ns = uv_hrtime();
    job->cat = g->cat;
    catalog_ref(job->cat);
    if (uv_timer_init(g->loop, &job->timer) == 0) {
        job->timer.data = job;
        job->timer_open = true;
    }
    g->njobs++;
    job->all_next = g->all;
    if (g->all != NULL)
        g->all->all_prev = job;
    g->all = job;
    return job;
}

/* A job id derived from the causing event, so a replay of the same event
 * names the same transfers. */
void job__id_make(struct job *job)
{
    const char *ev = job->who.event_id;
    size_t len = strlen(ev);
    if (len <= 80) {
        memcpy(job->id, "gen:", 4);
        memcpy(job->id + 4, ev, len + 1);
        return;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)ev, strlen(ev), md);
    char hex[41];
    hex_encode(md, 20, hex);
    snprintf(job->id, sizeof(job->id), "gen:h:%s", hex);
}

/* ---- running ------------------------------------------------------------- */

static void job__on_text(void *data, const char *delta, size_t len)
{
    struct job *job = data;
    if (job->text_len + len + 1 > job->text_cap) {
        size_t cap = (job->text_cap + len + 1) * 2;
        char *grown = realloc(job->text, cap);
        if (grown == NULL)
            return;
        job->text = grown;
        job->text_cap = cap;
    }
    memcpy(job->text + job->text_len, delta, len);
    job->text_len += len;
    job->text[job->text_len] = '\0';
    if (job->sink.text != NULL)
        job__sink_text(job, delta, len);
    if (job->api)
        return; /* no progress messages: nobody reads them */
    /* Partial text goes out through the filter too, at most every
     * progress_ms; the adapter paces its edits further. */
    uint64_t now = uv_now(job->g->loop);
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (job->last_progress != 0 && now - job->last_progress < (uint64_t)l->progress_ms)
        return;
    job->last_progress = now;
    const struct filter *f = catalog_filter(job->cat);
    struct filter_result fr = {0};
    const char *rule = NULL;
    if (filter_apply(f, job->text, &fr) == 0) {
        if (!fr.blocked && !job__persona_blocks(job, fr.text, &rule))
            job__say_model(job, REPLY_PROGRESS, fr.text, "…");
        filter_result_clear(&fr);
    }
}

static void job__on_usage(void *data, long in, long out)
{
    struct job *job = data;
    if (in >= 0)
        job->in_tokens = in;
    if (out >= 0)
        job->out_tokens = out;
}

static void job__retry_timer(uv_timer_t *t)
{
    struct job *job = t->data;
    struct generate *g = job->g;
    job->provider_ns += uv_hrtime() - job->t_call_ns;
    if (g->closing || job->state != JOB_BACKOFF) {
        job__unref(job);
        return;
    }
    /* Back at the head of the queue: it waited already. */
    job->state = JOB_QUEUED;
    job->q_next = g->queue_head;
    job->q_prev = NULL;
    if (g->queue_head != NULL)
        g->queue_head->q_prev = job;
    else
        g->queue_tail = job;
    g->queue_head = job;
    g->nqueued++;
    metrics_gauge_set(metrics_std()->queue_depth, NULL, (double)g->nqueued);
    job->user->queued++;
    generate__dispatch(g);
    job__unref(job);
}

static void job__on_done(void *data, const struct provider_result *res)
{
    struct job *job = data;
    struct generate *g = job->g;
    job->call = NULL;
    uint64_t call_ns = uv_hrtime() - job->t_call_ns;
    job->provider_ns += call_ns;
    if (job->model != NULL) {
        metrics_observe(metrics_std()->provider_latency,
                        (const char *[]){job->model->provider->name}, (double)call_ns / 1e9);
        const struct core_host_ops *host = g->core->host_ops;
        if (host != NULL && host->provider_state != NULL && res->rc != HB_ECANCELED)
            host->provider_state(g->core->host, job->model->provider->name, res->rc == 0,
                                 res->rc == 0 ? NULL : res->error);
    }
    if (job->use != NULL && job->use->running > 0)
        job->use->running--;
    job->use = NULL;
    g->nrunning--;
    job->user->running--;
    if (job->state != JOB_RUNNING) {
        /* Stopped during close: the job was already voided and told. */
        job__unref(job);
        return;
    }
    if (res->rc == HB_ECANCELED && job->gone && job->modality == PROVIDER_TEXT) {
        /* Stopped because its caller left: charged for what was made. */
        job__settle(job);
        job__unref(job);
        return;
    }
    if (res->rc == 0) {
        if (job->modality == PROVIDER_IMAGE) {
            free(job->image);
            job->image = malloc(res->image_len > 0 ? res->image_len : 1);
            if (job->image != NULL && res->image_len > 0)
                memcpy(job->image, res->image, res->image_len);
            job->image_len = res->image_len;
            snprintf(job->mime, sizeof(job->mime), "%s",
                     res->image_mime != NULL ? res->image_mime : "image/png");
        }
        job__settle(job);
        job__unref(job);
        return;
    }
    snprintf(job->error, sizeof(job->error), "%s",
             res->error != NULL && res->error[0] != '\0' ? res->error : hb_strerror(res->rc));
    log_warn("generate.attempt_failed", "job=%s model=%s status=%d error=%s", job->id,
             job->model->name, res->http_status, job->error);
    job->end_rc = res->rc;
    if (g->closing || job->sink_sent) {
        /* Text already passed on to an API caller cannot be taken back: no
         * retry or fallback after it; the job fails and is not charged. */
        job__fail(job);
        job__unref(job);
        return;
    }
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (res->retryable && job->attempt < (unsigned)l->retry_max) {
        uint64_t delay = res->retry_after_ms >= 0 ? (uint64_t)res->retry_after_ms
                                                  : (uint64_t)500 << job->attempt;
        uint64_t now = uv_now(g->loop);
        if (now + delay + 100 < job->deadline && job->timer_open) {
            job->attempt++;
            g->stats.retries++;
            job->state = JOB_BACKOFF;
            job->t_call_ns = uv_hrtime();
            job->refs++;
            uv_timer_start(&job->timer, job__retry_timer, delay, 0);
            job__unref(job);
            return;
        }
    }
    job__run_next(job);
    job__unref(job);
}

static void job__start(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_model *m = job->model;
    uint64_t now = uv_now(g->loop);
    if (now >= job->deadline) {
        snprintf(job->error, sizeof(job->error), MSG_GEN_TIMED_OUT);
        job->end_rc = HB_ETIMEOUT;
        job__fail(job);
        return;
    }
    uint64_t timeout = m->provider->timeout_ms;
    if (timeout > job->deadline - now)
        timeout = job->deadline - now;
    struct provider_request req = {
        .modality = job->modality,
        .model = m->upstream,
        .messages = job->msgs,
        .nmessages = job->nmsgs,
        .prompt = job->prompt,
        .width = job->size.width,
        .height = job->size.height,
        .max_output_tokens = m->max_output_tokens,
        .timeout_ms = timeout,
        .system = m->system_prompt,
        .temperature_set = m->temperature_set,
        .temperature = m->temperature,
        .top_p_set = m->top_p_set,
        .top_p = m->top_p,
        .stop = (const char *const *)m->stop,
        .nstop = m->nstop,
        .max_tokens_field = m->max_tokens_field,
        .extra_body = m->extra_body,
    };
    struct provider_image img;
    if (job->attached != NULL && m->vision) {
        img = (struct provider_image){
            .data = job->attached->data, .len = job->attached->len, .mime = job->attached->mime};
        req.images = &img;
        req.nimages = 1;
    }
    char *system = NULL;
    char *extra = NULL;
    int prc = job__request_persona(job, m, &req, &system, &extra);
    if (prc == 0 && job->api_system != NULL && m->modality == PROVIDER_TEXT) {
        /* The caller's system text follows the operator's. */
        char *both = NULL;
        if (asprintf(&both, "%s%s%s", system != NULL ? system : "", system != NULL ? "\n\n" : "",
                     job->api_system) < 0)
            prc = HB_ENOMEM;
        free(system);
        system = prc == 0 ? both : NULL;
        req.system = system;
    }
    if (prc < 0) {
        free(system);
        snprintf(job->error, sizeof(job->error), MSG_COMMON_OUT_OF_MEMORY);
        job->end_rc = HB_ENOMEM;
        job__fail(job);
        return;
    }
    static const struct provider_events events = {
        .text = job__on_text, .usage = job__on_usage, .done = job__on_done};
    free(job->text);
    job->text = NULL;
    job->text_len = job->text_cap = 0;
    job->in_tokens = job->out_tokens = -1;
    job->last_progress = 0;
    job->state = JOB_RUNNING;
    job->use = generate__use(g, m->provider->name);
    if (job->use != NULL)
        job->use->running++;
    g->nrunning++;
    job->user->running++;
    job->user->last_served = ++g->dispatches;
    job->t_call_ns = uv_hrtime();
    job->refs++;
    if (log_enabled(LOG_DEBUG)) {
        /* Never the prompt itself: its length and a short digest correlate
         * repeats without saying what was asked. */
        const char *pr = job->prompt != NULL ? job->prompt : "";
        unsigned char md[SHA256_DIGEST_LENGTH];
        char digest[9];
        SHA256((const unsigned char *)pr, strlen(pr), md);
        hex_encode(md, 4, digest);
        log_debug("generate.prompt", "job=%s model=%s prompt_len=%zu prompt_sha256=%s", job->id,
                  m->name, strlen(pr), digest);
    }
    char price[128];
    job__say(job, REPLY_PROGRESS, MSG_GEN_GENERATING, m->name, job__label(m),
             job__price(job, price, sizeof(price)));
    int rc =
        m->provider->provider->ops->start(m->provider->provider, &req, &events, job, &job->call);
    free(system);
    free(extra);
    if (rc < 0) {
        struct provider_result res = {.rc = rc, .retry_after_ms = -1, .error = hb_strerror(rc)};
        job__on_done(job, &res);
    }
}

/* Is the job allowed to start now (member and provider limits)? */
static bool generate__eligible(const struct generate *g, const struct job *job)
{
    (void)g;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (job->user->running >= (unsigned)l->user_in_flight)
        return false;
    const struct gen_provider_use *u = map_get(g->puse, job->model->provider->name);
    return u == NULL || u->running < job->model->provider->max_concurrent;
}

/* Start what may start: among the eligible queued jobs, the one whose
 * member was served longest ago (arrival order breaks ties), so one member
 * cannot crowd out the others. */
static void generate__dispatch(struct generate *g)
{
    while (!g->closing) {
        struct job *best = NULL;
        for (struct job *j = g->queue_head; j != NULL; j = j->q_next) {
            if (!generate__eligible(g, j))
                continue;
            if (best == NULL || j->user->last_served < best->user->last_served)
                best = j;
        }
        if (best == NULL)
            return;
        job__queue_remove(best);
        job__start(best);
    }
}

void job__enqueue(struct job *job)
{
    struct generate *g = job->g;
    job->state = JOB_QUEUED;
    job->queued_once = true;
    job->q_prev = g->queue_tail;
    job->q_next = NULL;
    if (g->queue_tail != NULL)
        g->queue_tail->q_next = job;
    else
        g->queue_head = job;
    g->queue_tail = job;
    g->nqueued++;
    metrics_gauge_set(metrics_std()->queue_depth, NULL, (double)g->nqueued);
    job->user->queued++;
    if (g->nrunning > 0 || g->nqueued > 1) {
        size_t pos = 0;
        for (struct job *j = g->queue_head; j != NULL; j = j->q_next)
            pos++;
        char price[128];
        job__say(job, REPLY_PROGRESS, MSG_GEN_QUEUED, pos, job__price(job, price, sizeof(price)));
    }
    generate__dispatch(g);
}

static void job__fallback_counted(struct job *job, int rc);

static void job__revoided(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    (void)res;
    if (rc < 0 && rc != HB_EEXISTS)
        log_error("generate.void_failed", "job=%s error=%s", job->id, hb_strerror(rc));
    job->res_open = false;
    if (job->g->closing) {
        job__fail(job);
    } else {
        job->state = JOB_ADMIT;
        job__reserve(job, job__estimate(job, job->model));
    }
    job__unref(job);
}

/* The current model failed for good: try the next fallback of the model
 * asked for, priced as itself, or give up. */
static void job__run_next(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_model *next = NULL;
    while (job->fb_next < job->first->nfallbacks && next == NULL) {
        const struct catalog_model *m =
            catalog_model_find(job->cat, job->first->fallbacks[job->fb_next++]);
        /* A member's image goes only to a fallback that sees it too. */
        if (m != NULL && m->enabled && m != job->model && catalog_model_allowed(m, &job->who) &&
            !job__scope_off(job, m->name) && (job->attached == NULL || m->vision))
            next = m;
    }
    if (next == NULL) {
        job__fail(job);
        return;
    }
    g->stats.fallbacks++;
    log_info("generate.fallback", "job=%s from=%s to=%s", job->id, job->model->name, next->name);
    job__say(job, REPLY_PROGRESS, MSG_GEN_FALLING_BACK, job->model->name, next->name,
             job__label(next));
    job->model = next;
    job->attempt = 0;
    /* The fallback may use more tokens than the job reserved against the
     * daily cap: reserve the difference first (admission work again). */
    job->state = JOB_ADMIT;
    job->refs++;
    job__quota_tokens_more(job, job__tokens_bound(job, next), job__fallback_counted);
}

static void job__fallback_counted(struct job *job, int rc)
{
    struct generate *g = job->g;
    const struct catalog_model *next = job->model;
    if (rc < 0 || g->closing) {
        if (rc < 0)
            job->end_rc = rc;
        job__fail(job);
        job__unref(job);
        return;
    }
    int64_t need = job__estimate(job, next);
    if (need <= job->reserved && job->res_open) {
        job->state = JOB_ADMIT;
        job__enqueue(job);
        job__unref(job);
        return;
    }
    /* Dearer than what is held: release it and reserve the fallback's price. */
    job->state = JOB_SETTLE;
    struct ledger *ledger = g->core->ledger;
    char void_id[GEN_TRANSFER_ID_MAX];
    job__void_id(job->id, job->nres, void_id, sizeof(void_id));
    job->refs++;
    if (!job->res_open || ledger == NULL ||
        ledger_transfer_void(ledger, void_id, job->res_id, job__revoided, job) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__revoided(0, &none, job);
    }
    job__unref(job);
}

/* ---- the engine --------------------------------------------------------------- */

struct generate *generate_new(uv_loop_t *loop, struct core *core, struct catalog *cat,
                              const struct generate_options *opts)
{
    struct generate *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->loop = loop;
    g->core = core;
    g->cat = cat;
    catalog_ref(cat);
    if (opts != NULL)
        g->opts = *opts;
    g->users = map_new(free);
    g->pools = map_new(free);
    g->puse = map_new(free);
    g->convs = map_new(generate__conv_free);
    g->conv_places = map_new(free);
    g->conv_msgs = map_new(free);
    g->prefs = map_new(free);
    g->notices = map_new(free);
    g->hits = map_new(free);
    if (g->users == NULL || g->pools == NULL || g->puse == NULL || g->convs == NULL ||
        g->conv_places == NULL || g->conv_msgs == NULL || g->prefs == NULL || g->notices == NULL ||
        g->hits == NULL || generate__conv_start(g) < 0) {
        generate__maps_free(g);
        catalog_unref(cat);
        free(g);
        return NULL;
    }
    return g;
}

void generate_catalog_set(struct generate *g, struct catalog *cat)
{
    catalog_ref(cat);
    catalog_unref(g->cat);
    g->cat = cat;
    generate__dispatch(g);
}

struct catalog *generate_catalog(const struct generate *g)
{
    return g->cat;
}

bool job__end_waiting(struct job *job)
{
    switch (job->state) {
    case JOB_QUEUED:
        job__queue_remove(job);
        job__fail(job);
        return true;
    case JOB_BACKOFF:
        uv_timer_stop(&job->timer);
        job__unref(job); /* the timer's reference */
        job__fail(job);
        return true;
    default:
        return false;
    }
}

void generate_close(struct generate *g, void (*cb)(void *data), void *data)
{
    g->closing = true;
    g->close_cb = cb;
    g->close_data = data;
    /* A reference of its own keeps the engine alive while jobs end below. */
    g->njobs++;
    struct job *next;
    for (struct job *job = g->all; job != NULL; job = next) {
        next = job->all_next;
        snprintf(job->error, sizeof(job->error), MSG_GEN_CANCELLED);
        job->end_rc = HB_ECANCELED;
        if (job__end_waiting(job))
            continue;
        switch (job->state) {
        case JOB_RUNNING: {
            struct provider_call *call = job->call;
            const struct catalog_model *m = job->model;
            job->state = JOB_SETTLE;
            job__fail(job);
            if (call != NULL)
                m->provider->provider->ops->cancel(call);
            break;
        }
        case JOB_HELD:
            job__held_close(job); /* kept durable, reserved, for the next start */
            break;
        default:
            break; /* admission or settlement under way finishes on its own */
        }
    }
    generate__conv_stop(g);
    g->njobs--;
    generate__maybe_free(g);
}

void generate_stats_get(const struct generate *g, struct generate_stats *out)
{
    *out = g->stats;
    out->queued = g->nqueued;
    out->running = g->nrunning;
    out->tokens_today = g->tokens_today;
    out->members =
        map_count(g->users) + map_count(g->pools) + map_count(g->convs) + map_count(g->prefs);
}

uint64_t generate_filter_hits(const struct generate *g, const char *name)
{
    const struct gen_hits *h = map_get(g->hits, name);
    return h != NULL ? h->hits : 0;
}
