/* Writes a file in the preopened directory in several chunks, reads it
 * back and writes a summary: the files must come out the same after a
 * migration.  argv[1]: lines to write. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int lines = argc > 1 ? atoi(argv[1]) : 2000;
    FILE *f = fopen("data.txt", "w");
    if (!f) { perror("data.txt"); return 2; }
    unsigned x = 12345;
    for (int i = 0; i < lines; i++) {
        for (int k = 0; k < 200; k++) x = x * 1103515245u + 12345u;
        fprintf(f, "%d %u\n", i, x);
    }
    fclose(f);
    f = fopen("data.txt", "r");
    if (!f) { perror("data.txt"); return 3; }
    unsigned long long sum = 0;
    int i, n = 0;
    unsigned v;
    while (fscanf(f, "%d %u", &i, &v) == 2) { sum += v ^ (unsigned)i; n++; }
    fclose(f);
    FILE *out = fopen("summary.txt", "w");
    if (!out) { perror("summary.txt"); return 4; }
    fprintf(out, "%d lines, sum %llu\n", n, sum);
    fclose(out);
    printf("read %d lines back, sum %llu\n", n, sum);
    return n == lines ? 0 : 1;
}
