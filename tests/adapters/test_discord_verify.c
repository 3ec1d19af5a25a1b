/* The interactions endpoint's signature check, with keys made here. */
#include "tests/test.h"

#include "adapters/discord/verify.h"
#include "base/error.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

struct vt_key {
    char pub_hex[65];
    EVP_PKEY *pkey;
};

static void vt_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static void vt_key_new(struct vt_key *k)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    k->pkey = NULL;
    assert_int_equal(EVP_PKEY_keygen(ctx, &k->pkey), 1);
    EVP_PKEY_CTX_free(ctx);
    unsigned char pub[32];
    size_t len = sizeof(pub);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k->pkey, pub, &len), 1);
    vt_hex(pub, 32, k->pub_hex);
}

static void vt_sign(struct vt_key *k, const char *ts, const char *body, char sig_hex[129])
{
    char msg[4096];
    snprintf(msg, sizeof(msg), "%s%s", ts, body);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey), 1);
    unsigned char sig[64];
    size_t len = sizeof(sig);
    assert_int_equal(EVP_DigestSign(md, sig, &len, (const unsigned char *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(md);
    vt_hex(sig, 64, sig_hex);
}

static void test_signature_good_and_forged(void **state)
{
    (void)state;
    struct vt_key k, other;
    vt_key_new(&k);
    vt_key_new(&other);
    const char *ts = "1700000000";
    const char *body = "{\"type\":2,\"id\":\"1\",\"token\":\"t\"}";
    char sig[129];
    vt_sign(&k, ts, body, sig);
    assert_int_equal(discord_signature_verify(k.pub_hex, sig, ts, body, strlen(body)), 0);
    /* A changed body, timestamp, or someone else's key: refused. */
    const char *forged = "{\"type\":2,\"id\":\"2\",\"token\":\"t\"}";
    assert_int_equal(discord_signature_verify(k.pub_hex, sig, ts, forged, strlen(forged)),
                     HB_EPERM);
    assert_int_equal(discord_signature_verify(k.pub_hex, sig, "1700000001", body, strlen(body)),
                     HB_EPERM);
    char osig[129];
    vt_sign(&other, ts, body, osig);
    assert_int_equal(discord_signature_verify(k.pub_hex, osig, ts, body, strlen(body)), HB_EPERM);
    /* A flipped bit in the signature. */
    sig[10] = sig[10] == '0' ? '1' : '0';
    assert_int_equal(discord_signature_verify(k.pub_hex, sig, ts, body, strlen(body)), HB_EPERM);
    /* Malformed input. */
    assert_int_equal(discord_signature_verify(k.pub_hex, "zz", ts, body, strlen(body)), HB_EINVAL);
    assert_int_equal(discord_signature_verify("abc", osig, ts, body, strlen(body)), HB_EINVAL);
    assert_int_equal(discord_signature_verify(k.pub_hex, osig, NULL, body, strlen(body)),
                     HB_EINVAL);
    EVP_PKEY_free(k.pkey);
    EVP_PKEY_free(other.pkey);
}

static void test_endpoint_ping_and_refusal(void **state)
{
    (void)state;
    struct vt_key k;
    vt_key_new(&k);
    struct discord_endpoint_answer a;
    const char *ts = "1700000000";
    const char *ping = "{\"type\":1,\"id\":\"1\",\"application_id\":\"2\"}";
    char sig[129];
    vt_sign(&k, ts, ping, sig);
    discord_endpoint_check(k.pub_hex, sig, ts, ping, strlen(ping), &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"type\":1}");
    /* The same PING with a forged signature: 401, never a PONG. */
    char forged[129];
    memcpy(forged, sig, sizeof(forged));
    forged[0] = forged[0] == 'a' ? 'b' : 'a';
    discord_endpoint_check(k.pub_hex, forged, ts, ping, strlen(ping), &a);
    assert_int_equal(a.status, 401);
    discord_endpoint_check(k.pub_hex, NULL, ts, ping, strlen(ping), &a);
    assert_int_equal(a.status, 401);
    /* A verified command is left to the adapter. */
    const char *cmd = "{\"type\":2,\"id\":\"3\",\"data\":{\"name\":\"help\"}}";
    vt_sign(&k, ts, cmd, sig);
    discord_endpoint_check(k.pub_hex, sig, ts, cmd, strlen(cmd), &a);
    assert_int_equal(a.status, 0);
    assert_null(a.body);
    EVP_PKEY_free(k.pkey);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_signature_good_and_forged),
    cmocka_unit_test(test_endpoint_ping_and_refusal),
};

TEST_GROUP_DEFINE(discord_verify, tests, NULL, NULL)
