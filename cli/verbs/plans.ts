import type { Command } from "commander";
import { groupCreate, groupDelete, groupList, groupPoint, groupPoints } from "../commands/groups.js";
import { planApply, planDelete, planList, planResume, planRun, planRuns, planShow } from "../commands/plans.js";
import { planSchedule, planSchedules, rehearse } from "../commands/rehearse.js";
import { labDir } from "../lab/index.js";
import { dirOption, run } from "./options.js";

/** Plan verbs: replication groups, recovery plans, their runs, schedules and rehearsals. */
export function registerPlanCommands(program: Command): void {
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
    .description(
      "rehearse a recovery plan with a proof per disk at every step: test (tag, test failover, cleanup) or full (then over to Azure, writes there, back, and protected again); writes report.json, junit.xml, report.html",
    )
    .addOption(dirOption())
    .requiredOption("--cycle <cycle>", "test, or full (planned failover, failback and reprotect)")
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

}
