import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { parseDocument } from "yaml";
import { joinTokenRoles } from "../../common/enum-names/index.js";
import { channelCredentials, channelOptions, unaryCall } from "../../common/grpc/index.js";
import { IdentityServiceClient } from "../../proto/index.js";
import type { LabComponent, LabLayout, LabManifest } from "./lab-layout.js";

/** A lab's join tokens live only minutes: long enough for the daemon that was just given one to start. */
const LAB_TOKEN_TTL_SECONDS = 600;

/**
 * Before `srlab up` starts a process server, master target or agent that has no credential yet
 * (first start, or a lab made by an older srlab whose configs held the passphrase), it asks the
 * running configuration server for a single-use join token of the component's role and writes it
 * into the component's config. The daemon registers with it and replaces it with its own
 * credential, so no component config ever holds the deployment passphrase.
 */
export async function ensureJoinToken(layout: LabLayout, manifest: LabManifest, c: LabComponent): Promise<void> {
  if (!c.configFile || (c.role !== "process-server" && c.role !== "master-target" && c.role !== "agent")) return;
  const doc = parseDocument(readFileSync(c.configFile, "utf8"));
  if (doc.getIn(["configServer", "credential"])) return;
  const client = new IdentityServiceClient(
    manifest.configServerAddress,
    channelCredentials({ caFile: manifest.caFile }),
    channelOptions(manifest.configServerAddress),
  );
  try {
    const { token } = await unaryCall(
      client,
      client.createJoinToken,
      { role: joinTokenRoles.parse(c.role), ttlSeconds: LAB_TOKEN_TTL_SECONDS, reusable: false, description: `srlab up: ${c.name}` },
      layout.adminCredential(),
    );
    doc.setIn(["configServer", "joinToken"], token);
    doc.deleteIn(["configServer", "passphrase"]);
    writePrivate(c.configFile, doc.toString());
  } finally {
    client.close();
  }
}

/** Atomic replace, owner-only: the file now holds a secret. */
function writePrivate(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
