import { workloadProfiles } from "../../common/enum-names/index.js";
import { type Command, Option } from "commander";
import { wholeNumber } from "../arguments.js";
import { diskAdd, diskRemove } from "../commands/disks.js";
import { exportDisk } from "../commands/export-disk.js";
import { jobs, points, policies, policyCreate, protect, resync, tag, workload } from "../commands/replication.js";
import { labDir } from "../lab/index.js";
import { printJson } from "../output.js";
import { dirOption, run } from "./options.js";
import { addPushInstallOptions, pushInstallWith } from "./push-install.js";

/** Replication verbs: protect, resync, tag, workload, disks, points, jobs, policies and export. */
export function registerReplicationCommands(program: Command): void {
  addPushInstallOptions(
    program.command("protect <machine>").description("enable protection: initial replication, then continuous delta replication"),
    true,
  )
    .addOption(dirOption())
    .option("--policy <name>", "replication policy", "default")
    .option("--wait", "follow the job until the machine is protected")
    .option("--json", "print the job as JSON")
    .action((machine, o) =>
      run(async () => {
        // --push-install HOST: install and join the agent over SSH first (issue 12).
        if (o.pushInstall) await pushInstallWith(labDir(o.dir), o.pushInstall, o, "agent", machine);
        await protect(labDir(o.dir), machine, o);
      }),
    );

  program
    .command("resync <machine>")
    .description("compare block checksums with the replica and send only the differing blocks")
    .addOption(dirOption())
    .option("--wait", "follow the job")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => resync(labDir(o.dir), machine, o)));

  program
    .command("tag <machine>")
    .description("create an app-consistent recovery point (pre-freeze, tag, post-thaw)")
    .addOption(dirOption())
    .option("--name <name>", "tag name")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => tag(labDir(o.dir), machine, o)));

  program
    .command("workload <machine>")
    .description("drive writes into a machine's disk with the built-in workload generator")
    .addOption(dirOption())
    .addOption(new Option("--profile <profile>", "write pattern").choices(workloadProfiles.names).default("random"))
    .option("--rate <rate>", "bandwidth limit, e.g. 20MB/s")
    .option("--iops <n>", "operations per second limit")
    .option("--duration <duration>", "how long to write", "30s")
    .option("--block-size <size>", "fixed block size (default: the profile's mix)")
    .option("--seed <n>", "seed for a repeatable run", "1")
    .option("--disk <index>", "disk to write to", "0")
    .option("--no-wait", "return once the workload has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => workload(labDir(o.dir), machine, o)));

  const disk = program.command("disk").description("disks added to or removed from a protected machine");
  disk
    .command("add <machine>")
    .description("create a disk on the machine (exported over NBD) and replicate it: its own initial replication, one sequence with the others")
    .addOption(dirOption())
    .requiredOption("--size <size>", "disk size, a whole number of MiB (e.g. 64MiB, 1GiB)")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => diskAdd(labDir(o.dir), machine, o)));
  disk
    .command("remove <machine>")
    .description("stop replicating a disk (recovery points that cover it keep it; the image file stays)")
    .addOption(dirOption())
    .requiredOption("--disk <index>", "disk index")
    .option("--no-wait", "return once the job has started")
    .option("--json", "print the job as JSON")
    .action((machine, o) => run(() => diskRemove(labDir(o.dir), machine, o)));

  program
    .command("points <machine>")
    .description("recovery points of a machine")
    .addOption(dirOption())
    .option("--json", "machine-readable output")
    .action((machine, o) => run(() => points(labDir(o.dir), machine, o)));

  program
    .command("jobs")
    .description("jobs with their steps and state")
    .addOption(dirOption())
    .option("--machine <machine>", "only this machine's jobs")
    .option("--job <id>", "one job")
    .option("--follow <id>", "redraw a job's steps as they change until it ends; exit status 1 if it did not succeed")
    .option("--cancel <id>", "stop a running workload job (its agent stops writing; the job ends Cancelled)")
    .option("--json", "machine-readable output")
    .action((o) => run(() => jobs(labDir(o.dir), o)));

  program
    .command("policies")
    .description("replication policies (default and the fixed failback policy)")
    .addOption(dirOption())
    .option("--json", "machine-readable output")
    .action((o) => run(() => policies(labDir(o.dir), o)));

  const policy = program.command("policy").description("replication policies");
  policy
    .command("create <name>")
    .description("a replication policy; unset values are the default policy's")
    .addOption(dirOption())
    .option("--resync-window <window>", 'when a required resync runs: "immediate", or a cron expression (default: outside office hours)')
    .option("--rpo-threshold <duration>", "RPO above which the machine's health is Warning")
    .option("--retention <duration>", "how long recovery points are kept")
    .option("--crash-consistent <duration>", "crash-consistent point frequency")
    .option("--app-consistent <duration>", "app-consistent point frequency (0 = off)")
    .option("--json", "print the policy as JSON")
    .action((name, o) => run(() => policyCreate(labDir(o.dir), name, o)));

  program
    .command("export <machine>")
    .description("write a replica disk to an image file (raw, VHD or qcow2): everything received (waits for it to be processed), a recovery point or a failed-over disk")
    .addOption(dirOption())
    .requiredOption("--to <file>", "image file to write")
    .option("--disk <index>", "disk index", "0")
    .option("--failed-over", "the failed-over (Azure) disk instead of the replica")
    .option("--test", "the test failover's disk")
    .option("--point <id>", "a recovery point (id, latest-processed or latest-app-consistent)")
    .option("--format <format>", "raw | vhd (fixed, as Azure imports it) | qcow2 (through qemu-img)", "raw")
    .option("--json", "print path, format, size and SHA-256 as JSON")
    .action((machine, o) =>
      run(async () => {
        const result = await exportDisk(
          labDir(o.dir),
          machine,
          wholeNumber("--disk", o.disk, 0),
          o.to,
          !o.json,
          { failedOver: o.failedOver, test: o.test, point: o.point },
          o.format,
        );
        if (o.json) printJson(result);
        else console.log(`${result.path}: ${result.format}, ${result.sizeBytes} bytes, sha256 ${result.sha256}${result.sequence !== undefined ? `, sequence ${result.sequence}` : ""}`);
      }),
    );

}
