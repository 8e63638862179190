import type { Command } from "commander";
import { announceReady } from "../service/index.js";
import { run } from "./options.js";

/** Daemon verbs, for lab machines: each runs in the foreground until SIGTERM/SIGINT. */
export function registerDaemonCommands(program: Command): void {
  const daemon = (name: string, description: string, load: () => Promise<(file: string | undefined, flags: Record<string, unknown>) => Promise<void>>) =>
    program
      .command(name)
      .description(description)
      .option("--config <file>", "YAML configuration file")
      .option("--insecure", "plaintext gRPC (debugging only)")
      .option("--name <name>", "component name")
      .action((o) =>
        run(async () => {
          await (await load())(o.config, { insecure: o.insecure, name: o.name });
          // Under systemd (Type=notify) the unit becomes active only now, once the daemon serves.
          await announceReady(name);
        }),
      );

  daemon("config-server", "run a configuration server", async () => (await import("../../config-server/index.js")).runConfigServer);
  daemon("process-server", "run a process server", async () => (await import("../../process-server/index.js")).runProcessServer);
  daemon("agent", "run a mobility agent", async () => (await import("../../mobility-agent/index.js")).runMobilityAgent);
  daemon("master-target", "run a master target", async () => (await import("../../master-target/index.js")).runMasterTarget);
}
