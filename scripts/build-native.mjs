// Placeholder: the optional native BLAS matmul addon is built here (see native/).
// It must never fail `npm ci`: a missing compiler or BLAS just means the fallback path.
