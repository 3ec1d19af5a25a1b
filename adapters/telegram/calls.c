/* Bot API calls, the bottom of the adapter: a JSON call goes through the
 * pipelined connection (net/http_pipe.h) when there is one; getUpdates,
 * uploads and setMyCommands go as their own transfer on the shared HTTP
 * client. Either way the answer is parsed once into a struct tg_result.
 * A text sent with parse_mode that Telegram refuses ("can't parse
 * entities") is sent once more as plain text before the caller hears of it.
 * Also the adapter's references, which every asynchronous step holds, and
 * the jitter the back-offs use. */
#include "adapters/telegram/telegram_internal.h"

#include "adapters/telegram/markdown.h"
#include "net/http_pipe.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tg_call {
    struct tg *tg;
    struct http_request *req;
    struct tg_call *prev, *next; /* tg->calls */
    tg_done_fn done;
    void *data;
    uint64_t start_ns;
};

/* ---- references ----------------------------------------------------- */

void tg_ref(struct tg *tg)
{
    tg->refs++;
}

void tg_unref(struct tg *tg)
{
    tg->refs--;
    tg->maybe_free(tg); /* telegram.c: frees the adapter once closed and unreferenced */
}

uint64_t tg_jitter(struct tg *tg, uint64_t ms)
{
    /* xorshift64: jitter need not be strong, only spread out. */
    uint64_t x = tg->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tg->rng = x;
    return ms / 2 + (ms > 1 ? x % (ms / 2 + 1) : 0);
}

/* ---- calls ---------------------------------------------------------- */

struct http_request *tg_request_new(struct tg *tg, const char *method)
{
    size_t n = strlen(tg->base) + strlen(method) + 1;
    char *url = malloc(n);
    if (url == NULL)
        return NULL;
    snprintf(url, n, "%s%s", tg->base, method);
    struct http_request *req = http_request_new(tg->http, "POST", url);
    free(url);
    return req;
}

/* A call's answer, from either path: parse it and hand it on. */
static void tg__call_finish(struct tg_call *c, int rc, int status, const char *body, size_t len)
{
    struct tg *tg = c->tg;
    struct tg_result res = {.rc = rc, .description = ""};
    cJSON *root = NULL;
    res.elapsed_ms = (double)(uv_hrtime() - c->start_ns) / 1e6;
    if (rc == 0) {
        res.status = status;
        root = cJSON_ParseWithLength(body, len);
        if (cJSON_IsObject(root)) {
            res.ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok"));
            res.result = cJSON_GetObjectItemCaseSensitive(root, "result");
            const char *d = tg_json_str(root, "description");
            res.description = d != NULL ? d : "";
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parameters");
            res.retry_after = tg_json_int(p, "retry_after", 0);
            if (res.retry_after < 0 || res.retry_after > 86400) {
                log_warn("telegram.number_refused", "field=retry_after problem=out of range");
                res.retry_after = 0; /* the usual one-second wait */
            }
            res.migrate_to = tg_json_int(p, "migrate_to_chat_id", 0);
        } else if (res.status == 200) {
            res.rc = HB_EPROTO; /* a 200 without a JSON object is not an answer */
        }
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        tg->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->done != NULL)
        c->done(tg, c->data, &res);
    cJSON_Delete(root);
    free(c);
    tg_unref(tg);
}

static void tg__call_done(struct http_request *req, int rc, void *data)
{
    size_t len = 0;
    const char *body = rc == 0 ? http_request_body(req, &len) : "";
    tg__call_finish(data, rc, rc == 0 ? http_request_status(req) : 0, body, len);
}

static void tg__pipe_done(int rc, int status, const char *body, size_t len, void *data)
{
    tg__call_finish(data, rc, status, body, len);
}

static struct tg_call *tg__call_new(struct tg *tg, tg_done_fn done, void *data)
{
    struct tg_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->tg = tg;
    c->done = done;
    c->data = data;
    c->start_ns = uv_hrtime();
    return c;
}

static void tg__call_link(struct tg *tg, struct tg_call *c)
{
    c->next = tg->calls;
    if (tg->calls != NULL)
        tg->calls->prev = c;
    tg->calls = c;
    tg_ref(tg);
}

int tg_request_start(struct tg *tg, struct http_request *req, tg_done_fn done, void *data,
                     struct tg_call **out)
{
    if (tg->closing) {
        http_request_free(req);
        return HB_ECANCELED;
    }
    struct tg_call *c = tg__call_new(tg, done, data);
    if (c == NULL) {
        http_request_free(req);
        return HB_ENOMEM;
    }
    c->req = req;
    int rc = http_request_start(req, tg__call_done, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    tg__call_link(tg, c);
    if (out != NULL)
        *out = c;
    return 0;
}

/* A JSON call through the pipe: written with the others of this turn. */
static int tg__call_piped(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done,
                          void *data)
{
    if (tg->closing)
        return HB_ECANCELED;
    char path[1024]; /* "/<base path>/bot<token>/<method>" */
    int n = snprintf(path, sizeof(path), "%s%s", tg->pipe_path, method);
    if (n < 0 || (size_t)n >= sizeof(path))
        return HB_EINVAL;
    size_t len = 0;
    char *text = json_print(body, &len);
    struct tg_call *c = text != NULL ? tg__call_new(tg, done, data) : NULL;
    if (c == NULL) {
        free(text);
        return HB_ENOMEM;
    }
    int rc = http_pipe_post(tg->pipe, path, "application/json", text, len, tg__pipe_done, c);
    free(text);
    if (rc < 0) {
        free(c);
        return rc;
    }
    tg__call_link(tg, c);
    return 0;
}

/* ---- markup refused ------------------------------------------------- */

static int tg__call_json(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done,
                         void *data);

/* A call with parse_mode: its caller, and the same body as plain text. */
struct tg_markup_call {
    tg_done_fn done;
    void *data;
    char method[40];
    cJSON *plain;
};

static bool tg__markup_refused(const struct tg_result *res)
{
    return res->rc == 0 && res->status == 400 &&
           strstr(res->description, "can't parse entities") != NULL;
}

static void tg__markup_done(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_markup_call *m = data;
    bool again = false;
    if (tg__markup_refused(res) && !tg->closing) {
        /* Never the text itself in a log line: it is a member's answer. */
        log_warn("telegram.markup_refused", "method=%s description=%.60s", m->method,
                 res->description);
        again = tg__call_json(tg, m->method, m->plain, m->done, m->data) == 0;
    }
    if (!again && m->done != NULL)
        m->done(tg, m->data, res);
    cJSON_Delete(m->plain);
    free(m);
}

/* The plain twin of a text body: the text as Telegram would have shown
 * it, without parse_mode. NULL on no memory. */
static cJSON *tg__plain_body(const cJSON *body)
{
    const char *html = tg_json_str(body, "text");
    cJSON *plain = cJSON_Duplicate(body, 1);
    char *text = html != NULL ? tg_html_plain(html) : NULL;
    if (plain == NULL || text == NULL) {
        cJSON_Delete(plain);
        free(text);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(plain, "parse_mode");
    cJSON_DeleteItemFromObjectCaseSensitive(plain, "text");
    cJSON_AddStringToObject(plain, "text", text);
    free(text);
    return plain;
}

int tg_call_json(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done, void *data)
{
    if (cJSON_GetObjectItemCaseSensitive(body, "parse_mode") == NULL ||
        tg_json_str(body, "text") == NULL)
        return tg__call_json(tg, method, body, done, data);
    struct tg_markup_call *m = calloc(1, sizeof(*m));
    cJSON *plain = m != NULL ? tg__plain_body(body) : NULL;
    if (plain == NULL) {
        free(m);
        return HB_ENOMEM;
    }
    m->done = done;
    m->data = data;
    snprintf(m->method, sizeof(m->method), "%s", method);
    m->plain = plain;
    int rc = tg__call_json(tg, method, body, tg__markup_done, m);
    if (rc < 0) {
        cJSON_Delete(plain);
        free(m);
    }
    return rc;
}

static int tg__call_json(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done,
                         void *data)
{
    if (tg->pipe != NULL && strcmp(method, "getUpdates") != 0)
        return tg__call_piped(tg, method, body, done, data);
    struct http_request *req = tg_request_new(tg, method);
    if (req == NULL)
        return HB_ENOMEM;
    int rc = http_request_json_set(req, body);
    if (rc < 0) {
        http_request_free(req);
        return rc;
    }
    http_request_timeout_set(req, TG_CALL_TIMEOUT_MS, 0);
    return tg_request_start(tg, req, done, data, NULL);
}

void tg_call_cancel(struct tg_call *c)
{
    http_request_cancel(c->req);
}

void tg_calls_cancel(struct tg *tg)
{
    for (struct tg_call *c = tg->calls; c != NULL; c = c->next)
        http_request_cancel(c->req);
}
