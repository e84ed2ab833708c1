-- Chunks are already-compressed or incompressible bytes more often than not, and a 1 MiB
-- chunk is always stored out of line: EXTERNAL skips the compression attempt (faster
-- writes and reads) and lets uploads move chunks between blobs without copying the data.
ALTER TABLE "blob_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;
