/* status_www.c - the status page's files (meta/www/index.html, status.css, status.js) built
 * into cairn-meta, so the page needs nothing installed beside the program.
 *
 * How: the assembler's .incbin directive copies each file's bytes into .rodata between two
 * symbols (cairn_www_NAME and cairn_www_NAME_end) at compile time; no tool runs beside the
 * compiler. The paths are relative to the folder the compiler runs in (the top of the
 * source tree, as the Makefile does), and the Makefile makes this object depend on
 * every file of meta/www/, so editing a page file rebuilds it. The files are served as they are:
 * edit them as plain HTML, CSS and JavaScript (no build step). */
#include <stddef.h>

#include "status_www.h"

#define WWW_FILE(sym, path)                                                                        \
    __asm__(".pushsection .rodata\n"                                                               \
            ".global " #sym "\n"                                                                   \
            ".hidden " #sym "\n"                                                                   \
            ".balign 16\n" #sym ":\n"                                                              \
            ".incbin \"" path "\"\n"                                                               \
            ".global " #sym "_end\n"                                                               \
            ".hidden " #sym "_end\n" #sym "_end:\n"                                                \
            ".popsection\n")

WWW_FILE(cairn_www_index, "meta/www/index.html");
WWW_FILE(cairn_www_css, "meta/www/status.css");
WWW_FILE(cairn_www_js, "meta/www/status.js");

#define WWW_HIDDEN __attribute__((visibility("hidden")))
extern const char cairn_www_index[] WWW_HIDDEN, cairn_www_index_end[] WWW_HIDDEN;
extern const char cairn_www_css[] WWW_HIDDEN, cairn_www_css_end[] WWW_HIDDEN;
extern const char cairn_www_js[] WWW_HIDDEN, cairn_www_js_end[] WWW_HIDDEN;

static const struct www_file files[] = {
    {"/", "text/html; charset=utf-8", cairn_www_index, cairn_www_index_end},
    {"/status.css", "text/css; charset=utf-8", cairn_www_css, cairn_www_css_end},
    {"/status.js", "text/javascript; charset=utf-8", cairn_www_js, cairn_www_js_end},
};

const struct www_file *www_files(size_t *n)
{
    *n = sizeof(files) / sizeof(files[0]);
    return files;
}
