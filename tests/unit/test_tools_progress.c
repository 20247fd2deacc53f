/* test_tools_progress.c - unit tests of tools/progress.c: plain lines only after the line
 * interval and a last line at the end, nothing at all for a short run, the bar of a terminal
 * redrawn in place and erased, percentages and unknown totals. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "unit_main.h"

static char buf[4096];

/* Everything written to f so far, as text in buf. */
static const char *contents(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    size_t got = fread(buf, 1, n < (long)sizeof(buf) - 1 ? (size_t)n : sizeof(buf) - 1, f);
    buf[got] = '\0';
    fseek(f, 0, SEEK_END);
    return buf;
}

START_TEST(test_short_run_prints_nothing)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    struct progress p;
    progress_init(&p, f, "fsck", "items");
    ck_assert_int_eq(p.tty, 0);
    for (int i = 1; i <= 100; i++)
        progress_update(&p, (uint64_t)i, 100);
    progress_end(&p);
    ck_assert_str_eq(contents(f), "");
    fclose(f);
}
END_TEST

START_TEST(test_plain_lines_and_last_line)
{
    FILE *f = tmpfile();
    struct progress p;
    progress_init(&p, f, "fsck", "items");
    p.line_ms = 0; /* every update is due */
    progress_update(&p, 1234, 3000);
    progress_update(&p, 3000, 3000);
    progress_end(&p);
    ck_assert_str_eq(contents(f), "fsck: 41% (1234/3000 items)\n"
                                  "fsck: 100% (3000/3000 items)\n"
                                  "fsck: 100% (3000/3000 items)\n");
    fclose(f);
    f = tmpfile();
    progress_init(&p, f, "copies", "paths set");
    p.line_ms = 0;
    progress_update(&p, 7, 0); /* total unknown */
    ck_assert_str_eq(contents(f), "copies: 7 paths set\n");
    char t[64];
    p.done = 5000;
    p.total = 3000; /* more done than the total said: never past 100% */
    ck_assert_str_eq(progress_text(&p, t, sizeof(t)), "100% (5000/3000 paths set)");
    fclose(f);
}
END_TEST

START_TEST(test_terminal_bar_redrawn_and_erased)
{
    FILE *f = tmpfile();
    struct progress p;
    progress_init(&p, f, "drain", "copies moved");
    p.tty = 1;
    p.last_ms = 0; /* the first update is due */
    progress_update(&p, 1, 2);
    const char *s = contents(f);
    ck_assert_str_eq(s, "\rdrain [###############               ]  50% 1/2 copies moved\033[K");
    progress_update(&p, 2, 2); /* within PROGRESS_TTY_MS: not drawn */
    ck_assert_uint_eq(strlen(contents(f)), strlen(s));
    progress_clear(&p); /* erased before other output, drawn again at the next update */
    ck_assert(strstr(contents(f), "\033[K\r\033[K") != NULL);
    progress_update(&p, 2, 2);
    ck_assert(strstr(contents(f), "100% 2/2") != NULL);
    progress_end(&p);
    s = contents(f);
    ck_assert_str_eq(s + strlen(s) - 4, "\r\033[K");
    fclose(f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tools_progress");
    TCase *t = tcase_create("progress");
    tcase_add_test(t, test_short_run_prints_nothing);
    tcase_add_test(t, test_plain_lines_and_last_line);
    tcase_add_test(t, test_terminal_bar_redrawn_and_erased);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return unit_run(suite());
}
