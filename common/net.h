/* net.h - socket helpers: "host:port" parsing, blocking connect with a timeout, listening. */
#ifndef CAIRN_NET_H
#define CAIRN_NET_H

#include <stddef.h>
#include <stdint.h>

/* Split "host:port" into host (size >= 64) and port. Returns 0 or -EINVAL. */
int net_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port);
/* TCP connect with TCP_NODELAY; returns an fd or a negative errno. */
int net_connect(const char *hostport, int timeout_ms);
/* Listen on "host:port" (port 0 picks one); returns fd or negative errno; *bound_port gets the
 * port actually bound. */
int net_listen(const char *hostport, uint16_t *bound_port);
/* Monotonic milliseconds. */
uint64_t net_now_ms(void);
/* The CLOCK_REALTIME time ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec;
void net_abstime_in(uint64_t ms, struct timespec *ts);

#endif
