/* progress.h - progress of a long command (fsck, cs drain --wait, copies -r) on stderr.
 *
 * On a terminal: one line redrawn in place, at most every PROGRESS_TTY_MS, with a bar when the
 * total is known ("fsck [########            ]  40% 1234/3000 items"), erased by
 * progress_end. Otherwise (a pipe, a log file): a plain line at most every line_ms
 * (PROGRESS_LINE_MS by default; the first one only after that long, so that a short run prints
 * nothing), "fsck: 40% (1234/3000 items)", or "copies: 1234 paths" while the total is unknown,
 * and a last line at progress_end if any line was printed. Output errors are ignored (progress
 * is a courtesy; the command's own output says what happened). */
#ifndef CAIRN_PROGRESS_H
#define CAIRN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define PROGRESS_TTY_MS 100
#define PROGRESS_LINE_MS 5000

struct progress {
    FILE *out;
    const char *what; /* "fsck" */
    const char *unit; /* "items" */
    int tty;          /* redraw in place */
    int off;          /* print nothing at all */
    uint64_t line_ms; /* plain lines: at most one this often */
    uint64_t done, total;
    uint64_t start_ms, last_ms;
    int printed; /* something was written (and, on a terminal, is still shown) */
};

/* Start on out (stderr normally): a terminal when isatty says so. what and unit must outlive
 * p. */
void progress_init(struct progress *p, FILE *out, const char *what, const char *unit);
/* done of total (0 = unknown) so far; prints when it is time. */
void progress_update(struct progress *p, uint64_t done, uint64_t total);
/* Erase a terminal's line before other output to stderr (it is drawn again at the next
 * update); nothing otherwise. */
void progress_clear(struct progress *p);
/* The end: a terminal's line is erased; plain output gets its last line. */
void progress_end(struct progress *p);
/* The text of the current state ("40% (1234/3000 items)") into buf. */
const char *progress_text(const struct progress *p, char *buf, size_t len);

#endif
