/* status_www.h - the status page's static files, embedded in cairn-meta (status_www.c). */
#ifndef CAIRN_STATUS_WWW_H
#define CAIRN_STATUS_WWW_H

#include <stddef.h>

struct www_file {
    const char *path;         /* the URL path it is served at ("/status.js") */
    const char *content_type; /* its Content-Type */
    const char *data, *end;   /* its bytes (static, not NUL-terminated) */
};

/* Every embedded file; *n gets the count. The table and the bytes are static. */
const struct www_file *www_files(size_t *n);

#endif
