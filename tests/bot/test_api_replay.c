/* Answers kept for idempotent retries (bot/api_replay.c): what is kept and
 * read back, for how long, and that old ones are removed from the store. */
#include "bot/api_internal.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/state.h"
#include "storage/store.h"
#include "base/error.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

static const int64_t t0 = 1700000000000LL;

static struct generate_outcome outcome(const char *text, int rc)
{
    struct generate_outcome o = {.rc = rc,
                                 .text = text,
                                 .text_len = strlen(text),
                                 .input_tokens = 7,
                                 .output_tokens = 11,
                                 .charged = 5,
                                 .reserved = 9};
    return o;
}

/* Kept and read back: the text, the model, the tokens and what was
 * reserved; marked replayed, charged nothing. Until the time answers are
 * kept ends, and not after. */
static void test_kept_and_read_back(void **state)
{
    (void)state;
    struct generate_outcome o = outcome("Hello, \"world\"\n", 0);
    char *kept = api_replay_encode(&o, "fast", t0);
    assert_non_null(kept);
    struct generate_outcome back;
    cJSON *tree = api_replay_decode(kept, t0 + API_REPLAY_TTL_MS - 1, &back);
    assert_non_null(tree);
    assert_int_equal(back.rc, 0);
    assert_string_equal(back.model, "fast");
    assert_int_equal(back.text_len, strlen("Hello, \"world\"\n"));
    assert_memory_equal(back.text, "Hello, \"world\"\n", back.text_len);
    assert_int_equal(back.input_tokens, 7);
    assert_int_equal(back.output_tokens, 11);
    assert_int_equal(back.reserved, 9);
    assert_int_equal(back.charged, 0);
    assert_true(back.replayed);
    cJSON_Delete(tree);
    assert_null(api_replay_decode(kept, t0 + API_REPLAY_TTL_MS, &back));
    free(kept);

    /* A filtered answer is replayed filtered. */
    o = outcome("[redacted]", HB_EPERM);
    kept = api_replay_encode(&o, "fast", t0);
    tree = api_replay_decode(kept, t0, &back);
    assert_non_null(tree);
    assert_int_equal(back.rc, HB_EPERM);
    cJSON_Delete(tree);
    free(kept);

    /* Not one: nothing to replay. */
    assert_null(api_replay_decode("{\"at\":1}", t0, &back));
    assert_null(api_replay_decode("not json", t0, &back));
    assert_null(api_replay_decode(NULL, t0, &back));
}

/* An answer too long for a state value is not kept: a retry runs again. */
static void test_too_long_not_kept(void **state)
{
    (void)state;
    size_t n = STATE_VALUE_MAX;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, 'a', n);
    text[n] = '\0';
    struct generate_outcome o = outcome(text, 0);
    assert_null(api_replay_encode(&o, "fast", t0));
    free(text);
}

static int64_t clock_of(void *data)
{
    return *(int64_t *)data;
}

struct got {
    int rc, done;
};

static void got_cb(int rc, const char *value, void *data)
{
    (void)value;
    struct got *g = data;
    g->rc = rc;
    g->done++;
}

static int find(struct lt *lt, struct api *a, const char *id)
{
    struct got g = {0};
    assert_int_equal(api_replay_find(a, id, got_cb, &g), 0);
    while (g.done == 0)
        uv_run(&lt->loop, UV_RUN_ONCE);
    return g.rc;
}

static int count_seen(const char *key, const char *value, void *data)
{
    (void)key;
    (void)value;
    (*(int *)data)++;
    return 0;
}

static int index_count_run(struct store_txn *txn, void *data)
{
    return store_txn_state_each(txn, "api.reply.at", "", count_seen, data);
}

/* Kept in the store, found by the request's id; old ones are removed as
 * new ones are kept (at most once an hour), with their rows in the index
 * by time. */
static void test_kept_in_store_and_removed_when_old(void **state)
{
    (void)state;
    struct lt lt;
    lt_init(&lt, true, false);
    int64_t now = t0;
    struct core core = {.ledger = lt.ledger, .clock = {.now_ms = clock_of, .data = &now}};
    struct api a = {.core = &core};
    struct generate_outcome o = outcome("first", 0);
    api_replay_keep(&a, "api:k1:i:a:00", "fast", &o);
    assert_int_equal(find(&lt, &a, "api:k1:i:a:00"), 0);
    now += API_REPLAY_TTL_MS / 2;
    api_replay_keep(&a, "api:k1:i:b:00", "fast", &o); /* the first is not old yet */
    now += API_REPLAY_TTL_MS / 2 + 1;
    api_replay_keep(&a, "api:k1:i:c:00", "fast", &o);
    assert_int_equal(find(&lt, &a, "api:k1:i:a:00"), HB_ENOTFOUND);
    assert_int_equal(find(&lt, &a, "api:k1:i:b:00"), 0);
    assert_int_equal(find(&lt, &a, "api:k1:i:c:00"), 0);
    int indexed = 0;
    assert_int_equal(lt_store_run(&lt, index_count_run, &indexed), 0);
    assert_int_equal(indexed, 2);
    lt_done(&lt);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kept_and_read_back),
    cmocka_unit_test(test_too_long_not_kept),
    cmocka_unit_test(test_kept_in_store_and_removed_when_old),
};

TEST_GROUP_DEFINE(api_replay, tests, lt_group_setup, lt_group_teardown)
