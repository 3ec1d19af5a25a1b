/* The cheap first look at a gateway payload (adapters/discord/payload.c):
 * the container skip against random JSON, the scan of op, t, s and d, and
 * the lookup of top-level members. */
#include "tests/test.h"

#include "adapters/discord/payload.h"
#include "base/json_scan.h"
#include "base/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the payload scanner --------------------------------------------------- */

/* Random JSON for the container skip, which takes 64 bytes at a time: the
 * generator knows where each value ends, whatever lands on a block's edge
 * (brackets and quotes inside strings, escaped quotes, runs of
 * backslashes). */
struct pj {
    char buf[16384];
    size_t n;
    uint64_t rng;
};

static unsigned pj_rand(struct pj *g, unsigned below)
{
    g->rng = g->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(g->rng >> 33) % below;
}

static void pj_put(struct pj *g, const char *s)
{
    size_t n = strlen(s);
    assert_true(g->n + n < sizeof(g->buf));
    memcpy(g->buf + g->n, s, n);
    g->n += n;
}

static void pj_string(struct pj *g)
{
    static const char *const parts[] = {"a",    "{",        "}",   "[", "]", "\\\"",
                                        "\\\\", "\\\\\\\"", "x y", ":", ",", "\\n"};
    pj_put(g, "\"");
    for (unsigned i = pj_rand(g, 40); i > 0; i--)
        pj_put(g, parts[pj_rand(g, sizeof(parts) / sizeof(parts[0]))]);
    pj_put(g, "\"");
}

static void pj_value(struct pj *g, int depth)
{
    unsigned kind = depth > 3 ? pj_rand(g, 2) : pj_rand(g, 4);
    if (kind == 0) {
        pj_string(g);
    } else if (kind == 1) {
        pj_put(g, pj_rand(g, 2) ? "12345" : "null");
    } else {
        bool obj = kind == 2;
        pj_put(g, obj ? "{" : "[");
        for (unsigned i = 0, k = pj_rand(g, 6); i < k; i++) {
            if (i > 0)
                pj_put(g, pj_rand(g, 2) ? "," : " , ");
            if (obj) {
                pj_string(g);
                pj_put(g, ":");
            }
            pj_value(g, depth + 1);
        }
        pj_put(g, obj ? "}" : "]");
    }
}

static void test_payload_skip_blocks(void **state)
{
    (void)state;
    static struct pj g;
    static const char *const names[] = {"k0", "k1", "k2", "k3"};
    for (unsigned seed = 1; seed <= 400; seed++) {
        g.n = 0;
        g.rng = seed;
        for (unsigned i = pj_rand(&g, 64); i > 0; i--)
            pj_put(&g, " "); /* every alignment */
        pj_put(&g, "{");
        size_t at[4], len[4];
        for (int i = 0; i < 4; i++) {
            char key[16];
            snprintf(key, sizeof(key), "%s\"%s\":", i ? "," : "", names[i]);
            pj_put(&g, key);
            at[i] = g.n;
            pj_value(&g, 0);
            len[i] = g.n - at[i];
        }
        pj_put(&g, "}");
        struct json_member m[4];
        assert_int_equal(json_scan_members(g.buf, g.n, names, 4, m), 4);
        for (int i = 0; i < 4; i++) {
            assert_ptr_equal(m[i].v, g.buf + at[i]);
            assert_int_equal(m[i].len, len[i]);
        }
        /* Cut short anywhere inside the last value: never a value past the
         * end, and never the last one found. */
        for (size_t cut = at[3]; cut < at[3] + len[3]; cut += 1 + pj_rand(&g, 7)) {
            int rc = json_scan_members(g.buf, cut, names, 4, m);
            assert_true(rc == HB_EPROTO || rc == 3);
            for (int i = 0; i < 4 && rc > 0; i++)
                assert_true(m[i].v == NULL || m[i].v + m[i].len <= g.buf + cut);
        }
    }
}

static bool scan_want(const char *type, size_t len, void *data)
{
    (void)data;
    return len == 14 && memcmp(type, "MESSAGE_CREATE", 14) == 0;
}

static void test_payload_scan(void **state)
{
    (void)state;
    struct discord_payload p;
    const char *a =
        "{\"t\":\"MESSAGE_CREATE\",\"s\":42,\"op\":0,\"d\":{\"content\":\"}\\\"{\",\"x\":[1,{}]}}";
    assert_int_equal(discord_payload_scan(a, strlen(a), scan_want, NULL, &p), 0);
    assert_int_equal(p.op, 0);
    assert_int_equal(p.seq, 42);
    assert_int_equal(p.type_len, 14);
    assert_false(p.skipped);
    assert_int_equal(p.d_len, strlen("{\"content\":\"}\\\"{\",\"x\":[1,{}]}"));
    assert_memory_equal(p.d, "{\"content\":\"}\\\"{\",\"x\":[1,{}]}", p.d_len);
    /* Unwanted: stops before d (which is broken here, and never looked at). */
    const char *b = "{\"t\":\"TYPING_START\",\"s\":7,\"op\":0,\"d\":{\"broken";
    assert_int_equal(discord_payload_scan(b, strlen(b), scan_want, NULL, &p), 0);
    assert_true(p.skipped);
    assert_int_equal(p.seq, 7);
    assert_null(p.d);
    /* Any key order; null t and s. */
    const char *c = " {\"d\" : {\"heartbeat_interval\":41250}, \"op\":10, \"s\":null, \"t\":null} ";
    assert_int_equal(discord_payload_scan(c, strlen(c), scan_want, NULL, &p), 0);
    assert_int_equal(p.op, 10);
    assert_int_equal(p.seq, -1);
    assert_null(p.type);
    assert_int_equal(p.d_len, strlen("{\"heartbeat_interval\":41250}"));
    const char *bad[] = {"",
                         "[]",
                         "{\"op\":0,\"d\":{}",
                         "{\"op\":0,\"d\":{}}}",
                         "{\"op\":0 \"d\":1}",
                         "{\"op\":\"x\"}",
                         "{\"t\":\"A\"}",
                         "{\"op\":1,\"d\":\"abc}",
                         "{\"op\":1,\"d\":]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(discord_payload_scan(bad[i], strlen(bad[i]), NULL, NULL, &p), HB_EPROTO);
}

/* A member at the top of an object is found; one only inside a nested value
 * (or inside a string) is not. */
static void test_payload_member(void **state)
{
    (void)state;
    const char *v;
    size_t n;
    const char *a = " {\"content\":\"\\\"guild_id\\\":1\",\"ref\":{\"guild_id\":\"7\"},"
                    "\"guild_id\" : \"77\" , \"x\":[{\"guild_id\":1}]} ";
    assert_int_equal(json_scan_member(a, strlen(a), "guild_id", &v, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "\"77\"", 4);
    const char *b = "{\"content\":\"guild_id\",\"ref\":{\"guild_id\":\"7\"}}";
    assert_int_equal(json_scan_member(b, strlen(b), "guild_id", &v, &n), HB_ENOTFOUND);
    assert_int_equal(json_scan_member("{}", 2, "guild_id", &v, &n), HB_ENOTFOUND);
    /* Several in one pass, in any order; a missing one stays NULL. */
    static const char *const names[] = {"x", "guild_id", "nope", "ref"};
    struct json_member m[4];
    assert_int_equal(json_scan_members(a, strlen(a), names, 4, m), 3);
    assert_memory_equal(m[1].v, "\"77\"", 4);
    assert_int_equal(m[0].len, strlen("[{\"guild_id\":1}]"));
    assert_null(m[2].v);
    assert_memory_equal(m[3].v, "{\"guild_id\":\"7\"}", m[3].len);
    const char *bad[] = {"", "[]", "{\"a\":1,}", "{\"a\":1", "{\"a\" 1}", "{\"a\":\"x}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(json_scan_member(bad[i], strlen(bad[i]), "guild_id", &v, &n), HB_EPROTO);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_payload_scan),
    cmocka_unit_test(test_payload_skip_blocks),
    cmocka_unit_test(test_payload_member),
};

TEST_GROUP_DEFINE(discord_payload, tests, NULL, NULL)
