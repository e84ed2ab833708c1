// Small builders of training-file content for tests.

export function chatLine(i: number): string {
  return JSON.stringify({
    messages: [
      { role: "user", content: `question ${i}` },
      { role: "assistant", content: `answer ${i}` },
    ],
  });
}

/** `n` valid chat examples, one per line, newline-terminated. */
export function chatJsonl(n: number): string {
  let out = "";
  for (let i = 0; i < n; i++) out += `${chatLine(i)}\n`;
  return out;
}

/** Valid chat JSONL of at least `bytes` bytes (lines padded with varied text). */
export function chatJsonlOfSize(bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = JSON.stringify({
      messages: [
        { role: "user", content: `q${i} ${"lorem ipsum ".repeat(20 + (i % 13))}` },
        { role: "assistant", content: `a${i} ${"dolor sit amet ".repeat(10 + (i % 7))}` },
      ],
    });
    lines.push(line);
    size += Buffer.byteLength(line) + 1;
  }
  return Buffer.from(`${lines.join("\n")}\n`);
}
