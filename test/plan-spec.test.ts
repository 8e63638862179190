import { describe, expect, test } from "vitest";
import { parsePlan } from "../config-server/plans/index.js";

const known = new Set(["machine-1", "machine-2", "machine-3"]);
const limits = { maxGroups: 7, maxMachines: 100, machineExists: (n: string) => known.has(n) };
const parse = (yaml: string, l = limits) => parsePlan(yaml, "web.yaml", "/plans", l);

const WEB = `name: web
targets: { rpoSeconds: 120, rtoSeconds: 300 }
replicationGroup: true
groups:
  - name: db
    machines: [machine-1]
    post:
      - script: ./check-db.sh
        on: [test-failover, failover]
        timeout: 60s
  - name: web
    machines: [machine-2, machine-3]
    pre:
      - manual: Confirm the load balancer is drained
        on: [failover, failback]
`;

describe("plan files", () => {
  test("the documented example parses into groups, actions and targets", () => {
    const spec = parse(WEB);
    expect(spec).toEqual({
      name: "web",
      targets: { rpoSeconds: 120, rtoSeconds: 300 },
      replicationGroup: true,
      baseDir: "/plans",
      groups: [
        { name: "db", machines: ["machine-1"], pre: [], post: [{ kind: "script", script: "./check-db.sh", message: "", on: ["test-failover", "failover"], timeoutSeconds: 60 }] },
        { name: "web", machines: ["machine-2", "machine-3"], pre: [{ kind: "manual", script: "", message: "Confirm the load balancer is drained", on: ["failover", "failback"], timeoutSeconds: 300 }], post: [] },
      ],
    });
  });

  test.each([
    ["an unknown machine", WEB.replace("machine-3]", "machine-7]"), /^web\.yaml:12: groups\[1\]\.machines\[1\]: no machine named "machine-7"/],
    ["an unknown key", WEB.replace("replicationGroup: true", "replicationGroups: true"), /^web\.yaml:3: replicationGroups: unknown key/],
    ["an unknown operation", WEB.replace("[failover, failback]", "[failover, fail-back]"), /^web\.yaml:15: groups\[1\]\.pre\[0\]\.on\[1\]: unknown operation "fail-back"/],
    ["a machine in two groups", WEB.replace("[machine-2, machine-3]", "[machine-2, machine-1]"), /groups\[1\]\.machines\[1\]: machine machine-1 is already in group db/],
    ["both script and manual", WEB.replace("      - script: ./check-db.sh", "      - script: ./check-db.sh\n        manual: also"), /groups\[0\]\.post\[0\]: give exactly one of script or manual/],
    ["a bad timeout", WEB.replace("timeout: 60s", "timeout: soon"), /^web\.yaml:10: groups\[0\]\.post\[0\]\.timeout: must be a duration/],
    ["a negative target", WEB.replace("rpoSeconds: 120", "rpoSeconds: -1"), /^web\.yaml:2: targets\.rpoSeconds: must be a positive number/],
    ["broken YAML", "name: [web\n", /^web\.yaml:\d+: not valid YAML/],
    ["no groups", "name: web\n", /groups: missing/],
  ])("refuses %s with file, line and key", (_what, yaml, message) => {
    expect(() => parse(yaml)).toThrow(message);
  });

  test("the group limit is configurable; eight groups exceed ASR's seven", () => {
    const groups = (n: number) => `name: big\ngroups:\n${Array.from({ length: n }, (_, i) => `  - name: g${i}\n    machines: [m${i}]\n`).join("")}`;
    const all = { ...limits, machineExists: () => true };
    expect(() => parse(groups(8), all)).toThrow(/^web\.yaml:17: groups: 8 groups; a plan holds at most 7$/);
    expect(parse(groups(8), { ...all, maxGroups: 8 }).groups).toHaveLength(8);
  });
});
