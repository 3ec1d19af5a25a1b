/* Request bodies of the metered API read into plain values, apart from any
 * request or reply, so that the rules are in one place and a fuzz target
 * can run them (tests/fuzz/fuzz_api_body.c). See bot/api_internal.h. */
#include "bot/api_internal.h"

#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message's content: a string, or an array of text parts joined. Heap,
 * or NULL when it is neither. */
static char *api__content(const cJSON *content)
{
    if (cJSON_IsString(content))
        return strdup(content->valuestring);
    if (!cJSON_IsArray(content))
        return NULL;
    size_t len = 0;
    char *out = strdup("");
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 ||
            !cJSON_IsString(text) || out == NULL) {
            free(out);
            return NULL;
        }
        size_t n = strlen(text->valuestring);
        char *grown = realloc(out, len + n + 1);
        if (grown == NULL) {
            free(out);
            return NULL;
        }
        out = grown;
        memcpy(out + len, text->valuestring, n + 1);
        len += n;
    }
    return out;
}

bool api_int_field(const cJSON *body, const char *name, int64_t max, int64_t *out, char *why,
                   size_t wcap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (double)max ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        snprintf(why, wcap, "%s must be an integer from 1 to %lld.", name, (long long)max);
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

void api_chat_body_init(struct api_chat_body *b)
{
    memset(b, 0, sizeof(*b));
    b->n_choices = 1;
}

void api_chat_body_clear(struct api_chat_body *b)
{
    for (size_t j = 0; j < b->n; j++)
        free(b->texts[j]);
    free(b->system);
    api_chat_body_init(b);
}

/* Fail: the field named and why (the 400's param and message). */
static int api__bad(char *param, size_t pcap, char *why, size_t wcap, const char *field,
                    const char *text)
{
    snprintf(param, pcap, "%s", field);
    snprintf(why, wcap, "%s", text);
    return HB_EINVAL;
}

int api_chat_body_parse(const cJSON *body, struct api_chat_body *b, char *param, size_t pcap,
                        char *why, size_t wcap)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0 ||
        cJSON_GetArraySize(messages) > API_MESSAGES_MAX) {
        char text[96];
        snprintf(text, sizeof(text), "messages must be an array of 1 to %d messages.",
                 API_MESSAGES_MAX);
        return api__bad(param, pcap, why, wcap, "messages", text);
    }
    const cJSON *msg;
    size_t i = 0;
    cJSON_ArrayForEach(msg, messages)
    {
        char field[48];
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        bool system = strcmp(r, "system") == 0 || strcmp(r, "developer") == 0;
        if (!system && strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0) {
            snprintf(field, sizeof(field), "messages[%zu].role", i);
            return api__bad(param, pcap, why, wcap, field,
                            "A message's role is system, developer, user or assistant.");
        }
        char *text = api__content(cJSON_GetObjectItemCaseSensitive(msg, "content"));
        if (text == NULL) {
            snprintf(field, sizeof(field), "messages[%zu].content", i);
            return api__bad(param, pcap, why, wcap, field,
                            "A message's content is a string or an array of text parts.");
        }
        if (system) {
            size_t tl = strlen(text);
            char *grown = realloc(b->system, b->system_len + tl + 2);
            if (grown != NULL) {
                b->system = grown;
                if (b->system_len > 0)
                    b->system[b->system_len++] = '\n';
                memcpy(b->system + b->system_len, text, tl + 1);
                b->system_len += tl;
            }
            free(text);
        } else {
            b->msgs[b->n].role = strcmp(r, "assistant") == 0 ? "assistant" : "user";
            b->msgs[b->n].content = text;
            b->texts[b->n++] = text;
        }
        i++;
    }
    if (b->n == 0)
        return api__bad(param, pcap, why, wcap, "messages",
                        "messages needs at least one user message.");
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(body, "stream");
    if (stream != NULL && !cJSON_IsBool(stream) && !cJSON_IsNull(stream))
        return api__bad(param, pcap, why, wcap, "stream", "stream must be true or false.");
    b->stream = cJSON_IsTrue(stream);
    static const char *const ints[] = {"max_tokens", "max_completion_tokens", "n"};
    for (size_t f = 0; f < 3; f++) {
        int64_t *out = f < 2 ? &b->max_tokens : &b->n_choices;
        if (!api_int_field(body, ints[f], f < 2 ? INT32_MAX : 1, out, why, wcap)) {
            snprintf(param, pcap, "%s", ints[f]);
            return HB_EINVAL;
        }
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    b->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    return 0;
}
