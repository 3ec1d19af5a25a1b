#include "adapters/discord/payload.h"

#include "base/error.h"
#include "base/json_scan.h"

#include <stdbool.h>
#include <string.h>

int discord_payload_scan(const char *json, size_t len, discord_payload_want_fn want, void *data,
                         struct discord_payload *out)
{
    const char *end = json + len;
    bool have_t = false;
    bool have_s = false;
    memset(out, 0, sizeof(*out));
    out->op = -1;
    out->seq = -1;
    const char *p = json_scan_open(json, end);
    if (p == NULL)
        return HB_EPROTO;
    for (;;) {
        const char *key, *v, *vend;
        size_t klen;
        int rc = json_scan_next(&p, end, &key, &klen, &v, &vend);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if (json_scan_key(key, klen, "op")) {
            int64_t op = json_scan_int(v, vend);
            if (op < 0 || op > 255)
                return HB_EPROTO;
            out->op = (int)op;
        } else if (json_scan_key(key, klen, "s")) {
            out->seq = json_scan_int(v, vend);
            have_s = true;
        } else if (json_scan_key(key, klen, "t")) {
            if (*v == '"') {
                out->type = v + 1;
                out->type_len = (size_t)(vend - v - 2);
            }
            have_t = true;
        } else if (json_scan_key(key, klen, "d")) {
            out->d = v;
            out->d_len = (size_t)(vend - v);
        }
        if (want != NULL && out->op == 0 && have_t && have_s && out->type != NULL &&
            !want(out->type, out->type_len, data)) {
            out->d = NULL;
            out->d_len = 0;
            out->skipped = true;
            return 0;
        }
    }
    if (json_scan_ws(p, end) != end || out->op < 0)
        return HB_EPROTO;
    return 0;
}
