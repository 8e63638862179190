import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import { describe, test } from "vitest";
import { forgetSeries } from "../common/metrics/index.js";
import { errorLine, judgePrerequisites, prerequisiteScript, remoteJoinCommand, shellQuote } from "../cli/push-install/index.js";

const GOOD = ["node=v20.20.2", "npm=11.1.0", "uid=1000", "hostname=lab-2", "resolves=yes", "writable=yes", "free_kb=4194304", "systemd=no"].join("\n");
const MiB = 2 ** 20;

describe("push install prerequisites", () => {
  test("a healthy target passes and its facts are read", () => {
    const { facts, failures } = judgePrerequisites(GOOD, "/home/u/.srlab/agent", 512 * MiB);
    assert.deepEqual(failures, []);
    assert.equal(facts.nodeVersion, "v20.20.2");
    assert.equal(facts.freeBytes, 4 * 1024 * MiB);
    assert.equal(facts.systemd, false);
    assert.equal(facts.uid, 1000);
  });

  test("each failing prerequisite has its own code", () => {
    const codes = (out: string) => judgePrerequisites(out, "/srv/x", 512 * MiB).failures.map((f) => f.code);
    assert.deepEqual(codes(GOOD.replace("node=v20.20.2", "node=")), ["NODE_MISSING"]);
    assert.deepEqual(codes(GOOD.replace("node=v20.20.2", "node=v18.19.0")), ["NODE_TOO_OLD"]);
    assert.deepEqual(codes(GOOD.replace("npm=11.1.0", "npm=")), ["NPM_MISSING"]);
    assert.deepEqual(codes(GOOD.replace("writable=yes", "writable=no")), ["STATE_DIR_NOT_WRITABLE"]);
    assert.deepEqual(codes(GOOD.replace("free_kb=4194304", "free_kb=1024")), ["DISK_SPACE_LOW"]);
    assert.deepEqual(codes(GOOD.replace("resolves=yes", "resolves=no")), ["HOSTNAME_UNRESOLVED"]);
    assert.deepEqual(codes(""), ["NODE_MISSING", "NPM_MISSING", "STATE_DIR_NOT_WRITABLE", "HOSTNAME_UNRESOLVED"]);
  });

  test("the check script runs in sh here and reports a writable and an unwritable directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "srlab-prereq-"));
    try {
      const ok = execFileSync("sh", ["-c", prerequisiteScript(join(dir, "state dir 'quoted'"))]).toString();
      const judged = judgePrerequisites(ok, dir, 1);
      assert.ok(!judged.failures.some((f) => f.code === "STATE_DIR_NOT_WRITABLE" || f.code === "DISK_SPACE_LOW"), ok);
      assert.match(judged.facts.nodeVersion, /^v\d+\./);
      const bad = execFileSync("sh", ["-c", prerequisiteScript("/proc/srlab-cannot-exist/agent")]).toString();
      assert.ok(judgePrerequisites(bad, "/proc/srlab-cannot-exist/agent", 1).failures.some((f) => f.code === "STATE_DIR_NOT_WRITABLE"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("shell quoting survives quotes and spaces", () => {
    assert.equal(execFileSync("sh", ["-c", `printf '%s' ${shellQuote("a 'b' $c")}`]).toString(), "a 'b' $c");
  });
});

describe("push install package and commands", () => {
  test("a failed command is reported by the line that says why, not by Node's version trailer", () => {
    const stack = [
      "node:internal/modules/esm/resolve:873",
      "  throw new ERR_MODULE_NOT_FOUND(packageName, fileURLToPath(base), null);",
      "        ^",
      "",
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find package '@azure/core-rest-pipeline' imported from /x/index.js",
      "    at packageResolve (node:internal/modules/esm/resolve:873:9)",
      "",
      "Node.js v20.20.2",
    ].join("\n");
    assert.equal(errorLine(stack), "Error [ERR_MODULE_NOT_FOUND]: Cannot find package '@azure/core-rest-pipeline' imported from /x/index.js");
    assert.equal(errorLine("checking…\nsrlab: the configuration server refused the join: join token x was already used\n"), "srlab: the configuration server refused the join: join token x was already used");
    assert.equal(errorLine("npm error code ENOSPC\nnpm error nospc no space left\n"), "npm error nospc no space left");
    assert.equal(errorLine(""), "");
  });

  test("the target joins the configuration server at the address it was given, as a service only when asked", () => {
    const base = { srlabBin: "/h/.srlab/install/bin/srlab", role: "agent" as const, configServer: "head.lab:7000", token: "abcdefgh.0123456789abcdefghij", caHash: `sha256:${"a".repeat(64)}`, name: "m1", stateDir: "/h/.srlab/agent", listen: "10.0.0.2", disks: ["/d/0.img:1GiB"] };
    const detached = remoteJoinCommand({ ...base, service: false });
    assert.deepEqual(detached.slice(1, 5), ["join", "agent", "--config-server", "head.lab:7000"]);
    assert.deepEqual(detached.slice(-3), ["--disk", "/d/0.img:1GiB", "--detach"]);
    assert.equal(remoteJoinCommand({ ...base, service: true }).at(-1), "--service");
  });
});

describe("forgetting a machine's metric series", () => {
  test("every series with that label value goes, others stay", async () => {
    const registry = new Registry();
    const c = new Counter({ name: "x_total", help: "x", labelNames: ["machine_id", "code"], registers: [registry] });
    c.inc({ machine_id: "a", code: "1" });
    c.inc({ machine_id: "a", code: "2" });
    c.inc({ machine_id: "b", code: "1" });
    assert.equal(await forgetSeries(registry, "machine_id", "a"), 2);
    const text = await registry.metrics();
    assert.doesNotMatch(text, /machine_id="a"/);
    assert.match(text, /machine_id="b"/);
  });
});
