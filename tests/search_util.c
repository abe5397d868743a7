#include "search_util.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

int bg_test_history_records(const char *path, json_t **recs, int max)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0, lineno = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (lineno++ == 0 || line[len - 1] != '\n') continue;
        json_t *o = json_loads(line, 0, NULL);
        if (o && n < max) recs[n++] = o;
        else json_decref(o);
    }
    free(line);
    fclose(f);
    return n;
}

void bg_test_history_free(json_t **recs, int n)
{
    for (int i = 0; i < n; i++) json_decref(recs[i]);
}
