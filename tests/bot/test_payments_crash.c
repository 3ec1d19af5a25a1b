/* Payments across crashes, through the real daemon with [server] and
 * [stripe] on: a script of signed Stripe webhooks (each Checkout Session
 * reported under two event ids, some first as unpaid, refunds in part and
 * in full after the member spent credits on /chat, later deposits that must
 * repay the debt) is played in rounds, and each round ends with SIGKILL at
 * a random moment (the seed is printed; HAIBOT_SEED replays it). After each
 * kill the daemon starts again, every webhook sent so far is delivered
 * again (as Stripe retries the unacknowledged ones, and as it may repeat
 * the acknowledged ones), the daemon stops, and the database must hold
 * exactly what the script's model says: each session credited once, each
 * refund reversed once, debt never above zero and repaid at most once per
 * deposit, the balances of the model, and `haibot ledger verify` ok. */
#include "adapters/stripe/stripe.h"
#include "core/payref.h"
#include "tests/core/ledger_helpers.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PC_KEY "test-reference-key-0123456789abcdef"
#define PC_SECRET "whsec_test_secret"
#define PC_ROUNDS 7
#define PC_BONUS 100
#define PC_CHAT_PRICE 300
#define PC_SENT_MAX 256

/* The two members: the console's own wallet spends; another only pays. */
static const char *const pc_accounts[] = {"console:tester", "discord:42"};
#define PC_NACCOUNTS 2

/* A Checkout Session: whose, what it cost (cents), what it buys. */
struct pc_session {
    int account;
    int64_t price;
    int64_t credits;
};

/* Packages: 500:1000, 1000:2200. */
static const struct pc_session pc_sessions[] = {
    {0, 500, 1000},  {1, 500, 1000},  {0, 1000, 2200}, {0, 500, 1000},
    {1, 1000, 2200}, {0, 1000, 2200}, {0, 500, 1000},  {0, 500, 1000},
};
#define PC_NSESSIONS TEST_ARRAY_SIZE(pc_sessions)

enum pc_kind {
    PC_PAID,   /* checkout.session.completed, paid */
    PC_UNPAID, /* checkout.session.completed, unpaid (a delayed method) */
    PC_ASYNC,  /* checkout.session.async_payment_succeeded, paid */
    PC_PAIR,   /* completed and async_payment_succeeded at once, both paid */
    PC_CHAT,   /* the console member spends PC_CHAT_PRICE on /chat */
    PC_REFUND, /* charge.refunded, amount_refunded so far = amount */
};

struct pc_step {
    enum pc_kind kind;
    int s;          /* the session */
    int64_t amount; /* refunds: cumulative amount refunded, cents */
};

/* The script. Comments follow the console wallet W and its debt D. */
static const struct pc_step pc_script[] = {
    {PC_PAIR, 0, 0},      /* W 100 + 1000 */
    {PC_PAID, 1, 0},      /* the other member: 100 + 1000 */
    {PC_CHAT, 0, 0},      /* W 800 */
    {PC_CHAT, 0, 0},      /* W 500 */
    {PC_REFUND, 0, 250},  /* half: 500 back, W 0 */
    {PC_ASYNC, 1, 0},     /* the other member's session again */
    {PC_REFUND, 0, 500},  /* the rest: 500 more, all owed, D 500 */
    {PC_UNPAID, 2, 0},    /* nothing yet */
    {PC_ASYNC, 2, 0},     /* 2200, D repaid: W 1700, D 0 */
    {PC_REFUND, 1, 500},  /* the other member's refund: 100 left */
    {PC_CHAT, 0, 0},      /* W 1400 */
    {PC_CHAT, 0, 0},      /* W 1100 */
    {PC_REFUND, 2, 500},  /* half of 2200: W 0 */
    {PC_REFUND, 2, 1000}, /* the rest, 1100 owed: D 1100 */
    {PC_PAIR, 3, 0},      /* 1000, all of it repays: W 0, D 100 */
    {PC_PAID, 4, 0},      /* the other member: 2300 */
    {PC_PAIR, 5, 0},      /* 2200, 100 repays: W 2100, D 0 */
    {PC_CHAT, 0, 0},      /* W 1800 */
    {PC_REFUND, 5, 1000}, /* 2200 back: 1800 taken, D 400 */
    {PC_UNPAID, 6, 0},    /* nothing yet */
    {PC_ASYNC, 6, 0},     /* 1000, 400 repays: W 600, D 0 */
    {PC_ASYNC, 4, 0},     /* the other member's session again */
    {PC_REFUND, 4, 1000}, /* the other member: 100 */
    {PC_CHAT, 0, 0},      /* W 300 */
    {PC_REFUND, 6, 250},  /* 500 back: 300 taken, D 200 */
    {PC_PAIR, 7, 0},      /* 1000, 200 repays: W 800, D 0 */
    {PC_CHAT, 0, 0},      /* W 500 */
};
#define PC_NSTEPS TEST_ARRAY_SIZE(pc_script)

/* What must hold after a prefix of the script. */
struct pc_model {
    bool opened[PC_NACCOUNTS];
    int64_t wallet[PC_NACCOUNTS];
    int64_t debt[PC_NACCOUNTS]; /* owed, >= 0 */
    int64_t deposits[PC_NACCOUNTS];
    int64_t deposit_count[PC_NACCOUNTS];
    bool credited[PC_NSESSIONS];
    int64_t reversed[PC_NSESSIONS];
    int64_t repaid[PC_NSESSIONS]; /* repaid from this session's credit */
    int chats;
};

static int64_t pc_min(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void pc_model_open(struct pc_model *m, int a)
{
    if (!m->opened[a]) {
        m->opened[a] = true;
        m->wallet[a] += PC_BONUS;
    }
}

static void pc_model_apply(struct pc_model *m, const struct pc_step *st)
{
    const struct pc_session *s = &pc_sessions[st->s];
    int a = s->account;
    switch (st->kind) {
    case PC_UNPAID:
        break;
    case PC_PAID:
    case PC_ASYNC:
    case PC_PAIR:
        if (m->credited[st->s])
            break;
        pc_model_open(m, a);
        m->credited[st->s] = true;
        m->wallet[a] += s->credits;
        m->deposits[a] += s->credits;
        m->deposit_count[a]++;
        /* The debt is repaid first, from this deposit. */
        m->repaid[st->s] = pc_min(m->debt[a], pc_min(s->credits, m->wallet[a]));
        m->wallet[a] -= m->repaid[st->s];
        m->debt[a] -= m->repaid[st->s];
        break;
    case PC_CHAT:
        pc_model_open(m, 0);
        assert_true(m->wallet[0] >= PC_CHAT_PRICE); /* the script itself is sound */
        m->wallet[0] -= PC_CHAT_PRICE;
        m->chats++;
        break;
    case PC_REFUND: {
        /* Credits in proportion to the money returned, rounded up. */
        int64_t target = st->amount >= s->price
                             ? s->credits
                             : (st->amount * s->credits + s->price - 1) / s->price;
        int64_t delta = pc_min(target, s->credits) - m->reversed[st->s];
        if (delta <= 0)
            break;
        int64_t take = pc_min(m->wallet[a], delta);
        m->wallet[a] -= take;
        m->debt[a] += delta - take;
        m->reversed[st->s] += delta;
        break;
    }
    }
}

/* ---- webhooks over plain sockets, so a kill can fall inside one --------------------- */

static void pc_event(char *out, size_t cap, size_t step, const char *suffix,
                     const struct pc_step *st)
{
    const struct pc_session *s = &pc_sessions[st->s];
    char ref[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(
        payref_reference_make(ref, sizeof(ref), PC_KEY, strlen(PC_KEY), pc_accounts[s->account]),
        0);
    if (st->kind == PC_REFUND) {
        snprintf(out, cap,
                 "{\"id\":\"evt_%zu%s\",\"object\":\"event\",\"type\":\"charge.refunded\","
                 "\"data\":{\"object\":{\"id\":\"ch_%d\",\"object\":\"charge\",\"amount\":%" PRId64
                 ",\"amount_refunded\":%" PRId64 ",\"currency\":\"usd\",\"payment_intent\":"
                 "\"pi_%d\",\"refunded\":%s}}}",
                 step, suffix, st->s, s->price, st->amount, st->s,
                 st->amount >= s->price ? "true" : "false");
        return;
    }
    bool async = st->kind == PC_ASYNC || (st->kind == PC_PAIR && suffix[0] == 'b');
    snprintf(out, cap,
             "{\"id\":\"evt_%zu%s\",\"object\":\"event\",\"api_version\":\"2024-06-20\","
             "\"type\":\"%s\",\"data\":{\"object\":{\"id\":\"cs_test_%d\",\"object\":"
             "\"checkout.session\",\"amount_subtotal\":%" PRId64 ",\"amount_total\":%" PRId64
             ",\"client_reference_id\":\"%s\",\"currency\":\"usd\",\"mode\":\"payment\","
             "\"payment_intent\":\"pi_%d\",\"payment_status\":\"%s\",\"status\":\"complete\"}}}",
             step, suffix,
             async ? "checkout.session.async_payment_succeeded" : "checkout.session.completed",
             st->s, s->price, s->price, ref, st->s, st->kind == PC_UNPAID ? "unpaid" : "paid");
}

/* Deliver until the daemon takes it: 503 while its storage starts is
 * retried, as Stripe would. */
static void pc_deliver(int port, const char *body)
{
    uint64_t deadline = test_now_ms() + 15000;
    for (;;) {
        int fd = test_stripe_send(port, PC_SECRET, body);
        int status = fd >= 0 ? test_http_status(fd) : -1;
        if (status == 200)
            return;
        if (status != 503 && status != -1)
            fprintf(stderr, "payments_crash: status %d for %s\n", status, body);
        assert_true(status == 503 || status == -1);
        assert_true(test_now_ms() < deadline);
        usleep(20000);
    }
}

/* ---- the daemon ---------------------------------------------------------------------- */

struct pc {
    char *dir;
    char conf[512];
    char db[512];
    int port;
    struct test_child child;
    bool running;
    char *sent[PC_SENT_MAX]; /* every webhook sent, in order (heap) */
    size_t nsent;
    int cut; /* kills that came before a webhook was answered */
};

static int pc_setup(void **state)
{
    struct pc *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    f->port = test_port_free();
    char text[2048];
    snprintf(text, sizeof(text),
             "[storage]\npath = %s\n"
             "[ledger]\nwelcome_bonus = %d\n"
             "[console]\nenabled = true\nuser = tester\nimage_dir = %s\n"
             "[server]\nenabled = true\nport = %d\n"
             "[payments]\nreference_key = %s\npackages = 500:1000, 1000:2200\n"
             "[stripe]\nenabled = true\nwebhook_secret = %s\n"
             "checkout_url = https://buy.stripe.com/test_123\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = %d\n"
             "max_output_tokens = 50\n",
             f->db, PC_BONUS, f->dir, f->port, PC_KEY, PC_SECRET, PC_CHAT_PRICE);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
    *state = f;
    return 0;
}

static int pc_teardown(void **state)
{
    struct pc *f = *state;
    if (f->running) {
        kill(f->child.pid, SIGKILL);
        test_child_finish(&f->child, 5000);
    }
    if (f->child.pid > 0)
        test_child_free(&f->child);
    for (size_t i = 0; i < f->nsent; i++)
        free(f->sent[i]);
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void pc_start(struct pc *f)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf, NULL};
    test_child_start(&f->child, argv);
    f->running = true;
    if (!test_child_wait_for(&f->child, "err", "console.started", 15000))
        fprintf(stderr, "daemon stderr:\n%s\n", f->child.err);
    assert_non_null(strstr(f->child.err, "console.started"));
}

static void pc_kill(struct pc *f)
{
    assert_int_equal(kill(f->child.pid, SIGKILL), 0);
    assert_int_equal(test_child_finish(&f->child, 15000), 128 + SIGKILL);
    f->running = false;
    test_child_free(&f->child);
}

static void pc_stop(struct pc *f)
{
    assert_int_equal(kill(f->child.pid, SIGTERM), 0);
    int status = test_child_finish(&f->child, 15000);
    f->running = false;
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", f->child.err);
    assert_int_equal(status, 0);
    test_child_free(&f->child);
}

static size_t pc_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

#define PC_CHAT_DONE "cost 300 credits"

/* Wait up to ms for the n-th charged chat of this process; true when seen. */
static bool pc_chat_wait(struct pc *f, size_t n, int ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)ms;
    while (pc_count(f->child.out, PC_CHAT_DONE) < n) {
        if (test_now_ms() >= deadline)
            return false;
        /* Pumps the pipes for up to 20 ms. */
        test_child_wait_for(&f->child, "out", "\x01", 20);
    }
    return true;
}

static void pc_remember(struct pc *f, const char *body)
{
    assert_true(f->nsent < PC_SENT_MAX);
    f->sent[f->nsent] = strdup(body);
    assert_non_null(f->sent[f->nsent]);
    f->nsent++;
}

/* Run step k. With kill_us >= 0 the daemon is killed that many
 * microseconds after the step began (or once it is over, if sooner).
 * Returns true when the step is known to be done. */
static bool pc_step_run(struct pc *f, size_t k, long kill_us, size_t *chats)
{
    const struct pc_step *st = &pc_script[k];
    if (st->kind == PC_CHAT) {
        static const char line[] = "/chat hello there\n";
        assert_int_equal(write(f->child.in_fd, line, sizeof(line) - 1),
                         (ssize_t)(sizeof(line) - 1));
        (*chats)++;
        if (kill_us < 0) {
            if (!pc_chat_wait(f, *chats, 20000))
                fprintf(stderr, "daemon stdout:\n%s\nstderr:\n%s\n", f->child.out, f->child.err);
            assert_true(pc_chat_wait(f, *chats, 0));
            return true;
        }
        bool done = pc_chat_wait(f, *chats, (int)(kill_us / 1000));
        pc_kill(f);
        return done; /* else the database says whether it was charged */
    }
    char body[3][2048];
    size_t n = 0;
    pc_event(body[n++], sizeof(body[0]), k, "a", st);
    if (st->kind == PC_PAIR)
        pc_event(body[n++], sizeof(body[0]), k, "b", st);
    int fds[3];
    for (size_t i = 0; i < n; i++) {
        pc_remember(f, body[i]);
        fds[i] = test_stripe_send(f->port, PC_SECRET, body[i]);
    }
    if (kill_us >= 0) {
        usleep((useconds_t)kill_us);
        pc_kill(f);
    }
    for (size_t i = 0; i < n; i++) {
        int status = fds[i] >= 0 ? test_http_status(fds[i]) : -1;
        if (kill_us < 0 && status == 503) {
            pc_deliver(f->port, body[i]); /* storage still starting */
            status = 200;
        }
        if (kill_us < 0)
            assert_int_equal(status, 200);
        else if (status != 200)
            f->cut++;
    }
    return true; /* a webhook sent is delivered again until it is taken */
}

/* ---- the database against the model --------------------------------------------------- */

static int64_t pc_q(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (arg != NULL)
        assert_int_equal(sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Every transfer, oldest first, for the reader of a failed check. */
static void pc_dump(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, id, debit_account, credit_account, amount, kind, flags, "
                           "coalesce(link, '') FROM transfers ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    while (sqlite3_step(st) == SQLITE_ROW)
        fprintf(stderr, "  %lld %s %s -> %s %lld kind=%d flags=%d link=%s\n",
                (long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1),
                sqlite3_column_text(st, 2), sqlite3_column_text(st, 3),
                (long long)sqlite3_column_int64(st, 4), sqlite3_column_int(st, 5),
                sqlite3_column_int(st, 6), sqlite3_column_text(st, 7));
    sqlite3_finalize(st);
}

#define PC_EQ(what, got, want)                                                                     \
    do {                                                                                           \
        int64_t pc_got_ = (got), pc_want_ = (want);                                                \
        if (pc_got_ != pc_want_) {                                                                 \
            fprintf(stderr,                                                                        \
                    "payments_crash: round %d: %s is %" PRId64 ", the model says %" PRId64 "\n",   \
                    round, what, pc_got_, pc_want_);                                               \
            pc_dump(db);                                                                           \
        }                                                                                          \
        assert_int_equal(pc_got_, pc_want_);                                                       \
    } while (0)

/* How many chats were charged; the rest of the checks as the model says. */
static int pc_charged(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t n = pc_q(db,
                     "SELECT count(*) FROM transfers WHERE debit_account = ?1 AND kind = 4 "
                     "AND (flags & 2) != 0",
                     pc_accounts[0]);
    sqlite3_close(db);
    return (int)n;
}

static void pc_check(struct pc *f, const struct pc_model *m, int round)
{
    sqlite3 *db = NULL;
    char what[256], id[128];
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* Never named by an event. */
    PC_EQ("transfers named by an event",
          pc_q(db,
               "SELECT count(*) FROM transfers WHERE id LIKE "
               "'%evt%'",
               NULL),
          0);
    for (size_t s = 0; s < PC_NSESSIONS; s++) {
        /* Each session credited once, under its own id. */
        snprintf(id, sizeof(id), "stripe:cs_test_%zu", s);
        snprintf(what, sizeof(what), "the credit %s", id);
        PC_EQ(what, pc_q(db, "SELECT coalesce(sum(amount), 0) FROM transfers WHERE id = ?1", id),
              m->credited[s] ? pc_sessions[s].credits : 0);
        /* Its refunds reversed once: what the model reversed, no more. */
        snprintf(what, sizeof(what), "what reverses %s", id);
        PC_EQ(what,
              pc_q(db,
                   "SELECT coalesce(sum(amount), 0) FROM transfers WHERE link = ?1 AND "
                   "(flags & 8) != 0",
                   id),
              m->reversed[s]);
        /* The debt it repaid, at most once. */
        snprintf(id, sizeof(id), "stripe:cs_test_%zu:repay", s);
        snprintf(what, sizeof(what), "the repayment %s", id);
        PC_EQ(what, pc_q(db, "SELECT coalesce(sum(amount), 0) FROM transfers WHERE id = ?1", id),
              m->repaid[s]);
    }
    for (int a = 0; a < PC_NACCOUNTS; a++) {
        const char *acct = pc_accounts[a];
        char debt[64];
        snprintf(debt, sizeof(debt), "debt:%s", acct);
        snprintf(what, sizeof(what), "the balance of %s", acct);
        PC_EQ(what,
              pc_q(db,
                   "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM accounts "
                   "WHERE id = ?1",
                   acct),
              m->wallet[a]);
        snprintf(what, sizeof(what), "what %s has reserved", acct);
        PC_EQ(what,
              pc_q(db, "SELECT coalesce(sum(debits_pending), 0) FROM accounts WHERE id = ?1", acct),
              0);
        /* A debt account is never above zero: it is what is owed. */
        int64_t owed = pc_q(db,
                            "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM "
                            "accounts WHERE id = ?1",
                            debt);
        assert_true(owed <= 0);
        snprintf(what, sizeof(what), "what %s owes", acct);
        PC_EQ(what, -owed, m->debt[a]);
        snprintf(what, sizeof(what), "the deposits to %s", acct);
        PC_EQ(what,
              pc_q(db,
                   "SELECT coalesce(sum(amount), 0) FROM transfers WHERE kind = 1 AND "
                   "credit_account = ?1",
                   acct),
              m->deposits[a]);
        snprintf(what, sizeof(what), "the number of deposits to %s", acct);
        PC_EQ(
            what,
            pc_q(db, "SELECT count(*) FROM transfers WHERE kind = 1 AND credit_account = ?1", acct),
            m->deposit_count[a]);
    }
    sqlite3_close(db);
    /* The chain and the invariants, by the daemon's own verifier. */
    char *argv[] = {(char *)test_haibot_bin(), "ledger", "verify", "-c", f->conf, NULL};
    struct test_proc p;
    test_proc_run(argv, NULL, 30000, &p);
    if (p.status != 0)
        fprintf(stderr, "payments_crash: round %d: ledger verify:\n%s%s\n", round, p.out, p.err);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "ledger verify: ok"));
    test_proc_free(&p);
}

/* ---- the test ------------------------------------------------------------------------- */

static void test_payments_crash(void **state)
{
    struct pc *f = *state;
    uint64_t seed = getenv("HAIBOT_SEED") != NULL ? strtoull(getenv("HAIBOT_SEED"), NULL, 10)
                                                  : (uint64_t)time(NULL);
    fprintf(stderr,
            "payments_crash: seed=%" PRIu64 " (HAIBOT_SEED=%" PRIu64 " replays the kills)\n", seed,
            seed);
    srand((unsigned)seed);
    struct pc_model m;
    memset(&m, 0, sizeof(m));
    size_t cursor = 0;
    int kills_in_webhooks = 0, kills_in_chats = 0;
    for (int round = 0; cursor < PC_NSTEPS; round++) {
        bool last = round >= PC_ROUNDS;
        /* Where this round's kill falls: a step a few ahead, and a moment
         * within it (a webhook takes milliseconds, a chat most of a
         * second). The last round plays the rest of the script whole. */
        size_t kill_at = last ? PC_NSTEPS : cursor + (size_t)(rand() % 6);
        if (kill_at >= PC_NSTEPS && !last)
            kill_at = PC_NSTEPS - 1;
        long kill_us = -1;
        if (!last)
            kill_us = pc_script[kill_at].kind == PC_CHAT ? (long)(rand() % 900) * 1000
                                                         : (long)(rand() % 25000);
        pc_start(f);
        size_t chats = 0;
        bool chat_unsure = false;
        for (size_t k = cursor; k < PC_NSTEPS && k <= kill_at; k++) {
            bool killing = k == kill_at;
            bool done = pc_step_run(f, k, killing ? kill_us : -1, &chats);
            if (killing) {
                if (pc_script[k].kind == PC_CHAT)
                    kills_in_chats++;
                else
                    kills_in_webhooks++;
            }
            if (!done) {
                chat_unsure = true;
                cursor = k;
                break;
            }
            pc_model_apply(&m, &pc_script[k]);
            cursor = k + 1;
        }
        /* Start again and deliver everything sent so far, in order. */
        if (f->running)
            pc_stop(f);
        else {
            pc_start(f);
            for (size_t i = 0; i < f->nsent; i++)
                pc_deliver(f->port, f->sent[i]);
            pc_stop(f);
        }
        if (chat_unsure) {
            /* A chat the kill interrupted: charged, or voided at the
             * start (then the member runs it again next round). */
            if (pc_charged(f->db) == m.chats + 1) {
                pc_model_apply(&m, &pc_script[cursor]);
                cursor++;
            } else {
                assert_int_equal(pc_charged(f->db), m.chats);
            }
        }
        pc_check(f, &m, round);
    }
    fprintf(stderr,
            "payments_crash: %d kills among webhooks (%d before an answer), %d inside chats; "
            "%zu webhooks sent\n",
            kills_in_webhooks, f->cut, kills_in_chats, f->nsent);
    /* The script's end: every session paid, all debt repaid. */
    assert_int_equal(m.debt[0], 0);
    assert_true(m.credited[PC_NSESSIONS - 1]);
}

/* The kill between a refund's reversal and the note of it kept with the
 * payment (two commits): the state is made here by booking the first
 * refund's reversal as the daemon would and leaving the note behind. The
 * next refund of the same charge (Stripe's amount_refunded counts all
 * refunds so far) reverses only what is left, and is not refused for
 * ever. */
static void test_refund_after_lost_note(void **state)
{
    struct pc *f = *state;
    const struct pc_step credit = {PC_PAID, 0, 0};
    const struct pc_step half = {PC_REFUND, 0, 250};
    const struct pc_step rest = {PC_REFUND, 0, 500};
    char body[2048];
    pc_start(f);
    pc_event(body, sizeof(body), 1, "a", &credit);
    pc_deliver(f->port, body);
    pc_stop(f);

    struct lt t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(uv_loop_init(&t.loop), 0);
    t.opts.path = f->db;
    lt_ledger_open(&t);
    struct lt_res res;
    assert_int_equal(lt_reverse(&t, "stripe:pi_0:refunded:250", "stripe:cs_test_0", 500,
                                LEDGER_KIND_REFUND, &res),
                     0);
    lt_ledger_close(&t);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t.loop), 0);

    pc_start(f);
    pc_event(body, sizeof(body), 2, "a", &half);
    pc_deliver(f->port, body); /* redelivered: it was booked */
    pc_event(body, sizeof(body), 3, "a", &rest);
    pc_deliver(f->port, body);
    pc_stop(f);
    struct pc_model m;
    memset(&m, 0, sizeof(m));
    pc_model_apply(&m, &credit);
    pc_model_apply(&m, &half);
    pc_model_apply(&m, &rest);
    assert_int_equal(m.reversed[0], 1000);
    pc_check(f, &m, 0);
}

/* A stop between a payment's note and its credit leaves the note alone
 * (the note is written first). A refund that arrives then is answered 500,
 * so the provider delivers it again, never "unmatched" for ever; the
 * payment's next report credits it under the note, and the refund, sent
 * again, reverses it once. */
static void test_refund_before_its_credit(void **state)
{
    struct pc *f = *state;
    const struct pc_step credit = {PC_PAID, 0, 0};
    const struct pc_step full = {PC_REFUND, 0, 500};
    char body[2048];
    pc_start(f);
    pc_stop(f);
    /* The state a stop right after the note leaves. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO state (ns, key, value, updated_at) VALUES ('payments', 'stripe:pi_0',"
             " 'stripe:cs_test_0 %s 1000 500 0', 0)",
             pc_accounts[pc_sessions[0].account]);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    pc_start(f);
    pc_event(body, sizeof(body), 1, "a", &full);
    int fd = -1;
    int status = 503;
    for (int i = 0; i < 200 && status == 503; i++) {
        fd = test_stripe_send(f->port, PC_SECRET, body);
        status = fd >= 0 ? test_http_status(fd) : 503;
        if (status == 503)
            usleep(20000);
    }
    assert_int_equal(status, 500); /* not 200 "unmatched": Stripe sends it again */
    pc_event(body, sizeof(body), 2, "a", &credit);
    pc_deliver(f->port, body);
    pc_event(body, sizeof(body), 1, "a", &full);
    pc_deliver(f->port, body);
    pc_stop(f);
    struct pc_model m;
    memset(&m, 0, sizeof(m));
    pc_model_apply(&m, &credit);
    pc_model_apply(&m, &full);
    assert_int_equal(m.reversed[0], 1000);
    pc_check(f, &m, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_payments_crash, pc_setup, pc_teardown),
    cmocka_unit_test_setup_teardown(test_refund_after_lost_note, pc_setup, pc_teardown),
    cmocka_unit_test_setup_teardown(test_refund_before_its_credit, pc_setup, pc_teardown),
};

TEST_GROUP_DEFINE(payments_crash, tests, lt_group_setup, lt_group_teardown)
