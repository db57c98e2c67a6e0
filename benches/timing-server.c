/* A minimal HTTP/1.1 keep-alive server for benchmarking the engine's
   Server-Timing path (issue #17): one epoll loop, one fixed 200 response per
   request head read; with -t the response carries a three-entry
   Server-Timing header, as the gateway's would; with -j its body is a small
   JSON object (for flows that capture from it, benches/traffic.sh).
   Usage: timing-server PORT [-t|-j]   (loopback only) */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char plain[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";
static const char timed[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n"
    "Server-Timing: payments;dur=8.312, inventory;dur=2.904, gateway;dur=11.530\r\n\r\nok\n";
static const char json[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 41\r\nContent-Type: application/json\r\n\r\n"
    "{\"token\":\"abc123\",\"id\":42,\"ok\":true}\n\n\n\n\n";

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 18082;
    int with_timing = argc > 2 && strcmp(argv[2], "-t") == 0;
    int with_json = argc > 2 && strcmp(argv[2], "-j") == 0;
    const char *resp = with_timing ? timed : with_json ? json : plain;
    size_t len = with_timing ? sizeof timed - 1 : with_json ? sizeof json - 1 : sizeof plain - 1;
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 4096) < 0) {
        perror("listen");
        return 1;
    }
    fcntl(ls, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event events[512];
    static char buf[65536];
    for (;;) {
        int k = epoll_wait(ep, events, 512, -1);
        for (int i = 0; i < k; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept(ls, NULL, NULL)) >= 0) {
                    fcntl(c, F_SETFL, O_NONBLOCK);
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLET, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    int heads = 0;
                    for (ssize_t j = 0; j + 3 < r; j++)
                        if (!memcmp(buf + j, "\r\n\r\n", 4)) heads++;
                    for (int q = 0; q < (heads ? heads : 1); q++)
                        if (write(fd, resp, len) < 0) break;
                } else if (r == 0 || errno != EAGAIN) {
                    close(fd);
                    break;
                } else {
                    break;
                }
            }
        }
    }
}
