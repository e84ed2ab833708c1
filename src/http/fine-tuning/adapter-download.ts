// An adapter (or a full fine-tune's weights) as a tar download, streamed from the blob store.
import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";
import { readBlob } from "../../store/blobs/blob-store.js";
import type { AppContext } from "../app-context.js";
import { attachmentDisposition } from "../content-disposition.js";

/** `name`: the model id the archive holds, made a safe file name. */
export function sendAdapter(
  ctx: AppContext,
  reply: FastifyReply,
  blobId: string,
  bytes: number,
  name: string,
) {
  reply
    .header("content-type", "application/x-tar")
    .header("content-length", String(bytes))
    .header("content-disposition", attachmentDisposition(`${name.replace(/[^A-Za-z0-9._-]/g, "_")}.tar`));
  return reply.send(Readable.from(readBlob(ctx.database, blobId)));
}
