/* The member directory (core/member.h) on a real store: usernames seen are
 * kept durably with a write only when new or changed, and references
 * resolve to members of the right platform or to nothing. */
#include "tests/test.h"

#include "base/error.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/member.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct got {
    bool done;
    int rc;
    char value[128];
};

static void got_cb(int rc, const char *value, void *data)
{
    struct got *g = data;
    g->done = true;
    g->rc = rc;
    snprintf(g->value, sizeof(g->value), "%s", value != NULL ? value : "(null)");
}

static void wait_got(struct lt *t, struct got *g)
{
    while (!g->done)
        uv_run(&t->loop, UV_RUN_ONCE);
}

/* The stored id of a key; the store runs jobs in order, so this also waits
 * for every write submitted before it. */
static struct got stored(struct lt *t, const char *key)
{
    struct got g = {0};
    assert_int_equal(state_get(ledger_store(t->ledger), MEMBER_NS_NAME, key, got_cb, &g), 0);
    wait_got(t, &g);
    return g;
}

static struct got resolve(struct lt *t, struct core *core, const struct invocation *inv,
                          const char *ref)
{
    struct got g = {0};
    member_resolve(core, inv, ref, got_cb, &g);
    wait_got(t, &g);
    return g;
}

static void test_seen_writes_only_new_or_changed(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, true);
    struct core core = {.ledger = t.ledger, .members = member_dir_new()};
    assert_non_null(core.members);
    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "555", "Alice");
    assert_string_equal(stored(&t, "telegram:alice").value, "555");

    /* Change the stored value behind the cache: seeing the same mapping
     * again writes nothing, so the change survives. */
    struct got g = {0};
    assert_int_equal(
        state_put(ledger_store(t.ledger), MEMBER_NS_NAME, "telegram:alice", "999", got_cb, &g), 0);
    wait_got(&t, &g);
    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "555", "ALICE");
    assert_string_equal(stored(&t, "telegram:alice").value, "999");

    /* The name moved to another member: written. */
    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "556", "alice");
    assert_string_equal(stored(&t, "telegram:alice").value, "556");

    /* Names that cannot be usernames are not kept. */
    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "557", "a b");
    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "557", "");
    assert_int_equal(stored(&t, "telegram:a b").rc, HB_ENOTFOUND);

    member_dir_free(core.members);
    lt_done(&t);
}

static void test_resolve(void **state)
{
    (void)state;
    struct lt t;
    lt_init(&t, true, true);
    struct core core = {.ledger = t.ledger, .members = member_dir_new()};
    struct invocation tg = {.platform = COMMAND_PLATFORM_TELEGRAM};
    struct invocation dc = {.platform = COMMAND_PLATFORM_DISCORD};
    struct invocation con = {.platform = COMMAND_PLATFORM_CONSOLE};
    strcpy(con.user_id, "operator");
    strcpy(con.user_name, "operator");

    /* Ids name members directly; unknown names name nobody. */
    struct got g = resolve(&t, &core, &tg, "12345");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "12345");
    assert_int_equal(resolve(&t, &core, &tg, "@alice").rc, HB_ENOTFOUND);
    assert_int_equal(resolve(&t, &core, &tg, "alice").rc, HB_ENOTFOUND);
    assert_int_equal(resolve(&t, &core, &tg, "").rc, HB_ENOTFOUND);

    member_seen(&core, COMMAND_PLATFORM_TELEGRAM, "555", "Alice");
    g = resolve(&t, &core, &tg, "@aLiCe");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "555");
    /* Names belong to their platform. */
    assert_int_equal(resolve(&t, &core, &dc, "@alice").rc, HB_ENOTFOUND);

    /* A restart: an empty cache reads the store. */
    member_dir_free(core.members);
    core.members = member_dir_new();
    g = resolve(&t, &core, &tg, "@alice");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "555");
    /* No cache at all works too. */
    member_dir_free(core.members);
    core.members = NULL;
    g = resolve(&t, &core, &tg, "alice");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "555");

    /* The console: its own user, and nobody else. */
    g = resolve(&t, &core, &con, "operator");
    assert_int_equal(g.rc, 0);
    assert_string_equal(g.value, "operator");
    assert_int_equal(resolve(&t, &core, &con, "@Operator").rc, 0);
    assert_int_equal(resolve(&t, &core, &con, "bob").rc, HB_ENOTFOUND);
    assert_int_equal(resolve(&t, &core, &con, "555").rc, HB_ENOTFOUND);
    lt_done(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_seen_writes_only_new_or_changed),
    cmocka_unit_test(test_resolve),
};

TEST_GROUP_DEFINE(member, tests, lt_group_setup, lt_group_teardown)
