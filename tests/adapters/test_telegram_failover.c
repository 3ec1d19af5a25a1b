/* Two daemons over one PostgreSQL ledger and one Telegram bot (the fake
 * Bot API): one polls, the other stands by. Killed (SIGKILL) halfway
 * through a backlog, the poller's lease runs out and the standby takes
 * over within the lease, resuming from the stored offset: every update is
 * answered, with no more repeats than a restart of one daemon allows
 * (test_telegram_restart.c says why a SIGKILL may repeat one poll's
 * replies). Stopped cleanly (SIGTERM), the poller gives its lease up and
 * the standby takes over at once, repeating nothing. What the standby may
 * not tell a Telegram member itself (a payment, a low balance after a
 * spend through its HTTP API), the poller tells, once. */
#include "tests/test.h"

#include "core/payref.h"
#include "tests/fake/telegram_api.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FO_UPDATES 4000
#define FO_TOKEN "123456:FAILOVER-token-abcdef"
#define FO_LEASE_S 3
#define FO_POLL_LIMIT 100
#define FO_MAX_INFLIGHT 32
#define FO_KILL_REPEATS_MAX (FO_POLL_LIMIT + FO_MAX_INFLIGHT)
#define FO_PAY_KEY "test-reference-key-0123456789abcdef"
#define FO_PAY_SECRET "whsec_failover_secret"

struct fo {
    char *dir;
    char conf[2][512];
    int port[2]; /* [server] of each, when payments are on */
    struct tgapi *api;
};

/* Two daemons' configurations; with pay, each takes Stripe's webhooks on
 * a [server] of its own; more (may be NULL) is added to both. */
static int fo_lease_s = FO_LEASE_S;              /* the lease both daemons hold theirs for */
static int fo_sends_per_s[2] = {100000, 100000}; /* each daemon's sends_per_second */

static void fo_init_with(struct fo *f, bool pay, const char *more)
{
    memset(f, 0, sizeof(*f));
    char url[512];
    assert_int_equal(test_pg_db(url, sizeof(url)), 0);
    f->dir = test_tmpdir_new();
    f->api = tgapi_thread_new(FO_TOKEN);
    assert_non_null(f->api);
    if (pay)
        tgapi_record(f->api, true); /* a few calls: the notice is looked at */
    for (int i = 0; i < 2; i++) {
        snprintf(f->conf[i], sizeof(f->conf[i]), "%s/bot%d.conf", f->dir, i);
        char text[4096], extra[1536] = "";
        if (pay) {
            f->port[i] = test_port_free();
            snprintf(extra, sizeof(extra),
                     "[server]\nenabled = true\nport = %d\n"
                     "[payments]\nreference_key = " FO_PAY_KEY "\npackages = 500:1000\n"
                     "[stripe]\nenabled = true\nwebhook_secret = " FO_PAY_SECRET "\n"
                     "checkout_url = https://buy.stripe.com/test_123\n%s",
                     f->port[i], more != NULL ? more : "");
        }
        snprintf(text, sizeof(text),
                 "[bot]\nname = Failover Bot\nlog_level = info\nshutdown_grace = 20\n"
                 "[storage]\nbackend = postgres\npostgres_url = %s\nlease = %d\n"
                 "postgres_pool = %d\n"
                 "[console]\nenabled = false\n"
                 "[telegram]\nenabled = true\ntoken = " FO_TOKEN "\napi_base = %s\n"
                 "poll_timeout = 1\nsends_per_second = %d\nmax_inflight = %d\nadmins = 777\n%s",
                 url, fo_lease_s, 3 - i, tgapi_base(f->api), fo_sends_per_s[i], FO_MAX_INFLIGHT,
                 extra);
        test_file_write(f->conf[i], text, (size_t)-1);
        chmod(f->conf[i], 0600);
    }
}

static void fo_init(struct fo *f)
{
    fo_init_with(f, false, NULL);
}

static void fo_free(struct fo *f)
{
    tgapi_close(f->api, NULL, NULL);
    test_tmpdir_remove(f->dir);
    free(f->dir);
}

static void fo_start(struct fo *f, int i, struct test_child *c, const char *until)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", f->conf[i], NULL};
    test_child_start(c, argv);
    if (!test_child_wait_for(c, "err", until, 30000))
        fail_msg("daemon %d never logged %s:\n%s", i, until, c->err);
}

/* Wait, reading the daemons' output so neither blocks on a full pipe. */
static void fo_pump(struct test_child *a, struct test_child *b, int ms)
{
    if (a != NULL)
        test_child_wait_for(a, "err", "\x01never\x01", ms);
    if (b != NULL)
        test_child_wait_for(b, "err", "\x01never\x01", ms);
}

/* Both daemons up, a the poller and b the standby, then a backlog, a
 * quarter of it answered. (Given before the standby started, the poller
 * could answer all of it meanwhile, and a kill then fell after the last
 * reply.) */
static void fo_begin(struct fo *f, struct test_child *a, struct test_child *b)
{
    fo_init(f);
    fo_start(f, 0, a, "telegram.polling");
    fo_start(f, 1, b, "role=standby");
    tgapi_backlog(f->api, FO_UPDATES, FO_UPDATES);
    uint64_t end = test_now_ms() + 60000;
    while (tgapi_sends(f->api) < FO_UPDATES / 4 && test_now_ms() < end)
        fo_pump(a, b, 5);
    assert_true(tgapi_sends(f->api) >= FO_UPDATES / 4);
}

/* Wait (up to two minutes) for the poller c to answer the whole backlog. */
static void fo_wait_answered(struct fo *f, struct test_child *c, int64_t *unanswered,
                             int64_t *repeated)
{
    uint64_t end = test_now_ms() + 120000;
    while (test_now_ms() < end) {
        tgapi_backlog_tally(f->api, unanswered, repeated);
        if (*unanswered == 0)
            break;
        fo_pump(c, NULL, 20);
    }
}

static void fo_run(int sig, int64_t repeats_max, uint64_t takeover_max_ms)
{
    struct fo f;
    struct test_child a, b;
    fo_begin(&f, &a, &b);
    /* Still the standby: one poller at a time. */
    assert_null(strstr(b.err, "telegram.polling"));
    /* Each with its pool: the writer's connection and postgres_pool - 1 readers. */
    assert_non_null(strstr(a.err, "store.opened backend=postgres version="));
    assert_non_null(strstr(a.err, "readers=2"));
    assert_non_null(strstr(b.err, "readers=1"));
    uint64_t killed_at = test_now_ms();
    kill(a.pid, sig);
    uint64_t sent_at_kill = tgapi_sends(f.api);
    bool took = false;
    uint64_t end = killed_at + 30000;
    while (!took && test_now_ms() < end) {
        fo_pump(&a, NULL, 1);
        took = test_child_wait_for(&b, "err", "telegram.polling", 10);
    }
    uint64_t takeover_ms = test_now_ms() - killed_at;
    assert_true(took);
    int status = test_child_finish(&a, 30000);
    if (sig == SIGTERM)
        assert_int_equal(status, 0);
    assert_null(strstr(a.err, "ERROR: AddressSanitizer"));

    int64_t unanswered = FO_UPDATES, repeated = 0;
    fo_wait_answered(&f, &b, &unanswered, &repeated);
    kill(b.pid, SIGTERM);
    assert_true(test_child_wait_for(&b, "err", "daemon.stopped", 30000));
    assert_int_equal(test_child_finish(&b, 30000), 0);
    assert_null(strstr(b.err, "ERROR: AddressSanitizer"));
    tgapi_backlog_tally(f.api, &unanswered, &repeated);
    fprintf(stderr,
            "telegram failover: signal=%d takeover_ms=%llu lease_ms=%d killed_at=%llu "
            "unanswered=%lld repeated=%lld\n",
            sig, (unsigned long long)takeover_ms, FO_LEASE_S * 1000,
            (unsigned long long)sent_at_kill, (long long)unanswered, (long long)repeated);
    test_child_free(&a);
    test_child_free(&b);
    assert_int_equal(unanswered, 0);
    assert_true(repeated <= repeats_max);
    /* The kill fell in the middle of the backlog, as this test means. */
    assert_true(sent_at_kill < FO_UPDATES);
    /* The lease runs out at most FO_LEASE_S after the kill (it was
     * renewed before), and the standby asks again right then; the margin
     * is its start as poller (the offset, the outbox) on a loaded
     * machine. `make bench` measures it without sanitizers. */
    assert_true(takeover_ms <= takeover_max_ms);
    fo_free(&f);
}

static void test_sigkill_standby_takes_over(void **state)
{
    (void)state;
    fo_run(SIGKILL, FO_KILL_REPEATS_MAX, FO_LEASE_S * 1000 + 2000);
}

static void test_sigterm_hands_over_at_once(void **state)
{
    (void)state;
    /* Given up on the stop: the standby's next ask takes it, and a clean
     * stop confirmed every update it answered. */
    fo_run(SIGTERM, 0, FO_LEASE_S * 1000 / 3 + 3000);
}

/* The poller frozen (SIGSTOP) past its lease loses it to the standby.
 * Woken, it polls no more and stands by in turn, so that when the new
 * poller dies it takes over again: every update is answered. */
static void test_lost_lease_stands_by_again(void **state)
{
    (void)state;
    struct fo f;
    struct test_child a, b;
    fo_begin(&f, &a, &b);
    kill(a.pid, SIGSTOP);
    bool took = false;
    uint64_t end = test_now_ms() + 30000;
    while (!took && test_now_ms() < end)
        took = test_child_wait_for(&b, "err", "telegram.polling", 10);
    assert_true(took);
    kill(a.pid, SIGCONT);
    size_t before = strlen(a.err);
    assert_true(test_child_wait_for(&a, "err", "telegram.poller_lost", 30000));
    bool standing = false;
    end = test_now_ms() + 30000;
    while (!standing && test_now_ms() < end) {
        fo_pump(&a, &b, 10);
        standing = strstr(a.err + before, "role=standby") != NULL;
    }
    assert_true(standing);
    /* The new poller dies: the first takes the lease again. */
    kill(b.pid, SIGKILL);
    bool again = false;
    end = test_now_ms() + 30000;
    while (!again && test_now_ms() < end) {
        fo_pump(&a, NULL, 10);
        again = strstr(a.err + before, "role=holder") != NULL;
    }
    assert_true(again);
    int64_t unanswered = FO_UPDATES, repeated = 0;
    fo_wait_answered(&f, &a, &unanswered, &repeated);
    test_child_finish(&b, 30000);
    kill(a.pid, SIGTERM);
    assert_true(test_child_wait_for(&a, "err", "daemon.stopped", 30000));
    assert_int_equal(test_child_finish(&a, 30000), 0);
    assert_null(strstr(a.err, "ERROR: AddressSanitizer"));
    fprintf(stderr, "telegram lost lease: unanswered=%lld repeated=%lld\n", (long long)unanswered,
            (long long)repeated);
    test_child_free(&a);
    test_child_free(&b);
    assert_int_equal(unanswered, 0);
    /* Two changes of poller, neither clean: a kill's worth each at most. */
    assert_true(repeated <= 2 * FO_KILL_REPEATS_MAX);
    fo_free(&f);
}

/* The poller frozen (SIGSTOP) with a long queue (its sends paced): replies
 * to updates confirmed, whose rows are in the outbox, and to updates
 * polled since. The standby takes over, replays the outbox and polls the
 * updates not confirmed again. Woken, the first sends nothing of its
 * queue while its lease may have run out, drops it on learning of the
 * loss, and writes no offset of its own any more: members get no more
 * repeats than a kill allows (the replies of the last poll, and those in
 * flight). Before, it sent its whole queue on waking, a second time. */
static void test_frozen_poller_repeats_nothing_queued(void **state)
{
    (void)state;
    enum { updates = 1000, sends_per_s = 100, queued_at_least = 150 };
    struct fo f;
    struct test_child a, b;
    fo_sends_per_s[0] = sends_per_s;
    fo_init(&f);
    fo_sends_per_s[0] = 100000;
    fo_start(&f, 0, &a, "telegram.polling");
    fo_start(&f, 1, &b, "role=standby");
    tgapi_backlog(f.api, updates, updates);
    /* Paced, the poller runs ahead of its sends: its queue fills. */
    uint64_t end = test_now_ms() + 60000;
    while (tgapi_sends(f.api) < sends_per_s * 3 / 2 && test_now_ms() < end)
        fo_pump(&a, &b, 5);
    assert_true(tgapi_sends(f.api) >= sends_per_s * 3 / 2);
    kill(a.pid, SIGSTOP);
    uint64_t sent_at_stop = tgapi_sends(f.api);
    bool took = false;
    end = test_now_ms() + 30000;
    while (!took && test_now_ms() < end)
        took = test_child_wait_for(&b, "err", "telegram.polling", 10);
    assert_true(took);
    kill(a.pid, SIGCONT);
    assert_true(test_child_wait_for(&a, "err", "telegram.poller_lost", 30000));
    int64_t unanswered = updates, repeated = 0;
    end = test_now_ms() + 120000;
    while (test_now_ms() < end) {
        tgapi_backlog_tally(f.api, &unanswered, &repeated);
        if (unanswered == 0)
            break;
        fo_pump(&a, &b, 20);
    }
    /* Long enough for the first to have sent its whole queue at its pace,
     * as it did before: those repeats are counted too. */
    fo_pump(&a, &b, 1000 * queued_at_least / sends_per_s);
    tgapi_backlog_tally(f.api, &unanswered, &repeated);
    /* What it dropped: more than a kill may repeat, or this test would
     * not tell the two apart. */
    long rows = 0, replies = 0;
    const char *dropped = strstr(a.err, "telegram.sends_dropped");
    const char *r = dropped != NULL ? strstr(dropped, "rows=") : NULL;
    const char *p = dropped != NULL ? strstr(dropped, "replies=") : NULL;
    if (r != NULL && p != NULL) {
        rows = strtol(r + 5, NULL, 10);
        replies = strtol(p + 8, NULL, 10);
    }
    fprintf(stderr,
            "telegram frozen poller: sent_at_stop=%llu dropped rows=%ld replies=%ld "
            "unanswered=%lld repeated=%lld\n",
            (unsigned long long)sent_at_stop, rows, replies, (long long)unanswered,
            (long long)repeated);
    for (int i = 0; i < 2; i++) {
        struct test_child *c = i == 0 ? &a : &b;
        kill(c->pid, SIGTERM);
        assert_true(test_child_wait_for(c, "err", "daemon.stopped", 30000));
        assert_int_equal(test_child_finish(c, 30000), 0);
        assert_null(strstr(c->err, "ERROR: AddressSanitizer"));
        test_child_free(c);
    }
    assert_int_equal(unanswered, 0);
    assert_true(repeated <= FO_KILL_REPEATS_MAX);
    assert_true(rows + replies >= queued_at_least);
    fo_free(&f);
}

/* A notice the poller sent for the standby: told a lease more (three more
 * passes) gives no second one; then both daemons stop cleanly. */
static void fo_stop(struct test_child *a, struct test_child *b)
{
    for (int i = 0; i < 2; i++) {
        struct test_child *c = i == 0 ? a : b;
        kill(c->pid, SIGTERM);
        assert_true(test_child_wait_for(c, "err", "daemon.stopped", 30000));
        assert_int_equal(test_child_finish(c, 30000), 0);
        assert_null(strstr(c->err, "ERROR: AddressSanitizer"));
    }
}

static void fo_told_once_then_stop(struct test_child *a, struct test_child *b)
{
    fo_pump(a, b, FO_LEASE_S * 1000);
    fo_stop(a, b);
}

/* A payment for a Telegram member reaches the standby (webhooks may hit
 * any daemon), which cannot send to Telegram: the poller sends its notice
 * once it is a lease old, once. */
static void test_standby_payment_told_by_poller(void **state)
{
    (void)state;
    struct fo f;
    struct test_child a, b;
    fo_init_with(&f, true, NULL);
    fo_start(&f, 0, &a, "telegram.polling");
    fo_start(&f, 1, &b, "role=standby");
    char ref[PAYREF_REFERENCE_MAX + 1];
    assert_int_equal(
        payref_reference_make(ref, sizeof(ref), FO_PAY_KEY, strlen(FO_PAY_KEY), "telegram:777"), 0);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"id\":\"evt_fo1\",\"object\":\"event\",\"api_version\":\"2024-06-20\","
             "\"type\":\"checkout.session.completed\",\"data\":{\"object\":{\"id\":"
             "\"cs_test_fo1\",\"object\":\"checkout.session\",\"amount_subtotal\":500,"
             "\"amount_total\":500,\"client_reference_id\":\"%s\",\"currency\":\"usd\","
             "\"mode\":\"payment\",\"payment_intent\":\"pi_fo1\",\"payment_status\":"
             "\"paid\",\"status\":\"complete\"}}}",
             ref);
    uint64_t paid_at = test_now_ms();
    int fd = test_stripe_send(f.port[1], FO_PAY_SECRET, body);
    assert_true(fd >= 0);
    assert_int_equal(test_http_status(fd), 200);
    uint64_t end = paid_at + 30000;
    while (tgapi_count(f.api, "sendMessage") == 0 && test_now_ms() < end)
        fo_pump(&a, &b, 20);
    uint64_t told_ms = test_now_ms() - paid_at;
    assert_int_equal(tgapi_count(f.api, "sendMessage"), 1);
    /* A lease old, then the next renewal's pass: well within two leases. */
    assert_true(told_ms <= 2 * FO_LEASE_S * 1000 + 2000);
    fo_told_once_then_stop(&a, &b);
    assert_int_equal(tgapi_count(f.api, "sendMessage"), 1);
    const struct tgapi_call *sent = NULL;
    for (size_t i = 0; i < tgapi_ncalls(f.api); i++) {
        const struct tgapi_call *c = tgapi_call_at(f.api, i);
        if (strcmp(c->method, "sendMessage") == 0)
            sent = c;
    }
    assert_non_null(sent);
    assert_non_null(strstr(sent->body, "\"chat_id\":777"));
    assert_non_null(strstr(sent->body, "payment arrived"));
    test_child_free(&a);
    test_child_free(&b);
    fo_free(&f);
}

/* The API key in the poller's answer to /apikey create; "" until one was
 * sent. */
static void fo_key_sent(struct fo *f, char key[80])
{
    key[0] = '\0';
    for (size_t i = 0; i < tgapi_ncalls(f->api) && key[0] == '\0'; i++) {
        const struct tgapi_call *c = tgapi_call_at(f->api, i);
        const char *k = strcmp(c->method, "sendMessage") == 0 ? strstr(c->body, "hai") : NULL;
        size_t n = 0;
        for (; k != NULL && *k != '\0' && n < 79; k++) {
            if (!(*k == '-' || *k == '_' || (*k >= '0' && *k <= '9') || (*k >= 'a' && *k <= 'z') ||
                  (*k >= 'A' && *k <= 'Z')))
                break;
            key[n++] = *k;
        }
        key[n] = '\0';
    }
}

/* Ann (chat 777) makes an API key on Telegram: the poller's answer holds
 * it, into key. */
static void fo_key_made_with(struct fo *f, struct test_child *a, struct test_child *b,
                             const char *command, char key[80])
{
    char update[512];
    snprintf(update, sizeof(update),
             "\"message\":{\"message_id\":7,\"date\":1700000000,\"chat\":{\"id\":777,"
             "\"type\":\"private\",\"first_name\":\"Ann\"},\"from\":{\"id\":777,"
             "\"is_bot\":false,\"first_name\":\"Ann\"},\"text\":\"%s\"}",
             command);
    tgapi_push(f->api, update);
    key[0] = '\0';
    uint64_t end = test_now_ms() + 30000;
    while (strlen(key) != 68 && test_now_ms() < end) {
        fo_pump(a, b, 20);
        fo_key_sent(f, key);
    }
    if (strlen(key) != 68)
        fail_msg("no key in the poller's answer (%zu calls)", tgapi_ncalls(f->api));
}

static void fo_key_made(struct fo *f, struct test_child *a, struct test_child *b, char key[80])
{
    fo_key_made_with(f, a, b, "/apikey create laptop", key);
}

/* How many sendMessage calls to chat (a body's "chat_id":N, or NULL: any)
 * said needle. */
static size_t fo_told_in(struct fo *f, const char *chat, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < tgapi_ncalls(f->api); i++) {
        const struct tgapi_call *c = tgapi_call_at(f->api, i);
        if (strcmp(c->method, "sendMessage") == 0 &&
            (chat == NULL || strstr(c->body, chat) != NULL) && strstr(c->body, needle) != NULL)
            n++;
    }
    return n;
}

/* How many sendMessage calls to chat 777 said needle. */
static size_t fo_told(struct fo *f, const char *needle)
{
    return fo_told_in(f, "\"chat_id\":777", needle);
}

/* POST a chat completion with `key` to daemon i's API: its status. */
static int fo_complete_as(struct fo *f, int i, const char *key, bool half_close)
{
    char body[] = "{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"user\",\"content\":"
                  "\"hi\"}]}";
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     key, strlen(body), body);
    int fd = test_tcp_connect(f->port[i]);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    if (half_close)
        shutdown(fd, SHUT_WR); /* its end sent: it waits for the answer */
    return test_http_status(fd);
}

static int fo_complete(struct fo *f, int i, const char *key)
{
    return fo_complete_as(f, i, key, false);
}

/* A Telegram member's spend through the standby's HTTP API leaves the
 * wallet low. Only the poller sends to Telegram: the standby leaves the
 * notice owed, and the poller sends it, once. */
static void test_standby_low_balance_told_by_poller(void **state)
{
    (void)state;
    struct fo f;
    struct test_child a, b;
    fo_init_with(&f, true,
                 "[api]\nenabled = true\n[provider \"demo\"]\nkind = demo\n"
                 "[model \"demo-chat\"]\nprovider = demo\nprice_request = 30\n"
                 "max_output_tokens = 50\n[notices]\nlow_balance = 50\n"
                 "[ledger]\nwelcome_bonus = 60\n");
    fo_start(&f, 0, &a, "telegram.polling");
    fo_start(&f, 1, &b, "role=standby");
    char key[80];
    fo_key_made(&f, &a, &b, key);
    /* A key the poller made a moment ago works on the standby at once (it
     * would wait for the standby's next heartbeat): a key it does not know
     * makes it read the keys again first. One no daemon made is refused
     * all the same. */
    uint64_t spent_at = test_now_ms();
    assert_int_equal(fo_complete(&f, 1, key), 200);
    char bogus[80];
    snprintf(bogus, sizeof(bogus), "%s", key);
    bogus[10] = bogus[10] == 'a' ? 'b' : 'a';
    assert_int_equal(fo_complete(&f, 1, bogus), 401);
    uint64_t end = spent_at + 30000;
    while (fo_told(&f, "running low") == 0 && test_now_ms() < end)
        fo_pump(&a, &b, 20);
    uint64_t told_ms = test_now_ms() - spent_at;
    assert_int_equal(fo_told(&f, "running low"), 1);
    assert_non_null(strstr(b.err, "notice.owed kind=low_balance"));
    /* A lease old, then the next renewal's pass: well within two leases. */
    assert_true(told_ms <= 2 * FO_LEASE_S * 1000 + 2000);
    fo_told_once_then_stop(&a, &b);
    assert_int_equal(fo_told(&f, "running low"), 1);
    test_child_free(&a);
    test_child_free(&b);
    fo_free(&f);
}

/* Both daemons up with the HTTP API and a demo model, a the poller and b
 * the standby, on a minute's lease (no takeover while the test runs). */
static void fo_api_pair(struct fo *f, struct test_child *a, struct test_child *b)
{
    fo_lease_s = 60;
    fo_init_with(f, true,
                 "[api]\nenabled = true\n[provider \"demo\"]\nkind = demo\n"
                 "[model \"demo-chat\"]\nprovider = demo\nprice_request = 1\n"
                 "max_output_tokens = 50\n[ledger]\nwelcome_bonus = 1000\n");
    fo_lease_s = FO_LEASE_S;
    fo_start(f, 0, a, "telegram.polling");
    fo_start(f, 1, b, "role=standby");
}

/* A key revoked on the poller is refused by the standby at once, not at
 * the standby's next heartbeat (a third of the lease: 20 s here): the
 * revocation's commit is announced to every daemon (store_listen). */
static void test_revoked_key_refused_everywhere_at_once(void **state)
{
    (void)state;
    struct fo f;
    struct test_child a, b;
    fo_api_pair(&f, &a, &b);
    assert_non_null(strstr(a.err, "cluster.listening"));
    assert_non_null(strstr(b.err, "cluster.listening"));
    char key[80];
    fo_key_made(&f, &a, &b, key);
    assert_int_equal(fo_complete(&f, 1, key), 200);
    tgapi_push(f.api,
               "\"message\":{\"message_id\":8,\"date\":1700000001,\"chat\":{\"id\":777,"
               "\"type\":\"private\",\"first_name\":\"Ann\"},\"from\":{\"id\":777,"
               "\"is_bot\":false,\"first_name\":\"Ann\"},\"text\":\"/apikey revoke laptop\"}");
    uint64_t end = test_now_ms() + 30000;
    while (fo_told(&f, "is revoked") == 0 && test_now_ms() < end)
        fo_pump(&a, &b, 5);
    assert_int_equal(fo_told(&f, "is revoked"), 1);
    /* The member was told; the standby refuses the key within moments. */
    uint64_t revoked_at = test_now_ms();
    int status = 200;
    while (status == 200 && test_now_ms() < revoked_at + 10000) {
        status = fo_complete(&f, 1, key);
        if (status == 200)
            fo_pump(&a, &b, 10);
    }
    uint64_t took = test_now_ms() - revoked_at;
    assert_int_equal(status, 401);
    if (took > 2000)
        fail_msg("the standby took the revoked key for %llu ms", (unsigned long long)took);
    assert_int_equal(fo_complete(&f, 0, key), 401);
    assert_non_null(strstr(b.err, "cluster.changed what=apikeys"));
    /* A feature an admin switches off in a group on the poller is read
     * again by the standby at once too. */
    tgapi_push(f.api,
               "\"message\":{\"message_id\":9,\"date\":1700000002,\"chat\":{\"id\":-100123,"
               "\"type\":\"supergroup\",\"title\":\"G\"},\"from\":{\"id\":777,"
               "\"is_bot\":false,\"first_name\":\"Ann\"},\"text\":\"/admin feature images off\"}");
    end = test_now_ms() + 30000;
    while (fo_told_in(&f, "\"chat_id\":-100123", "is now off in this group") == 0 &&
           test_now_ms() < end)
        fo_pump(&a, &b, 5);
    assert_int_equal(fo_told_in(&f, "\"chat_id\":-100123", "is now off in this group"), 1);
    uint64_t switched_at = test_now_ms();
    while (strstr(b.err, "cluster.changed what=state:feature") == NULL &&
           test_now_ms() < switched_at + 10000)
        fo_pump(&a, &b, 10);
    assert_non_null(strstr(b.err, "cluster.changed what=state:feature"));
    assert_true(test_now_ms() - switched_at < 2000);
    fo_stop(&a, &b);
    test_child_free(&a);
    test_child_free(&b);
    fo_free(&f);
}

/* A key's requests per minute are counted across the daemons: with rpm 4,
 * four requests through either daemon go, the fifth is refused on both
 * (before, each daemon counted its own, and eight went). The first one's
 * client sends its end while the request waits for its count: it is
 * answered as a request whose caller left (before, "Incorrect API key"),
 * and it counts. */
static void test_key_rpm_counted_across_daemons(void **state)
{
    (void)state;
    struct fo f;
    struct test_child a, b;
    fo_api_pair(&f, &a, &b);
    char key[80];
    fo_key_made_with(&f, &a, &b, "/apikey create laptop rpm:4", key);
    /* All within one minute of the clock. */
    while (time(NULL) % 60 > 45)
        fo_pump(&a, &b, 100);
    int half = fo_complete_as(&f, 1, key, true);
    if (half != 200 && half != 503)
        fail_msg("a half-closed request was answered %d", half);
    assert_int_equal(fo_complete(&f, 0, key), 200);
    assert_int_equal(fo_complete(&f, 1, key), 200);
    assert_int_equal(fo_complete(&f, 1, key), 200);
    assert_int_equal(fo_complete(&f, 0, key), 429);
    assert_int_equal(fo_complete(&f, 1, key), 429);
    fo_stop(&a, &b);
    test_child_free(&a);
    test_child_free(&b);
    fo_free(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sigkill_standby_takes_over),
    cmocka_unit_test(test_sigterm_hands_over_at_once),
    cmocka_unit_test(test_lost_lease_stands_by_again),
    cmocka_unit_test(test_frozen_poller_repeats_nothing_queued),
    cmocka_unit_test(test_standby_payment_told_by_poller),
    cmocka_unit_test(test_standby_low_balance_told_by_poller),
    cmocka_unit_test(test_revoked_key_refused_everywhere_at_once),
    cmocka_unit_test(test_key_rpm_counted_across_daemons),
};

TEST_GROUP_DEFINE(telegram_failover_pg, tests, NULL, NULL)
