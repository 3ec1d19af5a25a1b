/* The Hedera deposit poller against a fake mirror node (tests/fake/httpd):
 * paging through links.next, HBAR and token rates, failed and outgoing
 * transactions, unknown memos kept for the operator, restart from the
 * stored cursor without a second credit, a malformed page, and the mirror
 * being down. */
#include "net/http.h"
#include "adapters/hedera/hedera.h"
#include "bot/mirror.h"
#include "base/error.h"
#include "core/audit.h"
#include "core/payref.h"
#include "core/state.h"
#include "tests/core/ledger_helpers.h"
#include "tests/fake/httpd.h"
#include "tests/test.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "mirror-test-key-0123456789"
#define TREASURY "0.0.900"

enum fake_mode { FAKE_NORMAL, FAKE_REPLAY, FAKE_MALFORMED, FAKE_DOWN, FAKE_HUGE };

struct mfx {
    struct lt lt;
    struct httpd *fake;
    struct http_client *http;
    struct mirror *mirror;
    enum fake_mode mode;
    char targets[16][512]; /* requests seen */
    unsigned ntargets;
    unsigned polls;
    int last_rc;
    char memo_wallet[160]; /* base64 memos */
    char memo_pool[160];
};

static void b64(char *out, const char *text)
{
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)strlen(text));
}

static void page1(struct mfx *fx, char *out, size_t cap)
{
    snprintf(
        out, cap,
        "{\"transactions\":["
        "{\"consensus_timestamp\":\"1700000001.000000001\",\"transaction_id\":\"0.0.5001-"
        "1700000000-000000001\","
        "\"name\":\"CRYPTOTRANSFER\",\"result\":\"SUCCESS\",\"memo_base64\":\"%s\",\"charged_tx_"
        "fee\":84000,"
        "\"transfers\":[{\"account\":\"0.0.5001\",\"amount\":-250084000,\"is_approval\":false},"
        "{\"account\":\"0.0.3\",\"amount\":84000,\"is_approval\":false},"
        "{\"account\":\"" TREASURY
        "\",\"amount\":250000000,\"is_approval\":false}],\"token_transfers\":[]},"
        "{\"consensus_timestamp\":\"1700000001.000000002\",\"transaction_id\":\"0.0.5001-"
        "1700000000-000000002\","
        "\"name\":\"CRYPTOTRANSFER\",\"result\":\"INSUFFICIENT_PAYER_BALANCE\",\"memo_base64\":\"%"
        "s\","
        "\"transfers\":[{\"account\":\"" TREASURY "\",\"amount\":900000000}]},"
        "{\"consensus_timestamp\":\"1700000001.000000003\",\"transaction_id\":\"0.0.5002-"
        "1700000000-000000003\","
        "\"name\":\"CRYPTOTRANSFER\",\"result\":\"SUCCESS\",\"memo_base64\":\"%s\","
        "\"transfers\":[{\"account\":\"0.0.5002\",\"amount\":-90000},{\"account\":\"0.0.4\","
        "\"amount\":90000}],"
        "\"token_transfers\":[{\"token_id\":\"0.0.777\",\"account\":\"0.0.5002\",\"amount\":-30000,"
        "\"is_approval\":false},"
        "{\"token_id\":\"0.0.777\",\"account\":\"" TREASURY
        "\",\"amount\":30000,\"is_approval\":false}]}"
        "],\"links\":{\"next\":%s}}",
        fx->memo_wallet, fx->memo_wallet, fx->memo_pool,
        fx->mode == FAKE_REPLAY ? "null"
                                : "\"/api/v1/transactions?account.id=" TREASURY
                                  "&transactiontype=CRYPTOTRANSFER&order=asc&limit=100"
                                  "&timestamp=gt:1700000001.000000003\"");
}

static const char page2[] =
    "{\"transactions\":["
    "{\"consensus_timestamp\":\"1700000001.000000004\",\"transaction_id\":\"0.0.5003-1700000000-"
    "000000004\","
    "\"name\":\"CRYPTOTRANSFER\",\"result\":\"SUCCESS\",\"memo_base64\":\"aGVsbG8gdGhlcmU=\","
    "\"transfers\":[{\"account\":\"0.0.5003\",\"amount\":-100000000},{\"account\":\"" TREASURY
    "\",\"amount\":100000000}]},"
    "{\"consensus_timestamp\":\"1700000001.000000005\",\"transaction_id\":\"0.0.900-1700000000-"
    "000000005\","
    "\"name\":\"CRYPTOTRANSFER\",\"result\":\"SUCCESS\",\"memo_base64\":\"\","
    "\"transfers\":[{\"account\":\"" TREASURY
    "\",\"amount\":-5000000},{\"account\":\"0.0.5003\",\"amount\":5000000}]}"
    "],\"links\":{\"next\":null}}";

static void fake_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct mfx *fx = data;
    if (fx->ntargets < 16)
        snprintf(fx->targets[fx->ntargets++], sizeof(fx->targets[0]), "%s", req->target);
    char body[8192];
    if (fx->mode == FAKE_DOWN) {
        httpd_response_send(res, 503, "application/json", "{\"_status\":{}}", 14);
        return;
    }
    if (fx->mode == FAKE_HUGE) {
        /* A well-formed empty page padded past what one page may cost. */
        size_t n = HEDERA_PAGE_MAX_BYTES + 4096;
        char *big = malloc(n + 1);
        assert_non_null(big);
        int k = snprintf(big, n + 1, "{\"transactions\":[],\"links\":{\"next\":null},\"pad\":\"");
        memset(big + k, 'x', n - (size_t)k - 2);
        memcpy(big + n - 2, "\"}", 2);
        big[n] = '\0';
        httpd_response_send(res, 200, "application/json", big, n);
        free(big);
        return;
    }
    if (fx->mode == FAKE_MALFORMED) {
        const char *bad =
            "{\"transactions\":[{\"consensus_timestamp\":\"yesterday\"}],\"links\":{}}";
        httpd_response_send(res, 200, "application/json", bad, strlen(bad));
        return;
    }
    if (strncmp(req->target, "/api/v1/transactions?", 21) != 0 ||
        strstr(req->target, "account.id=" TREASURY) == NULL ||
        strstr(req->target, "order=asc") == NULL) {
        httpd_response_send(res, 400, "application/json", "{}", 2);
        return;
    }
    if (fx->mode == FAKE_REPLAY || strstr(req->target, "timestamp=gt:") == NULL) {
        page1(fx, body, sizeof(body));
    } else if (strstr(req->target, "timestamp=gt:1700000001.000000003") != NULL) {
        snprintf(body, sizeof(body), "%s", page2);
    } else {
        snprintf(body, sizeof(body), "{\"transactions\":[],\"links\":{\"next\":null}}");
    }
    httpd_response_send(res, 200, "application/json", body, strlen(body));
}

static void on_poll(void *data, int rc)
{
    struct mfx *fx = data;
    fx->polls++;
    fx->last_rc = rc;
}

static void mfx_mirror_new(struct mfx *fx, const char *url)
{
    struct mirror_options o = {.http = fx->http,
                               .ledger = &fx->lt.ledger,
                               .mirror_url = url,
                               .treasury = TREASURY,
                               .reference_key = KEY,
                               .tinybars_per_credit = 1000000,
                               .tokens = "0.0.777:100",
                               .welcome_bonus = 100,
                               .interval_ms = 3600 * 1000, /* tests poll by hand */
                               .on_poll = on_poll,
                               .data = fx};
    fx->mirror = mirror_new(&fx->lt.loop, &o);
    assert_non_null(fx->mirror);
}

static void mfx_wait_polls(struct mfx *fx, unsigned n)
{
    while (fx->polls < n)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
}

static void mfx_open(struct mfx *fx)
{
    memset(fx, 0, sizeof(*fx));
    lt_init(&fx->lt, true, false);
    char memo[PAYREF_MEMO_MAX + 1];
    assert_int_equal(payref_memo_make(memo, sizeof(memo), KEY, strlen(KEY), "discord:1"), 0);
    b64(fx->memo_wallet, memo);
    assert_int_equal(payref_memo_make(memo, sizeof(memo), KEY, strlen(KEY), "pool:discord:9"), 0);
    b64(fx->memo_pool, memo);
    fx->fake = httpd_new(&fx->lt.loop, fake_handler, fx);
    assert_non_null(fx->fake);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->lt.loop, NULL, &fx->http), 0);
    mfx_mirror_new(fx, httpd_base_url(fx->fake));
}

static void stopped(void *data)
{
    *(bool *)data = true;
}

static void mfx_mirror_stop(struct mfx *fx)
{
    bool done = false;
    mirror_stop(fx->mirror, stopped, &done);
    while (!done)
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
    fx->mirror = NULL;
}

static void mfx_close(struct mfx *fx)
{
    if (fx->mirror != NULL)
        mfx_mirror_stop(fx);
    http_client_close(fx->http, NULL, NULL);
    httpd_close(fx->fake, NULL, NULL);
    lt_done(&fx->lt);
}

static void got_state(int rc, const char *value, void *data)
{
    char *out = data;
    snprintf(out, 512, "%d %s", rc, value != NULL ? value : "-");
}

static void read_state(struct mfx *fx, const char *ns, const char *key, char *out)
{
    out[0] = '\0';
    assert_int_equal(state_get(ledger_store(fx->lt.ledger), ns, key, got_state, out), 0);
    while (out[0] == '\0')
        uv_run(&fx->lt.loop, UV_RUN_ONCE);
}

struct mirror_audit {
    bool done;
    size_t n;
    char subject[STORE_ID_SIZE];
    char detail[STORE_AUDIT_DETAIL_SIZE];
};

static void mirror_audit_cb(int rc, const struct store_audit *e, size_t n, void *data)
{
    struct mirror_audit *ma = data;
    ma->n = rc == 0 ? n : 0;
    if (ma->n > 0) {
        snprintf(ma->subject, sizeof(ma->subject), "%s", e[0].subject);
        snprintf(ma->detail, sizeof(ma->detail), "%s", e[0].detail);
    }
    ma->done = true;
}

static void test_mirror_pages_and_credits(void **state)
{
    (void)state;
    struct mfx fx;
    mfx_open(&fx);
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 1);
    assert_int_equal(fx.last_rc, 0);
    /* Two pages: the second through links.next. */
    assert_int_equal(fx.ntargets, 2);
    assert_null(strstr(fx.targets[0], "timestamp="));
    assert_non_null(strstr(fx.targets[0], "transactiontype=CRYPTOTRANSFER"));
    assert_non_null(strstr(fx.targets[1], "timestamp=gt:1700000001.000000003"));
    /* 2.5 HBAR at 1,000,000 tinybars a credit; 30000 token units at 100. */
    assert_int_equal(lt_balance(&fx.lt, "discord:1").posted, 100 + 250);
    assert_int_equal(lt_balance(&fx.lt, "pool:discord:9").posted, 300);
    struct mirror_stats st;
    mirror_stats_get(fx.mirror, &st);
    assert_int_equal(st.credited, 2);
    assert_int_equal(st.unmatched, 1);
    assert_string_equal(st.cursor, "1700000001.000000005");
    /* The unknown memo is kept for the operator; the cursor is stored. */
    char got[512];
    read_state(&fx, "hedera.unmatched", "0.0.5003-1700000000-000000004", got);
    assert_non_null(strstr(got, "reason=unknown_memo"));
    assert_non_null(strstr(got, "memo=hello there"));
    assert_non_null(strstr(got, "credits=")); /* what it would buy, for /admin payments assign */
    /* In the audit trail too, without what the sender typed. */
    struct mirror_audit ma = {0};
    assert_int_equal(
        audit_list(ledger_store(fx.lt.ledger), "payment.unmatched", 0, 0, 4, mirror_audit_cb, &ma),
        0);
    while (!ma.done)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    assert_int_equal(ma.n, 1);
    assert_string_equal(ma.subject, "hedera:0.0.5003-1700000000-000000004");
    assert_non_null(strstr(ma.detail, "\"reason\":\"unknown_memo\""));
    assert_null(strstr(ma.detail, "hello"));
    read_state(&fx, "hedera", "cursor", got);
    assert_string_equal(got, "0 1700000001.000000005");
    /* The next poll asks from the cursor and finds nothing new. */
    mirror_poll_now(fx.mirror);
    mfx_wait_polls(&fx, 2);
    assert_int_equal(fx.last_rc, 0);
    assert_non_null(strstr(fx.targets[2], "timestamp=gt:1700000001.000000005"));
    assert_int_equal(lt_balance(&fx.lt, "discord:1").posted, 350);
    mfx_close(&fx);
}

static void test_mirror_restart_and_replay(void **state)
{
    (void)state;
    struct mfx fx;
    mfx_open(&fx);
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 1);
    mfx_mirror_stop(&fx);
    /* A new poller (a restart) resumes from the stored cursor. */
    lt_ledger_close(&fx.lt);
    lt_ledger_open(&fx.lt);
    fx.ntargets = 0;
    mfx_mirror_new(&fx, httpd_base_url(fx.fake));
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 2);
    assert_int_equal(fx.last_rc, 0);
    assert_non_null(strstr(fx.targets[0], "timestamp=gt:1700000001.000000005"));
    /* A mirror that sends the old page again (a cursor lost in a crash
     * mid-page) credits nothing twice. */
    fx.mode = FAKE_REPLAY;
    mirror_poll_now(fx.mirror);
    mfx_wait_polls(&fx, 3);
    assert_int_equal(fx.last_rc, 0);
    struct mirror_stats st;
    mirror_stats_get(fx.mirror, &st);
    assert_int_equal(st.credited, 0);
    assert_int_equal(lt_balance(&fx.lt, "discord:1").posted, 350);
    assert_int_equal(lt_balance(&fx.lt, "pool:discord:9").posted, 300);
    /* An old page never moves the cursor back. */
    assert_string_equal(st.cursor, "1700000001.000000005");
    mfx_close(&fx);
}

static void test_mirror_malformed_and_down(void **state)
{
    (void)state;
    struct mfx fx;
    mfx_open(&fx);
    fx.mode = FAKE_MALFORMED;
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 1);
    assert_int_equal(fx.last_rc, HB_EPROTO);
    fx.mode = FAKE_DOWN;
    mirror_poll_now(fx.mirror);
    mfx_wait_polls(&fx, 2);
    assert_int_equal(fx.last_rc, HB_EHTTP);
    struct mirror_stats st;
    mirror_stats_get(fx.mirror, &st);
    assert_int_equal(st.failures, 2);
    assert_string_equal(st.cursor, "");
    assert_int_equal(st.credited, 0);
    /* Back to normal: everything is credited from the start. */
    fx.mode = FAKE_NORMAL;
    mirror_poll_now(fx.mirror);
    mfx_wait_polls(&fx, 3);
    assert_int_equal(fx.last_rc, 0);
    assert_int_equal(lt_balance(&fx.lt, "discord:1").posted, 350);
    mfx_mirror_stop(&fx);
    /* Nobody listening at all. */
    struct httpd *gone = httpd_new(&fx.lt.loop, fake_handler, &fx);
    char url[64];
    snprintf(url, sizeof(url), "%s", httpd_base_url(gone));
    bool closed = false;
    httpd_close(gone, stopped, &closed);
    while (!closed)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    mfx_mirror_new(&fx, url);
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 4);
    assert_true(fx.last_rc < 0);
    mfx_close(&fx);
}

/* A page with ntx transactions, each with per_tx token transfers to the
 * treasury: token (i % tokens) of amount 7, and one outgoing transfer. */
static char *gen_page(size_t ntx, size_t per_tx, size_t tokens, size_t *len)
{
    size_t cap = 256 + ntx * (256 + per_tx * 96);
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n = (size_t)snprintf(buf, cap, "{\"transactions\":[");
    for (size_t t = 0; t < ntx; t++) {
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s{\"consensus_timestamp\":\"1700000001.%09zu\",\"transaction_id\":"
                              "\"0.0.5-1-%zu\",\"result\":\"SUCCESS\",\"memo_base64\":\"\","
                              "\"transfers\":[],\"token_transfers\":[{\"token_id\":\"0.0.1\","
                              "\"account\":\"0.0.5\",\"amount\":-1}",
                              t ? "," : "", t + 1, t + 1);
        for (size_t i = 0; i < per_tx; i++)
            n += (size_t)snprintf(buf + n, cap - n,
                                  ",{\"token_id\":\"0.0.%zu\",\"account\":\"" TREASURY
                                  "\",\"amount\":7}",
                                  1000 + i % tokens);
        n += (size_t)snprintf(buf + n, cap - n, "]}");
    }
    n += (size_t)snprintf(buf + n, cap - n, "],\"links\":{\"next\":null}}");
    assert_true(n < cap);
    *len = n;
    return buf;
}

/* Hostile pages: sums that overflow 64 bits (tests/corpus/hedera/), too
 * many transfers, too many bytes. Each is refused whole; a large page
 * under the bounds parses to one deposit per token, each summed once. */
static void test_mirror_hostile_pages(void **state)
{
    (void)state;
    struct hedera_page page;
    size_t len = 0;
    char *body = test_file_read("tests/corpus/hedera/hedera-sum-overflow.json", &len);
    assert_non_null(body);
    assert_int_equal(hedera_page_parse(body, len, "0.0.1234", &page), HB_EOVERFLOW);
    assert_null(page.items);
    free(body);
    /* The same for a token: 1100 transfers of 9e15 to the treasury. */
    char *tok = malloc(1100 * 80 + 512);
    assert_non_null(tok);
    size_t n = (size_t)sprintf(tok, "{\"transactions\":[{\"consensus_timestamp\":\"1.1\","
                                    "\"transaction_id\":\"0.0.5-1-1\",\"result\":\"SUCCESS\","
                                    "\"token_transfers\":[");
    for (int i = 0; i < 1100; i++)
        n += (size_t)sprintf(tok + n,
                             "%s{\"token_id\":\"0.0.7\",\"account\":\"" TREASURY
                             "\",\"amount\":9000000000000000}",
                             i ? "," : "");
    sprintf(tok + n, "]}]}");
    assert_int_equal(hedera_page_parse(tok, strlen(tok), TREASURY, &page), HB_EOVERFLOW);
    free(tok);
    /* One transaction with 20,000 token transfers: over the page's bound. */
    body = gen_page(1, 20000, 20000, &len);
    assert_int_equal(hedera_page_parse(body, len, TREASURY, &page), HB_ELIMIT);
    free(body);
    /* Spread over 100 transactions, still over. */
    body = gen_page(100, 200, 50, &len);
    assert_int_equal(hedera_page_parse(body, len, TREASURY, &page), HB_ELIMIT);
    free(body);
    /* Under the bounds: 9,000 transfers to the treasury in one transaction,
     * 4,500 distinct tokens twice each: 4,500 deposits of 14, in order. */
    body = gen_page(1, 9000, 4500, &len);
    assert_int_equal(hedera_page_parse(body, len, TREASURY, &page), 0);
    assert_int_equal(page.n, 4500);
    for (size_t i = 0; i < page.n; i++) {
        char want[32];
        snprintf(want, sizeof(want), "0.0.%zu", 1000 + i);
        assert_string_equal(page.items[i].token, want);
        assert_int_equal(page.items[i].amount, 14);
    }
    hedera_page_free(&page);
    free(body);
    /* Too many bytes is refused before any parsing. */
    assert_int_equal(hedera_page_parse("{}", HEDERA_PAGE_MAX_BYTES + 1, TREASURY, &page),
                     HB_ELIMIT);
    /* And the mirror does not fetch such a page at all. */
    struct mfx fx;
    mfx_open(&fx);
    fx.mode = FAKE_HUGE;
    assert_int_equal(mirror_start(fx.mirror), 0);
    mfx_wait_polls(&fx, 1);
    assert_true(fx.last_rc < 0);
    mfx_close(&fx);
}

static void test_mirror_parse_and_tokens(void **state)
{
    (void)state;
    struct deposit_token t[4];
    assert_int_equal(mirror_tokens_parse("0.0.777:100, 0.0.8:5", t, 4), 2);
    assert_string_equal(t[1].id, "0.0.8");
    assert_int_equal(t[1].units_per_credit, 5);
    assert_int_equal(mirror_tokens_parse("0.0.777", t, 4), HB_EINVAL);
    assert_int_equal(mirror_tokens_parse("0.0.777:0", t, 4), HB_EINVAL);
    assert_int_equal(mirror_tokens_parse(NULL, t, 4), 0);
}

/* Stopping with a request in flight: the request is cancelled, nothing
 * leaks, the loop closes. */
static void test_mirror_stop_mid_request(void **state)
{
    (void)state;
    struct mfx fx;
    mfx_open(&fx);
    assert_int_equal(mirror_start(fx.mirror), 0);
    while (fx.ntargets == 0)
        uv_run(&fx.lt.loop, UV_RUN_ONCE);
    mfx_close(&fx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_mirror_pages_and_credits),
    cmocka_unit_test(test_mirror_restart_and_replay),
    cmocka_unit_test(test_mirror_malformed_and_down),
    cmocka_unit_test(test_mirror_parse_and_tokens),
    cmocka_unit_test(test_mirror_hostile_pages),
    cmocka_unit_test(test_mirror_stop_mid_request),
};

TEST_GROUP_DEFINE(mirror, tests, lt_group_setup, lt_group_teardown)
