/* Generated images in SQLite: the images table of schema version
 * STORE_IMAGE_VERSION (core/gallery.h says what they are for). An image is
 * written once when it is made and read by a Regenerate, a gallery page or
 * a contest, so the statements are prepared when used, as the other late
 * tables' are; a page is one indexed walk (images_scope or votes_top) that
 * reads the bytes of the rows it returns only. */
#include "storage/sqlite_internal.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

/* The first schema with the images table (sqlite_open.c). */
#define STORE_IMAGE_VERSION 12

#define IMAGE_COLS                                                                                 \
    "i.id, i.scope, i.owner, i.platform, i.user_id, i.scope_id, i.model, i.size, i.mime,"          \
    " i.prompt, i.created_at"

/* The bytes column of a read (IMAGE_BYTES, then whether the row has a
 * thumbnail): ?6 is an enum store_image_bytes. */
#define IMAGE_BYTES                                                                                \
    "CASE ?6 WHEN 1 THEN i.data WHEN 2 THEN COALESCE(i.thumb, i.data) END,"                        \
    " i.thumb IS NOT NULL"

/* A row of IMAGE_COLS, then the count (column 11), the bytes (12, when
 * asked for) and whether a thumbnail exists (13), into img. */
static int image__row(sqlite3_stmt *st, enum store_image_bytes bytes, struct store_image *img)
{
    memset(img, 0, sizeof(*img));
    store__copy_text(img->id, sizeof(img->id), st, 0);
    store__copy_text(img->scope, sizeof(img->scope), st, 1);
    store__copy_text(img->owner, sizeof(img->owner), st, 2);
    img->platform = sqlite3_column_int(st, 3);
    store__copy_text(img->user_id, sizeof(img->user_id), st, 4);
    store__copy_text(img->scope_id, sizeof(img->scope_id), st, 5);
    store__copy_text(img->model, sizeof(img->model), st, 6);
    store__copy_text(img->size, sizeof(img->size), st, 7);
    store__copy_text(img->mime, sizeof(img->mime), st, 8);
    const unsigned char *prompt = sqlite3_column_text(st, 9);
    if (prompt != NULL) {
        img->prompt = strdup((const char *)prompt);
        if (img->prompt == NULL)
            return HB_ENOMEM;
    }
    img->created_at = sqlite3_column_int64(st, 10);
    img->upvotes = sqlite3_column_int64(st, 11);
    if (bytes != STORE_IMAGE_NONE) {
        const void *b = sqlite3_column_blob(st, 12);
        int n = sqlite3_column_bytes(st, 12);
        img->data = malloc(n > 0 ? (size_t)n : 1);
        if (img->data == NULL) {
            store_image_clear(img);
            return HB_ENOMEM;
        }
        if (n > 0)
            memcpy(img->data, b, (size_t)n);
        img->len = n > 0 ? (size_t)n : 0;
        img->is_thumb = bytes == STORE_IMAGE_THUMB && sqlite3_column_int(st, 13) != 0;
        if (img->is_thumb)
            memcpy(img->mime, "image/png", sizeof("image/png"));
    }
    return 0;
}

static int image__prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **st,
                          const char *what)
{
    if (s->base.version < STORE_IMAGE_VERSION)
        return HB_ESCHEMA;
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store__fail(s, what);
    return 0;
}

int sqlite_txn_image_put(struct store_txn *txn, const struct store_image *img)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = NULL;
    int rc = image__prepare(s,
                            "INSERT OR REPLACE INTO images (id, scope, owner, platform, user_id,"
                            " scope_id, model, size, mime, prompt, created_at, data, thumb)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                            &st, "image_put");
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, img->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, img->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, img->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, img->platform);
    sqlite3_bind_text(st, 5, img->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, img->scope_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, img->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, img->size, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, img->mime, -1, SQLITE_STATIC);
    if (img->prompt != NULL)
        sqlite3_bind_text(st, 10, img->prompt, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, img->created_at);
    sqlite3_bind_blob(st, 12, img->data != NULL ? (const void *)img->data : "", (int)img->len,
                      SQLITE_STATIC);
    if (img->thumb != NULL)
        sqlite3_bind_blob(st, 13, img->thumb, (int)img->thumb_len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, "image_put");
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                         struct store_image *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = NULL;
    int rc =
        image__prepare(s, "SELECT " IMAGE_COLS ", 0, " IMAGE_BYTES " FROM images i WHERE i.id = ?1",
                       &st, "image_get");
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, (int)bytes);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = image__row(st, bytes, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, "image_get");
    sqlite3_finalize(st);
    return rc;
}

int sqlite_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                          int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                          struct store_image *out, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = NULL;
    /* Most upvoted: the board's own order (votes_top), each image looked
     * up by its id; images already pruned drop out. Newest: a backward
     * walk of images_scope from the newest, each count looked up by the
     * votes key. */
    const char *sql = top ? "SELECT " IMAGE_COLS ", v.count, " IMAGE_BYTES
                            " FROM votes v JOIN images i ON i.id = v.image"
                            " WHERE v.scope = ?1 AND v.period = ?2 AND i.scope = ?1"
                            " ORDER BY v.count DESC, v.image LIMIT ?4 OFFSET ?5"
                          : "SELECT " IMAGE_COLS ", COALESCE(v.count, 0), " IMAGE_BYTES
                            " FROM images i LEFT JOIN votes v"
                            " ON v.scope = i.scope AND v.period = ?2 AND v.image = i.id"
                            " WHERE i.scope = ?1 AND i.created_at >= ?3"
                            " ORDER BY i.created_at DESC, i.id DESC LIMIT ?4 OFFSET ?5";
    int rc = image__prepare(s, sql, &st, "image_page");
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
    if (!top)
        sqlite3_bind_int64(st, 3, since_ms);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)skip);
    sqlite3_bind_int(st, 6, (int)bytes);
    int r = SQLITE_DONE;
    while (rc == 0 && *n < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
        rc = image__row(st, bytes, &out[*n]);
        if (rc == 0)
            (*n)++;
    }
    if (rc == 0 && *n < max && r != SQLITE_DONE)
        rc = store__fail(s, "image_page");
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            store_image_clear(&out[i]);
        *n = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Run sql with one integer (or, with text, one text) parameter; *changed
 * gets the rows it touched. */
static int image__change(struct sqlite_store *s, const char *sql, const char *text, int64_t v,
                         int64_t *changed, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = image__prepare(s, sql, &st, what);
    if (rc < 0)
        return rc;
    if (text != NULL)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, v);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, what);
    if (rc == 0)
        *changed += sqlite3_changes(s->db);
    sqlite3_finalize(st);
    return rc;
}

/* The images a prune deletes: made before ?1, then past the ?1 newest. */
#define SQLITE_IMAGES_OLD "SELECT id FROM images WHERE created_at < ?1"
#define SQLITE_IMAGES_OVER "SELECT id FROM images ORDER BY created_at DESC LIMIT -1 OFFSET ?1"

/* Delete the images `over` selects (by ?1 = v), and first the state rows
 * of ns (NULL: none) keyed by them. */
static int image__delete(struct sqlite_store *s, const char *ns, bool over, int64_t v,
                         int64_t *removed)
{
    static const char *const state_sql[2] = {
        "DELETE FROM state WHERE ns = ?2 AND key IN (" SQLITE_IMAGES_OLD ")",
        "DELETE FROM state WHERE ns = ?2 AND key IN (" SQLITE_IMAGES_OVER ")"};
    static const char *const image_sql[2] = {
        "DELETE FROM images WHERE id IN (" SQLITE_IMAGES_OLD ")",
        "DELETE FROM images WHERE id IN (" SQLITE_IMAGES_OVER ")"};
    if (ns != NULL) {
        sqlite3_stmt *st = NULL;
        int rc = image__prepare(s, state_sql[over], &st, "image_prune");
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(st, 1, v);
        sqlite3_bind_text(st, 2, ns, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store__fail(s, "image_prune");
        sqlite3_finalize(st);
        if (rc < 0)
            return rc;
    }
    return image__change(s, image_sql[over], NULL, v, removed, "image_prune");
}

int sqlite_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                           const char *with_ns, int64_t *removed)
{
    struct sqlite_store *s = sqlite__of(txn);
    *removed = 0;
    int rc = image__delete(s, with_ns, false, before_ms, removed);
    if (rc == 0 && keep_max > 0)
        rc = image__delete(s, with_ns, true, keep_max, removed);
    return rc;
}

int sqlite_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased)
{
    *erased = 0;
    return image__change(sqlite__of(txn),
                         "UPDATE images SET prompt = NULL WHERE owner = ?1 AND prompt IS NOT NULL",
                         owner, 0, erased, "image_forget");
}
