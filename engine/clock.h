/* The runtime's clocks, one copy for every layer: timing steps, budgets,
 * blackbox runs and benches all read the same monotonic clock. */
#ifndef BG_CLOCK_H
#define BG_CLOCK_H

/* CLOCK_MONOTONIC in seconds (the clock of bg_run_config.t0). */
double bg_monotonic_s(void);
/* Seconds since this process started (exec included; clock-tick
 * resolution, 10 ms on Linux), 0 when /proc cannot tell: a budget that
 * bounds the whole process starts at bg_monotonic_s() - bg_process_age_s(). */
double bg_process_age_s(void);

#endif
