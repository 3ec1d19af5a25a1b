/* Contests (core/contest.c) on a fake clock, through the real router and
 * ledger: an admin starts one, upvotes count for it, the daemon restarts
 * in the middle and is down across the end, and at the next start the
 * prize pays the top creators by the split exactly once, also when two
 * daemons on the same ledger end it at once; the results are posted in
 * the group, naming the winners and no prompt. */
#include "tests/test.h"

#include "base/error.h"
#include "bot/router.h"
#include "core/contest.h"
#include "core/contest_schedule.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/notify.h"
#include "core/state.h"
#include "core/votes.h"
#include "storage/store.h"
#include "tests/core/router_fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRIZES "system:prizes:telegram:g1"
#define HOUR_MS 3600000LL

/* ---- rules and periods ------------------------------------------------------- */

static void test_rules_parse(void **state)
{
    (void)state;
    struct contest_rules r;
    char err[256];
    assert_int_equal(contest_rules_parse(3, "50,30,20", &r, err, sizeof(err)), 0);
    assert_int_equal(r.winners, 3);
    assert_int_equal(r.split[0], 50);
    assert_int_equal(r.split[2], 20);
    assert_int_equal(contest_rules_parse(2, "60%, 30%", &r, err, sizeof(err)), 0);
    assert_int_equal(r.split[1], 30);
    assert_int_equal(contest_rules_parse(3, "50,30", &r, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "split must name one part per winner (3), it names 2");
    assert_int_equal(contest_rules_parse(2, "50,30,20", &r, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "split names more parts than the 2 winners");
    assert_int_equal(contest_rules_parse(2, "80,30", &r, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "split adds up to 110%, more than 100%");
    assert_int_equal(contest_rules_parse(2, "80,x", &r, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "split: \"x\" is not a whole percentage above 0");
    assert_int_equal(contest_rules_parse(0, "", &r, err, sizeof(err)), HB_EINVAL);
    assert_int_equal(contest_rules_parse(11, "", &r, err, sizeof(err)), HB_EINVAL);

    /* 2026-12-05 is a Saturday: the week ends Monday 2026-12-07 00:00 UTC. */
    int64_t sat = 1796472000000LL; /* 2026-12-05 12:00 UTC */
    int64_t end = 0;
    assert_int_equal(contest_end_for("week", sat, &end), 0);
    assert_int_equal(end, 1796601600000LL);
    assert_int_equal(contest_end_for(NULL, 1796601600000LL, &end), 0); /* Monday 00:00 */
    assert_int_equal(end, 1796601600000LL + 7 * CONTEST_DAY_MS);
    assert_int_equal(contest_end_for("3", sat, &end), 0);
    assert_int_equal(end, sat + 3 * CONTEST_DAY_MS);
    assert_int_equal(contest_end_for("0", sat, &end), HB_EINVAL);
    assert_int_equal(contest_end_for("367", sat, &end), HB_EINVAL);
    assert_int_equal(contest_end_for("soon", sat, &end), HB_EINVAL);
}

/* The split: the best entry per creator, parts rounded down. */
static void test_payout(void **state)
{
    (void)state;
    struct contest c = {.platform = COMMAND_PLATFORM_TELEGRAM, .scope_id = "g1", .id = 5};
    struct contest_rules r = {.winners = 3, .split = {50, 30, 20}};
    struct store_vote rows[] = {
        {.image = "a", .creator = "u1", .count = 4},
        {.image = "b", .creator = "u1", .count = 3},
        {.image = "c", .creator = "u2", .count = 2},
    };
    struct contest_payment p[CONTEST_WINNERS_MAX];
    size_t n = contest_payout(&c, &r, rows, 3, 101, p);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].id, "prize:telegram:g1:5:1");
    assert_string_equal(p[0].account, "telegram:u1");
    assert_int_equal(p[0].amount, 50);
    assert_int_equal(p[0].upvotes, 4);
    assert_string_equal(p[1].id, "prize:telegram:g1:5:2");
    assert_int_equal(p[1].amount, 30);
    assert_int_equal(contest_payout(&c, &r, rows, 3, -5, p), 2);
    assert_int_equal(p[0].amount, 0);
}

/* ---- a contest run --------------------------------------------------------------- */

struct posted {
    int n;
    struct notify_target to;
    char text[2048];
};

static int capture_notify(void *host, const struct notify_target *to, const char *text)
{
    struct posted *p = host;
    p->n++;
    p->to = *to;
    snprintf(p->text, sizeof(p->text), "%s", text);
    return 0;
}

static const struct core_host_ops host_ops = {.notify = capture_notify};

static int64_t fake_clock(void *data)
{
    return ((struct lt *)data)->now;
}

/* Results go to posted; the clock is Saturday 2026-12-05 12:00 UTC. */
static void posted_at_noon(struct rfx *f, struct posted *posted)
{
    memset(posted, 0, sizeof(*posted));
    f->core.host_ops = &host_ops;
    f->core.host = posted;
    f->lt.now = 1796472000000LL;
    f->core.clock = (struct clock){.now_ms = fake_clock, .data = &f->lt};
}

static const char *run(struct rfx *f, bool admin, const char *line)
{
    struct invocation inv;
    rfx_inv(&inv, COMMAND_PLATFORM_TELEGRAM, "u9", "g1");
    inv.admin = admin;
    return rfx_run(f, &inv, line);
}

/* A member's command in the group (not an admin). */
static const char *run_as(struct rfx *f, const char *user, const char *line)
{
    struct invocation inv;
    rfx_inv(&inv, COMMAND_PLATFORM_TELEGRAM, user, "g1");
    return rfx_run(f, &inv, line);
}

static int nothing_run(struct store_txn *txn, void *data)
{
    (void)txn;
    (void)data;
    return 0;
}

static void flag_cb(int rc, void *data)
{
    *(int *)data = rc == 0 || rc == HB_EEXISTS ? 1 : -1;
}

static void wait_flag(struct rfx *f, const int *flag)
{
    for (int i = 0; i < 100000 && *flag == 0; i++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(*flag, 1);
}

/* An upvote as the image's button casts it: in the contest when one runs. */
static void vote(struct rfx *f, const char *scope, const char *image, const char *voter,
                 const char *creator)
{
    char period[CONTEST_PERIOD_MAX];
    bool in = contests_vote_period(f->core.contests, scope, f->lt.now, period, sizeof(period));
    struct votes_cast v = {.scope = scope,
                           .image = image,
                           .voter = voter,
                           .creator = creator,
                           .model = "img",
                           .now_ms = f->lt.now,
                           .contest = in ? period : NULL};
    int done = 0;
    assert_int_equal(votes_cast(ledger_store(f->lt.ledger), &v, flag_cb, &done), 0);
    wait_flag(f, &done);
}

static void open_account(struct rfx *f, const char *account, uint32_t flags)
{
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&f->lt, account, flags, 0, &res), 0);
}

/* The group's prize pool, opened with 1,000 credits granted to it. */
static void fund_prizes(struct rfx *f)
{
    open_account(f, PRIZES, 0);
    struct lt_res res;
    assert_int_equal(
        lt_plain(&f->lt, "fund1", LEDGER_SYSTEM_GRANTS, PRIZES, 1000, LEDGER_KIND_GRANT, &res), 0);
}

/* The daemon stops: its contests and its ledger go. */
static void stop_daemon(struct rfx *f, struct contests **cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 100000 && contests_busy(cs[i]) > 0; k++)
            uv_run(&f->lt.loop, UV_RUN_ONCE);
        assert_int_equal(contests_busy(cs[i]), 0);
        contests_free(cs[i]);
        cs[i] = NULL;
    }
    f->core.contests = NULL;
    lt_ledger_close(&f->lt);
    f->core.ledger = NULL;
}

/* The daemon starts: the ledger opens and n contest caches (n daemons on
 * one ledger) load, ending what is past its end. */
static void start_daemon(struct rfx *f, struct contests **cs, size_t n)
{
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    for (size_t i = 0; i < n; i++) {
        cs[i] = contests_new(&f->core);
        assert_non_null(cs[i]);
    }
    for (size_t i = 0; i < n; i++) {
        int done = 0;
        assert_int_equal(contests_load(cs[i], flag_cb, &done), 0);
        wait_flag(f, &done);
    }
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 100000 && contests_busy(cs[i]) > 0; k++)
            uv_run(&f->lt.loop, UV_RUN_ONCE);
        assert_int_equal(contests_busy(cs[i]), 0);
    }
    f->core.contests = cs[0];
}

static void test_contest_run(void **state)
{
    struct rfx *f = *state;
    struct posted posted;
    posted_at_noon(f, &posted);
    struct contests *cs[2] = {NULL, NULL};
    cs[0] = contests_new(&f->core);
    f->core.contests = cs[0];

    open_account(f, "telegram:u1", LEDGER_ACCOUNT_NO_OVERDRAFT);
    open_account(f, "telegram:u2", LEDGER_ACCOUNT_NO_OVERDRAFT);
    /* u3 has no wallet yet: the payout opens it, as a first command would. */
    fund_prizes(f);

    const char *t = run(f, false, "contest");
    assert_string_equal(t, "No contest runs here. An admin starts one with /admin contest start "
                           "[week|DAYS] [prize].");
    t = run(f, false, "admin contest start");
    assert_null(strstr(t, "Contest started"));
    t = run(f, true, "admin contest start fortnight");
    assert_string_equal(t, "The period is week (until Monday 00:00 UTC) or a number of days from "
                           "1 to 366.");
    vote(f, "telegram:g1", "img0", "telegram:u2", "u1"); /* before the contest: not counted */
    t = run(f, true, "admin contest start 2 900");
    assert_string_equal(t, "Contest started: upvotes cast here until 2026-12-07 12:00 UTC count, "
                           "and the top creators win 900 credits from the prize pool "
                           "(system:prizes:<scope>).");
    t = run(f, true, "admin contest start week");
    assert_string_equal(t, "A contest already runs here; /contest shows it, /admin contest stop "
                           "ends it.");

    f->lt.now += HOUR_MS;
    vote(f, "telegram:g1", "img1", "telegram:u2", "u1");
    vote(f, "telegram:g1", "img1", "telegram:u3", "u1");
    vote(f, "telegram:g1", "img1", "telegram:u3", "u1"); /* the same voter: once */
    vote(f, "telegram:g1", "img2", "telegram:u1", "u2");
    vote(f, "telegram:g2", "img9", "telegram:u1", "u3"); /* another group: not its contest */
    t = run(f, false, "contest");
    assert_string_equal(t, "Contest here: ends 2026-12-07 12:00 UTC (in 1d 23h 0m).\n"
                           "Standings (upvotes cast since the start):\n"
                           "  1. u1: 2 upvotes (image img1)\n"
                           "  2. u2: 1 upvote (image img2)\n"
                           "Prize pool: 1000 credits (system:prizes:telegram:g1). Prize: 900 "
                           "credits of it.\n"
                           "The top 3 creators win 50/30/20 % of the prize.");

    /* A restart in the middle: the contest is read back from the store. */
    stop_daemon(f, cs, 1);
    f->lt.now += 12 * HOUR_MS;
    start_daemon(f, cs, 1);
    assert_non_null(contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1"));
    assert_int_equal(contests_tick(cs[0]), 0); /* not over yet */
    vote(f, "telegram:g1", "img3", "telegram:u1", "u3");
    vote(f, "telegram:g1", "img4", "telegram:u2", "u1"); /* u1's second entry: places once */
    t = run(f, false, "contest");
    assert_non_null(strstr(t, "  3. u3: 1 upvote (image img3)\n  4. u1: 1 upvote (image img4)"));

    /* The daemon is down across the end; two daemons start on the ledger. */
    stop_daemon(f, cs, 1);
    f->lt.now += 3 * CONTEST_DAY_MS;
    start_daemon(f, cs, 2);
    assert_int_equal(posted.n, 1);
    assert_int_equal(posted.to.platform, COMMAND_PLATFORM_TELEGRAM);
    assert_int_equal(posted.to.scope, COMMAND_SCOPE_GROUP);
    assert_string_equal(posted.to.scope_id, "g1");
    assert_string_equal(posted.to.channel_id, "g1");
    assert_string_equal(posted.text, "The contest has ended. Winners:\n"
                                     "1. u1 with 2 upvotes: 450 credits\n"
                                     "2. u2 with 1 upvote: 270 credits\n"
                                     "3. u3 with 1 upvote: 180 credits");
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 450);
    assert_int_equal(lt_balance(&f->lt, "telegram:u2").posted, 270);
    assert_int_equal(lt_balance(&f->lt, "telegram:u3").posted, 180 + 100); /* + welcome bonus */
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 100);
    assert_null(contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1"));
    assert_null(contests_find(cs[1], COMMAND_PLATFORM_TELEGRAM, "g1"));

    /* /profile shows the wins and prizes, counted once however many
     * daemons ended it. */
    t = run_as(f, "u1", "profile");
    assert_non_null(strstr(t, "Contest wins: 1 in all. Prizes won: 450 credits in all."));
    t = run_as(f, "u3", "profile");
    assert_non_null(strstr(t, "Contest wins: 1 in all. Prizes won: 180 credits in all."));
    t = run_as(f, "u9", "profile");
    assert_non_null(strstr(t, "Contest wins: 0 in all. Prizes won: 0 credits in all."));

    /* A second end check pays nothing and posts nothing. */
    assert_int_equal(contests_tick(cs[0]), 0);
    assert_int_equal(contests_tick(cs[1]), 0);
    stop_daemon(f, cs, 2);
    start_daemon(f, cs, 1);
    assert_int_equal(posted.n, 1);
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 100);
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 450);
    t = run(f, false, "contest");
    assert_non_null(strstr(t, "No contest runs here."));
    assert_int_equal(lt_verify_ledger(&f->lt, NULL), 0);

    /* A stopped contest pays nothing at its end. */
    t = run(f, true, "admin contest start week");
    assert_non_null(strstr(t, "Contest started: upvotes cast here until 2026-12-14 00:00 UTC"));
    assert_non_null(strstr(t, "the prize pool (system:prizes:<scope>) as it stands then"));
    vote(f, "telegram:g1", "img5", "telegram:u1", "u2");
    /* Another daemon on the same store learns of it at its next read... */
    struct contests *other = contests_new(&f->core);
    int done = 0;
    assert_int_equal(contests_load(other, flag_cb, &done), 0);
    wait_flag(f, &done);
    assert_non_null(contests_find(other, COMMAND_PLATFORM_TELEGRAM, "g1"));
    t = run(f, true, "admin contest stop");
    assert_string_equal(t, "Contest stopped: nothing was paid, the prize pool stays as it is.");
    t = run(f, true, "admin contest stop");
    assert_string_equal(t, "No contest runs here.");
    /* ... and of its stop too. */
    done = 0;
    assert_int_equal(contests_load(other, flag_cb, &done), 0);
    wait_flag(f, &done);
    assert_null(contests_find(other, COMMAND_PLATFORM_TELEGRAM, "g1"));
    /* A stop heard from the first daemon while a read is under way there
     * that began before it: contests_load_after reads again after it. */
    t = run(f, true, "admin contest start week");
    assert_non_null(strstr(t, "Contest started"));
    done = 0;
    assert_int_equal(contests_load(other, flag_cb, &done), 0);
    wait_flag(f, &done);
    assert_non_null(contests_find(other, COMMAND_PLATFORM_TELEGRAM, "g1"));
    done = 0;
    assert_int_equal(contests_load(other, flag_cb, &done), 0);
    assert_int_equal(contests_stop(f->core.contests, COMMAND_PLATFORM_TELEGRAM, "g1", NULL, NULL),
                     0);
    assert_int_equal(contests_load_after(other), 0);
    wait_flag(f, &done);
    assert_int_equal(lt_store_run(&f->lt, nothing_run, NULL), 0); /* queued behind it */
    assert_null(contests_find(other, COMMAND_PLATFORM_TELEGRAM, "g1"));
    contests_free(other);
    f->lt.now += 8 * CONTEST_DAY_MS;
    assert_int_equal(contests_tick(cs[0]), 0);
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 100);
    assert_int_equal(posted.n, 1);

    /* A contest without a prize pays the whole pool; nobody voted: nobody wins. */
    t = run(f, true, "admin contest start 1");
    f->lt.now += CONTEST_DAY_MS;
    t = run(f, true, "admin contest stop"); /* past its end it pays: no stopping it */
    assert_string_equal(t, "This contest has ended and is being paid: it cannot be stopped.");
    assert_int_equal(contests_tick(cs[0]), 1);
    for (int k = 0; k < 100000 && contests_busy(cs[0]) > 0; k++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(posted.n, 2);
    assert_string_equal(posted.text,
                        "The contest has ended. No image received an upvote, so nobody wins "
                        "this time.");
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 100);

    stop_daemon(f, cs, 1);
    lt_ledger_open(&f->lt); /* the fixture closes it */
    f->core.ledger = f->lt.ledger;
}

/* The daemon that paid a contest stopped before it posted the results
 * (the payout committed, the contest's row not yet removed): the next end
 * check finds the payout made (a replay moves nothing) and still posts,
 * once. The payout is made here as that daemon made it. */
static void test_results_posted_after_replayed_payout(void **state)
{
    struct rfx *f = *state;
    struct posted posted;
    posted_at_noon(f, &posted);
    struct contests *cs[1] = {contests_new(&f->core)};
    f->core.contests = cs[0];
    open_account(f, "telegram:u1", LEDGER_ACCOUNT_NO_OVERDRAFT);
    fund_prizes(f);
    const char *t = run(f, true, "admin contest start 1 900");
    assert_non_null(strstr(t, "Contest started"));
    const struct contest *c = contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1");
    assert_non_null(c);
    f->lt.now += HOUR_MS;
    vote(f, "telegram:g1", "img1", "telegram:u2", "u1");
    char id[128];
    snprintf(id, sizeof(id), "prize:telegram:g1:%" PRId64 ":1", c->id);
    struct lt_res res;
    assert_int_equal(lt_plain(&f->lt, id, PRIZES, "telegram:u1", 450, LEDGER_KIND_TRANSFER, &res),
                     0);
    /* The pool as it stood when that daemon fixed the winners (1,000). */
    assert_int_equal(
        lt_plain(&f->lt, "fund2", LEDGER_SYSTEM_GRANTS, PRIZES, 450, LEDGER_KIND_GRANT, &res), 0);
    f->lt.now += 2 * CONTEST_DAY_MS;
    assert_int_equal(contests_tick(cs[0]), 1);
    for (int k = 0; k < 100000 && contests_busy(cs[0]) > 0; k++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(posted.n, 1);
    assert_string_equal(posted.text, "The contest has ended. Winners:\n"
                                     "1. u1 with 1 upvote: 450 credits");
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 450); /* paid once */
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 1000);       /* the replay moved nothing */
    assert_null(contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1"));
    /* Ended: a second check posts nothing more. */
    assert_int_equal(contests_tick(cs[0]), 0);
    assert_int_equal(posted.n, 1);
    stop_daemon(f, cs, 1);
    lt_ledger_open(&f->lt); /* the fixture closes it */
    f->core.ledger = f->lt.ledger;
}

/* ---- several daemons ending contests at once ---------------------------------- */

struct board_read {
    int done;
    struct store_vote rows[VOTES_TOP_MAX];
    size_t n;
};

static void board_cb(int rc, const struct store_vote *rows, size_t n, void *data)
{
    struct board_read *b = data;
    assert_int_equal(rc, 0);
    memcpy(b->rows, rows, n * sizeof(rows[0]));
    b->n = n;
    b->done = 1;
}

/* Random votes, random prizes, two to four daemons loading at once (their
 * store jobs interleave): each round pays every winner exactly its part,
 * once, and posts once. */
static void test_concurrent_ends(void **state)
{
    struct rfx *f = *state;
    struct posted posted;
    posted_at_noon(f, &posted);
    const char *users[] = {"u1", "u2", "u3", "u4", "u5"};
    char account[32];
    for (size_t i = 0; i < 5; i++) {
        snprintf(account, sizeof(account), "telegram:%s", users[i]);
        open_account(f, account, LEDGER_ACCOUNT_NO_OVERDRAFT);
    }
    open_account(f, PRIZES, 0);
    uint64_t r = 12345;
    int64_t total = 0;
    for (int round = 0; round < 6; round++) {
        struct lt_res res;
        char id[32];
        snprintf(id, sizeof(id), "fund%d", round);
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        assert_int_equal(lt_plain(&f->lt, id, LEDGER_SYSTEM_GRANTS, PRIZES,
                                  (int64_t)(r >> 40) % 997 + 1, LEDGER_KIND_GRANT, &res),
                         0);
        struct contests *cs[4] = {contests_new(&f->core), NULL, NULL, NULL};
        f->core.contests = cs[0];
        struct contest c = {.platform = COMMAND_PLATFORM_TELEGRAM,
                            .scope_id = "g1",
                            .channel_id = "g1",
                            .id = f->lt.now,
                            .end_ms = f->lt.now + CONTEST_DAY_MS,
                            .prize = round % 2 == 0 ? 0 : (int64_t)(r >> 50) % 500 + 1};
        int done = 0;
        assert_int_equal(contests_start(cs[0], &c, flag_cb, &done), 0);
        wait_flag(f, &done);
        f->lt.now += HOUR_MS;
        for (int v = 0; v < 12; v++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            char image[16], voter[32];
            snprintf(image, sizeof(image), "r%di%d", round, (int)((r >> 33) % 6));
            snprintf(voter, sizeof(voter), "telegram:v%d", (int)((r >> 45) % 7));
            vote(f, "telegram:g1", image, voter, users[(r >> 33) % 6 % 5]);
        }
        /* What the end must pay: the standings and the pool as they stand. */
        struct board_read b = {0};
        assert_int_equal(contest_board(ledger_store(f->lt.ledger), &c, VOTES_TOP_MAX, board_cb, &b),
                         0);
        wait_flag(f, &b.done);
        int64_t balance = lt_balance(&f->lt, PRIZES).posted;
        int64_t pool = c.prize > 0 && c.prize < balance ? c.prize : balance;
        struct contest_payment want[CONTEST_WINNERS_MAX];
        size_t nwant = contest_payout(&c, contests_rules(cs[0]), b.rows, b.n, pool, want);
        int64_t before[5], paid = 0;
        for (size_t i = 0; i < 5; i++) {
            snprintf(account, sizeof(account), "telegram:%s", users[i]);
            before[i] = lt_balance(&f->lt, account).posted;
        }

        f->lt.now += CONTEST_DAY_MS;
        size_t ndaemons = 2 + (size_t)round % 3;
        int loaded[4] = {0, 0, 0, 0};
        for (size_t d = 1; d < ndaemons; d++)
            cs[d] = contests_new(&f->core);
        for (size_t d = 0; d < ndaemons; d++) /* all at once: their jobs interleave */
            assert_int_equal(contests_load(cs[d], flag_cb, &loaded[d]), 0);
        for (size_t d = 0; d < ndaemons; d++) {
            wait_flag(f, &loaded[d]);
            for (int k = 0; k < 100000 && contests_busy(cs[d]) > 0; k++)
                uv_run(&f->lt.loop, UV_RUN_ONCE);
            assert_int_equal(contests_busy(cs[d]), 0);
        }
        for (size_t d = 0; d < ndaemons; d++)
            assert_int_equal(contests_tick(cs[d]), 0); /* and again: nothing */
        assert_int_equal(posted.n, round + 1);
        for (size_t i = 0; i < 5; i++) {
            snprintf(account, sizeof(account), "telegram:%s", users[i]);
            int64_t expect = 0;
            for (size_t k = 0; k < nwant; k++)
                expect += strcmp(want[k].account, account) == 0 ? want[k].amount : 0;
            assert_int_equal(lt_balance(&f->lt, account).posted - before[i], expect);
            paid += expect;
        }
        assert_int_equal(lt_balance(&f->lt, PRIZES).posted, balance - paid);
        total += paid;
        for (size_t d = 0; d < ndaemons; d++)
            contests_free(cs[d]);
        f->core.contests = NULL;
        f->lt.now += HOUR_MS;
    }
    assert_true(total > 0); /* prizes were paid, not only nothing */
    assert_int_equal(lt_verify_ledger(&f->lt, NULL), 0);
}

/* ---- weighted votes ------------------------------------------------------------ */

/* A vote counts its weight (a weight_roles role, or a holding) on the
 * contest's board only, and still once per member per entry. */
static void test_weighted_votes(void **state)
{
    struct rfx *f = *state;
    f->lt.now = 1796472000000LL;
    f->core.clock = (struct clock){.now_ms = fake_clock, .data = &f->lt};
    struct contest_rules r;
    char err[256];
    assert_int_equal(contest_rules_parse(3, "50,30,20", &r, err, sizeof(err)), 0);
    assert_int_equal(
        contest_weights_parse("discord:555 3, discord:556 2", true, &r, err, sizeof(err)), 0);
    assert_int_equal(r.nweights, 2);
    assert_int_equal(r.weights[0].weight, 3);
    struct contest_rules bad = r;
    assert_int_equal(contest_weights_parse("discord:555", false, &bad, err, sizeof(err)),
                     HB_EINVAL);
    assert_string_equal(err, "weight_roles: \"discord:555\" is not a Discord role and a weight "
                             "(discord:<role id> N, N from 1 to 1000)");
    assert_int_equal(contest_weights_parse("discord:555 0", false, &bad, err, sizeof(err)),
                     HB_EINVAL);
    assert_int_equal(contest_weights_parse("555 2", false, &bad, err, sizeof(err)), HB_EINVAL);

    struct holders_config *hc = malloc(sizeof(*hc));
    assert_non_null(hc);
    assert_int_equal(
        holders_config_parse(NULL, "telegram:g1/u7*5", HOLDERS_WEEKLY, hc, err, sizeof(err)), 0);
    struct holders *h = holders_new(&f->core);
    assert_non_null(h);
    holders_configure(h, hc);
    f->core.holders = h;
    struct contests *cs = contests_new(&f->core);
    assert_non_null(cs);
    contests_configure(cs, &r);
    f->core.contests = cs;

    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_DISCORD;
    inv.scope = COMMAND_SCOPE_GROUP;
    snprintf(inv.scope_id, sizeof(inv.scope_id), "77");
    snprintf(inv.user_id, sizeof(inv.user_id), "900");
    assert_int_equal(contests_vote_weight(cs, &inv), 1);
    inv.roles[0] = 556;
    inv.roles[1] = 555;
    inv.nroles = 2;
    assert_int_equal(contests_vote_weight(cs, &inv), 3); /* the largest */
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    inv.scope = COMMAND_SCOPE_GROUP;
    snprintf(inv.scope_id, sizeof(inv.scope_id), "g1");
    snprintf(inv.user_id, sizeof(inv.user_id), "u7");
    assert_int_equal(contests_vote_weight(cs, &inv), 5); /* a holding of 5 */
    r.weight_holders = false;
    contests_configure(cs, &r);
    assert_int_equal(contests_vote_weight(cs, &inv), 1);
    r.weight_holders = true;
    contests_configure(cs, &r);

    struct contest c = {.platform = COMMAND_PLATFORM_TELEGRAM,
                        .scope_id = "g1",
                        .channel_id = "g1",
                        .id = f->lt.now,
                        .end_ms = f->lt.now + CONTEST_DAY_MS};
    int done = 0;
    assert_int_equal(contests_start(cs, &c, flag_cb, &done), 0);
    wait_flag(f, &done);
    f->lt.now += HOUR_MS;
    char period[CONTEST_PERIOD_MAX];
    assert_true(contests_vote_period(cs, "telegram:g1", f->lt.now, period, sizeof(period)));
    for (int i = 0; i < 2; i++) { /* the second time: already voted, nothing added */
        struct votes_cast v = {.scope = "telegram:g1",
                               .image = "img1",
                               .voter = "telegram:u7",
                               .creator = "u1",
                               .model = "img",
                               .now_ms = f->lt.now,
                               .contest = period,
                               .contest_weight = contests_vote_weight(cs, &inv)};
        done = 0;
        assert_int_equal(votes_cast(ledger_store(f->lt.ledger), &v, flag_cb, &done), 0);
        wait_flag(f, &done);
    }
    struct board_read b = {0};
    assert_int_equal(contest_board(ledger_store(f->lt.ledger), &c, VOTES_TOP_MAX, board_cb, &b), 0);
    wait_flag(f, &b.done);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.rows[0].count, 5);
    struct board_read week = {0};
    assert_int_equal(votes_top(ledger_store(f->lt.ledger), "telegram:g1", VOTES_WEEK, f->lt.now,
                               VOTES_TOP_MAX, board_cb, &week),
                     0);
    wait_flag(f, &week.done);
    assert_int_equal(week.n, 1);
    assert_int_equal(week.rows[0].count, 1); /* the other boards: one vote */

    f->core.contests = NULL;
    contests_free(cs);
    f->core.holders = NULL;
    holders_free(h);
    free(hc);
}

/* A daemon that did not know of a contest started on another one learns it
 * when its own start finds it in the store. */
static void test_start_learns_running(void **state)
{
    struct rfx *f = *state;
    f->lt.now = 1796472000000LL;
    f->core.clock = (struct clock){.now_ms = fake_clock, .data = &f->lt};
    struct contests *cs[2] = {contests_new(&f->core), contests_new(&f->core)};
    struct contest c = {.platform = COMMAND_PLATFORM_TELEGRAM,
                        .scope_id = "g1",
                        .channel_id = "g1",
                        .id = f->lt.now,
                        .end_ms = f->lt.now + CONTEST_DAY_MS};
    int done = 0;
    assert_int_equal(contests_start(cs[0], &c, flag_cb, &done), 0);
    wait_flag(f, &done);
    struct contest later = c;
    later.id += HOUR_MS;
    later.end_ms += HOUR_MS;
    done = 0;
    assert_int_equal(contests_start(cs[1], &later, flag_cb, &done), 0);
    wait_flag(f, &done); /* HB_EEXISTS */
    const struct contest *known = contests_find(cs[1], COMMAND_PLATFORM_TELEGRAM, "g1");
    assert_non_null(known);
    assert_int_equal(known->id, c.id);
    contests_free(cs[0]);
    contests_free(cs[1]);
}

/* A winner whose identity is linked into another wallet is paid there,
 * where they spend, not into the identity's own wallet. */
static int link_u1(struct store_txn *txn, void *data)
{
    (void)data;
    return store_txn_link_put(txn, "telegram:u1", "discord:w1", 1);
}

static void test_prize_to_linked_wallet(void **state)
{
    struct rfx *f = *state;
    struct posted posted;
    posted_at_noon(f, &posted);
    struct contests *cs[1] = {contests_new(&f->core)};
    f->core.contests = cs[0];
    open_account(f, "telegram:u1", LEDGER_ACCOUNT_NO_OVERDRAFT);
    open_account(f, "discord:w1", LEDGER_ACCOUNT_NO_OVERDRAFT);
    fund_prizes(f);
    assert_int_equal(lt_store_run(&f->lt, link_u1, NULL), 0);
    run(f, true, "admin contest start 1 500");
    f->lt.now += HOUR_MS;
    vote(f, "telegram:g1", "img1", "telegram:u2", "u1");
    f->lt.now += CONTEST_DAY_MS;
    assert_int_equal(contests_tick(cs[0]), 1);
    for (int k = 0; k < 100000 && contests_busy(cs[0]) > 0; k++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(posted.n, 1);
    assert_int_equal(lt_balance(&f->lt, "discord:w1").posted, 250);
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 0);
    assert_int_equal(lt_balance(&f->lt, PRIZES).posted, 750);
    stop_daemon(f, cs, 1);
    lt_ledger_open(&f->lt); /* the fixture closes it */
    f->core.ledger = f->lt.ledger;
}

/* ---- scheduled contests ------------------------------------------------------- */

#define MONDAY_1130 1795996800000LL /* 2026-11-30 00:00 UTC */

static void wait_idle(struct rfx *f, struct contests **cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 100000 && contests_busy(cs[i]) > 0; k++)
            uv_run(&f->lt.loop, UV_RUN_ONCE);
        assert_int_equal(contests_busy(cs[i]), 0);
    }
}

/* n daemons start on the ledger with the schedule: each loads (ending
 * what is past its end) and starts its window's contest. */
static void start_scheduled(struct rfx *f, struct contests **cs, size_t n,
                            const struct contest_schedule *sched)
{
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    int loaded[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        cs[i] = contests_new(&f->core);
        assert_non_null(cs[i]);
        assert_int_equal(contests_schedule(cs[i], sched), 0);
    }
    for (size_t i = 0; i < n; i++) /* at once: their jobs interleave */
        assert_int_equal(contests_load(cs[i], flag_cb, &loaded[i]), 0);
    for (size_t i = 0; i < n; i++)
        wait_flag(f, &loaded[i]);
    wait_idle(f, cs, n);
    f->core.contests = cs[0];
}

static void test_scheduled_contests(void **state)
{
    struct rfx *f = *state;
    struct posted posted;
    posted_at_noon(f, &posted);

    struct contest_schedule sched;
    char err[256];
    assert_int_equal(contest_schedule_parse("discord:77", NULL, 0, &sched, err, sizeof(err)),
                     HB_EINVAL);
    assert_string_equal(err, "schedule: \"discord:77\" is not a group (telegram:<group>, "
                             "discord:<server>/<channel for the results>)");
    assert_int_equal(
        contest_schedule_parse("telegram:g1", "fortnight", 0, &sched, err, sizeof(err)), HB_EINVAL);
    assert_string_equal(err, "schedule_period: \"fortnight\" is neither week nor a number of "
                             "days from 1 to 366");
    assert_int_equal(
        contest_schedule_parse("telegram:g1, telegram:g1", NULL, 0, &sched, err, sizeof(err)),
        HB_EINVAL);
    assert_int_equal(
        contest_schedule_parse("discord:77/88, telegram:-100", "3", 5, &sched, err, sizeof(err)),
        0);
    assert_int_equal(sched.n, 2);
    assert_string_equal(sched.groups[0].channel_id, "88");
    assert_string_equal(sched.groups[1].channel_id, "-100");
    int64_t a = 0, b = 0;
    contest_schedule_window(&sched, 1796472000000LL, &a, &b); /* 3-day windows from the epoch */
    assert_int_equal(a % (3 * CONTEST_DAY_MS), 0);
    assert_true(a <= 1796472000000LL && b == a + 3 * CONTEST_DAY_MS && b > 1796472000000LL);
    assert_int_equal(contest_schedule_parse("telegram:g1", "week", 0, &sched, err, sizeof(err)), 0);
    contest_schedule_window(&sched, 1796472000000LL, &a, &b);
    assert_int_equal(a, MONDAY_1130);
    assert_int_equal(b, MONDAY_1130 + 7 * CONTEST_DAY_MS);

    open_account(f, "telegram:u1", LEDGER_ACCOUNT_NO_OVERDRAFT);
    fund_prizes(f);

    /* The first start: this week's contest starts by itself. */
    struct contests *cs[2] = {NULL, NULL};
    lt_ledger_close(&f->lt);
    start_scheduled(f, cs, 1, &sched);
    const struct contest *c = contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1");
    assert_non_null(c);
    assert_int_equal(c->id, MONDAY_1130);
    assert_int_equal(c->end_ms, MONDAY_1130 + 7 * CONTEST_DAY_MS);
    vote(f, "telegram:g1", "img1", "telegram:u2", "u1");

    /* A restart in the middle: the same contest, no second one. */
    stop_daemon(f, cs, 1);
    f->lt.now += HOUR_MS;
    start_scheduled(f, cs, 1, &sched);
    c = contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1");
    assert_non_null(c);
    assert_int_equal(c->id, MONDAY_1130);
    vote(f, "telegram:g1", "img1", "telegram:u3", "u1");

    /* Down across the end: two daemons start; the week's contest ends and
     * pays once, and the next week's starts once. */
    stop_daemon(f, cs, 1);
    f->lt.now += 3 * CONTEST_DAY_MS; /* Tuesday 2026-12-08 */
    start_scheduled(f, cs, 2, &sched);
    assert_int_equal(posted.n, 1);
    assert_string_equal(posted.text, "The contest has ended. Winners:\n"
                                     "1. u1 with 2 upvotes: 500 credits");
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 500);
    for (size_t i = 0; i < 2; i++) {
        contests_tick(cs[i]); /* one may have begun it before the other's end was done */
        wait_idle(f, cs, 2);
        c = contests_find(cs[i], COMMAND_PLATFORM_TELEGRAM, "g1");
        assert_non_null(c);
        assert_int_equal(c->id, MONDAY_1130 + 7 * CONTEST_DAY_MS);
    }
    assert_int_equal(lt_balance(&f->lt, "telegram:u1").posted, 500);

    /* Stopped by an admin: not started again in the same week. */
    const char *t = run(f, true, "admin contest stop");
    assert_string_equal(t, "Contest stopped: nothing was paid, the prize pool stays as it is.");
    stop_daemon(f, cs, 2);
    start_scheduled(f, cs, 1, &sched);
    assert_null(contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1"));
    /* The next week's starts. */
    f->lt.now += 7 * CONTEST_DAY_MS;
    contests_tick(cs[0]);
    wait_idle(f, cs, 1);
    c = contests_find(cs[0], COMMAND_PLATFORM_TELEGRAM, "g1");
    assert_non_null(c);
    assert_int_equal(c->id, MONDAY_1130 + 14 * CONTEST_DAY_MS);
    assert_int_equal(posted.n, 1);
    assert_int_equal(lt_verify_ledger(&f->lt, NULL), 0);
    stop_daemon(f, cs, 1);
    lt_ledger_open(&f->lt); /* the fixture closes it */
    f->core.ledger = f->lt.ledger;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rules_parse),
    cmocka_unit_test(test_payout),
    cmocka_unit_test_setup_teardown(test_contest_run, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_concurrent_ends, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_results_posted_after_replayed_payout, rfx_setup,
                                    rfx_teardown),
    cmocka_unit_test_setup_teardown(test_weighted_votes, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_scheduled_contests, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_start_learns_running, rfx_setup, rfx_teardown),
    cmocka_unit_test_setup_teardown(test_prize_to_linked_wallet, rfx_setup, rfx_teardown),
};

TEST_GROUP_DEFINE(contest, tests, lt_group_setup, lt_group_teardown)
