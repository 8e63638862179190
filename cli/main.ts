#!/usr/bin/env node
import { Command } from "commander";
import { registerKeysCommands } from "./commands/keys.js";
import { registerServiceCommands } from "./commands/service.js";
import { registerJoinCommands } from "./commands/join.js";
import { registerOperationsCommands } from "./verbs/operations.js";
import { registerPushInstallCommands } from "./verbs/push-install.js";
import { fail } from "./output.js";
import {
  registerDaemonCommands,
  registerIdentityCommands,
  registerLabCommands,
  registerPlanCommands,
  registerRecoveryCommands,
  registerReplicationCommands,
  run,
} from "./verbs/index.js";

// Each verb group registers itself from its own file in cli/verbs/; help lists verbs in this order.
const program = new Command("srlab")
  .description("A lab-scale re-creation of the on-premises half of Azure Site Recovery")
  .showHelpAfterError("(run srlab --help for usage)")
  .configureOutput({ outputError: (str, write) => write(str) });

registerLabCommands(program);
registerReplicationCommands(program);
registerRecoveryCommands(program);
registerPlanCommands(program);
registerIdentityCommands(program);
registerKeysCommands(program, run);
registerServiceCommands(program, run);
registerJoinCommands(program, run);
registerOperationsCommands(program);
registerPushInstallCommands(program);
registerDaemonCommands(program);

program.parseAsync().catch(fail);
