// N-API binding over CBLAS sgemm, used to replace tfjs-wasm's BatchMatMul kernel.
// Operands are read and written in place inside caller-supplied ArrayBuffers (for
// tfjs-wasm: the wasm heap), so no tensor data is copied.
#include <cblas.h>
#include <dlfcn.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#define CHECK_NAPI(env, call)                                        \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error((env), NULL, "tunehouse_blas: " #call " failed"); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

static napi_value throw_range(napi_env env, const char* msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

static int get_arraybuffer(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return 0;
  void* p = NULL;
  if (napi_get_arraybuffer_info(env, v, &p, len) != napi_ok) return 0;
  *data = (uint8_t*)p;
  return 1;
}

// Float64Array of byte offsets, one per batch element.
static int get_offsets(napi_env env, napi_value v, const double** data, size_t* len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  void* p = NULL;
  napi_value ab;
  size_t off = 0;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok) return 0;
  if (type != napi_float64_array) return 0;
  *data = (const double*)p;
  return 1;
}

// Checks that [offset, offset + bytes) lies inside a buffer of `cap` bytes and is
// float-aligned, so a wrong offset from JS raises an error instead of corrupting memory.
static int region_ok(double offset, size_t bytes, size_t cap) {
  if (!(offset >= 0) || offset != (double)(uint64_t)offset) return 0;
  uint64_t o = (uint64_t)offset;
  if (o % 4 != 0) return 0;
  return o <= cap && bytes <= cap - o;
}

// sgemmBatch(transA, transB, M, N, K, aBuf, aOffsets, bBuf, bOffsets, cBuf, cOffset)
// For i in batch: C_i[M,N] = op(A_i) · op(B_i), row-major, where A_i starts at byte
// aOffsets[i] of aBuf (stored [M,K], or [K,M] when transA), B_i at bOffsets[i] of bBuf
// (stored [K,N], or [N,K] when transB) and C_i at cOffset + i·M·N·4 of cBuf.
static napi_value SgemmBatch(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) return throw_range(env, "sgemmBatch: expected 11 arguments");

  bool trans_a = false, trans_b = false;
  CHECK_NAPI(env, napi_get_value_bool(env, argv[0], &trans_a));
  CHECK_NAPI(env, napi_get_value_bool(env, argv[1], &trans_b));
  int64_t m = 0, n = 0, k = 0;
  CHECK_NAPI(env, napi_get_value_int64(env, argv[2], &m));
  CHECK_NAPI(env, napi_get_value_int64(env, argv[3], &n));
  CHECK_NAPI(env, napi_get_value_int64(env, argv[4], &k));
  if (m < 0 || n < 0 || k < 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
    return throw_range(env, "sgemmBatch: M, N, K must be in [0, 2^31)");
  }

  uint8_t *a_buf = NULL, *b_buf = NULL, *c_buf = NULL;
  size_t a_cap = 0, b_cap = 0, c_cap = 0;
  if (!get_arraybuffer(env, argv[5], &a_buf, &a_cap)) return throw_range(env, "sgemmBatch: aBuf must be an ArrayBuffer");
  if (!get_arraybuffer(env, argv[7], &b_buf, &b_cap)) return throw_range(env, "sgemmBatch: bBuf must be an ArrayBuffer");
  if (!get_arraybuffer(env, argv[9], &c_buf, &c_cap)) return throw_range(env, "sgemmBatch: cBuf must be an ArrayBuffer");

  const double *a_offs = NULL, *b_offs = NULL;
  size_t batch = 0, batch_b = 0;
  if (!get_offsets(env, argv[6], &a_offs, &batch)) return throw_range(env, "sgemmBatch: aOffsets must be a Float64Array");
  if (!get_offsets(env, argv[8], &b_offs, &batch_b)) return throw_range(env, "sgemmBatch: bOffsets must be a Float64Array");
  if (batch != batch_b) return throw_range(env, "sgemmBatch: aOffsets and bOffsets differ in length");
  double c_off = 0;
  CHECK_NAPI(env, napi_get_value_double(env, argv[10], &c_off));

  const size_t a_bytes = (size_t)m * (size_t)k * 4, b_bytes = (size_t)k * (size_t)n * 4;
  const size_t c_bytes = (size_t)m * (size_t)n * 4;
  if (!region_ok(c_off, c_bytes * batch, c_cap)) return throw_range(env, "sgemmBatch: output region out of bounds");
  for (size_t i = 0; i < batch; i++) {
    if (!region_ok(a_offs[i], a_bytes, a_cap)) return throw_range(env, "sgemmBatch: an A region is out of bounds");
    if (!region_ok(b_offs[i], b_bytes, b_cap)) return throw_range(env, "sgemmBatch: a B region is out of bounds");
  }
  if (m == 0 || n == 0 || batch == 0) return NULL;
  float* c = (float*)(c_buf + (uint64_t)c_off);
  if (k == 0) {  // BLAS rejects lda = 0; the product over an empty inner dimension is 0.
    memset(c, 0, c_bytes * batch);
    return NULL;
  }
  const int lda = trans_a ? (int)m : (int)k;
  const int ldb = trans_b ? (int)k : (int)n;
  for (size_t i = 0; i < batch; i++) {
    const float* a = (const float*)(a_buf + (uint64_t)a_offs[i]);
    const float* b = (const float*)(b_buf + (uint64_t)b_offs[i]);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0f, a, lda, b, ldb, 0.0f, c + i * (size_t)m * (size_t)n, (int)n);
  }
  return NULL;
}

// OpenBLAS extensions are looked up at run time so the addon also links against a
// plain CBLAS; they report null / -1 there.
typedef char* (*corename_fn)(void);
typedef char* (*config_fn)(void);
typedef int (*get_threads_fn)(void);
typedef void (*set_threads_fn)(int);

static napi_value string_or_null(napi_env env, const char* s) {
  napi_value v;
  if (s == NULL) {
    napi_get_null(env, &v);
  } else {
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  }
  return v;
}

static napi_value Info(napi_env env, napi_callback_info info) {
  (void)info;
  corename_fn corename = (corename_fn)dlsym(RTLD_DEFAULT, "openblas_get_corename");
  config_fn config = (config_fn)dlsym(RTLD_DEFAULT, "openblas_get_config");
  get_threads_fn threads = (get_threads_fn)dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
  napi_value obj, num;
  CHECK_NAPI(env, napi_create_object(env, &obj));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "corename", string_or_null(env, corename ? corename() : NULL)));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "config", string_or_null(env, config ? config() : NULL)));
  CHECK_NAPI(env, napi_create_int32(env, threads ? threads() : -1, &num));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "threads", num));
  return obj;
}

static napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n = 0;
  if (argc != 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    return throw_range(env, "setNumThreads: expected a positive integer");
  }
  set_threads_fn set = (set_threads_fn)dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
  napi_value ok;
  if (set) set(n);
  CHECK_NAPI(env, napi_get_boolean(env, set != NULL, &ok));
  return ok;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemmBatch", NULL, SgemmBatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNumThreads", NULL, SetNumThreads, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
