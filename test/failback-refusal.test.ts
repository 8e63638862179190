import { describe, expect, test } from "vitest";
import { failbackRefusal } from "../config-server/failback-point.js";
import { ReplicationDirection, ReplicationState } from "../proto/index.js";

const S = ReplicationState;
const toAzure = ReplicationDirection.REPLICATION_DIRECTION_ON_PREMISES_TO_AZURE;

describe("failback refused: the reason describes where the machine really is", () => {
  test.each([
    [S.REPLICATION_STATE_FAILED_OVER, /failed over to Azure and not committed yet: commit the failover \(srlab commit m1\)/],
    [S.REPLICATION_STATE_FAILOVER_COMMITTED, /running in Azure after a committed failover and not replicating anywhere: reprotect/],
    [S.REPLICATION_STATE_PROTECTED, /protected, replicating from on-premises to Azure; failback needs a machine running in Azure/],
    [S.REPLICATION_STATE_UNPROTECTED, /not protected/],
    [S.REPLICATION_STATE_FAILED_BACK, /failed back to on-premises already/],
  ])("state %s", (state, pattern) => {
    const message = failbackRefusal({ name: "m1", state, direction: toAzure });
    expect(message).toMatch(pattern);
    if (state !== S.REPLICATION_STATE_PROTECTED) expect(message).not.toMatch(/replicating .*to Azure/);
  });
});
