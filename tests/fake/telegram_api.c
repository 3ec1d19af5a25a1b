/* The fake Telegram Bot API. See tests/fake/telegram_api.h. */
#include "tests/fake/telegram_api.h"

#include "tests/fake/httpd.h"
#include "base/json.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct tgapi_update {
    int64_t id;
    char *json;
};

struct tgapi_file {
    char id[64];
    char path[128];
    unsigned char *bytes;
    size_t len;
};

struct tgapi_failure {
    char method[40];
    int count;
    int status;
    char *body;
};

struct tgapi_hold {
    struct tgapi *f;
    int64_t offset;
    int limit;
    uint64_t deadline;
    struct tgapi_hold *next;
};

struct tgapi {
    struct httpd *srv;
    struct httpd_thread *thread;
    char token[128];
    pthread_mutex_t mu;
    bool record;
    struct tgapi_update *updates;
    size_t nupdates, capupdates;
    int64_t next_id;
    struct tgapi_failure fails[16];
    size_t nfails;
    char *refuse_markup; /* a text with parse_mode holding this is refused, or NULL */
    bool empty_fast;
    uint64_t hold_max_ms;
    int64_t backlog_n, backlog_chats, backlog_next;
    uint32_t *backlog_answers; /* sendMessage calls per backlog chat */
    struct tgapi_call *calls;
    size_t ncalls, capcalls;
    struct {
        char method[40];
        size_t n;
    } counts[32];
    size_t ncounts;
    uint64_t sends;
    int64_t confirmed;
    int64_t message_id;
    double cpu_s;
    struct tgapi_hold *holds;
    struct tgapi_file files[16];
    size_t nfiles;
    uint64_t files_slow_ms;
};

/* Telegram's reading of parse_mode=HTML, as far as a test needs it: only
 * its tags, closed in order, '&' only in its entities, and at most 4096
 * UTF-16 units of visible text. NULL when the text is fine, else the
 * description Telegram would answer with. */
static const char *tgapi__html_problem(const char *t)
{
    static const char *const tags[] = {"b",    "strong", "i",          "em",   "u",
                                       "ins",  "s",      "strike",     "del",  "a",
                                       "code", "pre",    "tg-spoiler", "span", "blockquote"};
    char stack[32][16];
    size_t depth = 0, units = 0;
    for (const char *p = t; *p != '\0';) {
        if (*p == '<') {
            const char *gt = strchr(p, '>');
            if (gt == NULL)
                return "Bad Request: can't parse entities: Unclosed start tag";
            bool closing = p[1] == '/';
            const char *name = p + (closing ? 2 : 1);
            size_t n = strcspn(name, " >");
            bool known = false;
            for (size_t k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
                known = known || (strlen(tags[k]) == n && strncmp(tags[k], name, n) == 0);
            if (!known || n >= 16)
                return "Bad Request: can't parse entities: Unsupported start tag";
            if (closing) {
                if (depth == 0 || strncmp(stack[depth - 1], name, n) != 0 ||
                    stack[depth - 1][n] != '\0')
                    return "Bad Request: can't parse entities: Unmatched end tag";
                depth--;
            } else {
                if (depth == 32)
                    return "Bad Request: can't parse entities: Too deep";
                snprintf(stack[depth++], 16, "%.*s", (int)n, name);
            }
            p = gt + 1;
            continue;
        }
        if (*p == '&') {
            static const char *const ents[] = {"&lt;", "&gt;", "&amp;", "&quot;"};
            size_t l = 0;
            for (size_t k = 0; k < 4 && l == 0; k++) {
                if (strncmp(p, ents[k], strlen(ents[k])) == 0)
                    l = strlen(ents[k]);
            }
            if (l == 0)
                return "Bad Request: can't parse entities: Unsupported entity";
            p += l;
            units++;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if ((c & 0xC0) != 0x80)
            units += c >= 0xF0 ? 2 : 1;
        p++;
    }
    if (depth != 0)
        return "Bad Request: can't parse entities: Unclosed start tag";
    if (units > 4096)
        return "Bad Request: message is too long";
    return NULL;
}

static uint64_t tgapi__now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void tgapi__count(struct tgapi *f, const char *method)
{
    for (size_t i = 0; i < f->ncounts; i++) {
        if (strcmp(f->counts[i].method, method) == 0) {
            f->counts[i].n++;
            return;
        }
    }
    if (f->ncounts < 32) {
        snprintf(f->counts[f->ncounts].method, 40, "%s", method);
        f->counts[f->ncounts++].n = 1;
    }
}

static void tgapi__send_json(struct httpd_response *res, int status, const char *body)
{
    httpd_response_send(res, status, "application/json", body, strlen(body));
}

/* A whole-number field of a request, or 0 when absent or out of range. */
static int64_t tgapi__int(const cJSON *body, const char *name)
{
    int64_t v = 0;
    if (json_int64_get(cJSON_GetObjectItem(body, name), -JSON_INT_EXACT, JSON_INT_EXACT, &v) != 0)
        return 0;
    return v;
}

/* Drop the updates an offset confirmed. */
static void tgapi__confirm(struct tgapi *f, int64_t offset)
{
    if (offset > f->confirmed)
        f->confirmed = offset;
    size_t keep = 0;
    for (size_t i = 0; i < f->nupdates; i++) {
        if (f->updates[i].id < offset)
            free(f->updates[i].json);
        else
            f->updates[keep++] = f->updates[i];
    }
    f->nupdates = keep;
    if (f->backlog_n > 0 && offset > f->backlog_next)
        f->backlog_next = offset;
}

/* The updates at or after offset as a getUpdates answer, or NULL if none. */
static char *tgapi__batch(struct tgapi *f, int64_t offset, int limit)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    int n = 0;
    len += (size_t)snprintf(out, cap, "{\"ok\":true,\"result\":[");
    for (size_t i = 0; i < f->nupdates && n < limit; i++) {
        if (f->updates[i].id < offset)
            continue;
        size_t add = strlen(f->updates[i].json) + 2;
        if (len + add + 4 > cap) {
            cap = (len + add + 4) * 2;
            out = realloc(out, cap);
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", n > 0 ? "," : "", f->updates[i].json);
        n++;
    }
    if (f->backlog_n > 0) {
        int64_t id = offset > f->backlog_next ? offset : f->backlog_next;
        if (id < 1)
            id = 1;
        for (; id <= f->backlog_n && n < limit; id++, n++) {
            int64_t chat = 100000 + id % f->backlog_chats;
            char one[320];
            int w = snprintf(one, sizeof(one),
                             "%s{\"update_id\":%" PRId64 ",\"message\":{\"message_id\":%" PRId64
                             ",\"date\":1700000000,\"chat\":{\"id\":%" PRId64
                             ",\"type\":\"private\"},\"from\":{\"id\":%" PRId64
                             ",\"is_bot\":false,\"first_name\":\"U\"},\"text\":\"/help help\"}}",
                             n > 0 ? "," : "", id, id, chat, chat);
            if (len + (size_t)w + 4 > cap) {
                cap = (len + (size_t)w + 4) * 2;
                out = realloc(out, cap);
            }
            memcpy(out + len, one, (size_t)w);
            len += (size_t)w;
        }
    }
    if (n == 0) {
        free(out);
        return NULL;
    }
    snprintf(out + len, cap - len, "]}");
    return out;
}

static void tgapi__hold_check(struct httpd_response *res, void *data)
{
    struct tgapi_hold *h = data;
    struct tgapi *f = h->f;
    pthread_mutex_lock(&f->mu);
    char *batch = tgapi__batch(f, h->offset, h->limit);
    pthread_mutex_unlock(&f->mu);
    if (batch == NULL && tgapi__now_ms() < h->deadline) {
        httpd_response_delay(res, 2);
        httpd_response_call(res, tgapi__hold_check, h);
        return;
    }
    tgapi__send_json(res, 200, batch != NULL ? batch : "{\"ok\":true,\"result\":[]}");
    free(batch);
}

static void tgapi__record(struct tgapi *f, const char *method, const char *body, int status);

/* GET /file/bot<token>/<path>: a file's bytes, as the Bot API serves them. */
static void tgapi__file_get(struct tgapi *f, struct httpd_response *res, const char *target)
{
    size_t tlen = strlen(f->token);
    const char *after = target + strlen("/file/bot");
    bool token_ok = strncmp(after, f->token, tlen) == 0 && after[tlen] == '/';
    const char *path = token_ok ? after + tlen + 1 : "";
    pthread_mutex_lock(&f->mu);
    const struct tgapi_file *file = NULL;
    for (size_t i = 0; token_ok && i < f->nfiles; i++) {
        if (strcmp(f->files[i].path, path) == 0)
            file = &f->files[i];
    }
    cJSON *rec = cJSON_CreateString(path);
    char *body = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    int status = !token_ok ? 401 : file == NULL ? 404 : 200;
    tgapi__count(f, "file");
    tgapi__record(f, "file", body, status);
    free(body);
    unsigned char *copy = NULL;
    size_t len = 0;
    uint64_t slow = f->files_slow_ms;
    if (file != NULL) {
        copy = malloc(file->len > 0 ? file->len : 1);
        memcpy(copy, file->bytes, file->len);
        len = file->len;
    }
    pthread_mutex_unlock(&f->mu);
    if (slow > 0)
        httpd_response_delay(res, slow);
    if (status == 200)
        httpd_response_send(res, 200, "application/octet-stream", (const char *)copy, len);
    else
        tgapi__send_json(res, status,
                         status == 401 ? "{\"ok\":false,\"error_code\":401,\"description\":"
                                         "\"Unauthorized\"}"
                                       : "{\"ok\":false,\"error_code\":404,\"description\":"
                                         "\"Not Found\"}");
    free(copy);
}

static void tgapi__handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct tgapi *f = data;
    if (strncmp(req->target, "/file/bot", 9) == 0) {
        tgapi__file_get(f, res, req->target);
        return;
    }
    char method[40] = "";
    size_t tlen = strlen(f->token);
    bool token_ok = strncmp(req->target, "/bot", 4) == 0 &&
                    strncmp(req->target + 4, f->token, tlen) == 0 && req->target[4 + tlen] == '/';
    const char *slash = strrchr(req->target, '/');
    snprintf(method, sizeof(method), "%.*s", (int)strcspn(slash + 1, "?"), slash + 1);

    cJSON *body = NULL;
    size_t photo_len = 0;
    char photo_type[32] = "";
    if (req->nparts > 0) {
        body = cJSON_CreateObject();
        for (size_t i = 0; i < req->nparts; i++) {
            const struct httpd_part *p = &req->parts[i];
            if (p->filename != NULL) {
                photo_len = p->len;
                snprintf(photo_type, sizeof(photo_type), "%s",
                         p->content_type != NULL ? p->content_type : "");
                continue;
            }
            char *v = strndup(p->data, p->len);
            cJSON *parsed = v[0] == '{' ? cJSON_Parse(v) : NULL;
            if (parsed != NULL)
                cJSON_AddItemToObject(body, p->name, parsed);
            else
                cJSON_AddStringToObject(body, p->name, v);
            free(v);
        }
    } else {
        body = cJSON_ParseWithLength(req->body, req->body_len);
    }
    if (body == NULL)
        body = cJSON_CreateObject();

    pthread_mutex_lock(&f->mu);
    int status = 200;
    char *answer = NULL;
    const char *fixed = NULL;
    if (!token_ok) {
        status = 401;
        fixed = "{\"ok\":false,\"error_code\":401,\"description\":\"Unauthorized\"}";
    }
    for (size_t i = 0; fixed == NULL && i < f->nfails; i++) {
        if (f->fails[i].count > 0 && strcmp(f->fails[i].method, method) == 0) {
            f->fails[i].count--;
            status = f->fails[i].status;
            answer = strdup(f->fails[i].body);
            break;
        }
    }
    const char *text = NULL;
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(body, "parse_mode");
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(body, "text");
    if (cJSON_IsString(tx))
        text = tx->valuestring;
    if (fixed == NULL && answer == NULL && text != NULL && cJSON_IsString(pm)) {
        const char *problem = NULL;
        if (strcmp(pm->valuestring, "HTML") != 0)
            problem = "Bad Request: unsupported parse_mode";
        else if (f->refuse_markup != NULL && strstr(text, f->refuse_markup) != NULL)
            problem = "Bad Request: can't parse entities: Can't find end tag corresponding to "
                      "start tag b";
        else
            problem = tgapi__html_problem(text);
        if (problem != NULL) {
            char buf[256];
            snprintf(buf, sizeof(buf), "{\"ok\":false,\"error_code\":400,\"description\":\"%s\"}",
                     problem);
            status = 400;
            answer = strdup(buf);
        }
    }
    bool hold = false;
    struct tgapi_hold *h = NULL;
    if (fixed == NULL && answer == NULL) {
        if (strcmp(method, "getMe") == 0) {
            fixed = "{\"ok\":true,\"result\":{\"id\":"
                    "4242"
                    ",\"is_bot\":true,\"first_name\":"
                    "\"HAI\",\"username\":\"" TGAPI_BOT_USERNAME "\",\"can_join_groups\":true}}";
        } else if (strcmp(method, "getUpdates") == 0) {
            int64_t offset = tgapi__int(body, "offset");
            int limit = (int)tgapi__int(body, "limit");
            int64_t timeout = tgapi__int(body, "timeout");
            if (limit <= 0 || limit > 100)
                limit = 100;
            tgapi__confirm(f, offset);
            answer = tgapi__batch(f, offset, limit);
            if (answer == NULL && !f->empty_fast && timeout > 0) {
                hold = true;
                h = calloc(1, sizeof(*h));
                h->f = f;
                h->offset = offset;
                h->limit = limit;
                uint64_t wait = (uint64_t)timeout * 1000;
                h->deadline = tgapi__now_ms() + (wait < f->hold_max_ms ? wait : f->hold_max_ms);
                h->next = f->holds;
                f->holds = h;
            } else if (answer == NULL) {
                fixed = "{\"ok\":true,\"result\":[]}";
            }
        } else if (strcmp(method, "sendMessage") == 0 || strcmp(method, "sendPhoto") == 0 ||
                   strcmp(method, "sendInvoice") == 0 || strcmp(method, "editMessageText") == 0) {
            int64_t chat = tgapi__int(body, "chat_id");
            int64_t mid = strcmp(method, "editMessageText") == 0 ? tgapi__int(body, "message_id")
                                                                 : ++f->message_id;
            char buf[256];
            snprintf(buf, sizeof(buf),
                     "{\"ok\":true,\"result\":{\"message_id\":%" PRId64
                     ",\"date\":1700000000,\"chat\":{\"id\":%" PRId64 ",\"type\":\"private\"}}}",
                     mid, chat);
            answer = strdup(buf);
            if (strcmp(method, "sendInvoice") != 0)
                f->sends++;
            if (f->backlog_answers != NULL && strcmp(method, "sendMessage") == 0 &&
                chat >= 100000 && chat < 100000 + f->backlog_chats)
                f->backlog_answers[chat - 100000]++;
        } else if (strcmp(method, "getFile") == 0) {
            const cJSON *fid = cJSON_GetObjectItemCaseSensitive(body, "file_id");
            const struct tgapi_file *file = NULL;
            for (size_t i = 0; cJSON_IsString(fid) && i < f->nfiles; i++) {
                if (strcmp(f->files[i].id, fid->valuestring) == 0)
                    file = &f->files[i];
            }
            char buf[512];
            if (file != NULL) {
                snprintf(buf, sizeof(buf),
                         "{\"ok\":true,\"result\":{\"file_id\":\"%s\",\"file_unique_id\":\"u%s\","
                         "\"file_size\":%zu,\"file_path\":\"%s\"}}",
                         file->id, file->id, file->len, file->path);
            } else {
                status = 400;
                snprintf(buf, sizeof(buf),
                         "{\"ok\":false,\"error_code\":400,\"description\":"
                         "\"Bad Request: invalid file_id\"}");
            }
            answer = strdup(buf);
        } else {
            fixed = "{\"ok\":true,\"result\":true}";
        }
    }
    tgapi__count(f, method);
    if (f->record) {
        char *printed = cJSON_PrintUnformatted(body);
        tgapi__record(f, method, printed, status);
        free(printed);
        struct tgapi_call *c = &f->calls[f->ncalls - 1];
        c->photo_len = photo_len;
        snprintf(c->photo_type, sizeof(c->photo_type), "%s", photo_type);
    }
    if (f->thread != NULL || f->srv == NULL) {
        struct rusage ru;
        if (getrusage(RUSAGE_THREAD, &ru) == 0)
            f->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    pthread_mutex_unlock(&f->mu);
    cJSON_Delete(body);
    if (hold) {
        httpd_response_call(res, tgapi__hold_check, h);
        return;
    }
    tgapi__send_json(res, status, fixed != NULL ? fixed : answer);
    free(answer);
}

/* Record a call (under the lock); body is copied. */
static void tgapi__record(struct tgapi *f, const char *method, const char *body, int status)
{
    if (!f->record)
        return;
    if (f->ncalls == f->capcalls) {
        f->capcalls = f->capcalls ? f->capcalls * 2 : 64;
        f->calls = realloc(f->calls, f->capcalls * sizeof(*f->calls));
    }
    struct tgapi_call *c = &f->calls[f->ncalls++];
    memset(c, 0, sizeof(*c));
    snprintf(c->method, sizeof(c->method), "%s", method);
    c->body = strdup(body != NULL ? body : "");
    c->at_ms = tgapi__now_ms();
    c->status = status;
}

void tgapi_file_add(struct tgapi *f, const char *file_id, const char *path, const void *bytes,
                    size_t len)
{
    pthread_mutex_lock(&f->mu);
    if (f->nfiles < sizeof(f->files) / sizeof(f->files[0])) {
        struct tgapi_file *file = &f->files[f->nfiles++];
        snprintf(file->id, sizeof(file->id), "%s", file_id);
        snprintf(file->path, sizeof(file->path), "%s", path);
        file->bytes = malloc(len > 0 ? len : 1);
        memcpy(file->bytes, bytes, len);
        file->len = len;
    }
    pthread_mutex_unlock(&f->mu);
}

void tgapi_files_slow(struct tgapi *f, uint64_t ms)
{
    pthread_mutex_lock(&f->mu);
    f->files_slow_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

static struct tgapi *tgapi__alloc(const char *token)
{
    struct tgapi *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    snprintf(f->token, sizeof(f->token), "%s", token);
    pthread_mutex_init(&f->mu, NULL);
    f->next_id = 1;
    f->hold_max_ms = 200;
    return f;
}

struct tgapi *tgapi_new(uv_loop_t *loop, const char *token)
{
    struct tgapi *f = tgapi__alloc(token);
    if (f == NULL)
        return NULL;
    f->record = true;
    f->srv = httpd_new(loop, tgapi__handler, f);
    if (f->srv == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

struct tgapi *tgapi_thread_new(const char *token)
{
    struct tgapi *f = tgapi__alloc(token);
    if (f == NULL)
        return NULL;
    f->thread = httpd_thread_start(tgapi__handler, f);
    if (f->thread == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

static void tgapi__free(struct tgapi *f)
{
    for (size_t i = 0; i < f->nupdates; i++)
        free(f->updates[i].json);
    free(f->updates);
    for (size_t i = 0; i < f->ncalls; i++)
        free(f->calls[i].body);
    free(f->calls);
    free(f->backlog_answers);
    for (size_t i = 0; i < f->nfails; i++)
        free(f->fails[i].body);
    free(f->refuse_markup);
    for (size_t i = 0; i < f->nfiles; i++)
        free(f->files[i].bytes);
    while (f->holds != NULL) {
        struct tgapi_hold *h = f->holds;
        f->holds = h->next;
        free(h);
    }
    pthread_mutex_destroy(&f->mu);
    free(f);
}

struct tgapi_closing {
    struct tgapi *f;
    void (*cb)(void *data);
    void *data;
};

static void tgapi__closed(void *data)
{
    struct tgapi_closing *c = data;
    tgapi__free(c->f);
    if (c->cb != NULL)
        c->cb(c->data);
    free(c);
}

void tgapi_close(struct tgapi *f, void (*cb)(void *data), void *data)
{
    if (f->thread != NULL) {
        httpd_thread_stop(f->thread);
        tgapi__free(f);
        if (cb != NULL)
            cb(data);
        return;
    }
    struct tgapi_closing *c = malloc(sizeof(*c));
    c->f = f;
    c->cb = cb;
    c->data = data;
    httpd_close(f->srv, tgapi__closed, c);
}

const char *tgapi_base(const struct tgapi *f)
{
    return httpd_base_url(f->thread != NULL ? httpd_thread_server(f->thread) : f->srv);
}

void tgapi_push_raw(struct tgapi *f, int64_t id, const char *json)
{
    pthread_mutex_lock(&f->mu);
    if (f->nupdates == f->capupdates) {
        f->capupdates = f->capupdates ? f->capupdates * 2 : 32;
        f->updates = realloc(f->updates, f->capupdates * sizeof(*f->updates));
    }
    f->updates[f->nupdates].id = id;
    f->updates[f->nupdates++].json = strdup(json);
    if (id >= f->next_id)
        f->next_id = id + 1;
    pthread_mutex_unlock(&f->mu);
}

int64_t tgapi_push(struct tgapi *f, const char *members)
{
    pthread_mutex_lock(&f->mu);
    int64_t id = f->next_id;
    pthread_mutex_unlock(&f->mu);
    size_t n = strlen(members) + 64;
    char *json = malloc(n);
    snprintf(json, n, "{\"update_id\":%" PRId64 ",%s}", id, members);
    tgapi_push_raw(f, id, json);
    free(json);
    return id;
}

void tgapi_fail(struct tgapi *f, const char *method, int count, int status, const char *body)
{
    pthread_mutex_lock(&f->mu);
    if (f->nfails < 16) {
        struct tgapi_failure *x = &f->fails[f->nfails++];
        snprintf(x->method, sizeof(x->method), "%s", method);
        x->count = count;
        x->status = status;
        x->body = strdup(body);
    }
    pthread_mutex_unlock(&f->mu);
}

void tgapi_refuse_markup(struct tgapi *f, const char *needle)
{
    pthread_mutex_lock(&f->mu);
    free(f->refuse_markup);
    f->refuse_markup = needle != NULL ? strdup(needle) : NULL;
    pthread_mutex_unlock(&f->mu);
}

void tgapi_empty_fast(struct tgapi *f, bool on)
{
    pthread_mutex_lock(&f->mu);
    f->empty_fast = on;
    pthread_mutex_unlock(&f->mu);
}

void tgapi_hold_max(struct tgapi *f, uint64_t ms)
{
    pthread_mutex_lock(&f->mu);
    f->hold_max_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

void tgapi_backlog(struct tgapi *f, int64_t n, int64_t nchats)
{
    pthread_mutex_lock(&f->mu);
    f->backlog_n = n;
    f->backlog_chats = nchats > 0 ? nchats : 1;
    f->backlog_next = 1;
    free(f->backlog_answers);
    f->backlog_answers = calloc((size_t)f->backlog_chats, sizeof(*f->backlog_answers));
    pthread_mutex_unlock(&f->mu);
}

void tgapi_backlog_tally(struct tgapi *f, int64_t *unanswered, int64_t *repeated)
{
    pthread_mutex_lock(&f->mu);
    *unanswered = 0;
    *repeated = 0;
    for (int64_t i = 0; f->backlog_answers != NULL && i < f->backlog_chats; i++) {
        if (f->backlog_answers[i] == 0)
            (*unanswered)++;
        else
            *repeated += f->backlog_answers[i] - 1;
    }
    pthread_mutex_unlock(&f->mu);
}

void tgapi_record(struct tgapi *f, bool on)
{
    pthread_mutex_lock(&f->mu);
    f->record = on;
    pthread_mutex_unlock(&f->mu);
}

size_t tgapi_ncalls(const struct tgapi *f)
{
    return f->ncalls;
}

const struct tgapi_call *tgapi_call_at(const struct tgapi *f, size_t i)
{
    return i < f->ncalls ? &f->calls[i] : NULL;
}

size_t tgapi_count(const struct tgapi *f, const char *method)
{
    struct tgapi *m = (struct tgapi *)f;
    size_t n = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < f->ncounts; i++) {
        if (strcmp(f->counts[i].method, method) == 0)
            n = f->counts[i].n;
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

uint64_t tgapi_sends(const struct tgapi *f)
{
    struct tgapi *m = (struct tgapi *)f;
    pthread_mutex_lock(&m->mu);
    uint64_t n = f->sends;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int64_t tgapi_confirmed(const struct tgapi *f)
{
    struct tgapi *m = (struct tgapi *)f;
    pthread_mutex_lock(&m->mu);
    int64_t n = f->confirmed;
    pthread_mutex_unlock(&m->mu);
    return n;
}

double tgapi_cpu_s(const struct tgapi *f)
{
    struct tgapi *m = (struct tgapi *)f;
    pthread_mutex_lock(&m->mu);
    double v = f->cpu_s;
    pthread_mutex_unlock(&m->mu);
    return v;
}

unsigned tgapi_connections(const struct tgapi *f)
{
    return httpd_connections(f->thread != NULL ? httpd_thread_server(f->thread) : f->srv);
}
