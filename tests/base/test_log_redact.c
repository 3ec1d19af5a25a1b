/* Token-bearing URL shapes are masked wherever they appear in a log line
 * or an error text: Discord interaction and webhook tokens (valid for 15
 * minutes, enough to post as the bot) as well as Telegram's bot token. */
#include "tests/test.h"

#include "base/log.h"

#include <string.h>

static void redacts(const char *in, const char *want)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", in);
    log_redact(buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_discord_token_urls(void **state)
{
    (void)state;
    redacts("url=https://discord.com/api/v10/interactions/1234567890123456789/"
            "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpzZWNyZXQ/callback status=204",
            "url=https://discord.com/api/v10/interactions/1234567890123456789/[redacted]/callback "
            "status=204");
    redacts(
        "PATCH /api/v10/webhooks/1111111111111111111/aW50ZXJhY3Rpb24tdG9rZW4/messages/@original",
        "PATCH /api/v10/webhooks/1111111111111111111/[redacted]/messages/@original");
    redacts("route=\"/webhooks/1111111111111111111/tok-en_123?wait=true\"",
            "route=\"/webhooks/1111111111111111111/[redacted]?wait=true\"");
    /* Ending the text, and twice in one line. */
    redacts("a=/webhooks/42/tokA b=/interactions/7/tokB",
            "a=/webhooks/42/[redacted] b=/interactions/7/[redacted]");
}

static void test_routes_stay_readable(void **state)
{
    (void)state;
    /* The daemon's own routes carry no token and stay as they are. */
    redacts("path=/webhooks/stripe status=200", "path=/webhooks/stripe status=200");
    redacts("path=/webhooks/telegram/ status=200", "path=/webhooks/telegram/ status=200");
    redacts("path=/interactions status=401", "path=/interactions status=401");
    redacts("file=/etc/haibot/webhooks/42", "file=/etc/haibot/webhooks/42");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_discord_token_urls),
    cmocka_unit_test(test_routes_stay_readable),
};

TEST_GROUP_DEFINE(log_redact, tests, NULL, NULL)
