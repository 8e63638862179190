import { StorageError } from "./errors.js";

/** Names follow Azure blob naming, restricted so they also map safely onto a directory tree. */
export function assertValidName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || name.length > 1024) {
    throw new StorageError(`invalid blob name ${JSON.stringify(name)}: must be 1..1024 characters`, { code: "InvalidBlobName" });
  }
  for (const part of name.split("/")) {
    if (part === "" || part === "." || part === ".." || part.includes("\\") || part.includes("\0")) {
      throw new StorageError(`invalid blob name ${JSON.stringify(name)}: empty, "." or ".." segment, or backslash/NUL`, {
        code: "InvalidBlobName",
      });
    }
  }
}

/** Byte-order comparison, matching how Azure sorts blob names in listings. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
