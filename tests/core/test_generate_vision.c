/* Images members attach to a chat turn: a model that sees images gets the
 * image with the prompt and the member pays its price_per_image on top of
 * the tokens (reserved first, then settled in the ledger); a model that
 * does not see answers so and names one that does, and nothing is
 * reserved; the image reaches the OpenAI wire as a data URI. */
#include "tests/core/test_generate.h"
#include "tests/test.h"

#include "adapters/openai/openai.h"
#include "core/messages.h"
#include "net/http.h"
#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char vt_png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3, 4};

/* A catalog of its own on the fixture's engine: "blind" first (the default
 * text model) does not see images; "see" (held) and "seeai" (the fake
 * OpenAI-compatible server) do. */
static void vt_catalog(struct gt *gt)
{
    char base[128];
    snprintf(base, sizeof(base), "%s/v1", httpd_base_url(gt->srv));
    struct provider_settings os = {.name = "fakeai", .base_url = base, .api_key = "sk-test-1"};
    struct catalog_provider_spec ps[] = {
        {.name = "held", .provider = &gt->held.provider, .timeout_ms = 60000, .max_concurrent = 1},
        {.name = "fakeai",
         .provider = openai_provider_new(gt->http, &os),
         .timeout_ms = 2000,
         .max_concurrent = 4},
    };
    struct catalog_model_spec ms[] = {
        {.name = "blind",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true},
        {.name = "see",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .price_input_1k = 10,
         .price_output_1k = 10,
         .max_output_tokens = 100,
         .enabled = true,
         .vision = true,
         .price_image = 5},
        {.name = "seeai",
         .provider = "fakeai",
         .upstream = "ok",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .enabled = true,
         .vision = true,
         .price_image = 2},
        {.name = "seefb",
         .provider = "held",
         .modality = PROVIDER_TEXT,
         .price_request = 1,
         .max_output_tokens = 100,
         .fallbacks = "blind, see",
         .enabled = true,
         .vision = true},
    };
    struct catalog_spec spec = {.providers = ps, .nproviders = 2, .models = ms, .nmodels = 4};
    spec.limits.job_timeout_ms = 8000;
    char err[256] = "";
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    if (cat == NULL)
        fail_msg("catalog: %s", err);
    generate_catalog_set(gt->g, cat);
    catalog_unref(cat);
}

/* /chat from user with the image attached. */
static void vt_submit(struct gt *gt, struct reply_capture *cap, const char *user, const char *model,
                      const char *prompt)
{
    struct invocation inv;
    gt_inv(&inv, cap, user, NULL);
    gt_inv_png(&inv, vt_png, sizeof(vt_png));
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = prompt, .model = model};
    generate_submit(gt->g, &inv, &req);
    assert_null(inv.image); /* the engine took it */
}

/* The price: the reservation counts the image as CATALOG_IMAGE_TOKENS input
 * tokens plus price_image; the charge is the reported tokens plus
 * price_image, and that is what the ledger posts. */
static void test_vision_priced_and_sent(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    vt_catalog(&gt);
    struct reply_capture cap;
    vt_submit(&gt, &cap, "u1", "see", "what is it");
    struct provider_call *c = held_wait_call(&gt, 0);
    assert_int_equal(c->nimages, 1);
    assert_string_equal(c->image_mime, "image/png");
    assert_int_equal(c->image_len, sizeof(vt_png));
    assert_string_equal(c->last_prompt, "what is it");
    /* 1 + ceil((10 + 1600) * 10 / 1000) + ceil(100 * 10 / 1000) + 5 */
    assert_has(&cap, "up to 24 credits");
    held_finish(c, 0, "a cat", 1000, 50);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "a cat");
    /* 1 + (1000 * 10 + 50 * 10) / 1000 + 5 */
    assert_has(&cap, "cost 16 credits");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 100 - 16);

    /* Without an image the same model costs no price_image. */
    struct invocation inv;
    gt_inv(&inv, &cap, "u1", NULL);
    struct generate_request req = {.modality = PROVIDER_TEXT, .prompt = "hi", .model = "see"};
    generate_submit(gt.g, &inv, &req);
    c = held_wait_call(&gt, 1);
    assert_int_equal(c->nimages, 0);
    held_finish(c, 0, "hello", 100, 50);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "cost 2 credits"); /* 1 + (100 * 10 + 50 * 10) / 1000 */
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u1"), 100 - 16 - 2);
    gt_done(&gt);
}

/* A model that does not see images says so and names one that does;
 * nothing is reserved and no provider is called. A photo without a
 * caption still asks something. */
static void test_vision_refused_names_a_model(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    vt_catalog(&gt);
    struct reply_capture cap;
    vt_submit(&gt, &cap, "u2", NULL, "what is it"); /* the default: blind */
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "blind cannot see images. see can: send the image again with model:see");
    assert_has(&cap, "Nothing was charged.");
    reply_capture_close(&cap);
    assert_int_equal(gt.held.ncalls, 0);
    assert_int_equal(gt_balance(&gt, "u2"), 100);

    vt_submit(&gt, &cap, "u2", "see", "");
    struct provider_call *c = held_wait_call(&gt, 0);
    assert_string_equal(c->last_prompt, MSG_ATTACH_DEFAULT_PROMPT);
    held_finish(c, 0, "a cat", 10, 10);
    gt_wait(&gt, &cap.finished, 1);
    reply_capture_close(&cap);
    gt_done(&gt);
}

/* End to end on the OpenAI wire: the engine's request carries the image. */
static void test_vision_on_the_wire(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    vt_catalog(&gt);
    struct reply_capture cap;
    vt_submit(&gt, &cap, "u3", "seeai", "look");
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "Hello, world");
    assert_string_equal(gt.seen_body,
                        "{\"model\":\"ok\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                        "\"text\",\"text\":\"look\"},{\"type\":\"image_url\",\"image_url\":{"
                        "\"url\":\"data:image/png;base64,iVBORw0KGgoBAgME\"}}]}],\"stream\":true,"
                        "\"stream_options\":{\"include_usage\":true},\"max_tokens\":100}");
    /* 1 credit a request and 2 for the image. */
    assert_has(&cap, "cost 3 credits");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u3"), 97);
    gt_done(&gt);
}

/* A failed model's image goes only to a fallback that sees: "blind" is
 * skipped, "see" gets the image and is priced as itself. */
static void test_vision_fallback_sees(void **state)
{
    (void)state;
    struct gt gt;
    gt_init(&gt, NULL, NULL, 0, 0);
    vt_catalog(&gt);
    struct reply_capture cap;
    vt_submit(&gt, &cap, "u4", "seefb", "what is it");
    struct provider_call *c = held_wait_call(&gt, 0);
    assert_string_equal(c->model, "seefb");
    held_finish(c, HB_EPROTO, NULL, -1, -1);
    c = held_wait_call(&gt, 1);
    assert_string_equal(c->model, "see");
    assert_int_equal(c->nimages, 1);
    held_finish(c, 0, "a cat", 1000, 50);
    gt_wait(&gt, &cap.finished, 1);
    assert_has(&cap, "trying see");
    assert_has(&cap, "cost 16 credits");
    reply_capture_close(&cap);
    assert_int_equal(gt_balance(&gt, "u4"), 100 - 16);
    gt_done(&gt);
}

static const struct CMUnitTest vision_tests[] = {
    cmocka_unit_test(test_vision_priced_and_sent),
    cmocka_unit_test(test_vision_refused_names_a_model),
    cmocka_unit_test(test_vision_on_the_wire),
    cmocka_unit_test(test_vision_fallback_sees),
};

TEST_GROUP_DEFINE(generate_vision, vision_tests, gt_group_setup, lt_group_teardown)
