#include "adapters/llm/stream.h"

#include "base/error.h"
#include "adapters/llm/sse.h"
#include "base/json_scan.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_decoder {
    enum stream_protocol proto;
    struct sse_parser *sse;
    stream_step_cb cb;
    void *cb_data;
    int rc;                /* sticky failure of this layer, 0 while healthy */
    bool finished;         /* a finish reason arrived */
    bool done;             /* the end marker arrived; later events are ignored */
    size_t events;         /* SSE events seen, for error messages */
    char error[256];       /* description of the last failure */
    unsigned char held[3]; /* a high surrogate that ended a text delta, in WTF-8 */
    bool holding;          /* held is set: the next delta may start with its low half */
    bool tree_only;        /* every event through cJSON (stream_decoder_tree_only) */
    size_t trees;          /* events parsed as a cJSON tree */
};

static void stream_error_set(struct stream_decoder *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void stream_error_set(struct stream_decoder *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof(d->error), fmt, ap);
    va_end(ap);
}

static int stream_step_emit(struct stream_decoder *d, struct stream_step *step)
{
    if (d->cb == NULL)
        return 0;
    return d->cb(step, d->cb_data);
}

static void stream_step_init(struct stream_step *step, enum stream_step_kind kind)
{
    memset(step, 0, sizeof(*step));
    step->kind = kind;
    step->input_tokens = -1;
    step->output_tokens = -1;
}

/* ---- Surrogates ------------------------------------------------------------
 *
 * A server that streams UTF-16 code units (as JSON escapes) may cut an emoji
 * between two chunks: "\ud83d" ends one delta and "\ude00" starts the next.
 * Each chunk alone is JSON with a lone surrogate, which cJSON refuses. So
 * before parsing, a lone surrogate escape is rewritten to its three-byte
 * generalized UTF-8 form (WTF-8: ED A0..BF xx), which cJSON copies through;
 * as text is emitted, a high half that ends a delta is held and joined with
 * a low half that starts the next one. Whatever stays lone becomes U+FFFD,
 * so what leaves the decoder is always valid UTF-8. */

static const unsigned char stream_replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

/* The \uXXXX escape at p (p[0] is the backslash), or -1. */
static int stream__escape_at(const char *p, const char *end)
{
    if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    return json_scan_hex4(p + 2);
}

/* A copy of json with every lone surrogate escape written as WTF-8 bytes,
 * or NULL (with *changed false) when there is none. Escaped pairs stay. */
static char *stream__surrogates_rewrite(const char *json, size_t len, size_t *out_len,
                                        bool *changed)
{
    *changed = false;
    const char *end = json + len;
    const char *p = json;
    char *out = NULL;
    size_t n = 0;
    bool in_string = false;
    while (p < end) {
        int v = -1;
        if (in_string && *p == '\\') {
            v = stream__escape_at(p, end);
            if (v < 0xD800 || v > 0xDFFF) {
                /* Any other escape: copy it whole so "\\u..." is not misread. */
                size_t k = end - p >= 2 ? 2 : 1;
                if (out != NULL)
                    memcpy(out + n, p, k);
                n += k;
                p += k;
                continue;
            }
            int low = v <= 0xDBFF ? stream__escape_at(p + 6, end) : -1;
            if (low >= 0xDC00 && low <= 0xDFFF) {
                if (out != NULL)
                    memcpy(out + n, p, 12);
                n += 12;
                p += 12;
                continue;
            }
            if (out == NULL) {
                *changed = true; /* and NULL: out of memory */
                out = malloc(len + 1);
                if (out == NULL)
                    return NULL;
                memcpy(out, json, n);
            }
            out[n++] = (char)0xED;
            out[n++] = (char)(0x80 | ((v >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (v & 0x3F));
            p += 6;
            continue;
        }
        if (*p == '"')
            in_string = !in_string;
        if (out != NULL)
            out[n] = *p;
        n++;
        p++;
    }
    if (out != NULL)
        out[n] = '\0';
    *out_len = n;
    return out;
}

static bool stream__is_surrogate(const unsigned char *p, size_t avail, bool high)
{
    return avail >= 3 && p[0] == 0xED &&
           (high ? (p[1] >= 0xA0 && p[1] <= 0xAF) : (p[1] >= 0xB0 && p[1] <= 0xBF));
}

/* Join a held high half with a low half as one 4-byte UTF-8 character. */
static void stream__join(const unsigned char *hi, const unsigned char *lo, unsigned char out[4])
{
    unsigned h = 0xD000u | (unsigned)(hi[1] & 0x3F) << 6 | (hi[2] & 0x3F);
    unsigned l = 0xD000u | (unsigned)(lo[1] & 0x3F) << 6 | (lo[2] & 0x3F);
    unsigned cp = 0x10000u + ((h - 0xD800u) << 10) + (l - 0xDC00u);
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
}

static int stream__text_step(struct stream_decoder *d, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_TEXT);
    step.text = text;
    step.text_len = len;
    return stream_step_emit(d, &step);
}

/* A held high half that no low half followed: U+FFFD in its place. */
static int stream__held_flush(struct stream_decoder *d)
{
    if (!d->holding)
        return 0;
    d->holding = false;
    char r[4];
    memcpy(r, stream_replacement, 3);
    r[3] = '\0';
    return stream__text_step(d, r, 3);
}

/* Text as decoded (len bytes, NUL-ended), surrogate halves joined. */
static int stream__text_emit(struct stream_decoder *d, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    const unsigned char *in = (const unsigned char *)text;
    if (!d->holding && memchr(in, 0xED, len) == NULL)
        return stream__text_step(d, text, len);
    /* Out: at most 3 bytes more than in (a held half turned into U+FFFD). */
    unsigned char *out = malloc(len + 4);
    if (out == NULL)
        return HB_ENOMEM;
    size_t n = 0;
    size_t i = 0;
    if (d->holding) {
        d->holding = false;
        if (stream__is_surrogate(in, len, false)) {
            stream__join(d->held, in, out);
            n = 4;
            i = 3;
        } else {
            memcpy(out, stream_replacement, 3);
            n = 3;
        }
    }
    while (i < len) {
        if (stream__is_surrogate(in + i, len - i, true) &&
            stream__is_surrogate(in + i + 3, len - i - 3, false)) {
            stream__join(in + i, in + i + 3, out + n);
            n += 4;
            i += 6;
        } else if (stream__is_surrogate(in + i, len - i, true) && i + 3 == len) {
            memcpy(d->held, in + i, 3);
            d->holding = true;
            i += 3;
        } else if (stream__is_surrogate(in + i, len - i, true) ||
                   stream__is_surrogate(in + i, len - i, false)) {
            memcpy(out + n, stream_replacement, 3);
            n += 3;
            i += 3;
        } else {
            out[n++] = in[i++];
        }
    }
    out[n] = '\0';
    int rc = stream__text_step(d, (const char *)out, n);
    free(out);
    return rc;
}

static int stream_text_emit(struct stream_decoder *d, const cJSON *text)
{
    if (!cJSON_IsString(text))
        return 0;
    return stream__text_emit(d, text->valuestring, strlen(text->valuestring));
}

static int stream_finish_emit(struct stream_decoder *d, const char *reason)
{
    int rc = stream__held_flush(d);
    if (rc != 0)
        return rc;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_FINISH);
    step.finish_reason = reason;
    d->finished = true;
    return stream_step_emit(d, &step);
}

static int stream_done_emit(struct stream_decoder *d)
{
    int rc = stream__held_flush(d);
    if (rc != 0)
        return rc;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_DONE);
    d->done = true;
    return stream_step_emit(d, &step);
}

static long stream_token_count(const cJSON *obj, const char *name)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > 1e15)
        return -1;
    return (long)n->valuedouble;
}

/* Emit a usage step from a usage object under either protocol's names;
 * nothing when neither count is present. */
static int stream_usage_emit(struct stream_decoder *d, const cJSON *usage, const char *in_name,
                             const char *out_name)
{
    if (!cJSON_IsObject(usage))
        return 0;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_USAGE);
    step.input_tokens = stream_token_count(usage, in_name);
    step.output_tokens = stream_token_count(usage, out_name);
    if (step.input_tokens < 0 && step.output_tokens < 0)
        return 0;
    return stream_step_emit(d, &step);
}

/* Deliver a remote error and make the decoder fail with HB_EHTTP. `error`
 * is the error object ({"type", "message"} or OpenAI's {"message", "type",
 * "code"}); it may be a bare string from a lax server. */
static int stream_remote_error(struct stream_decoder *d, const cJSON *error)
{
    const char *type = "";
    const char *code = "";
    const char *message = "";
    if (cJSON_IsString(error)) {
        message = error->valuestring;
    } else if (cJSON_IsObject(error)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(error, "type");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(error, "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(error, "message");
        if (cJSON_IsString(t))
            type = t->valuestring;
        if (cJSON_IsString(c))
            code = c->valuestring;
        if (cJSON_IsString(m))
            message = m->valuestring;
    }
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_ERROR);
    /* Without a type the code stands in, as before codes were passed on. */
    step.error_type = type[0] != '\0' ? type : code;
    step.error_code = code;
    step.error_message = message;
    stream_error_set(d, "remote error in stream: %s%s%s %s",
                     step.error_type[0] ? step.error_type : "(no type)",
                     code[0] && type[0] ? "/" : "", type[0] ? code : "", message);
    int rc = stream_step_emit(d, &step);
    return rc != 0 ? rc : HB_EHTTP;
}

/* ---- OpenAI-compatible chat completions ------------------------------- */

static int stream_openai_chunk(struct stream_decoder *d, const cJSON *root)
{
    int rc = 0;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (error != NULL && !cJSON_IsNull(error))
        return stream_remote_error(d, error);

    /* Ollama and others put usage next to the last delta, so the order is
     * text, finish, usage within one chunk. */
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *choice = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (choices != NULL && !cJSON_IsArray(choices) && !cJSON_IsNull(choices)) {
        stream_error_set(d, "chunk has a non-array choices");
        return HB_EPROTO;
    }
    if (cJSON_IsObject(choice)) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        if (cJSON_IsObject(delta)) {
            rc = stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(delta, "content"));
            if (rc != 0)
                return rc;
        }
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (cJSON_IsString(reason) && reason->valuestring[0] != '\0') {
            rc = stream_finish_emit(d, reason->valuestring);
            if (rc != 0)
                return rc;
        }
    }
    return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(root, "usage"), "prompt_tokens",
                             "completion_tokens");
}

/* ---- OpenAI's text chunk, read in place ---------------------------------
 *
 * Nearly every event of a stream is one chunk of text: {"id":..,"choices":
 * [{"index":0,"delta":{"content":".."},"finish_reason":null}]}. A cJSON tree
 * of it costs a dozen nodes, each with its key and string copied, to read
 * one string: per token of every answer. This path reads the chunk where it
 * lies. It checks all of it as strictly as RFC 8259 (base/json_scan.h),
 * reads choices[0].delta.content, finish_reason and usage, and emits the
 * same steps in the same order as the tree. What it cannot read with
 * certainty goes to the tree, which decides as before: an error member, a
 * key written with escapes, a member met twice, more than one choice, text
 * with a lone surrogate escape or U+0000, counts that are not plain whole
 * numbers, and anything that is not strict JSON. */

/* The end of json (len bytes) without the JSON space after its value. */
static const char *stream__trimmed_end(const char *json, size_t len)
{
    const char *end = json + len;
    while (end > json && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        end--;
    return end;
}

static bool stream__fast_null(const struct json_member *m)
{
    return m->v == NULL || (m->len == 4 && memcmp(m->v, "null", 4) == 0);
}

/* The members of the object [obj, end) named names[0..n) into vals (the
 * raw values, unchecked); every other member's value checked. False when
 * the object needs the tree. */
static bool stream__fast_members(const char *obj, const char *end, const char *const *names,
                                 size_t n, struct json_member *vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = (struct json_member){0};
    const char *p = json_scan_open(obj, end);
    if (p == NULL)
        return false;
    for (;;) {
        const char *key, *v, *vend;
        size_t klen;
        int rc = json_scan_next(&p, end, &key, &klen, &v, &vend);
        if (rc == 0)
            return p == end;
        if (rc < 0 || memchr(key, '\\', klen) != NULL ||
            json_scan_string(key - 1, klen + 2, NULL, NULL) != 0)
            return false;
        size_t i = 0;
        while (i < n && !json_scan_key(key, klen, names[i]))
            i++;
        if (i < n && vals[i].v != NULL)
            return false; /* met twice: the tree reads the first */
        if (i < n)
            vals[i] = (struct json_member){.v = v, .len = (size_t)(vend - v)};
        else if (!json_scan_valid(v, (size_t)(vend - v)))
            return false;
    }
}

/* A string member (or any other checked value): the raw string in *str,
 * or NULL. False when it needs the tree. */
static bool stream__fast_string(const struct json_member *m, struct json_member *str)
{
    *str = (struct json_member){0};
    if (m->v == NULL)
        return true;
    if (*m->v != '"')
        return json_scan_valid(m->v, m->len);
    if (json_scan_string(m->v, m->len, NULL, NULL) != 0)
        return false;
    *str = *m;
    return true;
}

/* A token count: -1 for null or any non-number, as the tree reads them; -2
 * for a number only the tree reads exactly. */
static long stream__fast_count(const struct json_member *m)
{
    if (m->v == NULL)
        return -1;
    if (!json_scan_literal(m->v, m->len))
        return -2;
    if (*m->v == '-')
        return -2;
    if (*m->v < '0' || *m->v > '9')
        return -1; /* true, false, null */
    if (m->len > 15)
        return -2;
    for (size_t i = 0; i < m->len; i++)
        if (m->v[i] == '.' || m->v[i] == 'e' || m->v[i] == 'E')
            return -2;
    return (long)json_scan_int(m->v, m->v + m->len);
}

/* What a chunk holds, read without a tree. */
struct stream_fast {
    struct json_member content, reason; /* raw strings, or v NULL */
    bool usage;
    long in_tokens, out_tokens;
};

static bool stream__fast_choice(const char *c, size_t clen, struct stream_fast *f)
{
    if (*c != '{')
        return json_scan_valid(c, clen); /* not an object: no text */
    static const char *const names[] = {"delta", "finish_reason"};
    struct json_member m[2], content[1];
    if (!stream__fast_members(c, c + clen, names, 2, m) || !stream__fast_string(&m[1], &f->reason))
        return false;
    if (m[0].v == NULL || *m[0].v != '{')
        return m[0].v == NULL || json_scan_valid(m[0].v, m[0].len);
    static const char *const dnames[] = {"content"};
    return stream__fast_members(m[0].v, m[0].v + m[0].len, dnames, 1, content) &&
           stream__fast_string(&content[0], &f->content);
}

static bool stream__fast_read(const char *json, size_t len, struct stream_fast *f)
{
    const char *end = stream__trimmed_end(json, len);
    static const char *const names[] = {"error", "choices", "usage"};
    struct json_member m[3];
    if (!stream__fast_members(json, end, names, 3, m) || !stream__fast_null(&m[0]))
        return false;
    if (!stream__fast_null(&m[1])) {
        const char *c;
        size_t clen;
        if (*m[1].v != '[')
            return false; /* the tree says what is wrong */
        int rc = json_scan_only(m[1].v, m[1].len, &c, &clen);
        if (rc == 0 && !stream__fast_choice(c, clen, f))
            return false;
        if (rc < 0 && rc != HB_ENOTFOUND)
            return false;
    }
    if (m[2].v != NULL && *m[2].v == '{') {
        static const char *const unames[] = {"prompt_tokens", "completion_tokens"};
        struct json_member u[2];
        if (!stream__fast_members(m[2].v, m[2].v + m[2].len, unames, 2, u))
            return false;
        f->usage = true;
        f->in_tokens = stream__fast_count(&u[0]);
        f->out_tokens = stream__fast_count(&u[1]);
        return f->in_tokens != -2 && f->out_tokens != -2;
    }
    return m[2].v == NULL || json_scan_valid(m[2].v, m[2].len);
}

/* A raw string (checked) decoded into small when it fits, else into a
 * buffer of its own (free it when it is not small); NULL when out of
 * memory. */
static char *stream__fast_decode(const struct json_member *raw, char *small, size_t cap, size_t *n)
{
    char *out = raw->len <= cap ? small : malloc(raw->len);
    if (out != NULL)
        (void)json_scan_string(raw->v, raw->len, out, n);
    return out;
}

/* The text of a raw string, as a step. */
static int stream__fast_text(struct stream_decoder *d, const struct json_member *raw)
{
    char small[256];
    size_t n = 0;
    char *text = stream__fast_decode(raw, small, sizeof(small), &n);
    if (text == NULL)
        return HB_ENOMEM;
    int rc = stream__text_emit(d, text, n);
    if (text != small)
        free(text);
    return rc;
}

/* The chunk's steps, as stream_openai_chunk emits them from the tree; *tree
 * set (and nothing emitted) when the chunk needs the tree. */
static int stream_openai_fast(struct stream_decoder *d, const char *json, size_t len, bool *tree)
{
    struct stream_fast f = {.in_tokens = -1, .out_tokens = -1};
    *tree = !stream__fast_read(json, len, &f);
    if (*tree)
        return 0;
    int rc = 0;
    if (f.content.v != NULL && (rc = stream__fast_text(d, &f.content)) != 0)
        return rc;
    if (f.reason.v != NULL && f.reason.len > 2) {
        char small[256];
        size_t n = 0;
        char *r = stream__fast_decode(&f.reason, small, sizeof(small), &n);
        if (r == NULL)
            return HB_ENOMEM;
        rc = stream_finish_emit(d, r);
        if (r != small)
            free(r);
        if (rc != 0)
            return rc;
    }
    if (!f.usage || (f.in_tokens < 0 && f.out_tokens < 0))
        return 0;
    struct stream_step step;
    stream_step_init(&step, STREAM_STEP_USAGE);
    step.input_tokens = f.in_tokens;
    step.output_tokens = f.out_tokens;
    return stream_step_emit(d, &step);
}

/* Anthropic's text event, read in place as OpenAI's chunk is: every token
 * of an answer is a content_block_delta {"type":"content_block_delta",
 * "index":0,"delta":{"type":"text_delta","text":".."}}. The same rules
 * send what the read is not sure of to the tree. */
static int stream_anthropic_fast(struct stream_decoder *d, const char *json, size_t len, bool *tree)
{
    const char *end = stream__trimmed_end(json, len);
    static const char *const names[] = {"delta"};
    static const char *const dnames[] = {"type", "text"};
    struct json_member m[1], dm[2] = {{0}}, type = {0}, text = {0};
    *tree = true;
    if (!stream__fast_members(json, end, names, 1, m))
        return 0;
    if (m[0].v != NULL && *m[0].v == '{') {
        if (!stream__fast_members(m[0].v, m[0].v + m[0].len, dnames, 2, dm) ||
            !stream__fast_string(&dm[0], &type) || !stream__fast_string(&dm[1], &text))
            return 0;
    } else if (m[0].v != NULL && !json_scan_valid(m[0].v, m[0].len)) {
        return 0;
    }
    *tree = false;
    char small[32];
    size_t n = 0;
    char *t = type.v != NULL ? stream__fast_decode(&type, small, sizeof(small), &n) : NULL;
    bool text_delta = t != NULL && strcmp(t, "text_delta") == 0 && n == strlen(t);
    if (t != small)
        free(t);
    if (type.v != NULL && t == NULL)
        return HB_ENOMEM;
    return text_delta && text.v != NULL ? stream__fast_text(d, &text) : 0;
}

/* ---- Anthropic Messages ----------------------------------------------- */

static int stream_anthropic_event(struct stream_decoder *d, const char *type, const cJSON *root)
{
    int rc = 0;
    if (strcmp(type, "ping") == 0 || strcmp(type, "content_block_stop") == 0)
        return 0;
    if (strcmp(type, "error") == 0)
        return stream_remote_error(d, cJSON_GetObjectItemCaseSensitive(root, "error"));
    if (strcmp(type, "message_start") == 0) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
        return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(msg, "usage"), "input_tokens",
                                 "output_tokens");
    }
    if (strcmp(type, "content_block_start") == 0) {
        const cJSON *block = cJSON_GetObjectItemCaseSensitive(root, "content_block");
        const cJSON *btype = cJSON_GetObjectItemCaseSensitive(block, "type");
        if (cJSON_IsString(btype) && strcmp(btype->valuestring, "text") == 0)
            return stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(block, "text"));
        return 0;
    }
    if (strcmp(type, "content_block_delta") == 0) {
        /* thinking_delta, input_json_delta and signature_delta are not
         * part of the answer text. */
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(delta, "type");
        if (cJSON_IsString(dtype) && strcmp(dtype->valuestring, "text_delta") == 0)
            return stream_text_emit(d, cJSON_GetObjectItemCaseSensitive(delta, "text"));
        return 0;
    }
    if (strcmp(type, "message_delta") == 0) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(delta, "stop_reason");
        if (cJSON_IsString(reason) && reason->valuestring[0] != '\0') {
            rc = stream_finish_emit(d, reason->valuestring);
            if (rc != 0)
                return rc;
        }
        return stream_usage_emit(d, cJSON_GetObjectItemCaseSensitive(root, "usage"), "input_tokens",
                                 "output_tokens");
    }
    if (strcmp(type, "message_stop") == 0)
        return stream_done_emit(d);
    return 0; /* new event types may appear; the API asks clients to skip them */
}

/* ---- Shared ------------------------------------------------------------ */

static int stream_sse_event(const struct sse_event *ev, void *data)
{
    struct stream_decoder *d = data;
    int rc = 0;
    cJSON *root = NULL;

    d->events++;
    if (d->done)
        goto out;
    if (d->proto == STREAM_PROTOCOL_OPENAI && strcmp(ev->data, "[DONE]") == 0) {
        rc = stream_done_emit(d);
        goto out;
    }
    if (!d->tree_only &&
        (d->proto == STREAM_PROTOCOL_OPENAI || strcmp(ev->type, "content_block_delta") == 0)) {
        bool tree = false;
        rc = d->proto == STREAM_PROTOCOL_OPENAI
                 ? stream_openai_fast(d, ev->data, ev->data_len, &tree)
                 : stream_anthropic_fast(d, ev->data, ev->data_len, &tree);
        if (!tree)
            goto out;
    }
    bool rewritten = false;
    size_t json_len = ev->data_len;
    char *json = stream__surrogates_rewrite(ev->data, ev->data_len, &json_len, &rewritten);
    if (json == NULL && rewritten) {
        rc = HB_ENOMEM;
        goto out;
    }
    d->trees++;
    root = cJSON_ParseWithLength(json != NULL ? json : ev->data, json_len);
    free(json);
    if (root == NULL && strcmp(ev->type, "error") == 0) {
        /* Some servers send `event: error` with a plain text message. */
        cJSON *msg = cJSON_CreateString(ev->data);
        if (msg == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
        rc = stream_remote_error(d, msg);
        cJSON_Delete(msg);
        goto out;
    }
    if (root == NULL) {
        stream_error_set(d, "malformed JSON in event %zu (type %s)", d->events, ev->type);
        rc = HB_EPROTO;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        stream_error_set(d, "event %zu (type %s) is not a JSON object", d->events, ev->type);
        rc = HB_EPROTO;
        goto out;
    }
    if (d->proto == STREAM_PROTOCOL_OPENAI) {
        rc = stream_openai_chunk(d, root);
    } else {
        /* The SSE event name is authoritative; a proxy that drops it still
         * leaves the type inside the JSON. */
        const char *type = ev->type;
        const cJSON *jtype = cJSON_GetObjectItemCaseSensitive(root, "type");
        if (strcmp(type, "message") == 0 && cJSON_IsString(jtype))
            type = jtype->valuestring;
        rc = stream_anthropic_event(d, type, root);
    }
out:
    cJSON_Delete(root);
    return rc;
}

struct stream_decoder *stream_decoder_new(enum stream_protocol proto, size_t max_event,
                                          stream_step_cb cb, void *data)
{
    struct stream_decoder *d = NULL;
    if (proto != STREAM_PROTOCOL_OPENAI && proto != STREAM_PROTOCOL_ANTHROPIC)
        goto fail;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        goto fail;
    d->proto = proto;
    d->cb = cb;
    d->cb_data = data;
    d->sse = sse_parser_new(max_event, stream_sse_event, d);
    if (d->sse == NULL)
        goto fail;
    return d;
fail:
    free(d);
    return NULL;
}

void stream_decoder_free(struct stream_decoder *d)
{
    if (d == NULL)
        return;
    sse_parser_free(d->sse);
    free(d);
}

int stream_decoder_feed(struct stream_decoder *d, const char *buf, size_t len)
{
    if (d->rc != 0)
        return d->rc;
    int rc = sse_parser_feed(d->sse, buf, len);
    if (rc == HB_EOVERFLOW)
        stream_error_set(d, "an event exceeds the size limit");
    else if (rc == HB_ENOMEM)
        stream_error_set(d, "out of memory");
    else if (rc != 0 && d->error[0] == '\0')
        stream_error_set(d, "stopped by the caller");
    d->rc = rc;
    return rc;
}

int stream_decoder_finish(struct stream_decoder *d)
{
    bool truncated = false;
    int rc = sse_parser_finish(d->sse, &truncated);
    if (d->rc != 0)
        return d->rc;
    if (rc != 0)
        goto out;
    if (!d->finished) {
        stream_error_set(d, "stream ended without a finish reason%s",
                         truncated ? " (cut inside an event)" : "");
        rc = HB_EPROTO;
    }
out:
    d->rc = rc;
    return rc;
}

const char *stream_decoder_error(const struct stream_decoder *d)
{
    return d->error;
}

void stream_decoder_tree_only(struct stream_decoder *d, bool on)
{
    d->tree_only = on;
}

size_t stream_decoder_trees(const struct stream_decoder *d)
{
    return d->trees;
}
