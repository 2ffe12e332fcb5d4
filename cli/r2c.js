#!/usr/bin/env node
// The `r2c` command (package.json "bin"). Node runs the TypeScript sources directly (type
// stripping, Node >= 22.18); `npx r2c` in a clone puts the repository's Node 22 first on PATH.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
	console.error(
		`r2c needs Node >= 22.18 (this is ${process.version}). In a clone, run it as \`npx r2c\`: npm puts the repository's Node 22 first on PATH.`,
	);
	process.exit(1);
}
await import("./main.ts");
