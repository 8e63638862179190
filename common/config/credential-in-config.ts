import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { parseDocument } from "yaml";
import { fsyncDirSync } from "../fs/index.js";
import { dirname } from "node:path";

/**
 * Writes a component's credential into its YAML config file and removes what it registered
 * with (join token, passphrase): after registration a config holds only the component's own
 * credential. Comments and the rest of the file stay; the file is replaced atomically and
 * readable by its owner only, since it holds a secret.
 */
export function storeCredentialInConfig(file: string, credential: string): void {
  const doc = parseDocument(readFileSync(file, "utf8"));
  doc.setIn(["configServer", "credential"], credential);
  doc.deleteIn(["configServer", "joinToken"]);
  doc.deleteIn(["configServer", "passphrase"]);
  const tmp = `${file}.credential.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, doc.toString());
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
  fsyncDirSync(dirname(file));
}
