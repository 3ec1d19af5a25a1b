/* The economy's part of the ledger model test (test_ledger_model.c), on
 * accounts of its own beside the main model's: settlements split by
 * [revenue] shares (core/revenue.h) into a group's holder account and prize
 * account, contests paying their prizes (core/contest.h: contest_payout,
 * ids "prize:<scope>:<id>:<rank>") and holder payouts (core/holders.h:
 * holders_split, ids "holders:<scope>:<period>:<user>"), each replayed now
 * and then as a restart or a second daemon would, unchanged or with other
 * amounts. After every step: each account's balance equals the model's,
 * they sum to zero, every share equals its percentage within the
 * documented rounding, and no prize or holder payment was made twice. */
#ifndef HB_TEST_LEDGER_MODEL_ECONOMY_H
#define HB_TEST_LEDGER_MODEL_ECONOMY_H

#include <stdint.h>

struct lt;
struct meco;

/** Open the economy's accounts on t's ledger; its randomness from seed. */
struct meco *meco_new(struct lt *t, uint64_t seed);

/** One random step (a settlement, a contest's end, a holder payout, a
 *  replay of one of them, or a payer's top-up), checked. */
void meco_step(struct meco *e, struct lt *t);

/** The final checks (every prize paid exactly once, in the ledger's
 *  history; every kind of step came up); frees e. */
void meco_end(struct meco *e, struct lt *t);

#endif
