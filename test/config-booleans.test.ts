import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig } from "../common/config/index.js";
import { processServerOptions } from "../process-server/options.js";

const required = { name: "ps", dataDir: "/tmp/ps", configServer: { address: "127.0.0.1:1", passphrase: "p" } };

describe("booleans from the environment", () => {
  test("SRLAB_INSECURE=false keeps TLS on; true/1/yes/on turn it off", () => {
    const insecure = (value: string) => loadConfig(processServerOptions, { flags: required, env: { SRLAB_INSECURE: value } }).insecure;
    for (const v of ["false", "FALSE", "0", "no", "off", ""]) expect(insecure(v), v).toBe(false);
    for (const v of ["true", "True", "1", "yes", "on"]) expect(insecure(v), v).toBe(true);
    expect(loadConfig(processServerOptions, { flags: required }).insecure).toBe(false);
    expect(loadConfig(processServerOptions, { flags: { ...required, insecure: true } }).insecure).toBe(true);
  });

  test("a word that is not a boolean is a configuration error, not a guess", () => {
    expect(() => loadConfig(processServerOptions, { flags: required, env: { SRLAB_INSECURE: "maybe" } })).toThrow(ConfigError);
    expect(() => loadConfig(processServerOptions, { flags: required, env: { SRLAB_INSECURE: "maybe" } })).toThrow(/insecure: expected true or false/);
  });

  test("tuning options have documented defaults and can be set", () => {
    const o = loadConfig(processServerOptions, { flags: required });
    expect(o.upload).toEqual({ perMachine: 3, total: 6 });
    expect(o.intake).toEqual({ inboxMessages: 8 });
    const set = loadConfig(processServerOptions, { flags: required, env: { SRLAB_UPLOAD__TOTAL: "2" } });
    expect(set.upload.total).toBe(2);
  });
});
