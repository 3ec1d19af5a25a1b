/* OpenAI chunks and Anthropic text deltas read in place
 * (adapters/llm/stream.c): the same steps as a cJSON tree gives, in the
 * same order, for every shape below; no tree for the events a stream is
 * made of; and the tree for what the in-place read leaves to it. */
#include "tests/test.h"

#include "tests/adapters/stream_twice.h"

#include <string.h>

/* Both ways agree on an event; returns how many trees the in-place way
 * took. */
static long same_both_ways_as(enum stream_protocol proto, const char *name, const char *body)
{
    size_t len = 0;
    char *sse = stream_twice_event(name, body, strlen(body), &len);
    assert_non_null(sse);
    static struct stream_twice_log fast, tree;
    long trees = stream_twice_one(proto, sse, len, false, &fast);
    assert_true(stream_twice_one(proto, sse, len, true, &tree) >= 0);
    assert_true(trees >= 0);
    if (strcmp(fast.text, tree.text) != 0)
        fail_msg("%s\n  in place: %s\n  tree:     %s", body, fast.text, tree.text);
    free(sse);
    return trees;
}

static long same_both_ways(const char *body)
{
    return same_both_ways_as(STREAM_PROTOCOL_OPENAI, NULL, body);
}

static long same_anthropic(const char *body)
{
    return same_both_ways_as(STREAM_PROTOCOL_ANTHROPIC, "content_block_delta", body);
}

/* What streams are made of: read in place, no tree. */
static void test_stream_fast_common_chunks(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
        "\"logprobs\":null,\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\nb\\t\\\"q\\\" \\\\ \\/ "
        "\\u00e9\\u20ac \\ud83d\\ude00\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"length\"}],"
        "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":200}}",
        "{\"choices\":null,\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":null}}",
        "{\"choices\":[{\"delta\":{\"content\":null}}],\"usage\":null}",
        "  {\"choices\" : [ { \"delta\" : { \"content\" : \"spaced\" } } ] }  ",
        "{\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"queue_time\":0.01}},\"choices\":[{\"delta\":"
        "{\"content\":\"nested elsewhere\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"logprobs\":{\"content\":[{\"token\":"
        "\"x\",\"logprob\":-0.5e-3,\"bytes\":[120],\"top_logprobs\":[]}]}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"raw \xc3\xa9 and \xed\xa0\xbd\"}}]}",
        "{\"choices\":[5]}",
        "{\"message\":\"no choices at all\"}",
        "{\"choices\":[{\"delta\":\"not an object\",\"finish_reason\":\"\"}]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_int_equal(same_both_ways(bodies[i]), 0);
}

/* What the in-place read leaves to the tree, which decides as before:
 * the same steps, or the same error. */
static void test_stream_fast_leaves_to_tree(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"x\"}}",
        "{\"choices\":[{\"delta\":{\"con\\u0074ent\":\"escaped key\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"first\",\"content\":\"second\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"one\"}},{\"delta\":{\"content\":\"two\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"lone \\ud83d\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"nul \\u0000 inside\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":5.0,"
        "\"completion_tokens\":1e2}}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":-5}}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":"
        "12345678901234567}}",
        "{\"choices\":{\"delta\":{}}}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"bad\":tru}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"bad\":[1,,2]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"bad\":01}",
        "{\"choices\":[{\"delta\":{\"content\":\"bad \\x escape\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]} trailing",
        "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\"}}]}}]",
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_int_equal(same_both_ways(bodies[i]), 1);
}

/* Text longer than the read's own buffer, and a chunk of many kinds. */
static void test_stream_fast_long_text(void **state)
{
    (void)state;
    static char body[8192];
    int n = snprintf(body, sizeof(body), "{\"choices\":[{\"delta\":{\"content\":\"");
    for (int i = 0; i < 1000; i++)
        body[n++] = (char)('a' + i % 26);
    n += snprintf(body + n, sizeof(body) - (size_t)n, "\\n\"},\"finish_reason\":\"st\\u006fp\"}]}");
    assert_int_equal(same_both_ways(body), 0);
}

/* Anthropic's content_block_delta: text read in place, the rest as the
 * tree reads it; what the read is not sure of goes to the tree. */
static void test_stream_fast_anthropic(void **state)
{
    (void)state;
    static const char *const in_place[] = {
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Hello \\u00e9\\n\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}",
        "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"hm\"}}",
        "{\"delta\":{\"type\":\"text\\u005fdelta\",\"text\":\"escaped type\"}}",
        "{\"delta\":{\"type\":\"text_delta\",\"text\":null}}",
        "{\"delta\":null}",
        "{\"delta\":{\"text\":\"no type\"}}",
    };
    for (size_t i = 0; i < sizeof(in_place) / sizeof(in_place[0]); i++)
        assert_int_equal(same_anthropic(in_place[i]), 0);
    static const char *const tree[] = {
        "{\"delta\":{\"type\":\"text_delta\",\"text\":\"lone \\ud83d\"}}",
        "{\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"},\"delta\":{}}",
        "{\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}",
        "{\"delta\":{\"type\":\"text_delta\",\"te\\u0078t\":\"escaped key\"}}",
        "[\"not an object\"]",
    };
    for (size_t i = 0; i < sizeof(tree) / sizeof(tree[0]); i++)
        assert_int_equal(same_anthropic(tree[i]), 1);
    /* Other events are read as trees, as before. */
    assert_int_equal(same_both_ways_as(STREAM_PROTOCOL_ANTHROPIC, "message_delta",
                                       "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                       "\"end_turn\"},\"usage\":{\"output_tokens\":15}}"),
                     1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_stream_fast_common_chunks),
    cmocka_unit_test(test_stream_fast_leaves_to_tree),
    cmocka_unit_test(test_stream_fast_long_text),
    cmocka_unit_test(test_stream_fast_anthropic),
};

TEST_GROUP_DEFINE(stream_fast, tests, NULL, NULL)
