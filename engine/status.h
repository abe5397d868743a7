/* Errors are values: every library call returns a bg_status, and the context
 * keeps a one-line message naming what failed (tensor, file, field, shape). */
#ifndef BG_STATUS_H
#define BG_STATUS_H

typedef enum {
    BG_OK = 0,
    BG_ERR_ARG,         /* a bad argument (null, out of range, unknown name) */
    BG_ERR_SHAPE,       /* shapes do not agree */
    BG_ERR_DTYPE,       /* dtypes do not agree or are unsupported by the op */
    BG_ERR_DEVICE,      /* tensors on different devices, or no kernel for the device */
    BG_ERR_OOM,         /* allocation failed or would exceed the memory cap */
    BG_ERR_IO,          /* a file could not be opened, read or written */
    BG_ERR_FORMAT,      /* a file's content is malformed */
    BG_ERR_UNSUPPORTED, /* valid request this build cannot do (e.g. CUDA without nvcc) */
    BG_ERR_CUDA,        /* the CUDA runtime reported an error */
    BG_ERR_NUMERIC      /* a numerical check failed (NaN, mismatch) */
} bg_status;

const char *bg_status_name(bg_status s);

#endif
