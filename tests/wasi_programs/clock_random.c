/* Clocks, sleeping (poll_oneoff on a clock) and random bytes: in the
 * engine's deterministic mode two runs print the same bytes. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec a, b, r;
    clock_gettime(CLOCK_REALTIME, &a);
    printf("realtime %lld.%09ld\n", (long long)a.tv_sec, a.tv_nsec);
    clock_getres(CLOCK_MONOTONIC, &r);
    printf("resolution ok %d\n", r.tv_sec == 0 && r.tv_nsec > 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec nap = {0, 20000000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long slept = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("slept at least 20ms %d (%lld ns)\n", slept >= 20000000, slept);
    unsigned char buf[16];
    getentropy(buf, sizeof buf);
    printf("random");
    for (int i = 0; i < 16; i++) printf(" %02x", buf[i]);
    printf("\n");
    return 0;
}
