/**
 * What `npm run dev` prints once the status API answers: where it is and what to try next, each
 * command ready to paste for this stack (its port and token).
 */
import { DEFAULT_API_URL } from "../../cli/context.ts";

/** How to run the demo against the stack at `url`: the demo finds only the default URL by itself. */
export function demoCommand(url: string): string {
	return url === DEFAULT_API_URL ? "npm run demo" : `API_URL=${url} npm run demo`;
}

export function readyBanner(stack: { url: string; token: string; remoteAi: boolean }): string {
	const { url, token } = stack;
	return [
		"",
		`r2-captions is running: status API on ${url} (model backend: ${stack.remoteAi ? "Workers AI" : "emulator"})`,
		`  curl ${url}/healthz`,
		`  curl -X PUT -H "Authorization: Bearer ${token}" --data-binary @samples/night-sky.webp ${url}/v1/images/night-sky.webp`,
		`  ${demoCommand(url)}      (in another terminal)`,
		"Ctrl-C stops everything.",
		"",
	].join("\n");
}
