/* Contests per server or group (core/contest.h). */
#include "core/contest.h"

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "core/contest_schedule.h"
#include "core/core.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/notify.h"
#include "core/contest_images.h"
#include "core/standing.h"
#include "core/state.h"
#include "core/votes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTEST_LOAD_MAX 1000 /* groups read at start */
#define CONTEST_VALUE_MAX (4 * COMMAND_ID_MAX + CONTEST_WINNERS_MAX * 3 * STORE_ID_SIZE)
#define CONTEST_TEXT_MAX 2048

/* ---- the stored form -------------------------------------------------------------
 * "running <id> <end> <prize> <platform> <channel or ->" while it runs;
 * "ended ..." (the same fields) once its winners are fixed, followed by one
 * line per payment: "<id> <account> <creator> <upvotes> <amount>". */

static void contest__value(const struct contest *c, bool ended, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %" PRId64 " %" PRId64 " %" PRId64 " %d %s", ended ? "ended" : "running",
             c->id, c->end_ms, c->prize, (int)c->platform,
             c->channel_id[0] != '\0' ? c->channel_id : "-");
}

/* Parse value into c (platform and channel; scope_id is the key's) and, for
 * an ended contest, its payments. Returns 0 (running), 1 (ended) or
 * HB_EINVAL. */
static int contest__parse(const char *value, struct contest *c, struct contest_payment *pay,
                          size_t *npay)
{
    char state[16], channel[COMMAND_ID_MAX];
    int platform = 0, used = 0;
    if (sscanf(value, "%15s %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %95s%n", state, &c->id,
               &c->end_ms, &c->prize, &platform, channel, &used) != 6)
        return HB_EINVAL;
    c->platform = (enum command_platform)platform;
    snprintf(c->channel_id, sizeof(c->channel_id), "%s", strcmp(channel, "-") == 0 ? "" : channel);
    if (strcmp(state, "running") == 0)
        return 0;
    if (strcmp(state, "ended") != 0)
        return HB_EINVAL;
    size_t n = 0;
    const char *p = value + used;
    while (pay != NULL && *p == '\n' && n < CONTEST_WINNERS_MAX) {
        struct contest_payment *x = &pay[n];
        memset(x, 0, sizeof(*x));
        int k = 0;
        if (sscanf(p + 1, "%127s %127s %127s %" SCNd64 " %" SCNd64 "%n", x->id, x->account,
                   x->creator, &x->upvotes, &x->amount, &k) != 5)
            return HB_EINVAL;
        n++;
        p += 1 + k;
    }
    if (npay != NULL)
        *npay = n;
    return 1;
}

/* ---- the cache -------------------------------------------------------------- */

struct contest_slot {
    struct contest c;
    bool ending; /* its end is under way in this daemon */
    bool seen;   /* in the store at the last read */
};

struct contests {
    struct core *core;
    struct contest_rules rules;
    struct contest_slot *slots;
    size_t n, cap;
    size_t busy;
    struct contest_schedule *schedule; /* [contest] schedule; NULL: none */
    unsigned loading;                  /* contests_load reads under way */
    bool again; /* contests_load_after asked meanwhile: read once more after them */
};

struct contests *contests_new(struct core *core)
{
    struct contests *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return NULL;
    cs->core = core;
    cs->rules = (struct contest_rules){.winners = 3, .split = {50, 30, 20}};
    return cs;
}

void contests_free(struct contests *cs)
{
    if (cs == NULL)
        return;
    free(cs->slots);
    free(cs->schedule);
    free(cs);
}

int contests_schedule(struct contests *cs, const struct contest_schedule *s)
{
    if (s == NULL || s->n == 0) {
        free(cs->schedule);
        cs->schedule = NULL;
        return 0;
    }
    if (cs->schedule == NULL) {
        cs->schedule = malloc(sizeof(*cs->schedule));
        if (cs->schedule == NULL)
            return HB_ENOMEM;
    }
    *cs->schedule = *s;
    return 0;
}

void contests_configure(struct contests *cs, const struct contest_rules *rules)
{
    cs->rules = *rules;
}

const struct contest_rules *contests_rules(const struct contests *cs)
{
    return &cs->rules;
}

size_t contests_busy(const struct contests *cs)
{
    return cs->busy;
}

static struct contest_slot *contests__slot(const struct contests *cs,
                                           enum command_platform platform, const char *scope_id)
{
    for (size_t i = 0; i < cs->n; i++) {
        if (cs->slots[i].c.platform == platform && strcmp(cs->slots[i].c.scope_id, scope_id) == 0)
            return &cs->slots[i];
    }
    return NULL;
}

const struct contest *contests_find(const struct contests *cs, enum command_platform platform,
                                    const char *scope_id)
{
    if (cs == NULL || scope_id == NULL)
        return NULL;
    struct contest_slot *s = contests__slot(cs, platform, scope_id);
    return s != NULL ? &s->c : NULL;
}

static int contests__put(struct contests *cs, const struct contest *c)
{
    struct contest_slot *s = contests__slot(cs, c->platform, c->scope_id);
    if (s == NULL) {
        if (cs->n == cs->cap) {
            struct contest_slot *grown = hb_grow(cs->slots, &cs->cap, 8, sizeof(*grown));
            if (grown == NULL)
                return HB_ENOMEM;
            cs->slots = grown;
        }
        s = &cs->slots[cs->n++];
        memset(s, 0, sizeof(*s));
    } else if (s->c.id != c->id) {
        memset(s, 0, sizeof(*s));
    }
    s->c = *c; /* the same contest read again keeps its ending under way */
    s->seen = true;
    return 0;
}

static void contests__forget(struct contests *cs, enum command_platform platform,
                             const char *scope_id, int64_t id)
{
    struct contest_slot *s = contests__slot(cs, platform, scope_id);
    if (s == NULL || s->c.id != id)
        return;
    *s = cs->slots[--cs->n];
}

bool contests_vote_period(const struct contests *cs, const char *scope, int64_t now_ms, char *buf,
                          size_t cap)
{
    if (cs == NULL || scope == NULL)
        return false;
    for (size_t i = 0; i < cs->n; i++) {
        const struct contest *c = &cs->slots[i].c;
        char s[STORE_ID_SIZE];
        if (now_ms >= c->id && now_ms < c->end_ms && contest_scope(c, s, sizeof(s)) == 0 &&
            strcmp(s, scope) == 0)
            return contest_period(c, buf, cap) == 0;
    }
    return false;
}

int64_t contests_vote_weight(const struct contests *cs, const struct invocation *inv)
{
    int64_t w = 1;
    if (cs == NULL || inv == NULL)
        return w;
    for (size_t i = 0; inv->platform == COMMAND_PLATFORM_DISCORD && i < inv->nroles; i++) {
        for (size_t k = 0; k < cs->rules.nweights; k++) {
            if (inv->roles[i] == cs->rules.weights[k].role && cs->rules.weights[k].weight > w)
                w = cs->rules.weights[k].weight;
        }
    }
    if (cs->rules.weight_holders) {
        int64_t held = holders_weight(cs->core->holders, inv);
        if (held > w)
            w = held;
    }
    return w;
}

/* ---- loading ---------------------------------------------------------------- */

struct contests_load_op {
    struct contests *cs;
    contests_cb cb;
    void *data;
};

/* "<platform>:<group>" key: the group is what follows the first ':'. */
static void contests__loaded(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct contests_load_op *op = data;
    struct contests *cs = op->cs;
    for (size_t i = 0; rc == 0 && i < cs->n; i++)
        cs->slots[i].seen = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct contest c;
        memset(&c, 0, sizeof(c));
        const char *colon = strchr(e[i].key, ':');
        if (colon == NULL || contest__parse(e[i].value, &c, NULL, NULL) < 0) {
            log_warn("contest.unreadable", "group=%s", e[i].key);
            continue;
        }
        snprintf(c.scope_id, sizeof(c.scope_id), "%s", colon + 1);
        if (contests__put(op->cs, &c) < 0)
            rc = HB_ENOMEM;
    }
    /* Stopped or ended by another daemon on the same store: forgotten. */
    for (size_t i = 0; rc == 0 && i < cs->n;) {
        if (!cs->slots[i].seen && !cs->slots[i].ending)
            cs->slots[i] = cs->slots[--cs->n];
        else
            i++;
    }
    if (rc == 0)
        contests_tick(cs);
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
    if (--cs->loading == 0 && cs->again) {
        cs->again = false;
        rc = contests_load(cs, NULL, NULL);
        if (rc < 0)
            log_warn("contest.load_failed", "error=%s", hb_strerror(rc));
    }
}

int contests_load(struct contests *cs, contests_cb cb, void *data)
{
    if (cs->core->ledger == NULL)
        return HB_ECANCELED;
    struct contests_load_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct contests_load_op){.cs = cs, .cb = cb, .data = data};
    int rc = state_list(ledger_store(cs->core->ledger), CONTEST_NS, "", CONTEST_LOAD_MAX,
                        contests__loaded, op);
    if (rc < 0)
        free(op);
    else
        cs->loading++;
    return rc;
}

int contests_load_after(struct contests *cs)
{
    if (cs->loading > 0) {
        cs->again = true; /* one under way may have begun before the change */
        return 0;
    }
    return contests_load(cs, NULL, NULL);
}

/* ---- start and stop ------------------------------------------------------------ */

enum contest_change {
    CONTEST_START,
    CONTEST_STOP,
    CONTEST_FREEZE,
    CONTEST_FORGET,
    CONTEST_SCHEDULE /* a scheduled window's contest, once (core/contest_schedule.h) */
};

/* The winners' identities as the links table has them, for the payout. */
struct contest_links {
    struct contest_payment *pay;
    size_t n;
};

static int contest__link_row(const char *identity, const char *wallet, int64_t linked_at,
                             void *data)
{
    struct contest_links *l = data;
    (void)linked_at;
    for (size_t i = 0; i < l->n; i++) {
        struct contest_payment *p = &l->pay[i];
        if (strcmp(p->account, identity) == 0 && strlen(wallet) < sizeof(p->account))
            memcpy(p->account, wallet, strlen(wallet) + 1);
    }
    return 0;
}

/* One store job reading the group's row and changing it on a condition,
 * so two daemons sharing the store never both start, or both fix the
 * winners of, one contest. */
struct contest_job {
    struct store_job job;
    struct contests *cs;
    enum contest_change what;
    struct contest c;
    char key[STORE_ID_SIZE];
    contests_cb cb;
    void *data;
    /* CONTEST_FREEZE */
    char period[CONTEST_PERIOD_MAX];
    char prizes[STORE_ID_SIZE];
    struct contest_rules rules;
    struct store_vote rows[VOTES_TOP_MAX];
    struct contest_payment pay[CONTEST_WINNERS_MAX];
    size_t npay;
    size_t opened; /* winners' wallets opened for the payout */
    int64_t pool;
    bool froze; /* this job fixed the winners (else it read them) */
    int64_t now_ms;
};

static int contest__freeze(struct store_txn *txn, struct contest_job *op, const char *old)
{
    struct contest seen;
    memset(&seen, 0, sizeof(seen));
    int st = old != NULL ? contest__parse(old, &seen, op->pay, &op->npay) : HB_ENOTFOUND;
    if (st < 0 || seen.id != op->c.id)
        return HB_ENOTFOUND; /* stopped, or ended and forgotten elsewhere */
    if (st == 1)
        return 0; /* fixed before: pay exactly what was fixed */
    size_t n = 0;
    int rc = store_txn_vote_top(txn, op->key, op->period, op->rows, VOTES_TOP_MAX, &n);
    if (rc == HB_ESCHEMA)
        n = 0, rc = 0;
    struct store_account a;
    int64_t balance = 0;
    if (rc == 0) {
        rc = store_txn_account_get(txn, op->prizes, &a);
        if (rc == 0)
            balance = a.credits_posted - a.debits_posted - a.debits_pending;
        else if (rc == HB_ENOTFOUND)
            rc = 0;
    }
    if (rc < 0)
        return rc;
    op->pool = op->c.prize > 0 && op->c.prize < balance ? op->c.prize : balance;
    op->npay = contest_payout(&op->c, &op->rules, op->rows, n, op->pool, op->pay);
    /* A winner whose identity is linked into another wallet is paid there,
     * where they spend and where /balance looks, not into the identity's
     * own stranded wallet. Read in this transaction (the links' memory
     * copy belongs to the loop). */
    struct contest_links links = {.pay = op->pay, .n = op->npay};
    rc = op->npay > 0 ? store_txn_link_each(txn, contest__link_row, &links) : 0;
    if (rc == HB_ESCHEMA)
        rc = 0; /* a database older than the links: nobody is linked */
    if (rc < 0)
        return rc;
    char *value = malloc(CONTEST_VALUE_MAX);
    if (value == NULL)
        return HB_ENOMEM;
    contest__value(&op->c, true, value, CONTEST_VALUE_MAX);
    size_t used = strlen(value);
    for (size_t i = 0; i < op->npay; i++) {
        const struct contest_payment *p = &op->pay[i];
        int w = snprintf(value + used, CONTEST_VALUE_MAX - used, "\n%s %s %s %" PRId64 " %" PRId64,
                         p->id, p->account, p->creator, p->upvotes, p->amount);
        if (w > 0 && (size_t)w < CONTEST_VALUE_MAX - used)
            used += (size_t)w;
    }
    rc = store_txn_state_put(txn, CONTEST_NS, op->key, value, op->now_ms);
    free(value);
    if (rc == 0) /* the winners' standing (/profile), once: with the fixing */
        rc = standing_contest_tally(txn, op->key, op->pay, op->npay);
    op->froze = rc == 0;
    return rc;
}

/* Start the window's contest unless one runs (then learn it) or this
 * window's was started before (its mark). */
static int contest__schedule_run(struct store_txn *txn, struct contest_job *op, int st,
                                 const struct contest *seen)
{
    if (st >= 0) {
        struct contest c = *seen; /* the one running, learnt; its group is the key's */
        memcpy(c.scope_id, op->c.scope_id, sizeof(c.scope_id));
        op->c = c;
        return HB_EEXISTS;
    }
    char *mark = NULL;
    int rc = store_txn_state_get(txn, CONTEST_NS_SCHEDULE, op->key, &mark);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    bool started = mark != NULL && strtoll(mark, NULL, 10) >= op->c.id;
    free(mark);
    if (started)
        return HB_ESTATE;
    char value[CONTEST_VALUE_MAX / 8];
    contest__value(&op->c, false, value, sizeof(value));
    rc = store_txn_state_put(txn, CONTEST_NS, op->key, value, op->now_ms);
    char id[24];
    snprintf(id, sizeof(id), "%" PRId64, op->c.id);
    if (rc == 0)
        rc = store_txn_state_put(txn, CONTEST_NS_SCHEDULE, op->key, id, op->now_ms);
    return rc;
}

static int contest__job_run(struct store_txn *txn, struct store_job *job)
{
    struct contest_job *op = container_of(job, struct contest_job, job);
    char *old = NULL;
    int rc = store_txn_state_get(txn, CONTEST_NS, op->key, &old);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    struct contest seen;
    memset(&seen, 0, sizeof(seen));
    int st = old != NULL ? contest__parse(old, &seen, NULL, NULL) : HB_ENOTFOUND;
    char value[CONTEST_VALUE_MAX / 8];
    switch (op->what) {
    case CONTEST_START:
        if (st >= 0) {
            /* The one running: shown to the admin, and learnt (its group
             * is the key's, not in the value). */
            memcpy(seen.scope_id, op->c.scope_id, sizeof(seen.scope_id));
            op->c = seen;
            rc = HB_EEXISTS;
            break;
        }
        contest__value(&op->c, false, value, sizeof(value));
        rc = store_txn_state_put(txn, CONTEST_NS, op->key, value, op->now_ms);
        break;
    case CONTEST_STOP: /* never once its end has passed: then it pays */
        rc = st < 0 ? HB_ENOTFOUND : st == 1 || seen.end_ms <= op->now_ms ? HB_ESTATE : 0;
        if (rc == 0)
            rc = store_txn_state_put(txn, CONTEST_NS, op->key, NULL, op->now_ms);
        break;
    case CONTEST_FREEZE:
        rc = contest__freeze(txn, op, old);
        break;
    case CONTEST_FORGET:
        rc = st == 1 && seen.id == op->c.id
                 ? store_txn_state_put(txn, CONTEST_NS, op->key, NULL, op->now_ms)
                 : HB_EEXISTS;
        break;
    case CONTEST_SCHEDULE:
        rc = contest__schedule_run(txn, op, st, &seen);
        break;
    }
    free(old);
    return rc;
}

static void contest__job_done(struct store_job *job, int rc);
static void contests__schedule_tick(struct contests *cs);

static struct contest_job *contest__job(struct contests *cs, enum contest_change what,
                                        const struct contest *c)
{
    struct contest_job *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->cs = cs;
    op->what = what;
    op->c = *c;
    op->rules = cs->rules;
    op->now_ms = core_now_ms(cs->core);
    if (contest_scope(c, op->key, sizeof(op->key)) < 0 ||
        contest_period(c, op->period, sizeof(op->period)) < 0 ||
        contest_prize_account(c, op->prizes, sizeof(op->prizes)) < 0) {
        free(op);
        return NULL;
    }
    op->job.run = contest__job_run;
    op->job.done = contest__job_done;
    return op;
}

static int contest__submit(struct contest_job *op)
{
    int rc = op->cs->core->ledger != NULL
                 ? store_submit(ledger_store(op->cs->core->ledger), &op->job)
                 : HB_ECANCELED;
    if (rc < 0)
        free(op);
    return rc;
}

int contests_start(struct contests *cs, const struct contest *c, contests_cb cb, void *data)
{
    if (contests_find(cs, c->platform, c->scope_id) != NULL)
        return HB_EEXISTS;
    if (c->end_ms <= c->id || c->prize < 0)
        return HB_EINVAL;
    struct contest_job *op = contest__job(cs, CONTEST_START, c);
    if (op == NULL)
        return HB_EINVAL;
    op->cb = cb;
    op->data = data;
    return contest__submit(op);
}

int contests_stop(struct contests *cs, enum command_platform platform, const char *scope_id,
                  contests_cb cb, void *data)
{
    struct contest_slot *s = contests__slot(cs, platform, scope_id);
    if (s == NULL)
        return HB_ENOTFOUND;
    if (s->ending || s->c.end_ms <= core_now_ms(cs->core))
        return HB_ESTATE;
    struct contest_job *op = contest__job(cs, CONTEST_STOP, &s->c);
    if (op == NULL)
        return HB_EINVAL;
    op->cb = cb;
    op->data = data;
    return contest__submit(op);
}

/* ---- the end ---------------------------------------------------------------- */

static void contest__ended(struct contest_job *op, bool announce);

static void contest__announce(struct contest_job *op)
{
    const struct core_host_ops *h = op->cs->core->host_ops;
    if (h == NULL || h->notify == NULL)
        return;
    char *text = malloc(CONTEST_TEXT_MAX);
    if (text == NULL)
        return;
    size_t used = 0;
    int w = snprintf(text, CONTEST_TEXT_MAX, "The contest has ended.");
    used = w > 0 ? (size_t)w : 0;
    if (op->npay == 0)
        w = snprintf(text + used, CONTEST_TEXT_MAX - used,
                     " No image received an upvote, so nobody wins this time.");
    else
        w = snprintf(text + used, CONTEST_TEXT_MAX - used, " Winners:");
    used += w > 0 && (size_t)w < CONTEST_TEXT_MAX - used ? (size_t)w : 0;
    for (size_t i = 0; i < op->npay; i++) {
        const struct contest_payment *p = &op->pay[i];
        bool discord = op->c.platform == COMMAND_PLATFORM_DISCORD; /* a mention shows the name */
        w = snprintf(text + used, CONTEST_TEXT_MAX - used, "\n%zu. %s%s%s", i + 1,
                     discord ? "<@" : "", p->creator, discord ? ">" : "");
        used += w > 0 && (size_t)w < CONTEST_TEXT_MAX - used ? (size_t)w : 0;
        w = snprintf(text + used, CONTEST_TEXT_MAX - used,
                     " with %" PRId64 " upvote%s: %" PRId64 " credit%s", p->upvotes,
                     p->upvotes == 1 ? "" : "s", p->amount, p->amount == 1 ? "" : "s");
        used += w > 0 && (size_t)w < CONTEST_TEXT_MAX - used ? (size_t)w : 0;
    }
    struct notify_target to;
    contest_results_target(&op->c, &to);
    int rc = h->notify(op->cs->core->host, &to, text);
    if (rc < 0)
        log_warn("contest.not_posted", "group=%s error=%s", op->key, hb_strerror(rc));
    else
        contest_images_post(op->cs->core, &op->c, op->pay, op->npay);
    free(text);
}

static void contest__pay(struct contest_job *op);

static void contest__opened(int rc, const struct ledger_result *res, void *data)
{
    (void)res;
    struct contest_job *op = data;
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("contest.wallet_not_opened", "group=%s error=%s", op->key, hb_strerror(rc));
    contest__pay(op); /* fails again, and waits for the next tick, if it did not open */
}

static void contest__paid(int rc, const struct ledger_result *res, void *data)
{
    struct contest_job *op = data;
    /* A winner without a wallet yet (they never opened one) gets one as a
     * member's first command opens it: welcome bonus included. */
    bool winner = false;
    for (size_t i = 0; rc == HB_ENOTFOUND && res != NULL && i < op->npay; i++)
        winner = winner || strcmp(op->pay[i].account, res->account) == 0;
    if (winner && op->opened < op->npay && op->cs->core->ledger != NULL) {
        op->opened++;
        if (ledger_account_open(op->cs->core->ledger, res->account, LEDGER_ACCOUNT_NO_OVERDRAFT,
                                op->cs->core->welcome_bonus, contest__opened, op) == 0)
            return;
    }
    if (rc < 0 && rc != HB_EEXISTS && rc != HB_ECONFLICT) {
        /* Nothing moved (a batch is all or none): try again at the next
         * tick, with the winners as fixed. */
        log_warn("contest.payout_failed", "group=%s contest=%" PRId64 " error=%s", op->key,
                 op->c.id, hb_strerror(rc));
        struct contest_slot *s = contests__slot(op->cs, op->c.platform, op->c.scope_id);
        if (s != NULL && s->c.id == op->c.id)
            s->ending = false;
        op->cs->busy--;
        free(op);
        return;
    }
    /* rc 0: this daemon paid, and posts the results. A replay (a restart
     * after the payment, another daemon first) moved nothing. */
    log_info("contest.paid", "group=%s contest=%" PRId64 " winners=%zu new=%d", op->key, op->c.id,
             op->npay, rc == 0);
    contest__ended(op, rc == 0);
}

/* The winners are fixed (this job or an earlier one): pay them in one batch. */
static void contest__pay(struct contest_job *op)
{
    struct ledger_transfer ts[CONTEST_WINNERS_MAX];
    size_t n = 0;
    char ref[STORE_ID_SIZE + 16];
    snprintf(ref, sizeof(ref), "contest:%s", op->key);
    for (size_t i = 0; i < op->npay; i++) {
        if (op->pay[i].amount <= 0)
            continue;
        ts[n++] = (struct ledger_transfer){.id = op->pay[i].id,
                                           .debit = op->prizes,
                                           .credit = op->pay[i].account,
                                           .amount = op->pay[i].amount,
                                           .kind = LEDGER_KIND_TRANSFER,
                                           .ref = ref};
    }
    if (n == 0) {
        contest__ended(op, op->froze);
        return;
    }
    int rc = op->cs->core->ledger != NULL
                 ? ledger_batch_create(op->cs->core->ledger, ts, n, contest__paid, op)
                 : HB_ECANCELED;
    if (rc < 0)
        contest__paid(rc, NULL, op);
}

static void contest__job_done(struct store_job *job, int rc)
{
    struct contest_job *op = container_of(job, struct contest_job, job);
    struct contests *cs = op->cs;
    switch (op->what) {
    case CONTEST_START:
        if (rc == 0 && contests__put(cs, &op->c) < 0)
            rc = HB_ENOMEM;
        else if (rc == HB_EEXISTS)
            (void)contests__put(cs, &op->c); /* started elsewhere: known now */
        break;
    case CONTEST_STOP:
        if (rc == 0 || rc == HB_ENOTFOUND)
            contests__forget(cs, op->c.platform, op->c.scope_id, op->c.id);
        break;
    case CONTEST_FREEZE:
        if (rc == 0) {
            contest__pay(op);
            return;
        }
        if (rc == HB_ENOTFOUND) {
            contests__forget(cs, op->c.platform, op->c.scope_id, op->c.id);
        } else {
            log_warn("contest.end_failed", "group=%s error=%s", op->key, hb_strerror(rc));
            struct contest_slot *s = contests__slot(cs, op->c.platform, op->c.scope_id);
            if (s != NULL && s->c.id == op->c.id)
                s->ending = false;
        }
        cs->busy--;
        free(op);
        return;
    case CONTEST_FORGET:
        contests__forget(cs, op->c.platform, op->c.scope_id, op->c.id);
        if (op->cb != NULL) /* the announcement, kept until the row is gone */
            op->cb(rc, op);
        cs->busy--;
        free(op);
        contests__schedule_tick(cs); /* the next window's contest starts at once */
        return;
    case CONTEST_SCHEDULE:
        if (rc == 0 || rc == HB_EEXISTS)
            (void)contests__put(cs, &op->c);
        else if (rc != HB_ESTATE)
            log_warn("contest.schedule_failed", "group=%s error=%s", op->key, hb_strerror(rc));
        cs->busy--;
        free(op);
        return;
    }
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
}

/* The results are posted by the daemon whose store job removed the
 * contest's row: one daemon, once. */
static void contest__announce_cb(int rc, void *data)
{
    struct contest_job *op = data;
    if (rc == 0)
        contest__announce(op);
}

/* Paid (or nothing to pay): forget the row, then post if this job is the
 * one that removed it. Whether this daemon's payout was the first does
 * not decide: a daemon that paid and stopped before removing the row
 * leaves the post to the next end check, whose payout is a replay. (A stop
 * between the removal and the post still loses the post.) announce says
 * whether to post when the row cannot be removed at all (no store). */
static void contest__ended(struct contest_job *op, bool announce)
{
    op->what = CONTEST_FORGET;
    op->cb = contest__announce_cb;
    op->job.run = contest__job_run;
    op->job.done = contest__job_done;
    int rc = op->cs->core->ledger != NULL
                 ? store_submit(ledger_store(op->cs->core->ledger), &op->job)
                 : HB_ECANCELED;
    if (rc < 0) {
        if (announce)
            contest__announce(op);
        op->cs->busy--;
        free(op);
    }
}

/* Every scheduled group without a contest: its window's contest, unless
 * it ran already (contest__schedule_run decides, in the store). */
static void contests__schedule_tick(struct contests *cs)
{
    const struct contest_schedule *s = cs->schedule;
    if (s == NULL || cs->core->ledger == NULL)
        return;
    int64_t now = core_now_ms(cs->core);
    for (size_t i = 0; i < s->n; i++) {
        const struct contest_schedule_group *g = &s->groups[i];
        if (contests__slot(cs, g->platform, g->scope_id) != NULL)
            continue;
        struct contest c;
        memset(&c, 0, sizeof(c));
        c.platform = g->platform;
        memcpy(c.scope_id, g->scope_id, sizeof(c.scope_id));
        memcpy(c.channel_id, g->channel_id, sizeof(c.channel_id));
        contest_schedule_window(s, now, &c.id, &c.end_ms);
        c.prize = s->prize;
        struct contest_job *op = contest__job(cs, CONTEST_SCHEDULE, &c);
        if (op == NULL)
            continue;
        cs->busy++;
        if (contest__submit(op) < 0)
            cs->busy--;
    }
}

size_t contests_tick(struct contests *cs)
{
    if (cs == NULL || cs->core->ledger == NULL)
        return 0;
    int64_t now = core_now_ms(cs->core);
    size_t begun = 0;
    for (size_t i = 0; i < cs->n; i++) {
        struct contest_slot *s = &cs->slots[i];
        if (s->ending || s->c.end_ms > now)
            continue;
        struct contest_job *op = contest__job(cs, CONTEST_FREEZE, &s->c);
        if (op == NULL)
            continue;
        s->ending = true;
        cs->busy++;
        if (contest__submit(op) < 0) {
            s->ending = false;
            cs->busy--;
            continue;
        }
        begun++;
    }
    contests__schedule_tick(cs);
    return begun;
}
