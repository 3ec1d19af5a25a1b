/* Crash safety: a child process (a fork of the test binary) hammers the
 * ledger with the real durable settings and reports each transfer id on a
 * pipe only after its callback fired (the commit was durable). It is killed
 * with SIGKILL at a random moment, many times. After each kill the database
 * opens, every acknowledged id is there, reservations that expired (also the
 * ones the crash left behind) are voided at start, and verify passes.
 * `ledger_crash` runs it on a SQLite file; `ledger_crash_pg` on a fresh
 * PostgreSQL database, which every child and the checks after each kill
 * connect to (a killed child's connection drops, and the server rolls back
 * what it had not committed). */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"
#include "base/log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CRASH_ROUNDS 24
#define CRASH_INFLIGHT 48
#define CRASH_WALLET "console:crash"

struct crash_child {
    uv_loop_t loop;
    struct ledger *ledger;
    int fd; /* acknowledgements go here */
    int round;
    uint64_t next;
    char reserved[256][48]; /* acknowledged reservations, to post */
    size_t nreserved;
};

struct crash_op {
    struct crash_child *c;
    char id[48];
    bool reservation;
};

static void crash__submit(struct crash_child *c);

static void crash__ack(int rc, const struct ledger_result *r, void *data)
{
    (void)r;
    struct crash_op *op = data;
    struct crash_child *c = op->c;
    if (rc == 0 || rc == HB_EEXISTS) {
        char line[64];
        int n = snprintf(line, sizeof(line), "%s\n", op->id);
        /* A short line on a pipe is written whole. */
        if (write(c->fd, line, (size_t)n) != n)
            _exit(3);
        if (op->reservation)
            snprintf(c->reserved[c->nreserved++ % 256], 48, "%s", op->id);
    }
    free(op);
    crash__submit(c);
}

static void crash__submit(struct crash_child *c)
{
    struct crash_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        _exit(4);
    op->c = c;
    uint64_t i = c->next++;
    snprintf(op->id, sizeof(op->id), "r%d:%" PRIu64, c->round, i);
    struct ledger_transfer t = {.id = op->id, .credit = LEDGER_SYSTEM_REVENUE, .amount = 1};
    int rc = 0;
    switch (i % 4) {
    case 0: /* money in */
        t.debit = LEDGER_SYSTEM_DEPOSITS;
        t.credit = CRASH_WALLET;
        t.amount = 6;
        t.kind = LEDGER_KIND_DEPOSIT;
        break;
    case 1: /* a reservation that may outlive the process */
        t.debit = CRASH_WALLET;
        t.amount = 2;
        t.kind = LEDGER_KIND_GENERATION;
        t.flags = LEDGER_TRANSFER_PENDING;
        t.timeout_ms = 150;
        op->reservation = true;
        break;
    case 2: /* settle an earlier one, if any */
        if (c->nreserved > 0) {
            char pid[48];
            snprintf(pid, sizeof(pid), "%s", c->reserved[(c->nreserved - 1) % 256]);
            c->nreserved--;
            rc = ledger_transfer_post(c->ledger, op->id, pid, 1, crash__ack, op);
            if (rc < 0)
                _exit(5);
            return;
        }
        /* fall through */
    default: /* a direct spend */
        t.debit = CRASH_WALLET;
        t.kind = LEDGER_KIND_GENERATION;
        t.tag = "crash-model";
        break;
    }
    rc = ledger_transfer_create(c->ledger, &t, crash__ack, op);
    if (rc < 0)
        _exit(6);
}

static void crash__opened(int rc, const struct ledger_result *r, void *data)
{
    (void)r;
    struct crash_child *c = data;
    if (rc < 0 && rc != HB_EEXISTS)
        _exit(7);
    for (int i = 0; i < CRASH_INFLIGHT; i++)
        crash__submit(c);
}

/* The child: never returns. */
static void crash_child_main(const struct ledger_options *opts, int fd, int round)
{
    static struct crash_child c;
    int rc = 0;
    memset(&c, 0, sizeof(c));
    c.fd = fd;
    c.round = round;
    alarm(20); /* never outlive a broken parent */
    if (uv_loop_init(&c.loop) != 0)
        _exit(1);
    c.ledger = ledger_new(&c.loop, opts, &rc);
    if (c.ledger == NULL)
        _exit(2);
    if (ledger_account_open(c.ledger, CRASH_WALLET, LEDGER_ACCOUNT_NO_OVERDRAFT, 0, crash__opened,
                            &c) < 0)
        _exit(8);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(9);
}

/* One acknowledged id, read back after the kill. */
struct crash_check {
    const char *id; /* borrowed from the acknowledgements */
    bool done;
    int rc;
};

static void crash__checked(int rc, const struct ledger_result *r, void *data)
{
    (void)r;
    struct crash_check *c = data;
    c->done = true;
    c->rc = rc;
}

static int64_t crash__clock(void *data)
{
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* An hour ahead: every reservation of the killed child has expired. */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 3600 * 1000;
}

static void test_crash(void **state)
{
    (void)state;
    char url[512];
    if (lt_backend == STORE_BACKEND_POSTGRES)
        assert_int_equal(test_pg_db(url, sizeof(url)), 0);
    char *dir = test_tmpdir_new();
    char path[512];
    struct ledger_options opts = {.backend = lt_backend};
    uint64_t seed = getenv("HAIBOT_SEED") != NULL ? strtoull(getenv("HAIBOT_SEED"), NULL, 10)
                                                  : (uint64_t)time(NULL);
    fprintf(stderr,
            "ledger_crash: seed=%" PRIu64 " (HAIBOT_SEED=%" PRIu64 " replays the kill times)\n",
            seed, seed);
    srand((unsigned)seed);
    snprintf(path, sizeof(path), "%s/ledger.db", dir);
    if (lt_backend == STORE_BACKEND_POSTGRES) {
        opts.url = url;
    } else {
        opts.path = path;
    }
    size_t total_acked = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child_main(&opts, p[1], round);
        }
        close(p[1]);
        char *acks = NULL;
        size_t len = 0;
        /* The kill falls among transfers, not before the child has opened
         * its wallet: on a loaded machine 40 ms may pass before the child's
         * first commit, and a wallet never opened has no balance to check.
         * The first acknowledgement means the open committed. */
        uint64_t started = test_now_ms();
        while (len == 0 && test_now_ms() < started + 10000)
            lt_pipe_read(p[0], &acks, &len, 5);
        assert_true(len > 0);
        uint64_t until = test_now_ms() + 40 + (uint64_t)(rand() % 260);
        while (test_now_ms() < until)
            lt_pipe_read(p[0], &acks, &len, 5);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        while (lt_pipe_read(p[0], &acks, &len, 1000)) {
        }
        close(p[0]);

        /* Reopen: leftovers are voided at start. */
        struct lt t;
        memset(&t, 0, sizeof(t));
        assert_int_equal(uv_loop_init(&t.loop), 0);
        t.opts = opts;
        t.opts.clock.now_ms = crash__clock;
        t.opts.no_expire_timer = true;
        lt_ledger_open(&t);
        struct lt_res res;
        assert_int_equal(lt_expire(&t, &res), 0);
        assert_int_equal(res.r.expired, 0);
        /* Every acknowledged id is there. The reads are queued at once, so
         * they share a few transactions (one each costs a WAL flush on
         * PostgreSQL). */
        size_t n = 0;
        for (const char *c = acks; c != NULL && *c != '\0'; c++)
            n += *c == '\n';
        struct crash_check *checks = calloc(n + 1, sizeof(*checks));
        assert_non_null(checks);
        n = 0;
        for (char *line = acks, *nl; line != NULL && (nl = strchr(line, '\n')) != NULL;
             line = nl + 1) {
            *nl = '\0';
            checks[n].id = line;
            assert_int_equal(ledger_transfer_get(t.ledger, line, crash__checked, &checks[n]), 0);
            n++;
        }
        for (size_t i = 0; i < n; i++) {
            while (!checks[i].done)
                uv_run(&t.loop, UV_RUN_ONCE);
            if (checks[i].rc != 0)
                fprintf(stderr, "round %d: acknowledged %s is missing\n", round, checks[i].id);
        }
        for (size_t i = 0; i < n; i++)
            assert_int_equal(checks[i].rc, 0);
        free(checks);
        total_acked += n;
        struct ledger_balance b = lt_balance(&t, CRASH_WALLET);
        assert_int_equal(b.pending_debits, 0);
        assert_true(b.available >= 0);
        lt_ledger_close(&t);
        uv_run(&t.loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&t.loop), 0);
        free(acks);
        char *out = NULL;
        int rc = lt_verify_ledger(&t, &out);
        if (rc != 0)
            fprintf(stderr, "round %d: %s", round, out);
        assert_int_equal(rc, 0);
        free(out);
    }
    fprintf(stderr, "ledger_crash: %d kills, %zu acknowledged transfers all present\n",
            CRASH_ROUNDS, total_acked);
    assert_true(total_acked > 0);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crash),
};

TEST_GROUP_DEFINE(ledger_crash, tests, lt_group_setup, lt_group_teardown)
TEST_GROUP_DEFINE(ledger_crash_pg, tests, lt_group_setup_pg, lt_group_teardown)
