import { type Command, Option } from "commander";
import { diskSize, duration, wholeNumber } from "../arguments.js";
import { logs } from "../commands/logs.js";
import { dashboardCommand, dashboardLines } from "../commands/dashboard.js";
import { statusCommand, watchStatus } from "../commands/status.js";
import { AdminClient } from "../admin-client.js";
import { completionScript } from "../completion.js";
import { buildSpec, PROFILE_NAMES, runLoadtest } from "../loadtest/index.js";
import { isAlive, LabLayout, labDir, labDown, labUp, parseHeadNetwork } from "../lab/index.js";
import { fail, printJson } from "../output.js";
import { dirOption, run } from "./options.js";

/** True when no daemon of the lab runs any more (a manifest caught mid-write counts as running). */
function labStopped(dir: string): boolean {
  try {
    return new LabLayout(dir).read().components.every((c) => !isAlive(c.pid));
  } catch {
    return false;
  }
}

/** Lab verbs: up, down, status, dashboard, logs, loadtest and shell completion. */
export function registerLabCommands(program: Command): void {
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
    .option("--listen <addr>", "where the configuration server and process servers listen, e.g. 0.0.0.0 for other hosts to join (default: loopback; kept by the lab)")
    .option("--advertise <names>", "host names/addresses (comma-separated) put into their certificates and handed to joiners (kept by the lab)")
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
          network: parseHeadNetwork(o.listen, o.advertise),
          onProgress: say,
        });
        if (o.json) printJson({ dir, configServer: manifest.configServerAddress, caFile: manifest.caFile, components: manifest.components });
        else {
          say(`lab is up in ${dir}: try srlab status --dir ${dir}`);
          for (const line of await dashboardLines(dir)) say(line);
        }
        if (o.detach) return;
        say("press Ctrl-C to stop the lab");
        // On a terminal the live status table runs under the start-up lines until Ctrl-C.
        const live = new AbortController();
        const table = process.stdout.isTTY && !o.json ? AdminClient.forDir(dir) : undefined;
        const drawing = table ? watchStatus(table, 1000, live.signal).finally(() => table.close()) : Promise.resolve();
        await new Promise<void>((resolve) => {
          const end = () => {
            clearInterval(watch);
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            live.abort();
          };
          const stop = () => {
            end();
            drawing
              .then(() => say("stopping the lab"))
              .then(() => labDown(dir, say))
              .then(resolve, (err) => fail(err));
          };
          // Also what holds the event loop open (signal handlers alone do not): once every
          // daemon's supervisor is gone (srlab down from another terminal) there is nothing to wait for.
          const watch = setInterval(() => {
            if (!labStopped(dir)) return;
            end();
            void drawing.then(() => {
              say("the lab was stopped from elsewhere (srlab down)");
              resolve();
            });
          }, 1000);
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

  program
    .command("completion <shell>")
    .description("print a completion script: source <(srlab completion bash), or zsh")
    .action((shell) => run(async () => process.stdout.write(completionScript(program, shell))));

}
