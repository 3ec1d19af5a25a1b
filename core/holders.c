/* Holder shares and their periodic payouts (core/holders.h). */
#include "core/holders.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "base/text.h"
#include "base/util.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/revenue.h"
#include "core/state.h"
#include "core/votes.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOLDERS_DAY_MS 86400000LL
#define HOLDERS_REFRESH_MS HOLDERS_DAY_MS /* a held role's sighting is written again after */
#define HOLDERS_SEEN_CACHE_MAX 100000     /* sightings held in memory before starting over */

/* ---- configuration ---------------------------------------------------------- */

static int holders__err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int holders__err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return HB_EINVAL;
}

static bool holders__id_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    }
    return true;
}

static int holders__roles_parse(const char *text, struct holders_config *out, char *err,
                                size_t errcap)
{
    const char *p = text;
    char w[64];
    size_t len = 0;
    while (text_word_next(&p, w, sizeof(w), &len)) {
        const char *id = len < sizeof(w) && strncmp(w, "discord:", 8) == 0 ? w + 8 : NULL;
        uint64_t v = 0;
        size_t digits = 0;
        for (const char *c = id; c != NULL && isdigit((unsigned char)*c) && digits < 20;
             c++, digits++)
            v = v * 10 + (uint64_t)(*c - '0');
        if (id == NULL || digits == 0 || id[digits] != '\0' || v == 0)
            return holders__err(err, errcap,
                                "holder_roles: \"%.*s\" is not a Discord role (discord:<role id>)",
                                (int)(len < 60 ? len : 60), p - len);
        if (out->nroles == HOLDERS_ROLES_MAX)
            return holders__err(err, errcap, "holder_roles: more than %d roles", HOLDERS_ROLES_MAX);
        out->roles[out->nroles++] = v;
    }
    return 0;
}

static int holders__members_parse(const char *text, struct holders_config *out, char *err,
                                  size_t errcap)
{
    const char *p = text;
    char w[HOLDERS_SCOPE_MAX + COMMAND_ID_MAX + 16];
    size_t len = 0;
    while (text_word_next(&p, w, sizeof(w), &len)) {
        if (len >= sizeof(w))
            return holders__err(err, errcap, "holder_members: an entry is too long");
        const char *colon = strchr(w, ':');
        const char *slash = strchr(w, '/');
        const char *star = strchr(w, '*');
        const char *uend = star != NULL ? star : w + len;
        enum command_platform platform = COMMAND_PLATFORM_DISCORD;
        bool known =
            colon != NULL && (strncmp(w, "discord:", 8) == 0 || strncmp(w, "telegram:", 9) == 0);
        if (known && w[0] == 't')
            platform = COMMAND_PLATFORM_TELEGRAM;
        int64_t weight = 1;
        bool ok = known && slash != NULL && slash > colon && slash < uend &&
                  holders__id_ok(colon + 1, (size_t)(slash - colon - 1)) &&
                  holders__id_ok(slash + 1, (size_t)(uend - slash - 1)) &&
                  (size_t)(slash - w) < HOLDERS_SCOPE_MAX &&
                  (size_t)(uend - slash - 1) < COMMAND_ID_MAX;
        if (ok && star != NULL) {
            char *end = NULL;
            long long v = strtoll(star + 1, &end, 10);
            ok = end != star + 1 && *end == '\0' && v >= 1 && v <= HOLDERS_WEIGHT_MAX;
            weight = v;
        }
        if (!ok)
            return holders__err(err, errcap,
                                "holder_members: \"%s\" is not a member of a group "
                                "(<platform>:<group>/<user>, optionally *weight from 1 to %d)",
                                w, HOLDERS_WEIGHT_MAX);
        (void)platform;
        struct holders_member m;
        memset(&m, 0, sizeof(m));
        snprintf(m.scope, sizeof(m.scope), "%.*s", (int)(slash - w), w);
        snprintf(m.user, sizeof(m.user), "%.*s", (int)(uend - slash - 1), slash + 1);
        m.weight = weight;
        for (size_t i = 0; i < out->nmembers; i++) {
            if (strcmp(out->members[i].scope, m.scope) == 0 &&
                strcmp(out->members[i].user, m.user) == 0)
                return holders__err(err, errcap, "holder_members: %s/%s is named twice", m.scope,
                                    m.user);
        }
        if (out->nmembers == HOLDERS_MEMBERS_MAX)
            return holders__err(err, errcap, "holder_members: more than %d members",
                                HOLDERS_MEMBERS_MAX);
        out->members[out->nmembers++] = m;
    }
    return 0;
}

int holders_config_parse(const char *roles, const char *members, enum holders_every every,
                         struct holders_config *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    out->every = every == HOLDERS_DAILY ? HOLDERS_DAILY : HOLDERS_WEEKLY;
    if (rc == 0 && roles != NULL)
        rc = holders__roles_parse(roles, out, err, errcap);
    if (rc == 0 && members != NULL)
        rc = holders__members_parse(members, out, err, errcap);
    if (rc < 0) {
        out->nroles = 0;
        out->nmembers = 0;
    }
    return rc;
}

int holders_config_check(const struct revenue_split *split, const struct holders_config *cfg,
                         char *err, size_t errcap)
{
    bool share = false;
    for (size_t i = 0; i < split->n; i++) {
        const char *a = split->shares[i].account;
        if (strcmp(a, HOLDERS_SHARE) == 0)
            share = true;
        else if (strncmp(a, HOLDERS_ACCOUNT_PREFIX, strlen(HOLDERS_ACCOUNT_PREFIX)) == 0)
            return holders__err(err, errcap,
                                "shares: %s: the holders' share is written " HOLDERS_SHARE, a);
    }
    if (strncmp(split->remainder, HOLDERS_ACCOUNT_PREFIX, strlen(HOLDERS_ACCOUNT_PREFIX)) == 0)
        return holders__err(err, errcap, "remainder: %s is a holder account", split->remainder);
    bool named = cfg->nroles > 0 || cfg->nmembers > 0;
    if (share && !named)
        return holders__err(err, errcap,
                            "shares: " HOLDERS_SHARE " needs holders: set holder_roles "
                            "(Discord) or holder_members (<platform>:<group>/<user>)");
    if (named && !share)
        return holders__err(err, errcap,
                            "holder_roles and holder_members need a share to " HOLDERS_SHARE);
    return 0;
}

int holders_period_ended(enum holders_every every, int64_t now_ms, char *buf, size_t cap)
{
    int64_t day = now_ms / HOLDERS_DAY_MS;
    int64_t start = day * HOLDERS_DAY_MS;
    if (every == HOLDERS_WEEKLY)
        start = (day - (day + 3) % 7) * HOLDERS_DAY_MS; /* 1970-01-01 was a Thursday */
    return votes_period(every == HOLDERS_WEEKLY ? VOTES_WEEK : VOTES_DAY, start - 1, buf, cap);
}

int64_t holders_split(int64_t balance, struct holders_payee *p, size_t n)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += p[i].weight;
    if (n == 0 || total <= 0 || balance <= 0) {
        for (size_t i = 0; i < n; i++)
            p[i].amount = 0;
        return balance;
    }
    int64_t left = balance;
    for (size_t i = 0; i < n; i++) {
        /* balance * weight / total without overflow: total is at most
         * HOLDERS_PAYEES_MAX * HOLDERS_WEIGHT_MAX. */
        p[i].amount = balance / total * p[i].weight + balance % total * p[i].weight / total;
        left -= p[i].amount;
    }
    return left;
}

/* ---- the running side --------------------------------------------------------- */

struct holders {
    struct core *core;
    struct holders_config cfg;
    struct map *seen;              /* "<scope>/<user>" -> struct holders_sighting */
    char done[VOTES_PERIOD_MAX];   /* every group was paid for this period */
    enum holders_every done_every; /* ... under this setting */
    bool passing;                  /* a pass is under way */
    size_t busy;                   /* passes and payments under way */
};

struct holders_sighting {
    bool held;
    int64_t written_ms;
};

struct holders *holders_new(struct core *core)
{
    struct holders *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->core = core;
    h->seen = map_new(free);
    if (h->seen == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void holders_free(struct holders *h)
{
    if (h == NULL)
        return;
    map_free(h->seen);
    free(h);
}

void holders_configure(struct holders *h, const struct holders_config *cfg)
{
    if (h == NULL)
        return;
    if (cfg->every != h->cfg.every)
        h->done[0] = '\0';
    h->cfg = *cfg;
}

size_t holders_busy(const struct holders *h)
{
    return h != NULL ? h->busy : 0;
}

static bool holders__has_role(const struct holders *h, const struct invocation *inv)
{
    for (size_t i = 0; i < inv->nroles; i++) {
        for (size_t k = 0; k < h->cfg.nroles; k++) {
            if (inv->roles[i] == h->cfg.roles[k])
                return true;
        }
    }
    return false;
}

static bool holders__scope(const struct invocation *inv, char *buf, size_t cap)
{
    if (inv->scope != COMMAND_SCOPE_GROUP || inv->scope_id[0] == '\0')
        return false;
    int n = snprintf(buf, cap, "%s:%s", command_platform_name(inv->platform), inv->scope_id);
    return n > 0 && (size_t)n < cap;
}

int64_t holders_weight(const struct holders *h, const struct invocation *inv)
{
    char scope[HOLDERS_SCOPE_MAX];
    if (h == NULL || !holders__scope(inv, scope, sizeof(scope)))
        return 0;
    for (size_t i = 0; i < h->cfg.nmembers; i++) {
        if (strcmp(h->cfg.members[i].scope, scope) == 0 &&
            strcmp(h->cfg.members[i].user, inv->user_id) == 0)
            return h->cfg.members[i].weight;
    }
    return inv->platform == COMMAND_PLATFORM_DISCORD && holders__has_role(h, inv) ? 1 : 0;
}

static void holders__seen_saved(int rc, const char *value, void *data)
{
    (void)value;
    (void)data;
    if (rc < 0)
        log_warn("holders.sighting_not_saved", "error=%s", hb_strerror(rc));
}

void holders_seen(struct holders *h, const struct invocation *inv)
{
    if (h == NULL || h->cfg.nroles == 0 || inv->platform != COMMAND_PLATFORM_DISCORD ||
        h->core->ledger == NULL || inv->user_id[0] == '\0')
        return;
    char scope[HOLDERS_SCOPE_MAX], key[STATE_KEY_MAX];
    if (!holders__scope(inv, scope, sizeof(scope)))
        return;
    int n = snprintf(key, sizeof(key), "%s/%s", scope, inv->user_id);
    if (n < 0 || (size_t)n >= sizeof(key) - sizeof(HOLDERS_NS_ROLE))
        return;
    bool held = holders__has_role(h, inv);
    int64_t now = core_now_ms(h->core);
    struct holders_sighting *s = map_get(h->seen, key);
    if (s != NULL && s->held == held && (!held || now - s->written_ms < HOLDERS_REFRESH_MS))
        return; /* known and unchanged: no store write */
    if (s == NULL) {
        if (map_count(h->seen) >= HOLDERS_SEEN_CACHE_MAX) {
            map_free(h->seen);
            h->seen = map_new(free);
            if (h->seen == NULL)
                return;
        }
        s = calloc(1, sizeof(*s));
        if (s == NULL || map_set(h->seen, key, s) < 0) {
            free(s);
            return;
        }
    }
    s->held = held;
    s->written_ms = now;
    char value[24];
    snprintf(value, sizeof(value), "%" PRId64, now);
    /* Not holding: the row goes (a delete of no row is cheap, and happens
     * once per member and process). */
    int rc = state_put(ledger_store(h->core->ledger), HOLDERS_NS_ROLE, key, held ? value : NULL,
                       holders__seen_saved, NULL);
    if (rc < 0)
        log_warn("holders.sighting_not_saved", "error=%s", hb_strerror(rc));
}

/* ---- payouts -------------------------------------------------------------------
 * The stored form of a group's payout row: "paid <period>" once paid (or
 * found empty), or while fixed and not yet paid:
 * "fixed <period>\n<user> <amount>\n...". */

struct holders_payout {
    struct holders *h;
    char scope[HOLDERS_SCOPE_MAX];
    char period[VOTES_PERIOD_MAX];
    struct holders_payee *payees;
    size_t n;
    size_t opened; /* payees' wallets opened for it */
    bool fixed_here;
    struct store_job job; /* marks it paid */
    int64_t now_ms;
};

struct holders_pass {
    struct store_job job;
    struct holders *h;
    struct holders_config *cfg; /* a copy: a reload may change h's meanwhile */
    char period[VOTES_PERIOD_MAX];
    int64_t now_ms;
    /* the groups to look at */
    char (*scopes)[HOLDERS_SCOPE_MAX];
    size_t nscopes, capscopes;
    /* payouts fixed (now or before) and not yet paid */
    struct holders_payout **due;
    size_t ndue;
};

static void holders__payout_free(struct holders_payout *p)
{
    if (p == NULL)
        return;
    free(p->payees);
    free(p);
}

static int holders__scope_add(struct holders_pass *op, const char *scope, size_t len)
{
    if (len == 0 || len >= HOLDERS_SCOPE_MAX)
        return 0;
    for (size_t i = 0; i < op->nscopes; i++) {
        if (strlen(op->scopes[i]) == len && strncmp(op->scopes[i], scope, len) == 0)
            return 0;
    }
    if (op->nscopes == op->capscopes) {
        void *grown = hb_grow(op->scopes, &op->capscopes, 16, sizeof(op->scopes[0]));
        if (grown == NULL)
            return HB_ENOMEM;
        op->scopes = grown;
    }
    memcpy(op->scopes[op->nscopes], scope, len);
    op->scopes[op->nscopes][len] = '\0';
    op->nscopes++;
    return 0;
}

static int holders__role_scope(const char *key, const char *value, void *data)
{
    (void)value;
    const char *slash = strrchr(key, '/');
    return slash != NULL ? holders__scope_add(data, key, (size_t)(slash - key)) : 0;
}

/* Collect a group's holders into a growing payee list. */
struct holders_collect {
    struct holders_payee *p;
    size_t n, cap;
    int64_t since_ms;
    size_t prefix; /* length of "<scope>/" */
};

static int holders__payee_add(struct holders_collect *c, const char *user, int64_t weight)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->p[i].user, user) == 0) {
            if (weight > c->p[i].weight)
                c->p[i].weight = weight; /* listed and holding the role: the larger */
            return 0;
        }
    }
    if (strlen(user) >= COMMAND_ID_MAX)
        return 0;
    if (c->n == c->cap) {
        void *grown = hb_grow(c->p, &c->cap, 16, sizeof(c->p[0]));
        if (grown == NULL)
            return HB_ENOMEM;
        c->p = grown;
    }
    memset(&c->p[c->n], 0, sizeof(c->p[0]));
    snprintf(c->p[c->n].user, sizeof(c->p[0].user), "%s", user);
    c->p[c->n].weight = weight;
    c->n++;
    return 0;
}

static int holders__role_holder(const char *key, const char *value, void *data)
{
    struct holders_collect *c = data;
    int64_t seen = strtoll(value != NULL ? value : "0", NULL, 10);
    if (seen < c->since_ms)
        return 0; /* not seen with the role for too long */
    return holders__payee_add(c, key + c->prefix, 1);
}

static int holders__payee_cmp(const void *a, const void *b)
{
    const struct holders_payee *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return strcmp(x->user, y->user);
}

/* Parse a fixed row ("fixed <period>\n<user> <amount>..."). */
static struct holders_payout *holders__fixed_parse(struct holders *h, const char *scope,
                                                   const char *value)
{
    struct holders_payout *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->h = h;
    snprintf(p->scope, sizeof(p->scope), "%s", scope);
    size_t lines = 0;
    for (const char *c = value; *c != '\0'; c++)
        lines += *c == '\n';
    p->payees = calloc(lines + 1, sizeof(p->payees[0]));
    if (p->payees == NULL || sscanf(value, "fixed %15s", p->period) != 1) {
        holders__payout_free(p);
        return NULL;
    }
    const char *line = strchr(value, '\n');
    while (line != NULL && p->n < lines) {
        line++;
        char user[COMMAND_ID_MAX];
        long long amount = 0;
        if (sscanf(line, "%95s %lld", user, &amount) == 2 && amount > 0) {
            snprintf(p->payees[p->n].user, sizeof(p->payees[0].user), "%s", user);
            p->payees[p->n].amount = amount;
            p->n++;
        }
        line = strchr(line, '\n');
    }
    return p;
}

static int holders__due_add(struct holders_pass *op, struct holders_payout *p)
{
    void *grown = realloc(op->due, (op->ndue + 1) * sizeof(op->due[0]));
    if (grown == NULL) {
        holders__payout_free(p);
        return HB_ENOMEM;
    }
    op->due = grown;
    op->due[op->ndue++] = p;
    return 0;
}

/* One group: paid already, fixed and owed, or to be fixed now. */
static int holders__scope_pass(struct store_txn *txn, struct holders_pass *op, const char *scope)
{
    char *old = NULL;
    int rc = store_txn_state_get(txn, HOLDERS_NS_PAYOUT, scope, &old);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    if (old != NULL && strncmp(old, "fixed ", 6) == 0) {
        struct holders_payout *p = holders__fixed_parse(op->h, scope, old);
        free(old);
        return p != NULL ? holders__due_add(op, p) : HB_ENOMEM;
    }
    char paid[VOTES_PERIOD_MAX + 8];
    snprintf(paid, sizeof(paid), "paid %s", op->period);
    bool done = old != NULL && strcmp(old, paid) == 0;
    free(old);
    if (done)
        return 0;

    char account[STORE_ID_SIZE];
    snprintf(account, sizeof(account), HOLDERS_ACCOUNT_PREFIX "%s", scope);
    struct store_account a;
    int64_t balance = 0;
    rc = store_txn_account_get(txn, account, &a);
    if (rc == 0)
        balance = a.credits_posted - a.debits_posted - a.debits_pending;
    else if (rc != HB_ENOTFOUND)
        return rc;

    struct holders_collect c = {.since_ms = op->now_ms - HOLDERS_SEEN_DAYS * HOLDERS_DAY_MS};
    rc = 0;
    for (size_t i = 0; rc == 0 && i < op->cfg->nmembers; i++) {
        if (strcmp(op->cfg->members[i].scope, scope) == 0)
            rc = holders__payee_add(&c, op->cfg->members[i].user, op->cfg->members[i].weight);
    }
    if (rc == 0 && op->cfg->nroles > 0 && strncmp(scope, "discord:", 8) == 0) {
        char prefix[HOLDERS_SCOPE_MAX + 2];
        snprintf(prefix, sizeof(prefix), "%s/", scope);
        c.prefix = strlen(prefix);
        rc = store_txn_state_each(txn, HOLDERS_NS_ROLE, prefix, holders__role_holder, &c);
        if (rc == HB_ESCHEMA)
            rc = 0;
    }
    if (rc < 0) {
        free(c.p);
        return rc;
    }
    if (c.n > 1)
        qsort(c.p, c.n, sizeof(c.p[0]), holders__payee_cmp);
    if (c.n > HOLDERS_PAYEES_MAX)
        c.n = HOLDERS_PAYEES_MAX;
    holders_split(balance, c.p, c.n);

    /* The row: who receives what, or "paid" when nobody receives anything
     * (no holders, or nothing accrued: the balance waits). */
    size_t cap = 32 + c.n * (COMMAND_ID_MAX + 24);
    char *value = malloc(cap);
    if (value == NULL) {
        free(c.p);
        return HB_ENOMEM;
    }
    size_t used = (size_t)snprintf(value, cap, "fixed %s", op->period);
    size_t payees = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (c.p[i].amount <= 0)
            continue;
        int w = snprintf(value + used, cap - used, "\n%s %" PRId64, c.p[i].user, c.p[i].amount);
        if (w > 0 && (size_t)w < cap - used) {
            used += (size_t)w;
            payees++;
        }
    }
    free(c.p);
    rc = store_txn_state_put(txn, HOLDERS_NS_PAYOUT, scope, payees > 0 ? value : paid, op->now_ms);
    if (rc == 0 && payees > 0) {
        struct holders_payout *p = holders__fixed_parse(op->h, scope, value);
        if (p == NULL)
            rc = HB_ENOMEM;
        else {
            p->fixed_here = true;
            rc = holders__due_add(op, p);
        }
    }
    free(value);
    return rc;
}

static int holders__pass_run(struct store_txn *txn, struct store_job *job)
{
    struct holders_pass *op = container_of(job, struct holders_pass, job);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < op->cfg->nmembers; i++)
        rc = holders__scope_add(op, op->cfg->members[i].scope, strlen(op->cfg->members[i].scope));
    if (rc == 0 && op->cfg->nroles > 0) {
        rc = store_txn_state_each(txn, HOLDERS_NS_ROLE, "", holders__role_scope, op);
        if (rc == HB_ESCHEMA)
            rc = 0;
    }
    for (size_t i = 0; rc == 0 && i < op->nscopes; i++)
        rc = holders__scope_pass(txn, op, op->scopes[i]);
    if (rc < 0) {
        /* Nothing this job wrote stays: forget what it collected. */
        for (size_t i = 0; i < op->ndue; i++)
            holders__payout_free(op->due[i]);
        op->ndue = 0;
    }
    return rc;
}

static void holders__pay(struct holders_payout *p);

static int holders__mark_run(struct store_txn *txn, struct store_job *job)
{
    struct holders_payout *p = container_of(job, struct holders_payout, job);
    char *old = NULL;
    int rc = store_txn_state_get(txn, HOLDERS_NS_PAYOUT, p->scope, &old);
    if (rc < 0)
        return rc == HB_ENOTFOUND ? HB_EEXISTS : rc;
    char want[VOTES_PERIOD_MAX + 8];
    snprintf(want, sizeof(want), "fixed %s", p->period);
    bool fixed = strncmp(old, want, strlen(want)) == 0 &&
                 (old[strlen(want)] == '\0' || old[strlen(want)] == '\n');
    free(old);
    if (!fixed)
        return HB_EEXISTS; /* marked by another daemon */
    char paid[VOTES_PERIOD_MAX + 8];
    snprintf(paid, sizeof(paid), "paid %s", p->period);
    return store_txn_state_put(txn, HOLDERS_NS_PAYOUT, p->scope, paid, p->now_ms);
}

static void holders__mark_done(struct store_job *job, int rc)
{
    struct holders_payout *p = container_of(job, struct holders_payout, job);
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("holders.not_marked", "group=%s period=%s error=%s", p->scope, p->period,
                 hb_strerror(rc));
    p->h->busy--;
    holders__payout_free(p);
}

static void holders__paid_end(struct holders_payout *p, int rc)
{
    struct holders *h = p->h;
    if (rc < 0 && rc != HB_EEXISTS) {
        /* Nothing moved (a batch is all or none): the row stays fixed and
         * the next tick pays it. */
        log_warn("holders.payout_failed", "group=%s period=%s error=%s", p->scope, p->period,
                 hb_strerror(rc));
        h->done[0] = '\0';
        h->busy--;
        holders__payout_free(p);
        return;
    }
    log_info("holders.paid", "group=%s period=%s holders=%zu new=%d", p->scope, p->period, p->n,
             rc == 0);
    p->now_ms = core_now_ms(h->core);
    p->job.run = holders__mark_run;
    p->job.done = holders__mark_done;
    int src = h->core->ledger != NULL ? store_submit(ledger_store(h->core->ledger), &p->job)
                                      : HB_ECANCELED;
    if (src < 0) {
        h->done[0] = '\0';
        h->busy--;
        holders__payout_free(p);
    }
}

static void holders__opened(int rc, const struct ledger_result *res, void *data)
{
    (void)res;
    struct holders_payout *p = data;
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("holders.wallet_not_opened", "group=%s error=%s", p->scope, hb_strerror(rc));
    holders__pay(p);
}

static void holders__paid(int rc, const struct ledger_result *res, void *data)
{
    struct holders_payout *p = data;
    struct holders *h = p->h;
    /* A holder without a wallet yet gets one as a member's first command
     * opens it: welcome bonus included. */
    char wallet[STORE_ID_SIZE];
    bool payee = false;
    const char *colon = strchr(p->scope, ':');
    for (size_t i = 0; rc == HB_ENOTFOUND && res != NULL && colon != NULL && i < p->n && !payee;
         i++) {
        char platform[16];
        snprintf(platform, sizeof(platform), "%.*s", (int)(colon - p->scope), p->scope);
        payee =
            link_wallet_name(h->core, platform, p->payees[i].user, wallet, sizeof(wallet)) == 0 &&
            strcmp(wallet, res->account) == 0;
    }
    if (payee && p->opened < p->n && h->core->ledger != NULL) {
        p->opened++;
        if (ledger_account_open(h->core->ledger, res->account, LEDGER_ACCOUNT_NO_OVERDRAFT,
                                h->core->welcome_bonus, holders__opened, p) == 0)
            return;
    }
    holders__paid_end(p, rc);
}

/* A fixed payout: one batch, each payment's id made of the group, the
 * period and the member, so paying it again moves nothing. */
static void holders__pay(struct holders_payout *p)
{
    struct holders *h = p->h;
    struct ledger_transfer *ts = calloc(p->n + 1, sizeof(*ts));
    char(*ids)[STORE_ID_SIZE] = calloc(p->n + 1, sizeof(*ids));
    char(*wallets)[STORE_ID_SIZE] = calloc(p->n + 1, sizeof(*wallets));
    char from[STORE_ID_SIZE], platform[16];
    int rc = ts == NULL || ids == NULL || wallets == NULL ? HB_ENOMEM : 0;
    const char *colon = strchr(p->scope, ':');
    if (rc == 0 && colon == NULL)
        rc = HB_EINVAL;
    size_t n = 0;
    if (rc == 0) {
        snprintf(platform, sizeof(platform), "%.*s", (int)(colon - p->scope), p->scope);
        snprintf(from, sizeof(from), HOLDERS_ACCOUNT_PREFIX "%s", p->scope);
        for (size_t i = 0; i < p->n; i++) {
            int w = snprintf(ids[n], sizeof(ids[n]), "holders:%s:%s:%s", p->scope, p->period,
                             p->payees[i].user);
            /* The wallet the member spends: their own, or the one their
             * identity is linked to (core/link.h), where /earnings looks. */
            if (w < 0 || w > LEDGER_ID_LEN_MAX ||
                link_wallet_name(h->core, platform, p->payees[i].user, wallets[n],
                                 sizeof(wallets[n])) < 0)
                continue; /* cannot be named: what it was fixed at stays in the account */
            ts[n] = (struct ledger_transfer){.id = ids[n],
                                             .debit = from,
                                             .credit = wallets[n],
                                             .amount = p->payees[i].amount,
                                             .kind = LEDGER_KIND_TRANSFER,
                                             .ref = from};
            n++;
        }
    }
    if (rc == 0 && n == 0) {
        free(ts);
        free(ids);
        free(wallets);
        holders__paid_end(p, 0);
        return;
    }
    if (rc == 0)
        rc = h->core->ledger != NULL ? ledger_batch_create(h->core->ledger, ts, n, holders__paid, p)
                                     : HB_ECANCELED;
    free(ts);
    free(ids);
    free(wallets);
    if (rc < 0)
        holders__paid_end(p, rc);
}

static void holders__pass_done(struct store_job *job, int rc)
{
    struct holders_pass *op = container_of(job, struct holders_pass, job);
    struct holders *h = op->h;
    h->passing = false;
    if (rc < 0 && rc != HB_EEXISTS)
        log_warn("holders.pass_failed", "period=%s error=%s", op->period, hb_strerror(rc));
    else if (op->ndue == 0 && h->cfg.every == op->cfg->every)
        snprintf(h->done, sizeof(h->done), "%s", op->period);
    for (size_t i = 0; rc >= 0 && i < op->ndue; i++) {
        h->busy++;
        holders__pay(op->due[i]);
    }
    h->busy--;
    free(op->cfg);
    free(op->scopes);
    free(op->due);
    free(op);
}

bool holders_tick(struct holders *h)
{
    if (h == NULL || h->passing || h->core->ledger == NULL ||
        (h->cfg.nroles == 0 && h->cfg.nmembers == 0))
        return false;
    int64_t now = core_now_ms(h->core);
    char period[VOTES_PERIOD_MAX];
    if (holders_period_ended(h->cfg.every, now, period, sizeof(period)) < 0 ||
        strcmp(period, h->done) == 0)
        return false;
    struct holders_pass *op = calloc(1, sizeof(*op));
    struct holders_config *cfg = malloc(sizeof(*cfg));
    if (op == NULL || cfg == NULL) {
        free(op);
        free(cfg);
        return false;
    }
    *cfg = h->cfg;
    op->h = h;
    op->cfg = cfg;
    op->now_ms = now;
    snprintf(op->period, sizeof(op->period), "%s", period);
    op->job.run = holders__pass_run;
    op->job.done = holders__pass_done;
    int rc = store_submit(ledger_store(h->core->ledger), &op->job);
    if (rc < 0) {
        log_warn("holders.pass_failed", "period=%s error=%s", period, hb_strerror(rc));
        free(cfg);
        free(op);
        return false;
    }
    h->passing = true;
    h->busy++;
    return true;
}
