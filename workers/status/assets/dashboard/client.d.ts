/**
 * The types of client.js, the bundle of client/index.ts that `npm run client:generate` writes for the
 * browser: the dashboard's scripts are checked against the client's own source. Not served
 * (../../.assetsignore).
 */
export * from "../../../../client/index.ts";
