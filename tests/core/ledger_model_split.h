/* Revenue splits for the ledger model test (test_ledger_model.c): a random
 * [revenue] split, and a charge's shares computed by core/revenue.c and
 * checked against the shares' percentages before the model books them. */
#ifndef HB_TEST_LEDGER_MODEL_SPLIT_H
#define HB_TEST_LEDGER_MODEL_SPLIT_H

#include "core/revenue.h"

#include <stddef.h>
#include <stdint.h>

#define MSPLIT_SCOPE "discord:9" /* the community every split charge is spent in */

/** A random split of four shares (one to the model's pool "pool:discord:9",
 *  two to system accounts the ledger opens on their first share, the
 *  remainder's among them), drawn from seed. */
void msplit_init(struct revenue_split *s, uint64_t seed);

/** The shares of amount under s, spent in MSPLIT_SCOPE, into out; asserts
 *  that they add up to amount, that every share is its part rounded down,
 *  and that the remainder account got less than one credit per share more.
 *  Returns how many. */
size_t msplit_parts(const struct revenue_split *s, int64_t amount, struct revenue_part *out);

/** Read the store counter name (window 1) through the ledger's store. */
struct lt;
int64_t lt_counter(struct lt *t, const char *name);

#endif
