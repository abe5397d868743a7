/* A finished (or failed) training run read back from its log.jsonl: the
 * best validation accuracy over its epoch lines (the search's score: never
 * the test split) and the "done" line (budgie train writes it last). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "drive.h"

bg_status bg_drive_score_read(bg_ctx *ctx, const char *run_dir, bg_drive_score *s)
{
    memset(s, 0, sizeof *s);
    s->best_val = s->last_val = s->best_test = s->last_test = -1;
    char path[1100];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return bg_fail(ctx, BG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue; /* a line cut by a kill: the run failed anyway */
        json_t *v;
        if (json_object_get(o, "epoch")) {
            s->epochs++;
            if (json_is_number(v = json_object_get(o, "val_acc"))) {
                s->last_val = json_number_value(v);
                if (s->last_val > s->best_val) s->best_val = s->last_val;
            }
            if (json_is_number(v = json_object_get(o, "test_acc"))) s->last_test = json_number_value(v);
            if (json_is_number(v = json_object_get(o, "images_per_s"))) s->images_per_s = json_number_value(v);
        }
        if (json_is_true(json_object_get(o, "done"))) {
            s->done = true;
            if (json_is_number(v = json_object_get(o, "best_test_acc"))) s->best_test = json_number_value(v);
            if (json_is_string(v = json_object_get(o, "stopped_by")))
                snprintf(s->stopped_by, sizeof s->stopped_by, "%s", json_string_value(v));
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return BG_OK;
}

void bg_drive_last_line(const char *path, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t lc = 0;
    ssize_t len;
    while ((len = getline(&line, &lc, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        /* skip progress redraws and blank lines */
        char *p = strrchr(line, '\r');
        if (p) p++;
        else p = line;
        /* budgie train's closing remarks about checkpoints are not the reason */
        if (*p && !strstr(p, "no checkpoint was written") && !strstr(p, "last good checkpoint")) snprintf(out, cap, "%s", p);
    }
    free(line);
    fclose(f);
}
