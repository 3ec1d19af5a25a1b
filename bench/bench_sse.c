/* Decoding speed of a long OpenAI-compatible stream: SSE parsing plus the
 * read of each chunk, fed in 4 KiB reads as a socket would deliver it.
 * Figures: chunks read in place (as shipped), beside every chunk parsed as
 * a cJSON tree (as before the in-place read); medians of three turns. */
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
static double bench_sse_run(const char *body, size_t len, size_t chunks, bool tree_only)
{
    struct bench_sse_count count = {0};
    struct stream_decoder *d =
        stream_decoder_new(STREAM_PROTOCOL_OPENAI, 0, bench_sse_step, &count);
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

int bench_sse(void)
{
    const size_t chunks = 200000;
    const char *chunk =
        "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\","
        "\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\" token\"},\"logprobs\":null,"
        "\"finish_reason\":null}]}\n\n";
    const char *tail = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                       "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":200000}}\n\n"
                       "data: [DONE]\n\n";
    size_t clen = strlen(chunk);
    size_t len = clen * chunks + strlen(tail);
    char *body = malloc(len + 1);
    if (body == NULL)
        return -1;
    for (size_t i = 0; i < chunks; i++)
        memcpy(body + i * clen, chunk, clen);
    strcpy(body + clen * chunks, tail);

    /* In place and as a tree take turns BENCH_SSE_RUNS times; medians. */
    double fast[BENCH_SSE_RUNS], tree[BENCH_SSE_RUNS];
    for (int r = 0; r < BENCH_SSE_RUNS * 2; r++) {
        double dt = bench_sse_run(body, len, chunks, r % 2 == 1);
        if (dt <= 0) {
            free(body);
            return -1;
        }
        (r % 2 == 1 ? tree : fast)[r / 2] = dt;
    }
    free(body);
    double dt = bench_median3(fast);
    bench_report("sse_openai_tree_chunks_per_sec", (double)chunks / bench_median3(tree),
                 "chunks/s");
    bench_report("sse_openai_chunks_per_sec", (double)chunks / dt, "chunks/s");
    bench_report("sse_openai_mib_per_sec", (double)len / dt / (1024.0 * 1024.0), "MiB/s");
    return 0;
}
