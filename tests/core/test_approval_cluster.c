/* The approval queue with several daemons on one ledger: a job held on one
 * is decided through another, and held by one daemon only (taken over
 * once its holder is gone). */
#include "tests/core/approval_fixture.h"

#include "core/cluster.h"
#include "base/error.h"
#include "base/hex.h"
#include "tests/test.h"

#include <openssl/sha.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The other daemon of a shared ledger: its own engine and router over
 * the same store, in a cluster. */
struct at_other {
    struct core core;
    struct generate *g;
    struct router *router;
};

static void at_other_start_lease(struct at *at, struct at_other *o, int64_t lease_ms)
{
    o->core = at->gt.core; /* the same ledger, host and keys */
    o->g = NULL;
    o->core.cluster = cluster_new(&at->gt.lt.loop, ledger_store(at->gt.lt.ledger), "run-other",
                                  lease_ms, NULL, NULL, NULL);
    assert_non_null(o->core.cluster);
    struct generate_options opts = {.clock = {.now_ms = gt_clock, .data = &at->gt}};
    o->g = generate_new(&at->gt.lt.loop, &o->core, generate_catalog(at->gt.g), &opts);
    assert_non_null(o->g);
    o->core.generate = o->g;
    struct approval_rules r;
    at_rules(&r);
    generate_approval_configure(o->g, &r);
    o->router = router_new(&o->core);
    assert_non_null(o->router);
}

static void at_other_start(struct at *at, struct at_other *o)
{
    at_other_start_lease(at, o, 15000);
}

static void at_other_stop(struct at *at, struct at_other *o)
{
    router_free(o->router);
    at->gt.closed = 0;
    generate_close(o->g, gt_closed, &at->gt);
    gt_wait(&at->gt, &at->gt.closed, 1);
    cluster_free(o->core.cluster);
}

static void at_other_line(struct at *at, struct at_other *o, const char *line,
                          struct reply_capture *cap)
{
    struct invocation inv;
    gt_inv(&inv, cap, "boss", NULL);
    inv.admin = true;
    router_dispatch(o->router, &inv, line);
    while (cap->finished == 0 && !at->gt.guard_fired)
        uv_run(&at->gt.lt.loop, UV_RUN_ONCE);
    invocation_clear(&inv);
}

/* An admin of another Discord server (777) than any job here is from. */
static void at_other_server_admin(struct invocation *by)
{
    memset(by, 0, sizeof(*by));
    by->platform = COMMAND_PLATFORM_DISCORD;
    by->scope = COMMAND_SCOPE_GROUP;
    by->admin = true;
    snprintf(by->user_id, sizeof(by->user_id), "9");
    snprintf(by->scope_id, sizeof(by->scope_id), "777");
    snprintf(by->channel_id, sizeof(by->channel_id), "778");
}

/* Two daemons on one ledger, ann's turn held on the first (at). */
static void at_pair_held(struct at *at, struct at_other *other, char id[APPROVAL_ID_LEN + 1])
{
    at_init(at);
    at_other_start(at, other);
    struct reply_capture cap;
    at_hold(at, &cap, "ann", "h", "tell me a story", id);
}

struct at_fwd {
    int rc;
    bool done;
    char msg[65536]; /* a shared list of 200 jobs */
};

static void at_fwd_done(int rc, const char *msg, void *data)
{
    struct at_fwd *f = data;
    f->rc = rc;
    f->done = true;
    snprintf(f->msg, sizeof(f->msg), "%s", msg);
}

/* Several daemons on one ledger: a job held on one is decided through
 * another (the admins' chat and commands reach whichever daemon serves
 * them). The decision is checked there against the job's record, left in
 * the store, and applied by the daemon holding the job at its heartbeat:
 * the member is answered, once; a second decision hears it was decided;
 * an admin of another server may not; an unknown id is told so. */
static void test_decided_through_other_daemon(void **state)
{
    (void)state;
    struct at at;
    struct at_other other;
    char id[APPROVAL_ID_LEN + 1];
    at_pair_held(&at, &other, id);
    struct reply_capture adm;
    /* The other daemon's list shows it, from its record. */
    at_other_line(&at, &other, "admin approvals", &adm);
    assert_has(&adm, "Waiting for approval:");
    assert_has(&adm, id);
    assert_has(&adm, "console:ann, h, up to");
    assert_has(&adm, "held: model h");
    reply_capture_close(&adm);

    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "approved (it takes effect within a few seconds)");
    reply_capture_close(&adm);
    assert_int_equal(at.gt.held.ncalls, 0); /* not yet: at the holder's heartbeat */
    generate_approvals_asked(at.gt.g);
    held_finish(held_wait_call(&at.gt, 0), 0, "once upon a time", 5, 5);
    at_told(&at, "ann", "once upon a time");
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 1);
    assert_true(gt_balance(&at.gt, "ann") < 100);
    assert_int_equal(
        test_sql_int(at.gt.lt.path, "SELECT COUNT(*) FROM state WHERE ns = 'approval.asked'"), 0);

    /* Decided: through the other daemon again, it says so and by whom. */
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "already");
    assert_has(&adm, "console:boss");
    reply_capture_close(&adm);

    /* Held again: an admin of another Discord server may not decide it. */
    struct reply_capture cap;
    at_hold(&at, &cap, "bob", "h", "another story", id);
    struct invocation by;
    at_other_server_admin(&by);
    struct at_fwd f = {0};
    assert_int_equal(
        generate_approval_forward(other.g, &by, id, APPROVAL_REJECTED, NULL, at_fwd_done, &f), 0);
    while (!f.done)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(f.rc, HB_EPERM);
    /* An id no daemon holds. */
    f = (struct at_fwd){0};
    assert_int_equal(generate_approval_forward(other.g, &by, "0badf00d", APPROVAL_REJECTED, NULL,
                                               at_fwd_done, &f),
                     0);
    while (!f.done)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(f.rc, HB_ENOTFOUND);
    assert_non_null(strstr(f.msg, "0badf00d"));
    /* Rejected through the other daemon with a reason: voided, nothing charged. */
    snprintf(line, sizeof(line), "admin reject %s Off topic", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "rejected");
    reply_capture_close(&adm);
    generate_approvals_asked(at.gt.g);
    at_told(&at, "bob", "Off topic");
    gt_settle(&at.gt, 5);
    assert_int_equal(at_pending(&at, "bob"), 0);
    assert_int_equal(at.gt.held.ncalls, 1);
    at_other_line(&at, &other, "admin approvals", &adm);
    assert_has(&adm, "Nothing waits for approval.");
    reply_capture_close(&adm);

    at_other_stop(&at, &other);
    at_done(&at);
}

/* Two admins decide one held job through other daemons before its
 * holder's heartbeat: the first decision stands and the second admin
 * hears it was taken (before, the second replaced the first in the
 * store, and the first admin had been told "rejected" for a job that
 * then ran). */
static void test_first_remote_decision_stands(void **state)
{
    (void)state;
    struct at at;
    struct at_other other;
    char id[APPROVAL_ID_LEN + 1];
    at_pair_held(&at, &other, id);
    struct reply_capture adm;
    char line[64];
    snprintf(line, sizeof(line), "admin reject %s Off topic", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "rejected");
    reply_capture_close(&adm);
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "already");
    assert_has(&adm, "rejected by console:boss");
    reply_capture_close(&adm);
    generate_approvals_asked(at.gt.g);
    at_told(&at, "ann", "Off topic");
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 0);
    assert_int_equal(at_pending(&at, "ann"), 0);
    at_other_stop(&at, &other);
    at_done(&at);
}

/* A decision through another daemon for a job whose hold ran out (its
 * holder times it out at its next look) is told so, not "approved" for a
 * job that then times out; one in time is told it takes effect shortly. */
static void test_remote_decision_after_the_hold_ran_out(void **state)
{
    (void)state;
    struct at at;
    struct at_other other;
    char id[APPROVAL_ID_LEN + 1];
    at_pair_held(&at, &other, id);
    struct reply_capture adm;
    at.gt.wall += 3600000 + 1000; /* past the rules' hour */
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "already decided: timed_out");
    assert_null(strstr(adm.text, "takes effect"));
    reply_capture_close(&adm);
    assert_int_equal(
        test_sql_int(at.gt.lt.path, "SELECT COUNT(*) FROM state WHERE ns = 'approval.asked'"), 0);
    at_other_stop(&at, &other);
    at_done(&at);
}

/* /admin approvals lists the held jobs the asking admin may decide, not
 * every server's and group's (before, an admin of any Discord server read
 * the wallets, models and hold reasons of every other server's members),
 * on one daemon and across a shared ledger alike. */
static void test_list_shows_only_what_the_admin_decides(void **state)
{
    (void)state;
    struct at at;
    struct at_other other;
    char id[APPROVAL_ID_LEN + 1];
    at_pair_held(&at, &other, id);
    struct invocation by;
    at_other_server_admin(&by);
    char *list = malloc(8192);
    assert_non_null(list);
    assert_int_equal(generate_approvals_list(at.gt.g, &by, list, 8192), 0);
    assert_null(strstr(list, id));
    struct at_fwd f = {0};
    assert_int_equal(generate_approvals_list_shared(other.g, &by, at_fwd_done, &f), 0);
    while (!f.done)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(f.rc, 0);
    assert_null(strstr(f.msg, id));
    assert_non_null(strstr(f.msg, "Nothing waits for approval."));
    /* The console's admin decides it, and sees it, here and there. */
    struct invocation op;
    memset(&op, 0, sizeof(op));
    op.platform = COMMAND_PLATFORM_CONSOLE;
    op.admin = true;
    snprintf(op.user_id, sizeof(op.user_id), "boss");
    assert_int_equal(generate_approvals_list(at.gt.g, &op, list, 8192), 1);
    assert_non_null(strstr(list, id));
    f = (struct at_fwd){0};
    assert_int_equal(generate_approvals_list_shared(other.g, &op, at_fwd_done, &f), 0);
    while (!f.done)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_non_null(strstr(f.msg, id));
    free(list);
    at_other_stop(&at, &other);
    at_done(&at);
}

static void at_recovered_count(int rc, size_t voided, void *data)
{
    (void)voided;
    assert_int_equal(rc, 0);
    (*(int *)data)++;
}

static void at_noop_timer(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop (up to 4 s) until c has read the heartbeats and finds run
 * alive (want) or gone. */
static bool at_cluster_sees(struct at *at, struct cluster *c, const char *run, bool want)
{
    uv_timer_t t;
    uv_timer_init(&at->gt.lt.loop, &t);
    uv_timer_start(&t, at_noop_timer, 10, 10);
    for (int i = 0; i < 400 && (!cluster_runs_known(c) || cluster_run_alive(c, run) != want); i++)
        uv_run(&at->gt.lt.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&at->gt.lt.loop, UV_RUN_NOWAIT);
    return cluster_runs_known(c) && cluster_run_alive(c, run) == want;
}

/* Several daemons on one ledger: a held job is held by one daemon only.
 * Another one starting leaves it to the daemon holding it (before, every
 * daemon brought every held job back at its start, and two held it);
 * once the holder's heartbeat ran out, the first daemon to see it takes
 * the job over, and runs it on approval. */
static void test_held_job_held_by_one_daemon(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct cluster *mine = cluster_new(&at.gt.lt.loop, ledger_store(at.gt.lt.ledger),
                                       generate_run(at.gt.g), 300, NULL, NULL, NULL);
    assert_non_null(mine);
    at.gt.core.cluster = mine;
    struct reply_capture cap, adm;
    char id[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap, "ann", "h", "tell me a story", id);

    struct at_other other;
    at_other_start_lease(&at, &other, 300);
    int done = 0;
    assert_int_equal(generate_recover(other.g, at_recovered_count, &done), 0);
    gt_wait(&at.gt, &done, 1);
    char *list = malloc(8192);
    assert_non_null(list);
    assert_int_equal(generate_approvals_list(other.g, NULL, list, 8192), 0);
    /* Its heartbeat's pass while the holder lives: still not its own. */
    assert_true(at_cluster_sees(&at, other.core.cluster, generate_run(at.gt.g), true));
    assert_int_equal(generate_recover_orphans(other.g, at_recovered_count, &done), 0);
    gt_wait(&at.gt, &done, 2);
    assert_int_equal(generate_approvals_list(other.g, NULL, list, 8192), 0);

    /* The holder stops beating (a lost host): the other takes the job over. */
    cluster_free(mine);
    at.gt.core.cluster = NULL;
    assert_true(at_cluster_sees(&at, other.core.cluster, generate_run(at.gt.g), false));
    assert_int_equal(generate_recover_orphans(other.g, at_recovered_count, &done), 0);
    gt_wait(&at.gt, &done, 3);
    assert_int_equal(generate_approvals_list(other.g, NULL, list, 8192), 1);
    assert_non_null(strstr(list, id));
    free(list);
    /* A second pass takes nothing twice. */
    assert_int_equal(generate_recover_orphans(other.g, at_recovered_count, &done), 0);
    gt_wait(&at.gt, &done, 4);
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", id);
    at_other_line(&at, &other, line, &adm);
    assert_has(&adm, "approved");
    reply_capture_close(&adm);
    held_finish(held_wait_call(&at.gt, 0), 0, "once upon a time", 5, 5);
    at_told(&at, "ann", "once upon a time");
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 1);

    at_other_stop(&at, &other);
    at_done(&at);
}

/* The holder's heartbeat, on the engine's manual clock: each beat's pass
 * runs the orphan pass, as the daemon's tick does. */
struct at_beats {
    struct at *at;
    int passes;
};

static void at_beats_done(int rc, size_t voided, void *data)
{
    (void)voided;
    assert_int_equal(rc, 0);
    ((struct at_beats *)data)->passes++;
}

static void at_beats_tick(void *data)
{
    struct at_beats *b = data;
    generate_recover_orphans(b->at->gt.g, at_beats_done, b);
}

/* Another daemon takes over the held record whose prompt holds needle, as
 * its claim does: the record names that daemon's run instead of run. */
struct at_take {
    const char *needle;
    const char *run;
    char key[96];
    char *value;
};

static int at_take_seen(const char *key, const char *value, void *data)
{
    struct at_take *t = data;
    if (strstr(value, t->needle) == NULL)
        return 0;
    snprintf(t->key, sizeof(t->key), "%s", key);
    t->value = strdup(value);
    return 1;
}

static int at_take_record(struct store_txn *txn, void *data)
{
    struct at_take *t = data;
    int rc = store_txn_state_each(txn, "gen.job", "", at_take_seen, t);
    if (rc < 0)
        return rc;
    assert_non_null(t->value);
    char *at = strstr(t->value, t->run);
    assert_non_null(at);
    size_t n = strlen(t->value) + 32;
    char *taken = malloc(n);
    assert_non_null(taken);
    snprintf(taken, n, "%.*srun-other%s", (int)(at - t->value), t->value, at + strlen(t->run));
    rc = store_txn_state_put(txn, "gen.job", t->key, taken, 1);
    free(taken);
    free(t->value);
    t->value = NULL;
    return rc;
}

/* A holder whose own lease ran out (the database away, the host stalled)
 * is fenced: an admin's decision there is refused until a beat renews
 * the lease (before, it ran the job while another daemon could be taking
 * it over). The beat that renews it lets every held job go and takes back
 * only those still its own: one another daemon took meanwhile is not held
 * twice (before, both held it, and it could run twice or be timed out by
 * the one that lost it). */
static void test_lapsed_holder_lets_go(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    struct at_beats beats = {.at = &at};
    struct clock wall = {.now_ms = gt_clock, .data = &at.gt};
    struct cluster *mine = cluster_new(&at.gt.lt.loop, ledger_store(at.gt.lt.ledger),
                                       generate_run(at.gt.g), 300, &wall, at_beats_tick, &beats);
    assert_non_null(mine);
    at.gt.core.cluster = mine;
    gt_wait(&at.gt, &beats.passes, 1);
    struct reply_capture cap1, cap2, adm;
    char kept[APPROVAL_ID_LEN + 1], taken[APPROVAL_ID_LEN + 1];
    at_hold(&at, &cap1, "ann", "h", "a story to keep", kept);
    at.gt.wall += 1000; /* held after ann's: second in the queue */
    at_hold_at(&at, &cap2, "bob", "h", "a story taken", 2, taken);
    char *list = malloc(8192);
    assert_non_null(list);
    assert_int_equal(generate_approvals_list(at.gt.g, NULL, list, 8192), 2);

    /* No beat for two leases: fenced. */
    at.gt.wall += 600;
    assert_true(cluster_fenced(mine));
    char line[64];
    snprintf(line, sizeof(line), "admin approve %s", kept);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "lost touch with its database");
    reply_capture_close(&adm);
    assert_int_equal(at.gt.held.ncalls, 0);

    /* Meanwhile another daemon took bob's job over. */
    struct at_take t = {.needle = "a story taken", .run = generate_run(at.gt.g)};
    assert_int_equal(lt_store_run(&at.gt.lt, at_take_record, &t), 0);
    /* The next beats renew the lease: ann's job is held here again, bob's
     * is not. */
    int want = beats.passes + 2;
    gt_wait(&at.gt, &beats.passes, want);
    assert_false(cluster_fenced(mine));
    assert_int_equal(cluster_lapses(mine), 1);
    assert_int_equal(generate_approvals_list(at.gt.g, NULL, list, 8192), 1);
    assert_non_null(strstr(list, kept));
    assert_null(strstr(list, taken));
    free(list);
    at_line(&at, "boss", true, line, &adm);
    assert_has(&adm, "approved");
    reply_capture_close(&adm);
    held_finish(held_wait_call(&at.gt, 0), 0, "once upon a time", 5, 5);
    at_told(&at, "ann", "once upon a time");
    gt_settle(&at.gt, 5);
    assert_int_equal(at.gt.held.ncalls, 1);
    cluster_free(mine);
    at.gt.core.cluster = NULL;
    at_done(&at);
}

#define AT_MANY 201 /* one more held job than the shared list shows */

/* AT_MANY held records straight in the store, the later a key the older
 * its hold: the oldest comes last in the store's key order. */
static int at_many_held(struct store_txn *txn, void *data)
{
    (void)data;
    for (int i = 0; i < AT_MANY; i++) {
        char key[32], value[200];
        snprintf(key, sizeof(key), "gen:many%03d", i);
        snprintf(value, sizeof(value),
                 "console:m%d 1 run-gone held {\"model\":\"h\",\"why\":\"model h\","
                 "\"reserved\":5,\"held_at\":%d}",
                 i, 1000000 - i);
        int rc = store_txn_state_put(txn, "gen.job", key, value, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The approval id admins type for job id: a digest of it. */
static void at_appr_id(const char *job_id, char out[APPROVAL_ID_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)job_id, strlen(job_id), md);
    hex_encode(md, APPROVAL_ID_LEN / 2, out);
}

/* The shared list shows the oldest held jobs when there are more than it
 * shows, and says how many more wait. */
static void test_shared_list_shows_the_oldest(void **state)
{
    (void)state;
    struct at at;
    at_init(&at);
    assert_int_equal(lt_store_run(&at.gt.lt, at_many_held, NULL), 0);
    struct at_other other;
    at_other_start(&at, &other);
    struct at_fwd f = {0};
    assert_int_equal(generate_approvals_list_shared(other.g, NULL, at_fwd_done, &f), 0);
    while (!f.done)
        uv_run(&at.gt.lt.loop, UV_RUN_ONCE);
    assert_int_equal(f.rc, 0);
    char oldest[APPROVAL_ID_LEN + 1], newest[APPROVAL_ID_LEN + 1];
    at_appr_id("gen:many200", oldest);
    at_appr_id("gen:many000", newest);
    assert_non_null(strstr(f.msg, oldest));
    assert_null(strstr(f.msg, newest));
    assert_non_null(strstr(f.msg, "...and 1 more"));
    at_other_stop(&at, &other);
    at_done(&at);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_decided_through_other_daemon),
    cmocka_unit_test(test_first_remote_decision_stands),
    cmocka_unit_test(test_remote_decision_after_the_hold_ran_out),
    cmocka_unit_test(test_list_shows_only_what_the_admin_decides),
    cmocka_unit_test(test_held_job_held_by_one_daemon),
    cmocka_unit_test(test_lapsed_holder_lets_go),
    cmocka_unit_test(test_shared_list_shows_the_oldest),
};

TEST_GROUP_DEFINE(approval_cluster, tests, gt_group_setup, lt_group_teardown)
