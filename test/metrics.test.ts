import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { Counter } from "prom-client";
import { createRegistry, startMetricsServer } from "../common/metrics/index.js";

describe("metrics endpoint", () => {
  test("serves default and custom metrics with the component label, then stops", async () => {
    const registry = createRegistry("process-server");
    const uploads = new Counter({ name: "srlab_test_uploads_total", help: "uploads in the test", registers: [registry] });
    uploads.inc(3);
    const server = await startMetricsServer({ host: "127.0.0.1", port: 0, registry });
    try {
      assert.ok(server.port > 0);
      assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);

      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      assert.match(body, /^process_cpu_user_seconds_total\{component="process-server"\} /m);
      assert.match(body, /^process_resident_memory_bytes\{component="process-server"\} /m);
      assert.match(body, /^nodejs_eventloop_lag_seconds\{component="process-server"\} /m);
      assert.match(body, /^srlab_test_uploads_total\{component="process-server"\} 3$/m);

      const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), "ok\n");
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/nope`)).status, 404);
      assert.equal((await fetch(server.url, { method: "POST" })).status, 405);
    } finally {
      await server.stop();
    }
    await assert.rejects(fetch(server.url), "nothing listens after stop");
  });

  test("two daemons in one process keep separate registries", async () => {
    const a = createRegistry("config-server");
    const b = createRegistry("master-target");
    const textA = await a.metrics();
    const textB = await b.metrics();
    assert.match(textA, /component="config-server"/);
    assert.doesNotMatch(textA, /component="master-target"/);
    assert.match(textB, /component="master-target"/);
  });
});
