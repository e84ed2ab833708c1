# syntax=docker/dockerfile:1
# Images (build from the repository root, with internet access):
#   docker build --target api        -t tunehouse-api .
#   docker build --target worker-gpu -t tunehouse-worker-gpu .   # CUDA 11.2 + cuDNN 8, tfjs-node-gpu
#   docker build --target worker-cpu -t tunehouse-worker-cpu .   # tfjs-node (CPU) + OpenBLAS matmul addon
# Runtime configuration is the environment of src/config.ts (DATABASE_URL, API_KEYS, MODELS_DIR, ...).
#
# Install scripts: every `npm ci` here runs with --ignore-scripts, then the one or two scripts an
# image needs are run by name: `npm rebuild <pkg>` (only that package's scripts) and
# `npm run build:native`. npm 11 gates dependency scripts with package.json `allowScripts` and
# refuses `--allow-scripts` (flag or npm_config_ env) in a project with EALLOWSCRIPTS, so the
# rebuild names the package and passes --dangerously-allow-all-scripts, which is safe because
# rebuild is scoped to it; npm 10 (bundled with Node 20) runs scripts anyway and ignores the flag.
# Workers run TypeScript through tsx (a runtime dependency), as `npm run worker` does; the api runs
# the esbuild bundle of `npm run start:compiled`. Either way node itself is PID 1, so it receives
# SIGTERM directly.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

FROM ${NODE_IMAGE} AS node-base

# ---------- api: Node 20 slim, production dependencies only ----------
FROM node-base AS api-deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the api needs no native code (tfjs-node stays unbuilt and unused here).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node-base AS api
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8000 DATA_DIR=/data MODELS_DIR=/models
WORKDIR /app
COPY --from=api-deps /app/node_modules ./node_modules
COPY . .
# The api runs a bundle of src/ (npm run start:compiled): no tsx loader in memory, ~60 MiB less RSS.
# DATA_DIR is only used in embedded mode (no DATABASE_URL); MODELS_DIR is mounted read-only.
RUN npm run build:server && mkdir -p /data /models && chown node:node /data
USER node
EXPOSE 8000
CMD ["node", "--max-semi-space-size=4", "dist/server/server.mjs"]

# ---------- worker-cpu: tfjs-node (CPU libtensorflow) + the OpenBLAS matmul addon ----------
FROM node-base AS worker-cpu-build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential python3 libopenblas-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node --dangerously-allow-all-scripts \
 && node -e "require('@tensorflow/tfjs-node')"
COPY . .
# --strict: fail the image build if the addon did not build (the install hook never fails).
RUN npm run build:native -- --strict

FROM node-base AS worker-cpu
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas0 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production TFJS_BACKEND=tensorflow MODELS_DIR=/models
WORKDIR /app
COPY --from=worker-cpu-build /app /app
USER node
CMD ["node", "--import", "tsx", "worker/main.ts"]

# ---------- worker-gpu: CUDA 11.2 + cuDNN 8 (what libtensorflow 2.9 in tfjs-node-gpu 4.22 wants) ----------
FROM ${CUDA_IMAGE} AS gpu-base
# Node 20 from the official image: its release binaries need glibc >= 2.28 (Ubuntu 20.04 has 2.31).
COPY --from=node-base /usr/local/bin/node /usr/local/bin/node
COPY --from=node-base /usr/local/include/node /usr/local/include/node
COPY --from=node-base /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
# Everything we apt-get comes from Ubuntu; dropping NVIDIA's apt sources avoids the signing-key
# failures ("NO_PUBKEY A4B469963BF863CC") that older CUDA images hit on apt-get update.
RUN rm -f /etc/apt/sources.list.d/cuda*.list /etc/apt/sources.list.d/nvidia-ml*.list \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home node

FROM gpu-base AS worker-gpu-build
# Built on the same Ubuntu as the runtime so native addons link against the same glibc.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential python3 libopenblas-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# tfjs-node-gpu's install script downloads libtensorflow 2.9 (GPU) and its prebuilt N-API binding
# (or compiles it: hence build-essential and python3). The ls fails the build if either is missing.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild @tensorflow/tfjs-node-gpu --dangerously-allow-all-scripts \
 && ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so* \
      node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node
COPY . .
# The OpenBLAS addon is optional on GPU (matmuls run on the GPU); built when the toolchain allows.
RUN npm run build:native

FROM gpu-base AS worker-gpu
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas0 && rm -rf /var/lib/apt/lists/*
# One worker per GPU (docker run --gpus device=N). Allow-growth makes TensorFlow take GPU memory
# as needed instead of all of it at start, so the process's footprint shows what the job uses.
ENV NODE_ENV=production TFJS_BACKEND=tensorflow MODELS_DIR=/models TF_FORCE_GPU_ALLOW_GROWTH=true
WORKDIR /app
COPY --from=worker-gpu-build /app /app
USER node
CMD ["node", "--import", "tsx", "worker/main.ts"]
