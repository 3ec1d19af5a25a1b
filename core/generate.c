/* The generation engine. See generate.h for a job's life.
 *
 * Everything here runs on the loop thread. A job is reference counted: one
 * reference for its life until the final reply, and one for each
 * operation under way (a ledger or state call, a provider call, the
 * back-off timer). It is freed when the last goes, after its timer closed. */
#include "core/generate.h"

#include "core/button.h"
#include "core/commands.h"
#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "base/log.h"
#include "core/messages.h"
#include "base/metrics.h"
#include "core/notify.h"
#include "core/state.h"
#include "core/pool.h"
#include "base/text.h"
#include "core/wallet.h"

#include <openssl/sha.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GEN_NS_JOB "gen.job"
#define GEN_NS_PREF "gen.pref"
#define GEN_NS_NOTICE "gen.notice"
#define GEN_NS_IMAGE "gen.image"
#define GEN_NS_UPVOTE "gen.upvote"
#define GEN_IMAGES_KEPT 128 /* recent images that Regenerate can re-run */
#define GEN_KEY_MAX 400
#define GEN_HOUR_MS 3600000LL
#define GEN_DAY_MS 86400000LL

enum job_state {
    JOB_ADMIT = 0, /* checks and reservation under way */
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_BACKOFF,   /* waiting to retry */
    JOB_SETTLE,    /* posting or voiding */
    JOB_ENDED,
};

struct gen_user {
    struct gen_user *next;
    char key[GEN_KEY_MAX];
    unsigned queued, running;
    uint64_t last_served;  /* dispatch counter when this member last started a job */
    int64_t hour;          /* window of count */
    int64_t count;         /* generations admitted in that hour */
};

struct gen_pool {
    struct gen_pool *next;
    char key[GEN_KEY_MAX];
    int64_t day;
    int64_t count;
};

/* In flight per provider name, across catalog generations. */
struct gen_provider_use {
    struct gen_provider_use *next;
    char name[128];
    unsigned running;
};

struct gen_turn {
    char *role; /* static string */
    char *text;
};

struct gen_conv {
    struct gen_conv *next;
    char key[GEN_KEY_MAX];
    struct gen_turn *turns;
    size_t n, cap;
};

struct gen_pref {
    struct gen_pref *next;
    char key[GEN_KEY_MAX];
    char model[128]; /* "" when the member has none */
};

struct gen_notice {
    struct gen_notice *next;
    char wallet[WALLET_ACCOUNT_MAX];
};

struct gen_image {
    char gid[16];
    struct invocation owner; /* identity only */
    char model[128];
    char *prompt;
    char size[24];
};

struct gen_hits {
    struct gen_hits *next;
    char name[128];
    uint64_t hits;
};

struct job;

struct generate {
    uv_loop_t *loop;
    struct core *core;
    struct catalog *cat;
    struct generate_options opts;
    struct job *all;           /* every live job */
    struct job *queue_head, *queue_tail;
    size_t njobs;              /* live jobs, until freed */
    size_t nqueued, nrunning;
    uint64_t dispatches;
    struct gen_user *users;
    struct gen_pool *pools;
    struct gen_provider_use *puse;
    struct gen_conv *convs;
    struct gen_pref *prefs;
    struct gen_notice *notices;
    struct gen_hits *hits;
    struct gen_image images[GEN_IMAGES_KEPT];
    size_t image_next;
    int64_t token_day;
    int64_t tokens_today;
    struct generate_stats stats;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

struct job {
    struct generate *g;
    struct job *all_next, *all_prev;
    struct job *q_next, *q_prev;
    unsigned refs;
    enum job_state state;
    struct catalog *cat;
    struct reply *reply;
    struct invocation who; /* identity of the asker; no options, no reply */
    char id[96]; /* "gen:<event id>" (hashed when long) */
    char wallet[WALLET_ACCOUNT_MAX];
    char payer[WALLET_ACCOUNT_MAX];
    char payer_alt[WALLET_ACCOUNT_MAX]; /* tried when payer cannot cover the reservation */
    char pool_account[WALLET_ACCOUNT_MAX]; /* the scope's pool, or "" in a DM */
    struct pool_settings pool_settings; /* the scope's policy and daily cap */
    char *scope_off;                    /* "\n<model>\n..." models this group's admins turned off */
    char conv_key[GEN_KEY_MAX];
    struct gen_user *user;
    struct gen_pool *pool;
    bool counted; /* rate counters include this job */
    bool queued_once;
    enum provider_modality modality;
    char *prompt;
    char want_model[128];
    char want_size[24];
    const struct catalog_model *first; /* the model asked for */
    const struct catalog_model *model; /* the model being tried */
    size_t fb_next;                    /* next fallback of `first` to try */
    unsigned attempt;                  /* retries on `model` */
    struct catalog_size size;
    struct provider_message *msgs;
    size_t nmsgs;
    size_t input_bytes;
    char res_id[LEDGER_ID_LEN_MAX + 8];
    int64_t reserved;
    unsigned nres;
    bool res_open;
    uint64_t deadline; /* uv_now ms */
    struct provider_call *call;
    struct gen_provider_use *use;
    char *text;
    size_t text_len, text_cap;
    long in_tokens, out_tokens;
    unsigned char *image;
    size_t image_len;
    char mime[32];
    char gid[16]; /* image: the id its buttons carry */
    char error[256];
    uint64_t last_progress;
    uint64_t t_submit_ns;
    uint64_t t_call_ns;
    uint64_t provider_ns;
    int64_t charged;
    int end_rc;
    bool timer_open;
    uv_timer_t timer;
};

static void generate__dispatch(struct generate *g);
static void job__unref(struct job *job);
static void job__run_next(struct job *job);
static void job__fail(struct job *job);

/* ---- small helpers ------------------------------------------------------ */

/* Did this group's admins turn the model off (/admin model disable)? */
static bool job__scope_off(const struct job *job, const char *name)
{
    return generate_scope_off_has(job->scope_off, name);
}


static int64_t generate__now(const struct generate *g)
{
    if (g->opts.clock != NULL)
        return g->opts.clock(g->opts.clock_data);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "in 23 min" / "in 2 h 5 min" until a window's end. */
static void generate__until(char *buf, size_t cap, int64_t ms)
{
    int64_t min = (ms + 59999) / 60000;
    if (min < 60)
        snprintf(buf, cap, MSG_GEN_UNTIL_MIN, (long long)(min < 1 ? 1 : min));
    else
        snprintf(buf, cap, MSG_GEN_UNTIL_H_MIN, (long long)(min / 60), (long long)(min % 60));
}

static void generate__hit(struct generate *g, const struct filter *f,
                          const struct filter_result *r)
{
    for (size_t i = 0; i < r->nhits; i++) {
        if (r->hits[i] == 0)
            continue;
        const char *name = filter_rule_name(f, i);
        struct gen_hits *h = g->hits;
        while (h != NULL && strcmp(h->name, name) != 0)
            h = h->next;
        if (h == NULL) {
            h = calloc(1, sizeof(*h));
            if (h == NULL)
                continue;
            snprintf(h->name, sizeof(h->name), "%s", name);
            h->next = g->hits;
            g->hits = h;
        }
        h->hits += r->hits[i];
    }
}

static struct gen_user *generate__user(struct generate *g, const char *key)
{
    for (struct gen_user *u = g->users; u != NULL; u = u->next) {
        if (strcmp(u->key, key) == 0)
            return u;
    }
    struct gen_user *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    snprintf(u->key, sizeof(u->key), "%s", key);
    u->next = g->users;
    g->users = u;
    return u;
}

static struct gen_pool *generate__pool(struct generate *g, const char *key)
{
    for (struct gen_pool *p = g->pools; p != NULL; p = p->next) {
        if (strcmp(p->key, key) == 0)
            return p;
    }
    struct gen_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->next = g->pools;
    g->pools = p;
    return p;
}

static struct gen_provider_use *generate__use(struct generate *g, const char *name)
{
    for (struct gen_provider_use *u = g->puse; u != NULL; u = u->next) {
        if (strcmp(u->name, name) == 0)
            return u;
    }
    struct gen_provider_use *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return NULL;
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->next = g->puse;
    g->puse = u;
    return u;
}

static struct gen_conv *generate__conv(struct generate *g, const char *key, bool create)
{
    for (struct gen_conv *c = g->convs; c != NULL; c = c->next) {
        if (strcmp(c->key, key) == 0)
            return c;
    }
    if (!create)
        return NULL;
    struct gen_conv *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    snprintf(c->key, sizeof(c->key), "%s", key);
    c->next = g->convs;
    g->convs = c;
    return c;
}

static void generate__conv_clear(struct gen_conv *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->turns[i].text);
    c->n = 0;
}

static void generate__conv_key(const struct invocation *inv, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s|%s|%s|%s", command_platform_name(inv->platform),
             inv->scope == COMMAND_SCOPE_DM ? "dm" : inv->scope_id, inv->channel_id,
             inv->user_id);
}

int generate_payer_choose(const struct invocation *inv, const struct pool_settings *s,
                          bool pool_usable, char *buf, size_t cap, char *alt, size_t altcap)
{
    char wallet[WALLET_ACCOUNT_MAX];
    char pool[WALLET_ACCOUNT_MAX];
    int rc = wallet_account(inv, wallet, sizeof(wallet));
    if (rc < 0)
        return rc;
    alt[0] = '\0';
    if (!pool_usable || s == NULL || wallet_pool_account(inv, pool, sizeof(pool)) != 0) {
        snprintf(buf, cap, "%s", wallet);
        return 0;
    }
    bool pool_first = s->policy == POOL_POLICY_POOL_FIRST;
    snprintf(buf, cap, "%s", pool_first ? pool : wallet);
    snprintf(alt, altcap, "%s", pool_first ? wallet : pool);
    return 0;
}

/* ---- replies ------------------------------------------------------------ */

static void job__say(struct job *job, enum reply_stage stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job__say(struct job *job, enum reply_stage stage, const char *fmt, ...)
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

static const char *job__label(const struct catalog_model *m)
{
    return m->provider->provider->demo ? MSG_GEN_DEMO : "";
}

/* ---- life and death ----------------------------------------------------- */

static void generate__maybe_free(struct generate *g)
{
    if (!g->closing || g->njobs != 0)
        return;
    void (*cb)(void *) = g->close_cb;
    void *data = g->close_data;
    while (g->users != NULL) {
        struct gen_user *n = g->users->next;
        free(g->users);
        g->users = n;
    }
    while (g->pools != NULL) {
        struct gen_pool *n = g->pools->next;
        free(g->pools);
        g->pools = n;
    }
    while (g->puse != NULL) {
        struct gen_provider_use *n = g->puse->next;
        free(g->puse);
        g->puse = n;
    }
    while (g->convs != NULL) {
        struct gen_conv *n = g->convs->next;
        generate__conv_clear(g->convs);
        free(g->convs->turns);
        free(g->convs);
        g->convs = n;
    }
    while (g->prefs != NULL) {
        struct gen_pref *n = g->prefs->next;
        free(g->prefs);
        g->prefs = n;
    }
    while (g->notices != NULL) {
        struct gen_notice *n = g->notices->next;
        free(g->notices);
        g->notices = n;
    }
    while (g->hits != NULL) {
        struct gen_hits *n = g->hits->next;
        free(g->hits);
        g->hits = n;
    }
    for (size_t i = 0; i < GEN_IMAGES_KEPT; i++)
        free(g->images[i].prompt);
    catalog_unref(g->cat);
    free(g);
    if (cb != NULL)
        cb(data);
}

static void job__free(struct job *job)
{
    struct generate *g = job->g;
    for (size_t i = 0; i < job->nmsgs; i++)
        free((char *)job->msgs[i].content);
    free(job->msgs);
    free(job->prompt);
    free(job->scope_off);
    free(job->text);
    free(job->image);
    catalog_unref(job->cat);
    free(job);
    g->njobs--;
    generate__maybe_free(g);
}

static void job__timer_closed(uv_handle_t *h)
{
    job__free(h->data);
}

static void job__unref(struct job *job)
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
static void job__end(struct job *job, int rc)
{
    struct generate *g = job->g;
    if (job->state == JOB_ENDED)
        return;
    if (job->state == JOB_QUEUED)
        job__queue_remove(job);
    job->state = JOB_ENDED;
    if (rc < 0 && job->counted) {
        /* Nothing was delivered: the attempt does not count against the
         * member's or the scope's allowance. */
        if (job->user != NULL && job->user->count > 0)
            job->user->count--;
        if (job->pool != NULL && job->pool->count > 0)
            job->pool->count--;
    }
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
    struct reply *r = job->reply;
    job->reply = NULL;
    if (r != NULL)
        reply_finish(r);
    job__unref(job);
    if (!g->closing)
        generate__dispatch(g);
}

/* Refuse before anything was reserved. */
static void job__refuse(struct job *job, enum generate_refusal why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Count an outcome per UTC day in the state table, for /admin stats. */
static void generate__count(struct generate *g, const char *what, const char *name)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL)
        return;
    char key[160];
    snprintf(key, sizeof(key), "%lld/%s/%s", (long long)(generate__now(g) / 86400000), what, name);
    state_incr(ledger_store(ledger), GENERATE_NS_STATS, key, 1, NULL, NULL);
}

static void job__refuse(struct job *job, enum generate_refusal why, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        struct reply_msg msg = {.stage = REPLY_FINAL, .ephemeral = true, .text = text};
        reply_send(job->reply, &msg);
        free(text);
    }
    job->g->stats.refused++;
    metrics_counter_add(metrics_std()->generations,
                        (const char *[]){job->model != NULL ? job->model->name : "-", "refused"}, 1);
    generate__count(job->g, "refused", generate_refusal_name(why));
    job__end(job, HB_EPERM);
}

static struct job *job__new(struct generate *g, struct invocation *inv)
{
    struct job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    job->g = g;
    job->refs = 1;
    job->reply = inv->reply;
    job->who = *inv;
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
static void job__id_make(struct job *job)
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
    for (size_t i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(job->id, sizeof(job->id), "gen:h:%s", hex);
}

/* ---- persistence -------------------------------------------------------- */

static void job__state_done(int rc, const char *value, void *data)
{
    struct job *job = data;
    (void)value;
    if (rc < 0)
        log_warn("generate.persist_failed", "job=%s error=%s", job->id, hb_strerror(rc));
    job__unref(job);
}

/* The record says which reservations may be open, so a restart can void
 * them: "<wallet> <number of reservations>". NULL deletes it. */
static void job__persist(struct job *job, bool keep)
{
    struct ledger *ledger = job->g->core->ledger;
    if (ledger == NULL)
        return;
    char value[WALLET_ACCOUNT_MAX + 32];
    snprintf(value, sizeof(value), "%s %u", job->wallet, job->nres);
    job->refs++;
    if (state_put(ledger_store(ledger), GEN_NS_JOB, job->id, keep ? value : NULL,
                  job__state_done, job) < 0)
        job->refs--;
}

/* ---- settlement ---------------------------------------------------------- */

static void job__final_balance(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    char balance[96] = "";
    if (rc == 0 && res->balance.pending_debits > 0)
        snprintf(balance, sizeof(balance), MSG_GEN_FOOTER_BALANCE_HELD,
                 (long long)res->balance.posted, (long long)res->balance.pending_debits);
    else if (rc == 0)
        snprintf(balance, sizeof(balance), MSG_GEN_FOOTER_BALANCE, (long long)res->balance.posted);
    const struct catalog_model *m = job->model;
    char footer[512];
    snprintf(footer, sizeof(footer), MSG_GEN_FOOTER, m->name, job__label(m),
             (long long)job->charged, job->charged == 1 ? "" : "s", balance);
    if (job->end_rc == 0 && job->modality == PROVIDER_IMAGE) {
        struct reply_button buttons[2];
        size_t nb = 0;
        if (job->gid[0] != '\0') {
            char payload[32];
            snprintf(payload, sizeof(payload), "r.%s", job->gid);
            if (button_ref_make(buttons[nb].ref, g->core->button_key, "gen", payload, &job->who) ==
                0)
                buttons[nb++].label = MSG_GEN_BUTTON_REGENERATE;
            snprintf(payload, sizeof(payload), "u.%s", job->gid);
            if (button_ref_make(buttons[nb].ref, g->core->button_key, "gen", payload, &job->who) ==
                0)
                buttons[nb++].label = MSG_GEN_BUTTON_UPVOTE;
        }
        struct reply_image image = {.data = job->image,
                                    .len = job->image_len,
                                    .mime = job->mime,
                                    .filename = strcmp(job->mime, "image/png") == 0 ? "image.png"
                                                                                    : "image.jpg"};
        struct reply_msg msg = {.stage = REPLY_FINAL,
                                .text = footer,
                                .image = &image,
                                .buttons = buttons,
                                .nbuttons = nb};
        reply_send(job->reply, &msg);
    } else if (job->end_rc == 0) {
        job__say(job, REPLY_FINAL, MSG_GEN_ANSWER, job->text != NULL ? job->text : "", footer);
    }
    job__end(job, job->end_rc);
    job__unref(job);
}

static void job__balance_then_end(struct job *job)
{
    struct ledger *ledger = job->g->core->ledger;
    job->refs++;
    if (ledger == NULL || ledger_balance_get(ledger, job->payer, job__final_balance, job) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__final_balance(HB_ECANCELED, &none, job);
    }
}

static void job__posted(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    (void)res;
    job->res_open = false;
    if (rc < 0 && rc != HB_EEXISTS) {
        /* The reservation expired or the ledger failed: nothing was taken. */
        log_error("generate.post_failed", "job=%s error=%s", job->id, hb_strerror(rc));
        job->charged = 0;
    }
    job->g->stats.completed++;
    job->g->stats.credits += job->charged;
    metrics_counter_add(metrics_std()->generations, (const char *[]){job->model->name, "completed"},
                        1);
    job__persist(job, false);
    log_info("generate.done", "job=%s model=%s charged=%lld in=%ld out=%ld", job->id,
             job->model->name, (long long)job->charged, job->in_tokens, job->out_tokens);
    job__balance_then_end(job);
    job__unref(job);
}

static void job__remember_turn(struct job *job)
{
    struct generate *g = job->g;
    struct gen_conv *c = generate__conv(g, job->conv_key, true);
    if (c == NULL)
        return;
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap == 0 ? 8 : c->cap * 2;
        struct gen_turn *grown = realloc(c->turns, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        c->turns = grown;
        c->cap = cap;
    }
    char *q = strdup(job->prompt);
    char *a = strdup(job->text != NULL ? job->text : "");
    if (q == NULL || a == NULL) {
        free(q);
        free(a);
        return;
    }
    c->turns[c->n++] = (struct gen_turn){.role = "user", .text = q};
    c->turns[c->n++] = (struct gen_turn){.role = "assistant", .text = a};
    /* Keep within the budget (about four bytes a token), oldest first out. */
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    size_t bytes = 0;
    for (size_t i = 0; i < c->n; i++)
        bytes += strlen(c->turns[i].text);
    size_t drop = 0;
    while (drop + 2 <= c->n && bytes / 4 > (size_t)l->memory_tokens) {
        bytes -= strlen(c->turns[drop].text) + strlen(c->turns[drop + 1].text);
        free(c->turns[drop].text);
        free(c->turns[drop + 1].text);
        drop += 2;
    }
    if (drop > 0) {
        memmove(c->turns, c->turns + drop, (c->n - drop) * sizeof(*c->turns));
        c->n -= drop;
    }
}

static void job__image_remember(struct job *job)
{
    struct generate *g = job->g;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)job->id, strlen(job->id), md);
    struct gen_image *img = &g->images[g->image_next];
    g->image_next = (g->image_next + 1) % GEN_IMAGES_KEPT;
    free(img->prompt);
    memset(img, 0, sizeof(*img));
    for (size_t i = 0; i < 6; i++)
        snprintf(img->gid + 2 * i, 3, "%02x", md[i]);
    snprintf(job->gid, sizeof(job->gid), "%s", img->gid);
    img->owner = job->who;
    snprintf(img->model, sizeof(img->model), "%s", job->first->name);
    snprintf(img->size, sizeof(img->size), "%ux%u", job->size.width, job->size.height);
    img->prompt = strdup(job->prompt);
    /* The owner and model survive a restart (for upvotes); the prompt does
     * not leave memory. */
    struct ledger *ledger = g->core->ledger;
    if (ledger != NULL) {
        char value[COMMAND_ID_MAX * 3 + 160];
        snprintf(value, sizeof(value), "%d|%s|%d|%s|%s", (int)job->who.platform,
                 job->who.user_id, (int)job->who.scope, job->who.scope_id, img->model);
        state_put(ledger_store(ledger), GEN_NS_IMAGE, img->gid, value, NULL, NULL);
    }
}

static void job__voided_final(int rc, const struct ledger_result *res, void *data);

/* Post the actual cost of a delivered result. */
static void job__settle(struct job *job)
{
    struct generate *g = job->g;
    const struct catalog_model *m = job->model;
    job->state = JOB_SETTLE;
    if (job->modality == PROVIDER_TEXT) {
        const struct filter *f = catalog_filter(job->cat);
        struct filter_result fr = {0};
        if (filter_apply(f, job->text != NULL ? job->text : "", &fr) == 0) {
            generate__hit(g, f, &fr);
            if (fr.blocked) {
                g->stats.filtered_outputs++;
                log_info("generate.output_blocked", "job=%s rule=%s", job->id, fr.blocked_by);
                snprintf(job->error, sizeof(job->error), MSG_GEN_OUTPUT_FILTERED,
                         fr.blocked_by);
                filter_result_clear(&fr);
                job->end_rc = HB_EPERM;
                job__fail(job);
                return;
            }
            if (fr.redactions > 0)
                g->stats.redactions++;
            free(job->text);
            job->text = fr.text;
            job->text_len = fr.text_len;
            job->text_cap = fr.text_len + 1;
            fr.text = NULL;
            filter_result_clear(&fr);
        }
    }
    long in = job->in_tokens, out = job->out_tokens;
    if (job->modality == PROVIDER_TEXT) {
        /* Without reported usage, estimate at four bytes a token. */
        if (in < 0)
            in = (long)(job->input_bytes / 4 + 1);
        if (out < 0)
            out = (long)(job->text_len / 4 + 1);
        int64_t day = generate__now(g) / GEN_DAY_MS;
        if (day != g->token_day) {
            g->token_day = day;
            g->tokens_today = 0;
        }
        g->tokens_today += in + out;
        job->in_tokens = in;
        job->out_tokens = out;
    } else {
        in = out = 0;
        job__image_remember(job);
    }
    int64_t cost = catalog_cost(m, in, out);
    if (cost > job->reserved)
        cost = job->reserved;
    job->charged = cost;
    job->end_rc = 0;
    if (job->modality == PROVIDER_TEXT)
        job__remember_turn(job);
    struct ledger *ledger = g->core->ledger;
    if (!job->res_open) {
        job->charged = 0;
        g->stats.completed++;
        job__persist(job, false);
        job__balance_then_end(job);
        return;
    }
    char post_id[LEDGER_ID_LEN_MAX + 8];
    snprintf(post_id, sizeof(post_id), "%s:post", job->id);
    job->refs++;
    int rc;
    if (cost > 0) {
        rc = ledger != NULL ? ledger_transfer_post(ledger, post_id, job->res_id, cost, job__posted, job)
                            : HB_ECANCELED;
    } else {
        rc = ledger != NULL ? ledger_transfer_void(ledger, post_id, job->res_id, job__posted, job)
                            : HB_ECANCELED;
    }
    if (rc < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__posted(rc, &none, job);
    }
}

static void job__voided_final(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    (void)res;
    if (rc < 0 && rc != HB_EEXISTS)
        log_error("generate.void_failed", "job=%s error=%s", job->id, hb_strerror(rc));
    job->res_open = false;
    job__persist(job, false);
    job__say(job, REPLY_FINAL, MSG_GEN_FAILED, job->error);
    job__end(job, job->end_rc < 0 ? job->end_rc : HB_EIO);
    job__unref(job);
}

/* Every model failed (or the job was stopped): void and say so. */
static void job__fail(struct job *job)
{
    struct generate *g = job->g;
    job->state = JOB_SETTLE;
    g->stats.failed++;
    metrics_counter_add(metrics_std()->generations,
                        (const char *[]){job->model != NULL ? job->model->name : "-", "failed"}, 1);
    if (job->end_rc == 0)
        job->end_rc = HB_EIO;
    if (job->end_rc != HB_ECANCELED)
        generate__count(g, "failed", job->model != NULL ? job->model->provider->name : "none");
    log_info("generate.failed", "job=%s model=%s", job->id,
             job->model != NULL ? job->model->name : "-");
    struct ledger *ledger = g->core->ledger;
    job->refs++;
    if (!job->res_open || ledger == NULL) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__voided_final(job->res_open ? HB_ECANCELED : 0, &none, job);
        return;
    }
    char void_id[LEDGER_ID_LEN_MAX + 16];
    snprintf(void_id, sizeof(void_id), "%s:void%u", job->id, job->nres);
    if (ledger_transfer_void(ledger, void_id, job->res_id, job__voided_final, job) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__voided_final(HB_ECANCELED, &none, job);
    }
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
    /* Partial text goes out through the filter too, at most every
     * progress_ms; the adapter paces its edits further. */
    uint64_t now = uv_now(job->g->loop);
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (job->last_progress != 0 && now - job->last_progress < (uint64_t)l->progress_ms)
        return;
    job->last_progress = now;
    const struct filter *f = catalog_filter(job->cat);
    struct filter_result fr = {0};
    if (filter_apply(f, job->text, &fr) == 0) {
        if (!fr.blocked)
            job__say(job, REPLY_PROGRESS, "%s…", fr.text);
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
    snprintf(job->error, sizeof(job->error), "%s", res->error != NULL && res->error[0] != '\0'
                                                        ? res->error
                                                        : hb_strerror(res->rc));
    log_warn("generate.attempt_failed", "job=%s model=%s status=%d error=%s", job->id,
             job->model->name, res->http_status, job->error);
    job->end_rc = res->rc;
    if (g->closing) {
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
    };
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
    log_debug("generate.prompt", "job=%s model=%s prompt=%s", job->id, m->name, job->prompt);
    job__say(job, REPLY_PROGRESS, MSG_GEN_GENERATING, m->name, job__label(m));
    int rc = m->provider->provider->ops->start(m->provider->provider, &req, &events, job, &job->call);
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
    for (const struct gen_provider_use *u = g->puse; u != NULL; u = u->next) {
        if (strcmp(u->name, job->model->provider->name) == 0)
            return u->running < job->model->provider->max_concurrent;
    }
    return true;
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

static void job__enqueue(struct job *job)
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
        job__say(job, REPLY_PROGRESS, MSG_GEN_QUEUED, pos);
    }
    generate__dispatch(g);
}

/* ---- reservations --------------------------------------------------------- */

static void job__reserved(int rc, const struct ledger_result *res, void *data);

static void job__reserve(struct job *job, int64_t amount)
{
    struct generate *g = job->g;
    struct ledger *ledger = g->core->ledger;
    job->nres++;
    snprintf(job->res_id, sizeof(job->res_id), "%s:r%u", job->id, job->nres);
    job->reserved = amount;
    job__persist(job, true);
    int64_t timeout = g->core->reservation_timeout_ms;
    const struct catalog_limits *l = catalog_limits_get(job->cat);
    if (timeout < l->job_timeout_ms + 60000)
        timeout = l->job_timeout_ms + 60000;
    struct ledger_transfer t = {
        .id = job->res_id,
        .debit = job->payer,
        .credit = LEDGER_SYSTEM_REVENUE,
        .amount = amount,
        .kind = LEDGER_KIND_GENERATION,
        .flags = LEDGER_TRANSFER_PENDING,
        .timeout_ms = timeout,
        .ref = job->id,
        .tag = job->model->name,
    };
    job->refs++;
    int rc = ledger != NULL ? ledger_transfer_create(ledger, &t, job__reserved, job) : HB_ECANCELED;
    if (rc < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__reserved(rc, &none, job);
    }
}

static void job__funds_balance(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    if (rc == 0)
        job__refuse(job, GEN_REFUSE_FUNDS, MSG_GEN_FUNDS_SHORT_BALANCE, job->model->name, job__label(job->model), (long long)job->reserved,
                    (long long)res->balance.available);
    else
        job__refuse(job, GEN_REFUSE_FUNDS, MSG_GEN_FUNDS_SHORT,
                    job->model->name, job__label(job->model), (long long)job->reserved);
    job__unref(job);
}

static void job__reserved(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    (void)res;
    if (rc == HB_EEXISTS)
        rc = 0;
    if (rc == 0) {
        job->res_open = true;
        if (job->state == JOB_ENDED || g->closing) {
            snprintf(job->error, sizeof(job->error), MSG_GEN_STOPPING);
            job->end_rc = HB_ECANCELED;
            job__fail(job);
        } else if (job->state == JOB_ADMIT) {
            job__enqueue(job);
        } else {
            /* A fallback's new reservation. */
            job__enqueue(job);
        }
        job__unref(job);
        return;
    }
    if ((rc == HB_EFUNDS || rc == HB_ENOTFOUND) && job->payer_alt[0] != '\0' && !g->closing) {
        /* The first choice cannot cover it: the other account may. */
        log_debug("generate.payer_switch", "job=%s from=%s to=%s", job->id, job->payer,
                  job->payer_alt);
        snprintf(job->payer, sizeof(job->payer), "%s", job->payer_alt);
        job->payer_alt[0] = '\0';
        job__reserve(job, job->reserved);
        job__unref(job);
        return;
    }
    job__persist(job, false);
    if (job->fb_next > 0 || job->nres > 1) {
        /* A fallback needed more than the first reservation held. */
        snprintf(job->error, sizeof(job->error), MSG_GEN_FALLBACK_NOT_RESERVED,
                 job->model->name, hb_strerror(rc));
        job->end_rc = rc;
        job__fail(job);
        job__unref(job);
        return;
    }
    if (rc == HB_EFUNDS && g->core->ledger != NULL &&
        ledger_balance_get(g->core->ledger, job->payer, job__funds_balance, job) == 0)
        return; /* the reference moves to the balance callback */
    if (rc == HB_EFUNDS)
        job__refuse(job, GEN_REFUSE_FUNDS, MSG_GEN_FUNDS_SHORT_FOR, job->model->name);
    else
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_NOT_RESERVED, hb_strerror(rc));
    job__unref(job);
}

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
        job__reserve(job, catalog_estimate(job->model, job->input_bytes));
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
        if (m != NULL && m->enabled && m != job->model && catalog_model_allowed(m, &job->who) &&
            !job__scope_off(job, m->name))
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
    int64_t need = catalog_estimate(next, job->input_bytes);
    if (need <= job->reserved && job->res_open) {
        job->state = JOB_ADMIT;
        job__enqueue(job);
        return;
    }
    /* Dearer than what is held: release it and reserve the fallback's price. */
    job->state = JOB_SETTLE;
    struct ledger *ledger = g->core->ledger;
    char void_id[LEDGER_ID_LEN_MAX + 16];
    snprintf(void_id, sizeof(void_id), "%s:void%u", job->id, job->nres);
    job->refs++;
    if (!job->res_open || ledger == NULL ||
        ledger_transfer_void(ledger, void_id, job->res_id, job__revoided, job) < 0) {
        struct ledger_result none;
        memset(&none, 0, sizeof(none));
        job__revoided(0, &none, job);
    }
}

/* ---- admission ------------------------------------------------------------ */

static int job__messages_build(struct job *job)
{
    struct gen_conv *c = job->modality == PROVIDER_TEXT
                             ? generate__conv(job->g, job->conv_key, false)
                             : NULL;
    size_t n = (c != NULL ? c->n : 0) + 1;
    job->msgs = calloc(n, sizeof(*job->msgs));
    if (job->msgs == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; c != NULL && i < c->n; i++) {
        char *t = strdup(c->turns[i].text);
        if (t == NULL)
            return HB_ENOMEM;
        job->msgs[job->nmsgs].role = c->turns[i].role;
        job->msgs[job->nmsgs++].content = t;
        job->input_bytes += strlen(t);
    }
    char *p = strdup(job->prompt);
    if (p == NULL)
        return HB_ENOMEM;
    job->msgs[job->nmsgs].role = "user";
    job->msgs[job->nmsgs++].content = p;
    job->input_bytes += strlen(p);
    return 0;
}

static void job__notice_deliver(struct job *job)
{
    struct generate *g = job->g;
    struct gen_notice **pp = &g->notices;
    while (*pp != NULL) {
        struct gen_notice *n = *pp;
        if (strcmp(n->wallet, job->wallet) == 0) {
            *pp = n->next;
            free(n);
            job__say(job, REPLY_FINAL, MSG_GEN_INTERRUPTED);
            if (g->core->ledger != NULL)
                state_put(ledger_store(g->core->ledger), GEN_NS_NOTICE, job->wallet, NULL, NULL,
                          NULL);
            continue;
        }
        pp = &n->next;
    }
}

static void job__admit(struct job *job)
{
    struct generate *g = job->g;
    struct catalog *cat = job->cat;
    const struct catalog_limits *l = catalog_limits_get(cat);
    const char *kind = job->modality == PROVIDER_TEXT ? "text" : "image";
    if (g->closing) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    job__notice_deliver(job);

    /* The model. */
    const struct catalog_model *m = NULL;
    if (job->want_model[0] != '\0') {
        m = catalog_model_find(cat, job->want_model);
        if (m == NULL) {
            job__refuse(job, GEN_REFUSE_MODEL, MSG_COMMON_NO_SUCH_MODEL,
                        job->want_model);
            return;
        }
    } else {
        m = catalog_model_default(cat, job->modality);
        if (m == NULL) {
            job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_NO_MODEL, kind);
            return;
        }
    }
    if (!m->enabled) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_OFF,
                    m->name);
        return;
    }
    if (job__scope_off(job, m->name)) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_OFF_HERE,
                    m->name);
        return;
    }
    if (m->modality != job->modality) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_WRONG_COMMAND, m->name,
                    m->modality == PROVIDER_TEXT ? MSG_GEN_MAKES_TEXT : MSG_GEN_MAKES_IMAGES,
                    m->modality == PROVIDER_TEXT ? "/chat" : "/imagine");
        return;
    }
    if (!catalog_model_allowed(m, &job->who)) {
        job__refuse(job, GEN_REFUSE_MODEL, MSG_GEN_MODEL_NOT_ALLOWED,
                    m->name);
        return;
    }
    job->first = job->model = m;
    if (job->modality == PROVIDER_IMAGE && !catalog_model_size(m, job->want_size, &job->size)) {
        char sizes[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < m->nsizes && off < sizeof(sizes); i++)
            off += (size_t)snprintf(sizes + off, sizeof(sizes) - off, "%s%ux%u", i ? ", " : "",
                                    m->sizes[i].width, m->sizes[i].height);
        job__refuse(job, GEN_REFUSE_INPUT, MSG_GEN_BAD_SIZE, m->name, job->want_size, sizes);
        return;
    }

    /* The prompt: length and the content filter. */
    size_t chars = command_utf8_len(job->prompt);
    if ((int64_t)chars > l->prompt_max) {
        job__refuse(job, GEN_REFUSE_INPUT, MSG_GEN_PROMPT_TOO_LONG, chars,
                    (long long)l->prompt_max);
        return;
    }
    const struct filter *f = catalog_filter(cat);
    struct filter_result fr = {0};
    if (filter_apply(f, job->prompt, &fr) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    generate__hit(g, f, &fr);
    if (fr.blocked) {
        g->stats.filtered_prompts++;
        log_info("generate.prompt_blocked", "rule=%s", fr.blocked_by);
        job__refuse(job, GEN_REFUSE_FILTER, MSG_GEN_PROMPT_FILTERED, fr.blocked_by);
        filter_result_clear(&fr);
        return;
    }
    if (fr.redactions > 0) {
        g->stats.redactions++;
        free(job->prompt);
        job->prompt = fr.text;
        fr.text = NULL;
    }
    filter_result_clear(&fr);

    /* Rate limits, the token cap and the queue bounds. */
    int64_t now = generate__now(g);
    char when[64];
    char key[GEN_KEY_MAX];
    snprintf(key, sizeof(key), "%s", job->wallet);
    job->user = generate__user(g, key);
    if (job->user == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    if (job->user->hour != now / GEN_HOUR_MS) {
        job->user->hour = now / GEN_HOUR_MS;
        job->user->count = 0;
    }
    if (l->user_per_hour > 0 && job->user->count >= l->user_per_hour) {
        generate__until(when, sizeof(when), (job->user->hour + 1) * GEN_HOUR_MS - now);
        job__refuse(job, GEN_REFUSE_USER_LIMIT, MSG_GEN_USER_LIMIT,
                    (long long)l->user_per_hour, when);
        return;
    }
    if (job->who.scope == COMMAND_SCOPE_GROUP) {
        char pkey[GEN_KEY_MAX];
        snprintf(pkey, sizeof(pkey), "%s:%s", command_platform_name(job->who.platform),
                 job->who.scope_id);
        job->pool = generate__pool(g, pkey);
        if (job->pool != NULL && job->pool->day != now / GEN_DAY_MS) {
            job->pool->day = now / GEN_DAY_MS;
            job->pool->count = 0;
        }
        if (job->pool != NULL && l->pool_per_day > 0 && job->pool->count >= l->pool_per_day) {
            generate__until(when, sizeof(when), (job->pool->day + 1) * GEN_DAY_MS - now);
            job__refuse(job, GEN_REFUSE_GROUP_LIMIT, MSG_GEN_GROUP_LIMIT,
                        (long long)l->pool_per_day, when);
            return;
        }
    }
    if (g->token_day != now / GEN_DAY_MS) {
        g->token_day = now / GEN_DAY_MS;
        g->tokens_today = 0;
    }
    if (l->tokens_per_day > 0 && g->tokens_today >= l->tokens_per_day) {
        generate__until(when, sizeof(when), (g->token_day + 1) * GEN_DAY_MS - now);
        job__refuse(job, GEN_REFUSE_TOKEN_CAP, MSG_GEN_TOKEN_CAP,
                    (long long)l->tokens_per_day, when);
        return;
    }
    if (job->user->queued + job->user->running >= (unsigned)(l->user_queue + l->user_in_flight)) {
        job__refuse(job, GEN_REFUSE_BUSY, MSG_GEN_USER_BUSY,
                    job->user->queued + job->user->running,
                    job->user->queued + job->user->running == 1 ? "" : "s");
        return;
    }
    if ((int64_t)g->nqueued >= l->queue_max) {
        job__refuse(job, GEN_REFUSE_BUSY, MSG_GEN_BOT_BUSY,
                    g->nqueued);
        return;
    }

    /* The price, the reservation, and the queue. */
    if (job__messages_build(job) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_COMMON_OUT_OF_MEMORY);
        return;
    }
    job->user->count++;
    if (job->pool != NULL)
        job->pool->count++;
    job->counted = true;
    job->deadline = uv_now(g->loop) + (uint64_t)l->job_timeout_ms;
    int64_t estimate = catalog_estimate(m, job->input_bytes);
    if (estimate <= 0) {
        job->reserved = 0;
        job__enqueue(job);
        return;
    }
    job__reserve(job, estimate);
}

static void job__pref_loaded(int rc, const char *value, void *data)
{
    struct job *job = data;
    struct generate *g = job->g;
    struct gen_pref *p = calloc(1, sizeof(*p));
    if (p != NULL) {
        snprintf(p->key, sizeof(p->key), "%s", job->wallet);
        snprintf(p->model, sizeof(p->model), "%s", rc == 0 && value != NULL ? value : "");
        p->next = g->prefs;
        g->prefs = p;
    }
    if (rc == 0 && value != NULL && job->want_model[0] == '\0') {
        const struct catalog_model *m = catalog_model_find(job->cat, value);
        if (m != NULL && m->modality == job->modality && m->enabled)
            snprintf(job->want_model, sizeof(job->want_model), "%s", value);
    }
    job__admit(job);
    job__unref(job);
}

static void job__preference_then_admit(struct job *job)
{
    struct generate *g = job->g;
    if (job->want_model[0] != '\0') {
        job__admit(job);
        return;
    }
    for (struct gen_pref *p = g->prefs; p != NULL; p = p->next) {
        if (strcmp(p->key, job->wallet) == 0) {
            const struct catalog_model *m =
                p->model[0] != '\0' ? catalog_model_find(job->cat, p->model) : NULL;
            if (m != NULL && m->modality == job->modality && m->enabled)
                snprintf(job->want_model, sizeof(job->want_model), "%s", p->model);
            job__admit(job);
            return;
        }
    }
    struct ledger *ledger = g->core->ledger;
    job->refs++;
    if (ledger == NULL ||
        state_get(ledger_store(ledger), GEN_NS_PREF, job->wallet, job__pref_loaded, job) < 0)
        job__pref_loaded(HB_ECANCELED, NULL, job);
}

/* The pool's spending today is known: choose who pays by the policy. A
 * pool that reached its daily cap is left out (the cap is checked before a
 * job, so one job may take the pool slightly past it). */
static void job__pool_usage(int rc, const struct ledger_result *res, void *data)
{
    struct job *job = data;
    bool usable = true;
    if (rc == 0 && res != NULL && job->pool_settings.daily_cap > 0) {
        int64_t spent = 0;
        for (size_t i = 0; i < res->usage_count; i++)
            spent += res->usage[i].amount;
        usable = spent < job->pool_settings.daily_cap;
        if (!usable)
            log_info("generate.pool_capped", "job=%s pool=%s spent=%lld cap=%lld", job->id,
                     job->pool_account, (long long)spent, (long long)job->pool_settings.daily_cap);
    }
    generate_payer_choose(&job->who, &job->pool_settings, usable, job->payer, sizeof(job->payer),
                          job->payer_alt, sizeof(job->payer_alt));
    job__preference_then_admit(job);
    job__unref(job);
}

static void job__pool_settings(int rc, const struct pool_settings *ps, void *data)
{
    struct job *job = data;
    if (rc == 0 && ps != NULL)
        job->pool_settings = *ps;
    struct ledger *ledger = job->g->core->ledger;
    if (job->pool_settings.daily_cap > 0 && ledger != NULL) {
        int64_t now = generate__now(job->g);
        if (ledger_usage_get(ledger, job->pool_account, now / 86400000 * 86400000, now + 1,
                             job__pool_usage, job) == 0)
            return;
    }
    job__pool_usage(0, NULL, job);
}

/* The group's turned-off models are known; next, the pool's settings. */
static void job__scope_models(char *off, void *data)
{
    struct job *job = data;
    job->scope_off = off;
    if (pool_settings_get(job->g->core, job->pool_account, job__pool_settings, job) == 0)
        return;
    job__preference_then_admit(job);
    job__unref(job);
}

static void job__wallet_opened(int rc, bool created, void *data)
{
    struct job *job = data;
    (void)created;
    if (rc < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_WALLET_FAILED,
                    hb_strerror(rc));
        job__unref(job);
        return;
    }
    /* In a group its admins may have turned models off, and the pool may
     * pay by the policy they chose. */
    if (wallet_pool_account(&job->who, job->pool_account, sizeof(job->pool_account)) == 0 &&
        generate_scope_off_load(job->g->core, &job->who, job__scope_models, job) == 0)
        return; /* the reference moves along the chain */
    job__preference_then_admit(job);
    job__unref(job);
}

void generate_submit(struct generate *g, struct invocation *inv,
                     const struct generate_request *req)
{
    struct job *job = job__new(g, inv);
    if (job == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    inv->reply = NULL;
    g->stats.submitted++;
    job->modality = req->modality;
    job->prompt = strdup(req->prompt != NULL ? req->prompt : "");
    snprintf(job->want_model, sizeof(job->want_model), "%s", req->model != NULL ? req->model : "");
    snprintf(job->want_size, sizeof(job->want_size), "%s", req->size != NULL ? req->size : "");
    generate__conv_key(&job->who, job->conv_key, sizeof(job->conv_key));
    job__id_make(job);
    if (job->prompt == NULL || wallet_account(&job->who, job->wallet, sizeof(job->wallet)) < 0 ||
        generate_payer_choose(&job->who, NULL, false, job->payer, sizeof(job->payer),
                              job->payer_alt, sizeof(job->payer_alt)) < 0) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_GEN_BAD_REQUEST);
        return;
    }
    if (g->closing || g->core->ledger == NULL) {
        job__refuse(job, GEN_REFUSE_OTHER, MSG_ROUTER_SHUTTING_DOWN);
        return;
    }
    job->refs++;
    int rc = wallet_open(g->core, &job->who, job__wallet_opened, job);
    if (rc < 0)
        job__wallet_opened(rc, false, job);
}

/* ---- buttons --------------------------------------------------------------- */

static struct gen_image *generate__image_find(struct generate *g, const char *gid)
{
    for (size_t i = 0; i < GEN_IMAGES_KEPT; i++) {
        if (g->images[i].prompt != NULL && strcmp(g->images[i].gid, gid) == 0)
            return &g->images[i];
    }
    return NULL;
}

void generate_regenerate(struct generate *g, struct invocation *inv, const char *gid)
{
    struct gen_image *img = generate__image_find(g, gid);
    if (img == NULL) {
        reply_text(inv->reply, true, MSG_GEN_TOO_OLD);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    char *prompt = strdup(img->prompt);
    char model[128], size[24];
    snprintf(model, sizeof(model), "%s", img->model);
    snprintf(size, sizeof(size), "%s", img->size);
    if (prompt == NULL) {
        reply_text(inv->reply, true, MSG_COMMON_OUT_OF_MEMORY);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    struct generate_request req = {
        .modality = PROVIDER_IMAGE, .prompt = prompt, .model = model, .size = size};
    generate_submit(g, inv, &req);
    free(prompt);
}

struct upvote_op {
    struct generate *g;
    struct reply *reply;
    char gid[16];
    char voter[WALLET_ACCOUNT_MAX];
    char ref[COMMAND_BUTTON_REF_MAX + 1];
    struct invocation presser;
    char owner_user[COMMAND_ID_MAX];   /* who made the image */
    char model[64];                    /* which model made it */
    char scope_key[COMMAND_ID_MAX + 16]; /* "<platform>:<group>", or "" for a DM image */
};

static void upvote__end(struct upvote_op *op, const char *text)
{
    reply_text(op->reply, true, "%s", text);
    reply_finish(op->reply);
    free(op);
}

static void upvote__stored(int rc, const char *value, void *data)
{
    struct upvote_op *op = data;
    (void)value;
    struct ledger *ledger = op->g->core->ledger;
    if (rc == 0 && op->scope_key[0] != '\0' && ledger != NULL) {
        /* The group's leaderboard lists these: one record per vote, keyed
         * by group and day, holding the creator and the model. */
        char key[STATE_KEY_MAX];
        char record[COMMAND_ID_MAX + 80];
        int n = snprintf(key, sizeof(key), "%s/%lld/%s/%s", op->scope_key,
                         (long long)(generate__now(op->g) / 86400000), op->gid, op->voter);
        snprintf(record, sizeof(record), "%s|%s", op->owner_user, op->model);
        if (n > 0 && (size_t)n < sizeof(key))
            state_put(ledger_store(ledger), GENERATE_NS_VOTE, key, record, NULL, NULL);
    }
    upvote__end(op, rc == 0 ? MSG_UPVOTE_DONE : MSG_UPVOTE_FAILED);
}

static void upvote__checked(int rc, const char *value, void *data)
{
    struct upvote_op *op = data;
    (void)value;
    if (rc == 0) {
        upvote__end(op, MSG_UPVOTE_AGAIN);
        return;
    }
    struct ledger *ledger = op->g->core->ledger;
    char key[64 + WALLET_ACCOUNT_MAX];
    snprintf(key, sizeof(key), "%s/%s", op->gid, op->voter);
    if (ledger == NULL ||
        state_put(ledger_store(ledger), GEN_NS_UPVOTE, key, "1", upvote__stored, op) < 0)
        upvote__end(op, MSG_UPVOTE_FAILED);
}

static void upvote__owner_loaded(int rc, const char *value, void *data)
{
    struct upvote_op *op = data;
    if (rc < 0 || value == NULL) {
        upvote__end(op, MSG_UPVOTE_UNKNOWN);
        return;
    }
    /* "<platform>|<user>|<scope>|<scope id>|<model>" */
    struct invocation owner;
    memset(&owner, 0, sizeof(owner));
    int platform = 0, scope = 0;
    char user[COMMAND_ID_MAX] = "", scope_id[COMMAND_ID_MAX] = "";
    const char *p = value;
    platform = atoi(p);
    p = strchr(p, '|');
    if (p != NULL) {
        size_t n = strcspn(++p, "|");
        snprintf(user, sizeof(user), "%.*s", (int)n, p);
        p = strchr(p, '|');
    }
    if (p != NULL) {
        scope = atoi(++p);
        p = strchr(p, '|');
    }
    if (p != NULL) {
        size_t n = strcspn(++p, "|");
        snprintf(scope_id, sizeof(scope_id), "%.*s", (int)n, p);
    }
    owner.platform = (enum command_platform)platform;
    owner.scope = (enum command_scope)scope;
    snprintf(op->owner_user, sizeof(op->owner_user), "%s", user);
    const char *model = strrchr(value, '|');
    snprintf(op->model, sizeof(op->model), "%s", model != NULL ? model + 1 : "");
    if (owner.scope == COMMAND_SCOPE_GROUP && scope_id[0] != '\0')
        snprintf(op->scope_key, sizeof(op->scope_key), "%s:%s",
                 command_platform_name(owner.platform), scope_id);
    snprintf(owner.user_id, sizeof(owner.user_id), "%s", user);
    snprintf(owner.scope_id, sizeof(owner.scope_id), "%s", scope_id);
    snprintf(owner.button_ref, sizeof(owner.button_ref), "%s", op->ref);
    char payload[32];
    if (button_ref_check(&owner, op->g->core->button_key, payload, sizeof(payload)) != 0) {
        upvote__end(op, MSG_UPVOTE_INVALID);
        return;
    }
    if (owner.platform == op->presser.platform && strcmp(owner.user_id, op->presser.user_id) == 0) {
        upvote__end(op, MSG_UPVOTE_OWN);
        return;
    }
    struct ledger *ledger = op->g->core->ledger;
    char key[64 + WALLET_ACCOUNT_MAX];
    snprintf(key, sizeof(key), "%s/%s", op->gid, op->voter);
    if (ledger == NULL ||
        state_get(ledger_store(ledger), GEN_NS_UPVOTE, key, upvote__checked, op) < 0)
        upvote__end(op, MSG_UPVOTE_FAILED);
}

void generate_upvote(struct generate *g, struct invocation *inv, const char *gid,
                     const char *button_ref)
{
    struct upvote_op *op = calloc(1, sizeof(*op));
    struct ledger *ledger = g->core->ledger;
    if (op == NULL || ledger == NULL) {
        free(op);
        reply_text(inv->reply, true, MSG_UPVOTE_FAILED);
        reply_finish(inv->reply);
        inv->reply = NULL;
        return;
    }
    op->g = g;
    op->reply = inv->reply;
    inv->reply = NULL;
    snprintf(op->gid, sizeof(op->gid), "%s", gid);
    snprintf(op->ref, sizeof(op->ref), "%s", button_ref);
    op->presser = *inv;
    memset(op->presser.opts, 0, sizeof(op->presser.opts));
    wallet_account(inv, op->voter, sizeof(op->voter));
    if (state_get(ledger_store(ledger), GEN_NS_IMAGE, gid, upvote__owner_loaded, op) < 0)
        upvote__end(op, MSG_UPVOTE_FAILED);
}

/* ---- preferences and conversations ---------------------------------------- */

void generate_conversation_reset(struct generate *g, const struct invocation *inv)
{
    char key[GEN_KEY_MAX];
    generate__conv_key(inv, key, sizeof(key));
    struct gen_conv *c = generate__conv(g, key, false);
    if (c != NULL)
        generate__conv_clear(c);
}

struct pref_op {
    void (*cb)(int rc, void *data);
    void *data;
};

static void pref__stored(int rc, const char *value, void *data)
{
    struct pref_op *op = data;
    (void)value;
    op->cb(rc, op->data);
    free(op);
}

int generate_preference_set(struct generate *g, const struct invocation *inv, const char *model,
                            void (*cb)(int rc, void *data), void *data)
{
    char wallet[WALLET_ACCOUNT_MAX];
    int rc = wallet_account(inv, wallet, sizeof(wallet));
    if (rc < 0)
        return rc;
    if (g->core->ledger == NULL)
        return HB_ECANCELED;
    struct gen_pref *p = g->prefs;
    while (p != NULL && strcmp(p->key, wallet) != 0)
        p = p->next;
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return HB_ENOMEM;
        snprintf(p->key, sizeof(p->key), "%s", wallet);
        p->next = g->prefs;
        g->prefs = p;
    }
    snprintf(p->model, sizeof(p->model), "%s", model);
    struct pref_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    rc = state_put(ledger_store(g->core->ledger), GEN_NS_PREF, wallet, model, pref__stored, op);
    if (rc < 0)
        free(op);
    return rc;
}

const char *generate_preference_cached(struct generate *g, const struct invocation *inv)
{
    char wallet[WALLET_ACCOUNT_MAX];
    if (wallet_account(inv, wallet, sizeof(wallet)) < 0)
        return "";
    for (struct gen_pref *p = g->prefs; p != NULL; p = p->next) {
        if (strcmp(p->key, wallet) == 0)
            return p->model;
    }
    return "";
}

/* ---- recovery ---------------------------------------------------------------- */

struct recover_op {
    struct generate *g;
    void (*cb)(int rc, size_t voided, void *data);
    void *data;
    size_t pending;
    size_t voided;
};

struct recover_void {
    struct recover_op *op;
    char wallet[WALLET_ACCOUNT_MAX];
    char job[LEDGER_ID_LEN_MAX];
    unsigned left;
    bool refunded;
};

int generate_notices_send(struct generate *g)
{
    const struct core_host_ops *ops = g->core->host_ops;
    if (ops == NULL || ops->notify == NULL)
        return 0;
    int told = 0;
    struct gen_notice **pp = &g->notices;
    while (*pp != NULL) {
        struct gen_notice *n = *pp;
        struct notify_target to;
        if (notify_target_from_account(&to, n->wallet) < 0 ||
            ops->notify(g->core->host, &to, MSG_GEN_INTERRUPTED) < 0) {
            /* No adapter for that platform now: the member hears it with
             * their next generation command. */
            pp = &n->next;
            continue;
        }
        log_info("generate.notice_sent", "wallet=%s", n->wallet);
        if (g->core->ledger != NULL)
            state_put(ledger_store(g->core->ledger), GEN_NS_NOTICE, n->wallet, NULL, NULL, NULL);
        *pp = n->next;
        free(n);
        told++;
    }
    return told;
}

static void recover__one_done(struct recover_op *op)
{
    if (--op->pending > 0)
        return;
    struct generate *g = op->g;
    /* Tell the members at once where an adapter of their platform runs;
     * the record stays for the others (and for a daemon whose adapters
     * start later: it calls generate_notices_send then). */
    generate_notices_send(g);
    if (op->cb != NULL)
        op->cb(0, op->voided, op->data);
    free(op);
    /* The recovery held the engine like a job: closing waits for it. */
    g->njobs--;
    generate__maybe_free(g);
}

static void recover__notice_add(struct generate *g, const char *wallet)
{
    for (struct gen_notice *n = g->notices; n != NULL; n = n->next) {
        if (strcmp(n->wallet, wallet) == 0)
            return;
    }
    struct gen_notice *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return;
    snprintf(n->wallet, sizeof(n->wallet), "%s", wallet);
    n->next = g->notices;
    g->notices = n;
}

static void recover__voided(int rc, const struct ledger_result *res, void *data)
{
    struct recover_void *rv = data;
    struct recover_op *op = rv->op;
    struct generate *g = op->g;
    /* Voided now, or released by its timeout meanwhile: either way it was
     * refunded by the restart. Posted or already voided: nothing to say. */
    if (rc == 0 || (rc == HB_ESTATE && res->reason != NULL && strcmp(res->reason, "expired") == 0))
        rv->refunded = true;
    if (--rv->left > 0)
        return;
    struct ledger *ledger = g->core->ledger;
    if (rv->refunded) {
        op->voided++;
        recover__notice_add(g, rv->wallet);
        if (ledger != NULL)
            state_put(ledger_store(ledger), GEN_NS_NOTICE, rv->wallet, "1", NULL, NULL);
        log_info("generate.recovered", "job=%s action=voided", rv->job);
    }
    if (ledger != NULL)
        state_put(ledger_store(ledger), GEN_NS_JOB, rv->job, NULL, NULL, NULL);
    free(rv);
    recover__one_done(op);
}

static void recover__jobs(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct recover_op *op = data;
    struct generate *g = op->g;
    struct ledger *ledger = g->core->ledger;
    for (size_t i = 0; rc == 0 && ledger != NULL && i < n; i++) {
        struct recover_void *rv = calloc(1, sizeof(*rv));
        if (rv == NULL)
            break;
        rv->op = op;
        unsigned nres = 0;
        char wallet[WALLET_ACCOUNT_MAX] = "";
        if (sscanf(e[i].value, "%159s %u", wallet, &nres) != 2)
            nres = 0;
        snprintf(rv->wallet, sizeof(rv->wallet), "%s", wallet);
        snprintf(rv->job, sizeof(rv->job), "%s", e[i].key);
        if (nres == 0) {
            state_put(ledger_store(ledger), GEN_NS_JOB, rv->job, NULL, NULL, NULL);
            free(rv);
            continue;
        }
        rv->left = nres;
        op->pending++;
        for (unsigned r = 1; r <= nres; r++) {
            char vid[LEDGER_ID_LEN_MAX + 16], pid[LEDGER_ID_LEN_MAX + 16];
            snprintf(vid, sizeof(vid), "%s:void%u", rv->job, r);
            snprintf(pid, sizeof(pid), "%s:r%u", rv->job, r);
            if (ledger_transfer_void(ledger, vid, pid, recover__voided, rv) < 0) {
                struct ledger_result none;
                memset(&none, 0, sizeof(none));
                recover__voided(HB_ECANCELED, &none, rv);
            }
        }
    }
    recover__one_done(op);
}

static void recover__notices(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct recover_op *op = data;
    for (size_t i = 0; rc == 0 && i < n; i++)
        recover__notice_add(op->g, e[i].key);
    recover__one_done(op);
}

int generate_recover(struct generate *g, void (*cb)(int rc, size_t voided, void *data),
                     void *data)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL)
        return HB_ECANCELED;
    struct recover_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->g = g;
    op->cb = cb;
    op->data = data;
    op->pending = 2;
    int rc = state_list(ledger_store(ledger), GEN_NS_NOTICE, "", 1000, recover__notices, op);
    if (rc < 0) {
        free(op);
        return rc;
    }
    g->njobs++;
    rc = state_list(ledger_store(ledger), GEN_NS_JOB, "", 1000, recover__jobs, op);
    if (rc < 0)
        recover__one_done(op);
    return 0;
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
        switch (job->state) {
        case JOB_QUEUED:
            job__queue_remove(job);
            job__fail(job);
            break;
        case JOB_BACKOFF:
            uv_timer_stop(&job->timer);
            job__unref(job); /* the timer's reference */
            job__fail(job);
            break;
        case JOB_RUNNING: {
            struct provider_call *call = job->call;
            const struct catalog_model *m = job->model;
            job->state = JOB_SETTLE;
            job__fail(job);
            if (call != NULL)
                m->provider->provider->ops->cancel(call);
            break;
        }
        default:
            break; /* admission or settlement under way finishes on its own */
        }
    }
    g->njobs--;
    generate__maybe_free(g);
}

void generate_stats_get(const struct generate *g, struct generate_stats *out)
{
    *out = g->stats;
    out->queued = g->nqueued;
    out->running = g->nrunning;
    out->tokens_today = g->tokens_today;
}

uint64_t generate_filter_hits(const struct generate *g, const char *name)
{
    for (const struct gen_hits *h = g->hits; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0)
            return h->hits;
    }
    return 0;
}

/* ---- per-group model switches ----------------------------------------------- */

bool generate_scope_off_has(const char *off, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = off != NULL ? strstr(off, name) : NULL; p != NULL; p = strstr(p + 1, name)) {
        if (p[-1] == '\n' && p[n] == '\n')
            return true;
    }
    return false;
}

struct scope_off_op {
    void (*cb)(char *off, void *data);
    void *data;
};

static void generate__scope_off_listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct scope_off_op *op = data;
    struct text_buf off = {0};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *name = strchr(e[i].key, '/');
        if (name != NULL && strcmp(e[i].value, "off") == 0)
            text_buf_add(&off, "\n%s", name + 1);
    }
    if (off.len > 0)
        text_buf_add(&off, "\n");
    op->cb(off.buf, op->data);
    free(op);
}

int generate_scope_off_load(struct core *core, const struct invocation *inv,
                            void (*cb)(char *off, void *data), void *data)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0')
        return HB_ENOTFOUND;
    if (core->ledger == NULL)
        return HB_ECANCELED;
    struct scope_off_op *op = malloc(sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->cb = cb;
    op->data = data;
    char prefix[COMMAND_ID_MAX + 24];
    snprintf(prefix, sizeof(prefix), "%s:%s/", command_platform_name(inv->platform), inv->scope_id);
    int rc = state_list(ledger_store(core->ledger), GENERATE_NS_SCOPE_MODEL, prefix, 200,
                        generate__scope_off_listed, op);
    if (rc < 0)
        free(op);
    return rc;
}

const char *generate_refusal_name(enum generate_refusal why)
{
    switch (why) {
    case GEN_REFUSE_FUNDS: return "credits";
    case GEN_REFUSE_FILTER: return "filter";
    case GEN_REFUSE_USER_LIMIT: return "member_limit";
    case GEN_REFUSE_GROUP_LIMIT: return "group_limit";
    case GEN_REFUSE_TOKEN_CAP: return "token_cap";
    case GEN_REFUSE_BUSY: return "busy";
    case GEN_REFUSE_INPUT: return "input";
    case GEN_REFUSE_MODEL: return "model";
    case GEN_REFUSE_OTHER: return "other";
    }
    return "other";
}
