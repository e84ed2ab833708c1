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
