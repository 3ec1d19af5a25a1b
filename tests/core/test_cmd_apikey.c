/* /apikey through the neutral path (router, handlers, a real ledger and
 * store on a loop): where a new key may be shown, who owns it, listing and
 * revoking, and that the key shown is the one the directory accepts. */
#include "tests/test.h"

#include "bot/router.h"
#include "core/apikey.h"
#include "core/core.h"
#include "core/ledger.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/reply_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include "storage/store.h"

#include <string.h>

struct fx {
    struct lt lt;
    struct core core;
    struct router *router;
    struct reply_capture cap;
    int event;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    lt_init(&f->lt, true, true);
    f->core.bot_name = "Test Bot";
    f->core.ledger = f->lt.ledger;
    f->core.welcome_bonus = 100;
    f->core.apikeys = apikeys_new();
    assert_non_null(f->core.apikeys);
    f->router = router_new(&f->core);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    reply_capture_close(&f->cap);
    router_free(f->router);
    lt_done(&f->lt);
    apikeys_free(f->core.apikeys);
    free(f);
    return 0;
}

struct who {
    enum command_platform platform;
    const char *user;
    const char *scope; /* NULL: a DM */
    bool admin;
};

static const char *run(struct fx *f, const struct who *w, const char *line)
{
    reply_capture_close(&f->cap);
    reply_capture_init(&f->cap);
    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = w->platform;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", w->user);
    if (w->scope != NULL) {
        inv.scope = COMMAND_SCOPE_GROUP;
        snprintf(inv.scope_id, sizeof(inv.scope_id), "%s", w->scope);
        snprintf(inv.channel_id, sizeof(inv.channel_id), "chan-%s", w->scope);
    }
    inv.admin = w->admin;
    snprintf(inv.event_id, sizeof(inv.event_id), "ev%d", ++f->event);
    inv.reply = &f->cap.reply;
    router_dispatch(f->router, &inv, line);
    while (f->cap.finished == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(f->cap.finished, 1);
    return f->cap.text != NULL ? f->cap.text : "";
}

/* The key in an answer (heap), or NULL. */
static char *key_in(const char *text)
{
    const char *k = text != NULL ? strstr(text, "hai-") : NULL;
    while (k != NULL && strspn(k + 4, "0123456789abcdef") != 64)
        k = strstr(k + 4, "hai-");
    return k != NULL ? strndup(k, APIKEY_LEN) : NULL;
}

static const struct who tg_group = {COMMAND_PLATFORM_TELEGRAM, "501", "-100200", false};
static const struct who tg_dm = {COMMAND_PLATFORM_TELEGRAM, "501", NULL, false};
static const struct who dc_member = {COMMAND_PLATFORM_DISCORD, "1001", "g1", false};
static const struct who dc_admin = {COMMAND_PLATFORM_DISCORD, "1002", "g1", true};
static const struct who dc_other_admin = {COMMAND_PLATFORM_DISCORD, "1003", "g2", true};

/* A Telegram group never sees a key: nothing is made there. */
static void test_telegram_group_makes_nothing(void **state)
{
    struct fx *f = *state;
    const char *t = run(f, &tg_group, "apikey create bot");
    assert_non_null(strstr(t, "private chat"));
    assert_null(strstr(t, "hai-"));
    const struct apikey *list[4];
    assert_int_equal(apikeys_list(&f->core, NULL, list, 4), 0);

    /* In the private chat it is made, shown once, as a personal answer. */
    t = run(f, &tg_dm, "apikey create bot");
    char *key = key_in(f->cap.personal_text);
    assert_non_null(key);
    assert_true(f->cap.last_personal);
    assert_null(f->cap.public_text != NULL ? strstr(f->cap.public_text, "hai-") : NULL);
    assert_int_equal(apikeys_list(&f->core, "telegram:501", list, 4), 1);
    struct apikey *k = NULL;
    assert_int_equal(apikey_authenticate(&f->core, key, 1, &k), APIKEY_OK);
    assert_string_equal(k->rec.name, "bot");
    assert_string_equal(k->rec.owner, "telegram:501");
    assert_memory_equal(k->rec.prefix, key, APIKEY_SHOWN_LEN);
    /* The list shows the prefix, never the key. */
    t = run(f, &tg_dm, "apikey list");
    assert_non_null(strstr(t, "bot  hai-"));
    assert_null(strstr(t, key));
    free(key);
}

/* On Discord the key is ephemeral and personal; in a server, an admin may
 * make one for the pool, which only that server's admins list and revoke. */
static void test_discord_owner_and_pool(void **state)
{
    struct fx *f = *state;
    run(f, &dc_member, "apikey create mine");
    assert_true(f->cap.last_ephemeral);
    assert_true(f->cap.last_personal);
    char *mine = key_in(f->cap.personal_text);
    assert_non_null(mine);
    assert_null(f->cap.shown_text != NULL ? strstr(f->cap.shown_text, "hai-") : NULL);

    const char *t = run(f, &dc_member, "apikey create shared pool:true");
    assert_non_null(strstr(t, "Only an admin"));
    t = run(f, &dc_admin, "apikey create shared pool:true rpm:5 models:demo-chat");
    char *pool = key_in(f->cap.personal_text);
    assert_non_null(pool);
    struct apikey *k = NULL;
    assert_int_equal(apikey_authenticate(&f->core, pool, 1, &k), APIKEY_OK);
    assert_string_equal(k->rec.owner, "pool:discord:g1");
    assert_string_equal(k->rec.creator, "discord:1002");
    assert_int_equal(k->rec.rpm, 5);
    assert_true(apikey_model_allowed(k, "demo-chat"));
    assert_false(apikey_model_allowed(k, "demo-image"));

    /* The same name twice is refused for one owner. */
    t = run(f, &dc_member, "apikey create mine");
    assert_non_null(strstr(t, "already have a key named mine"));

    /* Lists: a member sees their own; an admin also the pool's. */
    t = run(f, &dc_member, "apikey list");
    assert_non_null(strstr(t, "mine  hai-"));
    assert_null(strstr(t, "shared"));
    t = run(f, &dc_admin, "apikey list");
    assert_non_null(strstr(t, "shared (this server's pool)"));

    /* Another server's admin cannot revoke it; this server's can, by prefix. */
    t = run(f, &dc_other_admin, "apikey revoke shared");
    assert_non_null(strstr(t, "No key in force"));
    char line[64];
    snprintf(line, sizeof(line), "apikey revoke %.*s", APIKEY_SHOWN_LEN, pool);
    t = run(f, &dc_admin, line);
    assert_non_null(strstr(t, "is revoked"));
    assert_int_equal(apikey_authenticate(&f->core, pool, 1, &k), APIKEY_REVOKED);
    assert_int_equal(apikey_authenticate(&f->core, mine, 1, &k), APIKEY_OK);

    /* A key one character off, or malformed, is unknown. */
    char off[APIKEY_LEN + 1];
    snprintf(off, sizeof(off), "%s", mine);
    off[APIKEY_LEN - 1] = off[APIKEY_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(apikey_authenticate(&f->core, off, 1, &k), APIKEY_UNKNOWN);
    assert_int_equal(apikey_authenticate(&f->core, "hai-short", 1, &k), APIKEY_UNKNOWN);
    free(mine);
    free(pool);
}

/* A key's limits: requests per minute, caps, expiry. */
static void test_key_limits(void **state)
{
    struct fx *f = *state;
    run(f, &tg_dm, "apikey create capped rpm:2 day_cap:10 total_cap:25 days:1");
    char *key = key_in(f->cap.personal_text);
    assert_non_null(key);
    struct apikey *k = NULL;
    int64_t now = core_now_ms(&f->core);
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_OK);
    int64_t wait = 0;
    assert_true(apikey_rate_take(k, 60000 * 10, &wait));
    assert_true(apikey_rate_take(k, 60000 * 10 + 1, &wait));
    assert_false(apikey_rate_take(k, 60000 * 10 + 1000, &wait));
    assert_int_equal(wait, 59000);
    assert_true(apikey_rate_take(k, 60000 * 11, &wait)); /* a new minute */
    bool daily = false;
    assert_int_equal(apikey_room(k, now, &daily), 10);
    assert_true(daily);
    apikey_spend_record(&f->core, k->rec.id, 10, now);
    assert_int_equal(apikey_room(k, now, &daily), 0);
    assert_int_equal(apikey_room(k, now + 86400000, &daily), 10); /* tomorrow */
    apikey_spend_record(&f->core, k->rec.id, 10, now + 86400000);
    assert_int_equal(apikey_room(k, now + 2 * 86400000, &daily), 5); /* the total binds */
    assert_false(daily);
    assert_int_equal(apikey_authenticate(&f->core, key, now + 2 * 86400000, &k), APIKEY_EXPIRED);
    free(key);
}

/* What another daemon of a shared ledger does to the keys, straight in
 * the store. */
struct other_daemon {
    struct store_apikey made; /* inserted when its id is set */
    char revoke[STORE_APIKEY_ID_SIZE];
};

static int other_run(struct store_txn *txn, void *data)
{
    struct other_daemon *o = data;
    int rc = store_txn_apikey_revoke(txn, o->revoke, 1000);
    if (rc == 0 && o->made.id[0] != '\0')
        rc = store_txn_apikey_insert(txn, &o->made);
    return rc;
}

/* The store's view of one key's spending. */
struct spend_read {
    char id[STORE_APIKEY_ID_SIZE];
    int64_t spend;
};

static int spend_row(const struct store_apikey *k, void *data)
{
    struct spend_read *r = data;
    if (strcmp(k->id, r->id) == 0)
        r->spend = k->spend;
    return 0;
}

static int spend_run(struct store_txn *txn, void *data)
{
    return store_txn_apikey_each(txn, spend_row, data);
}

static int64_t spend_stored(struct fx *f, const char *id)
{
    struct spend_read r = {.spend = -1};
    snprintf(r.id, sizeof(r.id), "%s", id);
    assert_int_equal(lt_store_run(&f->lt, spend_run, &r), 0);
    return r.spend;
}

/* A key's spending counts in memory at once and is written behind, all
 * keys in one job, at the next flush; a read of the keys from the store
 * meanwhile (the cluster's refresh) does not forget what is not written. */
static void test_spend_written_behind(void **state)
{
    struct fx *f = *state;
    run(f, &tg_dm, "apikey create behind total_cap:100");
    char *key = key_in(f->cap.personal_text);
    assert_non_null(key);
    struct apikey *k = NULL;
    int64_t now = core_now_ms(&f->core);
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_OK);
    bool daily = false;
    apikey_spend_record(&f->core, k->rec.id, 7, now);
    apikey_spend_record(&f->core, k->rec.id, 5, now);
    assert_int_equal(apikey_room(k, now, &daily), 88);
    assert_int_equal(spend_stored(f, k->rec.id), 0); /* nothing written yet */
    assert_int_equal(apikey_spend_flush(&f->core), 1);
    assert_int_equal(apikey_spend_flush(&f->core), 0); /* nothing left */
    assert_int_equal(spend_stored(f, k->rec.id), 12);
    apikey_spend_record(&f->core, k->rec.id, 3, now);
    assert_int_equal(apikeys_refresh(&f->core), 0);
    assert_int_equal(spend_stored(f, k->rec.id), 12);
    uv_run(&f->lt.loop, UV_RUN_NOWAIT);
    assert_int_equal(k->rec.spend, 15); /* the refresh read 12; 3 are not written yet */
    assert_int_equal(apikey_spend_flush(&f->core), 1);
    assert_int_equal(spend_stored(f, k->rec.id), 15);
    free(key);
}

/* A key made here ("first"; *k, its record), then another daemon revokes
 * it and makes one of its own ("other"), straight in the store. Returns
 * the key made here (free it). */
/* The other daemon's writes, as a store job queued behind this daemon's
 * (its job comes first: the struct's first member). */
struct other_job {
    struct store_job job;
    struct other_daemon *o;
    int done;
};

static int other_job_run(struct store_txn *txn, struct store_job *job)
{
    return other_run(txn, ((struct other_job *)job)->o);
}

static void other_job_done(struct store_job *job, int rc)
{
    ((struct other_job *)job)->done = rc == 0 ? 1 : -1;
}

static int nothing_run(struct store_txn *txn, void *data)
{
    (void)txn;
    (void)data;
    return 0;
}

/* The first key made here, and the other daemon's acts on it prepared in
 * *o: revoke it, and make a key named "other" beside it. */
static char *other_daemon_ready(struct fx *f, struct other_daemon *o, struct apikey **k)
{
    run(f, &tg_dm, "apikey create first");
    char *key = key_in(f->cap.personal_text);
    assert_non_null(key);
    assert_int_equal(apikey_authenticate(&f->core, key, core_now_ms(&f->core), k), APIKEY_OK);
    snprintf(o->revoke, sizeof(o->revoke), "%s", (*k)->rec.id);
    o->made = (*k)->rec;
    snprintf(o->made.id, sizeof(o->made.id), "kother");
    snprintf(o->made.name, sizeof(o->made.name), "other");
    memset(o->made.hash, 0x5a, sizeof(o->made.hash));
    o->made.revoked_at = 0;
    return key;
}

static char *other_daemon_acts(struct fx *f, struct other_daemon *o, struct apikey **k)
{
    char *key = other_daemon_ready(f, o, k);
    assert_int_equal(lt_store_run(&f->lt, other_run, o), 0);
    return key;
}

/* A read of the keys asked for while one is under way is made after it:
 * the one under way may have begun before the change that asked for it
 * was committed (a change heard from another daemon). Before, the second
 * ask was dropped, and the revoked key was taken until the next beat. */
static void test_refresh_asked_again_reads_again(void **state)
{
    struct fx *f = *state;
    struct apikey *k = NULL;
    int64_t now = core_now_ms(&f->core);
    struct other_daemon o = {0};
    char *key = other_daemon_ready(f, &o, &k);
    assert_int_equal(apikeys_refresh(&f->core), 0); /* reads before the write below */
    struct other_job w = {.job = {.run = other_job_run, .done = other_job_done}, .o = &o};
    assert_int_equal(store_submit(ledger_store(f->core.ledger), &w.job), 0);
    assert_int_equal(apikeys_refresh(&f->core), 0); /* the change is heard: again */
    while (w.done == 0)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    /* The first read ended before the write; a read asked for after it
     * is queued by now: a job behind it waits for it. */
    assert_int_equal(lt_store_run(&f->lt, nothing_run, NULL), 0);
    assert_int_equal(w.done, 1);
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_REVOKED);
    assert_non_null(apikey_find(&f->core, o.made.owner, "other"));
    free(key);
}

/* A key revoked by another daemon is refused here once the keys are read
 * again (the cluster's heartbeat does it), and one made there is found;
 * before, this daemon kept accepting the revoked key. */
static void test_keys_refresh_from_other_daemon(void **state)
{
    struct fx *f = *state;
    struct apikey *k = NULL;
    int64_t now = core_now_ms(&f->core);
    struct other_daemon o = {0};
    char *key = other_daemon_acts(f, &o, &k);
    /* Not seen yet: the keys are held in memory. */
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_OK);
    assert_int_equal(apikeys_refresh(&f->core), 0);
    for (int i = 0; i < 1000 && apikey_authenticate(&f->core, key, now, &k) == APIKEY_OK; i++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_REVOKED);
    assert_non_null(apikey_find(&f->core, o.made.owner, "other"));
    free(key);
}

static void waited(void *data)
{
    (*(int *)data)++;
}

/* A request with a key this daemon does not know waits for one read of the
 * keys (bot/api.c): every waiter of that read is called once after it, a
 * forgotten one never, and a key another daemon made is known by then. */
static void test_refresh_waiters(void **state)
{
    struct fx *f = *state;
    struct apikey *k = NULL;
    int64_t now = core_now_ms(&f->core);
    struct other_daemon o = {0};
    char *key = other_daemon_acts(f, &o, &k);
    int first = 0, second = 0, forgotten = 0;
    assert_int_equal(apikeys_refresh_wait(&f->core, waited, &first), 0);
    assert_int_equal(apikeys_refresh_wait(&f->core, waited, &second), 0); /* joins it */
    assert_int_equal(apikeys_refresh_wait(&f->core, waited, &forgotten), 0);
    apikeys_refresh_forget(&f->core, &forgotten);
    assert_null(apikey_find(&f->core, o.made.owner, "other"));
    for (int i = 0; i < 1000 && first == 0; i++)
        uv_run(&f->lt.loop, UV_RUN_ONCE);
    assert_int_equal(first, 1);
    assert_int_equal(second, 1);
    assert_int_equal(forgotten, 0);
    assert_non_null(apikey_find(&f->core, o.made.owner, "other"));
    assert_int_equal(apikey_authenticate(&f->core, key, now, &k), APIKEY_REVOKED);
    free(key);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_keys_refresh_from_other_daemon, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refresh_waiters, setup, teardown),
    cmocka_unit_test_setup_teardown(test_refresh_asked_again_reads_again, setup, teardown),
    cmocka_unit_test_setup_teardown(test_telegram_group_makes_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(test_discord_owner_and_pool, setup, teardown),
    cmocka_unit_test_setup_teardown(test_key_limits, setup, teardown),
    cmocka_unit_test_setup_teardown(test_spend_written_behind, setup, teardown),
};

TEST_GROUP_DEFINE(cmd_apikey, tests, NULL, NULL)
