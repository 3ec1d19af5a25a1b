#include "core/revenue.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "base/text.h"
#include "core/state.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing -------------------------------------------------------------- */

/* An account as written: letters, digits and ":_.@-", with "<scope>"
 * anywhere. */
static bool revenue__account_ok(const char *a)
{
    if (a[0] == '\0')
        return false;
    for (const char *c = a; *c != '\0'; c++) {
        if (*c == '<') {
            if (strncmp(c, REVENUE_SCOPE, strlen(REVENUE_SCOPE)) != 0)
                return false;
            c += strlen(REVENUE_SCOPE) - 1;
            continue;
        }
        if (!isalnum((unsigned char)*c) && strchr(":_.@-", *c) == NULL)
            return false;
    }
    return true;
}

/* "25%", "12.5%", "12.25%" or "2500bp" into basis points; unit_pct, when
 * not NULL, reads a bare number as percent (the low end of a range). */
static bool revenue__part(const char *w, int32_t *bp, const char *bare_unit)
{
    long whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *c = w;
    for (; isdigit((unsigned char)*c) && digits < 6; c++, digits++)
        whole = whole * 10 + (*c - '0');
    if (digits == 0)
        return false;
    if (*c == '.') {
        for (c++; isdigit((unsigned char)*c) && fdigits < 2; c++, fdigits++)
            frac = frac * 10 + (*c - '0');
        if (fdigits == 0)
            return false;
        if (fdigits == 1)
            frac *= 10;
    }
    const char *unit = *c == '\0' && bare_unit != NULL ? bare_unit : c;
    long v;
    if (strcmp(unit, "%") == 0)
        v = whole * 100 + frac;
    else if (strcmp(unit, "bp") == 0 && fdigits == 0)
        v = whole;
    else
        return false;
    if (v > REVENUE_BP_TOTAL)
        return false;
    *bp = (int32_t)v;
    return true;
}

const char *revenue_bp_text(int32_t bp, char *buf, size_t cap)
{
    if (bp % 100 == 0)
        snprintf(buf, cap, "%d%%", (int)(bp / 100));
    else if (bp % 10 == 0)
        snprintf(buf, cap, "%d.%d%%", (int)(bp / 100), (int)(bp % 100 / 10));
    else
        snprintf(buf, cap, "%d.%02d%%", (int)(bp / 100), (int)(bp % 100));
    return buf;
}

static int revenue__find(const struct revenue_split *s, const char *account)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->shares[i].account, account) == 0)
            return (int)i;
    }
    return -1;
}

static int revenue__err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int revenue__err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return HB_EINVAL;
}

/* One account word of a list: checked, or a sentence in err. */
static int revenue__account_word(const char **p, char *acc, size_t cap, const char *list, char *err,
                                 size_t errcap)
{
    size_t len = 0;
    if (!text_word_next(p, acc, cap, &len))
        return 1; /* the end */
    if (len >= cap)
        return revenue__err(err, errcap, "%s: an account is longer than %d characters", list,
                            REVENUE_ACCOUNT_MAX);
    if (!revenue__account_ok(acc))
        return revenue__err(err, errcap,
                            "%s: \"%s\" is not an account (letters, digits, \":_.@-\" and "
                            "<scope>)",
                            list, acc);
    return 0;
}

static int revenue__shares_parse(const char *text, struct revenue_split *out, char *err,
                                 size_t errcap)
{
    const char *p = text;
    int32_t sum = 0;
    char acc[REVENUE_ACCOUNT_MAX + 1], word[32];
    for (;;) {
        int rc = revenue__account_word(&p, acc, sizeof(acc), "shares", err, errcap);
        if (rc == 1)
            break;
        if (rc < 0)
            return rc;
        size_t len = 0;
        int32_t bp = 0;
        if (!text_word_next(&p, word, sizeof(word), &len))
            return revenue__err(err, errcap, "shares: %s needs a part after it (25%%, 2500bp)",
                                acc);
        if (len >= sizeof(word) || !revenue__part(word, &bp, NULL))
            return revenue__err(err, errcap,
                                "shares: %s: \"%s\" is not a part (a percentage such as 25%% or "
                                "12.5%%, or basis points such as 2500bp)",
                                acc, word);
        if (strcmp(acc, LEDGER_SYSTEM_REVENUE) == 0 ||
            strncmp(acc, LEDGER_DEBT_PREFIX, strlen(LEDGER_DEBT_PREFIX)) == 0)
            return revenue__err(err, errcap, "shares: %s cannot receive a share", acc);
        if (revenue__find(out, acc) >= 0)
            return revenue__err(err, errcap, "shares: %s is named twice", acc);
        if (out->n == REVENUE_SHARES_MAX)
            return revenue__err(err, errcap, "shares: more than %d shares", REVENUE_SHARES_MAX);
        struct revenue_share *sh = &out->shares[out->n++];
        snprintf(sh->account, sizeof(sh->account), "%s", acc);
        sh->bp = bp;
        sum += bp;
    }
    if (out->n == 0)
        return revenue__err(err, errcap, "shares: no share given");
    if (sum != REVENUE_BP_TOTAL) {
        char got[16];
        return revenue__err(err, errcap, "shares add up to %s, not 100%% (%s)",
                            revenue_bp_text(sum, got, sizeof(got)),
                            sum < REVENUE_BP_TOTAL ? "some credits would stay unassigned"
                                                   : "more than was charged");
    }
    return 0;
}

static int revenue__adjustable_parse(const char *text, struct revenue_split *out, char *err,
                                     size_t errcap)
{
    const char *p = text;
    char acc[REVENUE_ACCOUNT_MAX + 1], word[40];
    for (;;) {
        int rc = revenue__account_word(&p, acc, sizeof(acc), "adjustable", err, errcap);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
        int i = revenue__find(out, acc);
        if (i < 0)
            return revenue__err(err, errcap, "adjustable: %s is not one of the shares", acc);
        size_t len = 0;
        bool have = text_word_next(&p, word, sizeof(word), &len);
        char *dash = have && len < sizeof(word) ? strchr(word, '-') : NULL;
        int32_t lo = 0, hi = 0;
        if (dash != NULL) {
            *dash = '\0';
            const char *hu = dash + 1;
            while (isdigit((unsigned char)*hu) || *hu == '.')
                hu++;
            if (!revenue__part(dash + 1, &hi, NULL) || !revenue__part(word, &lo, hu))
                dash = NULL;
        }
        if (dash == NULL || lo > hi)
            return revenue__err(err, errcap,
                                "adjustable: %s needs a range after it, low to high (0-40%%, "
                                "500bp-3000bp)",
                                acc);
        struct revenue_share *sh = &out->shares[i];
        if (sh->bp < lo || sh->bp > hi)
            return revenue__err(err, errcap, "adjustable: %s: its share lies outside the range",
                                acc);
        sh->adjustable = true;
        sh->min_bp = lo;
        sh->max_bp = hi;
    }
}

int revenue_split_parse(const char *shares, const char *remainder, const char *adjustable,
                        struct revenue_split *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    if (shares == NULL || shares[0] == '\0') {
        if ((remainder != NULL && remainder[0] != '\0') ||
            (adjustable != NULL && adjustable[0] != '\0'))
            return revenue__err(err, errcap, "remainder and adjustable need shares = ...");
        return 0;
    }
    int rc = revenue__shares_parse(shares, out, err, errcap);
    if (rc == 0 && adjustable != NULL)
        rc = revenue__adjustable_parse(adjustable, out, err, errcap);
    if (rc < 0) {
        out->n = 0;
        return rc;
    }
    if (remainder != NULL && remainder[0] != '\0') {
        if (!revenue__account_ok(remainder) || strlen(remainder) > REVENUE_ACCOUNT_MAX ||
            strstr(remainder, REVENUE_SCOPE) != NULL ||
            strcmp(remainder, LEDGER_SYSTEM_REVENUE) == 0 ||
            strncmp(remainder, LEDGER_DEBT_PREFIX, strlen(LEDGER_DEBT_PREFIX)) == 0)
            rc = revenue__err(err, errcap,
                              "remainder: \"%s\" must be one account without <scope>, not "
                              "system:revenue",
                              remainder);
        else
            snprintf(out->remainder, sizeof(out->remainder), "%s", remainder);
    } else {
        for (size_t i = 0; i < out->n && out->remainder[0] == '\0'; i++) {
            if (strstr(out->shares[i].account, REVENUE_SCOPE) == NULL)
                snprintf(out->remainder, sizeof(out->remainder), "%s", out->shares[i].account);
        }
        if (out->remainder[0] == '\0')
            rc = revenue__err(err, errcap,
                              "every share names <scope>: set remainder = ACCOUNT for the "
                              "rounding and for private chats");
    }
    if (rc < 0)
        out->n = 0;
    return rc;
}

int revenue_override_parse(const struct revenue_split *s, const char *text, int32_t *bp, char *err,
                           size_t errcap)
{
    int32_t want = 0, got = 0;
    for (size_t i = 0; i < s->n; i++) {
        bp[i] = s->shares[i].bp;
        if (s->shares[i].adjustable)
            want += s->shares[i].bp;
    }
    const char *p = text;
    char acc[REVENUE_ACCOUNT_MAX + 1], word[32], a[16], b[16];
    for (;;) {
        int rc = revenue__account_word(&p, acc, sizeof(acc), "revenue", err, errcap);
        if (rc == 1)
            break;
        if (rc < 0)
            return rc;
        int i = revenue__find(s, acc);
        if (i < 0 || !s->shares[i].adjustable)
            return revenue__err(err, errcap, "%s is not a share this group may adjust", acc);
        size_t len = 0;
        if (!text_word_next(&p, word, sizeof(word), &len) || len >= sizeof(word) ||
            !revenue__part(word, &bp[i], NULL))
            return revenue__err(err, errcap, "%s needs a part after it (30%%, 3000bp)", acc);
        const struct revenue_share *sh = &s->shares[i];
        if (bp[i] < sh->min_bp || bp[i] > sh->max_bp) {
            char range[40];
            snprintf(range, sizeof(range), "%s to %s", revenue_bp_text(sh->min_bp, a, sizeof(a)),
                     revenue_bp_text(sh->max_bp, b, sizeof(b)));
            return revenue__err(err, errcap, "%s may be set from %s", acc, range);
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->shares[i].adjustable)
            got += bp[i];
    }
    if (got != want)
        return revenue__err(
            err, errcap, "the adjustable shares must add up to %s together (they add up to %s)",
            revenue_bp_text(want, a, sizeof(a)), revenue_bp_text(got, b, sizeof(b)));
    return 0;
}

const char *revenue_override_text(const struct revenue_split *s, const int32_t *bp, char *buf,
                                  size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n && used < cap; i++) {
        if (!s->shares[i].adjustable)
            continue;
        int n = snprintf(buf + used, cap - used, "%s%s %dbp", used > 0 ? " " : "",
                         s->shares[i].account, (int)bp[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* ---- splitting ------------------------------------------------------------ */

/* The account a share names for a charge in scope; false when it names
 * <scope> and there is none (or the result is too long). */
static bool revenue__resolve(const char *tmpl, const char *scope, char *out, size_t cap)
{
    const char *at = strstr(tmpl, REVENUE_SCOPE);
    if (at == NULL) {
        snprintf(out, cap, "%s", tmpl);
        return true;
    }
    if (scope == NULL || scope[0] == '\0')
        return false;
    size_t used = 0;
    const char *s = tmpl;
    while (at != NULL) {
        int n = snprintf(out + used, cap - used, "%.*s%s", (int)(at - s), s, scope);
        if (n < 0 || (size_t)n >= cap - used)
            return false;
        used += (size_t)n;
        s = at + strlen(REVENUE_SCOPE);
        at = strstr(s, REVENUE_SCOPE);
    }
    int n = snprintf(out + used, cap - used, "%s", s);
    return n >= 0 && (size_t)n < cap - used && used + (size_t)n <= LEDGER_ID_LEN_MAX;
}

static size_t revenue__add(struct revenue_part *out, size_t n, const char *account, int64_t amount)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(out[i].account, account) == 0) {
            out[i].amount += amount;
            return n;
        }
    }
    snprintf(out[n].account, sizeof(out[n].account), "%s", account);
    out[n].amount = amount;
    return n + 1;
}

size_t revenue_split_amounts(const struct revenue_split *s, const int32_t *bp, int64_t amount,
                             const char *scope, struct revenue_part *out)
{
    if (s == NULL || s->n == 0 || amount <= 0)
        return 0;
    size_t n = 0;
    int64_t left = amount;
    char account[STORE_ID_SIZE];
    for (size_t i = 0; i < s->n; i++) {
        int32_t part = bp != NULL ? bp[i] : s->shares[i].bp;
        /* amount * part / 10000 without overflow for any int64 amount. */
        int64_t v =
            amount / REVENUE_BP_TOTAL * part + amount % REVENUE_BP_TOTAL * part / REVENUE_BP_TOTAL;
        if (v == 0)
            continue;
        const char *to = revenue__resolve(s->shares[i].account, scope, account, sizeof(account))
                             ? account
                             : s->remainder;
        n = revenue__add(out, n, to, v);
        left -= v;
    }
    if (left > 0)
        n = revenue__add(out, n, s->remainder, left);
    /* Drop what merged to nothing (never happens with parts > 0). */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i].amount > 0)
            out[m++] = out[i];
    }
    return m;
}

/* ---- the running split ----------------------------------------------------- */

struct revenue {
    struct revenue_split split;
    struct map *groups; /* "<platform>:<group>" -> override text (heap) */
    unsigned loading;
    bool freed;
    unsigned sets; /* overrides set here, so that a refresh sees it raced one */
    /* A refresh asked for while a read was under way (which may have
     * begun before the change that asked for it): made after it. */
    bool again;
    struct store *again_store;
};

struct revenue *revenue_new(void)
{
    struct revenue *rv = calloc(1, sizeof(*rv));
    if (rv == NULL)
        return NULL;
    rv->groups = map_new(free);
    if (rv->groups == NULL) {
        free(rv);
        return NULL;
    }
    return rv;
}

static void revenue__destroy(struct revenue *rv)
{
    map_free(rv->groups);
    free(rv);
}

void revenue_free(struct revenue *rv)
{
    if (rv == NULL)
        return;
    rv->freed = true;
    if (rv->loading == 0)
        revenue__destroy(rv);
}

void revenue_configure(struct revenue *rv, const struct revenue_split *s)
{
    if (rv != NULL)
        rv->split = *s;
}

const struct revenue_split *revenue_config(const struct revenue *rv)
{
    static const struct revenue_split none;
    return rv != NULL ? &rv->split : &none;
}

static void revenue__group_key(char *buf, size_t cap, enum command_platform platform,
                               const char *scope_id)
{
    snprintf(buf, cap, "%s:%s", command_platform_name(platform), scope_id);
}

bool revenue_parts(const struct revenue *rv, enum command_platform platform, const char *scope_id,
                   int32_t *bp)
{
    const struct revenue_split *s = revenue_config(rv);
    for (size_t i = 0; i < s->n; i++)
        bp[i] = s->shares[i].bp;
    if (rv == NULL || scope_id == NULL || scope_id[0] == '\0' || map_count(rv->groups) == 0)
        return false;
    char key[COMMAND_ID_MAX + 16];
    revenue__group_key(key, sizeof(key), platform, scope_id);
    const char *text = map_get(rv->groups, key);
    char err[160];
    if (text == NULL || revenue_override_parse(s, text, bp, err, sizeof(err)) < 0) {
        for (size_t i = 0; i < s->n; i++)
            bp[i] = s->shares[i].bp; /* the operator's limits no longer allow it */
        return false;
    }
    return true;
}

size_t revenue_shares(const struct revenue *rv, enum command_platform platform,
                      const char *scope_id, int64_t amount, struct revenue_part *out)
{
    const struct revenue_split *s = revenue_config(rv);
    if (s->n == 0)
        return 0;
    int32_t bp[REVENUE_SHARES_MAX];
    revenue_parts(rv, platform, scope_id, bp);
    char scope[COMMAND_ID_MAX + 16] = "";
    if (scope_id != NULL && scope_id[0] != '\0')
        revenue__group_key(scope, sizeof(scope), platform, scope_id);
    return revenue_split_amounts(s, bp, amount, scope, out);
}

struct revenue_op {
    struct revenue *rv;
    revenue_cb cb;
    void *data;
    struct map *fresh; /* a refresh: the overrides as read, replacing them at the end */
    unsigned sets_at;  /* ... unless one was set here meanwhile (rv->sets moved) */
};

static int revenue__row(const char *key, const char *value, void *data)
{
    struct revenue_op *op = data;
    struct revenue *rv = op->rv;
    if (rv->freed)
        return HB_ECANCELED;
    char *text = strdup(value);
    if (text == NULL || map_set(op->fresh != NULL ? op->fresh : rv->groups, key, text) < 0) {
        free(text);
        return HB_ENOMEM;
    }
    return 0;
}

static int revenue__read(struct revenue *rv, struct store *store, bool fresh, revenue_cb cb,
                         void *data);

static void revenue__read_done(int rc, void *data)
{
    struct revenue_op *op = data;
    struct revenue *rv = op->rv;
    if (rv->freed) {
        map_free(op->fresh);
        free(op);
        if (--rv->loading == 0)
            revenue__destroy(rv);
        return;
    }
    if (rc < 0)
        log_warn("revenue.load_failed", "error=%s", hb_strerror(rc));
    if (op->fresh != NULL) {
        /* An override set here while the rows were read is newer than
         * what was read: keep the map, and the next refresh reads again. */
        if (rc == 0 && rv->sets == op->sets_at) {
            map_free(rv->groups);
            rv->groups = op->fresh;
            op->fresh = NULL;
        }
        map_free(op->fresh);
    }
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
    if (--rv->loading == 0 && rv->again && !rv->freed) {
        rv->again = false;
        int again = revenue__read(rv, rv->again_store, true, NULL, NULL);
        if (again < 0)
            log_warn("revenue.load_failed", "error=%s", hb_strerror(again));
    }
}

static int revenue__read(struct revenue *rv, struct store *store, bool fresh, revenue_cb cb,
                         void *data)
{
    struct revenue_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct revenue_op){.rv = rv, .cb = cb, .data = data, .sets_at = rv->sets};
    if (fresh && (op->fresh = map_new(free)) == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    int rc = state_read_all(store, REVENUE_NS, revenue__row, revenue__read_done, op);
    if (rc < 0) {
        map_free(op->fresh);
        free(op);
        return rc;
    }
    rv->loading++;
    return 0;
}

int revenue_load(struct revenue *rv, struct store *store, revenue_cb cb, void *data)
{
    return revenue__read(rv, store, false, cb, data);
}

int revenue_refresh(struct revenue *rv, struct store *store, revenue_cb cb, void *data)
{
    if (rv == NULL || store == NULL)
        return HB_EINVAL;
    if (rv->loading > 0)
        return HB_EBUSY; /* a load or a refresh is under way */
    return revenue__read(rv, store, true, cb, data);
}

int revenue_refresh_after(struct revenue *rv, struct store *store)
{
    int rc = revenue_refresh(rv, store, NULL, NULL);
    if (rc == HB_EBUSY) {
        rv->again = true;
        rv->again_store = store;
        rc = 0;
    }
    return rc;
}

static void revenue__stored(int rc, const char *value, void *data)
{
    (void)value;
    struct revenue_op *op = data;
    if (rc < 0)
        log_warn("revenue.not_stored", "error=%s", hb_strerror(rc));
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
}

int revenue_override_set(struct revenue *rv, struct store *store, enum command_platform platform,
                         const char *scope_id, const char *text, revenue_cb cb, void *data)
{
    if (rv == NULL || store == NULL || scope_id == NULL || scope_id[0] == '\0')
        return HB_EINVAL;
    char key[COMMAND_ID_MAX + 16];
    revenue__group_key(key, sizeof(key), platform, scope_id);
    char *copy = text != NULL ? strdup(text) : NULL;
    struct revenue_op *op = calloc(1, sizeof(*op));
    if (op == NULL || (text != NULL && copy == NULL)) {
        free(op);
        free(copy);
        return HB_ENOMEM;
    }
    *op = (struct revenue_op){.rv = rv, .cb = cb, .data = data};
    int rc = state_put(store, REVENUE_NS, key, text, revenue__stored, op);
    if (rc < 0) {
        free(op);
        free(copy);
        return rc;
    }
    rv->sets++; /* a refresh under way reads from before it */
    if (copy == NULL)
        map_remove(rv->groups, key);
    else if (map_set(rv->groups, key, copy) < 0)
        free(copy);
    return 0;
}
