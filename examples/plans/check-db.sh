#!/bin/sh
# Post-action of the db group: sees the run's context (plan, operation, per machine its
# recovery point, sequence and failed-over disks) in $SRLAB_CONTEXT_FILE.
set -eu
echo "plan $SRLAB_PLAN, $SRLAB_OPERATION of group $SRLAB_GROUP ($SRLAB_DIRECTION)"
if command -v jq >/dev/null 2>&1; then
  jq -r '.machines[] | "\(.name): point \(.recoveryPointId) at sequence \(.sequence), disks \([.disks[].blob] | join(","))"' "$SRLAB_CONTEXT_FILE"
else
  cat "$SRLAB_CONTEXT_FILE"
fi
