#include "clock.h"
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bg_monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Field 22 of /proc/self/stat is the start time in clock ticks after boot,
 * on the clock CLOCK_BOOTTIME reads; the fields are counted after the ')'
 * that closes the command name (which may itself hold spaces). */
double bg_process_age_s(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &start) != 1) return 0;
    const long hz = sysconf(_SC_CLK_TCK);
    struct timespec ts;
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts)) return 0;
    const double age = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec - (double)start / (double)hz;
    return age > 0 ? age : 0;
}
