/* See tests/core/ledger_model_split.h. */
#include "tests/core/ledger_model_split.h"

#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include <stdio.h>
#include <string.h>

void msplit_init(struct revenue_split *s, uint64_t seed)
{
    uint64_t r = seed * 6364136223846793005ull + 1442695040888963407ull;
    int32_t a = (int32_t)((r >> 33) % 5000), b = (int32_t)((r >> 20) % 3000),
            c = (int32_t)((r >> 8) % 1500);
    char text[256], err[256];
    /* The remainder (system:dev) first; a few rounds give it every kind
     * of part, odd basis points included. */
    snprintf(text, sizeof(text),
             "system:dev %dbp, pool:<scope> %dbp, system:prizes:<scope> %dbp, system:treasury %dbp",
             (int)(REVENUE_BP_TOTAL - a - b - c), (int)a, (int)b, (int)c);
    int rc = revenue_split_parse(text, NULL, NULL, s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "msplit: %s: %s\n", text, err);
    assert_int_equal(rc, 0);
    fprintf(stderr, "ledger_model: split %s\n", text);
}

size_t msplit_parts(const struct revenue_split *s, int64_t amount, struct revenue_part *out)
{
    size_t n = revenue_split_amounts(s, NULL, amount, MSPLIT_SCOPE, out);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(out[i].amount > 0);
        sum += out[i].amount;
    }
    assert_int_equal(sum, amount); /* no credit created or lost */
    for (size_t k = 0; k < s->n; k++) {
        int64_t want = amount * s->shares[k].bp / REVENUE_BP_TOTAL, got = 0;
        char account[STORE_ID_SIZE];
        snprintf(account, sizeof(account), "%s", s->shares[k].account);
        char *at = strstr(account, REVENUE_SCOPE);
        if (at != NULL)
            snprintf(at, sizeof(account) - (size_t)(at - account), "%s", MSPLIT_SCOPE);
        for (size_t i = 0; i < n; i++)
            got += strcmp(out[i].account, account) == 0 ? out[i].amount : 0;
        if (strcmp(account, s->remainder) == 0)
            assert_true(got >= want && got < want + (int64_t)s->n);
        else
            assert_int_equal(got, want);
    }
    return n;
}

struct counter_read {
    const char *name;
    int64_t used;
};

static int counter_read_run(struct store_txn *txn, void *data)
{
    struct counter_read *c = data;
    return store_txn_counter_get(txn, c->name, 1, &c->used);
}

int64_t lt_counter(struct lt *t, const char *name)
{
    struct counter_read c = {.name = name};
    assert_int_equal(lt_store_run(t, counter_read_run, &c), 0);
    return c.used;
}
