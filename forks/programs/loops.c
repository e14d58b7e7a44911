/* Integer and floating-point loops with output spread over the run, so a
 * checkpoint falls between two prints.  argv[1]: rounds.  Exit status:
 * the checksum's low 6 bits (the restored run must hand it back). */
#include <stdio.h>
#include <stdlib.h>

static unsigned mix(unsigned h, unsigned v) { return (h ^ v) * 16777619u; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    unsigned h = 2166136261u;
    double acc = 0.0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 20000; i++) {
            h = mix(h, (unsigned)(i * r));
            acc += (double)(h & 0xff) / (1.0 + i);
        }
        printf("round %d: %08x %.6f\n", r, h, acc);
    }
    return (int)(h & 0x3f);
}
