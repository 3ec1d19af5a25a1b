#include "tests/test.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Capture one log line written by fn into a heap string. */
static char *capture(bool json, void (*fn)(void))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    log_configure(LOG_DEBUG, json, mem);
    fn();
    fclose(mem);
    log_configure(LOG_INFO, false, NULL);
    return buf;
}

static void write_fields(void)
{
    log_info("config.reload", "ok=%d file=%s reason=%s", 1, "bot.conf", "two words");
}

static void test_logfmt_fields(void **state)
{
    (void)state;
    char *line = capture(false, write_fields);
    assert_non_null(strstr(line, " info config.reload ok=1 file=bot.conf reason=\"two words\"\n"));
    free(line);
}

static void test_json_fields(void **state)
{
    (void)state;
    char *line = capture(true, write_fields);
    assert_non_null(strstr(line, "\"level\":\"info\",\"event\":\"config.reload\",\"ok\":\"1\","
                                 "\"file\":\"bot.conf\",\"reason\":\"two words\"}\n"));
    free(line);
}

/* Values from outside that look like more fields, quotes, lines. */
static void write_forged(void)
{
    log_warn("auth.refused", "user=%s reason=%s n=%d", "mallory level=error admin=true",
             "said \"hi\"\nfake line", 3);
    log_warn("auth.refused", "user=%s", "a=b");
    log_warn("auth.refused", "user=%s ip=%s", "tab\there\x7f", "bad\xff\xc3(utf8 \xc3\xa9");
}

/* A value holding " key=value" stays one quoted value in logfmt: no
 * forged field, no forged line. */
static void test_logfmt_forged_fields(void **state)
{
    (void)state;
    char *lines = capture(false, write_forged);
    assert_non_null(strstr(lines, " warn auth.refused user=\"mallory level=error admin=true\" "
                                  "reason=\"said \\\"hi\\\"\\nfake line\" n=3\n"));
    assert_non_null(strstr(lines, " warn auth.refused user=\"a=b\"\n"));
    assert_non_null(
        strstr(lines, " user=\"tab\\u0009here\\u007f\" ip=\"bad\\ufffd\\ufffd(utf8 \xc3\xa9\"\n"));
    /* Three lines, each one event. */
    size_t n = 0;
    for (const char *p = lines; *p != '\0'; p++)
        n += *p == '\n';
    assert_int_equal(n, 3);
    free(lines);
}

/* In JSON the same values are one member each, escaped, with no second
 * "level" or "admin" key. */
static void test_json_forged_fields(void **state)
{
    (void)state;
    char *lines = capture(true, write_forged);
    assert_non_null(strstr(lines, "\"event\":\"auth.refused\",\"user\":\"mallory level=error "
                                  "admin=true\",\"reason\":\"said \\\"hi\\\"\\nfake line\","
                                  "\"n\":\"3\"}\n"));
    assert_null(strstr(lines, "\"admin\":"));
    assert_non_null(strstr(lines, "\"user\":\"a=b\"}\n"));
    assert_non_null(strstr(lines, "\"user\":\"tab\\u0009here\\u007f\",\"ip\":\"bad\\ufffd"
                                  "\\ufffd(utf8 \xc3\xa9\"}\n"));
    free(lines);
}

static void write_secret(void)
{
    log_secret_add("sk-live-abcdef123456");
    log_warn("http.request", "url=https://api.example/v1?key=sk-live-abcdef123456 status=401");
    log_warn("http.request",
             "url=https://api.telegram.org/bot123456:AAE-xyz/getUpdates header=Authorization: "
             "Bearer qwertyuiop");
    log_info("config.loaded", "file=/etc/haibot/bot.conf");
}

static void test_secrets_redacted(void **state)
{
    (void)state;
    char *lines = capture(false, write_secret);
    assert_null(strstr(lines, "sk-live-abcdef123456"));
    assert_null(strstr(lines, "123456:AAE-xyz"));
    assert_null(strstr(lines, "qwertyuiop"));
    assert_non_null(strstr(lines, "key=[redacted]"));
    assert_non_null(strstr(lines, "/bot[redacted]/getUpdates"));
    assert_non_null(strstr(lines, "file=/etc/haibot/bot.conf"));
    log_secret_clear();
    free(lines);
}

static void test_level_filter(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    log_configure(LOG_WARN, false, mem);
    log_info("quiet", NULL);
    log_error("loud", "n=%d", 2);
    fclose(mem);
    log_configure(LOG_INFO, false, NULL);
    assert_null(strstr(buf, "quiet"));
    assert_non_null(strstr(buf, "error loud n=2"));
    free(buf);
    enum log_level lv;
    assert_int_equal(log_level_parse("DEBUG", &lv), 0);
    assert_int_equal(lv, LOG_DEBUG);
    assert_true(log_level_parse("loud", &lv) < 0);
}

static void test_redact_in_place_without_room(void **state)
{
    (void)state;
    log_secret_add("abcdefgh");
    char small[16] = "x abcdefgh y";
    log_redact(small, sizeof(small));
    assert_null(strstr(small, "abcdefgh"));
    log_secret_clear();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_logfmt_fields),
    cmocka_unit_test(test_json_fields),
    cmocka_unit_test(test_logfmt_forged_fields),
    cmocka_unit_test(test_json_forged_fields),
    cmocka_unit_test(test_secrets_redacted),
    cmocka_unit_test(test_level_filter),
    cmocka_unit_test(test_redact_in_place_without_room),
};

TEST_GROUP_DEFINE(log, tests, NULL, NULL)
