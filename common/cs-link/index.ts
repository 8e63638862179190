export { type CommandHandler, CsLink, type CsLinkOptions } from "./cs-link.js";
