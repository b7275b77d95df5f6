/* The storm program of `cargo xtask bench`: syscalls as fast as asked, to load the sensor.
 *
 *   storm now                             print CLOCK_REALTIME in ns (its first action) and exit
 *   storm open DIR NFILES TOTAL RATE      TOTAL opens (+ close) of DIR/f0 .. DIR/f<NFILES-1>
 *   storm connect PORT TOTAL RATE         TOTAL TCP connects to 127.0.0.1:PORT (closed with RST)
 *   storm spawn TOTAL PARALLEL RATE       TOTAL short-lived processes: PARALLEL workers each
 *                                         fork, exec `storm exit` and wait, in a loop
 *   storm exit                            exit at once (the short-lived program of `spawn`)
 *
 * RATE is in operations per second, 0 for as fast as possible. The program keeps to it by
 * sleeping whenever it is ahead of RATE * elapsed (never busy-waits: the machine has 2 cores and
 * the monitor needs the other one). It prints `ops=N secs=S rate=R failed=F` on stdout at the end.
 * Compiled with `cc -O2` by the bench; no dependency beyond libc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleeps while `done` operations are ahead of `rate` per second since `start`. */
static void throttle(uint64_t start, uint64_t done, double rate) {
    if (rate <= 0)
        return;
    /* Only look at the clock every few operations at high rates: it costs ~20 ns. */
    if (rate > 100000 && done % 16 != 0)
        return;
    uint64_t due = start + (uint64_t)((double)done * 1e9 / rate);
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (due > now + 50000) {
        struct timespec ts = {.tv_sec = (time_t)((due - now) / 1000000000ull),
                              .tv_nsec = (long)((due - now) % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

static void report(uint64_t start, uint64_t ops, uint64_t failed) {
    double secs = (double)(now_ns(CLOCK_MONOTONIC) - start) / 1e9;
    printf("ops=%llu secs=%.6f rate=%.0f failed=%llu\n", (unsigned long long)ops, secs,
           secs > 0 ? (double)ops / secs : 0.0, (unsigned long long)failed);
}

static int storm_open(const char *dir, uint64_t nfiles, uint64_t total, double rate) {
    char(*paths)[256] = calloc(nfiles, 256);
    if (!paths)
        return 1;
    for (uint64_t i = 0; i < nfiles; i++)
        snprintf(paths[i], 256, "%s/f%llu", dir, (unsigned long long)i);
    uint64_t failed = 0;
    uint64_t start = now_ns(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < total; i++) {
        throttle(start, i, rate);
        int fd = open(paths[i % nfiles], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            failed++;
        else
            close(fd);
    }
    report(start, total, failed);
    free(paths);
    return 0;
}

static int storm_connect(int port, uint64_t total, double rate) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Close with RST (linger 0): no TIME_WAIT, so the ephemeral ports never run out. */
    struct linger lin = {.l_onoff = 1, .l_linger = 0};
    uint64_t failed = 0;
    uint64_t start = now_ns(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < total; i++) {
        throttle(start, i, rate);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            failed++;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
            failed++;
        close(fd);
    }
    report(start, total, failed);
    return 0;
}

/* PARALLEL workers share TOTAL processes and RATE; each process is a fork of a worker that
 * execs this program (`storm exit`), waited for before the next. The parent sums the workers'
 * failures from their exit statuses and prints one line for all. */
static int storm_spawn(uint64_t total, uint64_t parallel, double rate) {
    if (parallel == 0)
        parallel = 1;
    /* The real path, not /proc/self/exe: the processes then show under storm's own image. */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return 1;
    self[len] = '\0';
    uint64_t start = now_ns(CLOCK_MONOTONIC);
    for (uint64_t w = 0; w < parallel; w++) {
        pid_t worker = fork();
        if (worker < 0)
            return 1;
        if (worker > 0)
            continue;
        uint64_t mine = total / parallel + (w < total % parallel ? 1 : 0);
        uint64_t failed = 0;
        for (uint64_t i = 0; i < mine; i++) {
            throttle(start, i, rate / (double)parallel);
            pid_t child = fork();
            if (child == 0) {
                execl(self, self, "exit", (char *)NULL);
                _exit(127);
            }
            int status = 0;
            if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0)
                failed++;
        }
        /* At most 255 failures are told apart; any failure fails the storm. */
        _exit(failed > 255 ? 255 : (int)failed);
    }
    uint64_t failed = 0;
    int status = 0;
    while (wait(&status) > 0)
        failed += WIFEXITED(status) ? (uint64_t)WEXITSTATUS(status) : 1;
    report(start, total, failed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "exit") == 0)
        return 0;
    if (argc == 5 && strcmp(argv[1], "spawn") == 0)
        return storm_spawn(strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
                           strtod(argv[4], NULL));
    if (argc >= 2 && strcmp(argv[1], "now") == 0) {
        uint64_t t = now_ns(CLOCK_REALTIME);
        printf("%llu\n", (unsigned long long)t);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "open") == 0)
        return storm_open(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                          strtod(argv[5], NULL));
    if (argc == 5 && strcmp(argv[1], "connect") == 0)
        return storm_connect(atoi(argv[2]), strtoull(argv[3], NULL, 10), strtod(argv[4], NULL));
    fprintf(stderr, "usage: storm now | exit | open DIR NFILES TOTAL RATE | connect PORT TOTAL RATE | "
                    "spawn TOTAL PARALLEL RATE\n");
    return 2;
}
