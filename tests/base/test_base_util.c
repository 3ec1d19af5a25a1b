/* The small base helpers: hex both ways, FNV-1a against its published test
 * vectors, container_of, and a clock a test moves by hand. */
#include "tests/test.h"

#include "base/clock.h"
#include "base/hash.h"
#include "base/hex.h"
#include "base/text.h"
#include "base/util.h"

#include <string.h>

static void test_hex_round_trip(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof(in) + 1];
    assert_ptr_equal(hex_encode(in, sizeof(in), out), out);
    assert_string_equal(out, "00017f80abff");
    unsigned char back[sizeof(in)];
    assert_int_equal(hex_decode("00017F80abFF", back, sizeof(back)), 0);
    assert_memory_equal(back, in, sizeof(in));
    assert_int_equal(hex_decode("0g", back, 1), -1);
    assert_int_equal(hex_decode("g0", back, 1), -1);
    char empty[1] = {'x'};
    hex_encode(in, 0, empty);
    assert_string_equal(empty, "");
}

static void test_fnv1a64_vectors(void **state)
{
    (void)state;
    /* From the FNV reference test suite. */
    assert_true(hash_fnv1a64_str("") == 0xcbf29ce484222325ULL);
    assert_true(hash_fnv1a64_str("a") == 0xaf63dc4c8601ec8cULL);
    assert_true(hash_fnv1a64_str("foobar") == 0x85944171f73967e8ULL);
    assert_true(hash_fnv1a64("foobar", 6) == hash_fnv1a64_str("foobar"));
}

struct outer {
    int before;
    long member;
};

static void test_container_of(void **state)
{
    (void)state;
    struct outer o = {0};
    long *p = &o.member;
    assert_ptr_equal(container_of(p, struct outer, member), &o);
    int arr[7];
    assert_int_equal(ARRAY_LEN(arr), 7);
}

static void test_clock_manual_and_real(void **state)
{
    (void)state;
    struct clock_manual m = {.ms = 1000};
    struct clock c = {.now_ms = clock_manual_read, .data = &m};
    assert_int_equal(clock_now_ms(&c), 1000);
    m.ms += 86400000;
    assert_int_equal(clock_now_ms(&c), 86401000);
    /* The zero value and NULL read the real clock: after 2020-01-01. */
    struct clock real = {0};
    assert_true(clock_now_ms(&real) > 1577836800000LL);
    assert_true(clock_now_ms(NULL) > 1577836800000LL);
}

/* Words of a list separated by blanks and commas; one too long for the
 * buffer is reported by its length, with the buffer empty. */
static void test_text_word_next(void **state)
{
    (void)state;
    const char *p = " a, bb ,,ccc\tdddddddddd";
    char w[5];
    size_t len = 0;
    assert_true(text_word_next(&p, w, sizeof(w), &len));
    assert_string_equal(w, "a");
    assert_true(text_word_next(&p, w, sizeof(w), &len));
    assert_string_equal(w, "bb");
    assert_true(text_word_next(&p, w, sizeof(w), &len));
    assert_string_equal(w, "ccc");
    assert_int_equal(len, 3);
    assert_true(text_word_next(&p, w, sizeof(w), &len));
    assert_int_equal(len, 10);
    assert_string_equal(w, "");
    assert_false(text_word_next(&p, w, sizeof(w), &len));
    assert_int_equal(len, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_hex_round_trip), cmocka_unit_test(test_fnv1a64_vectors),
    cmocka_unit_test(test_container_of),   cmocka_unit_test(test_clock_manual_and_real),
    cmocka_unit_test(test_text_word_next),
};

TEST_GROUP_DEFINE(base_util, tests, NULL, NULL)
