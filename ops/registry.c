/* The op registry: the rows listed in ops.def, looked up by name. */
#include <string.h>
#include "ops.h"

static const bg_op *const table[] = {
#define BG_OP(name) &bg_op_##name,
#include "ops.def"
#undef BG_OP
};

int bg_op_count(void) { return (int)(sizeof table / sizeof table[0]); }

const bg_op *bg_op_at(int i) { return i >= 0 && i < bg_op_count() ? table[i] : NULL; }

const bg_op *bg_op_find(const char *name)
{
    for (int i = 0; i < bg_op_count(); i++)
        if (!strcmp(table[i]->name, name)) return table[i];
    return NULL;
}
