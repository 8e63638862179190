import { joinTokenRoles } from "../../common/enum-names/index.js";
import { type Command, Option } from "commander";
import { credentialsList, credentialsRotate, removeComponent, tokenCreate, tokenList, tokenRevoke } from "../commands/identity.js";
import { labDir } from "../lab/index.js";
import { dirOption, run } from "./options.js";

/** Identity verbs: join tokens, credentials and removing a component. */
export function registerIdentityCommands(program: Command): void {
  const token = program.command("token").description("join tokens that let a component register (docs/credentials.md)");
  token
    .command("create")
    .description("a join token for one role; prints the token, the lab CA's hash and the srlab join command to run on the joining host")
    .addOption(dirOption())
    .addOption(new Option("--role <role>", "role the token registers").choices(joinTokenRoles.names).default("agent"))
    .option("--ttl <duration>", "how long the token is valid", "24h")
    .option("--reusable", "register any number of components until it expires (default: single use)")
    .option("--description <text>", "shown by token list")
    .option("--json", "token, caHash, configServer, command and the token's details as JSON")
    .action((o) => run(() => tokenCreate(labDir(o.dir), o)));
  token
    .command("list")
    .description("join tokens with their state: active, used, expired or revoked")
    .addOption(dirOption())
    .option("--json", "machine-readable output")
    .action((o) => run(() => tokenList(labDir(o.dir), o)));
  token
    .command("revoke <id>")
    .description("a revoked token registers nothing from now on")
    .addOption(dirOption())
    .option("--json", "print the token as JSON")
    .action((id, o) => run(() => tokenRevoke(labDir(o.dir), id, o)));

  const credentials = program.command("credentials").description("credentials the configuration server signed");
  credentials
    .command("list")
    .description("valid credentials (--all: expired and revoked too)")
    .addOption(dirOption())
    .option("--component <name>", "only this component's or machine's")
    .option("--all", "include expired and revoked credentials")
    .option("--json", "machine-readable output")
    .action((o) => run(() => credentialsList(labDir(o.dir), o)));
  credentials
    .command("rotate <component>")
    .description("issue a component a new credential; the old one is revoked once the component uses the new one")
    .addOption(dirOption())
    .option("--timeout <duration>", "how long to wait for the component", "30s")
    .option("--json", "print the new credential's details as JSON")
    .action((component, o) => run(() => credentialsRotate(labDir(o.dir), component, o)));

  program
    .command("remove <component>")
    .description("revoke a component's or machine's credentials and unregister it (a machine must not be protected)")
    .addOption(dirOption())
    .option("--json", "machine-readable output")
    .action((component, o) => run(() => removeComponent(labDir(o.dir), component, o)));

}
