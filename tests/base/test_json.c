/* json_print against cJSON's own printer: the same text for the same tree,
 * whole numbers as integers, escapes as RFC 8259 asks. */
#include "tests/test.h"

#include "base/error.h"
#include "base/json.h"
#include "base/text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void json_same_as_cjson(const char *text)
{
    cJSON *t = cJSON_Parse(text);
    assert_non_null(t);
    char *want = cJSON_PrintUnformatted(t);
    size_t len = 0;
    char *got = json_print(t, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
    cJSON_free(want);
    cJSON_Delete(t);
}

static void test_json_matches_cjson(void **state)
{
    (void)state;
    json_same_as_cjson("{\"chat_id\":-1001234567890,\"text\":\"hi\",\"n\":0}");
    json_same_as_cjson("{\"a\":[1,2,3,[],{}],\"b\":{\"c\":null,\"d\":true,\"e\":false}}");
    json_same_as_cjson("[0.5,-2.25,3.14159265358979,1e-7,123456789012,-100123456789012]");
    /* Where cJSON rounds a 16-digit whole number to 15 digits, this is exact. */
    cJSON *big = cJSON_CreateNumber(-9007199254740992.0);
    char *exact = json_print(big, NULL);
    assert_string_equal(exact, "-9007199254740992");
    free(exact);
    cJSON_Delete(big);
    json_same_as_cjson("{\"s\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r\"}");
    json_same_as_cjson("{\"u\":\"\\u0001\\u001f caf\\u00e9 \\ud83d\\ude00\",\"e\":\"\"}");
    json_same_as_cjson("{\"reply_markup\":{\"inline_keyboard\":[[{\"text\":\"Next\","
                       "\"callback_data\":\"m:2:abc\"}]]}}");
}

static void test_json_numbers(void **state)
{
    (void)state;
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(9007199254740993.0)); /* beyond 2^53 */
    cJSON_AddItemToArray(a, cJSON_CreateNumber(0.1));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(NAN));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(-0.0));
    char *got = json_print(a, NULL);
    assert_non_null(got);
    /* Each number reads back as itself; NaN has no JSON spelling. */
    cJSON *back = cJSON_Parse(got);
    assert_non_null(back);
    assert_true(cJSON_GetArrayItem(back, 0)->valuedouble == 9007199254740992.0 ||
                cJSON_GetArrayItem(back, 0)->valuedouble == 9007199254740993.0);
    assert_true(cJSON_GetArrayItem(back, 1)->valuedouble == 0.1);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(back, 2)));
    assert_string_equal(strstr(got, "null,") != NULL ? "ok" : got, "ok");
    cJSON_Delete(back);
    free(got);
    cJSON_Delete(a);
    assert_null(json_print(NULL, NULL));
    cJSON *raw = cJSON_CreateRaw("{\"x\":1}");
    got = json_print(raw, NULL);
    assert_string_equal(got, "{\"x\":1}");
    free(got);
    cJSON_Delete(raw);
}

/* text_buf grows past what it had and keeps earlier text. */
static void test_text_buf_growth(void **state)
{
    (void)state;
    struct text_buf t = {0};
    for (int i = 0; i < 200; i++)
        text_buf_add(&t, "%03d,", i);
    assert_int_equal(t.len, 800);
    assert_int_equal(strncmp(text_buf_str(&t), "000,001,002,", 12), 0);
    assert_string_equal(text_buf_str(&t) + 796, "199,");
    free(t.buf);
}

static int json_int_of(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    int rc = json_int64_get(j, lo, hi, out);
    cJSON_Delete(j);
    return rc;
}

/* Numbers from outside are checked before they become integers. */
static void test_json_int64_get(void **state)
{
    (void)state;
    int64_t v = 7;
    assert_int_equal(json_int_of("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(json_int_of("-9007199254740992", -JSON_INT_EXACT, JSON_INT_EXACT, &v), 0);
    assert_int_equal(v, -JSON_INT_EXACT);
    v = 7;
    assert_int_equal(json_int_of("101", 0, 100, &v), HB_EOVERFLOW);
    assert_int_equal(json_int_of("-1", 0, 100, &v), HB_EOVERFLOW);
    assert_int_equal(json_int_of("1e300", INT64_MIN, INT64_MAX, &v), HB_EOVERFLOW);
    assert_int_equal(json_int_of("-1e300", INT64_MIN, INT64_MAX, &v), HB_EOVERFLOW);
    /* 2^63 itself is one past INT64_MAX. */
    assert_int_equal(json_int_of("9223372036854775808", INT64_MIN, INT64_MAX, &v), HB_EOVERFLOW);
    assert_int_equal(json_int_of("9223372036854775807", 0, JSON_INT_EXACT, &v), HB_EOVERFLOW);
    assert_int_equal(json_int_of("2.5", 0, 100, &v), HB_EINVAL);
    assert_int_equal(json_int_of("\"5\"", 0, 100, &v), HB_EINVAL);
    assert_int_equal(json_int64_get(NULL, 0, 100, &v), HB_EINVAL);
    cJSON *odd = cJSON_CreateNumber(INFINITY);
    assert_int_equal(json_int64_get(odd, INT64_MIN, INT64_MAX, &v), HB_EOVERFLOW);
    cJSON_SetNumberValue(odd, NAN);
    assert_int_equal(json_int64_get(odd, INT64_MIN, INT64_MAX, &v), HB_EINVAL);
    cJSON_Delete(odd);
    assert_int_equal(v, 7); /* untouched by every refusal */
}

/* Header numbers: digits and a fraction, rounded up, bounded. */
static void test_text_header_decimal(void **state)
{
    (void)state;
    int64_t v = -5;
    assert_int_equal(text_header_decimal("2", 1000, 60000, &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(text_header_decimal(" 0.25 ", 1000, 60000, &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(text_header_decimal("64.5701", 1000, 100000, &v), 0);
    assert_int_equal(v, 64571); /* rounded up: never retry early */
    assert_int_equal(text_header_decimal("0.0000000001", 1000, 10, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(text_header_decimal("1500", 1, 60000, &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(text_header_decimal("60", 1000, 60000, &v), 0);
    assert_int_equal(v, 60000);
    v = -5;
    assert_int_equal(text_header_decimal("60.001", 1000, 60000, &v), HB_EOVERFLOW);
    assert_int_equal(text_header_decimal("61", 1000, 60000, &v), HB_EOVERFLOW);
    assert_int_equal(text_header_decimal("5", 1, 4, &v), HB_EOVERFLOW);
    assert_int_equal(text_header_decimal("99999999999999999999999999999999", 1000, INT64_MAX, &v),
                     HB_EOVERFLOW);
    const char *bad[] = {"",   " ",  "1e300", "inf", "nan",  "-3", "+3",
                         "3.", ".5", "1,5",   "2 s", "0x10", NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        assert_int_equal(text_header_decimal(bad[i], 1000, INT64_MAX, &v), HB_EINVAL);
    assert_int_equal(text_header_decimal(NULL, 1000, 60000, &v), HB_EINVAL);
    assert_int_equal(v, -5);
}

/* Text written piece by piece reads back as the strings that went in,
 * whatever they hold, and matches json_print for the same values. */
static void test_json_text_pieces(void **state)
{
    (void)state;
    const char *odd[] = {"",
                         "plain",
                         "quote \" and \\ back",
                         "lines\n\r\ttabs",
                         "\x01\x1f control",
                         "caf\xc3\xa9 \xf0\x9f\x98\x80",
                         NULL};
    struct json_text t = {0};
    json_text_put(&t, "[", 1);
    cJSON *tree = cJSON_CreateArray();
    for (size_t i = 0; odd[i] != NULL; i++) {
        if (i > 0)
            json_text_put(&t, ",", 1);
        json_text_string(&t, odd[i]);
        cJSON_AddItemToArray(tree, cJSON_CreateString(odd[i]));
    }
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "n", 42);
    json_text_put(&t, ",", 1);
    json_text_value(&t, obj);
    cJSON_AddItemToArray(tree, obj);
    json_text_put(&t, "]", 1);
    size_t len = 0;
    char *text = json_text_finish(&t, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_null(t.buf); /* finished: empty again */
    char *want = json_print(tree, NULL);
    assert_string_equal(text, want);
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    for (size_t i = 0; odd[i] != NULL; i++)
        assert_string_equal(cJSON_GetArrayItem(back, (int)i)->valuestring, odd[i]);
    cJSON_Delete(back);
    cJSON_Delete(tree);
    free(want);
    free(text);

    /* A value that cannot be written fails the whole text. */
    json_text_put(&t, "[", 1);
    json_text_value(&t, NULL);
    assert_null(json_text_finish(&t, NULL));
}

/* text_buf_put appends bytes as they are, NUL-terminated, growing. */
static void test_text_buf_put(void **state)
{
    (void)state;
    struct text_buf t = {0};
    text_buf_put(&t, "%s", 2);
    for (int i = 0; i < 300; i++)
        text_buf_put(&t, "ab", 1);
    assert_int_equal(t.len, 302);
    assert_int_equal(strlen(t.buf), 302);
    assert_memory_equal(t.buf, "%sa", 3);
    free(t.buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_int64_get),     cmocka_unit_test(test_text_header_decimal),
    cmocka_unit_test(test_json_matches_cjson), cmocka_unit_test(test_json_numbers),
    cmocka_unit_test(test_text_buf_growth),    cmocka_unit_test(test_json_text_pieces),
    cmocka_unit_test(test_text_buf_put),
};

TEST_GROUP_DEFINE(json, tests, NULL, NULL)
