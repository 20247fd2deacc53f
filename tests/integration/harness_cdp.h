/* harness_cdp.h - a real browser for the integration tests: Debian's chromium, headless, driven
 * over the Chrome DevTools Protocol on a pipe (--remote-debugging-pipe: JSON messages ended by
 * a NUL byte, commands on the browser's fd 3, replies and events on its fd 4).
 *
 * The browser runs with a profile of its own under the test's folder, in a process group of
 * its own led by the PID started here; h_cdp_close ends that PID (Browser.close, then SIGTERM,
 * then SIGKILL) and then whatever is left of its group. If the test dies first, the browser
 * sees its pipe close and exits. Every wait is bounded. Functions return 0 or a negative errno
 * and never call Check. */
#ifndef CAIRN_HARNESS_CDP_H
#define CAIRN_HARNESS_CDP_H

#include <stddef.h>
#include <sys/types.h>

#define H_CDP_CHROMIUM "/usr/bin/chromium"

struct h_cdp {
    pid_t pid;    /* the browser (0: none) */
    int to, from; /* our ends of its command and reply pipes */
    char *buf;    /* bytes read from the browser not yet taken as messages */
    size_t len, cap;
    int next_id;
    char session[128]; /* the attached page's session id */
};

/* Start the browser (profile DIR/chromium-profile, its output in DIR/chromium.log), open url
 * in a new page and attach to it. -ENOENT when chromium is not installed, -ETIMEDOUT, -EPROTO
 * when it answers something unexpected. On failure nothing is left running. */
int h_cdp_open(struct h_cdp *b, const char *dir, const char *url, int timeout_ms);
/* Evaluate the JavaScript expression expr in the page; its value must be a string (wrap it in
 * String(...)), copied to out (truncated to len-1 bytes; \u escapes beyond ASCII become '?').
 * -EPROTO when it threw or gave no string (out then holds the reply), -ETIMEDOUT. */
int h_cdp_eval(struct h_cdp *b, const char *expr, char *out, size_t len, int timeout_ms);
/* The same for an expression whose value is a number (String(...) is added here). */
int h_cdp_eval_num(struct h_cdp *b, const char *expr, double *out, int timeout_ms);
/* Close the browser and reap it (see above); safe on a closed or never opened h_cdp. */
void h_cdp_close(struct h_cdp *b);

#endif
