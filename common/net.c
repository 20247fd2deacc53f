/* net.c - socket helpers (see net.h). */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void net_abstime_in(uint64_t ms, struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + (ms % 1000u) * 1000000u;
    ts->tv_sec += (time_t)(ms / 1000u + ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

uint64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int net_parse_addr(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -EINVAL;
    size_t hl = (size_t)(colon - s);
    if (hl >= hostlen) return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || p < 0 || p > 65535) return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static int resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *sl, int passive)
{
    char host[128], ports[8];
    uint16_t port;
    if (net_parse_addr(hostport, host, sizeof(host), &port)) return -EINVAL;
    snprintf(ports, sizeof(ports), "%u", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (passive) hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host[0] ? host : NULL, ports, &hints, &res) || !res) return -EHOSTUNREACH;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int net_connect(const char *hostport, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = resolve(hostport, &ss, &sl, 0);
    if (rc) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto err;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr <= 0) {
            rc = pr == 0 ? -ETIMEDOUT : -errno;
            goto err;
        }
        int soerr = 0;
        socklen_t el = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el);
        if (soerr) {
            rc = -soerr;
            goto err;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
err:
    close(fd);
    return rc;
}

int net_listen(const char *hostport, uint16_t *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = resolve(hostport, &ss, &sl, 1);
    if (rc) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (bound_port) {
        struct sockaddr_storage b;
        socklen_t bl = sizeof(b);
        getsockname(fd, (struct sockaddr *)&b, &bl);
        *bound_port = ntohs(b.ss_family == AF_INET ? ((struct sockaddr_in *)&b)->sin_port
                                                   : ((struct sockaddr_in6 *)&b)->sin6_port);
    }
    return fd;
}
