/* Generated images in PostgreSQL: the images table of migration 5, the
 * same rows and reads as storage/sqlite_image.c. The bytes travel as a
 * binary parameter one way and as bytea hex text the other, decoded into
 * the caller's heap copy. */
#include "storage/pg_internal.h"

#include "base/error.h"
#include "base/hex.h"

#include <stdlib.h>
#include <string.h>

/* The first schema with the images table (pg.c). */
#define PG_IMAGE_VERSION 5

#define PG_IMAGE_COLS                                                                              \
    "i.id, i.scope, i.owner, i.platform, i.user_id, i.scope_id, i.model, i.size, i.mime,"          \
    " i.prompt, i.created_at"

/* The bytes column of a read, then whether the row has a thumbnail; $B is
 * an enum store_image_bytes. */
#define PG_IMAGE_BYTES(B)                                                                          \
    "CASE " B "::int WHEN 1 THEN i.data WHEN 2 THEN COALESCE(i.thumb, i.data) END,"                \
    " i.thumb IS NOT NULL"

/* Row i of r (PG_IMAGE_COLS, the count, the bytes or NULL, whether a
 * thumbnail exists) into img. */
static int image__row(const PGresult *r, int i, enum store_image_bytes bytes,
                      struct store_image *img)
{
    memset(img, 0, sizeof(*img));
    pg__text_at(r, i, 0, img->id, sizeof(img->id));
    pg__text_at(r, i, 1, img->scope, sizeof(img->scope));
    pg__text_at(r, i, 2, img->owner, sizeof(img->owner));
    img->platform = (int)pg__int_at(r, i, 3);
    pg__text_at(r, i, 4, img->user_id, sizeof(img->user_id));
    pg__text_at(r, i, 5, img->scope_id, sizeof(img->scope_id));
    pg__text_at(r, i, 6, img->model, sizeof(img->model));
    pg__text_at(r, i, 7, img->size, sizeof(img->size));
    pg__text_at(r, i, 8, img->mime, sizeof(img->mime));
    if (!PQgetisnull(r, i, 9)) {
        img->prompt = strdup(PQgetvalue(r, i, 9));
        if (img->prompt == NULL)
            return HB_ENOMEM;
    }
    img->created_at = pg__int_at(r, i, 10);
    img->upvotes = pg__int_at(r, i, 11);
    if (bytes != STORE_IMAGE_NONE) {
        const char *hex = PQgetisnull(r, i, 12) ? "" : PQgetvalue(r, i, 12);
        size_t len = pg__bytea_len(hex);
        img->data = malloc(len > 0 ? len : 1);
        if (img->data == NULL || (len > 0 && hex_decode(hex + 2, img->data, len) < 0)) {
            store_image_clear(img);
            return img->data == NULL ? HB_ENOMEM : HB_ESTORAGE;
        }
        img->len = len;
        img->is_thumb = bytes == STORE_IMAGE_THUMB && PQgetvalue(r, i, 13)[0] == 't';
        if (img->is_thumb)
            memcpy(img->mime, "image/png", sizeof("image/png"));
    }
    return 0;
}

int pg_txn_image_put(struct store_txn *txn, const struct store_image *img)
{
    struct pg_store *s = pg__of(txn);
    if (s->base.version < PG_IMAGE_VERSION)
        return HB_ESCHEMA;
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, img->id);
    pg__text(&p, img->scope);
    pg__text(&p, img->owner);
    pg__int(&p, img->platform);
    pg__text(&p, img->user_id);
    pg__text(&p, img->scope_id);
    pg__text(&p, img->model);
    pg__text(&p, img->size);
    pg__text(&p, img->mime);
    pg__opt(&p, img->prompt);
    pg__int(&p, img->created_at);
    pg__bin(&p, img->data, img->len);
    if (img->thumb != NULL)
        pg__bin(&p, img->thumb, img->thumb_len);
    else
        pg__opt(&p, NULL);
    return pg__do(s,
                  "INSERT INTO images (id, scope, owner, platform, user_id, scope_id, model, size,"
                  " mime, prompt, created_at, data, thumb)"
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                  " ON CONFLICT (id) DO UPDATE SET scope = $2, owner = $3, platform = $4,"
                  " user_id = $5, scope_id = $6, model = $7, size = $8, mime = $9, prompt = $10,"
                  " created_at = $11, data = $12, thumb = $13",
                  &p, "image_put", NULL);
}

int pg_txn_image_get(struct store_txn *txn, const char *id, enum store_image_bytes bytes,
                     struct store_image *out)
{
    if (pg__of(txn)->base.version < PG_IMAGE_VERSION)
        return HB_ESCHEMA;
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, id);
    pg__int(&p, (int64_t)bytes);
    int rc = 0;
    PGresult *r = pg__query(
        txn, "SELECT " PG_IMAGE_COLS ", 0, " PG_IMAGE_BYTES("$2") " FROM images i WHERE i.id = $1",
        &p, "image_get", &rc);
    if (r == NULL)
        return rc;
    rc = PQntuples(r) == 1 ? image__row(r, 0, bytes, out) : HB_ENOTFOUND;
    PQclear(r);
    return rc;
}

int pg_txn_image_page(struct store_txn *txn, const char *scope, const char *period, bool top,
                      int64_t since_ms, size_t skip, size_t max, enum store_image_bytes bytes,
                      struct store_image *out, size_t *n)
{
    *n = 0;
    if (pg__of(txn)->base.version < PG_IMAGE_VERSION)
        return HB_ESCHEMA;
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, scope);
    pg__text(&p, period);
    if (!top)
        pg__int(&p, since_ms);
    pg__int(&p, (int64_t)max);
    pg__int(&p, (int64_t)skip);
    pg__int(&p, (int64_t)bytes);
    int rc = 0;
    /* The same walks as SQLite's: votes_top for the most upvoted,
     * images_scope backwards for the newest. */
    PGresult *r =
        top ? pg__query(txn,
                        "SELECT " PG_IMAGE_COLS ", v.count, " PG_IMAGE_BYTES(
                            "$5") " FROM votes v JOIN images i ON i.id = v.image"
                                  " WHERE v.scope = $1 AND v.period = $2 AND i.scope = $1"
                                  " ORDER BY v.count DESC, v.image LIMIT $3 OFFSET $4",
                        &p, "image_page", &rc)
            : pg__query(txn,
                        "SELECT " PG_IMAGE_COLS ", COALESCE(v.count, 0), " PG_IMAGE_BYTES(
                            "$6") " FROM images i LEFT JOIN votes v"
                                  " ON v.scope = i.scope AND v.period = $2 AND v.image = i.id"
                                  " WHERE i.scope = $1 AND i.created_at >= $3"
                                  " ORDER BY i.created_at DESC, i.id DESC LIMIT $4 OFFSET $5",
                        &p, "image_page", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && *n < max && rc == 0; i++) {
        rc = image__row(r, i, bytes, &out[*n]);
        if (rc == 0)
            (*n)++;
    }
    PQclear(r);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++)
            store_image_clear(&out[i]);
        *n = 0;
    }
    return rc;
}

/* The images a prune deletes: made before $1, then past the $1 newest. */
#define PG_IMAGES_OLD "SELECT id FROM images WHERE created_at < $1"
#define PG_IMAGES_OVER "SELECT id FROM images ORDER BY created_at DESC OFFSET $1"

/* Delete the images `which` selects (by its $1 = v), and first the state
 * rows of ns (NULL: none) keyed by them. The statements are constants:
 * they are prepared once, known by their address. */
static int pg__image_delete(struct pg_store *s, const char *ns, bool over, int64_t v,
                            int64_t *removed)
{
    static const char *const state_sql[2] = {
        "DELETE FROM state WHERE ns = $2 AND key IN (" PG_IMAGES_OLD ")",
        "DELETE FROM state WHERE ns = $2 AND key IN (" PG_IMAGES_OVER ")"};
    static const char *const image_sql[2] = {"DELETE FROM images WHERE id IN (" PG_IMAGES_OLD ")",
                                             "DELETE FROM images WHERE id IN (" PG_IMAGES_OVER ")"};
    struct pg_params p;
    int64_t changed = 0;
    int rc = 0;
    if (ns != NULL) {
        pg__params_init(&p);
        pg__int(&p, v);
        pg__text(&p, ns);
        rc = pg__do(s, state_sql[over], &p, "image_prune", &changed);
    }
    if (rc == 0) {
        pg__params_init(&p);
        pg__int(&p, v);
        changed = 0;
        rc = pg__do(s, image_sql[over], &p, "image_prune", &changed);
        *removed += changed;
    }
    return rc;
}

int pg_txn_image_prune(struct store_txn *txn, int64_t before_ms, int64_t keep_max,
                       const char *with_ns, int64_t *removed)
{
    struct pg_store *s = pg__of(txn);
    *removed = 0;
    if (s->base.version < PG_IMAGE_VERSION)
        return HB_ESCHEMA;
    int rc = pg__image_delete(s, with_ns, false, before_ms, removed);
    if (rc == 0 && keep_max > 0)
        rc = pg__image_delete(s, with_ns, true, keep_max, removed);
    return rc;
}

int pg_txn_image_forget(struct store_txn *txn, const char *owner, int64_t *erased)
{
    struct pg_store *s = pg__of(txn);
    *erased = 0;
    if (s->base.version < PG_IMAGE_VERSION)
        return HB_ESCHEMA;
    struct pg_params p;
    pg__params_init(&p);
    pg__text(&p, owner);
    return pg__do(s, "UPDATE images SET prompt = NULL WHERE owner = $1 AND prompt IS NOT NULL", &p,
                  "image_forget", erased);
}
