/* Decoding speed of a long stream, OpenAI-compatible and Anthropic's: SSE
 * parsing plus the read of each chunk, fed in 4 KiB reads as a socket
 * would deliver it. Figures: chunks read in place (as shipped), beside
 * every chunk parsed as a cJSON tree (as before the in-place read);
 * medians of three turns. */
#include "bench/bench.h"

#include "adapters/llm/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_sse_count {
    size_t texts;
    size_t bytes;
};

static int bench_sse_step(const struct stream_step *step, void *data)
{
    struct bench_sse_count *c = data;
    if (step->kind == STREAM_STEP_TEXT) {
        c->texts++;
        c->bytes += step->text_len;
    }
    return 0;
}

#define BENCH_SSE_RUNS 3

/* One decoding of the whole body in 4 KiB reads: seconds, or -1. */
static double bench_sse_run(enum stream_protocol proto, const char *body, size_t len, size_t chunks,
                            bool tree_only)
{
    struct bench_sse_count count = {0};
    struct stream_decoder *d = stream_decoder_new(proto, 0, bench_sse_step, &count);
    if (d == NULL)
        return -1;
    stream_decoder_tree_only(d, tree_only);
    double t0 = bench_now();
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += 4096)
        rc = stream_decoder_feed(d, body + off, len - off < 4096 ? len - off : 4096);
    if (rc == 0)
        rc = stream_decoder_finish(d);
    double dt = bench_now() - t0;
    stream_decoder_free(d);
    if (rc != 0 || count.texts != chunks) {
        fprintf(stderr, "bench_sse: decoding failed (rc=%d, %zu texts)\n", rc, count.texts);
        return -1;
    }
    return dt;
}

/* A stream of `chunks` copies of chunk, then tail; malloc'd, its length in
 * *len. */
static char *bench_sse_body(const char *chunk, size_t chunks, const char *tail, size_t *len)
{
    size_t clen = strlen(chunk);
    *len = clen * chunks + strlen(tail);
    char *body = malloc(*len + 1);
    if (body == NULL)
        return NULL;
    for (size_t i = 0; i < chunks; i++)
        memcpy(body + i * clen, chunk, clen);
    strcpy(body + clen * chunks, tail);
    return body;
}

/* In place and as trees, taking turns BENCH_SSE_RUNS times: the medians as
 * "<prefix>_chunks_per_sec" and "<prefix>_tree_chunks_per_sec". */
static int bench_sse_both(enum stream_protocol proto, const char *prefix, const char *body,
                          size_t len, size_t chunks)
{
    double fast[BENCH_SSE_RUNS], tree[BENCH_SSE_RUNS];
    for (int r = 0; r < BENCH_SSE_RUNS * 2; r++) {
        double dt = bench_sse_run(proto, body, len, chunks, r % 2 == 1);
        if (dt <= 0)
            return -1;
        (r % 2 == 1 ? tree : fast)[r / 2] = dt;
    }
    char name[96];
    snprintf(name, sizeof(name), "%s_tree_chunks_per_sec", prefix);
    bench_report(name, (double)chunks / bench_median3(tree), "chunks/s");
    snprintf(name, sizeof(name), "%s_chunks_per_sec", prefix);
    bench_report(name, (double)chunks / bench_median3(fast), "chunks/s");
    snprintf(name, sizeof(name), "%s_mib_per_sec", prefix);
    bench_report(name, (double)len / bench_median3(fast) / (1024.0 * 1024.0), "MiB/s");
    return 0;
}

int bench_sse(void)
{
    const size_t chunks = 200000;
    size_t len = 0;
    char *body =
        bench_sse_body("data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
                       "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
                       "\"delta\":{\"content\":\" token\"},\"logprobs\":null,"
                       "\"finish_reason\":null}]}\n\n",
                       chunks,
                       "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                       "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":200000}}\n\n"
                       "data: [DONE]\n\n",
                       &len);
    int rc =
        body != NULL ? bench_sse_both(STREAM_PROTOCOL_OPENAI, "sse_openai", body, len, chunks) : -1;
    free(body);
    body =
        bench_sse_body("event: content_block_delta\n"
                       "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"text_delta\",\"text\":\" token\"}}\n\n",
                       chunks,
                       "event: message_delta\n"
                       "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                       "\"usage\":{\"output_tokens\":200000}}\n\n"
                       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                       &len);
    if (rc == 0)
        rc = body != NULL
                 ? bench_sse_both(STREAM_PROTOCOL_ANTHROPIC, "sse_anthropic", body, len, chunks)
                 : -1;
    free(body);
    return rc;
}
