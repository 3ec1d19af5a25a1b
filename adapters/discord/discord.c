/* The Discord adapter's life: options, the shards on its websocket context
 * (GET /gateway/bot, start, stop), application command sync, and closing in
 * two steps (inside the loop, then free after uv_run). The adapter's
 * vtable is here; replies, interactions, channel messages, notices and the
 * HTTP endpoint have files of their own (discord_internal.h). */
#include "adapters/discord/discord_internal.h"
#include "adapters/discord/payload.h"
#include "base/json_scan.h"

#include "adapters/discord/appcmd.h"
#include "adapters/discord/rest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "core/core.h"
#include "core/feature.h"
#include "core/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------- */

void dc__copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

const char *dc__str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#define DC_THREADS_MAX 100000 /* threads remembered before the map starts over */
#define DC_GUILDS_MAX 100000  /* guild names remembered before the map starts over */

/* key -> a copy of value in *m, which starts over when it holds max. */
static void dc__remember(struct map **m, size_t max, const char *key, const char *value)
{
    const char *known = map_get(*m, key);
    if (known != NULL && strcmp(known, value) == 0)
        return;
    if (map_count(*m) >= max) {
        struct map *fresh = map_new(free);
        if (fresh == NULL)
            return;
        map_free(*m);
        *m = fresh;
    }
    char *copy = strdup(value);
    if (copy != NULL && map_set(*m, key, copy) < 0)
        free(copy);
}

void dc__place(struct discord *dc, struct invocation *inv)
{
    const char *name = inv->scope_id[0] != '\0' ? map_get(dc->guilds, inv->scope_id) : NULL;
    if (name != NULL)
        dc__copy(inv->scope_name, sizeof(inv->scope_name), name);
    if (inv->parent_channel_id[0] == '\0') {
        const char *parent = map_get(dc->threads, inv->channel_id);
        if (parent != NULL)
            dc__copy(inv->parent_channel_id, sizeof(inv->parent_channel_id), parent);
        return;
    }
    dc__remember(&dc->threads, DC_THREADS_MAX, inv->channel_id, inv->parent_channel_id);
}

/* The few members of a guild's payload the adapter keeps, as a small
 * object of their own: {"id":..,"name":..,"threads":..,"members":..}. A
 * GUILD_CREATE is mostly its channels (19 KiB for a few hundred), which
 * the structural scan passes over instead of building a tree of them. */
static cJSON *dc__guild_parse(const char *json, size_t len)
{
    static const char *const names[] = {"id", "name", "threads", "members"};
    struct json_member m[4];
    if (json_scan_members(json, len, names, 4, m) < 0 || m[0].v == NULL)
        return NULL;
    size_t cap = 64;
    for (size_t i = 0; i < 4; i++)
        cap += m[i].len + 16;
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    size_t n = 0;
    text[n++] = '{';
    for (size_t i = 0; i < 4; i++) {
        if (m[i].v == NULL)
            continue;
        n += (size_t)snprintf(text + n, cap - n, "%s\"%s\":", n > 1 ? "," : "", names[i]);
        memcpy(text + n, m[i].v, m[i].len);
        n += m[i].len;
    }
    text[n++] = '}';
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    return j;
}

void dc__guild_seen(struct discord *dc, const char *json, size_t len)
{
    cJSON *j = dc__guild_parse(json, len);
    const char *id = dc__str(j, "id");
    const char *name = dc__str(j, "name");
    if (id != NULL && name != NULL)
        dc__remember(&dc->guilds, DC_GUILDS_MAX, id, name);
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "threads"))
    {
        const char *tid = dc__str(t, "id");
        const char *parent = dc__str(t, "parent_id");
        if (tid != NULL && parent != NULL)
            dc__remember(&dc->threads, DC_THREADS_MAX, tid, parent);
    }
    dc__roles_seen(dc, j, false);
    cJSON_Delete(j);
    dc->stats.guilds_seen++;
}

void dc__roles_seen(struct discord *dc, const cJSON *d, bool member_update)
{
    const char *guild = dc__str(d, member_update ? "guild_id" : "id");
    if (guild == NULL || dc->bot_id[0] == '\0')
        return;
    const cJSON *me = d;
    if (!member_update) {
        /* A GUILD_CREATE lists the bot among its members. */
        me = NULL;
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d, "members"))
        {
            const char *uid = dc__str(cJSON_GetObjectItemCaseSensitive(m, "user"), "id");
            if (uid != NULL && strcmp(uid, dc->bot_id) == 0)
                me = m;
        }
    }
    const char *uid = dc__str(cJSON_GetObjectItemCaseSensitive(me, "user"), "id");
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(me, "roles");
    if (uid == NULL || strcmp(uid, dc->bot_id) != 0 || !cJSON_IsArray(roles))
        return; /* not said here: what is known stays */
    char list[1024];
    size_t n = 0;
    list[0] = '\0';
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        /* Role ids are snowflakes: digits only, so a plain search finds them. */
        if (!cJSON_IsString(r) || strspn(r->valuestring, "0123456789") != strlen(r->valuestring) ||
            r->valuestring[0] == '\0')
            continue;
        int k = snprintf(list + n, sizeof(list) - n, "%s ", r->valuestring);
        if (k < 0 || (size_t)k >= sizeof(list) - n) {
            /* More roles than fit: not known, so nothing is passed over. */
            map_remove(dc->roles, guild);
            return;
        }
        n += (size_t)k;
    }
    dc__remember(&dc->roles, DC_GUILDS_MAX, guild, list);
}

bool dc__seen(struct discord *dc, const char *id_text)
{
    uint64_t id = strtoull(id_text != NULL ? id_text : "0", NULL, 10);
    if (id == 0)
        return false;
    for (size_t i = 0; i < DC_RECENT; i++) {
        if (dc->recent[i] == id)
            return true;
    }
    dc->recent[dc->recent_next] = id;
    dc->recent_next = (dc->recent_next + 1) % DC_RECENT;
    return false;
}

size_t discord_text_cut(const char *text, size_t max_chars)
{
    size_t bytes = 0, chars = 0;
    while (text[bytes] != '\0' && chars < max_chars) {
        unsigned char c = (unsigned char)text[bytes];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        for (size_t k = 1; k < n; k++) {
            if (text[bytes + k] == '\0') {
                n = k;
                break;
            }
        }
        bytes += n;
        chars++;
    }
    if (text[bytes] == '\0')
        return bytes;
    /* Prefer a line break, then a space, in the last fifth. */
    size_t floor = bytes - bytes / 5;
    for (size_t i = bytes; i > floor; i--) {
        if (text[i - 1] == '\n')
            return i;
    }
    for (size_t i = bytes; i > floor; i--) {
        if (text[i - 1] == ' ')
            return i;
    }
    return bytes;
}

/* ---- code blocks across messages ------------------------------------------- */

#define DC_FENCE_CLOSE "\n```" /* what closes a block cut at a message's end */
#define DC_LANG_MAX 32

static size_t dc__chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* A fence line at s: up to three spaces, then three or more backticks.
 * When it is one, lang receives the first word of its info string. */
static bool dc__fence_line(const char *s, size_t n, char lang[DC_LANG_MAX + 1])
{
    size_t k = 0;
    while (k < n && k < 3 && s[k] == ' ')
        k++;
    if (n - k < 3 || strncmp(s + k, "```", 3) != 0)
        return false;
    k += 3;
    while (k < n && s[k] == '`')
        k++;
    size_t e = k;
    while (e < n && s[e] != ' ' && s[e] != '\n' && s[e] != '\r' && s[e] != '`')
        e++;
    size_t l = e - k <= DC_LANG_MAX ? e - k : 0;
    memcpy(lang, s + k, l);
    lang[l] = '\0';
    return true;
}

static size_t dc__line_end(const char *s, size_t i, size_t len)
{
    const char *nl = memchr(s + i, '\n', len - i);
    return nl != NULL ? (size_t)(nl - s) + 1 : len;
}

bool discord_fence_open(const char *text, size_t len, char lang[DC_LANG_MAX + 1])
{
    bool in = false;
    char l[DC_LANG_MAX + 1] = "";
    for (size_t i = 0; i < len;) {
        size_t e = dc__line_end(text, i, len);
        char cand[DC_LANG_MAX + 1];
        if (dc__fence_line(text + i, e - i, cand)) {
            in = !in;
            if (in)
                memcpy(l, cand, sizeof(l));
        }
        i = e;
    }
    if (lang != NULL)
        memcpy(lang, in ? l : "", in ? sizeof(l) : 1);
    return in;
}

/* Append one piece: prefix, text, suffix. */
static int dc__piece_add(char ***out, size_t *n, const char *prefix, const char *text, size_t len,
                         const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *p = malloc(pl + len + sl + 1);
    char **grown = p != NULL ? realloc(*out, (*n + 1) * sizeof(**out)) : NULL;
    if (grown == NULL) {
        free(p);
        return HB_ENOMEM;
    }
    *out = grown;
    memcpy(p, prefix, pl);
    memcpy(p + pl, text, len);
    memcpy(p + pl + len, suffix, sl + 1);
    (*out)[(*n)++] = p;
    return 0;
}

int discord_text_split(const char *text, size_t max_chars, char ***out)
{
    size_t len = strlen(text), pos = 0, n = 0;
    bool in = false; /* the piece starts inside a block (cut at the last one's end) */
    char lang[DC_LANG_MAX + 1] = "";
    int rc = 0;
    *out = NULL;
    const size_t close_chars = dc__chars(DC_FENCE_CLOSE, strlen(DC_FENCE_CLOSE));
    while (pos < len && rc == 0) {
        char prefix[DC_LANG_MAX + 8];
        snprintf(prefix, sizeof(prefix), "%s%s%s", in ? "```" : "", in ? lang : "", in ? "\n" : "");
        size_t avail = max_chars - dc__chars(prefix, strlen(prefix));
        /* Whole lines while they fit, keeping room to close a block. */
        bool st = in;
        char st_lang[DC_LANG_MAX + 1];
        memcpy(st_lang, lang, sizeof(st_lang));
        size_t p = pos, used = 0, block_at = in ? pos : SIZE_MAX, last_in = pos;
        bool over = false, over_fence = false;
        while (p < len) {
            size_t e = dc__line_end(text, p, len);
            char cand[DC_LANG_MAX + 1];
            bool fence = dc__fence_line(text + p, e - p, cand);
            bool now_in = fence ? !st : st;
            size_t c = dc__chars(text + p, e - p);
            if (used + c + (now_in ? close_chars : 0) > avail) {
                over = true;
                over_fence = st || now_in;
                if (fence && !st)
                    block_at = p;
                break;
            }
            if (fence && !st) {
                block_at = p;
                memcpy(st_lang, cand, sizeof(st_lang));
            }
            used += c;
            st = now_in;
            p = e;
            if (st)
                last_in = p;
        }
        if (!over) {
            rc = dc__piece_add(out, &n, prefix, text + pos, len - pos, "");
            break;
        }
        size_t cut;
        bool next_in = false;
        if (over_fence && block_at != SIZE_MAX && block_at > pos) {
            cut = block_at; /* the block starts the next message, whole if it fits */
        } else if (over_fence) {
            /* A block longer than a message: close it here, reopen it in
             * the next one with its language. */
            cut = last_in;
            if (cut <= pos || (block_at == pos && !in && cut <= dc__line_end(text, pos, len))) {
                size_t room = avail - close_chars > used ? avail - close_chars - used : 0;
                cut = p + (room > 0 ? discord_text_cut(text + p, room) : 0);
            }
            next_in = true;
            memcpy(lang, st_lang, sizeof(lang));
        } else {
            /* Outside blocks: whole lines, or part of the long line at a
             * space when the lines so far leave most of the room unused. */
            size_t room = avail - used;
            cut = p;
            if (p == pos || room > avail / 5)
                cut = p + discord_text_cut(text + p, room);
        }
        if (cut <= pos) {
            /* Nothing fits the rules (an absurd fence line): a plain cut. */
            cut = pos + discord_text_cut(text + pos, avail);
            next_in = false;
        }
        const char *suffix = next_in ? (text[cut - 1] == '\n' ? "```" : DC_FENCE_CLOSE) : "";
        rc = dc__piece_add(out, &n, prefix, text + pos, cut - pos, suffix);
        in = next_in;
        pos = cut;
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free((*out)[i]);
        free(*out);
        *out = NULL;
        return rc;
    }
    return (int)n;
}

/* ---- gateway events -------------------------------------------------------- */

static void dc__event(struct discord_gateway *gw, const char *type, int64_t seq, const char *d,
                      size_t d_len, void *data)
{
    struct discord *dc = data;
    (void)gw;
    (void)seq;
    if (strcmp(type, "INTERACTION_CREATE") == 0) {
        dc__interaction(dc, d, d_len, NULL);
    } else if (strcmp(type, "MESSAGE_CREATE") == 0) {
        dc->stats.message_creates++;
        if (dc->prefilter_off || dc__message_may_concern(dc, d, d_len))
            dc__message(dc, d, d_len);
        else
            dc->stats.skipped++;
    } else if (strcmp(type, "THREAD_CREATE") == 0 || strcmp(type, "THREAD_UPDATE") == 0) {
        cJSON *j = cJSON_ParseWithLength(d, d_len);
        struct invocation inv;
        memset(&inv, 0, sizeof(inv));
        dc__copy(inv.channel_id, sizeof(inv.channel_id), dc__str(j, "id"));
        dc__copy(inv.parent_channel_id, sizeof(inv.parent_channel_id), dc__str(j, "parent_id"));
        if (inv.channel_id[0] != '\0')
            dc__place(dc, &inv);
        cJSON_Delete(j);
    } else if (strcmp(type, "GUILD_CREATE") == 0 || strcmp(type, "GUILD_UPDATE") == 0) {
        dc__guild_seen(dc, d, d_len);
    } else if (strcmp(type, "GUILD_MEMBER_UPDATE") == 0) {
        cJSON *j = cJSON_ParseWithLength(d, d_len);
        dc__roles_seen(dc, j, true);
        cJSON_Delete(j);
    } else if (strcmp(type, "READY") == 0) {
        cJSON *j = cJSON_ParseWithLength(d, d_len);
        const char *id = dc__str(cJSON_GetObjectItemCaseSensitive(j, "user"), "id");
        if (id != NULL)
            dc__copy(dc->bot_id, sizeof(dc->bot_id), id);
        cJSON_Delete(j);
    }
}

static void dc__end(struct discord *dc)
{
    if (dc->ended || dc->closing)
        return;
    dc->ended = true;
    if (dc->host.ended != NULL)
        dc->host.ended(dc->host.data, &dc->adapter);
}

static void dc__gw_state(struct discord_gateway *gw, enum discord_gateway_state state,
                         int close_code, void *data)
{
    struct discord *dc = data;
    if (state != DISCORD_GW_STOPPED || close_code == 0)
        return;
    log_error("discord.shard_stopped", "shard=%u code=%d reason=%s", discord_gateway_shard(gw),
              close_code, discord_close_reason(close_code));
    /* 4004 is a refused token; 4010-4014 are settings Discord refuses. */
    dc->adapter.end_error = close_code == 4004 ? HB_EPERM : HB_ECONFIG;
    if (++dc->gws_fatal == dc->ngws)
        dc__end(dc);
}

static void dc__gw_stopped(struct discord_gateway *gw, void *data)
{
    struct discord *dc = data;
    for (size_t i = 0; i < dc->ngws; i++) {
        if (dc->gws[i] == gw)
            dc->gws[i] = NULL;
    }
    dc->gws_alive--;
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__gateways_stop(struct discord *dc)
{
    for (size_t i = 0; i < dc->ngws; i++) {
        struct discord_gateway *gw = dc->gws[i];
        if (gw != NULL) {
            dc->gws[i] = NULL;
            discord_gateway_stop(gw, dc__gw_stopped, dc);
        }
    }
    dc->stats.shards_open = 0;
}

static const char *const dc_events[] = {"READY",         "INTERACTION_CREATE",  "MESSAGE_CREATE",
                                        "THREAD_CREATE", "THREAD_UPDATE",       "GUILD_CREATE",
                                        "GUILD_UPDATE",  "GUILD_MEMBER_UPDATE", NULL};

static int dc__gateways_start(struct discord *dc, const char *url, unsigned recommended,
                              unsigned concurrency)
{
    unsigned total = dc->shards_opt != 0 ? dc->shards_opt : (recommended != 0 ? recommended : 1);
    if (total > DC_MAX_SHARDS)
        total = DC_MAX_SHARDS;
    unsigned first = dc->shard_first > 0 ? (unsigned)dc->shard_first : 0;
    unsigned last = dc->shard_last < 0 ? total - 1 : (unsigned)dc->shard_last;
    if (first > last || last >= total) {
        log_error("discord.shard_range", "first=%u last=%u total=%u reason=%s", first, last, total,
                  "the range is outside the shard count");
        return HB_ECONFIG;
    }
    discord_identify_gate_init(&dc->gate, concurrency != 0 ? concurrency : 1);
    if (dc->identify_spacing_ms != 0)
        dc->gate.spacing_ms = dc->identify_spacing_ms;
    dc->ngws = last - first + 1;
    dc->gws = calloc(dc->ngws, sizeof(*dc->gws));
    if (dc->gws == NULL)
        return HB_ENOMEM;
    log_info("discord.shards", "first=%u last=%u total=%u max_concurrency=%u", first, last, total,
             concurrency);
    for (unsigned s = first; s <= last; s++) {
        struct discord_gateway_options go = {
            .url = url,
            .token = dc->token,
            .intents = dc->intents,
            .shard_id = s,
            .shard_count = total,
            .events = dc_events,
            .compress = dc->compress,
            .inflate_inline = dc->inflate_inline,
            .gate = &dc->gate,
            .on_event = dc__event,
            .on_state = dc__gw_state,
            .data = dc,
            .jitter = dc->jitter,
        };
        struct discord_gateway *gw = discord_gateway_new(dc->ws, &go);
        if (gw == NULL)
            return HB_ENOMEM;
        dc->gws[s - first] = gw;
        dc->gws_alive++;
        dc->refs++;
        int rc = discord_gateway_start(gw);
        if (rc < 0)
            return rc;
        dc->stats.shards_open++;
    }
    return 0;
}

static void dc__gateway_bot_get(struct discord *dc);

static void dc__retry_cb(uv_timer_t *t)
{
    struct discord *dc = t->data;
    if (!dc->stopping)
        dc__gateway_bot_get(dc);
}

static void dc__gateway_bot_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    dc->refs--;
    if (dc->stopping || res->rc == HB_ECANCELED) {
        dc__maybe_closed(dc);
        return;
    }
    if (res->rc == 0 && (res->status == 401 || res->status == 403)) {
        log_error("discord.unauthorized", "status=%d hint=%s", res->status,
                  "check [discord] token; the adapter stops");
        dc->adapter.end_error = HB_EPERM;
        dc__end(dc);
        return;
    }
    cJSON *j =
        res->rc == 0 && res->status == 200 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
    const char *url = dc__str(j, "url");
    if (url == NULL) {
        cJSON_Delete(j);
        log_warn("discord.gateway_bot_failed", "status=%d error=%s retry_ms=%llu", res->status,
                 res->rc != 0 ? hb_strerror(res->rc) : "unexpected answer",
                 (unsigned long long)dc->retry_ms);
        uv_timer_start(&dc->retry, dc__retry_cb, dc->retry_ms, 0);
        dc->retry_ms = dc->retry_ms * 2 > DC_RETRY_MAX_MS ? DC_RETRY_MAX_MS : dc->retry_ms * 2;
        return;
    }
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(j, "shards");
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "session_start_limit"), "max_concurrency");
    unsigned recommended =
        cJSON_IsNumber(shards) && shards->valueint > 0 ? (unsigned)shards->valueint : 1;
    unsigned concurrency =
        cJSON_IsNumber(conc) && conc->valueint > 0 ? (unsigned)conc->valueint : 1;
    free(dc->resolved_url);
    dc->resolved_url = strdup(url);
    cJSON_Delete(j);
    const char *use = dc->gateway_url != NULL ? dc->gateway_url : dc->resolved_url;
    int rc = use != NULL ? dc__gateways_start(dc, use, recommended, concurrency) : HB_ENOMEM;
    if (rc < 0) {
        log_error("discord.start_failed", "error=%s", hb_strerror(rc));
        dc__end(dc);
    }
}

static void dc__gateway_bot_get(struct discord *dc)
{
    dc->refs++;
    if (discord_rest_request(dc->rest, "GET", "/gateway/bot", NULL, NULL, 0, dc__gateway_bot_done,
                             dc) < 0) {
        dc->refs--;
        uv_timer_start(&dc->retry, dc__retry_cb, dc->retry_ms, 0);
    }
}

/* ---- application commands ------------------------------------------------- */

static void dc__commands_sync(struct discord *dc);

/* A registration step ended: drop its reference, and run the one a reload
 * asked for meanwhile. */
static void dc__commands_end(struct discord *dc)
{
    dc->commands_busy = false;
    if (dc->commands_again && !dc->stopping && !dc->closing) {
        dc->commands_again = false;
        dc__commands_sync(dc);
    }
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__commands_stored(int rc, const char *value, void *data)
{
    struct discord *dc = data;
    (void)value;
    if (rc < 0)
        log_warn("discord.commands_hash", "error=%s note=%s", hb_strerror(rc),
                 "the next start overwrites the commands again");
    dc__commands_end(dc);
}

static void dc__commands_key(const struct discord *dc, char *key, size_t cap)
{
    snprintf(key, cap, "commands:%s:%s", dc->app_id,
             dc->guild_id != NULL ? dc->guild_id : "global");
}

static void dc__commands_put_done(const struct discord_rest_result *res, void *data)
{
    struct discord *dc = data;
    if (res->rc == 0 && res->status >= 200 && res->status < 300) {
        dc->stats.commands_put++;
        dc->stats.commands_current = true;
        log_info("discord.commands_registered", "scope=%s",
                 dc->guild_id != NULL ? dc->guild_id : "global");
        char key[160];
        dc__commands_key(dc, key, sizeof(key));
        if (dc->store != NULL && !dc->closing &&
            state_put(dc->store, "discord", key, dc->commands_hash, dc__commands_stored, dc) == 0) {
            return; /* the ref passes to the store callback */
        }
    } else if (res->rc != HB_ECANCELED) {
        char body[300];
        snprintf(body, sizeof(body), "%.*s", (int)(res->body_len < 200 ? res->body_len : 200),
                 res->body);
        log_error("discord.commands_failed", "status=%d error=%s body=%s", res->status,
                  res->rc != 0 ? hb_strerror(res->rc) : "http status", body);
    }
    dc__commands_end(dc);
}

static void dc__commands_put(struct discord *dc)
{
    char path[256];
    if (dc->guild_id != NULL)
        snprintf(path, sizeof(path), "/applications/%s/guilds/%s/commands", dc->app_id,
                 dc->guild_id);
    else
        snprintf(path, sizeof(path), "/applications/%s/commands", dc->app_id);
    if (discord_rest_request(dc->rest, "PUT", path, dc->commands_json, NULL, 0,
                             dc__commands_put_done, dc) < 0) {
        dc__commands_end(dc);
    }
}

static void dc__commands_loaded(int rc, const char *value, void *data)
{
    struct discord *dc = data;
    if (dc->stopping) {
        dc__commands_end(dc);
        return;
    }
    if (rc == 0 && value != NULL && strcmp(value, dc->commands_hash) == 0) {
        log_info("discord.commands_unchanged", "action=%s", "skipping the overwrite");
        dc->stats.commands_current = true;
        dc__commands_end(dc);
        return;
    }
    dc__commands_put(dc); /* keeps the ref */
}

static void dc__commands_sync(struct discord *dc)
{
    size_t n;
    const struct command_spec *table = commands_table(&n);
    /* Commands of a feature [features] switches off are not registered. */
    struct command_spec *listed = calloc(n > 0 ? n : 1, sizeof(*listed));
    if (listed == NULL)
        return;
    size_t m =
        features_table_listed(dc->core != NULL ? dc->core->features : NULL, table, n, listed);
    free(dc->commands_json);
    dc->commands_json = discord_appcmd_render(listed, m);
    free(listed);
    if (dc->commands_json == NULL)
        return;
    dc->commands_busy = true;
    discord_appcmd_hash(dc->commands_json, dc->guild_id != NULL ? dc->guild_id : "global",
                        dc->commands_hash);
    dc->refs++;
    char key[160];
    dc__commands_key(dc, key, sizeof(key));
    if (dc->store == NULL || state_get(dc->store, "discord", key, dc__commands_loaded, dc) < 0)
        dc__commands_put(dc);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void dc__free(struct discord *dc)
{
    map_free(dc->threads);
    map_free(dc->guilds);
    map_free(dc->roles);
    free(dc->gws);
    free(dc->resolved_url);
    free(dc->commands_json);
    free(dc->app_id);
    free(dc->api_base);
    free(dc->gateway_url);
    free(dc->guild_id);
    free(dc->public_key);
    if (dc->token != NULL) {
        memset(dc->token, 0, strlen(dc->token));
        free(dc->token);
    }
    free(dc);
}

static void dc__rest_closed(void *data)
{
    struct discord *dc = data;
    dc->rest = NULL;
    dc->rest_closed = true;
    dc->refs--;
    dc__maybe_closed(dc);
}

static void dc__handle_closed(uv_handle_t *h)
{
    struct discord *dc = h->data;
    dc->handles--;
    dc__maybe_closed(dc);
}

/* Once only the rest client (and its ref) is left, close it; once that
 * and every handle is gone, the shards have stopped and the websocket
 * context can begin to go (its last part goes in free, after uv_run). */
void dc__maybe_closed(struct discord *dc)
{
    if (!dc->closing || dc->closed)
        return;
    if (dc->refs == 1 && dc->rest != NULL && !dc->rest_closed) {
        struct discord_rest *rest = dc->rest;
        dc->rest = NULL;
        discord_rest_close(rest, dc__rest_closed, dc);
        return;
    }
    if (dc->refs == 0 && dc->handles == 0) {
        dc->closed = true;
        discord_ws_stop(dc->ws);
        if (dc->close_cb != NULL)
            dc->close_cb(dc->close_data);
    }
}

static void dc__adapter_free(struct adapter *a)
{
    struct discord *dc = a->impl;
    discord_ws_free(dc->ws);
    dc->ws = NULL;
    dc__free(dc);
}

static int dc__start(struct adapter *a)
{
    struct discord *dc = a->impl;
    if (dc->started)
        return HB_ESTATE;
    dc->ws = discord_ws_new(dc->loop);
    if (dc->ws == NULL)
        return HB_EIO; /* logged */
    dc->started = true;
    log_info("discord.starting", "application=%s commands=%s", dc->app_id,
             dc->guild_id != NULL ? dc->guild_id : "global");
    char invite[256];
    if (discord_invite_url(dc->app_id, invite, sizeof(invite)) > 0)
        log_info("discord.invite", "url=%s hint=open it to add the bot to a server", invite);
    dc__commands_sync(dc);
    dc__gateway_bot_get(dc);
    dc__outbox_replay(dc);
    return 0;
}

/* A reload registers the commands again when [features] changed them (an
 * unchanged list costs one store read: its hash is kept); one already
 * under way finishes first. */
static int dc__reload(struct adapter *a, const void *options)
{
    struct discord *dc = a->impl;
    (void)options;
    if (!dc->started || dc->stopping)
        return 0;
    if (dc->commands_busy)
        dc->commands_again = true;
    else
        dc__commands_sync(dc);
    return 0;
}

static void dc__stop(struct adapter *a)
{
    struct discord *dc = a->impl;
    if (dc->stopping)
        return;
    dc->stopping = true;
    uv_timer_stop(&dc->retry);
    dc__gateways_stop(dc);
}

static void dc__close(struct adapter *a, void (*cb)(void *data), void *data)
{
    struct discord *dc = a->impl;
    dc__stop(a);
    dc->closing = true;
    dc->close_cb = cb;
    dc->close_data = data;
    dc__notices_close(dc);
    dc__images_cancel(dc);
    if (!uv_is_closing((uv_handle_t *)&dc->retry))
        uv_close((uv_handle_t *)&dc->retry, dc__handle_closed);
    if (!uv_is_closing((uv_handle_t *)&dc->outbox_timer))
        uv_close((uv_handle_t *)&dc->outbox_timer, dc__handle_closed);
    dc->refs--; /* the open reference; the rest client's stays until the end */
    dc__maybe_closed(dc);
}

/* Each shard of this daemon, for /healthz: events flow (up), on its way
 * (starting), or stopped for good (down). */
static bool dc__health(struct adapter *a, size_t i, struct adapter_health *out)
{
    struct discord_gateway_status gs;
    unsigned shard;
    if (!discord_adapter_shard(a, i, &shard, &gs))
        return false;
    snprintf(out->name, sizeof(out->name), "discord:shard:%u", shard);
    out->state = gs.state == DISCORD_GW_IDENTIFIED ? ADAPTER_HEALTH_UP
                 : gs.state == DISCORD_GW_STOPPED  ? ADAPTER_HEALTH_DOWN
                                                   : ADAPTER_HEALTH_STARTING;
    out->detail = out->state == ADAPTER_HEALTH_UP ? NULL : discord_gateway_state_name(gs.state);
    return true;
}

static const struct adapter_ops dc_ops = {.name = "discord",
                                          .platform = COMMAND_PLATFORM_DISCORD,
                                          .start = dc__start,
                                          .stop = dc__stop,
                                          .close = dc__close,
                                          .free = dc__adapter_free,
                                          .reload = dc__reload,
                                          .health = dc__health,
                                          .routes = dc__routes,
                                          .notify = dc__notify};

static char *dc__dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

struct adapter *discord_new(uv_loop_t *loop, const struct discord_options *opt,
                            const struct adapter_host *host)
{
    if (opt->token == NULL || opt->token[0] == '\0' || opt->application_id == NULL ||
        opt->application_id[0] == '\0' || opt->http == NULL) {
        log_error("discord.options", "reason=%s", "token, application_id and http are needed");
        return NULL;
    }
    struct discord *dc = calloc(1, sizeof(*dc));
    if (dc == NULL)
        return NULL;
    dc->adapter.ops = &dc_ops;
    dc->adapter.impl = dc;
    dc->loop = loop;
    dc->host = *host;
    log_secret_add(opt->token);
    dc->token = strdup(opt->token);
    dc->app_id = strdup(opt->application_id);
    dc->api_base = strdup(opt->api_base != NULL ? opt->api_base : "https://discord.com/api/v10");
    dc->gateway_url = dc__dup_or_null(opt->gateway_url);
    dc->guild_id = dc__dup_or_null(opt->guild_id);
    dc->intents = opt->intents != 0 ? opt->intents : DISCORD_INTENTS_DEFAULT;
    dc->shards_opt = opt->shards;
    dc->shard_first = opt->shard_first;
    dc->shard_last = opt->shard_last;
    dc->http = opt->http;
    dc->core = opt->core;
    dc->public_key = dc__dup_or_null(opt->public_key);
    dc->store = opt->store;
    dc->models = opt->models;
    dc->models_data = opt->models_data;
    dc->edit_interval_ms = opt->edit_interval_ms != 0 ? opt->edit_interval_ms : 1500;
    dc->identify_spacing_ms = opt->identify_spacing_ms;
    dc->jitter = opt->jitter;
    dc->notice_backoff_ms = opt->notice_backoff_ms != 0 ? opt->notice_backoff_ms : 1000;
    dc->retry_ms = DC_RETRY_MIN_MS;
    dc->prefilter_off = opt->prefilter_off;
    dc->inflate_inline = opt->inflate_inline;
    dc->compress = opt->compress;
    dc->threads = map_new(free);
    dc->guilds = map_new(free);
    dc->roles = map_new(free);
    if (dc->threads == NULL || dc->guilds == NULL || dc->roles == NULL || dc->token == NULL ||
        dc->app_id == NULL || dc->api_base == NULL ||
        (opt->gateway_url != NULL && opt->gateway_url[0] != '\0' && dc->gateway_url == NULL) ||
        (opt->guild_id != NULL && opt->guild_id[0] != '\0' && dc->guild_id == NULL) ||
        (opt->public_key != NULL && opt->public_key[0] != '\0' && dc->public_key == NULL))
        goto fail;
    struct discord_rest_options ro = {.api_base = dc->api_base,
                                      .token = dc->token,
                                      .global_per_s = opt->global_per_s,
                                      .connections =
                                          opt->rest_connections != 0 ? opt->rest_connections : 8};
    dc->rest = discord_rest_new(loop, dc->http, &ro);
    if (dc->rest == NULL)
        goto fail;
    uv_timer_init(loop, &dc->retry);
    dc->retry.data = dc;
    uv_timer_init(loop, &dc->outbox_timer);
    dc->outbox_timer.data = dc;
    dc->handles = 2;
    dc->refs = 2; /* the open reference and the rest client */
    return &dc->adapter;
fail:
    dc__free(dc);
    return NULL;
}

void discord_interaction_feed(struct adapter *a, const char *json, size_t len,
                              discord_respond_fn respond, void *data)
{
    struct dc_first first = {.fn = respond, .data = data, .used = false};
    if (a->ops == &dc_ops) {
        struct discord *dc = a->impl;
        if (!dc->closing)
            dc__interaction(dc, json, len, &first);
    }
    if (!first.used)
        respond(data, NULL, 0);
}

void discord_adapter_stats(const struct adapter *a, struct discord_adapter_stats *out)
{
    const struct discord *dc = a->impl;
    *out = dc->stats;
}

bool discord_adapter_shard(const struct adapter *a, size_t i, unsigned *shard_id,
                           struct discord_gateway_status *out)
{
    const struct discord *dc = a->impl;
    if (i >= dc->ngws || dc->gws == NULL || dc->gws[i] == NULL)
        return false;
    *shard_id = discord_gateway_shard(dc->gws[i]);
    discord_gateway_status(dc->gws[i], out);
    return true;
}
