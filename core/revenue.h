/* Revenue shares ([revenue] in bot.conf): what a settled generation
 * charged, split among named accounts by fixed shares, in the same ledger
 * transaction as the charge (ledger_transfer_post_split).
 *
 * A share is an account and a part of every charge, in basis points (1 %
 * is 100 bp; the shares add up to exactly 10,000). "<scope>" in an
 * account stands for the community where the credits were spent
 * ("discord:<guild>", "telegram:<group>"): "pool:<scope>" is that group's
 * pool. Each share receives the charge times its part, rounded down; what
 * the rounding leaves (less than one credit per share) goes to the
 * remainder account, so the parts always add up to the charge. Where there
 * is no community (a private chat, the console, the API) a "<scope>"
 * share goes to the remainder account too.
 *
 * Shares the operator marks adjustable may be moved by a group's admins
 * (/admin revenue), each within the operator's range, keeping their sum:
 * the fixed shares never change. The overrides are cached in memory
 * (read once at start, written through), so settlement never waits for
 * the store. */
#ifndef HB_REVENUE_H
#define HB_REVENUE_H

#include "core/command.h"
#include "core/ledger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REVENUE_SHARES_MAX 8
#define REVENUE_BP_TOTAL 10000 /* 100 % */
#define REVENUE_ACCOUNT_MAX 80 /* an account as written, "<scope>" included */
#define REVENUE_NS "revenue"   /* overrides: key "<platform>:<group>", value "ACCOUNT <n>bp ..." */
#define REVENUE_SCOPE "<scope>"

struct revenue_share {
    char account[REVENUE_ACCOUNT_MAX + 1]; /* as written; may hold "<scope>" */
    int32_t bp;                            /* part of every charge */
    bool adjustable;                       /* group admins may move it within [min_bp, max_bp] */
    int32_t min_bp, max_bp;
};

/** A split as configured. */
struct revenue_split {
    struct revenue_share shares[REVENUE_SHARES_MAX];
    size_t n; /* 0: no [revenue] shares, every charge stays in system:revenue */
    char remainder[REVENUE_ACCOUNT_MAX + 1];
};

/** Parse [revenue]: shares ("ACCOUNT PART, ..." with PART "25%", "12.5%"
 *  or "2500bp"), remainder (an account; NULL: the first share without
 *  "<scope>") and adjustable ("ACCOUNT LOW-HIGH, ..." naming shares, e.g.
 *  "pool:<scope> 0-40%"). shares NULL or empty: no split (the others must
 *  then be unset). Returns 0, or HB_EINVAL with one sentence in err that
 *  names the offending entry. */
int revenue_split_parse(const char *shares, const char *remainder, const char *adjustable,
                        struct revenue_split *out, char *err, size_t errcap);

/** Parse an override as an admin writes it ("ACCOUNT PART ..."; accounts
 *  as configured) against s into bp (s->n entries, the fixed ones as
 *  configured). Every adjustable share not named keeps its configured
 *  part. Returns 0, or HB_EINVAL with err saying why (not adjustable,
 *  out of its range, the adjustable shares no longer adding up to their
 *  configured sum). */
int revenue_override_parse(const struct revenue_split *s, const char *text, int32_t *bp, char *err,
                           size_t errcap);

/** One ledger share of one charge. */
struct revenue_part {
    char account[STORE_ID_SIZE];
    int64_t amount;
};

/** Split amount (> 0) by s with the parts bp (s->n of them; NULL: as
 *  configured), for a charge spent in scope ("<platform>:<group>"; NULL or
 *  "": none). Parts for the same account are merged, empty ones dropped.
 *  Returns the number of parts written to out (at most
 *  REVENUE_SHARES_MAX + 1); they add up to amount. 0 when s has no shares. */
size_t revenue_split_amounts(const struct revenue_split *s, const int32_t *bp, int64_t amount,
                             const char *scope, struct revenue_part *out);

/** "50%" / "12.5%" for bp into buf. */
const char *revenue_bp_text(int32_t bp, char *buf, size_t cap);

/* ---- the running split, with the groups' overrides ------------------------ */

struct revenue;
struct store;

/** No split configured, no override known. NULL when out of memory. */
struct revenue *revenue_new(void);
void revenue_free(struct revenue *rv);

/** Use split s from now on (at start and on every reload). */
void revenue_configure(struct revenue *rv, const struct revenue_split *s);

/** The configured split (n 0: none). rv NULL: none. */
const struct revenue_split *revenue_config(const struct revenue *rv);

/** The parts in effect in a group (platform, scope_id; NULL or "": none)
 *  into bp (REVENUE_SHARES_MAX): the group's override when it still fits
 *  the configured split and ranges, else the configured parts. Returns
 *  true when an override is in effect. */
bool revenue_parts(const struct revenue *rv, enum command_platform platform, const char *scope_id,
                   int32_t *bp);

/** A settlement's ledger shares for amount spent in a group (scope_id NULL
 *  or "": none): revenue_split_amounts with the parts in effect there.
 *  Returns how many (0: no split; the charge stays in system:revenue). */
size_t revenue_shares(const struct revenue *rv, enum command_platform platform,
                      const char *scope_id, int64_t amount, struct revenue_part *out);

typedef void (*revenue_cb)(int rc, void *data);

/** Read every group's override into the cache. cb may be NULL. Returns 0
 *  (cb follows) or a negative code (no callback). */
int revenue_load(struct revenue *rv, struct store *store, revenue_cb cb, void *data);

/** Read every override again, replacing those known: what an admin set on
 *  another daemon on the same ledger counts here from then on. One set
 *  here while the rows are read wins (the next refresh reads again).
 *  HB_EBUSY while a load or refresh is under way; else as revenue_load. */
int revenue_refresh(struct revenue *rv, struct store *store, revenue_cb cb, void *data);

/** revenue_refresh without a callback, for a change heard from another
 *  daemon (core/cluster.h): when a load or a refresh is under way (it may
 *  have begun before that change), another read follows it. 0 or an
 *  error. */
int revenue_refresh_after(struct revenue *rv, struct store *store);

/** An override's stored text for bp (the adjustable shares of s, as
 *  "ACCOUNT <n>bp ..."), into buf. */
const char *revenue_override_text(const struct revenue_split *s, const int32_t *bp, char *buf,
                                  size_t cap);

/** Set (text, from revenue_override_text) or clear (text NULL) a group's
 *  override: the cache at once, the store durably (cb after the commit;
 *  may be NULL). Returns 0 (cb follows) or a negative code (nothing
 *  changed). */
int revenue_override_set(struct revenue *rv, struct store *store, enum command_platform platform,
                         const char *scope_id, const char *text, revenue_cb cb, void *data);

#endif
