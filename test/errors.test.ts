import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { Metadata, status } from "@grpc/grpc-js";
import {
  ERROR_CODE_METADATA_KEY,
  ErrorCode,
  fromGrpcError,
  isRecoverable,
  retrySchedule,
  retryWithBackoff,
  SrlabError,
  toGrpcError,
  toSrlabError,
} from "../common/errors/index.js";

const NON_RECOVERABLE: ErrorCode[] = [
  "AUTHENTICATION_FAILED",
  "AUTHORIZATION_FAILED",
  "INVALID_REPLICA_STATE",
  "DISK_NOT_FOUND",
  "MACHINE_NOT_FOUND",
  "BROKEN_CHAIN",
  "INVALID_ARGUMENT",
  "OUT_OF_RANGE",
  "WRONG_STATE",
  "NOT_FOUND",
];
const RECOVERABLE: ErrorCode[] = ["NETWORK", "LOW_DISK_SPACE", "LOW_MEMORY", "STORAGE_UNAVAILABLE", "RESOURCE_EXHAUSTED", "UNAVAILABLE"];

function systemError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code} from the OS`), { code });
}

describe("error taxonomy", () => {
  test("each kind knows whether it is recoverable", () => {
    for (const code of NON_RECOVERABLE) assert.equal(new SrlabError(code, "x").recoverable, false, code);
    for (const code of RECOVERABLE) assert.equal(new SrlabError(code, "x").recoverable, true, code);
  });

  test("kinds map to the gRPC statuses a person expects", () => {
    const expected: Partial<Record<ErrorCode, status>> = {
      AUTHENTICATION_FAILED: status.UNAUTHENTICATED,
      AUTHORIZATION_FAILED: status.PERMISSION_DENIED,
      INVALID_REPLICA_STATE: status.FAILED_PRECONDITION,
      DISK_NOT_FOUND: status.NOT_FOUND,
      INVALID_ARGUMENT: status.INVALID_ARGUMENT,
      OUT_OF_RANGE: status.OUT_OF_RANGE,
      WRONG_STATE: status.FAILED_PRECONDITION,
      NETWORK: status.UNAVAILABLE,
      LOW_DISK_SPACE: status.RESOURCE_EXHAUSTED,
      UNAVAILABLE: status.UNAVAILABLE,
    };
    for (const [code, grpcStatus] of Object.entries(expected)) {
      const err = toGrpcError(new SrlabError(code as ErrorCode, "boom"));
      assert.equal(err.code, grpcStatus, code);
      assert.equal(err.details, "boom");
      assert.deepEqual(err.metadata.get(ERROR_CODE_METADATA_KEY), [code]);
      assert.ok(err instanceof Error);
    }
  });

  test("round trip through gRPC keeps the exact kind", () => {
    for (const code of [...NON_RECOVERABLE, ...RECOVERABLE]) {
      const back = fromGrpcError(toGrpcError(new SrlabError(code, "why")));
      assert.equal(back.code, code);
      assert.equal(back.recoverable, RECOVERABLE.includes(code));
      assert.equal(back.message, "why");
    }
  });

  test("statuses without srlab metadata are classified by status", () => {
    const cases: [status, ErrorCode, boolean][] = [
      [status.UNAVAILABLE, ErrorCode.UNAVAILABLE, true],
      [status.DEADLINE_EXCEEDED, ErrorCode.NETWORK, true],
      [status.RESOURCE_EXHAUSTED, ErrorCode.RESOURCE_EXHAUSTED, true],
      [status.UNAUTHENTICATED, ErrorCode.AUTHENTICATION_FAILED, false],
      [status.PERMISSION_DENIED, ErrorCode.AUTHORIZATION_FAILED, false],
      [status.INVALID_ARGUMENT, ErrorCode.INVALID_ARGUMENT, false],
      [status.OUT_OF_RANGE, ErrorCode.OUT_OF_RANGE, false],
      [status.FAILED_PRECONDITION, ErrorCode.WRONG_STATE, false],
      [status.NOT_FOUND, ErrorCode.NOT_FOUND, false],
      [status.INTERNAL, ErrorCode.INTERNAL, false],
    ];
    for (const [grpcStatus, code, recoverable] of cases) {
      const err = Object.assign(new Error("x"), { code: grpcStatus, details: "detail", metadata: new Metadata() });
      const classified = fromGrpcError(err);
      assert.equal(classified.code, code, status[grpcStatus]);
      assert.equal(classified.recoverable, recoverable, status[grpcStatus]);
      assert.equal(classified.grpcStatus, grpcStatus, "keeps the status the peer sent");
      assert.equal(isRecoverable(err), recoverable);
    }
  });

  test("an unknown srlab-error-code falls back to the status", () => {
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, "SOMETHING_NEW");
    assert.equal(fromGrpcError({ code: status.UNAVAILABLE, details: "d", metadata }).code, ErrorCode.UNAVAILABLE);
  });

  test("Node system errors", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"]) {
      assert.equal(isRecoverable(systemError(code)), true, code);
      assert.equal(toSrlabError(systemError(code)).code, ErrorCode.NETWORK, code);
    }
    assert.equal(toSrlabError(systemError("ENOSPC")).code, ErrorCode.LOW_DISK_SPACE);
    assert.equal(isRecoverable(systemError("ENOSPC")), true);
    assert.equal(toSrlabError(systemError("ENOMEM")).code, ErrorCode.LOW_MEMORY);
    assert.equal(isRecoverable(systemError("ENOMEM")), true);
    // fetch() wraps the socket error as its cause.
    assert.equal(isRecoverable(new TypeError("fetch failed", { cause: systemError("ECONNREFUSED") })), true);
    assert.equal(isRecoverable(new Error("a plain bug")), false);
    assert.equal(isRecoverable("not even an error"), false);
    assert.equal(toGrpcError(systemError("ENOSPC")).code, status.RESOURCE_EXHAUSTED);
    assert.equal(toGrpcError(new Error("a plain bug")).code, status.INTERNAL);
  });
});

describe("backoff", () => {
  test("schedule is 1, 2, 4, 8, 10, then every 30 units", () => {
    const units = Array.from({ length: 9 }, (_, i) => retrySchedule(i + 1, 1));
    assert.deepEqual(units, [1, 2, 4, 8, 10, 30, 30, 30, 30]);
    assert.equal(retrySchedule(100, 1000), 30_000);
    assert.equal(retrySchedule(1), 60_000, "ASR's unit is a minute by default");
    assert.equal(retrySchedule(5, 60_000), 10 * 60_000);
  });

  test("retries recoverable errors on the schedule and returns the result", async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await retryWithBackoff(
      async () => {
        calls++;
        if (calls < 8) throw new SrlabError(ErrorCode.NETWORK, "link down");
        return "done";
      },
      { timeUnitMs: 1, onRetry: (attempt, delayMs) => delays.push(attempt * 1000 + delayMs) },
    );
    assert.equal(result, "done");
    assert.equal(calls, 8);
    assert.deepEqual(delays, [1001, 2002, 3004, 4008, 5010, 6030, 7030]);
  });

  test("stops at the first non-recoverable error and rethrows it unchanged", async () => {
    let calls = 0;
    const fatal = new SrlabError(ErrorCode.BROKEN_CHAIN, "sequence gap");
    await assert.rejects(
      retryWithBackoff(
        async () => {
          calls++;
          throw calls < 3 ? systemError("ECONNRESET") : fatal;
        },
        { timeUnitMs: 1 },
      ),
      (err) => err === fatal,
    );
    assert.equal(calls, 3);
  });

  test("abort ends a pending wait", async () => {
    const controller = new AbortController();
    let calls = 0;
    const running = retryWithBackoff(
      async () => {
        calls++;
        throw new SrlabError(ErrorCode.UNAVAILABLE, "storage down");
      },
      { timeUnitMs: 60_000, signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error("shutting down")), 20);
    await assert.rejects(running, /shutting down/);
    assert.equal(calls, 1);
  });

  test("an already aborted signal never calls fn", async () => {
    let calls = 0;
    await assert.rejects(
      retryWithBackoff(async () => calls++, { signal: AbortSignal.abort() }),
      (err: Error) => err.name === "AbortError",
    );
    assert.equal(calls, 0);
  });
});
