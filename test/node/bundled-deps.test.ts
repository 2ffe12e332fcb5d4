/**
 * The workerd projects load their dependencies pre-bundled (vitest.config.ts). A package the
 * Workers or the workerd tests import but the list leaves out would still load, module by module,
 * beside its bundled copy: two copies of a class (hono's HTTPException) and `instanceof` fails in
 * one test and not another. Every package imported at run time must be on the list.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { root } from "../../scripts/lib/wrangler.ts";
import { BUNDLED_DEPENDENCIES } from "../../vitest.config.ts";

/** Files that run in Node, not in workerd. */
const IN_NODE = [path.join("test", "node"), path.join("test", "support", "global-setup.ts")];

function sources(dir: string): string[] {
	return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
		.filter((entry) => entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts"))
		.map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
		.filter((file) => !IN_NODE.some((node) => file.startsWith(node)));
}

/** The bare specifiers a module imports at run time (type-only imports are erased). */
function runtimeImports(source: string): string[] {
	const found = source.matchAll(/^(?:import|export)\s+(?!type\s)(?:[^;]*?\sfrom\s+)?"([^"]+)"/gms);
	return [...found]
		.map((match) => match[1] ?? "")
		.filter((specifier) => !/^(\.|node:|cloudflare:|vitest$)/.test(specifier));
}

describe("pre-bundled dependencies of the workerd projects", () => {
	it("finds the run-time imports of a module and leaves out type-only and relative ones", () => {
		const source = [
			'import { z } from "zod";',
			'import type { Context } from "hono";',
			'import {\n\tOpenAPIHono,\n\tcreateRoute,\n} from "@hono/zod-openapi";',
			'import { env } from "cloudflare:workers";',
			'import { helper } from "./helper";',
			'export { stringify } from "csv-stringify/sync";',
		].join("\n");
		expect(runtimeImports(source)).toEqual(["zod", "@hono/zod-openapi", "csv-stringify/sync"]);
	});

	it("lists every package the Workers, shared code and workerd tests import", () => {
		const imported = new Set(
			["workers", "shared", "test"]
				.flatMap(sources)
				.flatMap((file) => runtimeImports(readFileSync(path.join(root, file), "utf8"))),
		);
		expect(imported.size).toBeGreaterThan(5);
		expect([...imported].filter((specifier) => !BUNDLED_DEPENDENCIES.includes(specifier)).sort()).toEqual([]);
	});
});
