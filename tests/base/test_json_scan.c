/* base/json_scan.h: the values a caller reads, checked as RFC 8259 writes
 * them, and what a C string cannot carry refused. */
#include "tests/test.h"

#include "base/error.h"
#include "base/json_scan.h"

#include <string.h>

static int decode(const char *raw, char *out, size_t *n)
{
    return json_scan_string(raw, strlen(raw), out, n);
}

static void test_json_scan_string(void **state)
{
    (void)state;
    char out[64];
    size_t n = 0;
    assert_int_equal(decode("\"plain\"", out, &n), 0);
    assert_string_equal(out, "plain");
    assert_int_equal(n, 5);
    assert_int_equal(decode("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"", out, &n), 0);
    assert_string_equal(out, "a\"b\\c/d\b\f\n\r\te");
    assert_int_equal(decode("\"\\u00e9\\u20AC\\ud83d\\ude00\"", out, &n), 0);
    assert_string_equal(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_int_equal(decode("\"\"", out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(decode("\"raw \xed\xa0\xbd kept\"", out, &n), 0);
    assert_string_equal(out, "raw \xed\xa0\xbd kept");
    /* Checked only. */
    assert_int_equal(json_scan_string("\"ok\"", 4, NULL, NULL), 0);
    static const char *const refused[] = {
        "\"lone \\ud83d\"",
        "\"low \\ude00 first\"",
        "\"nul \\u0000\"",
        "\"bad \\x\"",
        "\"short \\u12\"",
        "\"tab \t raw\"",
        "\"quote \" in\"",
        "unquoted",
        "\"",
        "\"end \\\"",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (decode(refused[i], out, &n) != HB_EPROTO)
            fail_msg("taken: %s", refused[i]);
}

static void test_json_scan_literal(void **state)
{
    (void)state;
    static const char *const good[] = {"true", "false", "null", "0",    "-0",
                                       "12",   "-3.5",  "1e9",  "2E-3", "0.5e+10"};
    static const char *const bad[] = {"tru", "nul", "01", "1.", ".5", "-", "1e", "+1", "1 ", ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(json_scan_literal(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (json_scan_literal(bad[i], strlen(bad[i])))
            fail_msg("taken: '%s'", bad[i]);
}

static void test_json_scan_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}",        "[]",    "{\"a\":[1,{\"b\":null},\"c\"],\"d\":{}}",
        "[ 1 , 2 ]", "\"s\"", "{ \"k\" : -1.5e3 }"};
    static const char *const bad[] = {"{\"a\":1,}", "[1,]",        "[1 2]", "{\"a\" 1}", "{a:1}",
                                      "[01]",       "{\"\\q\":1}", "[tru]", "{\"a\":1}}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!json_scan_valid(good[i], strlen(good[i])))
            fail_msg("refused: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (json_scan_valid(bad[i], strlen(bad[i])))
            fail_msg("taken: %s", bad[i]);
    /* 64 deep is the most. */
    char deep[256];
    for (int depth = 64; depth <= 65; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        assert_int_equal(json_scan_valid(deep, (size_t)depth * 2), depth == 64);
    }
}

static void test_json_scan_only(void **state)
{
    (void)state;
    const char *v = NULL;
    size_t n = 0;
    assert_int_equal(json_scan_only("[ {\"a\":[1]} ]", 13, &v, &n), 0);
    assert_int_equal(n, 9);
    assert_memory_equal(v, "{\"a\":[1]}", 9);
    assert_int_equal(json_scan_only("[ ]", 3, &v, &n), HB_ENOTFOUND);
    assert_int_equal(json_scan_only("[1,2]", 5, &v, &n), HB_EPROTO);
    assert_int_equal(json_scan_only("[1", 2, &v, &n), HB_EPROTO);
    assert_int_equal(json_scan_only("{}", 2, &v, &n), HB_EPROTO);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_scan_string),
    cmocka_unit_test(test_json_scan_literal),
    cmocka_unit_test(test_json_scan_valid),
    cmocka_unit_test(test_json_scan_only),
};

TEST_GROUP_DEFINE(json_scan, tests, NULL, NULL)
