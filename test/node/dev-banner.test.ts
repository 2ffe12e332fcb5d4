/** What `npm run dev` prints once the API answers: commands that reach this stack as they are. */
import { describe, expect, it } from "vitest";
import { readyBanner } from "../../scripts/lib/dev-banner.ts";

describe("npm run dev's banner", () => {
	it("on the default port, runs the demo as it is", () => {
		const banner = readyBanner({ url: "http://localhost:8787", token: "t", remoteAi: false });
		expect(banner).toContain("\n  npm run demo ");
		expect(banner).not.toContain("API_URL=");
	});

	it("on another port, gives the demo that stack's URL (the demo would try 8787)", () => {
		const banner = readyBanner({ url: "http://localhost:28951", token: "t", remoteAi: false });
		expect(banner).toContain("\n  API_URL=http://localhost:28951 npm run demo ");
		expect(banner).toContain("curl http://localhost:28951/healthz");
	});
});
