export { discoverCa, matchesCaHash, parseCaHash, parseHostPort } from "./ca-discovery.js";
export { type Joined, joinHost, type JoinPorts } from "./join-host.js";
export { JOIN_ROLES, type JoinFlags, type JoinPaths, type JoinPlan, type JoinRole, joinPaths, parseListen, planJoin } from "./join-plan.js";
export { isJoinedDirectory, type JoinedComponent, joinedComponents, joinedConfigs, joinedStatusLines } from "./joined-status.js";
