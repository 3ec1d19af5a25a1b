#include "bot/status.h"

#include "net/server.h"
#include "base/error.h"
#include "core/ledger.h"
#include "base/log.h"
#include "base/metrics.h"
#include "core/state.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_COMPONENTS_MAX 32

struct status_component {
    char *name;
    char *detail;
    bool essential;
    enum status_state state;
};

struct status {
    struct server *srv;
    char *metrics_token;
    status_probe_fn probe;
    void *probe_data;
    struct status_component comps[STATUS_COMPONENTS_MAX];
    size_t ncomps;
    size_t probing; /* probes under way */
};

struct status_probe_ctx {
    struct status *st;
    struct server_request *req;
};

static const char *status__state_name(enum status_state s)
{
    switch (s) {
    case STATUS_UP:
        return "up";
    case STATUS_STARTING:
        return "starting";
    case STATUS_DOWN:
        break;
    }
    return "down";
}

int status_component_set(struct status *st, const char *name, bool essential,
                         enum status_state state, const char *detail)
{
    struct status_component *c = NULL;
    for (size_t i = 0; i < st->ncomps; i++) {
        if (strcmp(st->comps[i].name, name) == 0)
            c = &st->comps[i];
    }
    if (c == NULL) {
        if (st->ncomps == STATUS_COMPONENTS_MAX)
            return HB_EOVERFLOW;
        c = &st->comps[st->ncomps];
        c->name = strdup(name);
        if (c->name == NULL)
            return HB_ENOMEM;
        st->ncomps++;
    }
    char *d = detail != NULL ? strdup(detail) : NULL;
    if (detail != NULL && d == NULL)
        return HB_ENOMEM;
    free(c->detail);
    c->detail = d;
    c->essential = essential;
    if (c->state != state)
        log_info("status.changed", "component=%s state=%s", name, status__state_name(state));
    c->state = state;
    return 0;
}

static void status__health_answer(struct status *st, struct server_request *req)
{
    bool healthy = true;
    cJSON *root = cJSON_CreateObject();
    cJSON *comps = cJSON_AddObjectToObject(root, "components");
    for (size_t i = 0; i < st->ncomps && comps != NULL; i++) {
        const struct status_component *c = &st->comps[i];
        if (c->essential && c->state == STATUS_DOWN)
            healthy = false;
        cJSON *o = cJSON_AddObjectToObject(comps, c->name);
        if (o == NULL)
            continue;
        cJSON_AddStringToObject(o, "state", status__state_name(c->state));
        cJSON_AddBoolToObject(o, "essential", c->essential);
        if (c->detail != NULL)
            cJSON_AddStringToObject(o, "detail", c->detail);
    }
    cJSON_AddStringToObject(root, "status", healthy ? "ok" : "down");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL) {
        server_respond(req, 500, NULL, "out of memory\n", 14, NULL);
        return;
    }
    server_respond(req, healthy ? 200 : 503, "application/json", text, strlen(text), NULL);
    free(text);
}

static void status__probed(int rc, void *arg)
{
    struct status_probe_ctx *ctx = arg;
    struct status *st = ctx->st;
    st->probing--;
    status_component_set(st, "storage", true, rc == 0 ? STATUS_UP : STATUS_DOWN,
                         rc == 0 ? NULL : hb_strerror(rc));
    status__health_answer(st, ctx->req);
    free(ctx);
}

static void status__healthz(struct server_request *req, void *data)
{
    struct status *st = data;
    if (st->probe == NULL) {
        status__health_answer(st, req);
        return;
    }
    struct status_probe_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        server_respond(req, 500, NULL, "out of memory\n", 14, NULL);
        return;
    }
    ctx->st = st;
    ctx->req = req;
    st->probing++;
    int rc = st->probe(st->probe_data, status__probed, ctx);
    if (rc < 0)
        status__probed(rc, ctx);
}

/* Constant time over the expected length, so the token does not leak
 * through timing. */
static bool status__token_ok(const char *expected, const char *header)
{
    if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
        return false;
    const char *given = header + 7;
    size_t n = strlen(expected);
    if (strlen(given) != n)
        return false;
    return CRYPTO_memcmp(expected, given, n) == 0;
}

static void status__metrics(struct server_request *req, void *data)
{
    struct status *st = data;
    if (st->metrics_token != NULL &&
        !status__token_ok(st->metrics_token, server_request_header(req, "Authorization"))) {
        log_warn("metrics.unauthorized", NULL);
        server_respond(req, 401, NULL, "unauthorized\n", 13, "WWW-Authenticate: Bearer");
        return;
    }
    size_t len = 0;
    char *text = metrics_render(&len);
    if (text == NULL) {
        server_respond(req, 500, NULL, "out of memory\n", 14, NULL);
        return;
    }
    server_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    free(text);
}

struct status *status_new(struct server *srv, const struct status_options *opts)
{
    struct status *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->srv = srv;
    if (opts != NULL) {
        st->probe = opts->storage_probe;
        st->probe_data = opts->storage_probe_data;
        if (opts->metrics_token != NULL && opts->metrics_token[0] != '\0') {
            st->metrics_token = strdup(opts->metrics_token);
            if (st->metrics_token == NULL)
                goto fail;
        }
    }
    static const char *const auth[] = {"Authorization", NULL};
    if (server_route_add(srv, "GET", "/healthz", NULL, status__healthz, st) < 0 ||
        server_route_add(srv, "GET", "/metrics", auth, status__metrics, st) < 0)
        goto fail;
    if (st->probe != NULL)
        status_component_set(st, "storage", true, STATUS_STARTING, NULL);
    return st;
fail:
    free(st->metrics_token);
    free(st);
    return NULL;
}

void status_free(struct status *st)
{
    if (st == NULL)
        return;
    if (st->probing > 0)
        log_error("status.free", "probes_pending=%zu", st->probing);
    for (size_t i = 0; i < st->ncomps; i++) {
        free(st->comps[i].name);
        free(st->comps[i].detail);
    }
    if (st->metrics_token != NULL)
        OPENSSL_cleanse(st->metrics_token, strlen(st->metrics_token));
    free(st->metrics_token);
    free(st);
}

/* ---- the ledger probe ------------------------------------------------------ */

struct status_ledger_probe {
    void (*done)(int rc, void *arg);
    void *arg;
};

static void status__ledger_probed(int rc, const char *value, void *data)
{
    struct status_ledger_probe *p = data;
    (void)value;
    p->done(rc == HB_ENOTFOUND ? 0 : rc, p->arg);
    free(p);
}

int status_probe_ledger(void *data, void (*done)(int rc, void *arg), void *arg)
{
    struct ledger *const *ledger = data;
    if (ledger == NULL || *ledger == NULL)
        return HB_ECANCELED;
    struct status_ledger_probe *p = malloc(sizeof(*p));
    if (p == NULL)
        return HB_ENOMEM;
    p->done = done;
    p->arg = arg;
    /* A write, not a read: with the disk full or the database gone
     * read-only, reads still answer while every commit fails. The counter
     * changes on each probe, so the commit really writes a page and waits
     * for it to be durable, as a credit movement does. */
    int rc = state_incr(ledger_store(*ledger), "health", "probe", 1, status__ledger_probed, p);
    if (rc < 0)
        free(p);
    return rc;
}
