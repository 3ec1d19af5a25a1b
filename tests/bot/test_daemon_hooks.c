/* The daemon wires the platform endpoints onto its server when configured:
 * Discord's interactions endpoint (signed PING -> PONG, unsigned -> 401)
 * and Telegram's webhook (wrong secret -> 401). The platforms' APIs point
 * at a closed port: the adapters keep retrying their start in the
 * background, which the endpoints do not depend on. Runs the real binary
 * and stops it with SIGTERM. */
#include "net/http.h"
#include "tests/bot/tcall.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void hooks_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void test_daemon_serves_platform_endpoints(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_non_null(kc);
    assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
    assert_int_equal(EVP_PKEY_keygen(kc, &key), 1);
    EVP_PKEY_CTX_free(kc);
    unsigned char pub[32];
    size_t publen = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(key, pub, &publen), 1);
    char pub_hex[65];
    hooks_hex(pub, 32, pub_hex);

    char *dir = test_tmpdir_new();
    char conf[512], text[2048];
    snprintf(conf, sizeof(conf), "%s/bot.conf", dir);
    int port = test_port_free();
    int dead = test_port_free();
    snprintf(text, sizeof(text),
             "[storage]\npath = %s/haibot.db\n"
             "[discord]\nenabled = true\ntoken = test-token\napplication_id = 4242\n"
             "api_base = http://127.0.0.1:%d/api/v10\ninteractions_endpoint = true\n"
             "public_key = %s\n"
             "[telegram]\nenabled = true\ntoken = 1:test\napi_base = http://127.0.0.1:%d\n"
             "webhook = true\nwebhook_secret = s3cret-hook\n"
             "[server]\nenabled = true\nport = %d\n",
             dir, dead, pub_hex, dead, port);
    test_file_write(conf, text, (size_t)-1);
    chmod(conf, 0600);
    char *argv[] = {(char *)test_haibot_bin(), "-c", conf, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    assert_true(test_child_wait_for(&c, "err", "webhooks.telegram path=/webhooks/telegram", 15000));
    assert_non_null(strstr(c.err, "webhooks.discord path=/interactions/discord"));

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client *client = NULL;
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&loop, NULL, &client), 0);
    char u[128];
    struct tcall t;
    /* A signed PING. */
    const char *ping = "{\"id\":\"1\",\"application_id\":\"4242\",\"type\":1,\"token\":\"t\"}";
    char ts[32]; /* now: a signed request older than 5 minutes is refused */
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    char msg[256];
    snprintf(msg, sizeof(msg), "%s%s", ts, ping);
    unsigned char sig[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(md);
    char sig_hex[129];
    hooks_hex(sig, 64, sig_hex);
    const char *signed_headers[] = {"X-Signature-Ed25519", sig_hex, "X-Signature-Timestamp", ts,
                                    NULL};
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/interactions/discord", port);
    tcall_do(&loop, client, "POST", u, signed_headers, ping, strlen(ping), &t);
    assert_int_equal(t.status, 200);
    assert_string_equal(t.body, "{\"type\":1}");
    tcall_clear(&t);
    tcall_do(&loop, client, "POST", u, NULL, ping, strlen(ping), &t);
    assert_int_equal(t.status, 401);
    tcall_clear(&t);
    /* Telegram's webhook with a wrong secret. */
    const char *wrong[] = {"X-Telegram-Bot-Api-Secret-Token", "s3cret-hooK", NULL};
    const char *update = "{\"update_id\":1}";
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/webhooks/telegram", port);
    tcall_do(&loop, client, "POST", u, wrong, update, strlen(update), &t);
    assert_int_equal(t.status, 401);
    tcall_clear(&t);
    http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    kill(c.pid, SIGTERM);
    int status = test_child_finish(&c, 15000);
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", c.err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(c.err, "daemon.stopped"));
    test_child_free(&c);
    test_tmpdir_remove(dir);
    free(dir);
    EVP_PKEY_free(key);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_daemon_serves_platform_endpoints),
};

TEST_GROUP_DEFINE(daemon_hooks, tests, NULL, NULL)
