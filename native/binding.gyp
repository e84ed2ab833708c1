# The optional OpenBLAS matmul addon (worker/engine/backend/native-matmul.ts loads it).
# Built by scripts/build-native.mjs on `npm ci` / `npm run build:native`; needs a C
# compiler, python3 and Debian's libopenblas-dev (<cblas.h>, -lopenblas).
{
  "targets": [
    {
      "target_name": "tunehouse_blas",
      "sources": ["src/sgemm_batch.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-lopenblas", "-ldl"]
    }
  ]
}
