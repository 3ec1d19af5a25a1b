/* The comparison of two configurations, used by hot reload. */
#include "bot/config_internal.h"

#include <string.h>

/* ---- Comparing ------------------------------------------------------------ */

static bool config__value_equal(const struct config_key_schema *k, void *a, void *b)
{
    void *fa = config__field(a, k);
    void *fb = config__field(b, k);
    switch (k->type) {
    case CONFIG_STRING:
    case CONFIG_URL:
    case CONFIG_SECRET: {
        const char *sa = *(char **)fa;
        const char *sb = *(char **)fb;
        if (sa == NULL || sb == NULL)
            return sa == sb;
        return strcmp(sa, sb) == 0;
    }
    case CONFIG_BOOL:
        return *(bool *)fa == *(bool *)fb;
    case CONFIG_INT:
    case CONFIG_SECONDS:
        return *(int64_t *)fa == *(int64_t *)fb;
    case CONFIG_ENUM:
        return *(int *)fa == *(int *)fb;
    }
    return false;
}

static bool config__section_live(const struct config_section_schema *s)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        if (!(s->keys[k].flags & CONFIG_KEY_LIVE))
            return false;
    }
    return true;
}

static size_t config__item_diff(const struct config_section_schema *s, const char *instance,
                                void *a, void *b, config_diff_cb cb, void *data)
{
    size_t n = 0;
    for (size_t k = 0; k < s->nkeys; k++) {
        if (config__value_equal(&s->keys[k], a, b))
            continue;
        struct config_change ch = {CONFIG_CHANGE_VALUE, s->name, instance, s->keys[k].name,
                                   (s->keys[k].flags & CONFIG_KEY_LIVE) != 0};
        cb(&ch, data);
        n++;
    }
    return n;
}

static void *config__item_find(const struct config *cfg, const struct config_section_schema *s,
                               const char *name)
{
    size_t n = config__instances(cfg, s);
    for (size_t j = 0; j < n; j++) {
        void *item = config__item(cfg, s, j);
        if (strcmp(config__item_name(item), name) == 0)
            return item;
    }
    return NULL;
}

size_t config_diff(const struct config *old_cfg, const struct config *new_cfg, config_diff_cb cb,
                   void *data)
{
    size_t n = 0;
    for (size_t i = 0; i < config__nsections; i++) {
        const struct config_section_schema *s = &config__schema[i];
        if (!s->repeatable) {
            n += config__item_diff(s, NULL, config__item(old_cfg, s, 0),
                                   config__item(new_cfg, s, 0), cb, data);
            continue;
        }
        bool live = config__section_live(s);
        size_t nold = config__instances(old_cfg, s);
        size_t nnew = config__instances(new_cfg, s);
        for (size_t j = 0; j < nold; j++) {
            void *a = config__item(old_cfg, s, j);
            void *b = config__item_find(new_cfg, s, config__item_name(a));
            if (b != NULL) {
                n += config__item_diff(s, config__item_name(a), a, b, cb, data);
                continue;
            }
            struct config_change ch = {CONFIG_CHANGE_REMOVED, s->name, config__item_name(a), NULL,
                                       live};
            cb(&ch, data);
            n++;
        }
        for (size_t j = 0; j < nnew; j++) {
            void *b = config__item(new_cfg, s, j);
            if (config__item_find(old_cfg, s, config__item_name(b)) != NULL)
                continue;
            struct config_change ch = {CONFIG_CHANGE_ADDED, s->name, config__item_name(b), NULL,
                                       live};
            cb(&ch, data);
            n++;
        }
    }
    return n;
}
