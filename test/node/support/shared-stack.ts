/**
 * The node project's leased `npm run dev` stacks (test/node/support/shared-stack-setup.ts starts one
 * on the first call, and stops it once every file that asked has released it): the shared stack,
 * with the default settings, and the tuned stack, with TUNED_STACK's (./tuned-stack.ts). Several
 * files use each at once: each test uses object keys, prefixes and subscriptions of its own, counts
 * only its own jobs, and never stops the stack or needs vars other than its stack's (those files
 * call spawnDevStack; docs/testing.md).
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
	/** Gives the lease back (in the file's `afterAll`): the stack stops soon after the last one. */
	release(): Promise<void>;
}

/**
 * The shared stack, once it serves (a call while nobody holds it starts it: up to a few minutes on a
 * busy machine). Each call takes a lease, which the file gives back with `release()`.
 */
export const sharedDevStack = (): Promise<SharedStack> => leasedStack(inject("sharedStackBroker"));

/**
 * The tuned stack (TUNED_STACK's settings: a small in-flight cap, a slow emulator, jobs kept 0 days
 * and swept every 2 s), leased as the shared one is; only the files ./tuned-stack.ts names use it.
 */
export const tunedDevStack = (): Promise<SharedStack> => leasedStack(inject("tunedStackBroker"));

async function leasedStack(brokerUrl: string): Promise<SharedStack> {
	const broker = `${brokerUrl}/stack`;
	const res = await fetch(broker, { method: "POST" });
	if (!res.ok) {
		const error = await res.text();
		await fetch(`${broker}/release`, { method: "POST" });
		throw new Error(`the stack did not start:\n${error}`);
	}
	const { url, token, logFile } = SharedStackInfo.parse(await res.json());
	let released = false;
	return {
		url,
		token,
		output: () => readFileSync(logFile, "utf8"),
		async release() {
			if (released) return;
			released = true;
			await fetch(`${broker}/release`, { method: "POST" });
		},
	};
}
