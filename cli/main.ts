#!/usr/bin/env node
import { Command, Option } from "commander";
import { diskSize, duration, wholeNumber } from "./arguments.js";
import { diskAdd, diskRemove } from "./commands/disks.js";
import { exportDisk } from "./commands/export-disk.js";
import {
  changePoint,
  commit,
  failback,
  failover,
  failoverCleanup,
  networkCreate,
  networkList,
  networkMap,
  reprotect,
} from "./commands/failover.js";
import { jobs, points, policies, policyCreate, protect, resync, tag, workload } from "./commands/replication.js";
import { credentialsList, credentialsRotate, removeComponent, tokenCreate, tokenList, tokenRevoke } from "./commands/identity.js";
import { logs } from "./commands/logs.js";
import { dashboardCommand, dashboardLines } from "./commands/dashboard.js";
import { registerServiceCommands } from "./commands/service.js";
import { registerJoinCommands } from "./commands/join.js";
import { statusCommand, watchStatus } from "./commands/status.js";
import { groupCreate, groupDelete, groupList, groupPoint, groupPoints } from "./commands/groups.js";
import { planApply, planDelete, planList, planResume, planRun, planRuns, planShow } from "./commands/plans.js";
import { planSchedule, planSchedules, rehearse } from "./commands/rehearse.js";
import { verify } from "./commands/verify.js";
import { AdminClient } from "./admin-client.js";
import { completionScript } from "./completion.js";
import { buildSpec, PROFILE_NAMES, runLoadtest } from "./loadtest/index.js";
import { labDir, labDown, labUp } from "./lab/index.js";
import { announceReady } from "./service/index.js";
import { fail, printJson } from "./output.js";

const program = new Command("srlab")
  .description("A lab-scale re-creation of the on-premises half of Azure Site Recovery")
  .showHelpAfterError("(run srlab --help for usage)")
  .configureOutput({ outputError: (str, write) => write(str) });

const dirOption = () => new Option("--dir <dir>", "lab directory (default: $SRLAB_DIR or ./.srlab)");
const run = async (fn: () => Promise<unknown>): Promise<void> => {
  await fn().catch(fail);
};

program
  .command("up")
  .description("start (or resume) a lab: Azurite, configuration server, process servers, master target, agents")
  .addOption(dirOption())
  .option("--machines <n>", "protected machines (agents) to create; on an existing lab, adds the machines it lacks", "1")
  .option("--disks <n>", "disks per machine", "1")
  .option("--disk-size <size>", "size of each disk image", "1GiB")
  .option("--process-servers <n>", "on-premises process servers", "1")
  .option("--time-unit <duration>", "length of one ASR minute (policies, backoff): 60s in production, 1s to rehearse", "60s")
  .addOption(new Option("--storage <kind>", "where replicas live").choices(["azurite", "directory", "azure"]).default("azurite"))
  .option("--connection-string <cs>", "Azure storage connection string for --storage azure")
  .option("--detach", "start in the background and return; stop with srlab down")
  .option("--json", "print the lab's summary as JSON")
  .action((o, cmd: Command) =>
    run(async () => {
      const dir = labDir(o.dir);
      const say = (line: string) => process.stderr.write(`${line}\n`);
      // Every value is checked before the first daemon starts.
      const manifest = await labUp({
        explicitDiskSize: cmd.getOptionValueSource("diskSize") === "cli",
        explicitDisks: cmd.getOptionValueSource("disks") === "cli",
        dir,
        machines: wholeNumber("--machines", o.machines, 1, 1000),
        disksPerMachine: wholeNumber("--disks", o.disks, 1, 64),
        diskSizeBytes: diskSize("--disk-size", o.diskSize),
        processServers: wholeNumber("--process-servers", o.processServers, 1, 64),
        timeUnitSeconds: duration("--time-unit", o.timeUnit, true) / 1000,
        storage: o.storage,
        connectionString: o.connectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING,
        onProgress: say,
      });
      if (o.json) printJson({ dir, configServer: manifest.configServerAddress, caFile: manifest.caFile, components: manifest.components });
      else {
        say(`lab is up in ${dir}: try srlab status --dir ${dir}`);
        for (const line of await dashboardLines(dir)) say(line);
      }
      if (o.detach) return;
      say("press Ctrl-C to stop the lab");
      // Signal handlers alone do not keep Node running: hold the event loop open until Ctrl-C.
      const keepAlive = setInterval(() => {}, 60_000);
      // On a terminal the live status table runs under the start-up lines until Ctrl-C.
      const live = new AbortController();
      const table = process.stdout.isTTY && !o.json ? AdminClient.forDir(dir) : undefined;
      const drawing = table ? watchStatus(table, 1000, live.signal).finally(() => table.close()) : Promise.resolve();
      await new Promise<void>((resolve) => {
        const stop = () => {
          clearInterval(keepAlive);
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          live.abort();
          drawing
            .then(() => say("stopping the lab"))
            .then(() => labDown(dir, say))
            .then(resolve, (err) => fail(err));
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    }),
  );

program
  .command("loadtest [spec]")
  .description("load-test replication: drive every machine, sample every second, check thresholds and replicas, write report.json and report.html")
  .addOption(dirOption())
  .option("--machines <n>", "machines in the test (added to the lab and protected when missing)")
  .option("--profile <name>", `load profile: ${PROFILE_NAMES.join(", ")}`)
  .option("--rate <rate>", "write rate per machine, e.g. 5MB/s")
  .option("--duration <duration>", "length of the load, e.g. 60s")
  .option("--via <how>", "generator (the agent's built-in writer) or nbd (fio through the NBD exports)")
  .option("--fio <jobfile>", "run this fio job file once per machine against its NBD export (point its uri= at the SRLAB_NBD_URI environment variable)")
  .option("--threshold <expr>", "pass/fail criterion, e.g. 'rpo.p99<1s' (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
  .option("--report <dir>", "where report.json and report.html go (default: DIR/loadtests/<id>)")
  .option("--compare <dir>", "draw an earlier run (its report directory) beside this one")
  .option("--plan-machines <n>", "capacity plan: machines to size for (default 100)")
  .option("--plan-rpo <duration>", "capacity plan: RPO to hold (default 15m)")
  .option("--growth <percent>", "capacity plan: churn growth (default 30%)")
  .option("--seed <n>", "workload seed")
  .option("--disk-size <size>", "disk size of machines the test adds to the lab")
  .option("--json", "print the verdict, summary and plan as JSON")
  .action((specFile: string | undefined, o) =>
    run(async () => {
      const spec = buildSpec({
        spec: specFile,
        machines: o.machines,
        profile: o.profile,
        rate: o.rate,
        duration: o.duration,
        via: o.via,
        fio: o.fio,
        threshold: o.threshold,
        seed: o.seed,
        diskSize: o.diskSize,
        planMachines: o.planMachines,
        planRpo: o.planRpo,
        growth: o.growth,
      });
      const code = await runLoadtest({ dir: labDir(o.dir), spec, reportDir: o.report, compare: o.compare, json: Boolean(o.json) });
      process.exitCode = code;
    }),
  );

program
  .command("down")
  .description("stop every component of a lab")
  .addOption(dirOption())
  .action((o) => run(() => labDown(labDir(o.dir), (line) => process.stderr.write(`${line}\n`))));

program
  .command("status")
  .description("components, machines, RPO and health")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .option("--watch", "refresh in place until Ctrl-C (plain repeated output when not a terminal)")
  .option("--interval <duration>", "refresh interval for --watch", "1s")
  .option("--prometheus-sd", "print Prometheus file-based service discovery targets for every daemon's /metrics")
  .action((o) =>
    run(() =>
      statusCommand(labDir(o.dir), {
        json: Boolean(o.json),
        watch: Boolean(o.watch),
        intervalMs: duration("--interval", o.interval, true),
        prometheusSd: Boolean(o.prometheusSd),
      }),
    ),
  );

program
  .command("dashboard")
  .description("print a one-time login link to the lab's web dashboard")
  .addOption(dirOption())
  .option("--open", "open it in the desktop's browser (xdg-open) instead")
  .option("--json", "dashboard address, login link and its expiry as JSON")
  .action((o) => run(() => dashboardCommand(labDir(o.dir), o)));

program
  .command("protect <machine>")
  .description("enable protection: initial replication, then continuous delta replication")
  .addOption(dirOption())
  .option("--policy <name>", "replication policy", "default")
  .option("--wait", "follow the job until the machine is protected")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => protect(labDir(o.dir), machine, o)));

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
  .addOption(new Option("--profile <profile>", "write pattern").choices(["sequential", "random", "zipf", "append-log"]).default("random"))
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

const pointOptions = (c: Command) =>
  c
    .option("--point <point>", "latest | latest-processed | latest-app-consistent | a recovery point id", "latest")
    .option("--seq <n>", "any single write: recover to exactly this sequence number")
    .option("--at <time>", "any point in time: the last write captured at or before it");

pointOptions(
  program
    .command("failover <machine>")
    .description("fail a machine over to Azure (or test it with --test) at a recovery point")
    .addOption(dirOption()),
)
  .option("--test", "test failover into an isolated network; replication keeps running")
  .option("--shutdown-source", "stop the source's writes and drain them first (no data loss)")
  .option("--network <name>", "target network (required for --test)")
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => failover(labDir(o.dir), machine, o)));

program
  .command("failover-cleanup <machine>")
  .description("delete a test failover's machine and disks")
  .addOption(dirOption())
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => failoverCleanup(labDir(o.dir), machine, o)));

pointOptions(
  program
    .command("change-point <machine>")
    .description("re-create the failed-over disks from another recovery point (before commit)")
    .addOption(dirOption()),
)
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => changePoint(labDir(o.dir), machine, o)));

program
  .command("commit <machine>")
  .description("make a failover final; deletes every other recovery point")
  .addOption(dirOption())
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => commit(labDir(o.dir), machine, o)));

program
  .command("reprotect <machine>")
  .description("protect a failed-over machine back to on-premises, or a failed-back machine to Azure again")
  .addOption(dirOption())
  .option("--master-target <name>", "master target that receives the failback data")
  .option("--process-server <name>", "process server in Azure")
  .option("--datastore <dir>", "directory for the new images (with --alternate-location)")
  .option("--alternate-location", "fail back to a new image (full copy) instead of the original disk")
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => reprotect(labDir(o.dir), machine, o)));

program
  .command("failback <machine>")
  .description("planned failover from Azure back to on-premises: stop, drain, apply; no data loss (or back to a point of the way back)")
  .addOption(dirOption())
  .option("--point <point>", "latest (default: everything the Azure machine wrote), latest-app-consistent, or a point id of the way back")
  .option("--no-wait", "return once the job has started")
  .option("--json", "print the job as JSON")
  .action((machine, o) => run(() => failback(labDir(o.dir), machine, o)));

const network = program.command("network").description("recovery networks and per-machine network mapping");
network
  .command("create <name>")
  .description("declare a network with its address space and circuit")
  .addOption(dirOption())
  .requiredOption("--address-space <cidr...>", "address space(s), e.g. 10.1.0.0/16")
  .option("--subnet <cidr...>", "subnet(s) inside the address space")
  .option("--circuit <name>", "the circuit (ExpressRoute/VPN) the network attaches to")
  .option("--on-premises", "an on-premises network (default: an Azure network)")
  .option("--json", "print the network as JSON")
  .action((name, o) => run(() => networkCreate(labDir(o.dir), name, o)));
network
  .command("list")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((o) => run(() => networkList(labDir(o.dir), o)));
network
  .command("map <machine>")
  .description("where a machine lands on failover: network, subnet, IP")
  .addOption(dirOption())
  .requiredOption("--network <name>", "target network")
  .option("--subnet <cidr>", "target subnet")
  .option("--ip <address>", "static IP in the target subnet")
  .option("--keep-source-ip <address>", "keep the source machine's IP address")
  .option("--json", "no output")
  .action((machine, o) => run(() => networkMap(labDir(o.dir), machine, o)));

program
  .command("verify <machine>")
  .description("recompute the fingerprint of each recovered disk and compare it with the source's at the same sequence")
  .addOption(dirOption())
  .option("--point <id>", "a recovery point (or group point) id")
  .option("--failed-over", "the failed-over disks")
  .option("--test", "the test failover's disks")
  .option("--replica", "the replica disks (once they have processed everything the source wrote)")
  .option("--json", "print every check as JSON")
  .action((machine, o) => run(() => verify(labDir(o.dir), machine, o)));

const group = program.command("group").description("replication groups: machines whose points are cut together");
group
  .command("create <name>")
  .description("create a group (or replace its members)")
  .addOption(dirOption())
  .requiredOption("--machines <a,b,c>", "member machines, comma-separated")
  .option("--json", "print the group as JSON")
  .action((name, o) => run(() => groupCreate(labDir(o.dir), name, o)));
group
  .command("list")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((o) => run(() => groupList(labDir(o.dir), o)));
group
  .command("delete <name>")
  .addOption(dirOption())
  .action((name, o) => run(() => groupDelete(labDir(o.dir), name)));
group
  .command("tag <name>")
  .description("take a group-consistent app-consistent point across every member")
  .addOption(dirOption())
  .option("--tag <name>", "tag name (default group-NAME-TIME)")
  .option("--json", "print the point as JSON")
  .action((name, o) => run(() => groupPoint(labDir(o.dir), name, o)));
group
  .command("points <name>")
  .description("the group's committed points, with each member's sequence and the write hold")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((name, o) => run(() => groupPoints(labDir(o.dir), name, o)));

const plan = program.command("plan").description("recovery plans: ordered groups of machines with script and manual actions");
plan
  .command("apply")
  .description("create or update a plan from its YAML file (nothing is stored if the file is refused)")
  .addOption(dirOption())
  .requiredOption("-f, --file <file>", "plan file")
  .option("--json", "print the result as JSON")
  .action((o) => run(() => planApply(labDir(o.dir), o)));
plan
  .command("list")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((o) => run(() => planList(labDir(o.dir), o)));
plan
  .command("show <name>")
  .description("the plan's YAML (--json: also the validated plan)")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((name, o) => run(() => planShow(labDir(o.dir), name, o)));
plan
  .command("delete <name>")
  .addOption(dirOption())
  .action((name, o) => run(() => planDelete(labDir(o.dir), name)));
plan
  .command("run <name>")
  .description("run an operation over the plan: groups in order, machines of a group in parallel")
  .addOption(dirOption())
  .requiredOption("--op <operation>", "test-failover | failover | failback | reprotect | commit | cleanup")
  .option("--point <point>", "latest | latest-processed | latest-app-consistent | latest-group-consistent | latest-group-app-consistent | a (group) point id")
  .option("--shutdown-source", "planned failover: stop and drain the sources first")
  .option("--network <name>", "test failover network")
  .option("--auto-approve", "manual actions proceed at once")
  .option("--json", "print the run as JSON")
  .action((name, o) => run(() => planRun(labDir(o.dir), name, o)));
plan
  .command("resume <run>")
  .description("continue a run: approve the manual action it waits for, or retry/skip its failed step")
  .addOption(dirOption())
  .option("--retry", "run the failed step again")
  .option("--skip", "mark the failed or waiting step Skipped and go on")
  .option("--cancel", "stop the run")
  .option("--comment <text>", "recorded with the manual action")
  .option("--json", "print the run as JSON")
  .action((runId, o) => run(() => planResume(labDir(o.dir), runId, o)));
plan
  .command("runs [name]")
  .description("plan runs with their result, newest first")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((name, o) => run(() => planRuns(labDir(o.dir), name, o)));
plan
  .command("schedule <name>")
  .description("rehearse the plan's test cycle on a cron schedule, from the configuration server (--off: stop)")
  .addOption(dirOption())
  .option("--cron <expr>", "when, as 5 cron fields (6 with seconds), e.g. \"0 3 * * 6\"")
  .option("--cycle <cycle>", "test (the only cycle that runs on a schedule)")
  .option("--off", "remove the plan's schedule")
  .option("--network <name>", "the isolated network (default: the only Azure network)")
  .option("--workload <profile>", "generated writes during the rehearsal (a loadtest profile)")
  .option("--rate <rate>", "write rate per machine with --workload (default 2MB/s)")
  .option("--auto-approve", "manual actions proceed at once")
  .option("--json", "print the schedule as JSON")
  .action((name, o) => run(() => planSchedule(labDir(o.dir), name, o)));
plan
  .command("schedules")
  .description("scheduled rehearsals, with their next run")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((o) => run(() => planSchedules(labDir(o.dir), o)));

program
  .command("rehearse <plan>")
  .description("rehearse a recovery plan: tag, test failover, a proof per disk, cleanup; writes report.json, junit.xml, report.html")
  .addOption(dirOption())
  .requiredOption("--cycle <cycle>", "test (full: not yet)")
  .option("--network <name>", "the isolated network of the test failover (default: the only Azure network)")
  .option("--workload <profile>", "generated writes during the rehearsal (a loadtest profile: oltp, zipf, log, …)")
  .option("--rate <rate>", "write rate per machine with --workload (default 2MB/s)")
  .option("--auto-approve", "manual actions proceed at once")
  .option("--report <dir>", "where the report goes (default: <lab>/rehearsals/<run>)")
  .option("--json", "print the report as JSON")
  .action((name, o) =>
    run(async () => {
      process.exitCode = await rehearse(labDir(o.dir), name, o);
    }),
  );

program
  .command("logs <component>")
  .description("a component's structured log, pretty-printed; --follow for new lines until Ctrl-C")
  .addOption(dirOption())
  .option("-f, --follow", "keep printing lines as they are written")
  .option("--level <level>", "least severe level shown: error, warn, info, debug")
  .option("--machine <machine>", "only lines about this machine (name or id)")
  .option("--tail <n>", "only the last N lines before following")
  .option("--json", "the JSON lines as written")
  .action((component, o) =>
    run(() =>
      logs(labDir(o.dir), component, {
        follow: Boolean(o.follow),
        level: o.level,
        machine: o.machine,
        tail: o.tail === undefined ? undefined : wholeNumber("--tail", o.tail, 0),
        json: Boolean(o.json),
      }),
    ),
  );

const token = program.command("token").description("join tokens that let a component register (docs/credentials.md)");
token
  .command("create")
  .description("a join token for one role; prints the token and the lab CA's hash")
  .addOption(dirOption())
  .addOption(new Option("--role <role>", "role the token registers").choices(["agent", "process-server", "master-target"]).default("agent"))
  .option("--ttl <duration>", "how long the token is valid", "24h")
  .option("--reusable", "register any number of components until it expires (default: single use)")
  .option("--description <text>", "shown by token list")
  .option("--json", "token, caHash, configServer and the token's details as JSON")
  .action((o) => run(() => tokenCreate(labDir(o.dir), o)));
token
  .command("list")
  .description("join tokens with their state: active, used, expired or revoked")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((o) => run(() => tokenList(labDir(o.dir), o)));
token
  .command("revoke <id>")
  .description("a revoked token registers nothing from now on")
  .addOption(dirOption())
  .option("--json", "print the token as JSON")
  .action((id, o) => run(() => tokenRevoke(labDir(o.dir), id, o)));

const credentials = program.command("credentials").description("credentials the configuration server signed");
credentials
  .command("list")
  .description("valid credentials (--all: expired and revoked too)")
  .addOption(dirOption())
  .option("--component <name>", "only this component's or machine's")
  .option("--all", "include expired and revoked credentials")
  .option("--json", "machine-readable output")
  .action((o) => run(() => credentialsList(labDir(o.dir), o)));
credentials
  .command("rotate <component>")
  .description("issue a component a new credential; the old one is revoked once the component uses the new one")
  .addOption(dirOption())
  .option("--timeout <duration>", "how long to wait for the component", "30s")
  .option("--json", "print the new credential's details as JSON")
  .action((component, o) => run(() => credentialsRotate(labDir(o.dir), component, o)));

program
  .command("remove <component>")
  .description("revoke a component's or machine's credentials and unregister it (a machine must not be protected)")
  .addOption(dirOption())
  .option("--json", "machine-readable output")
  .action((component, o) => run(() => removeComponent(labDir(o.dir), component, o)));

program
  .command("completion <shell>")
  .description("print a completion script: source <(srlab completion bash), or zsh")
  .action((shell) => run(async () => process.stdout.write(completionScript(program, shell))));

registerServiceCommands(program, run);
registerJoinCommands(program, run);

// Daemons, for lab machines: each runs in the foreground until SIGTERM/SIGINT.
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

daemon("config-server", "run a configuration server", async () => (await import("../config-server/index.js")).runConfigServer);
daemon("process-server", "run a process server", async () => (await import("../process-server/index.js")).runProcessServer);
daemon("agent", "run a mobility agent", async () => (await import("../mobility-agent/index.js")).runMobilityAgent);
daemon("master-target", "run a master target", async () => (await import("../master-target/index.js")).runMasterTarget);

program.parseAsync().catch(fail);
