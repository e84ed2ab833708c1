#!/usr/bin/env python3
"""The PyTorch peer of bench/real-size-generate-step.ts: transformers' generate(), greedy, KV cache,
float32, sdpa, 2 threads, on the base model; one warm-up then RUNS runs. Prefill = until the first
token is chosen; decoding = per token afterwards (timed in a logits processor, called once per
token). Prints one JSON line.

  python peer-generate.py MODEL_DIR [--prompt 128] [--new 32] [--runs 3] [--threads 2]
"""
import argparse, json, resource, statistics, time

ap = argparse.ArgumentParser()
ap.add_argument("dir"); ap.add_argument("--prompt", type=int, default=128); ap.add_argument("--new", type=int, default=32)
ap.add_argument("--runs", type=int, default=3); ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()

import torch
from transformers import AutoModelForCausalLM, LogitsProcessor, LogitsProcessorList

torch.set_num_threads(a.threads)
model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=torch.float32, attn_implementation="sdpa").eval()
g = torch.Generator().manual_seed(5)
ids = torch.randint(3, 450, (1, a.prompt), generator=g)


class Stamp(LogitsProcessor):
    def __init__(self):
        self.t = []

    def __call__(self, input_ids, scores):
        self.t.append(time.perf_counter())
        return scores


def once():
    s = Stamp()
    t0 = time.perf_counter()
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.new, min_new_tokens=a.new,
                       do_sample=False, use_cache=True, logits_processor=LogitsProcessorList([s]),
                       pad_token_id=model.config.pad_token_id or 0)
    return s.t[0] - t0, (s.t[-1] - s.t[0]) / (len(s.t) - 1)


once()
runs = [once() for _ in range(a.runs)]
prefill = statistics.median(r[0] for r in runs); decode = statistics.median(r[1] for r in runs)
print(json.dumps(dict(peer="transformers generate()", torch=torch.__version__, prefillMs=round(prefill * 1000, 1),
                      prefillTokensPerSec=round(a.prompt / prefill, 1), decodeMsPerToken=round(decode * 1000, 2),
                      decodeTokensPerSec=round(1 / decode, 1),
                      peakRssMiB=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))))
