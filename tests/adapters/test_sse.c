#include "tests/test.h"

#include "base/error.h"
#include "adapters/llm/llm.h"
#include "adapters/llm/sse.h"
#include "adapters/llm/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- A transcript of callbacks, so runs can be compared as strings ---- */

struct transcript {
    char *text;
    size_t len;
    FILE *mem;
    int stop_after; /* return 99 from the callback after this many calls; 0: never */
    int calls;
};

static void transcript_open(struct transcript *t)
{
    memset(t, 0, sizeof(*t));
    t->mem = open_memstream(&t->text, &t->len);
    assert_non_null(t->mem);
}

/* Close the stream and return the text (owned by t until transcript_free). */
static const char *transcript_close(struct transcript *t)
{
    fclose(t->mem);
    t->mem = NULL;
    return t->text;
}

static void transcript_free(struct transcript *t)
{
    free(t->text);
}

static int sse_record(const struct sse_event *ev, void *data)
{
    struct transcript *t = data;
    fprintf(t->mem, "%s|%s|", ev->type, ev->id);
    fwrite(ev->data, 1, ev->data_len, t->mem);
    fputs("\n", t->mem);
    assert_int_equal(ev->data[ev->data_len], '\0');
    t->calls++;
    return t->stop_after > 0 && t->calls >= t->stop_after ? 99 : 0;
}

/* The result of one run over a stream: the events, the return code of the
 * first failing feed (or of finish), and the truncation flag. */
struct sse_run {
    char *events;
    int rc;
    bool truncated;
};

/* Feed `len` bytes of `s` split at `cut` (and, when `bytewise`, one byte
 * at a time). */
static struct sse_run sse_run_split(const char *s, size_t len, size_t max_event, size_t cut,
                                    bool bytewise)
{
    struct transcript t;
    transcript_open(&t);
    struct sse_parser *p = sse_parser_new(max_event, sse_record, &t);
    assert_non_null(p);
    int rc = 0;
    if (bytewise) {
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = sse_parser_feed(p, s + i, 1);
    } else {
        rc = sse_parser_feed(p, s, cut);
        if (rc == 0)
            rc = sse_parser_feed(p, s + cut, len - cut);
    }
    bool truncated = false;
    int frc = sse_parser_finish(p, &truncated);
    if (rc == 0)
        rc = frc;
    else
        assert_int_equal(frc, rc); /* finish reports the sticky failure */
    sse_parser_free(p);
    struct sse_run run = {.events = strdup(transcript_close(&t)), .rc = rc, .truncated = truncated};
    transcript_free(&t);
    return run;
}

/* Every split point and the byte-by-byte feed give the same result. */
static struct sse_run sse_run_all(const char *s, size_t len, size_t max_event)
{
    struct sse_run whole = sse_run_split(s, len, max_event, len, false);
    for (size_t cut = 0; cut <= len; cut++) {
        struct sse_run r = sse_run_split(s, len, max_event, cut, false);
        assert_string_equal(r.events, whole.events);
        assert_int_equal(r.rc, whole.rc);
        /* After a failure, how much was pending depends on the split. */
        if (whole.rc == 0)
            assert_int_equal(r.truncated, whole.truncated);
        free(r.events);
    }
    struct sse_run r = sse_run_split(s, len, max_event, 0, true);
    assert_string_equal(r.events, whole.events);
    assert_int_equal(r.rc, whole.rc);
    if (whole.rc == 0)
        assert_int_equal(r.truncated, whole.truncated);
    free(r.events);
    return whole;
}

static const char sse_full_stream[] = "\xEF\xBB\xBF"
                                      ": a comment line\n"
                                      "data: hello\n"
                                      "\n"
                                      "event: greet\r\n"
                                      "data: line1\r\n"
                                      "data:line2\r\n"
                                      "id: 7\r\n"
                                      "\r\n"
                                      "data:  two spaces\r"
                                      "\r"
                                      "data\n"
                                      "\n"
                                      "event: lonely\n"
                                      "\n"
                                      "data: after lonely\n"
                                      "\n"
                                      "id\n"
                                      "data: no id\n"
                                      "\n"
                                      "retry: 2500\n"
                                      "retry: 12x\n"
                                      "unknown: field\n"
                                      "data: \xC3\xA9 \xC3\xBC \xE6\x97\xA5\xE6\x9C\xAC\n"
                                      "\n"
                                      "id: a\0b\n"
                                      "data: colon: inside\n"
                                      "\n"
                                      "data: trailing partial";

static const char sse_full_expected[] = "message||hello\n"
                                        "greet|7|line1\nline2\n"
                                        "message|7| two spaces\n"
                                        "message|7|\n"
                                        "message|7|after lonely\n"
                                        "message||no id\n"
                                        "message||\xC3\xA9 \xC3\xBC \xE6\x97\xA5\xE6\x9C\xAC\n"
                                        "message||colon: inside\n";

static void test_sse_rules_every_split(void **state)
{
    (void)state;
    struct sse_run r = sse_run_all(sse_full_stream, sizeof(sse_full_stream) - 1, 0);
    assert_string_equal(r.events, sse_full_expected);
    assert_int_equal(r.rc, 0);
    assert_true(r.truncated); /* "data: trailing partial" was discarded */
    free(r.events);
}

static void test_sse_retry(void **state)
{
    (void)state;
    struct sse_parser *p = sse_parser_new(0, NULL, NULL);
    assert_non_null(p);
    assert_int_equal(sse_parser_retry_ms(p), -1);
    const char *s = "retry: 2500\nretry: 12x\nretry:\n\n";
    assert_int_equal(sse_parser_feed(p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_retry_ms(p), 2500);
    bool truncated = true;
    assert_int_equal(sse_parser_finish(p, &truncated), 0);
    assert_false(truncated);
    sse_parser_free(p);
}

static void test_sse_complete_stream_not_truncated(void **state)
{
    (void)state;
    const char s[] = "data: a\n\ndata: b\r\n\r\n: trailing comment\n";
    struct sse_run r = sse_run_all(s, sizeof(s) - 1, 0);
    assert_string_equal(r.events, "message||a\nmessage||b\n");
    assert_int_equal(r.rc, 0);
    assert_false(r.truncated);
    free(r.events);

    /* A stream cut after a data line, but before its blank line. */
    const char cut[] = "data: a\n\ndata: b\n";
    r = sse_run_all(cut, sizeof(cut) - 1, 0);
    assert_string_equal(r.events, "message||a\n");
    assert_true(r.truncated);
    free(r.events);

    /* Ending on a lone CR completes the line but not the event. */
    const char cr[] = "data: a\r\rdata: b\r";
    r = sse_run_all(cr, sizeof(cr) - 1, 0);
    assert_string_equal(r.events, "message||a\n");
    assert_true(r.truncated);
    free(r.events);
}

static void test_sse_bom_only_at_start(void **state)
{
    (void)state;
    /* A second BOM is part of the field name, so that line is ignored. */
    const char s[] = "\xEF\xBB\xBF"
                     "data: x\n\n\xEF\xBB\xBF"
                     "data: y\n\n";
    struct sse_run r = sse_run_all(s, sizeof(s) - 1, 0);
    assert_string_equal(r.events, "message||x\n");
    free(r.events);

    /* Bytes that start like a BOM and are not one are kept. */
    const char fake[] = "\xEF\xBB: no\n\xEF\n\ndata: ok\n\n";
    r = sse_run_all(fake, sizeof(fake) - 1, 0);
    assert_string_equal(r.events, "message||ok\n");
    assert_false(r.truncated);
    free(r.events);

    const char held[] = "\xEF\xBB";
    r = sse_run_all(held, sizeof(held) - 1, 0);
    assert_string_equal(r.events, "");
    assert_true(r.truncated);
    free(r.events);
}

static void test_sse_max_event(void **state)
{
    (void)state;
    /* Many short data lines: the pending data outgrows the bound. */
    char s[256] = "data: ok\n\n";
    for (int i = 0; i < 10; i++)
        strcat(s, "data: 0123456789\n");
    strcat(s, "\n");
    struct sse_run r = sse_run_all(s, strlen(s), 64);
    assert_string_equal(r.events, "message||ok\n");
    assert_int_equal(r.rc, HB_EOVERFLOW);
    free(r.events);

    /* One endless line without a newline. */
    char line[200];
    memset(line, 'a', sizeof(line));
    memcpy(line, "data: ", 6);
    r = sse_run_all(line, sizeof(line), 64);
    assert_string_equal(r.events, "");
    assert_int_equal(r.rc, HB_EOVERFLOW);
    free(r.events);

    /* Exactly at the bound is fine: line "data: " + 58 bytes = 64. */
    char fit[80] = "data: ";
    memset(fit + 6, 'b', 58);
    strcpy(fit + 64, "\n\n");
    r = sse_run_all(fit, strlen(fit), 64);
    assert_int_equal(r.rc, 0);
    assert_int_equal(strlen(r.events), strlen("message||") + 58 + 1);
    free(r.events);
}

static void test_sse_sticky_and_reset(void **state)
{
    (void)state;
    struct transcript t;
    transcript_open(&t);
    t.stop_after = 1;
    struct sse_parser *p = sse_parser_new(0, sse_record, &t);
    assert_non_null(p);
    const char *s = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(sse_parser_feed(p, s, strlen(s)), 99);
    assert_int_equal(sse_parser_feed(p, s, strlen(s)), 99); /* sticky */
    assert_int_equal(sse_parser_finish(p, NULL), 99);
    /* finish resets the parser for a new stream; the last id survives. */
    t.stop_after = 0;
    s = "id: 5\ndata: 3\n\n";
    assert_int_equal(sse_parser_feed(p, s, strlen(s)), 0);
    assert_int_equal(sse_parser_finish(p, NULL), 0);
    s = "data: 4\n\n";
    assert_int_equal(sse_parser_feed(p, s, strlen(s)), 0);
    sse_parser_free(p);
    sse_parser_free(NULL);
    assert_string_equal(transcript_close(&t), "message||1\nmessage|5|3\nmessage|5|4\n");
    transcript_free(&t);
}

/* ---- Decoders ----------------------------------------------------------- */

static int step_record(const struct stream_step *step, void *data)
{
    struct transcript *t = data;
    switch (step->kind) {
    case STREAM_STEP_TEXT:
        assert_int_equal(strlen(step->text), step->text_len);
        fprintf(t->mem, "T:%s\n", step->text);
        break;
    case STREAM_STEP_FINISH:
        fprintf(t->mem, "F:%s\n", step->finish_reason);
        break;
    case STREAM_STEP_USAGE:
        fprintf(t->mem, "U:%ld,%ld\n", step->input_tokens, step->output_tokens);
        break;
    case STREAM_STEP_DONE:
        fprintf(t->mem, "D\n");
        break;
    case STREAM_STEP_ERROR:
        fprintf(t->mem, "E:%s|%s\n", step->error_type, step->error_message);
        break;
    }
    t->calls++;
    return t->stop_after > 0 && t->calls >= t->stop_after ? 99 : 0;
}

struct decode_run {
    char *steps;
    int feed_rc;
    int finish_rc;
    char error[256];
};

static struct decode_run decode_split(enum stream_protocol proto, const char *s, size_t len,
                                      size_t cut, bool bytewise, int stop_after)
{
    struct transcript t;
    transcript_open(&t);
    t.stop_after = stop_after;
    struct stream_decoder *d = stream_decoder_new(proto, 4096, step_record, &t);
    assert_non_null(d);
    int rc = 0;
    if (bytewise) {
        for (size_t i = 0; i < len && rc == 0; i++)
            rc = stream_decoder_feed(d, s + i, 1);
    } else {
        rc = stream_decoder_feed(d, s, cut);
        if (rc == 0)
            rc = stream_decoder_feed(d, s + cut, len - cut);
    }
    struct decode_run run = {.feed_rc = rc};
    run.finish_rc = stream_decoder_finish(d);
    snprintf(run.error, sizeof(run.error), "%s", stream_decoder_error(d));
    stream_decoder_free(d);
    run.steps = strdup(transcript_close(&t));
    transcript_free(&t);
    return run;
}

/* Decode at every split point and byte by byte; all runs must agree. */
static struct decode_run decode_all(enum stream_protocol proto, const char *s)
{
    size_t len = strlen(s);
    struct decode_run whole = decode_split(proto, s, len, len, false, 0);
    for (size_t cut = 0; cut <= len; cut++) {
        struct decode_run r = decode_split(proto, s, len, cut, false, 0);
        assert_string_equal(r.steps, whole.steps);
        assert_int_equal(r.feed_rc, whole.feed_rc);
        assert_int_equal(r.finish_rc, whole.finish_rc);
        assert_string_equal(r.error, whole.error);
        free(r.steps);
    }
    struct decode_run r = decode_split(proto, s, len, 0, true, 0);
    assert_string_equal(r.steps, whole.steps);
    assert_int_equal(r.feed_rc, whole.feed_rc);
    assert_int_equal(r.finish_rc, whole.finish_rc);
    free(r.steps);
    return whole;
}

#define OAI_HEAD                                                                                   \
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"          \
    "\"model\":\"gpt-4o-mini\","

static const char openai_stream[] =
    "data: " OAI_HEAD
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
    "\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\\n\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: " OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
    "\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

static void test_openai_stream(void **state)
{
    (void)state;
    struct decode_run r = decode_all(STREAM_PROTOCOL_OPENAI, openai_stream);
    assert_string_equal(r.steps, "T:Hel\nT:lo \xC3\xA9\n\nF:stop\nU:9,2\nD\n");
    assert_int_equal(r.feed_rc, 0);
    assert_int_equal(r.finish_rc, 0);
    assert_string_equal(r.error, "");
    free(r.steps);
}

static void test_openai_usage_with_null_choices(void **state)
{
    (void)state;
    /* Ollama-style: the last delta carries the finish reason and usage;
     * some servers send usage with "choices": null; events after [DONE]
     * are ignored. */
    const char *s =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n"
        "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
        "data: [DONE]\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n"
        "data: not json after done\n\n";
    struct decode_run r = decode_all(STREAM_PROTOCOL_OPENAI, s);
    assert_string_equal(r.steps, "T:Hi\nF:length\nU:3,1\nU:3,4\nD\n");
    assert_int_equal(r.finish_rc, 0);
    free(r.steps);
}

static void test_openai_error_mid_stream(void **state)
{
    (void)state;
    const char *s = "data: {\"choices\":[{\"delta\":{\"content\":\"Par\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"The server had an error while processing "
                    "your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
                    "data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n";
    struct decode_run r = decode_all(STREAM_PROTOCOL_OPENAI, s);
    assert_string_equal(r.steps, "T:Par\nE:server_error|The server had an error while "
                                 "processing your request.\n");
    assert_int_equal(r.feed_rc, HB_EHTTP);
    assert_int_equal(r.finish_rc, HB_EHTTP);
    assert_non_null(strstr(r.error, "server_error"));
    free(r.steps);

    /* A code instead of a type, and an `event: error` with plain text. */
    r = decode_all(STREAM_PROTOCOL_OPENAI,
                   "data: {\"error\":{\"code\":\"rate_limit\",\"message\":\"slow down\"}}\n\n");
    assert_string_equal(r.steps, "E:rate_limit|slow down\n");
    assert_int_equal(r.feed_rc, HB_EHTTP);
    free(r.steps);
    r = decode_all(STREAM_PROTOCOL_OPENAI, "event: error\ndata: model crashed\n\n");
    assert_string_equal(r.steps, "E:|model crashed\n");
    assert_int_equal(r.finish_rc, HB_EHTTP);
    free(r.steps);
}

static void test_openai_no_finish_reason(void **state)
{
    (void)state;
    /* The connection drops after some text: a failure, not an answer. */
    struct decode_run r = decode_all(STREAM_PROTOCOL_OPENAI,
                                     "data: {\"choices\":[{\"delta\":{\"content\":\"Hal\"}}]}\n\n");
    assert_string_equal(r.steps, "T:Hal\n");
    assert_int_equal(r.feed_rc, 0);
    assert_int_equal(r.finish_rc, HB_EPROTO);
    assert_non_null(strstr(r.error, "without a finish reason"));
    assert_null(strstr(r.error, "cut inside"));
    free(r.steps);

    r = decode_all(STREAM_PROTOCOL_OPENAI,
                   "data: {\"choices\":[{\"delta\":{\"content\":\"Hal\"}}]}\n\ndata: {\"cho");
    assert_int_equal(r.finish_rc, HB_EPROTO);
    assert_non_null(strstr(r.error, "cut inside an event"));
    free(r.steps);

    /* [DONE] without a finish reason is still incomplete. */
    r = decode_all(STREAM_PROTOCOL_OPENAI, "data: [DONE]\n\n");
    assert_string_equal(r.steps, "D\n");
    assert_int_equal(r.finish_rc, HB_EPROTO);
    free(r.steps);

    /* An empty body. */
    r = decode_all(STREAM_PROTOCOL_OPENAI, "");
    assert_string_equal(r.steps, "");
    assert_int_equal(r.finish_rc, HB_EPROTO);
    free(r.steps);
}

static void test_openai_malformed(void **state)
{
    (void)state;
    const char *bad[] = {
        "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}\n\n", /* cut JSON */
        "data: 42\n\n",                                            /* not an object */
        "data: \n\n",                                              /* empty */
        "data: {\"choices\":\"stop\"}\n\n",                        /* wrong shape */
    };
    const char *why[] = {"malformed JSON in event 1", "not a JSON object", "malformed JSON",
                         "non-array choices"};
    for (size_t i = 0; i < TEST_ARRAY_SIZE(bad); i++) {
        struct decode_run r = decode_all(STREAM_PROTOCOL_OPENAI, bad[i]);
        assert_string_equal(r.steps, "");
        assert_int_equal(r.feed_rc, HB_EPROTO);
        assert_int_equal(r.finish_rc, HB_EPROTO);
        assert_non_null(strstr(r.error, why[i]));
        free(r.steps);
    }
}

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"hmm\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"!\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: some_future_event\n"
    "data: {\"type\":\"some_future_event\"}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static void test_anthropic_stream(void **state)
{
    (void)state;
    struct decode_run r = decode_all(STREAM_PROTOCOL_ANTHROPIC, anthropic_stream);
    assert_string_equal(r.steps, "U:25,1\nT:Hello\nT:!\nF:end_turn\nU:-1,15\nD\n");
    assert_int_equal(r.feed_rc, 0);
    assert_int_equal(r.finish_rc, 0);
    free(r.steps);
}

static void test_anthropic_without_event_names(void **state)
{
    (void)state;
    /* A proxy that drops the event lines: the JSON type still says it. */
    const char *s = "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
                    "\"text\":\"ok\"}}\n\n"
                    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},"
                    "\"usage\":{\"input_tokens\":4,\"output_tokens\":8}}\n\n";
    struct decode_run r = decode_all(STREAM_PROTOCOL_ANTHROPIC, s);
    assert_string_equal(r.steps, "T:ok\nF:max_tokens\nU:4,8\n");
    assert_int_equal(r.finish_rc, 0); /* a stop reason without message_stop */
    free(r.steps);
}

static void test_anthropic_error(void **state)
{
    (void)state;
    const char *s = "event: content_block_delta\n"
                    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                    "\"text_delta\",\"text\":\"Par\"}}\n\n"
                    "event: error\n"
                    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                    "\"message\":\"Overloaded\"}}\n\n";
    struct decode_run r = decode_all(STREAM_PROTOCOL_ANTHROPIC, s);
    assert_string_equal(r.steps, "T:Par\nE:overloaded_error|Overloaded\n");
    assert_int_equal(r.feed_rc, HB_EHTTP);
    assert_int_equal(r.finish_rc, HB_EHTTP);
    assert_non_null(strstr(r.error, "overloaded_error"));
    free(r.steps);

    r = decode_all(STREAM_PROTOCOL_ANTHROPIC, "event: message_start\ndata: {\"type\":\n\n");
    assert_int_equal(r.feed_rc, HB_EPROTO);
    assert_non_null(strstr(r.error, "malformed JSON in event 1 (type message_start)"));
    free(r.steps);

    /* Cut before the stop reason. */
    r = decode_all(STREAM_PROTOCOL_ANTHROPIC, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    assert_string_equal(r.steps, "");
    assert_int_equal(r.finish_rc, HB_EPROTO);
    free(r.steps);
}

/* One OpenAI chunk whose delta content is the JSON string text c. */
#define OAI_DELTA(c) "data: {\"choices\":[{\"delta\":{\"content\":\"" c "\"}}]}\n\n"
#define OAI_STOP "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"

static void test_surrogates_split_across_chunks(void **state)
{
    (void)state;
    /* An emoji cut between two chunks as UTF-16 escapes is joined. */
    struct decode_run r =
        decode_all(STREAM_PROTOCOL_OPENAI, OAI_DELTA("hi \\ud83d") OAI_DELTA("\\ude00!") OAI_STOP);
    assert_string_equal(r.steps, "T:hi \nT:\xF0\x9F\x98\x80!\nF:stop\n");
    assert_int_equal(r.feed_rc, 0);
    assert_int_equal(r.finish_rc, 0);
    free(r.steps);

    /* A pair inside one chunk, upper-case hex, as before. */
    r = decode_all(STREAM_PROTOCOL_OPENAI, OAI_DELTA("\\uD83D\\uDE00") OAI_STOP);
    assert_string_equal(r.steps, "T:\xF0\x9F\x98\x80\nF:stop\n");
    free(r.steps);

    /* A high half that nothing completes, a lone low half, and a high half
     * left when the model stops: each becomes U+FFFD, never invalid UTF-8. */
    r = decode_all(STREAM_PROTOCOL_OPENAI,
                   OAI_DELTA("a\\ud83d") OAI_DELTA("b\\ude00c") OAI_DELTA("\\udbff") OAI_STOP);
    assert_string_equal(r.steps, "T:a\nT:\xEF\xBF\xBD"
                                 "b\xEF\xBF\xBD"
                                 "c\n"
                                 "T:\xEF\xBF\xBD\nF:stop\n");
    assert_int_equal(r.finish_rc, 0);
    free(r.steps);

    /* An escaped backslash before "ud83d" is text, not an escape. */
    r = decode_all(STREAM_PROTOCOL_OPENAI, OAI_DELTA("x\\\\ud83d") OAI_STOP);
    assert_string_equal(r.steps, "T:x\\ud83d\nF:stop\n");
    free(r.steps);

    /* Anthropic text deltas are joined the same way. */
    r = decode_all(STREAM_PROTOCOL_ANTHROPIC,
                   "event: content_block_delta\n"
                   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":\"\\ud83d\"}}\n\n"
                   "event: content_block_delta\n"
                   "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":\"\\ude00\"}}\n\n"
                   "event: message_delta\n"
                   "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                   "\"usage\":{\"output_tokens\":2}}\n\n");
    assert_string_equal(r.steps, "T:\xF0\x9F\x98\x80\nF:end_turn\nU:-1,2\n");
    free(r.steps);
}

/* Each class of error, by type and code together. */
static void test_error_classes(void **state)
{
    (void)state;
    /* OpenAI's in-stream rate limit: the type names the limit's unit. */
    struct decode_run r = decode_all(
        STREAM_PROTOCOL_OPENAI, "data: {\"error\":{\"type\":\"requests\",\"code\":"
                                "\"rate_limit_exceeded\",\"message\":\"Rate limit reached\"}}\n\n");
    assert_string_equal(r.steps, "E:requests|Rate limit reached\n");
    assert_non_null(strstr(r.error, "rate_limit_exceeded"));
    free(r.steps);
    assert_int_equal(llm_error_classify("requests", "rate_limit_exceeded"), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("server_error", NULL), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("overloaded_error", ""), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("api_error", ""), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("", "rate_limit"), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("tokens", "rate_limit_exceeded"), LLM_ERROR_RETRY);
    assert_int_equal(llm_error_classify("invalid_request_error", "invalid_api_key"),
                     LLM_ERROR_AUTH);
    assert_int_equal(llm_error_classify("authentication_error", ""), LLM_ERROR_AUTH);
    assert_int_equal(llm_error_classify("permission_error", ""), LLM_ERROR_AUTH);
    assert_int_equal(llm_error_classify("insufficient_quota", "insufficient_quota"),
                     LLM_ERROR_REQUEST);
    assert_int_equal(llm_error_classify("invalid_request_error", "context_length_exceeded"),
                     LLM_ERROR_REQUEST);
    assert_int_equal(llm_error_classify("not_found_error", ""), LLM_ERROR_REQUEST);
    assert_int_equal(llm_error_classify("", ""), LLM_ERROR_OTHER);
    assert_int_equal(llm_error_classify(NULL, NULL), LLM_ERROR_OTHER);
}

static void test_decoder_limits(void **state)
{
    (void)state;
    /* The callback stops the decoder. */
    struct decode_run r = decode_split(STREAM_PROTOCOL_ANTHROPIC, anthropic_stream,
                                       strlen(anthropic_stream), 17, false, 2);
    assert_string_equal(r.steps, "U:25,1\nT:Hello\n");
    assert_int_equal(r.feed_rc, 99);
    assert_int_equal(r.finish_rc, 99);
    assert_string_equal(r.error, "stopped by the caller");
    free(r.steps);

    /* An event beyond the size bound (4096 in decode_split). */
    static char big[5000 + 16];
    size_t n = 5000;
    memcpy(big, "data: \"", 7);
    memset(big + 7, 'x', n);
    strcpy(big + 7 + n, "\"\n\n");
    r = decode_split(STREAM_PROTOCOL_OPENAI, big, strlen(big), strlen(big), false, 0);
    assert_int_equal(r.feed_rc, HB_EOVERFLOW);
    assert_int_equal(r.finish_rc, HB_EOVERFLOW);
    assert_non_null(strstr(r.error, "size limit"));
    free(r.steps);

    assert_null(stream_decoder_new((enum stream_protocol)7, 0, step_record, NULL));
    stream_decoder_free(NULL);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sse_rules_every_split),
    cmocka_unit_test(test_sse_retry),
    cmocka_unit_test(test_sse_complete_stream_not_truncated),
    cmocka_unit_test(test_sse_bom_only_at_start),
    cmocka_unit_test(test_sse_max_event),
    cmocka_unit_test(test_sse_sticky_and_reset),
    cmocka_unit_test(test_openai_stream),
    cmocka_unit_test(test_openai_usage_with_null_choices),
    cmocka_unit_test(test_openai_error_mid_stream),
    cmocka_unit_test(test_openai_no_finish_reason),
    cmocka_unit_test(test_openai_malformed),
    cmocka_unit_test(test_anthropic_stream),
    cmocka_unit_test(test_anthropic_without_event_names),
    cmocka_unit_test(test_anthropic_error),
    cmocka_unit_test(test_decoder_limits),
    cmocka_unit_test(test_surrogates_split_across_chunks),
    cmocka_unit_test(test_error_classes),
};

TEST_GROUP_DEFINE(sse, tests, NULL, NULL)
