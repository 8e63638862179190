export { booleanOption } from "./boolean-option.js";
export { commonDaemonOptions, configServerLink, listenOptions, logOptions, metricsOptions, tlsOptions } from "./common-options.js";
export { ConfigError, type LoadConfigSources, loadConfig } from "./load-config.js";
export { storeCredentialInConfig } from "./credential-in-config.js";
