export { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, azuriteConnectionString } from "./connection-string.js";
export { type AzuriteHandle, type AzuriteOptions, azuriteBlobMainPath, startAzurite } from "./start-azurite.js";
