/* A WASI command that keeps files open while it works, for migration at
 * random points: reads /data/in.txt line by line, appends to the existing
 * /data/log.txt (O_APPEND), writes /data/out.txt with stdio buffering,
 * patches /data/table.bin with pwrite and lseek, prints progress on stdout
 * and stderr, uses the clock and random bytes, then rereads what it wrote. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned work(const char *s, int rounds) {
    unsigned h = 2166136261u;
    for (int r = 0; r < rounds; r++)
        for (const char *p = s; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u + r;
    return h;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    FILE *in = fopen("/data/in.txt", "r");
    FILE *out = fopen("/data/out.txt", "w");
    int log = open("/data/log.txt", O_WRONLY | O_APPEND);
    int tab = open("/data/table.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!in || !out || log < 0 || tab < 0) { perror("open"); return 1; }
    char line[256], msg[300];
    unsigned total = 0;
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = 0;
        unsigned h = work(line, rounds);
        total += h;
        fprintf(out, "%d %s %08x\n", n, line, h);
        if (n % 4 == 3) fflush(out);
        int len = snprintf(msg, sizeof msg, "entry %d: %u\n", n, h % 1000);
        write(log, msg, len);
        pwrite(tab, &h, sizeof h, (off_t)(n % 8) * sizeof h);
        lseek(tab, 0, SEEK_END);
        write(tab, &n, 1);
        if (n % 5 == 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            unsigned char r[4];
            getentropy(r, sizeof r);
            printf("line %d total %08x t=%lld r=%02x%02x\n", n, total,
                   (long long)t.tv_sec * 1000000000LL + t.tv_nsec, r[0], r[1]);
            fflush(stdout);
        }
        if (n % 7 == 6) fprintf(stderr, "checkpoint-friendly stderr %d\n", n);
        n++;
    }
    fclose(in);
    fclose(out);
    close(log);
    off_t size = lseek(tab, 0, SEEK_END);
    close(tab);
    out = fopen("/data/out.txt", "r");
    unsigned check = 0;
    while (fgets(line, sizeof line, out)) check = check * 31 + work(line, 1);
    fclose(out);
    printf("%d lines, total %08x, out check %08x, table %lld bytes\n", n, total, check,
           (long long)size);
    return 0;
}
