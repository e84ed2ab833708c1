// Bytes in and out of the blob store for the worker: a training file as text lines, a blob
// as one buffer (resume states, adapters: tens of MiB at most), and new blobs from buffers
// (left `writing` until the transaction that publishes them marks them ready).
import { type BlobDatabase, type BlobWriter, readBlob, startBlob } from "../src/store/blobs/blob-store.js";

export async function readBlobBytes(handle: BlobDatabase, blobId: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of readBlob(handle, blobId)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** JSONL text lines as buildDataset wants them (blank lines kept so line numbers stay right). */
export { readBlobLines as readFileLines } from "../src/store/blobs/blob-lines.js";

export async function writeBlobBytes(
  handle: BlobDatabase,
  projectId: string,
  bytes: Uint8Array,
): Promise<BlobWriter> {
  const writer = await startBlob(handle, projectId);
  try {
    await writer.write(bytes);
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer;
}
