/* Shared by the search tests (test_search_drive.c, test_search_launch.c):
 * the tiny recipe their searches train, and a history read back. */
#ifndef BG_TEST_SEARCH_UTIL_H
#define BG_TEST_SEARCH_UTIL_H
#include <jansson.h>

/* A few seconds per evaluation on two shared cores. */
#define BG_TEST_TINY_SEARCH                                                                              \
    "recipes/default --model small_cnn --train-per-class 20 --test-per-class 10 --val-per-class 5 " \
    "--batch 64"

/* The evaluation records of a history (the header skipped; a cut last line
 * is not counted), at most max; -1 when the file cannot be opened. */
int bg_test_history_records(const char *path, json_t **recs, int max);
void bg_test_history_free(json_t **recs, int n);

#endif
