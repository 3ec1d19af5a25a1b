/* The audit trail: appending sealed entries, reading pages, and walking the
 * chain to verify it. */
#include "core/audit.h"

#include "base/clock.h"
#include "base/json.h"
#include "core/core.h"
#include "core/ledger.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "core/chain.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PAGE_MAX 100

/* ---- The chain -------------------------------------------------------------- */

/* The canonical bytes of an entry: a version tag, then every field but the
 * hashes in a fixed order, integers big-endian, strings length-prefixed. */
static size_t audit__encode(const struct store_audit *a, uint8_t *p)
{
    size_t n = 0;
    memcpy(p, "HBA1", 4);
    n += 4;
    n += chain_put_u64(p + n, a->seq);
    n += chain_put_u64(p + n, (uint64_t)a->ts);
    n += chain_put_str(p + n, a->actor, sizeof(a->actor));
    n += chain_put_str(p + n, a->action, sizeof(a->action));
    n += chain_put_str(p + n, a->subject, sizeof(a->subject));
    n += chain_put_str(p + n, a->detail, sizeof(a->detail));
    return n;
}

static int audit__hash(const struct store_audit *a, uint8_t out[STORE_HASH_SIZE])
{
    uint8_t buf[4 + 8 * 2 + 4 * 4 + 2 * STORE_ID_SIZE + STORE_AUDIT_ACTION_SIZE +
                STORE_AUDIT_DETAIL_SIZE];
    size_t n = audit__encode(a, buf);
    return chain_hash(a->prev, buf, n, out);
}

/* ---- Appending --------------------------------------------------------------- */

struct audit_op {
    struct store_job job; /* first: the store hands it back */
    struct store_audit entry;
    audit_cb cb;
    void *data;
    /* listing */
    char *match;
    uint64_t before_seq;
    size_t skip, max, n;
    struct store_audit *rows;
    audit_list_cb list_cb;
};

int audit_append_txn(struct store_txn *txn, struct store_audit *e)
{
    uint64_t seq = 0;
    int rc = store_txn_audit_head(txn, &seq, e->prev);
    if (rc < 0)
        return rc;
    e->seq = seq + 1;
    rc = audit__hash(e, e->hash);
    if (rc < 0)
        return rc;
    return store_txn_audit_append(txn, e);
}

static int audit__append_run(struct store_txn *txn, struct store_job *job)
{
    struct audit_op *op = container_of(job, struct audit_op, job);
    return audit_append_txn(txn, &op->entry);
}

static void audit__append_done(struct store_job *job, int rc)
{
    struct audit_op *op = container_of(job, struct audit_op, job);
    if (rc < 0)
        log_error("audit.not_written", "action=%s actor=%s error=%s", op->entry.action,
                  op->entry.actor, hb_strerror(rc));
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
}

static int audit__copy(char *dst, size_t cap, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= cap)
        return HB_EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

int audit_entry_set(struct store_audit *e, const char *actor, const char *action,
                    const char *subject, const char *detail_json)
{
    if (action == NULL || action[0] == '\0')
        return HB_EINVAL;
    memset(e, 0, sizeof(*e));
    int rc = audit__copy(e->actor, sizeof(e->actor), actor != NULL ? actor : AUDIT_ACTOR_SYSTEM);
    if (rc == 0)
        rc = audit__copy(e->action, sizeof(e->action), action);
    if (rc == 0)
        rc = audit__copy(e->subject, sizeof(e->subject), subject);
    if (rc == 0)
        rc = audit__copy(e->detail, sizeof(e->detail), detail_json);
    e->ts = clock_real_ms();
    return rc;
}

int audit_record(struct store *store, const char *actor, const char *action, const char *subject,
                 const char *detail_json, audit_cb cb, void *data)
{
    if (store == NULL)
        return HB_EINVAL;
    struct audit_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    int rc = audit_entry_set(&op->entry, actor, action, subject, detail_json);
    if (rc < 0) {
        free(op);
        return rc;
    }
    op->cb = cb;
    op->data = data;
    op->job.run = audit__append_run;
    op->job.done = audit__append_done;
    rc = store_submit(store, &op->job);
    if (rc < 0)
        free(op);
    return rc;
}

void audit_actor(char *buf, size_t cap, const struct invocation *inv)
{
    snprintf(buf, cap, "%s:%s", command_platform_name(inv->platform), inv->user_id);
}

int audit_note(struct store *store, const char *actor, const char *action, const char *subject,
               cJSON *detail)
{
    char *text = NULL;
    int rc = 0;
    if (detail != NULL) {
        text = json_print(detail, NULL);
        cJSON_Delete(detail);
        if (text == NULL)
            rc = HB_ENOMEM;
    }
    if (rc == 0)
        rc = audit_record(store, actor, action, subject, text, NULL, NULL);
    if (rc < 0)
        log_error("audit.not_written", "action=%s actor=%s error=%s", action != NULL ? action : "-",
                  actor != NULL ? actor : AUDIT_ACTOR_SYSTEM, hb_strerror(rc));
    free(text);
    return rc;
}

int audit_note_inv(struct core *core, const struct invocation *inv, const char *action,
                   const char *subject, cJSON *detail)
{
    char actor[STORE_ID_SIZE];
    audit_actor(actor, sizeof(actor), inv);
    if (core->ledger == NULL) {
        cJSON_Delete(detail);
        log_error("audit.not_written", "action=%s actor=%s error=%s", action, actor,
                  hb_strerror(HB_ECANCELED));
        return HB_ECANCELED;
    }
    return audit_note(ledger_store(core->ledger), actor, action, subject, detail);
}

/* ---- Reading ------------------------------------------------------------------ */

static int audit__list_run(struct store_txn *txn, struct store_job *job)
{
    struct audit_op *op = container_of(job, struct audit_op, job);
    return store_txn_audit_page(txn, op->match, op->before_seq, op->skip, op->rows, op->max,
                                &op->n);
}

static void audit__list_done(struct store_job *job, int rc)
{
    struct audit_op *op = container_of(job, struct audit_op, job);
    op->list_cb(rc, op->rows, rc == 0 ? op->n : 0, op->data);
    free(op->rows);
    free(op->match);
    free(op);
}

int audit_list(struct store *store, const char *match, uint64_t before_seq, size_t skip, size_t max,
               audit_list_cb cb, void *data)
{
    if (store == NULL || cb == NULL || max == 0 || max > AUDIT_PAGE_MAX)
        return HB_EINVAL;
    struct audit_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->rows = calloc(max, sizeof(*op->rows));
    op->match = match != NULL ? strdup(match) : NULL;
    if (op->rows == NULL || (match != NULL && op->match == NULL)) {
        free(op->rows);
        free(op->match);
        free(op);
        return HB_ENOMEM;
    }
    op->before_seq = before_seq;
    op->skip = skip;
    op->max = max;
    op->list_cb = cb;
    op->data = data;
    op->job.run = audit__list_run;
    op->job.done = audit__list_done;
    int rc = store_submit_read(store, &op->job);
    if (rc < 0) {
        free(op->rows);
        free(op->match);
        free(op);
    }
    return rc;
}

/* ---- Verifying ---------------------------------------------------------------- */

#define AUDIT_BROKEN 1

struct audit_walk {
    struct audit_verify_result *res;
    uint64_t next_seq;
    uint8_t prev[STORE_HASH_SIZE];
};

static int audit__walk_entry(const struct store_audit *a, void *data)
{
    struct audit_walk *w = data;
    struct audit_verify_result *res = w->res;
    uint8_t hash[STORE_HASH_SIZE];
    if (a->seq != w->next_seq) {
        snprintf(res->where, sizeof(res->where), "entry seq=%" PRIu64, w->next_seq);
        snprintf(res->what, sizeof(res->what),
                 "is missing (the next stored entry is seq=%" PRIu64 ")", a->seq);
        return AUDIT_BROKEN;
    }
    snprintf(res->where, sizeof(res->where), "entry seq=%" PRIu64, a->seq);
    if (memcmp(a->prev, w->prev, STORE_HASH_SIZE) != 0) {
        snprintf(res->what, sizeof(res->what),
                 "does not follow its predecessor (removed, moved or inserted)");
        return AUDIT_BROKEN;
    }
    int rc = audit__hash(a, hash);
    if (rc < 0)
        return rc;
    if (memcmp(hash, a->hash, STORE_HASH_SIZE) != 0) {
        snprintf(res->what, sizeof(res->what),
                 "hash does not match its contents and its predecessor (altered, moved or "
                 "inserted)");
        return AUDIT_BROKEN;
    }
    res->where[0] = '\0';
    memcpy(w->prev, a->hash, STORE_HASH_SIZE);
    w->next_seq++;
    res->entries = a->seq;
    memcpy(res->head, a->hash, STORE_HASH_SIZE);
    return 0;
}

int audit_verify_txn(struct store_txn *txn, struct audit_verify_result *res)
{
    struct audit_walk w;
    uint64_t rec_seq = 0;
    uint8_t rec_hash[STORE_HASH_SIZE];
    memset(res, 0, sizeof(*res));
    memset(&w, 0, sizeof(w));
    w.res = res;
    w.next_seq = 1;
    int rc = store_txn_audit_each(txn, 1, audit__walk_entry, &w);
    if (rc != 0)
        return rc;
    rc = store_txn_audit_head_recorded(txn, &rec_seq, rec_hash);
    if (rc < 0)
        return rc;
    if (rec_seq != res->entries || memcmp(rec_hash, w.prev, STORE_HASH_SIZE) != 0) {
        snprintf(res->where, sizeof(res->where), "entry seq=%" PRIu64,
                 rec_seq > res->entries ? res->entries + 1 : rec_seq);
        snprintf(res->what, sizeof(res->what),
                 rec_seq > res->entries ? "is missing (the recorded head is seq=%" PRIu64 ")"
                                        : "differs from the recorded head (seq=%" PRIu64 ")",
                 rec_seq);
        return AUDIT_BROKEN;
    }
    return 0;
}

int audit_verify_print(int rc, const struct audit_verify_result *res, FILE *out)
{
    char hex[2 * STORE_HASH_SIZE + 1];
    if (rc == AUDIT_BROKEN) {
        fprintf(out, "audit verify: FAILED at %s: %s\n", res->where, res->what);
    } else if (rc < 0) {
        fprintf(out, "audit verify: cannot check the audit trail: %s\n", hb_strerror(rc));
    } else {
        chain_hex(res->head, hex);
        fprintf(out, "audit verify: ok entries=%" PRIu64 " head=%" PRIu64 " hash=%s\n",
                res->entries, res->entries, hex);
    }
    return rc;
}

int audit_verify_file(const char *db_path, FILE *out)
{
    struct store_options so = {.path = db_path};
    return audit_verify_store(&so, out);
}

int audit_verify_store(const struct store_options *where, FILE *out)
{
    struct store_options so = *where;
    so.read_only = true;
    struct store_txn *txn = NULL;
    struct audit_verify_result res;
    memset(&res, 0, sizeof(res));
    int rc = 0;
    struct store *store = store_new(&so, &rc);
    bool opened = store != NULL;
    if (store == NULL)
        goto out;
    rc = store_txn_begin(store, false, &txn);
    if (rc < 0)
        goto out;
    rc = audit_verify_txn(txn, &res);
out:
    if (txn != NULL)
        store_txn_end(txn, false);
    store_free(store);
    if (!opened) {
        fprintf(out, "audit verify: cannot check %s: %s\n", store_options_where(where),
                hb_strerror(rc));
        return rc;
    }
    return audit_verify_print(rc, &res, out);
}
