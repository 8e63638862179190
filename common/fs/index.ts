// Durable file operations: a crash leaves the old or the new content, never a torn file.
export {
  type AtomicWriteOptions,
  fsyncDir,
  fsyncDirSync,
  removeFileDurablySync,
  writeFileAtomic,
  writeFileAtomicSync,
} from "./atomic-write.js";
export { readFully, readFullySync, readIntoSync, writeFully } from "./file-io.js";
export { readJson, writeJsonAtomic } from "./json-file.js";
