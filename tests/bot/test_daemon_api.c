/* The metered API through the real daemon: keys made on the console
 * (/apikey), requests over HTTP with them, and what the ledger charged.
 * The provider is the offline demo provider, which streams its answer in
 * chunks and reports usage like a remote one. Covers the models list, a
 * completion (streamed and not), an image, each charged once; a bad,
 * revoked and expired key; no credits; a key's rate limit; a model the
 * key may not use; a body too large; an idempotent retry; and that the
 * store and the logs hold a key's hash only. */
#include "net/http.h"
#include "tests/bot/tcall.h"
#include "tests/fake/httpd.h"
#include "tests/fake/telegram_api.h"
#include "tests/test.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct dapi {
    struct test_daemon_dir f;
    int port;
    struct test_child c;
    uv_loop_t loop;
    struct http_client *client;
};

static void dapi_conf(struct dapi *t)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[storage]\npath = %s\n[ledger]\nwelcome_bonus = 1000\n"
             "[console]\nenabled = true\nuser = tester\nadmin = true\nimage_dir = %s\n"
             "[server]\nenabled = true\nport = %d\n[api]\nenabled = true\nmax_body = 4096\n"
             "[provider \"demo\"]\nkind = demo\n"
             "[model \"demo-chat\"]\nprovider = demo\nprice_request = 3\nmax_output_tokens = 50\n"
             "[model \"demo-image\"]\nprovider = demo\nmodality = image\nprice_request = 5\n"
             "sizes = 64x64\n"
             "[model \"pricey\"]\nprovider = demo\nprice_request = 5000\n",
             t->f.db, t->f.dir, t->port);
    test_file_write(t->f.conf, text, (size_t)-1);
}

/* The test's own loop and HTTP client, to call the daemon with. */
static void dapi_client_open(struct dapi *t)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&t->loop, NULL, &t->client), 0);
}

static void dapi_client_close(struct dapi *t)
{
    http_client_close(t->client, NULL, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* A fresh directory with the usual bot.conf (private), on a free port. */
static void dapi_open(struct dapi *t)
{
    memset(t, 0, sizeof(*t));
    test_daemon_dir_init(&t->f, "Test Bot");
    t->port = test_port_free();
    dapi_conf(t);
    chmod(t->f.conf, 0600);
}

static void dapi_start(struct dapi *t)
{
    char *argv[] = {(char *)test_haibot_bin(), "-c", t->f.conf, NULL};
    test_child_start(&t->c, argv);
    assert_true(test_child_wait_for(&t->c, "err", "api.started", 15000));
    assert_true(test_child_wait_for(&t->c, "err", "console.started", 15000));
}

static void dapi_stop(struct dapi *t)
{
    kill(t->c.pid, SIGTERM);
    int status = test_child_finish(&t->c, 15000);
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", t->c.err);
    assert_int_equal(status, 0);
}

static void dapi_say(struct dapi *t, const char *line)
{
    size_t n = strlen(line);
    assert_true(write(t->c.in_fd, line, n) == (ssize_t)n);
}

/* Make a key on the console and return it (heap). */
static char *dapi_key(struct dapi *t, const char *args)
{
    size_t before = t->c.out_len;
    char line[256], name[64], done[128];
    snprintf(line, sizeof(line), "/apikey create %s\n", args);
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(args, " "), args);
    /* The answer's last words name the key: unique in the output. */
    snprintf(done, sizeof(done), "/apikey revoke %s ends it.", name);
    dapi_say(t, line);
    assert_true(test_child_wait_for(&t->c, "out", done, 15000));
    const char *k = strstr(t->c.out + before, "hai-");
    assert_non_null(k);
    char *key = strndup(k, 68);
    assert_int_equal(strlen(key), 68);
    return key;
}

static void dapi_call(struct dapi *t, const char *method, const char *path, const char *key,
                      const char *idem, const char *body, struct tcall *out)
{
    char url[256], auth[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", t->port, path);
    snprintf(auth, sizeof(auth), "Bearer %s", key);
    const char *headers[] = {"Authorization", auth, idem != NULL ? "Idempotency-Key" : NULL, idem,
                             NULL};
    tcall_do(&t->loop, t->client, method, url, key != NULL ? headers : NULL, body,
             body != NULL ? strlen(body) : 0, out);
}

/* The wallet's available credits, from /api/v1/me. */
static long long dapi_available(struct dapi *t, const char *key)
{
    struct tcall r;
    dapi_call(t, "GET", "/api/v1/me", key, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    const char *a = strstr(r.body, "\"available\":");
    assert_non_null(a);
    long long v = strtoll(a + 12, NULL, 10);
    tcall_clear(&r);
    return v;
}

static long long dapi_charged(const char *body)
{
    const char *a = strstr(body, "\"credits_charged\":");
    assert_non_null(a);
    return strtoll(a + 18, NULL, 10);
}

static void dapi_expect_error(struct tcall *r, int status, const char *code)
{
    if (r->status != status)
        fprintf(stderr, "status %d body %s\n", r->status, r->body != NULL ? r->body : "");
    assert_int_equal(r->status, status);
    char want[96];
    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    assert_non_null(strstr(r->body, want));
    assert_non_null(strstr(r->body, "{\"error\":{\"message\":"));
}

/* Is needle anywhere in the file's bytes? */
static bool dapi_file_has(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = test_file_read(path, &len);
    if (data == NULL)
        return false;
    bool found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

#define APIKEY_TEST_LEN 68

#define CHAT_BODY "{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static void test_api_end_to_end(void **state)
{
    (void)state;
    struct dapi t;
    dapi_open(&t);
    dapi_client_open(&t);
    dapi_start(&t);

    char *key = dapi_key(&t, "laptop");
    char *limited = dapi_key(&t, "limited rpm:2");
    char *chatonly = dapi_key(&t, "chatonly models:demo-chat");
    char *gone = dapi_key(&t, "gone");
    char *soon = dapi_key(&t, "soon days:1");
    struct tcall r;

    /* The models list: every model for a key without a list, the key's own
     * for one with a list. */
    dapi_call(&t, "GET", "/v1/models", key, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"object\":\"list\""));
    assert_non_null(strstr(r.body, "\"id\":\"demo-chat\""));
    assert_non_null(strstr(r.body, "\"id\":\"demo-image\""));
    tcall_clear(&r);
    dapi_call(&t, "GET", "/v1/models", chatonly, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"id\":\"demo-chat\""));
    assert_null(strstr(r.body, "demo-image"));
    tcall_clear(&r);

    /* A completion is charged what the settlement says, once. */
    long long before = dapi_available(&t, key);
    assert_int_equal(before, 1000);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"object\":\"chat.completion\""));
    assert_non_null(strstr(r.body, "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(r.body, "[demo]"));
    assert_int_equal(dapi_charged(r.body), 3);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), before - 3);

    /* Streamed: chunks, the usage chunk asked for, [DONE]; charged too. */
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"demo-chat\",\"stream\":true,\"stream_options\":{\"include_usage\":"
              "true},\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":"
              "\"user\",\"content\":\"hello\"}]}",
              &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/event-stream"));
    assert_non_null(strstr(r.body, "data: {\"id\":\"chatcmpl-"));
    assert_non_null(strstr(r.body, "\"object\":\"chat.completion.chunk\""));
    assert_non_null(strstr(r.body, "\"delta\":{\"content\":\"[demo]"));
    assert_non_null(strstr(r.body, "\"choices\":[],\"usage\":{\"prompt_tokens\":"));
    assert_int_equal(dapi_charged(r.body), 3);
    assert_non_null(strstr(r.body, "data: [DONE]\n\n"));
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), before - 6);

    /* An image, as b64_json, charged its price. */
    dapi_call(&t, "POST", "/v1/images/generations", key, NULL,
              "{\"model\":\"demo-image\",\"prompt\":\"a cat\",\"size\":\"64x64\"}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"b64_json\":\"iVBORw0KGgo")); /* a PNG */
    assert_int_equal(dapi_charged(r.body), 5);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), before - 11);

    /* A retry with the same Idempotency-Key is answered but not charged. */
    dapi_call(&t, "POST", "/v1/chat/completions", key, "retry-1", CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(dapi_charged(r.body), 3);
    tcall_clear(&r);
    dapi_call(&t, "POST", "/v1/chat/completions", key, "retry-1", CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"replayed\":true"));
    assert_int_equal(dapi_charged(r.body), 0);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), before - 14);

    /* Usage and history read the same ledger. */
    dapi_call(&t, "GET", "/api/v1/usage?period=day", key, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"total_credits\":14"));
    tcall_clear(&r);
    dapi_call(&t, "GET", "/api/v1/history", key, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"kind\":\"generation\""));
    assert_non_null(strstr(r.body, "\"has_more\":false"));
    tcall_clear(&r);
    dapi_call(&t, "GET", "/api/v1/usage?period=decade", key, NULL, NULL, &r);
    dapi_expect_error(&r, 400, "invalid_value");
    assert_non_null(strstr(r.body, "\"param\":\"period\""));
    tcall_clear(&r);

    /* Keys: missing, wrong, revoked. */
    dapi_call(&t, "GET", "/v1/models", NULL, NULL, NULL, &r);
    dapi_expect_error(&r, 401, "missing_api_key");
    tcall_clear(&r);
    char wrong[69];
    snprintf(wrong, sizeof(wrong), "%s", key);
    wrong[40] = wrong[40] == 'a' ? 'b' : 'a';
    dapi_call(&t, "GET", "/v1/models", wrong, NULL, NULL, &r);
    dapi_expect_error(&r, 401, "invalid_api_key");
    assert_null(strstr(r.body, "hai-")); /* never echoed */
    tcall_clear(&r);
    size_t mark = t.c.out_len;
    dapi_say(&t, "/apikey revoke gone\n");
    assert_true(test_child_wait_for(&t.c, "out", "is revoked", 15000));
    assert_true(t.c.out_len > mark);
    dapi_call(&t, "GET", "/v1/models", gone, NULL, NULL, &r);
    dapi_expect_error(&r, 401, "revoked_api_key");
    tcall_clear(&r);

    /* The key's rate limit: the third request in a minute waits. */
    for (int i = 0; i < 2; i++) {
        dapi_call(&t, "GET", "/v1/models", limited, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        tcall_clear(&r);
    }
    dapi_call(&t, "GET", "/v1/models", limited, NULL, NULL, &r);
    dapi_expect_error(&r, 429, "rate_limit_exceeded");
    assert_non_null(r.retry_after);
    assert_true(atoi(r.retry_after) >= 1 && atoi(r.retry_after) <= 60);
    tcall_clear(&r);

    /* A model the key may not use is one it cannot see; an unknown one. */
    dapi_call(&t, "POST", "/v1/images/generations", chatonly, NULL,
              "{\"model\":\"demo-image\",\"prompt\":\"a cat\"}", &r);
    dapi_expect_error(&r, 404, "model_not_found");
    tcall_clear(&r);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    dapi_expect_error(&r, 404, "model_not_found");
    tcall_clear(&r);

    /* No credits for the price: 402, nothing charged. */
    long long now_avail = dapi_available(&t, key);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"pricey\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    dapi_expect_error(&r, 402, "insufficient_credits");
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), now_avail);

    /* Bad bodies name the field; a large one is refused whole. */
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}",
              &r);
    dapi_expect_error(&r, 400, "invalid_value");
    assert_non_null(strstr(r.body, "\"param\":\"messages[0].role\""));
    tcall_clear(&r);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, "{\"model\":\"demo-chat\"}", &r);
    dapi_expect_error(&r, 400, "invalid_value");
    assert_non_null(strstr(r.body, "\"param\":\"messages\""));
    tcall_clear(&r);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, "not json", &r);
    dapi_expect_error(&r, 400, "invalid_json");
    tcall_clear(&r);
    char big[6000];
    int off = snprintf(big, sizeof(big),
                       "{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(big + off, 'x', 5000);
    snprintf(big + off + 5000, sizeof(big) - (size_t)off - 5000, "\"}]}");
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, big, &r);
    dapi_expect_error(&r, 413, "request_too_large");
    tcall_clear(&r);
    /* Past the HTTP server's own limit ([server] max_body, 64 KiB), and an
     * API path that does not exist: OpenAI's error shape all the same
     * (before, the server's plain text, which a client cannot read). */
    size_t huge_len = 70000;
    char *huge = malloc(huge_len + 1);
    assert_non_null(huge);
    memset(huge, 'x', huge_len);
    huge[huge_len] = '\0';
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, huge, &r);
    dapi_expect_error(&r, 413, "request_too_large");
    tcall_clear(&r);
    free(huge);
    dapi_call(&t, "GET", "/v1/nothing-here", key, NULL, NULL, &r);
    dapi_expect_error(&r, 404, "unknown_url");
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), now_avail);

    /* The console's list shows the key's spend. */
    dapi_say(&t, "/apikey list\n");
    assert_true(test_child_wait_for(&t.c, "out", "laptop  hai-", 15000));
    assert_true(test_child_wait_for(&t.c, "out", "14 credits", 15000));

    /* The same Idempotency-Key on another request (another prompt) is
     * another job, charged as any (before, it was taken for a retry of
     * the first: run again, answered, and charged nothing). */
    now_avail = dapi_available(&t, key);
    dapi_call(&t, "POST", "/v1/chat/completions", key, "retry-1",
              "{\"model\":\"demo-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"ho\"}]}",
              &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "\"replayed\":true"));
    assert_true(dapi_charged(r.body) > 0);
    tcall_clear(&r);
    assert_true(dapi_available(&t, key) < now_avail);
    dapi_stop(&t);

    /* Only hashes in the store, no key in any log line; every create and
     * revoke in the audit trail. */
    assert_int_equal(test_sql_int(t.f.db, "SELECT COUNT(*) FROM apikeys"), 5);
    assert_int_equal(test_sql_int(t.f.db, "SELECT COUNT(*) FROM apikeys WHERE length(hash) = 32"),
                     5);
    /* The 14 the list showed, and the 3 of the reused Idempotency-Key's
     * other request. */
    assert_int_equal(test_sql_int(t.f.db, "SELECT spend FROM apikeys WHERE name = 'laptop'"), 17);
    assert_int_equal(
        test_sql_int(t.f.db, "SELECT COUNT(*) FROM audit WHERE action = 'apikey.create'"), 5);
    assert_int_equal(
        test_sql_int(t.f.db, "SELECT COUNT(*) FROM audit WHERE action = 'apikey.revoke'"), 1);
    const char *keys[] = {key, limited, chatonly, gone, soon};
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", t.f.db);
    for (size_t i = 0; i < 5; i++) {
        assert_false(dapi_file_has(t.f.db, keys[i]));
        assert_false(dapi_file_has(wal, keys[i]));
        assert_false(dapi_file_has(wal, keys[i] + 4)); /* nor its random part */
        assert_false(dapi_file_has(t.f.db, keys[i] + 4));
        assert_null(strstr(t.c.err, keys[i]));
    }
    assert_non_null(strstr(t.c.err, "api.started"));
    test_child_free(&t.c);

    /* Keys outlive a restart; one past its expiry is refused. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.f.db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE apikeys SET expires_at = 1 WHERE name = 'soon'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    dapi_start(&t);
    for (int i = 0; i < 50; i++) {
        dapi_call(&t, "GET", "/v1/models", soon, NULL, NULL, &r);
        if (r.status != 503)
            break;
        tcall_clear(&r);
        usleep(100000);
    }
    dapi_expect_error(&r, 401, "expired_api_key");
    tcall_clear(&r);
    dapi_call(&t, "GET", "/v1/models", key, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
    dapi_call(&t, "GET", "/v1/models", gone, NULL, NULL, &r);
    dapi_expect_error(&r, 401, "revoked_api_key");
    tcall_clear(&r);
    dapi_stop(&t);
    test_child_free(&t.c);

    free(key);
    free(limited);
    free(chatonly);
    free(gone);
    free(soon);
    dapi_client_close(&t);
    test_daemon_dir_free(&t.f);
}

/* A key's caps hold what a request may cost, counted in the reservation's
 * commit: a request whose reservation does not fit the room left is
 * refused (before, any room at all let it through, and the charge passed
 * the cap); one that fits counts its charge. */
static void test_api_key_caps_in_commit(void **state)
{
    (void)state;
    struct dapi t;
    dapi_open(&t);
    dapi_client_open(&t);
    dapi_start(&t);
    char *capped = dapi_key(&t, "capped total_cap:2");
    char *daily = dapi_key(&t, "daily day_cap:2");
    char *fits = dapi_key(&t, "fits total_cap:100 day_cap:50");
    struct tcall r;
    long long before = dapi_available(&t, capped);
    dapi_call(&t, "POST", "/v1/chat/completions", capped, NULL, CHAT_BODY, &r);
    dapi_expect_error(&r, 402, "key_spend_cap");
    assert_non_null(strstr(r.body, "spending cap of 2 has 2 left"));
    tcall_clear(&r);
    dapi_call(&t, "POST", "/v1/chat/completions", daily, NULL, CHAT_BODY, &r);
    dapi_expect_error(&r, 429, "key_daily_cap");
    assert_non_null(r.retry_after);
    assert_true(atoi(r.retry_after) >= 1 && atoi(r.retry_after) <= 86400);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, capped), before);
    dapi_call(&t, "POST", "/v1/chat/completions", fits, NULL, CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(dapi_charged(r.body), 3);
    tcall_clear(&r);
    dapi_stop(&t);
    test_child_free(&t.c);
    /* The counts settled at the charge; the refused held nothing. */
    assert_int_equal(test_sql_int(t.f.db, "SELECT COALESCE(SUM(used), 0) FROM counters"
                                          " WHERE name LIKE 'gen.key:%'"),
                     3);
    assert_int_equal(test_sql_int(t.f.db, "SELECT COALESCE(SUM(used), 0) FROM counters"
                                          " WHERE name LIKE 'gen.key.day:%'"),
                     3);
    free(capped);
    free(daily);
    free(fits);
    dapi_client_close(&t);
    test_daemon_dir_free(&t.f);
}

/* The official OpenAI client (npm `openai`, installed into build/npm by
 * the Makefile when node and npm are there) against the daemon. Without
 * node or the package the test says so and is skipped, never passed. */
static void test_api_openai_client(void **state)
{
    (void)state;
    char cwd[1024], module[1200], script[1200], pkg[1300];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(module, sizeof(module), "%s/build/npm", cwd);
    snprintf(script, sizeof(script), "%s/tests/bot/openai_client.mjs", cwd);
    snprintf(pkg, sizeof(pkg), "%s/node_modules/openai/package.json", module);
    struct test_proc p;
    char *probe[] = {"/bin/sh", "-c", "command -v node", NULL};
    test_proc_run(probe, "", 10000, &p);
    bool node = p.status == 0;
    test_proc_free(&p);
    if (!node || access(pkg, R_OK) != 0) {
        fprintf(stderr,
                "SKIPPED test_api_openai_client: %s (the Makefile installs the openai package "
                "with npm when node and npm are present and the registry is reachable)\n",
                !node ? "node is not installed" : "the openai npm package is not in build/npm");
        skip();
    }

    struct dapi t;
    dapi_open(&t);
    dapi_start(&t);
    char *key = dapi_key(&t, "main");
    char *revoked = dapi_key(&t, "revoked");
    char *expired = dapi_key(&t, "expired days:1");
    char *limited = dapi_key(&t, "limited rpm:2");
    char *chatonly = dapi_key(&t, "chatonly models:demo-chat");
    dapi_say(&t, "/apikey revoke revoked\n");
    assert_true(test_child_wait_for(&t.c, "out", "is revoked", 15000));
    dapi_stop(&t);
    test_child_free(&t.c);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.f.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE apikeys SET expires_at = 1 WHERE name = 'expired'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    dapi_start(&t);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", t.port);
    char *argv[] = {"/bin/sh", "-c",     "exec node \"$0\" \"$@\"",
                    script,    module,   base,
                    key,       revoked,  expired,
                    limited,   chatonly, NULL};
    test_proc_run(argv, "", 60000, &p);
    if (p.status != 0 || strstr(p.out, "all ok") == NULL)
        fprintf(stderr, "openai client:\n%s\n%s\n", p.out, p.err);
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "ok streamed in "));
    assert_non_null(strstr(p.out, "all ok"));
    test_proc_free(&p);
    dapi_stop(&t);
    assert_null(strstr(t.c.err, key));
    test_child_free(&t.c);
    free(key);
    free(revoked);
    free(expired);
    free(limited);
    free(chatonly);
    test_daemon_dir_free(&t.f);
}

/* ---- behind a real wire: the fake OpenAI-compatible provider -------------- */

static _Atomic unsigned fake_calls;

/* "good-up" streams an answer with usage; anything else is refused with a
 * 400 (not retried), as a provider that cannot serve the request. */
static void fake_provider(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    (void)data;
    fake_calls++;
    if (req->body != NULL && strstr(req->body, "\"model\":\"cut-up\"") != NULL) {
        /* A stream cut after its first piece. */
        static const char first[] =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        httpd_response_start(res, 200, "text/event-stream");
        httpd_response_chunk(res, first, sizeof(first) - 1);
        httpd_response_delay(res, 20);
        httpd_response_abort(res);
        return;
    }
    if (req->body != NULL && strstr(req->body, "\"model\":\"slow-up\"") != NULL) {
        /* A first piece, then a long think: long enough for a caller to
         * leave. */
        static const char first[] =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        static const char rest[] =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},"
            "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        httpd_response_start(res, 200, "text/event-stream");
        httpd_response_chunk(res, first, sizeof(first) - 1);
        httpd_response_delay(res, 8000);
        httpd_response_chunk(res, rest, sizeof(rest) - 1);
        httpd_response_end(res);
        return;
    }
    if (req->body == NULL || strstr(req->body, "\"model\":\"good-up\"") == NULL) {
        static const char err[] = "{\"error\":{\"message\":\"unsupported\",\"type\":"
                                  "\"invalid_request_error\"}}";
        httpd_response_send(res, 400, "application/json", err, sizeof(err) - 1);
        return;
    }
    static const char *const sse[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\", world\"},"
        "\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n"
        "data: [DONE]\n\n",
        NULL};
    httpd_response_start(res, 200, "text/event-stream");
    for (size_t i = 0; sse[i] != NULL; i++) {
        httpd_response_chunk(res, sse[i], strlen(sse[i]));
        httpd_response_delay(res, 5);
    }
    httpd_response_end(res);
}

/* A streamed completion of model asked on a socket of its own, read until
 * its first delta: the open socket. */
static int dapi_raw_stream(struct dapi *t, const char *key, const char *model)
{
    int fd = test_tcp_connect(t->port);
    char body[256], req[1024];
    int blen = snprintf(body, sizeof(body),
                        "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}]}",
                        model);
    int n = snprintf(req, sizeof(req),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     key, blen, body);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char got[4096];
    if (!test_recv_until(fd, got, sizeof(got), "\"content\":\"Hel\"", 10000, NULL, NULL))
        fail_msg("no first delta from the stream");
    return fd;
}

/* Through the OpenAI adapter and a fake provider over loopback: the
 * provider's usage is what the answer reports; a model that fails falls
 * back as for chat, priced as the fallback; one with no fallback answers
 * 502 and its reservation is voided (nothing charged). */
static void test_api_fake_provider_fallback_refund(void **state)
{
    (void)state;
    struct httpd_thread *fake = httpd_thread_start(fake_provider, NULL);
    assert_non_null(fake);
    struct dapi t;
    memset(&t, 0, sizeof(t));
    test_daemon_dir_init(&t.f, "Test Bot");
    t.port = test_port_free();
    char text[2048];
    snprintf(text, sizeof(text),
             "[storage]\npath = %s\n[ledger]\nwelcome_bonus = 1000\n"
             "[console]\nenabled = true\nuser = tester\nimage_dir = %s\n"
             "[server]\nenabled = true\nport = %d\n[api]\nenabled = true\n"
             "[limits]\nretry_max = 0\n"
             "[provider \"fake\"]\nkind = openai\nbase_url = %s/v1\napi_key = sk-test-fake\n"
             "[model \"good\"]\nprovider = fake\nupstream = good-up\nprice_request = 2\n"
             "max_output_tokens = 20\n"
             "[model \"flaky\"]\nprovider = fake\nupstream = flaky-up\nprice_request = 4\n"
             "max_output_tokens = 20\nfallbacks = good\n"
             "[model \"broken\"]\nprovider = fake\nupstream = broken-up\nprice_request = 4\n"
             "max_output_tokens = 20\n"
             "[model \"cut\"]\nprovider = fake\nupstream = cut-up\nprice_request = 4\n"
             "max_output_tokens = 20\nfallbacks = good\n"
             "[model \"slow\"]\nprovider = fake\nupstream = slow-up\nprice_request = 3\n"
             "max_output_tokens = 20\n",
             t.f.db, t.f.dir, t.port, httpd_base_url(httpd_thread_server(fake)));
    test_file_write(t.f.conf, text, (size_t)-1);
    chmod(t.f.conf, 0600);
    dapi_client_open(&t);
    dapi_start(&t);
    char *key = dapi_key(&t, "wire");
    struct tcall r;
    long long start = dapi_available(&t, key);

    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"good\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"content\":\"Hello, world\""));
    assert_non_null(strstr(
        r.body, "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}"));
    assert_int_equal(dapi_charged(r.body), 2);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), start - 2);

    unsigned before = fake_calls;
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"flaky\",\"stream\":true,\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}]}",
              &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(fake_calls - before, 2); /* the model, then its fallback */
    assert_non_null(strstr(r.body, "\"model\":\"good\""));
    assert_non_null(strstr(r.body, "data: [DONE]"));
    assert_int_equal(dapi_charged(r.body), 2);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), start - 4);

    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"broken\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    dapi_expect_error(&r, 502, "upstream_error");
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), start - 4); /* voided, nothing taken */
    dapi_call(&t, "GET", "/api/v1/me", key, NULL, NULL, &r);
    assert_non_null(strstr(r.body, "\"reserved\":0"));
    tcall_clear(&r);

    /* A stream cut after text went out: no fallback (its text would follow
     * what the caller has), an error event, nothing charged. */
    before = fake_calls;
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL,
              "{\"model\":\"cut\",\"stream\":true,\"messages\":[{\"role\":\"user\","
              "\"content\":\"hi\"}]}",
              &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(fake_calls - before, 1);
    assert_non_null(strstr(r.body, "\"delta\":{\"content\":\"Hel\"}"));
    assert_non_null(strstr(r.body, "data: {\"error\":{"));
    assert_non_null(strstr(r.body, "data: [DONE]"));
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), start - 4);

    /* A caller that leaves in the middle of a stream: the provider call is
     * stopped at once (its answer would take 8 s more) and what was made
     * is charged, as at the end: leaving is no way not to pay. */
    int fd = dapi_raw_stream(&t, key, "slow");
    close(fd);
    uint64_t until = test_now_ms() + 4000;
    long long now = dapi_available(&t, key);
    while (now != start - 7 && test_now_ms() < until) {
        test_child_wait_for(&t.c, "err", "\x01never\x01", 50);
        now = dapi_available(&t, key);
    }
    assert_int_equal(now, start - 7);
    assert_true(test_child_wait_for(&t.c, "err", "generate.caller_gone", 1000));
    dapi_call(&t, "GET", "/api/v1/me", key, NULL, NULL, &r);
    assert_non_null(strstr(r.body, "\"reserved\":0"));
    tcall_clear(&r);

    dapi_stop(&t);
    assert_null(strstr(t.c.err, key));
    assert_null(strstr(t.c.err, "sk-test-fake"));
    test_child_free(&t.c);
    free(key);
    dapi_client_close(&t);
    httpd_thread_stop(fake);
    test_daemon_dir_free(&t.f);
}

/* Does the file hold a key ("hai-" and 64 hex digits)? */
static bool dapi_file_has_key(const char *path)
{
    size_t len = 0;
    char *data = test_file_read(path, &len);
    bool found = false;
    for (size_t i = 0; data != NULL && i + APIKEY_TEST_LEN <= len && !found; i++) {
        if (memcmp(data + i, "hai-", 4) != 0)
            continue;
        size_t h = 0;
        while (h < 64 && strchr("0123456789abcdef", data[i + 4 + h]) != NULL && data[i + 4 + h])
            h++;
        found = h == 64;
    }
    free(data);
    return found;
}

static bool dapi_file_has_bytes(const char *path, const char *needle)
{
    return dapi_file_has(path, needle);
}

/* On Telegram a reply held back by pacing when its update is confirmed is
 * written to the outbox (so a crash does not lose it); the message with a
 * new key never is: a crash may lose it, the store never holds it. */
static void test_api_key_never_in_telegram_outbox(void **state)
{
    (void)state;
    static const char token[] = "123456:APIKEY-token-abcdef";
    struct tgapi *api = tgapi_thread_new(token);
    assert_non_null(api);
    static const char *const lines[] = {"/help", "/help", "/help", "/apikey create k"};
    for (int i = 0; i < 4; i++) {
        char members[512];
        snprintf(members, sizeof(members),
                 "\"message\":{\"message_id\":%d,\"date\":1,\"chat\":{\"id\":77,\"type\":"
                 "\"private\"},\"from\":{\"id\":77,\"is_bot\":false,\"first_name\":\"Ann\"},"
                 "\"text\":\"%s\"}",
                 10 + i, lines[i]);
        tgapi_push(api, members);
    }
    struct dapi t;
    memset(&t, 0, sizeof(t));
    test_daemon_dir_init(&t.f, "Test Bot");
    t.port = test_port_free();
    char text[2048];
    snprintf(text, sizeof(text),
             "[storage]\npath = %s\n[console]\nenabled = false\n"
             "[telegram]\nenabled = true\ntoken = %s\napi_base = %s\npoll_timeout = 1\n"
             "sends_per_second = 2\n"
             "[server]\nenabled = true\nport = %d\n[api]\nenabled = true\n"
             "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\nprovider = demo\n",
             t.f.db, token, tgapi_base(api), t.port);
    test_file_write(t.f.conf, text, (size_t)-1);
    chmod(t.f.conf, 0600);
    char *argv[] = {(char *)test_haibot_bin(), "-c", t.f.conf, NULL};
    test_child_start(&t.c, argv);
    for (int i = 0; i < 300 && tgapi_sends(api) < 4; i++)
        test_child_wait_for(&t.c, "err", "never appears", 100);
    assert_true(tgapi_sends(api) >= 4);
    /* Killed, so the WAL keeps every frame written (a clean stop would
     * fold it into the database, where deleted rows are zeroed). */
    kill(t.c.pid, SIGKILL);
    test_child_finish(&t.c, 15000);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", t.f.db);
    /* The held /help replies went through the outbox ... */
    assert_true(dapi_file_has_bytes(wal, "sendMessage") ||
                dapi_file_has_bytes(t.f.db, "sendMessage"));
    /* ... the key never did. */
    assert_false(dapi_file_has_key(t.f.db));
    assert_false(dapi_file_has_key(wal));
    assert_null(strstr(t.c.err, "hai-"));
    test_child_free(&t.c);
    tgapi_close(api, NULL, NULL);
    test_daemon_dir_free(&t.f);
}

/* A key made before its owner linked to another wallet spends that wallet
 * from then on: the key follows the owner's link at each request. */
static void test_api_key_follows_link(void **state)
{
    (void)state;
    struct dapi t;
    dapi_open(&t);
    dapi_client_open(&t);
    /* tester makes a key and spends 3 of their 1000. */
    dapi_start(&t);
    char *key = dapi_key(&t, "laptop");
    struct tcall r;
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), 997);
    dapi_stop(&t);
    test_child_free(&t.c);
    /* alice's wallet (her 1000, opened by a run with her at the console),
     * and tester's identity linked into it while the daemon was down. */
    size_t len = 0;
    char *conf = test_file_read(t.f.conf, &len);
    assert_non_null(conf);
    char *at = strstr(conf, "user = tester");
    assert_non_null(at);
    char *alice = malloc(len + 8);
    assert_non_null(alice);
    snprintf(alice, len + 8, "%.*suser = alice%s", (int)(at - conf), conf, at + 13);
    test_file_write(t.f.conf, alice, (size_t)-1);
    char *argv[] = {(char *)test_haibot_bin(), "-c", t.f.conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "/balance\n", 20000, &p);
    assert_int_equal(p.status, 0);
    test_proc_free(&p);
    test_file_write(t.f.conf, conf, len);
    free(alice);
    free(conf);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(t.f.db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO wallet_links (identity, wallet, linked_at) VALUES "
                                  "('console:tester', 'console:alice', 0)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    dapi_start(&t);
    /* The key now reads and spends alice's wallet; tester's own stays. */
    assert_int_equal(dapi_available(&t, key), 1000);
    dapi_call(&t, "POST", "/v1/chat/completions", key, NULL, CHAT_BODY, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(dapi_charged(r.body), 3);
    tcall_clear(&r);
    assert_int_equal(dapi_available(&t, key), 997);
    dapi_stop(&t);
    test_child_free(&t.c);
    assert_int_equal(test_sql_int(t.f.db, "SELECT credits_posted - debits_posted FROM accounts "
                                          "WHERE id = 'console:tester'"),
                     997);
    assert_int_equal(test_sql_int(t.f.db, "SELECT credits_posted - debits_posted FROM accounts "
                                          "WHERE id = 'console:alice'"),
                     997);
    free(key);
    dapi_client_close(&t);
    test_daemon_dir_free(&t.f);
}

/* How many jobs the daemon ran (their generate.done lines) whose id holds
 * needle. */
static int dapi_jobs_run(struct dapi *t, const char *needle)
{
    int n = 0;
    for (const char *p = t->c.err; (p = strstr(p, "generate.done")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        const char *hit = strstr(p, needle);
        n += hit != NULL && (eol == NULL || hit < eol);
    }
    return n;
}

/* The first "content" string of an answer (heap). */
static char *dapi_content(const char *body)
{
    const char *p = strstr(body, "\"content\":\"");
    assert_non_null(p);
    p += strlen("\"content\":\"");
    return strndup(p, strcspn(p, "\""));
}

/* A retry of an idempotent request is answered from the first answer,
 * streamed or not as asked, without running the model again (before, it
 * ran again: not charged, but paid to the provider, and its text could
 * differ); and charged nothing. */
static void test_api_retry_answered_from_first(void **state)
{
    (void)state;
    struct dapi t;
    dapi_open(&t);
    dapi_client_open(&t);
    dapi_start(&t);
    char *key = dapi_key(&t, "laptop");
    struct tcall first, again;
    dapi_call(&t, "POST", "/v1/chat/completions", key, "once-1", CHAT_BODY, &first);
    assert_int_equal(first.status, 200);
    assert_int_equal(dapi_charged(first.body), 3);
    assert_true(test_child_wait_for(&t.c, "err", ":i:once-1:", 15000));
    long long avail = dapi_available(&t, key);
    dapi_call(&t, "POST", "/v1/chat/completions", key, "once-1", CHAT_BODY, &again);
    assert_int_equal(again.status, 200);
    assert_non_null(strstr(again.body, "\"object\":\"chat.completion\""));
    assert_non_null(strstr(again.body, "\"replayed\":true"));
    assert_int_equal(dapi_charged(again.body), 0);
    char *a = dapi_content(first.body), *b = dapi_content(again.body);
    assert_string_equal(a, b);
    free(a);
    free(b);
    tcall_clear(&first);
    tcall_clear(&again);
    /* What the daemon logged of the retry is read by then. */
    bool replayed = test_child_wait_for(&t.c, "err", "api.replayed", 5000);
    assert_int_equal(dapi_jobs_run(&t, ":i:once-1:"), 1);
    assert_true(replayed);

    /* Streamed, and retried: a stream again, from the kept answer. */
    const char *streamed = "{\"model\":\"demo-chat\",\"stream\":true,\"messages\":[{\"role\":"
                           "\"user\",\"content\":\"hi\"}]}";
    dapi_call(&t, "POST", "/v1/chat/completions", key, "once-2", streamed, &first);
    assert_int_equal(first.status, 200);
    assert_true(dapi_charged(first.body) > 0);
    assert_true(test_child_wait_for(&t.c, "err", ":i:once-2:", 15000));
    long long avail2 = dapi_available(&t, key);
    assert_true(avail2 < avail);
    dapi_call(&t, "POST", "/v1/chat/completions", key, "once-2", streamed, &again);
    assert_int_equal(again.status, 200);
    assert_non_null(strstr(again.content_type, "text/event-stream"));
    assert_non_null(strstr(again.body, "\"delta\":{\"content\":\"[demo]"));
    assert_non_null(strstr(again.body, "\"replayed\":true"));
    assert_non_null(strstr(again.body, "data: [DONE]\n\n"));
    assert_int_equal(dapi_charged(again.body), 0);
    tcall_clear(&first);
    tcall_clear(&again);
    assert_int_equal(dapi_available(&t, key), avail2);
    dapi_stop(&t);
    assert_int_equal(dapi_jobs_run(&t, ":i:once-2:"), 1);
    free(key);
    dapi_client_close(&t);
    test_child_free(&t.c);
    test_daemon_dir_free(&t.f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_api_key_never_in_telegram_outbox),
    cmocka_unit_test(test_api_fake_provider_fallback_refund),
    cmocka_unit_test(test_api_end_to_end),
    cmocka_unit_test(test_api_retry_answered_from_first),
    cmocka_unit_test(test_api_key_caps_in_commit),
    cmocka_unit_test(test_api_openai_client),
    cmocka_unit_test(test_api_key_follows_link),
};

TEST_GROUP_DEFINE(daemon_api, tests, NULL, NULL)
