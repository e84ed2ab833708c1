// Lineage from model ids: a tuned model is `ft:{base}:{project}:{suffix}:{job}` and its
// checkpoints add `:ckpt-step-{N}`, so the tree base → job → tuned → checkpoints needs only
// GET /v1/models. Pure.
export function parseModelId(id) {
  if (!id.startsWith("ft:")) return { id, kind: "base" };
  let parts = id.slice(3).split(":");
  let step = null;
  const ckpt = /^ckpt-step-(\d+)$/.exec(parts[parts.length - 1]);
  if (ckpt) {
    step = Number(ckpt[1]);
    parts = parts.slice(0, -1);
  }
  if (parts.length < 4) return { id, kind: "unknown" };
  const job = parts[parts.length - 1];
  const suffix = parts[parts.length - 2];
  const base = parts.slice(0, -3).join(":");
  return { id, kind: step === null ? "tuned" : "checkpoint", base, job, suffix, step };
}

/** [{base, tuned: [{model, job, suffix, checkpoints: [model…]}]}], bases in list order. */
export function lineage(models) {
  const bases = new Map();
  const node = (base) => {
    if (!bases.has(base)) bases.set(base, { base, known: false, jobs: new Map() });
    return bases.get(base);
  };
  for (const m of models) {
    const p = parseModelId(m.id);
    if (p.kind === "base") node(m.id).known = true;
    else if (p.kind === "tuned" || p.kind === "checkpoint") {
      const b = node(p.base);
      if (!b.jobs.has(p.job))
        b.jobs.set(p.job, { job: p.job, suffix: p.suffix, model: null, checkpoints: [] });
      const j = b.jobs.get(p.job);
      if (p.kind === "tuned") j.model = m;
      else j.checkpoints.push({ ...m, step: p.step });
    }
  }
  return [...bases.values()].map((b) => ({
    base: b.base,
    known: b.known,
    tuned: [...b.jobs.values()].map((j) => ({
      ...j,
      checkpoints: j.checkpoints.sort((x, y) => x.step - y.step),
    })),
  }));
}
