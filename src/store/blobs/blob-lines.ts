// A stored JSONL file as text lines, as buildDataset wants them: blank lines kept so line
// numbers stay right. Used by the worker (to train) and by a job's preflight (to report).
import { type BlobDatabase, readBlob } from "./blob-store.js";

export async function readBlobLines(handle: BlobDatabase, blobId: string): Promise<string[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of readBlob(handle, blobId)) chunks.push(chunk);
  const lines = Buffer.concat(chunks).toString("utf8").split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}
