/**
 * The node project's shared `npm run dev` stack (test/node/support/shared-stack-setup.ts starts it on
 * the first call, for the whole run). Several files use it at once: each test uses object keys,
 * prefixes and subscriptions of its own, counts only its own jobs, and never stops the stack or
 * needs vars of its own (those files call spawnDevStack; docs/testing.md).
 */
import { readFileSync } from "node:fs";
import { inject } from "vitest";
import { z } from "zod";

/** What the broker answers: where the stack serves, its admin token, and the file it logs to. */
export const SharedStackInfo = z.object({ url: z.string(), token: z.string(), logFile: z.string() });
export type SharedStackInfo = z.infer<typeof SharedStackInfo>;

export interface SharedStack {
	url: string;
	token: string;
	/** Everything the stack printed so far (wrangler logs every request), every file's requests included. */
	output(): string;
}

/** The shared stack, once it serves (the first call starts it: up to a few minutes on a busy machine). */
export async function sharedDevStack(): Promise<SharedStack> {
	const res = await fetch(`${inject("sharedStackBroker")}/stack`, { method: "POST" });
	if (!res.ok) throw new Error(`the shared stack did not start:\n${await res.text()}`);
	const { url, token, logFile } = SharedStackInfo.parse(await res.json());
	return { url, token, output: () => readFileSync(logFile, "utf8") };
}
