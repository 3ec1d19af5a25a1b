/* Route keys for Discord's rate limits: the shape of a route and its
 * major parameter, the pair a bucket is learned under. See
 * discord_rest_route_key in adapters/discord/rest.h. */
#include "adapters/discord/rest.h"

#include "base/error.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static bool rest__is_id(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static int rest__append(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > cap)
        return HB_EOVERFLOW;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
    return 0;
}

int discord_rest_route_key(const char *method, const char *path, char *route, size_t route_cap,
                           char *major, size_t major_cap)
{
    size_t rlen = 0, mlen = 0;
    if (route_cap == 0 || major_cap == 0)
        return HB_EOVERFLOW;
    route[0] = '\0';
    major[0] = '\0';
    if (rest__append(route, route_cap, &rlen, method, strlen(method)) < 0 ||
        rest__append(route, route_cap, &rlen, " ", 1) < 0)
        return HB_EOVERFLOW;
    size_t plen = strcspn(path, "?");
    const char *p = path;
    const char *end = path + plen;
    int index = 0;
    int major_left = 0; /* segments still belonging to the major parameter */
    const char *first = NULL;
    size_t first_len = 0;
    while (p < end) {
        while (p < end && *p == '/')
            p++;
        if (p >= end)
            break;
        const char *seg = p;
        while (p < end && *p != '/')
            p++;
        size_t n = (size_t)(p - seg);
        if (index == 0) {
            first = seg;
            first_len = n;
        }
        const char *put = seg;
        size_t put_len = n;
        if (index == 1 && first != NULL &&
            ((first_len == 8 && memcmp(first, "channels", 8) == 0) ||
             (first_len == 6 && memcmp(first, "guilds", 6) == 0) ||
             (first_len == 8 && memcmp(first, "webhooks", 8) == 0)) &&
            rest__is_id(seg, n)) {
            major_left = first_len == 8 && memcmp(first, "webhooks", 8) == 0 ? 2 : 1;
            if (rest__append(major, major_cap, &mlen, first, first_len) < 0)
                return HB_EOVERFLOW;
        }
        if (major_left > 0) {
            if (rest__append(major, major_cap, &mlen, "/", 1) < 0 ||
                rest__append(major, major_cap, &mlen, seg, n) < 0)
                return HB_EOVERFLOW;
            major_left--;
            put = ":major";
            put_len = 6;
        } else if (rest__is_id(seg, n)) {
            put = ":id";
            put_len = 3;
        } else if (index == 2 && first_len == 12 && memcmp(first, "interactions", 12) == 0) {
            put = ":token";
            put_len = 6;
        }
        if (rest__append(route, route_cap, &rlen, "/", 1) < 0 ||
            rest__append(route, route_cap, &rlen, put, put_len) < 0)
            return HB_EOVERFLOW;
        index++;
    }
    return 0;
}

bool discord_rest_is_interaction_callback(const char *path)
{
    char route[DISCORD_REST_ROUTE_MAX], major[DISCORD_REST_MAJOR_MAX];
    if (discord_rest_route_key("POST", path, route, sizeof(route), major, sizeof(major)) < 0)
        return false;
    return strcmp(route, "POST /interactions/:id/:token/callback") == 0;
}
