# The faults `make test-emu-mutants` plants in the kernels, one at a time
# (sourced by run.sh). Each entry: a name, the file, the text to replace (it
# must occur exactly once in the file), its replacement, and the tests that
# must notice (runner filters). Every fault here is one a kernel author
# could plausibly write; the emulated suite has to catch each of them.
# shellcheck shell=sh disable=SC2016

# ---- tensor cores: fragments, ldmatrix, mma (kernels/gemm) ---------------------------------
mutant mma_swapped_operands kernels/gemm/tc_core.cuh \
    ': "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));' \
    ': "r"(b0), "r"(b1), "r"(a[2]), "r"(a[3]), "r"(a[0]), "r"(a[1]));' \
    gpu_gemm_variants
mutant ldmatrix_missing_trans kernels/gemm/tc_core.cuh \
    'ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16' 'ldmatrix.sync.aligned.m8n8.x4.shared.b16' \
    gpu_gemm_variants
mutant ldmatrix_wrong_fragment_index kernels/gemm/igemm_main.cuh \
    'b[2 * jj + 1][0] = r[2];' 'b[2 * jj + 1][0] = r[1];' \
    gpu_gemm_variants
mutant zero_fill_too_short kernels/gemm/tc_core.cuh \
    'return bytes <= 0 ? 0 : bytes >= 16 ? 16 : (int)bytes;' 'return bytes <= 0 ? 0 : bytes >= 8 ? 16 : (int)bytes;' \
    gpu_gemm_variants
mutant simt_wrong_column kernels/gemm/igemm_main.cuh \
    'acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);' 'acc[i][j] = fmaf(av[i], bv[j ^ 1], acc[i][j]);' \
    gpu_gemm_variants

# ---- the cp.async pipeline --------------------------------------------------------------------------
mutant pipeline_barrier_removed kernels/gemm/igemm_main.cuh \
    '__syncthreads();             // ... everyone' '/* __syncthreads() removed */ // ... everyone' \
    gpu_gemm_variants
mutant wait_group_removed kernels/gemm/igemm_main.cuh \
    'cp_async_wait<NSTAGE - 2>(); // this thread' '/* no wait */ // this thread' \
    gpu_gemm_variants
mutant load_one_row_past_m kernels/gemm/gemm_problem.cuh \
    'bytes = m < g.M ? clamp16(2LL * (g.K - k)) : 0;' 'bytes = m <= g.M ? clamp16(2LL * (g.K - k)) : 0;' \
    gpu_gemm_variants
mutant too_little_dynamic_smem kernels/gemm/igemm_main.cuh \
    'static constexpr int SMEM_VEC = STAGES * (A_ELEMS + B_ELEMS) * 2;' \
    'static constexpr int SMEM_VEC = STAGES * (A_ELEMS + B_ELEMS) * 2 - 1024;' \
    gpu_gemm_variants
mutant splitk_drops_last_slice kernels/gemm/gemm.cu \
    'for (int k = 0; k < splits; k++) s += src[k * ws_stride];' 'for (int k = 0; k + 1 < splits; k++) s += src[k * ws_stride];' \
    gpu_gemm_batched_epilogue_splitk
mutant epilogue_stats_shuffle_from_8 kernels/gemm/igemm_main.cuh \
    'for (int o = 4; o < 32; o <<= 1) {' 'for (int o = 8; o < 32; o <<= 1) {' \
    gpu_conv_fused_epilogue_and_stats

# ---- wgmma (sm_90a) and NVRTC -------------------------------------------------------------------------
mutant wgmma_descriptor_stride kernels/gemm/gemm_wgmma_sm90a.cu \
    'd |= (uint64_t)(1024 >> 4) << 32;' 'd |= (uint64_t)(512 >> 4) << 32;' \
    gpu_gemm_wgmma
mutant wgmma_wait_removed kernels/gemm/gemm_wgmma_sm90a.cu \
    'wg_wait<1>();    // my wgmma on tile kt-1 are done ...' '/* no wait */' \
    gpu_gemm_wgmma
mutant nvrtc_geometry_swapped kernels/rtc/rtc.cu \
    'g.M, g.N, g.K, g.batch);' 'g.N, g.M, g.K, g.batch);' \
    gpu_gemm_nvrtc

# ---- convolution --------------------------------------------------------------------------------------
mutant conv_reads_past_image_edge kernels/conv/conv_problem.cuh \
    'const bool ok = cok && a_img[i] >= 0 && (unsigned)iy < (unsigned)g.h && (unsigned)ix < (unsigned)g.w;' \
    'const bool ok = cok && a_img[i] >= 0 && (unsigned)iy <= (unsigned)g.h && (unsigned)ix < (unsigned)g.w;' \
    gpu_conv_fused_epilogue_and_stats

# ---- reductions, barriers, warps ---------------------------------------------------------------------
mutant shuffle_offset_from_8 kernels/reduce.cuh \
    'for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync' 'for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync' \
    'softmax_xent['
mutant reduction_barrier_removed kernels/reduce.cuh \
    'if (t < w) smem[t] += smem[t + w];' 'if (t < w) smem[t] += smem[t + w]; continue; /* skips the barrier */' \
    'softmax_xent['
mutant divergent_barrier kernels/reduce.cuh \
    'if (ty < w) buf[ty][tx] += buf[ty + w][tx];' 'if (ty < w) { buf[ty][tx] += buf[ty + w][tx]; __syncthreads(); }' \
    gpu_bn_matches
mutant lane_exits_before_shuffle kernels/loss.cu \
    'mx = bgkr::warp_max(mx);' 'if (lane == 31) return; mx = bgkr::warp_max(mx);' \
    'softmax_xent['

# ---- one fault per remaining kernel family --------------------------------------------------------------
mutant batchnorm_beta_from_gamma kernels/batchnorm.cu \
    'coef[2 * g.c + ch] = ld(beta, ch);' 'coef[2 * g.c + ch] = ld(gamma, ch);' \
    gpu_bn_matches
mutant pool_window_one_too_wide kernels/pool.cu \
    'int64_t start = o * s - p, end = start + k;' 'int64_t start = o * s - p, end = start + k + 1;' \
    'avgpool2d['
mutant broadcast_reduce_skips_last_level kernels/elementwise.cu \
    'for (int w = blockDim.x / 2; w > 0; w >>= 1) {' 'for (int w = blockDim.x / 2; w > 1; w >>= 1) {' \
    'add[' 'mul['
mutant split_sum_drops_last_split kernels/split_sum.cu \
    'for (int64_t s = 0; s < r; s++) acc += ld(xp, s * c);' 'for (int64_t s = 0; s + 1 < r; s++) acc += ld(xp, s * c);' \
    'split_sum['
mutant attention_gate_wrong_channel kernels/attention.cu \
    'acc += ld(dy, row * c + k) * ld(x, row * rc + j);' 'acc += ld(dy, row * c + k) * ld(x, row * rc + k);' \
    gpu_split_attention
mutant concat_owner_off_by_one kernels/shape.cu \
    'while (i < a.n - 1 && j >= a.width[i]) j -= a.width[i++];' 'while (i < a.n - 1 && j > a.width[i]) j -= a.width[i++];' \
    'concat'
mutant optimizer_skips_last_element kernels/optim.cu \
    'for (int64_t i = ch.start + threadIdx.x; i < end; i += blockDim.x) update<KIND>' \
    'for (int64_t i = ch.start + threadIdx.x; i + 1 < end; i += blockDim.x) update<KIND>' \
    gpu_optim_f32
mutant xent_backward_scale kernels/loss.cu \
    'const float scale = dloss[0] / (float)n,' 'const float scale = dloss[0] / (float)k,' \
    'softmax_xent['
mutant augment_buffers_overlap kernels/augment.cu \
    'uint8_t *a = dyn, *b = dyn + n;' 'uint8_t *a = dyn, *b = dyn + n / 2;' \
    gpu_augment_batch
mutant philox_wrong_block kernels/random.cu \
    'double u1 = bg_u32_to_unit_open0(r.v[k]), u2 = bg_u32_to_unit(r.v[k + 1]);' \
    'double u1 = bg_u32_to_unit_open0(r.v[k + 1]), u2 = bg_u32_to_unit(r.v[k]);' \
    gpu_philox
