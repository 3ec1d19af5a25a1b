/* Private to the configuration module (config*.c): the schema table, the
 * field accessors, the parser state and the helpers its files share. Nothing
 * outside bot/config*.c includes this; config.h is the public API. */
#ifndef HB_CONFIG_INTERNAL_H
#define HB_CONFIG_INTERNAL_H

#include "bot/config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest section name the reader takes; sizes the label buffers. */
#define CONFIG_NAME_MAX 64
/* Longest persona name: it rides in button refs (64 bytes in all). */
#define CONFIG_PERSONA_NAME_MAX 32
/* Largest persona system prompt, inline or from its file, in bytes. */
#define CONFIG_PROMPT_MAX 65536

/* ---- The schema (config_schema.c) ---- */

/* The upper bound of credit keys: far above any price, far below overflow.
 * A range this wide is reported as "at least min". */
#define CREDITS_MAX ((int64_t)1000000000000) /* 10^12 */

extern const struct config_section_schema config__schema[];
extern const size_t config__nsections;

/* Repeatable sections keep their elements in an array whose pointer sits in
 * struct config. */
void *config__array_get(const struct config *cfg, const struct config_section_schema *s);
void config__array_set(struct config *cfg, const struct config_section_schema *s, void *arr);
size_t *config__count(const struct config *cfg, const struct config_section_schema *s);
/* The number of instances of s: the count of a repeatable section, else 1. */
size_t config__instances(const struct config *cfg, const struct config_section_schema *s);
/* The section struct of one instance (index 0 for single sections). */
void *config__item(const struct config *cfg, const struct config_section_schema *s, size_t index);
/* A repeatable section's instance name (its first field). */
const char *config__item_name(const void *item);
void *config__field(void *item, const struct config_key_schema *k);
bool config__is_string_type(enum config_type t);
/* The section schema named name, or NULL. */
const struct config_section_schema *config__section_find(const char *name);
/* The key of s whose name is the first len bytes of name, or NULL; *idx
 * receives its index. */
const struct config_key_schema *config__key_find(const struct config_section_schema *s,
                                                 const char *name, size_t len, size_t *idx);

/* ---- Problems and suggestions (config.c) ---- */

int config__problem_vadd(struct config_problems *p, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int config__problem_add(struct config_problems *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Tracks the closest candidate to a misspelt word. */
struct config_suggest {
    const char *word;
    const char *best;
    size_t dist;
};

void config__suggest_init(struct config_suggest *s, const char *word);
void config__suggest_try(struct config_suggest *s, const char *candidate);
/* The best candidate when it is close enough to be a likely typo, else NULL. */
const char *config__suggest_result(const struct config_suggest *s);

/* Parses text as key k into field. Returns 0, or HB_ECONFIG after adding a
 * problem at line, or HB_ENOMEM. */
int config__value_set(struct config_problems *p, int line, const char *section,
                      const struct config_key_schema *k, void *field, const char *text);

/* ---- The parser (config_read.c) ---- */

/* One section instance as seen in the file. */
struct config_inst {
    const struct config_section_schema *sec;
    size_t index;   /* element of a repeatable section's array; 0 otherwise */
    int line;       /* line of its header; 0 when the file has none */
    int *key_lines; /* per schema key: the line that set it, 0 when unset */
    bool *key_bad;  /* per schema key: its value was refused (already reported) */
};

struct config_parser {
    struct config *cfg;
    struct config_problems *problems;
    const char *buf; /* the whole file */
    size_t len;
    size_t pos;
    int line;                  /* line last handed to inih */
    int last_problem_line;     /* line of the newest problem found by the reader */
    size_t nsettings;          /* key = value lines seen */
    struct config_inst *insts; /* every section instance, in file order */
    size_t ninsts;
    struct config_inst *cur; /* the section keys currently land in; NULL: none */
    bool skip;               /* the current section is broken: ignore its keys */
    int rc;                  /* HB_ENOMEM stops everything */
};

/* Reads the whole file into *buf_out (the caller frees), refusing what is too
 * large before reading it. */
int config__file_read(const char *path, struct config_problems *p, char **buf_out, size_t *len_out);
/* Parses ps->buf into ps->cfg, then checks it. Returns 0 (problems may have
 * been added) or HB_ENOMEM. */
int config__parse(struct config_parser *ps);

/* ---- The checks after parsing (config_check.c) ---- */

/* Required keys, per-instance defaults, and rules across keys or sections. */
int config__validate(struct config_parser *ps);

#endif
