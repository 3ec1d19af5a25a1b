/* The configuration reader: the file read whole, its lines checked and handed
 * to libinih, each section and key landed in struct config. */
#include "bot/config_internal.h"

#include "base/error.h"
#include "base/text.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Parsing ------------------------------------------------------------- */

static void config__parser_oom(struct config_parser *ps, int rc)
{
    if (rc == HB_ENOMEM)
        ps->rc = HB_ENOMEM;
}

static int config__inst_add(struct config_parser *ps, const struct config_section_schema *s,
                            size_t index, int line, struct config_inst **out)
{
    struct config_inst *grown = realloc(ps->insts, (ps->ninsts + 1) * sizeof(*grown));
    if (grown == NULL)
        return HB_ENOMEM;
    ps->insts = grown;
    struct config_inst *in = &ps->insts[ps->ninsts];
    in->sec = s;
    in->index = index;
    in->line = line;
    in->key_lines = calloc(s->nkeys, sizeof(int));
    in->key_bad = calloc(s->nkeys, sizeof(bool));
    ps->ninsts++;
    if (in->key_lines == NULL || in->key_bad == NULL)
        return HB_ENOMEM;
    *out = in;
    return 0;
}

/* Fill an instance with the schema's defaults (parsed like file values, so a
 * wrong default in the table is reported rather than silently stored). */
static int config__defaults_apply(struct config_parser *ps, const struct config_section_schema *s,
                                  void *item)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        const struct config_key_schema *key = &s->keys[k];
        if (key->def == NULL)
            continue;
        int rc =
            config__value_set(ps->problems, 0, s->name, key, config__field(item, key), key->def);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static struct config_inst *
config__inst_find(struct config_parser *ps, const struct config_section_schema *s, const char *name)
{
    for (size_t i = 0; i < ps->ninsts; i++) {
        struct config_inst *in = &ps->insts[i];
        if (in->sec != s)
            continue;
        if (!s->repeatable)
            return in;
        if (strcmp(config__item_name(config__item(ps->cfg, s, in->index)), name) == 0)
            return in;
    }
    return NULL;
}

/* Appends a zeroed, defaulted element named name to a repeatable section. */
static int config__element_add(struct config_parser *ps, const struct config_section_schema *s,
                               const char *name, size_t *index)
{
    size_t *count = config__count(ps->cfg, s);
    char *arr = realloc(config__array_get(ps->cfg, s), (*count + 1) * s->item_size);
    if (arr == NULL)
        return HB_ENOMEM;
    config__array_set(ps->cfg, s, arr);
    void *item = arr + *count * s->item_size;
    memset(item, 0, s->item_size);
    (*count)++;
    char **slot = item;
    *slot = strdup(name);
    if (*slot == NULL)
        return HB_ENOMEM;
    *index = *count - 1;
    return config__defaults_apply(ps, s, item);
}

static int config__reader_problem(struct config_parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int config__reader_problem(struct config_parser *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = config__problem_vadd(ps->problems, ps->line, fmt, ap);
    va_end(ap);
    ps->last_problem_line = ps->line;
    config__parser_oom(ps, rc);
    return rc;
}

static bool config__is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Where an inline comment (" ;" or " #", as inih is told) begins, or end. */
static const char *config__comment_find(const char *s, const char *end)
{
    for (const char *c = s; c < end; c++) {
        if ((*c == ';' || *c == '#') && c > s && isspace((unsigned char)c[-1]))
            return c;
    }
    return end;
}

/* A section header line: [name] or [name "instance"]. Sets the current
 * section, or skip when the header is wrong (its keys are then ignored: one
 * problem for the header is clearer than one per key). */
static void config__header_parse(struct config_parser *ps, const char *s, const char *end)
{
    int rc = 0;
    char kind[CONFIG_NAME_MAX + 1];
    char *inst_name = NULL;
    ps->cur = NULL;
    ps->skip = true;
    const char *close = memchr(s, ']', (size_t)(end - s));
    if (close == NULL) {
        config__reader_problem(ps, "unterminated section header (missing \"]\")");
        goto out;
    }
    for (const char *c = close + 1; c < end; c++) {
        if (*c == ';' || *c == '#')
            break;
        if (!isspace((unsigned char)*c)) {
            config__reader_problem(ps, "unexpected text after the section header");
            goto out;
        }
    }
    const char *c = s + 1;
    while (c < close && isspace((unsigned char)*c))
        c++;
    size_t n = 0;
    while (c < close && config__is_name_char(*c) && n < CONFIG_NAME_MAX)
        kind[n++] = *c++;
    kind[n] = '\0';
    while (c < close && isspace((unsigned char)*c))
        c++;
    if (n == 0) {
        config__reader_problem(ps, "a section header needs a name, like [bot]");
        goto out;
    }
    if (c < close) {
        const char *q = c < close && *c == '"' ? memchr(c + 1, '"', (size_t)(close - c - 1)) : NULL;
        const char *after = q != NULL ? q + 1 : close;
        while (after < close && isspace((unsigned char)*after))
            after++;
        if (q == NULL || after != close) {
            config__reader_problem(ps,
                                   "section [%s]: the name must be in double quotes, like "
                                   "[%s \"NAME\"]",
                                   kind, kind);
            goto out;
        }
        inst_name = strndup(c + 1, (size_t)(q - c - 1));
        if (inst_name == NULL) {
            ps->rc = HB_ENOMEM;
            goto out;
        }
    }
    const struct config_section_schema *sec = config__section_find(kind);
    if (sec == NULL) {
        struct config_suggest sg;
        config__suggest_init(&sg, kind);
        for (size_t i = 0; i < config__nsections; i++)
            config__suggest_try(&sg, config__schema[i].name);
        const char *hint = config__suggest_result(&sg);
        if (hint != NULL)
            config__reader_problem(ps, "unknown section [%s]; did you mean [%s]?", kind, hint);
        else
            config__reader_problem(ps, "unknown section [%s]", kind);
        goto out;
    }
    if (sec->repeatable && inst_name == NULL) {
        config__reader_problem(ps, "section [%s] needs a name, like [%s \"NAME\"]", kind, kind);
        goto out;
    }
    if (!sec->repeatable && inst_name != NULL) {
        config__reader_problem(ps, "section [%s] takes no name (there is only one)", kind);
        goto out;
    }
    if (inst_name != NULL && inst_name[0] == '\0') {
        config__reader_problem(ps, "section [%s] needs a non-empty name", kind);
        goto out;
    }
    struct config_inst *in = config__inst_find(ps, sec, inst_name);
    if (in != NULL && in->line > 0) {
        if (inst_name != NULL)
            config__reader_problem(ps, "duplicate section [%s \"%s\"] (first on line %d)", kind,
                                   inst_name, in->line);
        else
            config__reader_problem(ps, "duplicate section [%s] (first on line %d)", kind, in->line);
        goto out;
    }
    if (in == NULL) {
        size_t index = 0;
        rc = config__element_add(ps, sec, inst_name, &index);
        if (rc == 0)
            rc = config__inst_add(ps, sec, index, ps->line, &in);
        if (rc < 0) {
            config__parser_oom(ps, rc);
            goto out;
        }
    }
    in->line = ps->line;
    ps->cur = in;
    ps->skip = false;
out:
    free(inst_name);
}

/* Looks at one line before inih does, to catch what inih would report only
 * as "first error on line N" (or not at all), and to track sections with
 * their line numbers. Returns false when the line must not reach inih. */
static bool config__line_check(struct config_parser *ps, const char *s, const char *end)
{
    if (ps->line == 1 && end - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (s == end || *s == ';' || *s == '#')
        return true;
    if (*s == '[') {
        config__header_parse(ps, s, end);
        return ps->cur != NULL;
    }
    const char *stop = config__comment_find(s, end);
    const char *eq = memchr(s, '=', (size_t)(stop - s));
    if (eq == NULL) {
        config__reader_problem(ps, "expected KEY = VALUE");
        return false;
    }
    if (eq == s) {
        config__reader_problem(ps, "a key is missing before \"=\"");
        return false;
    }
    return true;
}

/* inih's reader: hands over one line at a time, counting lines. */
static char *config__reader(char *str, int num, void *stream)
{
    struct config_parser *ps = stream;
    if (ps->pos >= ps->len || ps->rc < 0)
        return NULL;
    const char *start = ps->buf + ps->pos;
    const char *nl = memchr(start, '\n', ps->len - ps->pos);
    size_t n = nl != NULL ? (size_t)(nl - start) + 1 : ps->len - ps->pos;
    ps->pos += n;
    ps->line++;
    if (n + 1 > (size_t)num) {
        config__reader_problem(ps, "line too long (the limit is %d characters)", num - 2);
        strcpy(str, "\n");
        return str;
    }
    if (!config__line_check(ps, start, start + n)) {
        strcpy(str, "\n");
        return str;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    return str;
}

static bool config__env_name_valid(const char *name)
{
    if (name[0] == '\0' || isdigit((unsigned char)name[0]))
        return false;
    for (const char *c = name; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && *c != '_')
            return false;
    }
    return true;
}

static void config__key_unknown(struct config_parser *ps, const char *name)
{
    const struct config_section_schema *s = ps->cur->sec;
    struct config_suggest sg;
    char env[CONFIG_NAME_MAX + 8];
    size_t len = strlen(name);
    bool is_env = len > 4 && strcmp(name + len - 4, "_env") == 0;
    config__suggest_init(&sg, name);
    for (size_t k = 0; k < s->nkeys; k++) {
        if (is_env) {
            snprintf(env, sizeof(env), "%s_env", s->keys[k].name);
            if (text_distance(name, env) < sg.dist) {
                sg.dist = text_distance(name, env);
                sg.best = s->keys[k].name;
            }
        } else {
            config__suggest_try(&sg, s->keys[k].name);
        }
    }
    const char *hint = config__suggest_result(&sg);
    /* A key of another section was probably put under the wrong header. */
    char where[160] = "";
    size_t base_len = is_env ? len - 4 : len;
    for (size_t i = 0; i < config__nsections && hint == NULL; i++) {
        size_t idx;
        if (&config__schema[i] == s ||
            config__key_find(&config__schema[i], name, base_len, &idx) == NULL)
            continue;
        size_t used = strlen(where);
        snprintf(where + used, sizeof(where) - used, "%s[%s]", used > 0 ? " or " : "",
                 config__schema[i].name);
    }
    int rc;
    if (hint != NULL)
        rc = config__problem_add(ps->problems, ps->line,
                                 "unknown key \"%s\" in [%s]; did you mean \"%s%s\"?", name,
                                 s->name, hint, is_env ? "_env" : "");
    else if (where[0] != '\0')
        rc = config__problem_add(ps->problems, ps->line,
                                 "unknown key \"%s\" in [%s]; it belongs under %s", name, s->name,
                                 where);
    else
        rc = config__problem_add(ps->problems, ps->line, "unknown key \"%s\" in [%s]", name,
                                 s->name);
    config__parser_oom(ps, rc);
}

/* inih's handler: one key = value line. Never stops the parse (returns 1)
 * so that every problem is found. */
static int config__handler(void *user, const char *section, const char *name, const char *value)
{
    struct config_parser *ps = user;
    (void)section; /* the reader tracks sections itself, with their lines */
    if (ps->rc < 0)
        return 1;
    ps->nsettings++;
    if (ps->skip)
        return 1;
    if (ps->cur == NULL) {
        config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                   "\"%s\" is outside any section; put it under "
                                                   "a header like [bot]",
                                                   name));
        return 1;
    }
    const struct config_section_schema *s = ps->cur->sec;
    size_t len = strlen(name);
    size_t idx = 0;
    bool from_env = false;
    const struct config_key_schema *k = config__key_find(s, name, len, &idx);
    if (k == NULL && len > 4 && strcmp(name + len - 4, "_env") == 0) {
        k = config__key_find(s, name, len - 4, &idx);
        from_env = k != NULL;
    }
    if (k == NULL) {
        config__key_unknown(ps, name);
        return 1;
    }
    int first = ps->cur->key_lines[idx];
    if (first != 0) {
        config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                   "duplicate key \"%s\" in [%s] (first set on "
                                                   "line %d)",
                                                   k->name, s->name, first));
        return 1;
    }
    ps->cur->key_lines[idx] = ps->line;

    char *unquoted = NULL;
    const char *text = value;
    if (from_env) {
        if (!config__env_name_valid(value)) {
            config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                       "%s: \"%s\" is not an environment variable "
                                                       "name",
                                                       name, value));
            return 1;
        }
        text = getenv(value);
        if (text == NULL) {
            config__parser_oom(ps, config__problem_add(ps->problems, ps->line,
                                                       "environment variable %s is not set (%s.%s "
                                                       "reads it)",
                                                       value, s->name, k->name));
            return 1;
        }
    } else {
        /* A value in double quotes keeps its spaces; the quotes go. */
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            unquoted = strndup(value + 1, vlen - 2);
            if (unquoted == NULL) {
                ps->rc = HB_ENOMEM;
                return 1;
            }
            text = unquoted;
        }
    }
    const char *secname = s->name;
    char label[CONFIG_NAME_MAX * 2 + 8];
    if (s->repeatable) {
        snprintf(label, sizeof(label), "%s \"%s\"", s->name,
                 config__item_name(config__item(ps->cfg, s, ps->cur->index)));
        secname = label;
    }
    void *item = config__item(ps->cfg, s, ps->cur->index);
    int rc = config__value_set(ps->problems, ps->line, secname, k, config__field(item, k), text);
    ps->cur->key_bad[idx] = rc < 0;
    config__parser_oom(ps, rc);
    free(unquoted);
    return 1;
}

/* ---- Loading -------------------------------------------------------------- */

/* Reads the whole file, refusing what is too large before reading it. */
int config__file_read(const char *path, struct config_problems *p, char **buf_out, size_t *len_out)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = config__problem_add(p, 0, "cannot open: %s", strerror(errno));
        rc = rc < 0 ? rc : HB_EIO;
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = config__problem_add(p, 0, "not a regular file");
        rc = rc < 0 ? rc : HB_EIO;
        goto out;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        rc = config__problem_add(p, 0, "file too large (%lld bytes; the limit is %d)",
                                 (long long)st.st_size, CONFIG_FILE_MAX);
        rc = rc < 0 ? rc : HB_ECONFIG;
        goto out;
    }
    /* The file may grow between fstat and read: read at most one byte more
     * than the limit to notice. */
    buf = malloc(CONFIG_FILE_MAX + 2);
    if (buf == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = config__problem_add(p, 0, "cannot read: %s", strerror(errno));
            rc = rc < 0 ? rc : HB_EIO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CONFIG_FILE_MAX) {
            rc = config__problem_add(p, 0, "file too large (over %d bytes)", CONFIG_FILE_MAX);
            rc = rc < 0 ? rc : HB_ECONFIG;
            goto out;
        }
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

/* libinih keeps its options in globals: one parse at a time, and the options
 * are set on every parse so nothing else in the process can change how the
 * file is read. */
static pthread_mutex_t config_ini_lock = PTHREAD_MUTEX_INITIALIZER;

static void config__ini_options_set(void)
{
    /* Multiline is off: an indented line is its own setting (or an error),
     * never silently glued to the value above it. Lines are read into a heap
     * buffer large enough for long API keys. */
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_start_comment_prefixes = (char *)";#";
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = (char *)";#";
    ini_use_stack = false;
    ini_max_line = 4096;
    ini_initial_alloc = 4096;
    ini_allow_realloc = false;
    ini_stop_on_first_error = false;
    ini_allow_no_value = false;
}

int config__parse(struct config_parser *ps)
{
    int rc = 0;

    for (size_t i = 0; i < config__nsections; i++) {
        const struct config_section_schema *s = &config__schema[i];
        if (s->repeatable)
            continue;
        struct config_inst *in = NULL;
        rc = config__inst_add(ps, s, 0, 0, &in);
        if (rc == 0)
            rc = config__defaults_apply(ps, s, config__item(ps->cfg, s, 0));
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&config_ini_lock);
    config__ini_options_set();
    int bad = ini_parse_stream(config__reader, ps, config__handler, ps);
    pthread_mutex_unlock(&config_ini_lock);
    if (ps->rc < 0)
        return ps->rc;
    if (bad == -2)
        return HB_ENOMEM;
    /* Whatever inih refused should have been caught by the reader first. */
    if (bad > 0 && bad != ps->last_problem_line) {
        bool seen = false;
        for (size_t i = 0; i < ps->problems->count; i++)
            seen = seen || ps->problems->items[i].line == bad;
        if (!seen)
            rc = config__problem_add(ps->problems, bad, "cannot parse this line");
        if (rc < 0)
            return rc;
    }
    if (ps->nsettings == 0 && ps->problems->count == 0)
        return config__problem_add(ps->problems, 0, "the file is empty (no settings)");
    return config__validate(ps);
}
