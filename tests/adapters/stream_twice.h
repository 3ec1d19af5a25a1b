/* One event decoded twice, read in place and as a cJSON tree
 * (adapters/llm/stream.c): an OpenAI-compatible chunk, or Anthropic's
 * content_block_delta, each way's steps written down as text so
 * that the two can be compared. Shared by the stream_fast tests and the
 * fuzz target of the same name. */
#ifndef HB_TESTS_STREAM_TWICE_H
#define HB_TESTS_STREAM_TWICE_H

#include "adapters/llm/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_twice_log {
    char text[16384];
    size_t len;
};

static int stream_twice_step(const struct stream_step *s, void *data)
{
    struct stream_twice_log *log = data;
    size_t room = sizeof(log->text) - log->len;
    int n = 0;
    switch (s->kind) {
    case STREAM_STEP_TEXT:
        n = snprintf(log->text + log->len, room, "T%zu:%.*s|", s->text_len, (int)s->text_len,
                     s->text);
        break;
    case STREAM_STEP_FINISH:
        n = snprintf(log->text + log->len, room, "F:%s|", s->finish_reason);
        break;
    case STREAM_STEP_USAGE:
        n = snprintf(log->text + log->len, room, "U:%ld,%ld|", s->input_tokens, s->output_tokens);
        break;
    case STREAM_STEP_ERROR:
        n = snprintf(log->text + log->len, room, "E:%s/%s/%s|", s->error_type, s->error_code,
                     s->error_message);
        break;
    default:
        n = snprintf(log->text + log->len, room, "K%d|", (int)s->kind);
        break;
    }
    if (n > 0)
        log->len += (size_t)n < room ? (size_t)n : room - 1;
    return 0;
}

/* The SSE text of one event named `name` (NULL: none) whose data is body
 * (len bytes): each line feed starts a data line of its own, as SSE joins
 * them back; carriage returns go (they end lines too). Malloc'd. */
static char *stream_twice_event(const char *name, const char *body, size_t len, size_t *out_len)
{
    size_t nlen = name != NULL ? strlen(name) : 0;
    char *sse = malloc(len * 7 + nlen + 32);
    if (sse == NULL)
        return NULL;
    size_t n = 0;
    if (name != NULL)
        n = (size_t)sprintf(sse, "event: %s\n", name);
    memcpy(sse + n, "data: ", 6);
    n += 6;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r')
            continue;
        if (body[i] == '\n') {
            memcpy(sse + n, "\ndata: ", 7);
            n += 7;
        } else {
            sse[n++] = body[i];
        }
    }
    memcpy(sse + n, "\n\n", 2);
    n += 2;
    *out_len = n;
    return sse;
}

/* Decode the event one way into log; the decoder's rc and error text are
 * written down too. Returns how many trees the decoder parsed, or -1. */
static long stream_twice_one(enum stream_protocol proto, const char *sse, size_t len,
                             bool tree_only, struct stream_twice_log *log)
{
    log->len = 0;
    log->text[0] = '\0';
    struct stream_decoder *d = stream_decoder_new(proto, 65536, stream_twice_step, log);
    if (d == NULL)
        return -1;
    stream_decoder_tree_only(d, tree_only);
    int rc = stream_decoder_feed(d, sse, len);
    size_t room = sizeof(log->text) - log->len;
    int n = snprintf(log->text + log->len, room, "rc=%d:%s", rc,
                     rc != 0 ? stream_decoder_error(d) : "");
    if (n > 0)
        log->len += (size_t)n < room ? (size_t)n : room - 1;
    long trees = (long)stream_decoder_trees(d);
    stream_decoder_free(d);
    return trees;
}

#endif
