/* Deciding a held job another daemon holds (several daemons on one ledger).
 *
 * A held job lives in the memory of the daemon whose member asked, but the
 * admin's command or button press reaches whichever daemon serves the
 * admin's chat (the Telegram poller, a Discord shard's daemon). That daemon
 * finds the job's record in the store (generate_held.c: every held job has
 * one, under its job id; the approval id is a digest of that) with a read
 * beside the writer, then in one write reads that record again, checks
 * the admin may decide it, and leaves the decision in GEN_NS_ASKED (the
 * search of every record is kept out of the write, which on PostgreSQL
 * holds the lock every daemon's writes take). The daemon holding the job takes the decision at its
 * next heartbeat (generate_approvals_asked) and applies it as its own: the member hears the outcome
 * where they asked, the audit trail and the metric count it once. A decision no daemon takes (the
 * job timed out meanwhile, or its daemon died and recovery voided it) is dropped after
 * GEN_ASKED_KEEP_MS. */
#include "core/generate_internal.h"

#include "core/core.h"
#include "core/ledger.h"
#include "core/messages.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "storage/store.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_ASKED_KEEP_MS (10 * 60 * 1000) /* a decision nobody took is dropped after this */
#define GEN_ASKED_PAGE 1000                /* decisions looked at per heartbeat */

/* ---- the deciding daemon -------------------------------------------------- */

enum asked_found { ASKED_NONE, ASKED_DONE, ASKED_DECIDED, ASKED_NOT_YOURS, ASKED_TIMED_OUT };

struct asked_job {
    struct store_job job;
    struct generate *g;
    struct approval_rules rules; /* as in force when asked */
    struct invocation by;        /* the admin (identity only) */
    char id[APPROVAL_ID_LEN + 1];
    enum approval_outcome outcome;
    char actor[GEN_ACTOR_MAX];
    char *text; /* the reason or the new prompt; may be NULL */
    int64_t now;
    enum asked_found found;
    char decided[160]; /* ASKED_DECIDED: "<outcome> <actor>" as stored */
    char key[96];      /* the held job's record, as the first step found it; "" none */
    generate_approval_cb cb;
    void *data;
};

/* Who asked for the held job whose record's JSON is o: what deciding it
 * depends on (generate__may_decide). */
static void remote__who(const cJSON *o, struct invocation *who)
{
    memset(who, 0, sizeof(*who));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "platform");
    who->platform = cJSON_IsNumber(v) ? (enum command_platform)v->valueint : 0;
    v = cJSON_GetObjectItemCaseSensitive(o, "scope");
    who->scope = cJSON_IsNumber(v) ? (enum command_scope)v->valueint : 0;
    v = cJSON_GetObjectItemCaseSensitive(o, "scope_id");
    snprintf(who->scope_id, sizeof(who->scope_id), "%s", cJSON_IsString(v) ? v->valuestring : "");
}

/* One record of GEN_NS_JOB: the held job of approval id j->id? Its asker
 * goes to *who. */
static bool asked__record_is(const struct asked_job *j, const char *key, const char *value,
                             struct invocation *who, int64_t *until)
{
    const char *json = generate__held_json(value);
    if (json == NULL)
        return false;
    char id[APPROVAL_ID_LEN + 1];
    generate__appr_id(key, id);
    if (strcmp(id, j->id) != 0)
        return false;
    cJSON *o = cJSON_Parse(json);
    remote__who(o, who);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "until");
    *until = cJSON_IsNumber(u) ? (int64_t)u->valuedouble : 0;
    cJSON_Delete(o);
    return true;
}

/* The first step, a read beside the writer (no write lock held across
 * the daemons): which record is the held job of id j->id. */
static int asked__record_seen(const char *key, const char *value, void *data)
{
    struct asked_job *j = data;
    struct invocation who;
    int64_t until;
    if (!asked__record_is(j, key, value, &who, &until) || strlen(key) >= sizeof(j->key))
        return 0;
    snprintf(j->key, sizeof(j->key), "%s", key);
    return 1; /* stop */
}

static int asked__find_run(struct store_txn *txn, struct store_job *job)
{
    struct asked_job *j = container_of(job, struct asked_job, job);
    int rc = store_txn_state_each(txn, GEN_NS_JOB, "", asked__record_seen, j);
    return rc < 0 ? rc : 0;
}

/* A decision row left for the holder and not yet stale: true, with
 * j->decided set to "<outcome> <actor>" as a decided row gives it. */
static bool asked__pending(struct asked_job *j, const char *value)
{
    cJSON *o = cJSON_Parse(value);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
    const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(o, "outcome");
    const cJSON *actor = cJSON_GetObjectItemCaseSensitive(o, "actor");
    bool pending = cJSON_IsNumber(at) && cJSON_IsNumber(outcome) && cJSON_IsString(actor) &&
                   j->now - (int64_t)at->valuedouble <= GEN_ASKED_KEEP_MS;
    if (pending)
        snprintf(j->decided, sizeof(j->decided), "%d %s", outcome->valueint, actor->valuestring);
    cJSON_Delete(o);
    return pending;
}

static int asked__run(struct store_txn *txn, struct store_job *job)
{
    struct asked_job *j = container_of(job, struct asked_job, job);
    char *value = NULL;
    int rc = store_txn_state_get(txn, GEN_NS_DECIDED, j->id, &value);
    if (rc == 0 && value != NULL) {
        long long at = 0;
        int used = 0;
        if (sscanf(value, "%lld %n", &at, &used) == 1)
            snprintf(j->decided, sizeof(j->decided), "%s", value + used);
        free(value);
        j->found = ASKED_DECIDED;
        return HB_EEXISTS; /* nothing written */
    }
    free(value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    /* A decision another admin left that the holder has not taken yet:
     * the first one stands (as on one daemon), the later one is told. */
    value = NULL;
    rc = store_txn_state_get(txn, GEN_NS_ASKED, j->id, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    if (rc == 0 && value != NULL && asked__pending(j, value)) {
        free(value);
        j->found = ASKED_DECIDED;
        return HB_EEXISTS;
    }
    free(value);
    /* The record the read found, read again here: still held? */
    if (j->key[0] == '\0')
        return HB_EEXISTS; /* ASKED_NONE */
    value = NULL;
    rc = store_txn_state_get(txn, GEN_NS_JOB, j->key, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    struct invocation who;
    int64_t until = 0;
    bool held = rc == 0 && value != NULL && asked__record_is(j, j->key, value, &who, &until);
    free(value);
    if (!held)
        return HB_EEXISTS; /* ASKED_NONE: decided or gone meanwhile */
    if (until > 0 && until <= j->now) {
        j->found = ASKED_TIMED_OUT; /* its holder times it out at its next look */
        return HB_EEXISTS;
    }
    if (!generate__may_decide(&j->rules, &j->by, &who)) {
        j->found = ASKED_NOT_YOURS;
        return HB_EEXISTS;
    }
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL && cJSON_AddNumberToObject(o, "at", (double)j->now) != NULL &&
        cJSON_AddNumberToObject(o, "outcome", (double)j->outcome) != NULL &&
        cJSON_AddStringToObject(o, "actor", j->actor) != NULL &&
        (j->text == NULL || cJSON_AddStringToObject(o, "text", j->text) != NULL))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        return HB_ENOMEM;
    rc = store_txn_state_put(txn, GEN_NS_ASKED, j->id, text, j->now);
    free(text);
    if (rc == 0)
        j->found = ASKED_DONE;
    return rc;
}

static void asked__done(struct store_job *job, int rc)
{
    struct asked_job *j = container_of(job, struct asked_job, job);
    struct generate *g = j->g;
    char msg[512];
    if (rc == HB_EEXISTS)
        rc = 0;
    if (rc < 0) {
        log_warn("approval.forward_failed", "id=%s error=%s", j->id, hb_strerror(rc));
        snprintf(msg, sizeof(msg), MSG_CREDITS_FAILED, hb_strerror(rc));
    } else if (j->found == ASKED_DONE) {
        log_info("approval.forwarded", "id=%s actor=%s outcome=%s", j->id, j->actor,
                 approval_outcome_name(j->outcome));
        snprintf(msg, sizeof(msg), MSG_APPR_FORWARDED, j->id, approval_outcome_name(j->outcome));
    } else if (j->found == ASKED_TIMED_OUT) {
        snprintf(msg, sizeof(msg), MSG_APPR_ALREADY, j->id,
                 approval_outcome_name(APPROVAL_TIMED_OUT), "timeout");
        rc = HB_ESTATE;
    } else if (j->found == ASKED_DECIDED) {
        int outcome = 0, used = 0;
        if (sscanf(j->decided, "%d %n", &outcome, &used) != 1 || outcome < 0 ||
            outcome > APPROVAL_TIMED_OUT)
            outcome = APPROVAL_TIMED_OUT;
        snprintf(msg, sizeof(msg), MSG_APPR_ALREADY, j->id,
                 approval_outcome_name((enum approval_outcome)outcome), j->decided + used);
        rc = HB_ESTATE;
    } else if (j->found == ASKED_NOT_YOURS) {
        log_info("approval.refused", "id=%s actor=%s:%s", j->id,
                 command_platform_name(j->by.platform), j->by.user_id);
        snprintf(msg, sizeof(msg), "%s", MSG_APPR_NOT_YOURS);
        rc = HB_EPERM;
    } else {
        snprintf(msg, sizeof(msg), MSG_APPR_NOT_FOUND, j->id);
        rc = HB_ENOTFOUND;
    }
    if (j->cb != NULL)
        j->cb(rc, msg, j->data);
    free(j->text);
    free(j);
    g->njobs--;
    generate__maybe_free(g);
}

/* The record found (or not): the decision is checked and left in one
 * write. */
static void asked__found(struct store_job *job, int rc)
{
    struct asked_job *j = container_of(job, struct asked_job, job);
    struct ledger *ledger = j->g->core->ledger;
    if (rc == 0 && ledger != NULL) {
        j->job = (struct store_job){.run = asked__run, .done = asked__done};
        rc = store_submit(ledger_store(ledger), &j->job);
        if (rc == 0)
            return;
    }
    asked__done(&j->job, rc < 0 ? rc : HB_ECANCELED);
}

int generate_approval_forward(struct generate *g, const struct invocation *by, const char *id,
                              enum approval_outcome outcome, const char *text,
                              generate_approval_cb cb, void *data)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL || g->core->cluster == NULL)
        return HB_ENOTFOUND; /* alone on its ledger: no other daemon holds jobs */
    if (id == NULL || strlen(id) != APPROVAL_ID_LEN)
        return HB_ENOTFOUND;
    struct asked_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return HB_ENOMEM;
    j->job = (struct store_job){.run = asked__find_run, .done = asked__found};
    j->g = g;
    j->rules = g->approval;
    j->by = *by;
    j->by.reply = NULL; /* identity only: nothing of it answers */
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->outcome = outcome;
    generate__actor(by, j->actor, sizeof(j->actor));
    j->text = text != NULL ? strdup(text) : NULL;
    j->now = generate__now(g);
    j->cb = cb;
    j->data = data;
    if (text != NULL && j->text == NULL) {
        free(j);
        return HB_ENOMEM;
    }
    int rc = store_submit_read(ledger_store(ledger), &j->job);
    if (rc < 0) {
        free(j->text);
        free(j);
        return rc;
    }
    g->njobs++; /* the engine stays until it answers */
    return 0;
}

/* ---- the daemon holding the job ------------------------------------------- */

struct taken_job {
    struct store_job job;
    struct generate *g;
    char id[APPROVAL_ID_LEN + 1];
    char *value; /* the decision taken, or NULL */
};

/* The decision is only read here: it is removed once applied (or once
 * the job is no longer held here), so a daemon stopping, or a commit whose
 * answer was lost, between the read and the apply leaves it in place for
 * the holder's next heartbeat or its next start. Read twice, it is
 * applied once: the first apply takes the job out of the held ones. */
static int taken__run(struct store_txn *txn, struct store_job *job)
{
    struct taken_job *t = container_of(job, struct taken_job, job);
    int rc = store_txn_state_get(txn, GEN_NS_ASKED, t->id, &t->value);
    if (rc == HB_ENOTFOUND)
        return HB_EEXISTS; /* taken already */
    return rc;
}

static void taken__done(struct store_job *job, int rc)
{
    struct taken_job *t = container_of(job, struct taken_job, job);
    struct generate *g = t->g;
    /* Closing, or fenced (another daemon may be taking the job over): the
     * decision stays for the next heartbeat, here or there. */
    bool apply = rc == 0 && t->value != NULL && !g->closing && !generate__fenced(g);
    struct job *held = apply ? generate__held_find(g, t->id) : NULL;
    if (apply && g->core->ledger != NULL)
        state_put(ledger_store(g->core->ledger), GEN_NS_ASKED, t->id, NULL, NULL, NULL);
    if (apply && held == NULL)
        log_info("approval.asked_dropped", "id=%s reason=no longer held here", t->id);
    if (held != NULL) {
        cJSON *o = cJSON_Parse(t->value);
        const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(o, "outcome");
        const cJSON *actor = cJSON_GetObjectItemCaseSensitive(o, "actor");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (cJSON_IsNumber(outcome) && outcome->valueint >= APPROVAL_APPROVED &&
            outcome->valueint <= APPROVAL_REJECTED && cJSON_IsString(actor))
            job__decided(held, (enum approval_outcome)outcome->valueint, actor->valuestring,
                         cJSON_IsString(text) ? text->valuestring : NULL);
        else
            log_warn("approval.asked_unreadable", "id=%s", t->id);
        cJSON_Delete(o);
    } else if (rc < 0 && rc != HB_EEXISTS) {
        log_warn("approval.asked_not_taken", "id=%s error=%s", t->id, hb_strerror(rc));
    }
    free(t->value);
    free(t);
    g->njobs--;
    generate__maybe_free(g);
}

static void asked__listed(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct generate *g = data;
    struct store *store = g->core->ledger != NULL ? ledger_store(g->core->ledger) : NULL;
    int64_t now = generate__now(g);
    for (size_t i = 0; rc == 0 && store != NULL && !g->closing && i < n; i++) {
        if (generate__held_find(g, e[i].key) != NULL) {
            struct taken_job *t = calloc(1, sizeof(*t));
            if (t == NULL)
                break;
            t->job = (struct store_job){.run = taken__run, .done = taken__done};
            t->g = g;
            snprintf(t->id, sizeof(t->id), "%s", e[i].key);
            if (store_submit(store, &t->job) < 0) {
                free(t);
                continue;
            }
            g->njobs++;
            continue;
        }
        /* Not held here: another daemon's, unless nobody took it for long. */
        cJSON *o = cJSON_Parse(e[i].value);
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
        /* Only as listed: a decision written over it since stays. */
        if (!cJSON_IsNumber(at) || now - (int64_t)at->valuedouble > GEN_ASKED_KEEP_MS)
            state_remove_if(store, GEN_NS_ASKED, e[i].key, e[i].value, NULL, NULL);
        cJSON_Delete(o);
    }
    if (rc < 0)
        log_warn("approval.asked_not_read", "error=%s", hb_strerror(rc));
    g->asked_listing = false;
    g->njobs--;
    generate__maybe_free(g);
}

void generate_approvals_asked(struct generate *g)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL || g->closing || g->asked_listing)
        return;
    g->asked_listing = true;
    g->njobs++;
    if (state_list(ledger_store(ledger), GEN_NS_ASKED, "", GEN_ASKED_PAGE, asked__listed, g) < 0) {
        g->asked_listing = false;
        g->njobs--;
    }
}

/* ---- every daemon's held jobs ---------------------------------------------- */

#define GEN_LISTED_MAX 200 /* held jobs a shared listing shows */

struct listed_item {
    char id[APPROVAL_ID_LEN + 1];
    char wallet[COMMAND_ID_MAX * 2];
    char model[64];
    char why[96];
    int64_t reserved;
    int64_t held_at;
};

struct listed_job {
    struct store_job job;
    struct generate *g;
    int64_t now;
    bool mine_only;              /* only the jobs `by` may decide */
    struct approval_rules rules; /* as in force when asked */
    struct invocation by;        /* the admin (identity only) */
    struct listed_item items[GEN_LISTED_MAX];
    size_t n;
    size_t more; /* held jobs past GEN_LISTED_MAX */
    generate_approval_cb cb;
    void *data;
};

static int listed__older(const void *a, const void *b)
{
    const struct listed_item *x = a, *y = b;
    if (x->held_at != y->held_at)
        return x->held_at < y->held_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Where a held job goes: a free slot, or (the list full) the place of the
 * newest when this one is older; NULL when it is not shown. */
static struct listed_item *listed__slot(struct listed_job *l, const struct listed_item *it)
{
    if (l->n < GEN_LISTED_MAX)
        return &l->items[l->n++];
    l->more++;
    struct listed_item *newest = &l->items[0];
    for (size_t i = 1; i < l->n; i++)
        if (listed__older(newest, &l->items[i]) < 0)
            newest = &l->items[i];
    return listed__older(it, newest) < 0 ? newest : NULL;
}

static int listed__seen(const char *key, const char *value, void *data)
{
    struct listed_job *l = data;
    const char *json = generate__held_json(value);
    const char *space = strchr(value, ' ');
    if (json == NULL || space == NULL)
        return 0;
    struct listed_item item;
    struct listed_item *it = &item;
    memset(it, 0, sizeof(*it));
    generate__appr_id(key, it->id);
    snprintf(it->wallet, sizeof(it->wallet), "%.*s", (int)(space - value), value);
    cJSON *o = cJSON_Parse(json);
    if (l->mine_only) {
        struct invocation who;
        remote__who(o, &who);
        if (!generate__may_decide(&l->rules, &l->by, &who)) {
            cJSON_Delete(o);
            return 0; /* another server's or group's */
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "model");
    snprintf(it->model, sizeof(it->model), "%s", cJSON_IsString(v) ? v->valuestring : "?");
    v = cJSON_GetObjectItemCaseSensitive(o, "why");
    snprintf(it->why, sizeof(it->why), "%s", cJSON_IsString(v) ? v->valuestring : "");
    v = cJSON_GetObjectItemCaseSensitive(o, "reserved");
    it->reserved = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    v = cJSON_GetObjectItemCaseSensitive(o, "held_at");
    it->held_at = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    cJSON_Delete(o);
    struct listed_item *slot = listed__slot(l, it);
    if (slot != NULL)
        *slot = *it;
    return 0;
}

static int listed__run(struct store_txn *txn, struct store_job *job)
{
    struct listed_job *l = container_of(job, struct listed_job, job);
    return store_txn_state_each(txn, GEN_NS_JOB, "", listed__seen, l);
}

static void listed__done(struct store_job *job, int rc)
{
    struct listed_job *l = container_of(job, struct listed_job, job);
    struct generate *g = l->g;
    size_t cap = 64 + (l->n + 1) * 512; /* a line is at most about 400 bytes */
    char *buf = malloc(cap);
    if (buf == NULL) {
        l->cb(HB_ENOMEM, MSG_COMMON_OUT_OF_MEMORY, l->data);
    } else if (rc < 0) {
        snprintf(buf, cap, MSG_CREDITS_FAILED, hb_strerror(rc));
        l->cb(rc, buf, l->data);
    } else {
        qsort(l->items, l->n, sizeof(l->items[0]), listed__older);
        size_t off =
            (size_t)snprintf(buf, cap, "%s", l->n > 0 ? MSG_APPR_LIST_HEAD : MSG_APPR_EMPTY);
        for (size_t i = 0; i < l->n && off < cap; i++) {
            const struct listed_item *it = &l->items[i];
            off += (size_t)snprintf(buf + off, cap - off, MSG_APPR_LIST_ITEM, it->id, it->wallet,
                                    it->model, (long long)it->reserved, it->why,
                                    (long long)((l->now - it->held_at) / 60000));
        }
        if (l->more > 0 && off < cap)
            snprintf(buf + off, cap - off, MSG_APPR_LIST_MORE, l->more);
        l->cb(0, buf, l->data);
    }
    free(buf);
    free(l);
    g->njobs--;
    generate__maybe_free(g);
}

int generate_approvals_list_shared(struct generate *g, const struct invocation *by,
                                   generate_approval_cb cb, void *data)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL || g->core->cluster == NULL)
        return HB_ENOTFOUND;
    struct listed_job *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return HB_ENOMEM;
    l->job = (struct store_job){.run = listed__run, .done = listed__done};
    l->g = g;
    l->now = generate__now(g);
    if (by != NULL) {
        l->mine_only = true;
        l->rules = g->approval;
        l->by = *by;
        l->by.reply = NULL; /* identity only */
    }
    l->cb = cb;
    l->data = data;
    int rc = store_submit_read(ledger_store(ledger), &l->job);
    if (rc < 0) {
        free(l);
        return rc;
    }
    g->njobs++;
    return 0;
}
