import { join } from "node:path";
import { type ConfigServerOptions, configServerOptions } from "../../config-server/index.js";

/** The registration passphrase of the configuration servers tests start. */
export const TEST_PASSPHRASE = "correct horse battery";

/**
 * Options of an in-process configuration server for a test: plain gRPC, state in `DIR/cs`,
 * directory storage in `DIR/storage`, and seconds for ASR's minutes; `extra` adds or overrides.
 */
export function testConfigServerOptions(dir: string, extra: Record<string, unknown> = {}): ConfigServerOptions {
  return configServerOptions.parse({
    name: "config-server",
    dataDir: join(dir, "cs"),
    insecure: true,
    passphrase: TEST_PASSPHRASE,
    storage: { kind: "directory", directory: join(dir, "storage") },
    timeUnitSeconds: 1,
    ...extra,
  });
}
