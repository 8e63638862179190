import { ComponentRole, CredentialRole, JoinTokenState } from "../../proto/index.js";
import { EnumNames } from "./enum-names.js";

/** Roles a join token can register, as `srlab token create --role` names them. */
export const joinTokenRoles = new EnumNames("join token role", {
  agent: ComponentRole.COMPONENT_ROLE_MOBILITY_AGENT,
  "process-server": ComponentRole.COMPONENT_ROLE_PROCESS_SERVER,
  "master-target": ComponentRole.COMPONENT_ROLE_MASTER_TARGET,
});

/** Credential roles as credentials carry them and `srlab credentials` shows them. */
export const credentialRoles = new EnumNames("credential role", {
  admin: CredentialRole.CREDENTIAL_ROLE_ADMIN,
  "config-server": CredentialRole.CREDENTIAL_ROLE_CONFIGURATION_SERVER,
  "process-server": CredentialRole.CREDENTIAL_ROLE_PROCESS_SERVER,
  "master-target": CredentialRole.CREDENTIAL_ROLE_MASTER_TARGET,
  agent: CredentialRole.CREDENTIAL_ROLE_AGENT,
});

/** Join token states as `srlab token list` shows them. */
export const joinTokenStates = new EnumNames("join token state", {
  active: JoinTokenState.JOIN_TOKEN_STATE_ACTIVE,
  used: JoinTokenState.JOIN_TOKEN_STATE_USED,
  expired: JoinTokenState.JOIN_TOKEN_STATE_EXPIRED,
  revoked: JoinTokenState.JOIN_TOKEN_STATE_REVOKED,
});
