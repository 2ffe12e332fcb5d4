/** GET /: the dashboard page, public, with a Content-Security-Policy that allows nothing but its own files. */
import { describe, expect, it } from "vitest";
import { DASHBOARD_MODULES } from "../../workers/status/dashboard/page";
import { call } from "./support";

describe("GET /", () => {
	it("answers the dashboard page without a token", async () => {
		const res = await call("GET", "/", { token: null });
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
		const html = await res.text();
		expect(html).toMatch(/^<!doctype html>/);
		// The sign-in form is in the page itself: the first paint needs no script.
		expect(html).toContain('<label for="token">API token</label>');
		expect(html).toContain('<input id="token" name="token" type="password"');
		expect(html).toContain('<script type="module" src="/dashboard/app.js"></script>');
		for (const module of DASHBOARD_MODULES) expect(html).toContain(`href="/dashboard/${module}"`);
	});

	it("has a strict Content-Security-Policy: own scripts and API only, no inline code, framing or form posts", async () => {
		const res = await call("GET", "/", { token: null });
		const csp = Object.fromEntries(
			(res.headers.get("content-security-policy") ?? "").split(";").map((d) => {
				const [name = "", ...values] = d.trim().split(/\s+/);
				return [name, values.join(" ")];
			}),
		);
		expect(csp).toMatchObject({
			"default-src": "'none'",
			"script-src": "'self'",
			"style-src": "'self'",
			"connect-src": "'self'",
			"img-src": "'self' blob: data:",
			"form-action": "'none'",
			"frame-ancestors": "'none'",
			"base-uri": "'none'",
			"require-trusted-types-for": "'script'",
		});
		expect(JSON.stringify(csp)).not.toContain("unsafe");
		expect(res.headers.get("x-frame-options")).toBe("DENY");
		expect(res.headers.get("referrer-policy")).toBe("no-referrer");
		// No cookie: the token lives in the tab's sessionStorage only.
		expect(res.headers.get("set-cookie")).toBeNull();
	});

	it("answers HEAD too, and 405 to other methods", async () => {
		expect((await call("HEAD", "/", { token: null })).status).toBe(200);
		const post = await call("POST", "/", { token: null });
		expect(post.status).toBe(405);
		expect(post.headers.get("allow")).toBe("GET, HEAD");
	});
});
