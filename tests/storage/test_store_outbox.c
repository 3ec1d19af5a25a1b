/* The outbox's channels in the store (the groups `store_outbox` on SQLite
 * and `store_outbox_pg`): a family's channels listed, and one channel's
 * rows moved to another with their ids, as a daemon takes over the rows
 * of one that is gone (adapters/discord/discord_notice.c). */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void row_put(struct store_txn *txn, const char *channel, int64_t id)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"t\":\"%s %lld\"}", channel, (long long)id);
    assert_int_equal(store_txn_outbox_put(txn, channel, id, 88, body, NULL, 0, 1000), 0);
}

static int names_add(const char *channel, void *arg)
{
    char *buf = arg;
    size_t used = strlen(buf);
    snprintf(buf + used, 256 - used, "%s%s", used > 0 ? "," : "", channel);
    return 0;
}

static int ids_add(int64_t id, int64_t chat, const char *body, const void *data, size_t len,
                   void *arg)
{
    (void)chat;
    (void)data;
    (void)len;
    char *buf = arg;
    size_t used = strlen(buf);
    snprintf(buf + used, 256 - used, "%s%lld:%s", used > 0 ? "," : "", (long long)id, body);
    return 0;
}

static const char *channels(struct store_txn *txn, const char *family, char *buf)
{
    buf[0] = '\0';
    assert_int_equal(store_txn_outbox_channels(txn, family, names_add, buf), 0);
    return buf;
}

static const char *ids(struct store_txn *txn, const char *channel, char *buf)
{
    buf[0] = '\0';
    assert_int_equal(store_txn_outbox_each(txn, channel, 0, 100, ids_add, buf), 0);
    return buf;
}

/* The family "discord" is its own channel and those under "discord/",
 * not "discordx" nor another family. A move keeps each row's id and body
 * (the same id may be used in two channels), takes those up to an id or
 * all of them, undeliverable ones included, and leaves the rest; those
 * marked undeliverable longer ago than they are kept go instead. */
static void test_outbox_channels_and_move(void **state)
{
    enum store_backend_kind backend = *(enum store_backend_kind *)*state;
    struct store_db d;
    store_db_init(&d, backend);
    struct store *s = store_db_open(&d);
    struct store_txn *txn = NULL;
    char buf[256];
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    assert_string_equal(channels(txn, "discord", buf), "");
    row_put(txn, "discord/run-b", 1);
    row_put(txn, "discord/run-a", 1);
    row_put(txn, "discord/run-a", 2);
    row_put(txn, "discord/run-a", 3);
    assert_int_equal(store_txn_outbox_fail(txn, "discord/run-a", 3, "refused: 403", 2000), 0);
    row_put(txn, "discord", 7);
    row_put(txn, "discordx", 1);
    row_put(txn, "telegram", 1);
    assert_string_equal(channels(txn, "discord", buf), "discord,discord/run-a,discord/run-b");
    assert_string_equal(channels(txn, "telegram", buf), "telegram");

    int64_t moved = -1;
    assert_int_equal(store_txn_outbox_move(txn, "discord/run-a", "discord/run-c", 2, 3000, &moved),
                     0);
    assert_int_equal(moved, 2);
    assert_string_equal(ids(txn, "discord/run-c", buf),
                        "1:{\"t\":\"discord/run-a 1\"},2:{\"t\":\"discord/run-a 2\"}");
    assert_string_equal(ids(txn, "discord/run-a", buf), ""); /* the undeliverable one stays */
    assert_string_equal(channels(txn, "discord", buf),
                        "discord,discord/run-a,discord/run-b,discord/run-c");
    assert_int_equal(store_txn_outbox_move(txn, "discord/run-a", "discord/run-c", 0, 3000, &moved),
                     0);
    assert_int_equal(moved, 1);
    int64_t n = 0;
    assert_int_equal(store_txn_outbox_count(txn, "discord/run-c", true, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(channels(txn, "discord", buf), "discord,discord/run-b,discord/run-c");
    assert_int_equal(store_txn_outbox_move(txn, "discord/run-a", "discord/run-c", 0, 3000, &moved),
                     0);
    assert_int_equal(moved, 0); /* taken already: nothing */
    assert_string_equal(ids(txn, "discord/run-b", buf), "1:{\"t\":\"discord/run-b 1\"}");

    /* One marked undeliverable long ago is removed, not moved; a row it
     * could still be read for is moved. */
    row_put(txn, "discord/run-d", 5);
    row_put(txn, "discord/run-d", 6);
    assert_int_equal(store_txn_outbox_fail(txn, "discord/run-d", 5, "refused: 403", 2000), 0);
    int64_t later = 2000 + STORE_OUTBOX_FAILED_KEEP_MS + 1;
    assert_int_equal(store_txn_outbox_move(txn, "discord/run-d", "discord/run-c", 0, later, &moved),
                     0);
    assert_int_equal(moved, 1);
    assert_int_equal(store_txn_outbox_count(txn, "discord/run-c", true, &n), 0);
    assert_int_equal(n, 1); /* the one moved before, marked at 2000: not yet due */
    assert_string_equal(channels(txn, "discord", buf), "discord,discord/run-b,discord/run-c");
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_outbox_channels_and_move),
};

TEST_GROUP_DEFINE(store_outbox, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_outbox_pg, tests, store_db_setup_pg, NULL)
