// Durable file operations: a crash leaves the old or the new content, never a torn file.
export { fsyncDir, writeFileAtomic } from "./atomic-write.js";
export { readJson, writeJsonAtomic } from "./json-file.js";
