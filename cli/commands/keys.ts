import { type Command, Option } from "commander";
import type { SegmentKeyInfo } from "../../proto/index.js";
import { AdminClient } from "../admin-client.js";
import { labDir } from "../lab/index.js";
import { printJson, printTable } from "../output.js";

const keyDocument = (k: SegmentKeyInfo) => ({
  keyId: k.keyId,
  createdAt: k.createdAt?.toISOString() ?? null,
  current: k.current,
  usedBy: k.usedBy,
});

/** `srlab keys rotate|list`: the segment encryption keys, by id (the keys never leave the servers). */
export function registerKeysCommands(program: Command, run: (fn: () => Promise<unknown>) => Promise<void>): void {
  const dir = () => new Option("--dir <dir>", "lab directory (default: $SRLAB_DIR or ./.srlab)");
  const identity = <T>(d: string | undefined, fn: (id: ReturnType<AdminClient["identity"]>) => Promise<T>) =>
    AdminClient.using(labDir(d), async (admin) => {
      const id = admin.identity();
      try {
        return await fn(id);
      } finally {
        id.client.close();
      }
    });
  const keys = program.command("keys").description("segment encryption keys (docs/storage-format.md)");
  keys
    .command("rotate")
    .description("make a new segment key id current: new segments use it; older segments stay readable")
    .addOption(dir())
    .option("--json", "print the new key as JSON")
    .action((o) =>
      run(() =>
        identity(o.dir, async (id) => {
          const r = await id.call(id.client.rotateSegmentKey, {});
          if (o.json) return printJson({ ...keyDocument(r.key!), previousKeyId: r.previousKeyId });
          console.log(`segment key ${r.key!.keyId} is current (was ${r.previousKeyId}); process servers use it from their next heartbeat`);
          console.log(`segments written with ${r.previousKeyId} and earlier keys stay readable until retention removes them`);
        }),
      ),
    );
  keys
    .command("list")
    .description("segment key ids, which is current, and which process servers write with each")
    .addOption(dir())
    .option("--json", "machine-readable output")
    .action((o) =>
      run(() =>
        identity(o.dir, async (id) => {
          const { keys: all } = await id.call(id.client.listSegmentKeys, {});
          if (o.json) return printJson(all.map(keyDocument));
          printTable(
            ["KEY ID", "CREATED", "CURRENT", "WRITTEN WITH BY"],
            all.map((k) => [k.keyId, k.createdAt?.toISOString() ?? "", k.current ? "yes" : "", k.usedBy.join(", ")]),
          );
        }),
      ),
    );
}
