/* One wallet across platforms (core/link.h) through the router, the
 * handlers and a real ledger: /link codes, the balance moved, commands of
 * either identity on one wallet, /unlink, welcome bonuses once, the codes'
 * rules, and links kept across a restart. */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "storage/store_backend.h"
#include "base/util.h"
#include "bot/router.h"
#include "core/audit.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/handlers.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/messages.h"
#include "core/wallet.h"
#include "tests/core/ledger_helpers.h"
#include "tests/core/test_generate.h"
#include "tests/fake/reply_capture.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
    struct lt lt;
    struct core core;
    struct router *router;
    struct reply_capture cap;
    int event;
};

static int64_t fx_clock(void *data)
{
    return ((struct lt *)data)->now;
}

static void fx_links_loaded(int rc, void *data)
{
    int *out = data;
    *out = rc == 0 ? 1 : -1;
}

/* A fresh link directory read from the store, as the daemon does at start. */
static void fx_links_load(struct fx *f)
{
    link_dir_free(f->core.links);
    f->core.links = link_dir_new();
    assert_non_null(f->core.links);
    int loaded = 0;
    assert_int_equal(link_dir_load(&f->core, fx_links_loaded, &loaded), 0);
    while (loaded == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(loaded, 1);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    lt_init(&f->lt, true, false);
    f->core.bot_name = "Test Bot";
    f->core.ledger = f->lt.ledger;
    f->core.welcome_bonus = 100;
    f->core.clock = (struct clock){.now_ms = fx_clock, .data = &f->lt};
    memset(f->core.button_key, 7, sizeof(f->core.button_key));
    f->router = router_new(&f->core);
    fx_links_load(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    reply_capture_close(&f->cap);
    router_free(f->router);
    link_dir_free(f->core.links);
    lt_done(&f->lt);
    free(f);
    return 0;
}

struct who {
    enum command_platform platform;
    const char *user;
    const char *scope; /* NULL: a private chat */
    bool admin;
};

static void who_inv(struct fx *f, const struct who *w, struct invocation *inv)
{
    memset(inv, 0, sizeof(*inv));
    inv->platform = w->platform;
    snprintf(inv->user_id, sizeof(inv->user_id), "%s", w->user);
    snprintf(inv->user_name, sizeof(inv->user_name), "%s", w->user);
    if (w->scope != NULL) {
        inv->scope = COMMAND_SCOPE_GROUP;
        snprintf(inv->scope_id, sizeof(inv->scope_id), "%s", w->scope);
        snprintf(inv->channel_id, sizeof(inv->channel_id), "%s", w->scope);
    }
    inv->admin = w->admin;
    snprintf(inv->event_id, sizeof(inv->event_id), "ev%d", ++f->event);
}

/* Run one command line and wait for its reply to end; the text it answered. */
static const char *run(struct fx *f, const struct who *w, const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    who_inv(f, w, &inv);
    inv.reply = &f->cap.reply;
    router_dispatch(f->router, &inv, line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(f->cap.finished, 1);
    return f->cap.text != NULL ? f->cap.text : "";
}

static const struct who alice = {COMMAND_PLATFORM_DISCORD, "1001", NULL, false};
static const struct who alice_tg = {COMMAND_PLATFORM_TELEGRAM, "42", NULL, false};
static const struct who alice_console = {COMMAND_PLATFORM_CONSOLE, "op", NULL, false};
static const struct who bob = {COMMAND_PLATFORM_DISCORD, "1002", NULL, false};

/* /link on who: the code it answered, privately. */
static void code_get(struct fx *f, const struct who *w, char *code)
{
    const char *t = run(f, w, "link");
    const char *p = strstr(t, "Your link code: ");
    assert_non_null(p);
    assert_true(f->cap.last_personal);
    p += strlen("Your link code: ");
    memcpy(code, p, LINK_CODE_LEN);
    code[LINK_CODE_LEN] = '\0';
    for (size_t i = 0; i < LINK_CODE_LEN; i++)
        assert_non_null(strchr(LINK_CODE_ALPHABET, code[i]));
}

static const char *redeem(struct fx *f, const struct who *w, const char *code)
{
    char line[64];
    snprintf(line, sizeof(line), "link %s", code);
    return run(f, w, line);
}

static void wallet_of(struct fx *f, const struct who *w, char *buf, size_t cap)
{
    struct invocation inv;
    who_inv(f, w, &inv);
    assert_int_equal(wallet_account(&f->core, &inv, buf, cap), 0);
}

/* Sum of every account's posted balance: zero in a double-entry ledger. */
static int64_t ledger_sum(struct fx *f)
{
    const char *accounts[] = {"discord:1001", "telegram:42",       "console:op",
                              "discord:1002", LEDGER_SYSTEM_BONUS, LEDGER_SYSTEM_GRANTS};
    int64_t sum = 0;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(accounts); i++) {
        struct lt_res res;
        memset(&res, 0, sizeof(res));
        assert_int_equal(ledger_balance_get(f->lt.ledger, accounts[i], lt_cb, &res), 0);
        lt_wait(&f->lt, &res);
        if (res.rc == 0)
            sum += res.r.balance.posted;
    }
    return sum;
}

struct audit_seen {
    bool done;
    int rc;
    size_t n;
    char actions[8][STORE_AUDIT_ACTION_SIZE];
    char subjects[8][STORE_ID_SIZE];
};

static void audit_seen_cb(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct audit_seen *s = data;
    s->done = true;
    s->rc = rc;
    for (size_t i = 0; i < n && s->n < 8; i++, s->n++) {
        snprintf(s->actions[s->n], sizeof(s->actions[s->n]), "%s", e[i].action);
        snprintf(s->subjects[s->n], sizeof(s->subjects[s->n]), "%s", e[i].subject);
    }
}

/* The audit entries about match, newest first. */
static void audit_read(struct fx *f, const char *match, struct audit_seen *s)
{
    /* The entries are written beside the answer: wait for them. */
    for (int tries = 0; tries < 200; tries++) {
        memset(s, 0, sizeof(*s));
        assert_int_equal(audit_list(ledger_store(f->lt.ledger), match, 0, 0, 8, audit_seen_cb, s),
                         0);
        while (!s->done)
            uv_run(&f->lt.loop, UV_RUN_ONCE);
        if (s->n > 0)
            return;
    }
}

/* Linking a Telegram account to a Discord wallet: the code's wallet (the
 * Discord one) survives, the Telegram wallet's balance moves over as one
 * transfer, the ledger still sums to zero and verifies, and the link is in
 * the audit trail. */
static void test_link_moves_balance(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    const char *t = run(f, &alice_tg, "start");
    assert_non_null(strstr(t, "welcome bonus of 100"));
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Linked: this account now spends the wallet of discord:1001"));
    assert_non_null(strstr(t, "100 credits"));
    assert_true(f->cap.last_personal);
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 200);
    assert_int_equal(lt_balance(&f->lt, "telegram:42").available, 0);
    assert_int_equal(ledger_sum(f), 0);
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
    /* Either identity reads the one wallet. */
    t = run(f, &alice_tg, "balance");
    assert_non_null(strstr(t, "200 credits available"));
    assert_null(strstr(t, "welcome bonus"));
    t = run(f, &alice, "balance");
    assert_non_null(strstr(t, "200 credits available"));
    /* The history says whose wallet it is and shows the move as a link. */
    t = run(f, &alice_tg, "history");
    assert_non_null(strstr(t, "spends the wallet of discord:1001"));
    assert_non_null(strstr(t, "+100  transfer (link)"));
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_history_get(f->lt.ledger, "telegram:42", 0, 10, lt_cb, &res), 0);
    lt_wait(&f->lt, &res);
    assert_int_equal(res.history_count, 2); /* its bonus, and the move out */
    assert_string_equal(res.history[0].tag, LINK_TRANSFER_TAG);
    assert_string_equal(res.history[0].credit, "discord:1001");
    assert_int_equal(res.history[0].amount, 100);
    struct audit_seen seen;
    audit_read(f, "telegram:42", &seen);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.actions[0], "link");
}

/* Reserved credits stay in the old wallet until settled: the link moves
 * the available balance only. What a void gives back later stays there
 * and moves with the next link. */
static void test_reserved_stay(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    run(f, &alice_tg, "start");
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        lt_reserve(&f->lt, "job-1", "telegram:42", LEDGER_SYSTEM_REVENUE, 30, 60000, &res), 0);
    assert_int_equal(res.rc, 0);
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    const char *t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "moved there: 70 credits"));
    assert_non_null(strstr(t, "Credits it had reserved stay in its own wallet"));
    struct ledger_balance b = lt_balance(&f->lt, "telegram:42");
    assert_int_equal(b.available, 0);
    assert_int_equal(b.pending_debits, 30);
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 170);
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_void(&f->lt, "job-1:void", "job-1", &res), 0);
    assert_int_equal(res.rc, 0);
    assert_int_equal(lt_balance(&f->lt, "telegram:42").available, 30);
    t = run(f, &alice_tg, "unlink");
    assert_non_null(strstr(t, "Unlinked"));
    t = run(f, &alice_tg, "balance");
    assert_non_null(strstr(t, "30 credits available"));
    code_get(f, &alice, code);
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "moved there: 30 credits"));
    assert_null(strstr(t, "reserved"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 200);
    assert_int_equal(ledger_sum(f), 0);
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
}

/* After a link every command of either identity uses the one wallet: what
 * a generation charges, what an admin grants, the preferences. */
static void test_commands_use_one_wallet(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    redeem(f, &alice_tg, code); /* its first command: a wallet without a bonus */
    char w[WALLET_ACCOUNT_MAX];
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    wallet_of(f, &alice, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    /* Who pays a generation of the Telegram identity, in a DM and a group. */
    struct invocation inv;
    who_inv(f, &alice_tg, &inv);
    char payer[WALLET_ACCOUNT_MAX], alt[WALLET_ACCOUNT_MAX];
    assert_int_equal(
        generate_payer_choose(&f->core, &inv, NULL, false, payer, sizeof(payer), alt, sizeof(alt)),
        0);
    assert_string_equal(payer, "discord:1001");
    /* An admin's grant to the Telegram member lands in the one wallet. */
    struct who tg_admin = {COMMAND_PLATFORM_TELEGRAM, "7", "-100", true};
    const char *t = run(f, &tg_admin, "admin grant 42 50");
    assert_non_null(strstr(t, "Granted 50 credits"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 150);
    assert_int_equal(lt_balance(&f->lt, "telegram:42").available, 0);
    /* The Telegram identity never got a bonus of its own. */
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(ledger_transfer_get(f->lt.ledger, "bonus:telegram:42", lt_cb, &res), 0);
    lt_wait(&f->lt, &res);
    assert_int_equal(res.rc, HB_ENOTFOUND);
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
}

/* /unlink gives the identity its own (empty) wallet back, without a
 * bonus; linking again moves nothing and pays nothing; the holder's
 * /unlink releases every identity linked into its wallet. */
static void test_unlink_and_bonus_once(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    run(f, &alice_tg, "start");
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    redeem(f, &alice_tg, code);
    const char *t = run(f, &alice_tg, "unlink");
    assert_non_null(strstr(t, "Unlinked: this account has its own wallet again"));
    t = run(f, &alice_tg, "balance");
    assert_non_null(strstr(t, "0 credits available"));
    assert_null(strstr(t, "welcome bonus"));
    t = run(f, &alice_tg, "unlink");
    assert_non_null(strstr(t, "not linked"));
    /* Link again: nothing to move, no bonus minted. */
    code_get(f, &alice, code);
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Linked"));
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 200);
    /* A console identity never seen before joins too: no bonus for it. */
    code_get(f, &alice_tg, code); /* made from the linked identity: the same wallet */
    t = redeem(f, &alice_console, code);
    assert_non_null(strstr(t, "spends the wallet of discord:1001"));
    assert_int_equal(lt_balance(&f->lt, "console:op").available, 0);
    assert_int_equal(lt_balance(&f->lt, "discord:1001").available, 200);
    /* The holder unlinks both. */
    t = run(f, &alice, "unlink");
    assert_non_null(strstr(t, "Unlinked 2 other accounts"));
    t = run(f, &alice_console, "balance");
    assert_non_null(strstr(t, "0 credits available"));
    assert_null(strstr(t, "welcome bonus"));
    t = run(f, &alice, "balance");
    assert_non_null(strstr(t, "200 credits available"));
    assert_int_equal(ledger_sum(f), 0);
    assert_int_equal(lt_verify(f->lt.path, NULL), 0);
    struct audit_seen seen;
    audit_read(f, "console:op", &seen);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.actions[0], "unlink");
    assert_string_equal(seen.actions[1], "link");
}

/* A code is used once, expires, and a wrong one is told apart; linking to
 * oneself or within one platform is refused; in a Telegram group codes
 * are neither shown nor taken. */
static void test_code_rules(void **state)
{
    struct fx *f = *state;
    char code[LINK_CODE_LEN + 1];
    const char *t = redeem(f, &alice_tg, "ABCD2345");
    assert_non_null(strstr(t, "wrong or already used"));
    code_get(f, &alice, code);
    t = redeem(f, &alice, code);
    assert_non_null(strstr(t, "That code is your own"));
    code_get(f, &alice, code);
    t = redeem(f, &bob, code);
    assert_non_null(strstr(t, "already has an account on this platform"));
    /* Reuse: the first use takes it. */
    code_get(f, &alice, code);
    char lower[LINK_CODE_LEN + 8];
    snprintf(lower, sizeof(lower), "%.4s-%.4s", code, code + 4);
    for (char *p = lower; *p != '\0'; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    t = redeem(f, &alice_tg, lower); /* case and dashes do not matter */
    assert_non_null(strstr(t, "Linked"));
    t = redeem(f, &alice_console, code);
    assert_non_null(strstr(t, "wrong or already used"));
    /* A new code replaces the creator's open one; it expires. */
    char old[LINK_CODE_LEN + 1];
    code_get(f, &alice, old);
    code_get(f, &alice, code);
    t = redeem(f, &alice_console, old);
    assert_non_null(strstr(t, "wrong or already used"));
    f->lt.now += LINK_CODE_TTL_MS + 1;
    t = redeem(f, &alice_console, code);
    assert_non_null(strstr(t, "expired"));
    /* Linked identities cannot join elsewhere before /unlink. */
    code_get(f, &alice_console, code);
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "already spends the wallet of discord:1001"));
    /* In a Telegram group: no code shown, and one typed there is void. */
    struct who in_group = {COMMAND_PLATFORM_TELEGRAM, "43", "-100", false};
    t = run(f, &in_group, "link");
    assert_non_null(strstr(t, "private chat"));
    assert_null(strstr(t, "Your link code"));
    code_get(f, &bob, code);
    t = redeem(f, &in_group, code);
    assert_non_null(strstr(t, "no longer works"));
    struct who private_chat = {COMMAND_PLATFORM_TELEGRAM, "43", NULL, false};
    t = redeem(f, &private_chat, code);
    assert_non_null(strstr(t, "wrong or already used"));
}

/* Codes cannot be guessed: LINK_TRIES_MAX tries per window, then even the
 * right code is refused until the window passes. */
static void test_rate_limit(void **state)
{
    struct fx *f = *state;
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    for (int i = 0; i < LINK_TRIES_MAX; i++) {
        const char *t = redeem(f, &alice_tg, "ZZZZ2222");
        assert_non_null(strstr(t, "wrong or already used"));
    }
    const char *t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Too many link codes tried. Try again in 10 minutes."));
    /* The refused try did not use the code up. */
    f->lt.now += LINK_TRIES_WINDOW_MS / 2;
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Try again in 5 minutes"));
    f->lt.now += LINK_TRIES_WINDOW_MS / 2;
    code_get(f, &alice, code);
    t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Linked"));
    /* The tries are counted in the store: another daemon (its own memory)
     * refuses a member who used them up through this one. */
    for (int i = 0; i < LINK_TRIES_MAX; i++)
        redeem(f, &bob, "ZZZZ2222");
    fx_links_load(f);
    t = redeem(f, &bob, "ZZZZ3333");
    assert_non_null(strstr(t, "Too many link codes tried."));
}

/* A link is durable: after the ledger is reopened and the links read
 * again, the Telegram identity still spends the Discord wallet; so is an
 * open code. */
static void test_link_survives_restart(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    run(f, &alice_tg, "start");
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    redeem(f, &alice_tg, code);
    char open_code[LINK_CODE_LEN + 1];
    code_get(f, &alice, open_code);
    lt_ledger_close(&f->lt);
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    fx_links_load(f);
    char w[WALLET_ACCOUNT_MAX];
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    const char *t = run(f, &alice_tg, "balance");
    assert_non_null(strstr(t, "200 credits available"));
    /* The open code was kept in the store: it still works after a restart,
     * once. */
    t = redeem(f, &alice_console, open_code);
    assert_non_null(strstr(t, "Linked"));
    t = redeem(f, &bob, open_code);
    assert_non_null(strstr(t, "wrong or already used"));
    t = run(f, &alice_tg, "unlink");
    assert_non_null(strstr(t, "Unlinked"));
    lt_ledger_close(&f->lt);
    lt_ledger_open(&f->lt);
    f->core.ledger = f->lt.ledger;
    fx_links_load(f);
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "telegram:42");
}

static long long db_count(const char *path, const char *sql);

/* A code made through one daemon of a shared ledger is taken through
 * another (its own memory, the same store), once; nothing of it is stored
 * in clear. */
static void test_code_taken_through_other_daemon(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    fx_links_load(f); /* the other daemon: what it holds in memory */
    const char *t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Linked"));
    char w[WALLET_ACCOUNT_MAX];
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    code_get(f, &alice, code);
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM state WHERE key LIKE '%%%s%%' OR value LIKE '%%%s%%'", code,
             code);
    assert_int_equal(db_count(f->lt.path, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM state WHERE ns = 'link.code'");
    assert_int_equal(db_count(f->lt.path, sql), 1);
}

/* What another daemon of a shared ledger did to the links, straight in
 * the store: a link made there, and one undone there. */
static int other_links_run(struct store_txn *txn, void *data)
{
    (void)data;
    int rc = store_txn_link_put(txn, "telegram:77", "discord:1002", 1000);
    if (rc == 0)
        rc = store_txn_link_remove(txn, "telegram:42");
    return rc;
}

/* Read again (the cluster's heartbeat does), the links follow the store:
 * before, this daemon kept spending a wallet another daemon unlinked. */
static void test_links_refresh_from_other_daemon(void **state)
{
    struct fx *f = *state;
    run(f, &alice, "start");
    run(f, &alice_tg, "start");
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    redeem(f, &alice_tg, code);
    char w[WALLET_ACCOUNT_MAX];
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    assert_int_equal(lt_store_run(&f->lt, other_links_run, NULL), 0);
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001"); /* held in memory until read again */
    assert_int_equal(link_dir_refresh(&f->core), 0);
    for (int i = 0; i < 1000 && strcmp(w, "discord:1001") == 0; i++) {
        uv_run(&f->lt.loop, UV_RUN_ONCE);
        wallet_of(f, &alice_tg, w, sizeof(w));
    }
    assert_string_equal(w, "telegram:42");
    const struct who carol_tg = {COMMAND_PLATFORM_TELEGRAM, "77", NULL, false};
    wallet_of(f, &carol_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1002");
}

static void join_done(int rc, int64_t moved, int64_t held, void *data)
{
    int *out = data;
    (void)held;
    *out = rc == 0 ? (int)moved + 1 : -1;
}

/* Two wallets of 100 credits, console:u1 and telegram:77, the second
 * linked to the first (which then holds 200). */
static void gt_link_two(struct gt *gt)
{
    gt->core.links = link_dir_new();
    assert_non_null(gt->core.links);
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&gt->lt, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&gt->lt, "telegram:77", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    int joined = 0;
    assert_int_equal(
        link_join(&gt->core, "telegram:77", "console:u1", "ev-join", join_done, &joined), 0);
    gt_wait(gt, &joined, 101);
}

static long long db_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void forget_done(int rc, int64_t turns, void *data)
{
    int *out = data;
    *out = rc == 0 ? (int)turns + 1 : -1;
}

/* A generation of the linked Telegram identity reserves and charges the
 * one wallet (the console identity's), never its own; the conversation it
 * starts is the shared wallet's, and /forget from the Telegram identity
 * erases it. */
static void test_generation_charges_one_wallet(void **state)
{
    (void)state;
    struct gt gt;
    struct catalog_limits limits = {
        .retry_max = 2, .conversation_idle_ms = 3600000, .conversation_retention_ms = 3 * 3600000};
    gt_init(&gt, &limits, NULL, 0, 0);
    gt_link_two(&gt);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").posted, 200);

    struct invocation inv;
    struct reply_capture cap;
    gt_inv(&inv, &cap, "77", NULL);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hello", .model = "h"};
    generate_submit(gt.g, &inv, &req);
    struct provider_call *call = held_wait_call(&gt, 0);
    assert_true(lt_balance(&gt.lt, "console:u1").pending_debits > 0);
    assert_int_equal(lt_balance(&gt.lt, "telegram:77").pending_debits, 0);
    held_finish(call, 0, "the answer", 1, 1);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "the answer");
    reply_capture_close(&cap);
    gt_settle(&gt, 10);
    assert_true(gt_balance(&gt, "u1") < 200);
    struct ledger_balance own = lt_balance(&gt.lt, "telegram:77");
    assert_int_equal(own.posted, 0);
    assert_int_equal(own.pending_debits, 0);
    assert_int_equal(
        db_count(gt.lt.path, "SELECT COUNT(*) FROM conversations WHERE owner='console:u1'"), 1);

    gt_inv(&inv, &cap, "77", NULL);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    int forgot = 0;
    assert_int_equal(generate_conversation_forget(gt.g, &inv, forget_done, &forgot), 0);
    gt_wait(&gt, &forgot, 3); /* two turns erased */
    reply_capture_close(&cap);
    assert_int_equal(db_count(gt.lt.path, "SELECT COUNT(*) FROM conversations"), 0);
    gt_done(&gt);
    link_dir_free(gt.core.links);
}

/* An image is its maker's wallet's: a linked identity of that wallet
 * cannot upvote it, as its maker cannot (never one's own vote, also in a
 * contest). */
static void test_linked_identity_cannot_upvote_own_image(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt_link_two(&gt);

    struct reply_capture cap;
    gt_run(&gt, &cap, "u1", PROVIDER_IMAGE, "img-b64", "a red cat");
    assert_int_equal(cap.nbuttons, 2);
    char up[COMMAND_BUTTON_REF_MAX + 1];
    snprintf(up, sizeof(up), "%s", cap.buttons[1].ref);
    reply_capture_close(&cap);

    struct invocation inv;
    gt_inv(&inv, &cap, "77", NULL);
    inv.platform = COMMAND_PLATFORM_TELEGRAM;
    snprintf(inv.button_ref, sizeof(inv.button_ref), "%s", up);
    cmd_generate_button(&gt.core, &inv);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "your own");
    reply_capture_close(&cap);
    gt_done(&gt);
    link_dir_free(gt.core.links);
}

struct joined_rc {
    int done;
    int rc;
};

static void join_rc_done(int rc, int64_t moved, int64_t held, void *data)
{
    struct joined_rc *j = data;
    (void)moved;
    (void)held;
    j->rc = rc;
    j->done++;
}

static int other_daemon_linked(struct store_txn *txn, void *data)
{
    (void)data;
    return store_txn_link_put(txn, "telegram:77", "discord:9", 1000);
}

/* Two daemons of one ledger link one account at nearly the same moment:
 * this one has not read the other's link yet, so its checks in memory
 * pass, and the link's own transaction checks again against the store
 * and refuses (before, it wrote over the other's link and moved the
 * balance a second time: one Telegram account in two wallets' history). */
static void test_link_checked_again_in_its_transaction(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    gt.core.links = link_dir_new();
    assert_non_null(gt.core.links);
    struct lt_res res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&gt.lt, "console:u1", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    memset(&res, 0, sizeof(res));
    assert_int_equal(lt_open(&gt.lt, "telegram:77", LEDGER_ACCOUNT_NO_OVERDRAFT, 100, &res), 0);
    assert_int_equal(lt_store_run(&gt.lt, other_daemon_linked, NULL), 0);
    struct joined_rc j = {0};
    assert_int_equal(link_join(&gt.core, "telegram:77", "console:u1", "ev-join", join_rc_done, &j),
                     0);
    gt_wait(&gt, &j.done, 1);
    assert_int_equal(j.rc, HB_ECONFLICT);
    assert_int_equal(lt_balance(&gt.lt, "telegram:77").posted, 100);
    assert_int_equal(lt_balance(&gt.lt, "console:u1").posted, 100);
    assert_int_equal(db_count(gt.lt.path, "SELECT COUNT(*) FROM wallet_links WHERE identity = "
                                          "'telegram:77' AND wallet = 'discord:9'"),
                     1);
    assert_int_equal(link_wallet(&gt.core, "telegram:77") == NULL, true);
    link_dir_free(gt.core.links);
    gt.core.links = NULL;
    gt_done(&gt);
}

/* Open codes of other members, straight in the store: n of them, open
 * until c->until. */
struct codes_fill {
    int64_t until;
    int n;
};

static int codes_fill_run(struct store_txn *txn, void *data)
{
    const struct codes_fill *c = data;
    int rc = 0;
    for (int i = 0; rc == 0 && i < c->n; i++) {
        char key[32], value[64];
        snprintf(key, sizeof(key), "fill%05d", i);
        snprintf(value, sizeof(value), "%lld discord:%d", (long long)c->until, 5000 + i);
        rc = store_txn_state_put(txn, "link.code", key, value, 1000);
    }
    return rc;
}

static int codes_drop_one_run(struct store_txn *txn, void *data)
{
    (void)data;
    return store_txn_state_put(txn, "link.code", "fill00000", NULL, 1000);
}

/* At most LINK_CODES_MAX codes are open. A member whose own code has
 * expired gets no new one beyond them: before, the expired code was taken
 * off the count as though it were open, and one more was let in. A
 * member replacing an open code of their own still may. */
static void test_open_codes_capped(void **state)
{
    struct fx *f = *state;
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    f->lt.now += LINK_CODE_TTL_MS + 1;
    struct codes_fill c = {.until = f->lt.now + LINK_CODE_TTL_MS, .n = LINK_CODES_MAX};
    assert_int_equal(lt_store_run(&f->lt, codes_fill_run, &c), 0);
    const char *t = run(f, &alice, "link");
    assert_null(strstr(t, "Your link code"));
    assert_non_null(strstr(t, MSG_LINK_CODES_FULL));
    /* One fewer open, and there is room for one. */
    assert_int_equal(lt_store_run(&f->lt, codes_drop_one_run, NULL), 0);
    code_get(f, &alice, code);
    t = run(f, &bob, "link");
    assert_non_null(strstr(t, MSG_LINK_CODES_FULL));
    /* Replacing an open code of one's own adds none. */
    char again[LINK_CODE_LEN + 1];
    code_get(f, &alice, again);
    assert_string_not_equal(again, code);
    assert_int_equal(db_count(f->lt.path, "SELECT count(*) FROM state WHERE ns = 'link.code'"),
                     LINK_CODES_MAX);
}

/* Where link codes are hashed: this binary's PKCS5_PBKDF2_HMAC stands in
 * front of libcrypto's (found with dlsym) and counts its calls, and those
 * made on hash_watch's thread. */
static pthread_t hash_watch;
static atomic_int hash_calls, hash_calls_watched;

int PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen,
                      int iter, const EVP_MD *digest, int keylen, unsigned char *out)
{
    typedef int (*pbkdf2_fn)(const char *, int, const unsigned char *, int, int, const EVP_MD *,
                             int, unsigned char *);
    static pbkdf2_fn real;
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "PKCS5_PBKDF2_HMAC");
    if (real == NULL)
        return 0;
    hash_calls++;
    if (pthread_equal(pthread_self(), hash_watch))
        hash_calls_watched++;
    return real(pass, passlen, salt, saltlen, iter, digest, keylen, out);
}

/* A code's hash (PBKDF2, about a millisecond) is made off the loop, for a
 * new code, a code taken and one voided in a group: before, each held up
 * every other member's traffic for as long. */
static void test_codes_hashed_off_the_loop(void **state)
{
    struct fx *f = *state;
    hash_watch = pthread_self(); /* the loop runs on the test's thread */
    hash_calls = 0;
    hash_calls_watched = 0;
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    const char *t = redeem(f, &alice_tg, code);
    assert_non_null(strstr(t, "Linked"));
    struct who in_group = {COMMAND_PLATFORM_TELEGRAM, "43", "-100", false};
    code_get(f, &bob, code);
    redeem(f, &in_group, code);
    struct who private_chat = {COMMAND_PLATFORM_TELEGRAM, "43", NULL, false};
    /* The void went ahead of this take in the store's queue. */
    t = redeem(f, &private_chat, code);
    assert_non_null(strstr(t, "wrong or already used"));
    assert_int_equal(hash_calls, 5);
    assert_int_equal(hash_calls_watched, 0);
}

struct take_seen {
    int rc, done;
};

static void take_seen_cb(int rc, enum link_code_result r, const char *creator, int64_t retry_ms,
                         void *data)
{
    (void)r;
    (void)creator;
    (void)retry_ms;
    struct take_seen *t = data;
    t->rc = rc;
    t->done++;
}

/* Stopping while codes wait for their hash: each is told it was cancelled,
 * the one being hashed and those behind it. */
static void test_codes_cancelled_when_stopping(void **state)
{
    struct fx *f = *state;
    struct take_seen a = {0}, b = {0};
    assert_int_equal(link_code_take(&f->core, "telegram:42", "ABCD2345", take_seen_cb, &a), 0);
    assert_int_equal(link_code_take(&f->core, "telegram:43", "ABCD2346", take_seen_cb, &b), 0);
    f->core.ledger = NULL; /* the daemon stopping */
    while (a.done == 0 || b.done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    f->core.ledger = f->lt.ledger;
    assert_int_equal(a.done, 1);
    assert_int_equal(a.rc, HB_ECANCELED);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.rc, HB_ECANCELED);
}

/* A store job that holds the store's thread until it is let go. */
struct hold {
    struct store_job job;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, go, done;
};

static int hold_run(struct store_txn *txn, struct store_job *job)
{
    (void)txn;
    struct hold *h = container_of(job, struct hold, job);
    pthread_mutex_lock(&h->mu);
    h->running = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->go)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return HB_EEXISTS; /* nothing written */
}

static void hold_done(struct store_job *job, int rc)
{
    (void)rc;
    container_of(job, struct hold, job)->done = true;
}

static size_t store_queued(struct store *s)
{
    size_t n = 0;
    uv_mutex_lock(&s->mu);
    for (const struct store_job *j = s->queue_head; j != NULL; j = j->next)
        n++;
    uv_mutex_unlock(&s->mu);
    return n;
}

struct join_seen {
    int rc, done;
};

static void join_seen_cb(int rc, int64_t moved, int64_t held, void *data)
{
    (void)moved;
    (void)held;
    struct join_seen *j = data;
    j->rc = rc;
    j->done++;
}

/* A code taken while another link into the same wallet is being written:
 * the member waits the few milliseconds it takes, and is linked, rather
 * than told to make a new code (the one taken is used up). */
static void test_code_taken_while_wallet_busy(void **state)
{
    struct fx *f = *state;
    struct store *store = ledger_store(f->lt.ledger);
    char code[LINK_CODE_LEN + 1];
    code_get(f, &alice, code);
    /* The store's thread held, so that nothing below completes yet. */
    struct hold h = {.job = {.run = hold_run, .done = hold_done}};
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    assert_int_equal(store_submit(store, &h.job), 0);
    pthread_mutex_lock(&h.mu);
    while (!h.running)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    /* Alice's console account joins her wallet: a link of the wallet
     * being written, over several trips to the store. */
    struct join_seen js = {0};
    assert_int_equal(
        link_join(&f->core, "console:op", "discord:1001", "ev-join", join_seen_cb, &js), 0);
    /* Her Telegram account takes the code meanwhile; once it is hashed,
     * its take waits in the store's queue beside the join's first step. */
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    who_inv(f, &alice_tg, &inv);
    inv.reply = &f->cap.reply;
    char line[64];
    snprintf(line, sizeof(line), "link %s", code);
    router_dispatch(f->router, &inv, line);
    for (int i = 0; i < 20000 && store_queued(store) < 2; i++) {
        uv_run(&f->lt.loop, UV_RUN_NOWAIT);
        usleep(100);
    }
    assert_int_equal(store_queued(store), 2);
    /* Let go: the take and the join's step commit together, and the take
     * is answered while the join still has steps to go. */
    pthread_mutex_lock(&h.mu);
    h.go = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    while (f->cap.finished == 0 || js.done == 0 || !h.done)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(js.rc, 0);
    const char *t = f->cap.text != NULL ? f->cap.text : "";
    assert_null(strstr(t, "being made right now"));
    assert_non_null(strstr(t, "Linked"));
    char w[LINK_IDENTITY_MAX];
    wallet_of(f, &alice_tg, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    wallet_of(f, &alice_console, w, sizeof(w));
    assert_string_equal(w, "discord:1001");
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_linked_identity_cannot_upvote_own_image),
    cmocka_unit_test_setup_teardown(test_link_moves_balance, setup, teardown),
    cmocka_unit_test_setup_teardown(test_links_refresh_from_other_daemon, setup, teardown),
    cmocka_unit_test_setup_teardown(test_reserved_stay, setup, teardown),
    cmocka_unit_test_setup_teardown(test_commands_use_one_wallet, setup, teardown),
    cmocka_unit_test(test_generation_charges_one_wallet),
    cmocka_unit_test(test_link_checked_again_in_its_transaction),
    cmocka_unit_test_setup_teardown(test_unlink_and_bonus_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_code_rules, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_codes_capped, setup, teardown),
    cmocka_unit_test_setup_teardown(test_codes_hashed_off_the_loop, setup, teardown),
    cmocka_unit_test_setup_teardown(test_codes_cancelled_when_stopping, setup, teardown),
    cmocka_unit_test_setup_teardown(test_code_taken_while_wallet_busy, setup, teardown),
    cmocka_unit_test_setup_teardown(test_link_survives_restart, setup, teardown),
    cmocka_unit_test_setup_teardown(test_code_taken_through_other_daemon, setup, teardown),
};

TEST_GROUP_DEFINE(link, tests, gt_group_setup, lt_group_teardown)
