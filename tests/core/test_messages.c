/* core/messages.h: every reply text a member sees, named once. These
 * checks hold the header to what a later [messages] section in bot.conf
 * will rely on: every text is listed here (so a check covers it), full
 * sentences read as sentences, no sentence is defined twice, and every
 * conversion specifier is one the override validator will understand. */
#include "tests/test.h"

#include "core/messages.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum msg_kind {
    MSG_SENTENCE, /* a whole reply or a whole sentence of one */
    MSG_FRAGMENT, /* a label, a line layout, or words another text wraps */
};

struct msg_entry {
    const char *name;
    const char *text;
    enum msg_kind kind;
};

/* clang-format off */
#define S(m) {#m, m, MSG_SENTENCE}
#define F(m) {#m, m, MSG_FRAGMENT}
/* clang-format on */

/* Every macro in core/messages.h, in its order. A new text goes here too;
 * test_table_matches_header fails until it does. */
static const struct msg_entry msgs[] = {
    S(MSG_COMMON_OUT_OF_MEMORY),
    F(MSG_COMMON_BOT_NAME),
    F(MSG_PERIOD_DAY),
    F(MSG_PERIOD_WEEK),
    F(MSG_PERIOD_MONTH),
    F(MSG_PERIOD_YEAR),
    S(MSG_COMMON_NO_SUCH_MODEL),
    S(MSG_CREDITS_FAILED),
    S(MSG_CREDITS_WELCOME_BONUS),
    S(MSG_CREDITS_WELCOME),
    F(MSG_CREDITS_BALANCE_LINE),
    F(MSG_CREDITS_BALANCE_HELD),
    F(MSG_CREDITS_YOUR_WALLET),
    F(MSG_CREDITS_GROUP_POOL),
    S(MSG_START_WELCOME_BACK),
    S(MSG_START_YOUR_ID),
    S(MSG_START_HOW_CREDITS_WORK),
    F(MSG_BALANCE_POOL_EMPTY),
    S(MSG_CREDITS_DEBT),
    S(MSG_CREDITS_POOL_DEBT),
    F(MSG_HISTORY_DEBT_REPAID),
    F(MSG_HISTORY_RESERVED),
    F(MSG_HISTORY_RELEASED),
    F(MSG_HISTORY_EXPIRED),
    F(MSG_HISTORY_ENTRY),
    F(MSG_HISTORY_TAG),
    S(MSG_HISTORY_NONE),
    S(MSG_HISTORY_NO_OLDER),
    F(MSG_HISTORY_HEADER),
    F(MSG_HISTORY_BUTTON_NEWER),
    F(MSG_HISTORY_BUTTON_OLDER),
    S(MSG_HISTORY_BUTTON_NOT_YOURS),
    S(MSG_HISTORY_BUTTON_EXPIRED),
    S(MSG_USAGE_NONE),
    F(MSG_USAGE_HEADER),
    F(MSG_USAGE_LINE),
    F(MSG_USAGE_NO_TAG),
    S(MSG_USAGE_TOTAL),
    F(MSG_USAGE_CHART_TITLE),
    S(MSG_USAGE_CHART_CAPTION),
    F(MSG_STATS_CHART_TITLE),
    S(MSG_CHART_FAILED),
    S(MSG_DEPOSIT_NOT_SET_UP),
    S(MSG_DEPOSIT_POOL_HINT),
    S(MSG_POOL_EMPTY),
    S(MSG_POOL_WHO_SPENDS),
    F(MSG_POOL_POLICY_POOL_FIRST),
    F(MSG_POOL_POLICY_WALLET_FIRST),
    S(MSG_POOL_DAILY_CAP),
    S(MSG_POOL_NO_DAILY_CAP),
    S(MSG_POOL_NOT_HERE),
    S(MSG_ADMIN_RELOAD_UNAVAILABLE),
    S(MSG_ADMIN_FAILED),
    S(MSG_ADMIN_GRANTED),
    S(MSG_ADMIN_REVOKED),
    S(MSG_ADMIN_GRANTED_HERE),
    S(MSG_ADMIN_REVOKED_HERE),
    S(MSG_ADMIN_WALLET_NOW),
    S(MSG_ADMIN_POOL_GRANTED),
    S(MSG_ADMIN_REVOKE_SHORT),
    S(MSG_ADMIN_REVOKE_SHORT_HERE),
    S(MSG_ADMIN_MEMBER_UNKNOWN_TELEGRAM),
    S(MSG_ADMIN_MEMBER_UNKNOWN_DISCORD),
    S(MSG_ADMIN_MEMBER_UNKNOWN_CONSOLE),
    S(MSG_ADMIN_CONFLICT),
    S(MSG_ADMIN_POOL_NOT_HERE),
    F(MSG_ADMIN_POOL_SHOWN),
    S(MSG_ADMIN_NOT_SAVED),
    S(MSG_ADMIN_POLICY_SET),
    F(MSG_ADMIN_POLICY_POOL_FIRST),
    F(MSG_ADMIN_POLICY_WALLET_FIRST),
    S(MSG_ADMIN_CAP_SET),
    S(MSG_ADMIN_CAP_REMOVED),
    S(MSG_ADMIN_MODEL_ENABLED),
    S(MSG_ADMIN_MODEL_DISABLED),
    S(MSG_ADMIN_MODEL_NOT_HERE),
    S(MSG_ADMIN_NOT_SAVED_RETRY),
    F(MSG_AUDIT_HEADER),
    F(MSG_AUDIT_HEADER_FOR),
    F(MSG_AUDIT_ENTRY),
    S(MSG_AUDIT_NONE),
    S(MSG_AUDIT_NO_OLDER),
    F(MSG_AUDIT_BUTTON_NEWER),
    F(MSG_AUDIT_BUTTON_OLDER),
    S(MSG_AUDIT_BUTTON_EXPIRED),
    S(MSG_AUDIT_FAILED),
    F(MSG_MEMBER_HEADER),
    F(MSG_MEMBER_BALANCE),
    F(MSG_MEMBER_RESERVATIONS),
    F(MSG_MEMBER_TRANSFERS),
    F(MSG_MEMBER_NO_TRANSFERS),
    F(MSG_MEMBER_GENERATIONS),
    F(MSG_MEMBER_MODEL),
    S(MSG_MEMBER_UNKNOWN),
    S(MSG_MEMBER_NO_WALLET),
    S(MSG_MEMBER_FAILED),
    F(MSG_PAYMENTS_UNMATCHED_HEADER),
    F(MSG_PAYMENTS_UNMATCHED_ENTRY),
    S(MSG_PAYMENTS_UNMATCHED_NONE),
    S(MSG_PAYMENTS_UNMATCHED_HINT),
    S(MSG_PAYMENTS_UNKNOWN),
    S(MSG_PAYMENTS_ALREADY),
    F(MSG_PAYMENTS_ANOTHER_MEMBER),
    S(MSG_PAYMENTS_NEED_CREDITS),
    S(MSG_PAYMENTS_ASSIGNED),
    S(MSG_PAYMENTS_FAILED),
    S(MSG_ROUTER_UNKNOWN_SUGGEST),
    S(MSG_ROUTER_UNKNOWN),
    S(MSG_ROUTER_SHUTTING_DOWN),
    S(MSG_ROUTER_BUTTON_INACTIVE),
    S(MSG_ROUTER_ADMINS_ONLY),
    S(MSG_ROUTER_BLOCKED),
    S(MSG_ROUTER_NO_DMS),
    S(MSG_ROUTER_FEATURE_OFF),
    S(MSG_ROUTER_FEATURE_OFF_GLOBAL),
    F(MSG_TREND_HEAD),
    F(MSG_TREND_HERE),
    F(MSG_TREND_OVERALL),
    F(MSG_TREND_ROW),
    F(MSG_TREND_NOTHING),
    S(MSG_TREND_FAILED),
    S(MSG_PROFILE_NOT_HERE),
    S(MSG_PROFILE_FAILED),
    F(MSG_PROFILE_HEAD),
    S(MSG_PROFILE),
    S(MSG_PROFILE_CONTESTS),
    F(MSG_PROFILE_UNKNOWN),
    F(MSG_PROFILE_RANK),
    F(MSG_PROFILE_RANK_NONE),
    F(MSG_PROFILE_RANK_OUTSIDE),
    S(MSG_EARNINGS),
    S(MSG_EARNINGS_HOLDERS),
    S(MSG_EARNINGS_RECENT),
    S(MSG_EARNINGS_NONE),
    S(MSG_EARNINGS_NONE_RECENT),
    S(MSG_EARNINGS_FAILED),
    S(MSG_REVENUE_NONE),
    S(MSG_REVENUE_NOT_HERE),
    S(MSG_REVENUE_FIXED),
    F(MSG_REVENUE_HEAD),
    F(MSG_REVENUE_LINE),
    F(MSG_REVENUE_RANGE),
    F(MSG_REVENUE_TAIL),
    F(MSG_REVENUE_TAIL_PRIVATE),
    F(MSG_REVENUE_OVERRIDDEN),
    F(MSG_REVENUE_HOWTO),
    S(MSG_REVENUE_BAD),
    F(MSG_REVENUE_SAVED),
    F(MSG_REVENUE_RESET),
    S(MSG_CONTEST_NOT_HERE),
    F(MSG_CONTEST_THUMB),
    F(MSG_CONTEST_WINNER_IMAGE),
    S(MSG_CONTEST_NONE),
    S(MSG_CONTEST_HEAD),
    S(MSG_CONTEST_ENDING),
    F(MSG_CONTEST_POOL),
    F(MSG_CONTEST_PRIZE),
    F(MSG_CONTEST_SPLIT),
    F(MSG_CONTEST_STANDINGS),
    F(MSG_CONTEST_EMPTY),
    F(MSG_CONTEST_ROW),
    S(MSG_CONTEST_FAILED),
    S(MSG_CONTEST_STARTED),
    F(MSG_CONTEST_PRIZE_ALL),
    F(MSG_CONTEST_PRIZE_SET),
    S(MSG_CONTEST_RUNNING),
    S(MSG_CONTEST_BAD_PERIOD),
    S(MSG_CONTEST_STOPPED),
    S(MSG_CONTEST_NO_CONTEST),
    S(MSG_CONTEST_IS_ENDING),
    S(MSG_CONTEST_NOT_SAVED),
    S(MSG_FEATURE_NOT_HERE),
    S(MSG_FEATURE_SET),
    S(MSG_FEATURE_SET_GLOBAL_OFF),
    S(MSG_FEATURE_STATE),
    S(MSG_NOTIFY_ON),
    S(MSG_NOTIFY_OFF),
    S(MSG_NOTICE_LOW_WALLET),
    S(MSG_NOTICE_LOW_POOL),
    S(MSG_NOTICE_UPVOTES),
    S(MSG_OPTION_NOT_INTEGER),
    S(MSG_OPTION_NOT_BOOLEAN),
    S(MSG_OPTION_NOT_USER),
    F(MSG_OPTION_MISSING),
    S(MSG_OPTION_WRONG_TYPE),
    S(MSG_OPTION_OUT_OF_RANGE),
    S(MSG_OPTION_TOO_SHORT),
    S(MSG_OPTION_TOO_LONG),
    S(MSG_OPTION_NOT_A_CHOICE),
    F(MSG_OPTION_TOO_MANY_WORDS),
    F(MSG_HELP_TYPE_TEXT),
    F(MSG_HELP_TYPE_NUMBER),
    F(MSG_HELP_TYPE_YES_NO),
    F(MSG_HELP_TYPE_MEMBER),
    F(MSG_HELP_TYPE_VALUE),
    F(MSG_HELP_ADMINS_ONLY),
    F(MSG_HELP_OPTION_LINE),
    F(MSG_HELP_OPTIONAL),
    F(MSG_HELP_ONE_OF),
    F(MSG_HELP_EXAMPLE),
    S(MSG_HELP_NO_SUCH_COMMAND),
    F(MSG_HELP_COMMANDS),
    F(MSG_HELP_ADMIN_COMMANDS),
    S(MSG_HELP_MORE),
    S(MSG_BOARD_READ_FAILED),
    S(MSG_BOARD_EMPTY),
    F(MSG_BOARD_HEADER),
    F(MSG_BOARD_PERIOD_DAY),
    F(MSG_BOARD_PERIOD_WEEK),
    F(MSG_BOARD_PERIOD_MONTH),
    F(MSG_BOARD_PERIOD_ALL),
    F(MSG_BOARD_ROW),
    F(MSG_BOARD_UNKNOWN_MODEL),
    S(MSG_BOARD_NOT_HERE),
    S(MSG_GALLERY_NOT_HERE),
    S(MSG_GALLERY_FAILED),
    S(MSG_GALLERY_EMPTY_NEW),
    S(MSG_GALLERY_EMPTY_TOP),
    S(MSG_GALLERY_NO_PAGE),
    F(MSG_GALLERY_HEADER),
    F(MSG_GALLERY_ORDER_NEW),
    F(MSG_GALLERY_ORDER_TOP),
    F(MSG_GALLERY_ROW),
    S(MSG_GALLERY_PAGES),
    F(MSG_GALLERY_PREV),
    F(MSG_GALLERY_NEXT),
    S(MSG_GALLERY_BUTTON_NOT_YOURS),
    S(MSG_GALLERY_BUTTON_EXPIRED),
    F(MSG_STATS_REFUSED),
    F(MSG_STATS_FAILED),
    F(MSG_STATS_NONE),
    S(MSG_STATS_READ_FAILED),
    F(MSG_STATS_HEADER),
    F(MSG_STATS_SCOPE_POOL),
    F(MSG_STATS_SCOPE_BOT),
    F(MSG_STATS_TOTALS),
    F(MSG_STATS_TOP_MODELS),
    F(MSG_STATS_MODEL),
    S(MSG_STATS_UNAVAILABLE),
    S(MSG_GEN_UNAVAILABLE),
    S(MSG_GEN_NEW_CONVERSATION),
    F(MSG_GEN_FORGOTTEN),
    S(MSG_GEN_FORGET_FAILED),
    F(MSG_MODELS_PRICE_REQUEST),
    F(MSG_MODELS_PRICE_INPUT),
    F(MSG_MODELS_PRICE_OUTPUT),
    F(MSG_MODELS_PRICE_FREE),
    F(MSG_MODELS_LINE),
    F(MSG_MODELS_DEMO),
    F(MSG_MODELS_YOUR_CHOICE),
    F(MSG_MODELS_SIZES),
    S(MSG_MODELS_NONE),
    S(MSG_MODELS_NO_MORE),
    S(MSG_MODELS_LIST),
    F(MSG_MODELS_A_PAGE),
    F(MSG_MODELS_BUTTON_PREVIOUS),
    F(MSG_MODELS_BUTTON_NEXT),
    S(MSG_MODELS_BUTTON_NOT_YOURS),
    S(MSG_MODELS_BUTTON_EXPIRED),
    S(MSG_MODEL_UNKNOWN),
    S(MSG_MODEL_NOT_SAVED),
    S(MSG_MODEL_CHOSEN),
    S(MSG_GEN_BUTTON_NOT_YOURS),
    F(MSG_GEN_UNTIL_MIN),
    F(MSG_GEN_UNTIL_H_MIN),
    F(MSG_GEN_DEMO),
    F(MSG_GEN_FOOTER_BALANCE_HELD),
    F(MSG_GEN_FOOTER_BALANCE),
    F(MSG_GEN_FOOTER),
    S(MSG_GEN_ASIDE_BALANCE_HELD),
    S(MSG_GEN_ASIDE_BALANCE),
    S(MSG_GEN_ASIDE_AVAILABLE),
    F(MSG_GEN_ANSWER),
    F(MSG_GEN_BUTTON_REGENERATE),
    F(MSG_GEN_BUTTON_UPVOTE),
    S(MSG_GEN_OUTPUT_FILTERED),
    S(MSG_GEN_FAILED),
    S(MSG_GEN_TIMED_OUT),
    F(MSG_GEN_PRICE),
    F(MSG_GEN_GENERATING),
    S(MSG_GEN_QUEUED),
    S(MSG_GEN_FUNDS_SHORT_BALANCE),
    S(MSG_GEN_FUNDS_SHORT),
    S(MSG_GEN_STOPPING),
    S(MSG_GEN_FALLBACK_NOT_RESERVED),
    S(MSG_GEN_FUNDS_SHORT_FOR),
    S(MSG_GEN_NOT_RESERVED),
    F(MSG_GEN_FALLING_BACK),
    S(MSG_GEN_INTERRUPTED),
    S(MSG_GEN_NO_MODEL),
    S(MSG_GEN_MODEL_OFF),
    S(MSG_GEN_MODEL_OFF_HERE),
    S(MSG_GEN_WRONG_COMMAND),
    F(MSG_GEN_MAKES_TEXT),
    F(MSG_GEN_MAKES_IMAGES),
    S(MSG_GEN_MODEL_NOT_ALLOWED),
    S(MSG_GEN_BAD_SIZE),
    S(MSG_GEN_PROMPT_TOO_LONG),
    S(MSG_GEN_PROMPT_FILTERED),
    S(MSG_GEN_USER_LIMIT),
    S(MSG_GEN_GROUP_LIMIT),
    S(MSG_GEN_TOKEN_CAP),
    S(MSG_GEN_TOKEN_CAP_SHORT),
    S(MSG_GEN_TOKEN_CAP_FALLBACK),
    S(MSG_GEN_KEY_DAY_CAP),
    S(MSG_GEN_KEY_TOTAL_CAP),
    S(MSG_GEN_POOL_CAP),
    S(MSG_GEN_USER_BUSY),
    S(MSG_GEN_BOT_BUSY),
    S(MSG_GEN_WALLET_FAILED),
    S(MSG_GEN_BAD_REQUEST),
    S(MSG_GEN_TOO_OLD),
    S(MSG_GEN_CANCELLED),
    S(MSG_GEN_CALLER_GONE),
    S(MSG_UPVOTE_DONE),
    S(MSG_UPVOTE_FAILED),
    S(MSG_UPVOTE_AGAIN),
    S(MSG_UPVOTE_UNKNOWN),
    S(MSG_UPVOTE_INVALID),
    S(MSG_UPVOTE_OWN),
    F(MSG_DEPOSIT_CARD),
    F(MSG_DEPOSIT_PACKAGE),
    F(MSG_DEPOSIT_FOR_WALLET),
    F(MSG_DEPOSIT_FOR_POOL),
    S(MSG_DEPOSIT_LINKS_YOURS),
    F(MSG_DEPOSIT_HBAR),
    F(MSG_DEPOSIT_HBAR_RATE),
    F(MSG_DEPOSIT_ALSO),
    F(MSG_DEPOSIT_TOKEN),
    F(MSG_DEPOSIT_MEMO_WALLET),
    F(MSG_DEPOSIT_MEMO_POOL),
    S(MSG_DEPOSIT_MEMO_EXACT),
    S(MSG_DEPOSIT_MEMO_PERSONAL),
    S(MSG_NOTIFY_PAYMENT),
    F(MSG_NOTIFY_A),
    F(MSG_NOTIFY_YOUR),
    S(MSG_NOTIFY_BALANCE),
    F(MSG_NOTIFY_POOL),
    F(MSG_NOTIFY_WALLET),
    S(MSG_TG_ANSWER_IN_DM),
    S(MSG_TG_DM_CLOSED),
    S(MSG_TG_DM_CLOSED_NO_LINK),
    F(MSG_TG_STARS_TITLE),
    S(MSG_TG_STARS_DESCRIPTION),
    F(MSG_TG_STARS_FOR_POOL),
    F(MSG_TG_STARS_FOR_WALLET),
    S(MSG_TG_STARS_UNAVAILABLE),
    S(MSG_TG_STARS_NOT_OFFERED),
    S(MSG_TG_STARS_CREDITED),
    F(MSG_TG_STARS_THANKS),
    S(MSG_TG_STARS_REPAID),
    S(MSG_TG_STARS_ADDED),
    S(MSG_TG_STARS_NOT_CREDITED),
    S(MSG_TG_STARS_UNKNOWN),
    S(MSG_TG_REFUND_DONE),
    S(MSG_TG_REFUND_DONE_HERE),
    S(MSG_TG_REFUND_DEBT),
    S(MSG_TG_REFUND_UNRECORDED),
    F(MSG_TG_REFUND_REFUSED),
    S(MSG_TG_REFUND_NO_CHARGE),
    F(MSG_TG_REFUND_NOT_SENT),
    S(MSG_TG_REFUND_BAD_CHARGE),
    S(MSG_TG_REFUND_ADMINS_ONLY),
    F(MSG_TG_REFUND_USAGE),
    S(MSG_TG_BUSY),
    F(MSG_ATTACH_FETCHING),
    S(MSG_ATTACH_DEFAULT_PROMPT),
    S(MSG_ATTACH_NO_VISION),
    S(MSG_ATTACH_NO_VISION_ANYWHERE),
    S(MSG_ATTACH_TOO_LARGE),
    S(MSG_ATTACH_NOT_IMAGE),
    S(MSG_ATTACH_FETCH_FAILED),
    S(MSG_ATTACH_HOST_REFUSED),
    S(MSG_ATTACH_CHAT_ONLY),
    S(MSG_PERSONA_NONE),
    F(MSG_PERSONA_LIST),
    F(MSG_PERSONA_LINE),
    F(MSG_PERSONA_IN_USE),
    S(MSG_PERSONA_CURRENT),
    S(MSG_PERSONA_CURRENT_NONE),
    F(MSG_PERSONA_FROM_MEMBER),
    F(MSG_PERSONA_FROM_CHANNEL),
    F(MSG_PERSONA_FROM_GROUP),
    F(MSG_PERSONA_FROM_BOT),
    F(MSG_PERSONA_BUTTON_NONE),
    S(MSG_PERSONA_UNKNOWN),
    S(MSG_PERSONA_CHOSEN),
    S(MSG_PERSONA_CLEARED),
    F(MSG_PERSONA_PROMPT),
    S(MSG_PERSONA_NOT_SAVED),
    S(MSG_PERSONA_BUTTON_NOT_YOURS),
    S(MSG_PERSONA_BUTTON_EXPIRED),
    S(MSG_ADMIN_PERSONA_NOT_HERE),
    S(MSG_ADMIN_PERSONA_SET),
    S(MSG_ADMIN_PERSONA_CLEARED),
    F(MSG_ADMIN_PERSONA_WHERE_CHANNEL),
    F(MSG_ADMIN_PERSONA_WHERE_TOPIC),
    F(MSG_ADMIN_PERSONA_WHERE_GROUP),
    S(MSG_ADMIN_PERSONA_UNKNOWN),
    S(MSG_ADMIN_PLAINTALK_NOT_HERE),
    S(MSG_ADMIN_PLAINTALK_ON),
    S(MSG_ADMIN_PLAINTALK_OFF),
    S(MSG_APPR_WAITING),
    S(MSG_APPR_APPROVED),
    S(MSG_APPR_EDITED),
    S(MSG_APPR_REJECTED),
    S(MSG_APPR_IMAGE_LOST),
    S(MSG_APPR_WAITING_FREE),
    S(MSG_APPR_RELEASED),
    S(MSG_APPR_FREE_ENDED),
    S(MSG_APPR_NOTICE_FREE),
    S(MSG_APPR_TIMED_OUT),
    S(MSG_APPR_NOTICE),
    F(MSG_APPR_NOTICE_PROMPT),
    F(MSG_APPR_NOTICE_HOW),
    F(MSG_APPR_BUTTON_APPROVE),
    F(MSG_APPR_BUTTON_EDIT),
    F(MSG_APPR_BUTTON_REJECT),
    F(MSG_APPR_BUTTON_REJECT_WITH),
    F(MSG_APPR_REASON_DEFAULT),
    S(MSG_APPR_EMPTY),
    F(MSG_APPR_LIST_HEAD),
    F(MSG_APPR_LIST_ITEM),
    F(MSG_APPR_LIST_MORE),
    S(MSG_APPR_NOT_FOUND),
    S(MSG_APPR_ALREADY),
    S(MSG_APPR_DONE),
    S(MSG_APPR_FORWARDED),
    S(MSG_APPR_FENCED),
    S(MSG_APPR_NOT_YOURS),
    F(MSG_APPR_EDIT_HOW),
    S(MSG_LINK_CODE),
    S(MSG_LINK_CODES_FULL),
    S(MSG_LINK_DM_ONLY),
    S(MSG_LINK_CODE_SHOWN),
    S(MSG_LINK_WRONG),
    S(MSG_LINK_EXPIRED),
    S(MSG_LINK_LIMITED),
    S(MSG_LINK_SELF),
    S(MSG_LINK_SAME_PLATFORM),
    S(MSG_LINK_ALREADY),
    S(MSG_LINK_HOLDS),
    S(MSG_LINK_BUSY),
    S(MSG_LINK_DONE),
    S(MSG_LINK_HELD),
    S(MSG_LINK_FAILED),
    S(MSG_LINK_RACED),
    S(MSG_UNLINK_NONE),
    S(MSG_UNLINK_SELF),
    S(MSG_UNLINK_OTHERS),
    S(MSG_HISTORY_LINKED),
};

#undef S
#undef F

static const struct msg_entry *msg_find(const char *name, size_t len)
{
    for (size_t i = 0; i < TEST_ARRAY_SIZE(msgs); i++) {
        if (strlen(msgs[i].name) == len && strncmp(msgs[i].name, name, len) == 0)
            return &msgs[i];
    }
    return NULL;
}

/* The conversion specifiers of a format, one letter each, in order:
 * s (%s, %.Ns), u (%u), z (%zu), l (%lld). Returns the count, or -1
 * for a specifier outside that set; "%%" is not a conversion. */
static int msg_signature(const char *fmt, char *sig, size_t cap)
{
    size_t n = 0;
    for (const char *p = fmt; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == '%')
            continue;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p))
                p++;
        }
        char c;
        if (*p == 's')
            c = 's';
        else if (*p == 'u')
            c = 'u';
        else if (p[0] == 'z' && p[1] == 'u')
            c = 'z', p++;
        else if (p[0] == 'l' && p[1] == 'l' && p[2] == 'd')
            c = 'l', p += 2;
        else
            return -1;
        if (n + 1 >= cap)
            return -1;
        sig[n++] = c;
    }
    sig[n] = '\0';
    return (int)n;
}

/* Every MSG_ macro the header defines is in the table, once, and the table
 * names nothing the header lacks. */
static void test_table_matches_header(void **state)
{
    (void)state;
    char *h = test_file_read("core/messages.h", NULL);
    if (h == NULL)
        fail_msg("core/messages.h not found; run the tests from the repository root");
    size_t defined = 0;
    for (const char *p = h; (p = strstr(p, "#define MSG_")) != NULL;) {
        p += strlen("#define ");
        size_t len = 0;
        while (isalnum((unsigned char)p[len]) || p[len] == '_')
            len++;
        if (msg_find(p, len) == NULL)
            fail_msg("%.*s is defined in core/messages.h but not listed in this test", (int)len, p);
        defined++;
        p += len;
    }
    free(h);
    assert_int_equal(defined, TEST_ARRAY_SIZE(msgs));
    for (size_t i = 0; i < TEST_ARRAY_SIZE(msgs); i++) {
        for (size_t j = i + 1; j < TEST_ARRAY_SIZE(msgs); j++) {
            if (strcmp(msgs[i].name, msgs[j].name) == 0)
                fail_msg("%s is listed twice", msgs[i].name);
        }
    }
}

/* Texts are not empty and do not carry stray blanks; sentences end as
 * sentences ('.', '?', '!' or ')'), a final line break aside. */
static void test_texts_are_well_formed(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(msgs); i++) {
        const struct msg_entry *m = &msgs[i];
        size_t len = strlen(m->text);
        if (len == 0)
            fail_msg("%s is empty", m->name);
        while (len > 0 && m->text[len - 1] == '\n')
            len--;
        if (len == 0)
            fail_msg("%s is only line breaks", m->name);
        if (m->text[len - 1] == ' ' || m->text[len - 1] == '\t')
            fail_msg("%s ends with a blank", m->name);
        if (m->kind == MSG_SENTENCE && strchr(".?!)", m->text[len - 1]) == NULL)
            fail_msg("%s is a sentence but does not end like one: \"%s\"", m->name, m->text);
        if (strstr(m->text, "  ") != NULL && m->kind == MSG_SENTENCE)
            fail_msg("%s has a double space", m->name);
    }
}

/* One wording per sentence: two names for the same sentence would let an
 * operator reword one and leave the other behind. */
static void test_no_sentence_twice(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_ARRAY_SIZE(msgs); i++) {
        if (msgs[i].kind != MSG_SENTENCE)
            continue;
        for (size_t j = i + 1; j < TEST_ARRAY_SIZE(msgs); j++) {
            if (msgs[j].kind == MSG_SENTENCE && strcmp(msgs[i].text, msgs[j].text) == 0)
                fail_msg("%s and %s are the same sentence", msgs[i].name, msgs[j].name);
        }
    }
}

/* Every conversion is one the bot.conf override check will compare (kind
 * and order), and no text takes more arguments than the callers pass. */
static void test_conversions_are_known(void **state)
{
    (void)state;
    char sig[16];
    for (size_t i = 0; i < TEST_ARRAY_SIZE(msgs); i++) {
        int n = msg_signature(msgs[i].text, sig, sizeof(sig));
        if (n < 0)
            fail_msg("%s uses a conversion outside %%s %%u %%zu %%lld: \"%s\"", msgs[i].name,
                     msgs[i].text);
        assert_true(n <= 6);
    }
    /* The signature itself, on texts whose arguments are known. */
    assert_int_equal(msg_signature(MSG_GEN_FUNDS_SHORT_BALANCE, sig, sizeof(sig)), 4);
    assert_string_equal(sig, "ssll");
    assert_int_equal(msg_signature(MSG_OPTION_TOO_LONG, sig, sizeof(sig)), 3);
    assert_string_equal(sig, "szl");
    assert_int_equal(msg_signature(MSG_OPTION_NOT_INTEGER, sig, sizeof(sig)), 2);
    assert_string_equal(sig, "ss");
    assert_int_equal(msg_signature(MSG_GEN_USER_BUSY, sig, sizeof(sig)), 2);
    assert_string_equal(sig, "us");
    assert_int_equal(msg_signature(MSG_ROUTER_SHUTTING_DOWN, sig, sizeof(sig)), 0);
    assert_int_equal(msg_signature("100%% sure", sig, sizeof(sig)), 0);
    assert_int_equal(msg_signature("%d", sig, sizeof(sig)), -1);
    assert_int_equal(msg_signature("%n", sig, sizeof(sig)), -1);
    assert_int_equal(msg_signature("%-*s", sig, sizeof(sig)), -1); /* width is an argument */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_matches_header),
    cmocka_unit_test(test_texts_are_well_formed),
    cmocka_unit_test(test_no_sentence_twice),
    cmocka_unit_test(test_conversions_are_known),
};

TEST_GROUP_DEFINE(messages, tests, NULL, NULL)
