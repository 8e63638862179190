import type { Command } from "commander";
import { AdminClient } from "../admin-client.js";
import { report } from "../commands/replication.js";
import { labDir } from "../lab/index.js";
import { dirOption, run } from "./options.js";

/** `srlab disable-protection` and `srlab switch-process-server`: operating protected machines. */
export function registerOperationsCommands(program: Command): void {
  program
    .command("disable-protection <machine>")
    .description("stop replicating a machine: its agent keeps running unprotected; its replica, points and segments are deleted unless kept")
    .addOption(dirOption())
    .option("--keep-replica", "keep the replica disks, recovery points and log segments in storage")
    .option("--no-wait", "return once the job started")
    .option("--json", "print the job as JSON")
    .action((machine: string, o: { dir?: string; keepReplica?: boolean; wait: boolean; json?: boolean }) =>
      run(() =>
        AdminClient.using(labDir(o.dir), async (c) => {
          const { job } = await c.call(c.client.disableProtection, { machine, keepReplica: Boolean(o.keepReplica) });
          await report(c, job!.jobId, o.wait, Boolean(o.json), `disable protection of ${machine}`);
        }),
      ),
    );
  program
    .command("switch-process-server <machine>")
    .description("move a protected machine to another process server without a resync (the old one drains and hands over)")
    .addOption(dirOption())
    .requiredOption("--to <process-server>", "name of the on-premises process server that takes the machine")
    .option("--no-wait", "return once the job started")
    .option("--json", "print the job as JSON")
    .action((machine: string, o: { dir?: string; to: string; wait: boolean; json?: boolean }) =>
      run(() =>
        AdminClient.using(labDir(o.dir), async (c) => {
          const { job } = await c.call(c.client.switchProcessServer, { machine, processServer: o.to });
          await report(c, job!.jobId, o.wait, Boolean(o.json), `move ${machine} to ${o.to}`);
        }),
      ),
    );
}
