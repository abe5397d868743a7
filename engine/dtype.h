/* Element types. f16 is storage only on the CPU (converted to f32 to compute);
 * f64 exists so the CPU reference can run finite-difference gradient checks. */
#ifndef BG_DTYPE_H
#define BG_DTYPE_H
#include <stddef.h>
#include <stdint.h>

typedef enum { BG_F32 = 0, BG_F16, BG_F64, BG_U8, BG_I32, BG_DTYPE_COUNT } bg_dtype;

size_t bg_dtype_size(bg_dtype t);
const char *bg_dtype_name(bg_dtype t);
int bg_dtype_is_float(bg_dtype t);

/* IEEE 754 binary16 <-> binary32, round to nearest even, inf/NaN/subnormals kept. */
uint16_t bg_f32_to_f16(float f);
float bg_f16_to_f32(uint16_t h);

#endif
