/* Packed data sets: one file holding a bg_dataset (uint8 HWC pixels, int32
 * labels, class names) that loads with three reads and no decoding.
 * Written by `budgie data pack`.
 *
 * Layout (all integers little-endian):
 *   0  char[8]  magic "BGPACK\r\n" (the CR LF catches text-mode mangling)
 *   8  u32      version (1)
 *  12  u32      header_size: bytes before the labels (64 + names, rounded up to 64)
 *  16  u64      count (images)
 *  24  u32      h, w, c  (every image h x w x c, row-major HWC)
 *  36  u32      n_classes
 *  40  u32      names_bytes: the class names, each NUL-terminated, in label order, at offset 64
 *  44  u32      header_crc: zlib crc32 of [0, header_size) with bytes 44..51 zeroed
 *  48  u32      data_crc: crc32 of everything after the header (labels, then pixels)
 *  52  u32[3]   zero
 *  header_size  i32[count] labels, then count*h*w*c pixel bytes; nothing after.
 * A reader checks the magic, the version, the exact file size, both CRCs and
 * that every label is below n_classes, and names the file in each error. */
#ifndef BG_PACK_H
#define BG_PACK_H
#include "dataset.h"

#define BG_PACK_VERSION 1

/* Write ds to path (through "<path>.tmp" and a rename). */
bg_status bg_pack_write(bg_ctx *ctx, const bg_dataset *ds, const char *path);
/* Read a pack into *ds (left empty on failure). */
bg_status bg_pack_read(bg_ctx *ctx, const char *path, bg_dataset *ds);
/* True when the file starts with the pack magic (no other check). */
bool bg_pack_is_pack(const char *path);

#endif
