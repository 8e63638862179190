export { ConfigServer } from "./config-server.js";
export { runConfigServer } from "./daemon.js";
export { type ConfigServerOptions, configServerOptions } from "./options.js";
