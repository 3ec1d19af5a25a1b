/* Stored images in the store (the groups `store_images` on SQLite and
 * `store_images_pg`): kept across a reopen, paged, erased by owner and
 * pruned. */
#include "tests/test.h"

#include "base/error.h"
#include "storage/store.h"
#include "tests/storage/store_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void image_put(struct store_txn *txn, const char *id, const char *scope, int64_t at,
                      const char *prompt)
{
    unsigned char bytes[40];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(i * 7 + (unsigned char)id[0]); /* zeros and high bytes too */
    struct store_image img = {.platform = 2, .created_at = at, .prompt = (char *)prompt};
    snprintf(img.id, sizeof(img.id), "%s", id);
    snprintf(img.scope, sizeof(img.scope), "%s", scope);
    snprintf(img.owner, sizeof(img.owner), "telegram:u-%s", id);
    snprintf(img.user_id, sizeof(img.user_id), "u-%s", id);
    snprintf(img.scope_id, sizeof(img.scope_id), "%s", scope[0] != '\0' ? "g1" : "");
    snprintf(img.model, sizeof(img.model), "img-model");
    snprintf(img.size, sizeof(img.size), "512x512");
    snprintf(img.mime, sizeof(img.mime), "image/png");
    img.data = bytes;
    img.len = sizeof(bytes);
    if (strcmp(id, "b") == 0) { /* the one with a thumbnail */
        img.thumb = (const unsigned char *)"thumb";
        img.thumb_len = 5;
    }
    assert_int_equal(store_txn_image_put(txn, &img), 0);
}

static void image_vote(struct store_txn *txn, const char *id, int64_t count)
{
    struct store_vote v = {.count = count};
    snprintf(v.image, sizeof(v.image), "%s", id);
    snprintf(v.creator, sizeof(v.creator), "u-%s", id);
    assert_int_equal(store_txn_vote_add(txn, "telegram:g1", "all", &v), 0);
}

/* A page's ids, joined with ",". */
static const char *image_ids(struct store_image *rows, size_t n, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, cap - used, "%s%s", i > 0 ? "," : "", rows[i].id);
        store_image_clear(&rows[i]);
    }
    return buf;
}

/* Images outlive the store that wrote them: read back after a reopen with
 * their bytes, paged newest first and most upvoted first, their prompts
 * erased by owner, and pruned by age and by count. */
static void test_images(void **state)
{
    enum store_backend_kind store_backend = *(enum store_backend_kind *)*state;
    struct store_db d;
    store_db_init(&d, store_backend);
    struct store *s = store_db_open(&d);
    struct store_txn *txn = NULL;
    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    image_put(txn, "a", "telegram:g1", 1000, "a red cat");
    image_put(txn, "b", "telegram:g1", 2000, "a blue dog");
    image_put(txn, "c", "telegram:g1", 3000, NULL);
    image_put(txn, "d", "telegram:g2", 4000, "elsewhere");
    image_put(txn, "e", "", 5000, "in a DM");
    image_vote(txn, "b", 3);
    image_vote(txn, "a", 1);
    image_vote(txn, "gone", 9); /* voted, but no image kept */
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);

    s = store_db_open(&d);
    assert_int_equal(store_txn_begin(s, false, &txn), 0);
    struct store_image img;
    assert_int_equal(store_txn_image_get(txn, "a", STORE_IMAGE_FULL, &img), 0);
    assert_string_equal(img.scope, "telegram:g1");
    assert_string_equal(img.owner, "telegram:u-a");
    assert_int_equal(img.platform, 2);
    assert_string_equal(img.user_id, "u-a");
    assert_string_equal(img.scope_id, "g1");
    assert_string_equal(img.model, "img-model");
    assert_string_equal(img.size, "512x512");
    assert_string_equal(img.mime, "image/png");
    assert_string_equal(img.prompt, "a red cat");
    assert_int_equal(img.created_at, 1000);
    assert_int_equal(img.len, 40);
    assert_int_equal(img.data[0], 'a');
    assert_int_equal(img.data[39], (unsigned char)(39 * 7 + 'a'));
    store_image_clear(&img);
    assert_int_equal(store_txn_image_get(txn, "c", STORE_IMAGE_NONE, &img), 0);
    assert_null(img.prompt);
    assert_null(img.data);
    store_image_clear(&img);
    assert_int_equal(store_txn_image_get(txn, "zz", STORE_IMAGE_NONE, &img), HB_ENOTFOUND);

    struct store_image rows[STORE_IMAGE_PAGE_MAX];
    size_t n = 0;
    char ids[128];
    assert_int_equal(store_txn_image_page(txn, "telegram:g1", "all", false, 0, 0, 10,
                                          STORE_IMAGE_NONE, rows, &n),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[1].upvotes, 3);
    assert_int_equal(rows[0].upvotes, 0);
    assert_null(rows[0].data);
    assert_string_equal(image_ids(rows, n, ids, sizeof(ids)), "c,b,a");
    assert_int_equal(store_txn_image_page(txn, "telegram:g1", "all", false, 1500, 1, 10,
                                          STORE_IMAGE_FULL, rows, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].len, 40);
    assert_string_equal(image_ids(rows, n, ids, sizeof(ids)), "b");
    assert_int_equal(store_txn_image_page(txn, "telegram:g1", "all", true, 0, 0, 10,
                                          STORE_IMAGE_THUMB, rows, &n),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].upvotes, 3);
    assert_true(rows[0].is_thumb);
    assert_int_equal(rows[0].len, 5);
    assert_memory_equal(rows[0].data, "thumb", 5);
    assert_false(rows[1].is_thumb); /* none: the image itself */
    assert_int_equal(rows[1].len, 40);
    assert_string_equal(image_ids(rows, n, ids, sizeof(ids)), "b,a");
    assert_int_equal(
        store_txn_image_page(txn, "telegram:g1", "all", true, 0, 1, 1, STORE_IMAGE_NONE, rows, &n),
        0);
    assert_string_equal(image_ids(rows, n, ids, sizeof(ids)), "a");
    assert_int_equal(store_txn_image_page(txn, "telegram:g9", "all", false, 0, 0, 10,
                                          STORE_IMAGE_NONE, rows, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(store_txn_end(txn, true), 0);

    assert_int_equal(store_txn_begin(s, true, &txn), 0);
    int64_t changed = 0;
    assert_int_equal(store_txn_image_forget(txn, "telegram:u-a", &changed), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(store_txn_image_get(txn, "a", STORE_IMAGE_NONE, &img), 0);
    assert_null(img.prompt);
    store_image_clear(&img);
    /* Older than 1500 goes, then all but the 2 newest; each image's row
     * in the namespace named goes with it, another namespace's stays. */
    static const char *const keyed[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(store_txn_state_put(txn, "per.image", keyed[i], "x", 1), 0);
        assert_int_equal(store_txn_state_put(txn, "other", keyed[i], "x", 1), 0);
    }
    assert_int_equal(store_txn_image_prune(txn, 1500, 0, "per.image", &changed), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(store_txn_image_prune(txn, 1500, 2, "per.image", &changed), 0);
    assert_int_equal(changed, 2);
    char *v = NULL;
    for (size_t i = 0; i < 5; i++) {
        bool kept = strcmp(keyed[i], "d") == 0 || strcmp(keyed[i], "e") == 0;
        assert_int_equal(store_txn_state_get(txn, "per.image", keyed[i], &v),
                         kept ? 0 : HB_ENOTFOUND);
        free(v);
        v = NULL;
        assert_int_equal(store_txn_state_get(txn, "other", keyed[i], &v), 0);
        free(v);
        v = NULL;
    }
    assert_int_equal(store_txn_image_get(txn, "c", STORE_IMAGE_NONE, &img), HB_ENOTFOUND);
    assert_int_equal(store_txn_image_get(txn, "d", STORE_IMAGE_NONE, &img), 0);
    store_image_clear(&img);
    assert_int_equal(store_txn_image_get(txn, "e", STORE_IMAGE_NONE, &img), 0);
    store_image_clear(&img);
    assert_int_equal(store_txn_end(txn, true), 0);
    store_free(s);
    assert_int_equal(db_int(&d, "SELECT count(*) FROM images"), 2);
    store_db_done(&d);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_images),
};

TEST_GROUP_DEFINE(store_images, tests, store_db_setup_sqlite, NULL)
TEST_GROUP_DEFINE(store_images_pg, tests, store_db_setup_pg, NULL)
