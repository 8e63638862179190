// `npm run bench [-- --quick] [--only codec,replication,nbd,rto,resync] [--machines N,…]`: every benchmark in order,
// plain-text tables as they finish, then one Markdown summary for the README. Figures are ratios
// against a reference measured in the same run; nothing here asserts a timing.
import { cpus, totalmem } from "node:os";
import { formatCodecTable, runCodecBench } from "./codec.js";
import { formatNbd, nbdMarkdown, runNbdBench } from "./nbd.js";
import { formatReplication, replicationMarkdown, runReplicationBench } from "./replication.js";
import { formatResync, resyncMarkdown, runResyncBench } from "./resync.js";
import { formatRto, rtoMarkdown, runRtoBench } from "./rto.js";
import { formatSmallWrites, runSmallWritesBench, smallWritesMarkdown } from "./small-writes.js";
import { markdownTable } from "./table.js";

interface BenchOptions {
  quick: boolean;
  /** --machines: the replication bench's Azurite rows for these machine counts only. */
  machines?: number[];
}

interface Bench {
  name: string;
  title: string;
  /** Prints its tables and returns its part of the Markdown summary. */
  run(options: BenchOptions, say: (line: string) => void): Promise<string>;
}

/** A benchmark that measures once, prints its table and renders its Markdown from the result. */
function measured<R>(
  name: string,
  title: string,
  measure: (options: BenchOptions & { say: (line: string) => void }) => Promise<R>,
  format: (result: R) => string,
  markdown: (result: R) => string,
): Bench {
  return {
    name,
    title,
    async run(options, say) {
      const result = await measure({ ...options, say });
      console.log(format(result));
      return markdown(result);
    },
  };
}

const BENCHES: Bench[] = [
  {
    name: "codec",
    title: "segment codecs",
    async run({ quick }) {
      const mib = quick ? 16 : 64;
      const rows = await runCodecBench({ mib });
      console.log(`Segment codecs on a ${mib} MiB mixed disk-write payload (40% random, 30% text, 30% sparse pages)`);
      console.log(formatCodecTable(rows));
      return [
        "#### Segment codecs",
        "",
        markdownTable(
          ["codec", "ratio", "compress MB/s", "decompress MB/s", "encode+decode segment MB/s", "compress CPU ms/MB", "decompress CPU ms/MB"],
          rows.map((r) => [
            r.codec,
            r.ratio.toFixed(2),
            r.compressMBps.toFixed(0),
            r.decompressMBps.toFixed(0),
            r.segmentMBps.toFixed(0),
            r.compressCpuMsPerMB.toFixed(2),
            r.decompressCpuMsPerMB.toFixed(2),
          ]),
        ),
      ].join("\n");
    },
  },
  measured("replication", "replication throughput and RPO lag", runReplicationBench, formatReplication, replicationMarkdown),
  measured("nbd", "NBD export vs nbdkit", runNbdBench, formatNbd, nbdMarkdown),
  measured("small-writes", "4 KiB writes to RPO 0 and processed, OLTP mix", runSmallWritesBench, formatSmallWrites, smallWritesMarkdown),
  measured("rto", "failover RTO, latest-processed vs latest", runRtoBench, formatRto, rtoMarkdown),
  measured("resync", "checksum resync vs rsync", runResyncBench, formatResync, resyncMarkdown),
];

function parseArgs(argv: string[]): BenchOptions & { only?: Set<string> } {
  let quick = false;
  let only: Set<string> | undefined;
  let machines: number[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!value) usage("--only needs a benchmark name");
      only = new Set(value.split(","));
    } else if (a === "--machines" || a.startsWith("--machines=")) {
      const value = a === "--machines" ? argv[++i] : a.slice("--machines=".length);
      machines = (value ?? "").split(",").map(Number);
      if (!value || machines.some((n) => !Number.isInteger(n) || n < 1 || n > 256)) usage("--machines needs whole machine counts from 1 to 256, e.g. 32 or 1,8");
    } else if (a === "--help" || a === "-h") usage();
    else usage(`unknown argument ${a}`);
  }
  for (const name of only ?? []) if (!BENCHES.some((b) => b.name === name)) usage(`unknown benchmark "${name}"`);
  return { quick, only, machines };
}

function usage(problem?: string): never {
  const text = `usage: npm run bench -- [--quick] [--only ${BENCHES.map((b) => b.name).join("|")}[,...]] [--machines N[,...]]`;
  if (problem) {
    process.stderr.write(`bench: ${problem}\n${text}\n`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

function machineLine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${process.platform}`;
}

async function main(): Promise<void> {
  const { quick, only, machines } = parseArgs(process.argv.slice(2));
  const selected = BENCHES.filter((b) => !only || only.has(b.name));
  const started = new Date();
  console.log(`srlab benchmarks — ${started.toISOString()}${quick ? " (--quick)" : ""}`);
  console.log(machineLine());
  console.log(`running: ${selected.map((b) => b.name).join(", ")}`);

  const summaries: string[] = [];
  let failed = false;
  for (const bench of selected) {
    console.log(`\n== ${bench.name}: ${bench.title} ==`);
    const t0 = Date.now();
    // Progress goes to stderr so stdout holds only the results.
    const say = (line: string) => process.stderr.write(`  · ${line}\n`);
    try {
      summaries.push(await bench.run({ quick, machines }, say));
      console.log(`(${bench.name} took ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    } catch (err) {
      failed = true;
      console.log(`${bench.name} failed: ${(err as Error).stack ?? String(err)}`);
      summaries.push(`#### ${bench.title}\n\nFailed: ${(err as Error).message}`);
    }
  }

  console.log("\n== summary (Markdown) ==\n");
  console.log(`### Benchmarks${quick ? " (--quick)" : ""}\n`);
  console.log(`\`npm run bench${quick ? " -- --quick" : ""}\` on ${machineLine()}, ${started.toISOString().slice(0, 10)}.\n`);
  console.log(summaries.join("\n\n"));
  if (failed) process.exitCode = 1;
}

await main();
