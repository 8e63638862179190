import { realpathSync } from "node:fs";
import type { Command } from "commander";
import { installService, planUnit, renderUnit, SERVICE_ROLES, SYSTEM_UNIT_DIR, uninstallService } from "../service/index.js";

/** The script running this CLI (dist/cli/main.js, through the bin link or ./srlab). */
function srlabEntry(): string {
  const script = process.argv[1];
  if (!script) throw new Error("cannot tell where srlab is installed (no script path in argv)");
  return realpathSync(script);
}

/** `srlab service install|uninstall`: systemd units for the daemons of one host. */
export function registerServiceCommands(program: Command, run: (fn: () => Promise<unknown>) => Promise<void>): void {
  const service = program.command("service").description("run daemons as systemd services on this host");
  const say = (line: string) => process.stderr.write(`${line}\n`);
  service
    .command("install <role>")
    .description(`write a systemd unit for one daemon (${SERVICE_ROLES.join(", ")}) that runs it from its config file`)
    .requiredOption("--config <file>", "the daemon's YAML configuration file")
    .option("--user <user>", "account the daemon runs as (default: root without capabilities)")
    .option("--read-write <dir>", "another directory the daemon may write to (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--print", "print the unit instead of installing it")
    .option("--start", "enable and start the unit once written")
    .option("--unit-dir <dir>", "where the unit goes", SYSTEM_UNIT_DIR)
    .action((role: string, o) =>
      run(async () => {
        const spec = await planUnit({
          role,
          configFile: o.config,
          user: o.user,
          nodePath: process.execPath,
          entry: srlabEntry(),
          extraReadWritePaths: o.readWrite,
        });
        if (o.print) {
          process.stdout.write(renderUnit(spec));
          return;
        }
        await installService(spec, { unitDir: o.unitDir, start: Boolean(o.start), say });
      }),
    );
  service
    .command("uninstall <role>")
    .description("stop and disable a daemon's unit and remove it (its state directory stays)")
    .option("--unit-dir <dir>", "where the unit is", SYSTEM_UNIT_DIR)
    .action((role: string, o) => run(async () => uninstallService(role, { unitDir: o.unitDir, say })));
}
