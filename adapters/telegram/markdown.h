/* Model Markdown into Telegram HTML (parse_mode=HTML).
 *
 * A small CommonMark subset: **bold** (and __bold__), *italic* and
 * _italic_, `code`, ``` fenced blocks with a language, and [text](url) for
 * http, https and tg URLs. Everything else stays literal, escaped. A marker
 * without its partner (a stream cut mid-span, a stray `_` or `<`) is
 * literal text, so any prefix of a text renders as valid markup.
 *
 * A text is parsed once into its visible characters (what Telegram shows
 * after parsing the entities, and what its 4096 limit counts) and styled
 * spans over them. Any byte range of the visible text on a character
 * boundary renders on its own as balanced HTML: a span cut at either end is
 * closed at the cut and reopened in the next piece. */
#ifndef HB_TELEGRAM_MARKDOWN_H
#define HB_TELEGRAM_MARKDOWN_H

#include <stdbool.h>
#include <stddef.h>

enum {
    TG_MD_BOLD = 1,
    TG_MD_ITALIC = 2,
    TG_MD_CODE = 4,
    TG_MD_PRE = 8,
    TG_MD_LINK = 16,
};

/* A run of visible text in one style. */
struct tg_md_span {
    size_t start, end;     /* bytes of tg_md.vis */
    unsigned style;        /* TG_MD_* bits */
    size_t attr, attr_len; /* the link's URL or the block's language in tg_md.attrs */
};

/* A parsed text. Embedded by the caller: tg_md_init, then tg_md_close. */
struct tg_md {
    char *vis; /* the visible text, NUL-terminated, unescaped */
    size_t len, cap;
    struct tg_md_span *spans; /* in order, covering vis without gaps */
    size_t nspans, capspans;
    char *attrs; /* URLs and languages */
    size_t attrs_len, attrs_cap;
    bool failed; /* an allocation failed: the document is incomplete */
};

void tg_md_init(struct tg_md *doc);
void tg_md_close(struct tg_md *doc);

/** Append Markdown text (len bytes). Returns 0 or HB_ENOMEM. */
int tg_md_markdown_append(struct tg_md *doc, const char *md, size_t len);
/** Append plain text, shown as it is (escaped). Returns 0 or HB_ENOMEM. */
int tg_md_plain_append(struct tg_md *doc, const char *text, size_t len);

/** Telegram HTML for the visible bytes [from, to) (both on UTF-8 character
 *  boundaries), NUL-terminated; the caller frees it. NULL on no memory. */
char *tg_md_html(const struct tg_md *doc, size_t from, size_t to);

/** The text Telegram would show for an HTML text made by tg_md_html: tags
 *  dropped, entities decoded. The caller frees it; NULL on no memory. */
char *tg_html_plain(const char *html);

#endif
