import type { ConfigurationServiceService } from "../../proto/index.js";
import type { Handlers } from "./handler-types.js";
import type { ConfigHost } from "./host.js";

type CredentialHandlers = Pick<Handlers<typeof ConfigurationServiceService>, "renewCredential">;

/** RenewCredential: the caller's credential again, with a new id and expiry. */
export function credentialHandlers(host: ConfigHost): CredentialHandlers {
  return {
    renewCredential: (_req, caller) => {
      if (caller.kind !== "component") throw new Error(`expected a component caller, got ${caller.kind}`);
      const { role, id, site } = caller.claims;
      const issued = host.credentials.issue({ role, id, site, componentId: caller.component.componentId });
      host.logger.info("credential renewed", { component: caller.component.name, credentialId: issued.claims.jti, previous: caller.claims.jti });
      return { credential: issued.credential, credentialId: issued.claims.jti, expiresAt: new Date(issued.claims.exp * 1000) };
    },
  };
}
