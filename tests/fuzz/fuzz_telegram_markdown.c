/* Model Markdown into Telegram HTML (adapters/telegram/markdown.c), then
 * back to plain text. Whatever the model writes, the HTML is balanced
 * enough to read back. */
#include "tests/fuzz/fuzz.h"

#include "adapters/telegram/markdown.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Text reaches the renderer from JSON strings, which cJSON ends at a
     * NUL: no NUL byte ever gets here. */
    if (size > 1 && memchr(data + 1, 0, size - 1) != NULL)
        return 0;
    struct tg_md doc;
    tg_md_init(&doc);
    size_t piece = fuzz_piece(data, size);
    for (size_t at = size > 0 ? 1 : 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        if ((data[at] & 3) == 0)
            tg_md_plain_append(&doc, (const char *)data + at, n);
        else
            tg_md_markdown_append(&doc, (const char *)data + at, n);
    }
    char *html = doc.failed ? NULL : tg_md_html(&doc, 0, doc.len);
    if (html != NULL) {
        /* Read back as Telegram shows it: the visible text, exactly. */
        char *plain = tg_html_plain(html);
        if (plain != NULL && strcmp(plain, doc.vis != NULL ? doc.vis : "") != 0)
            abort();
        free(plain);
    }
    free(html);
    tg_md_close(&doc);
    return 0;
}
