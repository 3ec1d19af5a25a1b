/* The metered API's request bodies (bot/api_body.c): any bytes a client
 * posts to /v1/chat/completions are JSON or not, and then read into
 * messages or refused with the field named, never a crash; what is read
 * keeps the rules the endpoint relies on. */
#include "tests/fuzz/fuzz.h"

#include "bot/api_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (body == NULL)
        return 0;
    struct api_chat_body b;
    api_chat_body_init(&b);
    char param[48] = "", why[128] = "";
    if (api_chat_body_parse(body, &b, param, sizeof(param), why, sizeof(why)) == 0) {
        /* At least one turn, each with text and a role the providers take. */
        if (b.n == 0 || b.n > API_MESSAGES_MAX || b.n_choices != 1 || b.max_tokens < 0)
            abort();
        for (size_t i = 0; i < b.n; i++) {
            if (b.msgs[i].content == NULL ||
                (strcmp(b.msgs[i].role, "user") != 0 && strcmp(b.msgs[i].role, "assistant") != 0))
                abort();
        }
        if (b.system_len > 0 && (b.system == NULL || strlen(b.system) != b.system_len))
            abort();
    } else if (param[0] == '\0' || why[0] == '\0') {
        abort(); /* a refusal always names its field and says why */
    }
    api_chat_body_clear(&b);
    cJSON_Delete(body);
    return 0;
}
