import { type BlobClient, BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { type Logger, silentLogger } from "../logger.js";
import { type BlobStore, type CopyPageBlobOptions, MAX_PAGE_WRITE, type ObjectInfo, type PageRange } from "./blob-store.js";
import { mapAzureError } from "./azure-errors.js";
import { StorageError, StorageNotFoundError } from "./errors.js";
import { assertValidName, compareNames } from "./names.js";
import { assertInside, assertPageAligned, chunkRanges, mergeRanges } from "./page-ranges.js";
import { runLimited } from "../async/index.js";

export interface AzureBlobStoreOptions {
  connectionString: string;
  container: string;
  logger?: Logger;
  /**
   * Tries per request including the first. Kept low on purpose: srlab's own ASR backoff
   * (1, 2, 4, 8, 10 min, then 30) sits above the store and should see outages quickly.
   */
  maxTries?: number;
  /** Per-try timeout. */
  tryTimeoutMs?: number;
  /** Parallel ≤4 MiB requests within one read/write/copy call. */
  concurrency?: number;
}

/** Azure Blob backend (real storage account or Azurite). */
export class AzureBlobStore implements BlobStore {
  readonly kind = "azure" as const;
  private readonly container: ContainerClient;
  private readonly logger: Logger;
  private readonly concurrency: number;

  constructor(options: AzureBlobStoreOptions) {
    this.logger = options.logger ?? silentLogger();
    this.concurrency = options.concurrency ?? 4;
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(options.connectionString, {
        retryOptions: {
          maxTries: options.maxTries ?? 3,
          tryTimeoutInMs: options.tryTimeoutMs ?? 60_000,
          retryDelayInMs: 250,
          maxRetryDelayInMs: 2_000,
        },
      });
    } catch (err) {
      throw new StorageError(`invalid Azure storage connection string: ${err instanceof Error ? err.message : String(err)}`, {
        code: "InvalidConnectionString",
      });
    }
    this.container = service.getContainerClient(options.container);
  }

  /** Runs one SDK call and translates its failure. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapAzureError(err, what);
    }
  }

  private blob(name: string, snapshot?: string): BlobClient {
    assertValidName(name);
    const client = this.container.getBlobClient(name);
    return snapshot ? client.withSnapshot(snapshot) : client;
  }

  async init(): Promise<void> {
    await this.call(`create container ${this.container.containerName}`, () => this.container.createIfNotExists());
  }

  // ---- objects ----

  async putObject(name: string, data: Buffer): Promise<void> {
    const client = this.blob(name).getBlockBlobClient();
    await this.call(`put ${name}`, () => client.uploadData(data));
  }

  async getObject(name: string): Promise<Buffer> {
    const client = this.blob(name);
    return this.call(`get ${name}`, async () => {
      // One ranged-free download: a single round trip, unlike downloadToBuffer's probe + ranges.
      const response = await client.download(0);
      return readBody(response.readableStreamBody, response.contentLength);
    });
  }

  async objectExists(name: string): Promise<boolean> {
    const client = this.blob(name);
    return this.call(`exists ${name}`, () => client.exists());
  }

  async listObjects(prefix: string): Promise<ObjectInfo[]> {
    return this.call(`list ${prefix}*`, async () => {
      const out: ObjectInfo[] = [];
      for await (const item of this.container.listBlobsFlat({ prefix })) {
        // Page blobs (replica disks) live in the same container but are not objects.
        if (item.properties.blobType !== "BlockBlob") continue;
        out.push({ name: item.name, size: item.properties.contentLength ?? 0, lastModified: item.properties.lastModified });
      }
      return out.sort((a, b) => compareNames(a.name, b.name));
    });
  }

  async deleteObject(name: string): Promise<void> {
    const client = this.blob(name);
    await this.call(`delete ${name}`, () => client.deleteIfExists({ deleteSnapshots: "include" }));
  }

  // ---- page blobs ----

  async createPageBlob(name: string, sizeBytes: number): Promise<void> {
    assertPageAligned(`create page blob ${name}`, 0, sizeBytes);
    const client = this.blob(name).getPageBlobClient();
    await this.call(`create page blob ${name}`, async () => {
      const created = await client.createIfNotExists(sizeBytes);
      if (created.succeeded) {
        this.logger.debug("page blob created", { name, sizeBytes });
        return;
      }
      const props = await client.getProperties();
      if (props.blobType !== "PageBlob" || props.contentLength !== sizeBytes) {
        throw new StorageError(
          `create page blob ${name}: already exists as ${props.blobType} of ${props.contentLength} bytes, wanted a ${sizeBytes}-byte page blob`,
          { code: "BlobAlreadyExists", statusCode: 409 },
        );
      }
    });
  }

  async resizePageBlob(name: string, sizeBytes: number): Promise<void> {
    assertPageAligned(`resize page blob ${name}`, 0, sizeBytes);
    const client = this.blob(name).getPageBlobClient();
    await this.call(`resize page blob ${name}`, () => client.resize(sizeBytes));
  }

  async pageBlobSize(name: string): Promise<number | undefined> {
    const client = this.blob(name);
    try {
      const props = await client.getProperties();
      return props.contentLength;
    } catch (err) {
      const mapped = mapAzureError(err, `size of ${name}`);
      if (mapped instanceof StorageNotFoundError) return undefined;
      throw mapped;
    }
  }

  async writePages(name: string, offset: number, data: Buffer): Promise<void> {
    assertPageAligned(`write pages ${name}`, offset, data.length);
    const client = this.blob(name).getPageBlobClient();
    const chunks = chunkRanges([{ offset: 0, length: data.length }], MAX_PAGE_WRITE);
    await this.call(`write pages ${name}@${offset}+${data.length}`, () =>
      // Chunks never overlap, so parallel Put Page calls can't fragment Azurite's range list.
      runLimited(chunks, this.concurrency, async (c) => {
        await client.uploadPages(data.subarray(c.offset, c.offset + c.length), offset + c.offset, c.length);
      }),
    );
  }

  async clearPages(name: string, offset: number, length: number): Promise<void> {
    assertPageAligned(`clear pages ${name}`, offset, length);
    if (length === 0) return;
    const client = this.blob(name).getPageBlobClient();
    await this.call(`clear pages ${name}@${offset}+${length}`, () => client.clearPages(offset, length));
  }

  async readPages(name: string, offset: number, length: number, snapshot?: string): Promise<Buffer> {
    assertInside(`read pages ${name}`, offset, length, Number.MAX_SAFE_INTEGER);
    const out = Buffer.alloc(length);
    await this.readPagesInto(name, offset, out, snapshot);
    return out;
  }

  async readPagesInto(name: string, offset: number, into: Buffer, snapshot?: string): Promise<void> {
    const length = into.length;
    assertInside(`read pages ${name}`, offset, length, Number.MAX_SAFE_INTEGER);
    const client = this.blob(name, snapshot);
    if (length === 0) {
      // Still report a missing blob, like any other read.
      await this.call(`read pages ${name}`, () => client.getProperties());
      return;
    }
    const chunks = chunkRanges([{ offset: 0, length }], MAX_PAGE_WRITE);
    await this.call(`read pages ${name}@${offset}+${length}`, () =>
      runLimited(chunks, this.concurrency, async (c) => {
        const response = await client.download(offset + c.offset, c.length);
        const got = await readBody(response.readableStreamBody, response.contentLength, into.subarray(0, c.offset + c.length), c.offset);
        if (got.length !== c.length) {
          throw new StorageError(`read pages ${name}: range ${offset}+${length} runs past the end of the blob`, { code: "InvalidRange" });
        }
      }),
    );
  }

  async getPageRanges(name: string, snapshot?: string): Promise<PageRange[]> {
    const client = this.blob(name, snapshot).getPageBlobClient();
    return this.call(`page ranges of ${name}`, async () => {
      const ranges: PageRange[] = [];
      // listPageRanges follows continuation markers, which real Azure uses on fragmented blobs.
      for await (const r of client.listPageRanges()) {
        if (!r.isClear) ranges.push({ offset: r.start, length: r.end - r.start + 1 });
      }
      return mergeRanges(ranges);
    });
  }

  async snapshotPageBlob(name: string): Promise<string> {
    const client = this.blob(name);
    return this.call(`snapshot ${name}`, async () => {
      const response = await client.createSnapshot();
      if (!response.snapshot) throw new StorageError(`snapshot ${name}: service returned no snapshot id`);
      this.logger.debug("snapshot created", { name, snapshot: response.snapshot });
      return response.snapshot;
    });
  }

  async deleteSnapshot(name: string, snapshot: string): Promise<void> {
    const client = this.blob(name, snapshot);
    await this.call(`delete snapshot ${name}@${snapshot}`, () => client.deleteIfExists());
  }

  async listSnapshots(name: string): Promise<string[]> {
    assertValidName(name);
    return this.call(`list snapshots of ${name}`, async () => {
      const out: string[] = [];
      for await (const item of this.container.listBlobsFlat({ prefix: name, includeSnapshots: true })) {
        if (item.name === name && item.snapshot) out.push(item.snapshot);
      }
      // Snapshot ids are fixed-width ISO timestamps, so string order is time order.
      return out.sort();
    });
  }

  async copyPageBlob(source: string, target: string, options: CopyPageBlobOptions = {}): Promise<void> {
    const { snapshot, onProgress } = options;
    if (source === target && !snapshot) return;
    const src = this.blob(source, snapshot).getPageBlobClient();
    const dst = this.blob(target).getPageBlobClient();
    const what = `copy ${source}${snapshot ? `@${snapshot}` : ""} to ${target}`;
    // Read-ranges-and-upload rather than server-side copy: identical on every backend, and
    // Azurite's incremental/server copy of page blobs is not a faithful model of Azure's.
    const size = (await this.call(what, () => src.getProperties())).contentLength ?? 0;
    const ranges = await this.getPageRanges(source, snapshot);
    await this.prepareCopyTarget(target, size, what);
    const total = ranges.reduce((sum, r) => sum + r.length, 0);
    let done = 0;
    onProgress?.(0, total);
    await this.call(what, () =>
      runLimited(chunkRanges(ranges, MAX_PAGE_WRITE), this.concurrency, async (c) => {
        const response = await src.download(c.offset, c.length);
        const body = await readBody(response.readableStreamBody, c.length);
        if (body.length !== c.length) throw new StorageError(`${what}: short read at ${c.offset}`, { code: "InvalidRange" });
        await dst.uploadPages(body, c.offset, c.length);
        done += c.length;
        onProgress?.(done, total);
      }),
    );
    this.logger.debug("page blob copied", { source, snapshot, target, size, bytes: total });
  }

  /** Makes target an all-unwritten page blob of `size`, keeping its snapshots if it already exists. */
  private async prepareCopyTarget(target: string, size: number, what: string): Promise<void> {
    const dst = this.blob(target).getPageBlobClient();
    const existing = await this.pageBlobSize(target);
    if (existing === undefined) {
      await this.call(what, () => dst.create(size));
      return;
    }
    if (existing !== size) await this.call(what, () => dst.resize(size));
    for (const r of await this.getPageRanges(target)) {
      await this.call(what, () => dst.clearPages(r.offset, r.length));
    }
  }

  async deletePageBlob(name: string): Promise<void> {
    const client = this.blob(name);
    await this.call(`delete page blob ${name}`, () => client.deleteIfExists({ deleteSnapshots: "include" }));
  }

  async close(): Promise<void> {
    // The SDK holds no resources that need releasing beyond pooled sockets, which are unref'd.
  }
}

/** Collects a response body; writes straight into `into` at `at` when given, returning that slice. */
async function readBody(
  stream: NodeJS.ReadableStream | undefined,
  expected: number | undefined,
  into?: Buffer,
  at = 0,
): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  if (into) {
    let pos = at;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const room = into.length - pos;
      if (chunk.length > room) throw new StorageError("response body longer than requested range");
      chunk.copy(into, pos);
      pos += chunk.length;
    }
    return into.subarray(at, pos);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    parts.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(parts, expected !== undefined && expected === total ? expected : total);
}
