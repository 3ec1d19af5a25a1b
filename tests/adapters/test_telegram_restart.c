/* The daemon killed (SIGKILL) or stopped (SIGTERM) halfway through a
 * 20,000-update backlog on the fake Bot API, then started again: every
 * update is answered, and repeats stay within the stated bound (none for
 * SIGTERM). One chat per update, so the fake can count each update's
 * answers. Pacing is raised in the config (sends_per_second) so that each
 * run takes seconds; the rules are the same. */
#include "tests/test.h"

#include "tests/fake/telegram_api.h"
#include "bot/config.h"
#include "base/error.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TR_UPDATES 20000
#define TR_TOKEN "123456:RESTART-token-abcdef"
/* A SIGKILL may repeat the replies of the last poll, when the next
 * getUpdates (which confirms them to Telegram, and goes only once they
 * were answered) had not reached the fake: at most one poll's updates
 * (100). And sends whose outbox rows were not yet removed: here (one chat
 * per update, 100,000 sends a second) a reply gets a row only when it
 * waited behind the in-flight limit (max_inflight, set to 32 here) at a
 * checkpoint.
 * Measured here: 0 or 100. */
#define TR_QUEUE_MAX 300
#define TR_POLL_LIMIT 100
#define TR_MAX_INFLIGHT 32
#define TR_KILL_REPEATS_MAX (TR_POLL_LIMIT + TR_MAX_INFLIGHT)

struct tr {
    char *dir;
    char conf[512];
    char db[512];
    struct tgapi *api;
};

static void tr_init(struct tr *t)
{
    memset(t, 0, sizeof(*t));
    t->dir = test_tmpdir_new();
    snprintf(t->conf, sizeof(t->conf), "%s/bot.conf", t->dir);
    snprintf(t->db, sizeof(t->db), "%s/haibot.db", t->dir);
    t->api = tgapi_thread_new(TR_TOKEN);
    assert_non_null(t->api);
    tgapi_backlog(t->api, TR_UPDATES, TR_UPDATES);
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = Restart Bot\nlog_level = info\nshutdown_grace = 20\n"
             "[storage]\npath = %s\n"
             "[console]\nenabled = false\n"
             "[telegram]\nenabled = true\ntoken = " TR_TOKEN "\napi_base = %s\n"
             "poll_timeout = 1\nsends_per_second = 100000\nsend_queue_max = %d\n"
             "max_inflight = %d\n",
             t->db, tgapi_base(t->api), TR_QUEUE_MAX, TR_MAX_INFLIGHT);
    test_file_write(t->conf, text, (size_t)-1);
    chmod(t->conf, 0600);
}

static void tr_free(struct tr *t)
{
    tgapi_close(t->api, NULL, NULL);
    test_tmpdir_remove(t->dir);
    free(t->dir);
}

static void tr_start(struct tr *t, struct test_child *c)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", t->conf, NULL};
    test_child_start(c, argv);
    assert_true(test_child_wait_for(c, "err", "telegram.polling", 20000));
}

/* Wait (reading the daemon's output so it never blocks on a full pipe)
 * until the fake counted at least `sends` sends. */
static bool tr_wait_sends(struct tr *t, struct test_child *c, uint64_t sends, int timeout_ms)
{
    uint64_t end = test_now_ms() + (uint64_t)timeout_ms;
    while (test_now_ms() < end) {
        if (tgapi_sends(t->api) >= sends)
            return true;
        test_child_wait_for(c, "err", "\x01never\x01", 5);
    }
    return tgapi_sends(t->api) >= sends;
}

static void tr_run(int sig, uint64_t kill_at, int64_t repeats_max)
{
    struct tr t;
    tr_init(&t);
    struct test_child c;
    tr_start(&t, &c);
    assert_true(tr_wait_sends(&t, &c, kill_at, 60000));
    kill(c.pid, sig);
    if (sig == SIGTERM)
        assert_true(test_child_wait_for(&c, "err", "daemon.stopped", 30000));
    int status = test_child_finish(&c, 30000);
    if (sig == SIGTERM && status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", c.err);
    if (sig == SIGTERM) {
        assert_int_equal(status, 0);
        /* The queue was sent out, not cut off by the grace period. */
        assert_non_null(strstr(c.err, "telegram.drained"));
        assert_null(strstr(c.err, "daemon.grace_expired"));
    }
    assert_null(strstr(c.err, "ERROR: AddressSanitizer"));
    uint64_t first = tgapi_sends(t.api);
    test_child_free(&c);

    struct test_child c2;
    tr_start(&t, &c2);
    int64_t unanswered = TR_UPDATES, repeated = 0;
    uint64_t end = test_now_ms() + 120000;
    while (test_now_ms() < end) {
        tgapi_backlog_tally(t.api, &unanswered, &repeated);
        if (unanswered == 0)
            break;
        tr_wait_sends(&t, &c2, tgapi_sends(t.api) + 1, 50);
    }
    kill(c2.pid, SIGTERM);
    assert_true(test_child_wait_for(&c2, "err", "daemon.stopped", 30000));
    assert_int_equal(test_child_finish(&c2, 30000), 0);
    assert_null(strstr(c2.err, "ERROR: AddressSanitizer"));
    test_child_free(&c2);
    tgapi_backlog_tally(t.api, &unanswered, &repeated);
    fprintf(stderr,
            "telegram restart: signal=%d kill_at=%llu sent_before=%llu unanswered=%lld "
            "repeated=%lld\n",
            sig, (unsigned long long)kill_at, (unsigned long long)first, (long long)unanswered,
            (long long)repeated);
    assert_int_equal(unanswered, 0);
    assert_true(repeated <= repeats_max);
    tr_free(&t);
}

static void test_sigkill_mid_backlog(void **state)
{
    (void)state;
    /* Several kill points, not one lucky one. */
    tr_run(SIGKILL, TR_UPDATES / 4, TR_KILL_REPEATS_MAX);
    tr_run(SIGKILL, TR_UPDATES / 2, TR_KILL_REPEATS_MAX);
    tr_run(SIGKILL, TR_UPDATES * 3 / 4, TR_KILL_REPEATS_MAX);
}

static void test_sigterm_mid_backlog(void **state)
{
    (void)state;
    tr_run(SIGTERM, TR_UPDATES / 4, 0);
    tr_run(SIGTERM, TR_UPDATES / 2, 0);
    tr_run(SIGTERM, TR_UPDATES * 3 / 4, 0);
}

/* The pace and the bound are validated like every other key. */
static void test_pace_keys_validated(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/bot.conf", dir);
    const char *bad = "[telegram]\nsends_per_second = 0\nsend_queue_max = 5\n";
    test_file_write(path, bad, (size_t)-1);
    chmod(path, 0600);
    struct config *cfg = NULL;
    struct config_problems p;
    config_problems_init(&p);
    assert_int_equal(config_load(path, &cfg, &p), HB_ECONFIG);
    assert_int_equal(p.count, 2);
    assert_non_null(strstr(p.items[0].message, "telegram.sends_per_second: 0 is out of range"));
    assert_non_null(strstr(p.items[1].message, "telegram.send_queue_max: 5 is out of range"));
    config_problems_free(&p);
    const char *good = "[telegram]\nsends_per_second = 500\n";
    test_file_write(path, good, (size_t)-1);
    assert_int_equal(config_load(path, &cfg, &p), 0);
    assert_int_equal(cfg->telegram.sends_per_second, 500);
    assert_int_equal(cfg->telegram.send_queue_max, 1000);
    config_free(cfg);
    config_problems_free(&p);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pace_keys_validated),
    cmocka_unit_test(test_sigkill_mid_backlog),
    cmocka_unit_test(test_sigterm_mid_backlog),
};

TEST_GROUP_DEFINE(telegram_restart, tests, NULL, NULL)
