/* The search drivers' verbs (tools/cmd_search_drive.c, cmd_search_report.c),
 * dispatched from `budgie search` (tools/cmd_search.c). */
#ifndef BG_SEARCH_VERBS_H
#define BG_SEARCH_VERBS_H
#include <stdbool.h>
#include <stdio.h>

void bg_search_drive_usage(FILE *f);
/* `search nas|hpo RECIPE ...`: argv[0] is "nas" or "hpo". */
int bg_search_drive(const char *verb, int argc, char **argv);
/* Whether PATH is a driver history (its first line is a search header). */
bool bg_search_is_drive_history(const char *path);
/* `search report HISTORY` on a driver history: best points with ready
 * `budgie train` lines, and PNGs when out_prefix is given. */
int bg_search_drive_report(const char *path, long top, const char *png);

#endif
