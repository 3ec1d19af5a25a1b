/* Several daemons over one PostgreSQL ledger, and the server restarted under
 * load (`ledger_multi_pg`).
 *
 * test_three_daemons: three child processes (forks of the test binary), each
 * with its own loop and its own ledger on one fresh database, run a seeded
 * random mix of deposits, spends, transfers between wallets, reservations
 * and their posts and voids, all at once, over four shared wallets that may
 * not overdraw. Some deposit ids are submitted by two children (the second
 * writer gets HB_EEXISTS and the transfer as first committed). Each child
 * writes every operation on its pipe before submitting it ("S ...") and its
 * outcome after the callback ("A ..."). One child is killed with SIGKILL
 * mid-load (it holds a few reservations open, as long jobs do); the other
 * two finish and settle every reservation they hold. Then the parent rebuilds the balances from the
 * acknowledged operations (and, for the killed child's operations still in flight, from whether the
 * server committed them) and checks every account against it, and that no
 * wallet ever went below zero; the killed child's open reservations stay
 * until their timeout, then expire once, even with two ledgers voiding at
 * once; every account's history holds exactly the model's transfers and
 * every reservation resolves exactly once; verify passes.
 *
 * test_survivor_expires: a daemon voids, on its own expiry timer, the
 * reservation another daemon left when it went away, although it has
 * nothing of its own pending.
 *
 * test_cached_accounts_follow_other_daemons: what one daemon keeps of an
 * account is brought up to date with another daemon's transfers.
 *
 * The group's test of the server restarted under load is in
 * test_ledger_restart.c. */
#include "tests/test.h"

#include "tests/core/ledger_helpers.h"

#include "base/error.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MULTI_CHILDREN 3
#define MULTI_VICTIM 2          /* the child killed mid-load */
#define MULTI_OPS 1200          /* operations per surviving child */
#define MULTI_KILL_AFTER 300    /* the victim's acknowledgements before the kill */
#define MULTI_INFLIGHT 16       /* operations each child keeps in flight */
#define MULTI_OPEN_MAX 1024     /* reservations a child holds at most */
#define MULTI_TIMEOUT_MS 600000 /* reservations outlive the run */
#define MULTI_WALLETS 4
#define MULTI_HELD 4 /* reservations a child keeps open until it drains */

static const char *const multi_wallets[MULTI_WALLETS] = {"console:m0", "console:m1", "console:m2",
                                                         "console:m3"};

/* ---- Children ------------------------------------------------------------- */

struct mreserved {
    char id[48];
    char debit[48];
    int64_t amount;
};

struct mchild {
    uv_loop_t loop;
    struct ledger *ledger;
    int fd;
    int index;
    uint64_t rng;
    unsigned next;   /* operations submitted */
    unsigned target; /* operations to submit, then settle what is open */
    unsigned inflight;
    unsigned shared[2]; /* next shared deposit: with the next child, the previous */
    struct mreserved open[MULTI_OPEN_MAX];
    size_t nopen;
    bool closing;
};

struct mop {
    struct mchild *c;
    char type; /* D deposit, X shared deposit, S spend, T transfer, R reserve, P post, V void */
    char id[48];
    char debit[48];
    char credit[48];
    int64_t amount;  /* P: the amount posted */
    int64_t ramount; /* P, V: the reservation's amount */
    char pending[48];
};

static uint64_t multi__rand(uint64_t *s)
{
    /* xorshift64*: the same sequence for the same seed. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void multi__line(struct mchild *c, const char *line, int n)
{
    /* A short line on a pipe is written whole. */
    if (n <= 0 || write(c->fd, line, (size_t)n) != n)
        _exit(3);
}

static void multi__submit(struct mchild *c);

static void multi__closed(void *data)
{
    (void)data;
    _exit(0);
}

static void multi__ack(int rc, const struct ledger_result *r, void *data)
{
    struct mop *op = data;
    struct mchild *c = op->c;
    /* The transfer committed (or found, for a second writer) is the one
     * asked for. A void carries the reservation's accounts. */
    bool same = true;
    if (rc == 0 || rc == HB_EEXISTS) {
        same = strcmp(r->transfer.id, op->id) == 0 && strcmp(r->transfer.debit, op->debit) == 0 &&
               strcmp(r->transfer.credit, op->credit) == 0 &&
               (op->type == 'V' || r->transfer.amount == op->amount);
    }
    /* A wallet never goes below zero (system:deposits does, by design). */
    bool negative =
        r->debit_balance && r->balance.available < 0 && strncmp(op->debit, "console:", 8) == 0;
    char line[128];
    multi__line(c, line,
                snprintf(line, sizeof(line), "A %s %d %d %d\n", op->id, rc, same, negative));
    if (rc == 0 && op->type == 'R') {
        if (c->nopen == MULTI_OPEN_MAX)
            _exit(4);
        struct mreserved *m = &c->open[c->nopen++];
        snprintf(m->id, sizeof(m->id), "%s", op->id);
        snprintf(m->debit, sizeof(m->debit), "%s", op->debit);
        m->amount = op->amount;
    }
    free(op);
    c->inflight--;
    multi__submit(c);
}

/* Post or void one of the reservations this child holds (the last one when
 * draining, a random one otherwise). */
static void multi__settle(struct mchild *c, struct mop *op, bool draining)
{
    size_t i = draining ? c->nopen - 1 : (size_t)(multi__rand(&c->rng) % c->nopen);
    struct mreserved m = c->open[i];
    c->open[i] = c->open[--c->nopen];
    snprintf(op->pending, sizeof(op->pending), "%s", m.id);
    snprintf(op->debit, sizeof(op->debit), "%s", m.debit);
    snprintf(op->credit, sizeof(op->credit), "%s", LEDGER_SYSTEM_REVENUE);
    op->ramount = m.amount;
    if (multi__rand(&c->rng) % 2 == 0) {
        op->type = 'P';
        op->amount = 1 + (int64_t)(multi__rand(&c->rng) % (uint64_t)m.amount);
    } else {
        op->type = 'V';
        op->amount = m.amount;
    }
}

/* Choose the next operation into op. */
static void multi__choose(struct mchild *c, struct mop *op)
{
    uint64_t roll = multi__rand(&c->rng) % 100;
    const char *w = multi_wallets[multi__rand(&c->rng) % MULTI_WALLETS];
    snprintf(op->id, sizeof(op->id), "c%d-%u", c->index, c->next);
    if (roll < 8) {
        /* A deposit another child submits too: ids and fields follow from
         * the pair and a counter only. Child i shares pair i with child
         * i+1, and pair i-1 with child i-1. */
        int side = (int)(roll % 2);
        int pair = side == 0 ? c->index : (c->index + MULTI_CHILDREN - 1) % MULTI_CHILDREN;
        unsigned k = c->shared[side]++;
        op->type = 'X';
        snprintf(op->id, sizeof(op->id), "x%d-%u", pair, k);
        snprintf(op->debit, sizeof(op->debit), "%s", LEDGER_SYSTEM_DEPOSITS);
        snprintf(op->credit, sizeof(op->credit), "%s",
                 multi_wallets[((unsigned)pair + k) % MULTI_WALLETS]);
        op->amount = 1 + (int64_t)(((unsigned)pair * 7 + k) % 9);
    } else if (roll < 30) {
        op->type = 'D';
        snprintf(op->debit, sizeof(op->debit), "%s", LEDGER_SYSTEM_DEPOSITS);
        snprintf(op->credit, sizeof(op->credit), "%s", w);
        op->amount = 1 + (int64_t)(multi__rand(&c->rng) % 14);
    } else if (roll < 50 || (roll >= 86 && c->nopen <= MULTI_HELD)) {
        op->type = 'S';
        snprintf(op->debit, sizeof(op->debit), "%s", w);
        snprintf(op->credit, sizeof(op->credit), "%s", LEDGER_SYSTEM_REVENUE);
        op->amount = 1 + (int64_t)(multi__rand(&c->rng) % 10);
    } else if (roll < 64) {
        op->type = 'T';
        const char *to = multi_wallets[multi__rand(&c->rng) % MULTI_WALLETS];
        if (to == w)
            to = multi_wallets[(size_t)(w == multi_wallets[0])];
        snprintf(op->debit, sizeof(op->debit), "%s", w);
        snprintf(op->credit, sizeof(op->credit), "%s", to);
        op->amount = 1 + (int64_t)(multi__rand(&c->rng) % 10);
    } else if (roll < 86) {
        op->type = 'R';
        snprintf(op->debit, sizeof(op->debit), "%s", w);
        snprintf(op->credit, sizeof(op->credit), "%s", LEDGER_SYSTEM_REVENUE);
        op->amount = 1 + (int64_t)(multi__rand(&c->rng) % 10);
    } else {
        multi__settle(c, op, false);
    }
}

static void multi__submit(struct mchild *c)
{
    while (c->inflight < MULTI_INFLIGHT && !c->closing) {
        bool draining = c->next >= c->target;
        if (draining && c->nopen == 0) {
            if (c->inflight == 0) {
                c->closing = true;
                ledger_close(c->ledger, multi__closed, c);
            }
            return;
        }
        struct mop *op = calloc(1, sizeof(*op));
        if (op == NULL)
            _exit(5);
        op->c = c;
        if (draining) {
            snprintf(op->id, sizeof(op->id), "c%d-%u", c->index, c->next);
            multi__settle(c, op, true);
        } else {
            multi__choose(c, op);
        }
        c->next++;
        char line[256];
        multi__line(c, line,
                    snprintf(line, sizeof(line), "S %c %s %s %s %" PRId64 " %s %" PRId64 "\n",
                             op->type, op->id, op->debit, op->credit, op->amount,
                             op->pending[0] != '\0' ? op->pending : "-", op->ramount));
        int rc = 0;
        if (op->type == 'P') {
            rc = ledger_transfer_post(c->ledger, op->id, op->pending, op->amount, multi__ack, op);
        } else if (op->type == 'V') {
            rc = ledger_transfer_void(c->ledger, op->id, op->pending, multi__ack, op);
        } else {
            struct ledger_transfer t = {
                .id = op->id, .debit = op->debit, .credit = op->credit, .amount = op->amount};
            t.kind = op->type == 'T'   ? LEDGER_KIND_TRANSFER
                     : op->type == 'S' ? LEDGER_KIND_GENERATION
                     : op->type == 'R' ? LEDGER_KIND_GENERATION
                                       : LEDGER_KIND_DEPOSIT;
            if (op->type == 'R') {
                t.flags = LEDGER_TRANSFER_PENDING;
                t.timeout_ms = MULTI_TIMEOUT_MS;
            }
            rc = ledger_transfer_create(c->ledger, &t, multi__ack, op);
        }
        if (rc < 0)
            _exit(6);
        c->inflight++;
    }
}

/* The child: never returns. */
static void multi_child_main(const char *url, int fd, int index, unsigned target, uint64_t seed)
{
    static struct mchild c;
    memset(&c, 0, sizeof(c));
    c.fd = fd;
    c.index = index;
    c.target = target;
    c.rng = seed * 2654435761u + (uint64_t)index + 1;
    alarm(60); /* never outlive a broken parent */
    if (uv_loop_init(&c.loop) != 0)
        _exit(1);
    /* The real clock, and no expiry timer: nothing expires during the run;
     * the parent moves its clock past the timeouts afterwards. */
    struct ledger_options opts = {
        .backend = STORE_BACKEND_POSTGRES, .url = url, .no_expire_timer = true, .readers = 1};
    int rc = 0;
    c.ledger = ledger_new(&c.loop, &opts, &rc);
    if (c.ledger == NULL)
        _exit(2);
    multi__submit(&c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(9);
}

/* ---- The parent's model --------------------------------------------------- */

struct mrec {
    int child;
    char type;
    char id[48];
    char debit[48];
    char credit[48];
    int64_t amount;
    char pending[48];
    int64_t ramount;
    bool acked;
    int rc;
    bool same;
    bool negative;
    /* Read back from the database. */
    bool checked;
    int found_rc;
    struct store_transfer found;
};

struct mrecs {
    struct mrec *v;
    size_t n;
    size_t cap;
};

static int multi__cmp(const void *a, const void *b)
{
    const struct mrec *x = a;
    const struct mrec *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : x->child - y->child;
}

/* The "S" lines of one child's report into recs. */
static void multi__parse_ops(struct mrecs *recs, int child, const char *text)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* a line is written whole */
        if (line[0] == 'S') {
            if (recs->n == recs->cap) {
                recs->cap = recs->cap == 0 ? 4096 : recs->cap * 2;
                recs->v = realloc(recs->v, recs->cap * sizeof(*recs->v));
                assert_non_null(recs->v);
            }
            struct mrec *m = &recs->v[recs->n++];
            memset(m, 0, sizeof(*m));
            m->child = child;
            assert_int_equal(sscanf(line, "S %c %47s %47s %47s %" SCNd64 " %47s %" SCNd64, &m->type,
                                    m->id, m->debit, m->credit, &m->amount, m->pending,
                                    &m->ramount),
                             7);
            if (strcmp(m->pending, "-") == 0)
                m->pending[0] = '\0';
        }
        line = nl + 1;
    }
}

static struct mrec *multi__find(struct mrecs *recs, const char *id, int child)
{
    struct mrec key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    key.child = child;
    return bsearch(&key, recs->v, recs->n, sizeof(*recs->v), multi__cmp);
}

/* The "A" lines of one child's report onto the sorted recs. */
static void multi__parse_acks(struct mrecs *recs, int child, const char *text)
{
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *nl = strchr(line, '\n');
        if (line[0] == 'A') {
            char id[48];
            int rc = 0;
            int same = 0;
            int negative = 0;
            assert_int_equal(sscanf(line, "A %47s %d %d %d", id, &rc, &same, &negative), 4);
            struct mrec *m = multi__find(recs, id, child);
            assert_non_null(m);
            assert_false(m->acked);
            m->acked = true;
            m->rc = rc;
            m->same = same != 0;
            m->negative = negative != 0;
        }
        line = nl + 1;
    }
}

static void multi__got(int rc, const struct ledger_result *r, void *data)
{
    struct mrec *m = data;
    m->checked = true;
    m->found_rc = rc;
    if (rc == 0)
        m->found = r->transfer;
}

/* Read every operation's transfer back, all queued at once (they share a
 * few transactions). */
static void multi__read_back(struct lt *t, struct mrecs *recs)
{
    for (size_t i = 0; i < recs->n; i++) {
        recs->v[i].checked = false;
        assert_int_equal(ledger_transfer_get(t->ledger, recs->v[i].id, multi__got, &recs->v[i]), 0);
    }
    for (size_t i = 0; i < recs->n; i++) {
        while (!recs->v[i].checked)
            uv_run(&t->loop, UV_RUN_ONCE);
    }
}

/* An account's expected balance. */
struct mbal {
    const char *account;
    int64_t posted;
    int64_t pending;
    size_t entries; /* transfers in its history */
};

static struct mbal *multi__bal(struct mbal *b, size_t n, const char *account)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(b[i].account, account) == 0)
            return &b[i];
    }
    fail_msg("no model account %s", account);
    return NULL;
}

/* The parent's clock: the real one, or an hour ahead once `multi_later`. */
static bool multi_later;

static int64_t multi__clock(void *data)
{
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (multi_later ? 3600 * 1000 : 0);
}

static void multi__open_ledger(struct lt *t, const char *url)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    snprintf(t->url, sizeof(t->url), "%s", url);
    t->opts.backend = STORE_BACKEND_POSTGRES;
    t->opts.url = t->url;
    t->opts.clock.now_ms = multi__clock;
    t->opts.no_expire_timer = true;
    t->opts.readers = 2; /* the histories checked below are read through the pool */
    lt_ledger_open(t);
}

static void multi__close_ledger(struct lt *t)
{
    lt_ledger_close(t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* Another daemon on b's database: its own loop, store and connection. */
static void multi__other_open(struct lt *a, const struct lt *b)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(uv_loop_init(&a->loop), 0);
    a->opts = b->opts;
    lt_ledger_open(a);
}

/* Every transfer of account's history, newest first, into *out (heap). */
static size_t multi__history(struct lt *t, const char *account, struct store_transfer **out)
{
    struct lt_res *res = malloc(sizeof(*res));
    assert_non_null(res);
    size_t n = 0;
    size_t cap = 0;
    *out = NULL;
    uint64_t before = 0;
    for (;;) {
        memset(res, 0, sizeof(*res));
        assert_int_equal(ledger_history_get(t->ledger, account, before, 100, lt_cb, res), 0);
        lt_wait(t, res);
        assert_int_equal(res->rc, 0);
        if (res->history_count == 0)
            break;
        if (n + res->history_count > cap) {
            cap = (n + res->history_count) * 2;
            *out = realloc(*out, cap * sizeof(**out));
            assert_non_null(*out);
        }
        memcpy(*out + n, res->history, res->history_count * sizeof(**out));
        n += res->history_count;
        before = res->history[res->history_count - 1].seq;
    }
    free(res);
    return n;
}

static void test_three_daemons(void **state)
{
    (void)state;
    char url[512];
    assert_int_equal(test_pg_db(url, sizeof(url)), 0);
    uint64_t seed = getenv("HAIBOT_SEED") != NULL ? strtoull(getenv("HAIBOT_SEED"), NULL, 10)
                                                  : (uint64_t)time(NULL);
    fprintf(stderr, "ledger_multi: seed=%" PRIu64 " (HAIBOT_SEED=%" PRIu64 " replays the mix)\n",
            seed, seed);
    uint64_t started = test_now_ms();

    /* The shared wallets, opened before any daemon runs; empty. */
    struct lt t;
    multi__open_ledger(&t, url);
    struct lt_res res;
    for (size_t i = 0; i < MULTI_WALLETS; i++)
        assert_int_equal(lt_open(&t, multi_wallets[i], LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    multi__close_ledger(&t);

    pid_t pids[MULTI_CHILDREN];
    int fds[MULTI_CHILDREN];
    char *text[MULTI_CHILDREN] = {NULL};
    size_t len[MULTI_CHILDREN] = {0};
    for (int i = 0; i < MULTI_CHILDREN; i++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(p[0]);
            multi_child_main(url, p[1], i, i == MULTI_VICTIM ? 1000000u : MULTI_OPS, seed);
        }
        close(p[1]);
        fds[i] = p[0];
    }

    /* Read all three; kill the victim once it has acknowledged enough. */
    bool open_fd[MULTI_CHILDREN] = {true, true, true};
    bool killed = false;
    size_t victim_acks = 0;
    size_t scanned = 0;
    int left = MULTI_CHILDREN;
    uint64_t deadline = test_now_ms() + 60000;
    while (left > 0) {
        assert_true(test_now_ms() < deadline);
        for (int i = 0; i < MULTI_CHILDREN; i++) {
            if (!open_fd[i])
                continue;
            if (!lt_pipe_read(fds[i], &text[i], &len[i], 2)) {
                open_fd[i] = false;
                close(fds[i]);
                left--;
            }
        }
        if (!killed && len[MULTI_VICTIM] > scanned) {
            for (const char *s = text[MULTI_VICTIM] + scanned; *s != '\0'; s++)
                victim_acks += s[0] == 'A' && (s == text[MULTI_VICTIM] || s[-1] == '\n');
            scanned = len[MULTI_VICTIM];
            if (victim_acks >= MULTI_KILL_AFTER) {
                /* Mid-load: the other two are still running. */
                for (int i = 0; i < MULTI_CHILDREN; i++)
                    assert_true(open_fd[i]);
                assert_int_equal(kill(pids[MULTI_VICTIM], SIGKILL), 0);
                killed = true;
            }
        }
    }
    assert_true(killed);
    for (int i = 0; i < MULTI_CHILDREN; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        if (i == MULTI_VICTIM) {
            assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        } else {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fprintf(stderr, "child %d: status %d\n", i, status);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    uint64_t load_ms = test_now_ms() - started;

    /* The operations and what each child heard. */
    struct mrecs recs = {0};
    for (int i = 0; i < MULTI_CHILDREN; i++)
        multi__parse_ops(&recs, i, text[i]);
    qsort(recs.v, recs.n, sizeof(*recs.v), multi__cmp);
    for (int i = 0; i < MULTI_CHILDREN; i++)
        multi__parse_acks(&recs, i, text[i]);

    multi__open_ledger(&t, url);
    multi__read_back(&t, &recs);

    /* Which operations applied: the acknowledged ones by their outcome, the
     * victim's unacknowledged ones by whether the server has them. */
    size_t ops[MULTI_CHILDREN] = {0};
    size_t acked = 0;
    size_t in_doubt = 0;
    size_t in_doubt_committed = 0;
    size_t refused = 0;
    size_t shared_both = 0;
    bool *applied = calloc(recs.n, sizeof(*applied));
    assert_non_null(applied);
    for (size_t i = 0; i < recs.n; i++) {
        struct mrec *m = &recs.v[i];
        ops[m->child]++;
        assert_true(m->checked);
        if (!m->acked) {
            /* Only the killed child leaves operations unanswered. */
            assert_int_equal(m->child, MULTI_VICTIM);
            in_doubt++;
            in_doubt_committed += m->found_rc == 0;
        } else {
            acked++;
            bool ok = m->rc == 0 || (m->type == 'X' && m->rc == HB_EEXISTS) ||
                      (m->rc == HB_EFUNDS && strchr("STR", m->type) != NULL);
            if (!ok)
                fprintf(stderr, "%s (%c) completed with %d\n", m->id, m->type, m->rc);
            assert_true(ok);
            assert_true(m->same);
            assert_false(m->negative);
            refused += m->rc == HB_EFUNDS;
            /* Nothing acknowledged is lost; nothing refused was written. */
            if (m->rc == HB_EFUNDS)
                assert_int_equal(m->found_rc, HB_ENOTFOUND);
            else
                assert_int_equal(m->found_rc, 0);
        }
        if (m->found_rc == 0) {
            assert_string_equal(m->found.debit, m->debit);
            assert_string_equal(m->found.credit, m->credit);
            if (m->type != 'V')
                assert_int_equal(m->found.amount, m->amount);
        }
        /* A shared id is applied once, whoever wrote it. */
        bool dup = i > 0 && strcmp(recs.v[i - 1].id, m->id) == 0;
        if (dup) {
            struct mrec *o = &recs.v[i - 1];
            assert_int_equal(m->type, 'X');
            if (o->acked && m->acked) {
                /* Exactly one writer applied it; the other heard "exists". */
                assert_true((o->rc == 0) != (m->rc == 0));
                shared_both++;
            }
        }
        applied[i] = m->found_rc == 0 && !dup;
    }

    /* The model's balances. */
    struct mbal bal[MULTI_WALLETS + 2];
    for (size_t i = 0; i < MULTI_WALLETS; i++)
        bal[i] = (struct mbal){.account = multi_wallets[i]};
    bal[MULTI_WALLETS] = (struct mbal){.account = LEDGER_SYSTEM_DEPOSITS};
    bal[MULTI_WALLETS + 1] = (struct mbal){.account = LEDGER_SYSTEM_REVENUE};
    size_t nbal = MULTI_WALLETS + 2;
    size_t reservations = 0;
    for (size_t i = 0; i < recs.n; i++) {
        struct mrec *m = &recs.v[i];
        if (!applied[i])
            continue;
        struct mbal *d = multi__bal(bal, nbal, m->debit);
        struct mbal *c = multi__bal(bal, nbal, m->credit);
        d->entries++;
        c->entries++;
        switch (m->type) {
        case 'R':
            d->pending += m->amount;
            reservations++;
            break;
        case 'P':
            d->pending -= m->ramount;
            d->posted -= m->amount;
            c->posted += m->amount;
            break;
        case 'V':
            d->pending -= m->ramount;
            break;
        default:
            d->posted -= m->amount;
            c->posted += m->amount;
            break;
        }
    }
    /* The reservations still open: every one is the victim's (the others
     * settled all theirs before they exited). */
    size_t open_left = 0;
    for (size_t i = 0; i < recs.n; i++) {
        struct mrec *m = &recs.v[i];
        if (!applied[i] || m->type != 'R')
            continue;
        bool settled = false;
        for (size_t j = 0; j < recs.n && !settled; j++)
            settled = applied[j] && strcmp(recs.v[j].pending, m->id) == 0;
        if (!settled) {
            assert_int_equal(m->child, MULTI_VICTIM);
            open_left++;
            /* Its expiry void shows in both accounts' histories. */
            multi__bal(bal, nbal, m->debit)->entries++;
            multi__bal(bal, nbal, m->credit)->entries++;
        }
    }
    /* A child holds MULTI_HELD reservations open (long jobs) until it
     * drains: the killed one left at least as many. */
    assert_true(open_left >= MULTI_HELD);

    for (size_t i = 0; i < nbal; i++) {
        struct ledger_balance b = lt_balance(&t, bal[i].account);
        if (b.posted != bal[i].posted || b.pending_debits != bal[i].pending)
            fprintf(stderr,
                    "%s: posted %" PRId64 " pending %" PRId64 ", model %" PRId64 " and %" PRId64
                    "\n",
                    bal[i].account, b.posted, b.pending_debits, bal[i].posted, bal[i].pending);
        assert_int_equal(b.posted, bal[i].posted);
        assert_int_equal(b.pending_debits, bal[i].pending);
        if (i < MULTI_WALLETS)
            assert_true(b.available >= 0);
    }
    char *out = NULL;
    int vrc = lt_verify_ledger(&t, &out);
    if (vrc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(vrc, 0);
    free(out);

    /* An hour later two daemons void what expired at once: each open
     * reservation once between them, and nothing after. */
    struct lt t2;
    multi__open_ledger(&t2, url); /* before the clock moves: it voids at start */
    /* Before their timeout nothing is voided, the killed daemon's
     * reservations included. */
    struct lt_res r1;
    struct lt_res r2;
    assert_int_equal(lt_expire(&t, &r1), 0);
    assert_int_equal(r1.r.expired, 0);
    multi_later = true;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    assert_int_equal(ledger_expire_run(t.ledger, lt_cb, &r1), 0);
    assert_int_equal(ledger_expire_run(t2.ledger, lt_cb, &r2), 0);
    lt_wait(&t, &r1);
    lt_wait(&t2, &r2);
    assert_int_equal(r1.rc, 0);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r1.r.expired + r2.r.expired, open_left);
    assert_int_equal(lt_expire(&t2, &r2), 0);
    assert_int_equal(r2.r.expired, 0);
    multi__close_ledger(&t2);
    assert_int_equal(lt_expire(&t, &r1), 0);
    assert_int_equal(r1.r.expired, 0);
    multi_later = false;

    /* The balances: nothing reserved any more, the posted ones unchanged. */
    for (size_t i = 0; i < nbal; i++) {
        struct ledger_balance b = lt_balance(&t, bal[i].account);
        assert_int_equal(b.posted, bal[i].posted);
        assert_int_equal(b.pending_debits, 0);
    }

    /* The history: each account holds exactly the transfers the model
     * applied, and every reservation resolved exactly once (the victim's
     * open ones by an expiry void). */
    size_t resolved = 0;
    size_t expired_voids = 0;
    for (size_t w = 0; w < MULTI_WALLETS; w++) {
        struct store_transfer *h = NULL;
        size_t n = multi__history(&t, multi_wallets[w], &h);
        assert_int_equal(n, bal[w].entries);
        for (size_t i = 0; i < n; i++) {
            if ((h[i].flags & LEDGER_TRANSFER_PENDING) == 0)
                continue;
            size_t settles = 0;
            for (size_t j = 0; j < n; j++) {
                if ((h[j].flags & (LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)) != 0 &&
                    strcmp(h[j].link, h[i].id) == 0) {
                    settles++;
                    expired_voids += (h[j].flags & LEDGER_TRANSFER_EXPIRED) != 0;
                }
            }
            if (settles != 1)
                fprintf(stderr, "reservation %s resolved %zu times\n", h[i].id, settles);
            assert_int_equal(settles, 1);
            resolved++;
        }
        free(h);
    }
    assert_int_equal(resolved, reservations);
    assert_int_equal(expired_voids, open_left);
    multi__close_ledger(&t);

    out = NULL;
    struct lt vt;
    memset(&vt, 0, sizeof(vt));
    vt.opts.backend = STORE_BACKEND_POSTGRES;
    vt.opts.url = url;
    vrc = lt_verify_ledger(&vt, &out);
    if (vrc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(vrc, 0);
    free(out);

    fprintf(
        stderr,
        "ledger_multi: %zu/%zu/%zu operations by the three daemons (the last killed) in %" PRIu64
        " ms (%" PRIu64 " ms with the checks), %zu acknowledged, %zu refused for funds, %zu shared "
        "ids answered to both, "
        "%zu in flight at the kill (%zu committed), %zu reservations, %zu expired once\n",
        ops[0], ops[1], ops[2], load_ms, test_now_ms() - started, acked, refused, shared_both,
        in_doubt, in_doubt_committed, reservations, open_left);
    assert_true(shared_both > 0);
    free(applied);
    free(recs.v);
    for (int i = 0; i < MULTI_CHILDREN; i++)
        free(text[i]);
}

/* A daemon voids the reservations another daemon left behind (it died)
 * once their timeout passes, on its own expiry timer, even with nothing of
 * its own pending to wake it: it looks every expire_poll_ms. */
static void test_survivor_expires(void **state)
{
    (void)state;
    struct lt b; /* the survivor: the real clock, its expiry timer on */
    lt_init(&b, false, true);
    lt_ledger_close(&b);
    b.opts.expire_poll_ms = 100;
    lt_ledger_open(&b);
    struct lt_res res;
    assert_int_equal(lt_open(&b, "console:left", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&b, "left-fund", LEDGER_SYSTEM_DEPOSITS, "console:left", 100,
                              LEDGER_KIND_DEPOSIT, &res),
                     0);
    /* The other daemon reserves and goes away; its reservation stays open,
     * as a killed daemon's does. */
    struct lt a;
    multi__other_open(&a, &b);
    assert_int_equal(lt_reserve(&a, "left-r", "console:left", LEDGER_SYSTEM_REVENUE, 10, 300, &res),
                     0);
    int64_t expires_at = res.r.transfer.expires_at;
    assert_true(expires_at > 0);
    multi__close_ledger(&a);

    uint64_t deadline = test_now_ms() + 5000;
    struct ledger_balance bal = lt_balance(&b, "console:left");
    while (bal.pending_debits != 0 && test_now_ms() < deadline) {
        uint64_t next = test_now_ms() + 50;
        while (test_now_ms() < next) {
            uv_run(&b.loop, UV_RUN_NOWAIT);
            usleep(2000);
        }
        bal = lt_balance(&b, "console:left");
    }
    assert_int_equal(bal.pending_debits, 0);
    assert_int_equal(bal.posted, 100);
    /* Voided by expiry, after the timeout, once. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(b.ledger, "expire:left-r", lt_cb, &res), 0);
    lt_wait(&b, &res);
    assert_int_equal(res.rc, 0);
    assert_true((res.r.transfer.flags & LEDGER_TRANSFER_EXPIRED) != 0);
    assert_true(res.r.transfer.ts >= expires_at);
    assert_int_equal(lt_expire(&b, &res), 0);
    assert_int_equal(res.r.expired, 0);
    lt_done(&b);
}

/* Each daemon keeps the accounts it wrote between its batches; another
 * daemon's transfers since then are read back before they count: a wallet
 * one daemon saw at 90 and another spent down to 10 refuses a spend of 30
 * on the first, and both agree on the balance after. Reservations too. */
static void test_cached_accounts_follow_other_daemons(void **state)
{
    (void)state;
    struct lt b;
    lt_init(&b, false, false);
    struct lt a;
    multi__other_open(&a, &b);
    struct lt_res res;
    assert_int_equal(lt_open(&b, "console:shared", LEDGER_ACCOUNT_NO_OVERDRAFT, 0, &res), 0);
    assert_int_equal(lt_plain(&b, "fund", LEDGER_SYSTEM_DEPOSITS, "console:shared", 100,
                              LEDGER_KIND_DEPOSIT, &res),
                     0);
    assert_int_equal(lt_plain(&a, "a-1", "console:shared", LEDGER_SYSTEM_REVENUE, 10,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(lt_plain(&b, "b-1", "console:shared", LEDGER_SYSTEM_REVENUE, 80,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    assert_int_equal(lt_plain(&a, "a-2", "console:shared", LEDGER_SYSTEM_REVENUE, 30,
                              LEDGER_KIND_GENERATION, &res),
                     HB_EFUNDS);
    assert_int_equal(lt_reserve(&b, "b-r", "console:shared", LEDGER_SYSTEM_REVENUE, 6, 60000, &res),
                     0);
    assert_int_equal(lt_plain(&a, "a-3", "console:shared", LEDGER_SYSTEM_REVENUE, 5,
                              LEDGER_KIND_GENERATION, &res),
                     HB_EFUNDS);
    assert_int_equal(lt_plain(&a, "a-4", "console:shared", LEDGER_SYSTEM_REVENUE, 4,
                              LEDGER_KIND_GENERATION, &res),
                     0);
    struct ledger_balance on_a = lt_balance(&a, "console:shared");
    struct ledger_balance on_b = lt_balance(&b, "console:shared");
    assert_int_equal(on_a.posted, 6);
    assert_int_equal(on_a.pending_debits, 6);
    assert_int_equal(on_b.posted, on_a.posted);
    assert_int_equal(on_b.pending_debits, on_a.pending_debits);
    assert_int_equal(lt_verify_ledger(&b, NULL), 0);
    multi__close_ledger(&a);
    lt_done(&b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_three_daemons, lt_pg_server_up),
    cmocka_unit_test_teardown(lt_test_pg_restart, lt_pg_server_up),
    cmocka_unit_test(test_survivor_expires),
    cmocka_unit_test(test_cached_accounts_follow_other_daemons),
};

TEST_GROUP_DEFINE(ledger_multi_pg, tests, lt_group_setup_pg, lt_group_teardown)
