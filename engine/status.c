#include "status.h"

const char *bg_status_name(bg_status s)
{
    switch (s) {
    case BG_OK: return "ok";
    case BG_ERR_ARG: return "bad argument";
    case BG_ERR_SHAPE: return "shape mismatch";
    case BG_ERR_DTYPE: return "dtype mismatch";
    case BG_ERR_DEVICE: return "device mismatch";
    case BG_ERR_OOM: return "out of memory";
    case BG_ERR_IO: return "i/o error";
    case BG_ERR_FORMAT: return "malformed file";
    case BG_ERR_UNSUPPORTED: return "unsupported";
    case BG_ERR_CUDA: return "cuda error";
    case BG_ERR_NUMERIC: return "numeric error";
    }
    return "unknown status";
}
