import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkWebhookUrl } from "../../shared/webhooks/ssrf";
import status from "../../workers/status/index";
import { ADMIN, call, errorOf, uploadViaApi } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";

const REFUSED_EVERYWHERE = [
	"http://10.0.0.1/hook",
	"https://10.255.255.255/hook",
	"https://172.16.0.5/hook",
	"https://172.31.255.1/hook",
	"https://192.168.1.20/hook",
	"https://100.64.0.1/hook",
	"https://169.254.169.254/latest/meta-data/",
	"https://169.254.0.1/",
	"https://0.0.0.0/",
	"https://224.0.0.1/",
	"https://255.255.255.255/",
	"https://[fd00::1]/",
	"https://[fc00::abcd]/",
	"https://[fe80::1]/",
	"https://[::]/",
	"https://[::ffff:10.0.0.1]/",
	"https://[::ffff:169.254.169.254]/",
	"https://[64:ff9b::a00:1]/",
	"https://[ff02::1]/",
	// NAT64 (well-known and local-use prefixes), 6to4 and Teredo reach IPv4 through a relay.
	"https://[64:ff9b::8.8.8.8]/",
	"https://[64:ff9b:1::a00:1]/",
	"https://[64:ff9b:1:ffff::7f00:1]/",
	"https://[2002:7f00:1::]/",
	"https://[2002:a00:1::1]/",
	"https://[2002:808:808::1]/",
	"https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
	"https://[2001::5ef5:79fd:0:59d:a0e5:ba1]/",
	// IPv4-translated (SIIT, ::ffff:0:0/96), whatever it embeds, and the 6to4 relay anycast range.
	"https://[::ffff:0:a00:1]/",
	"https://[::ffff:0:808:808]/",
	"https://[::ffff:0:7f00:1]/",
	"https://192.88.99.1/hook",
	"https://192.88.99.255/hook",
	// localhost.localdomain (the /etc/hosts name of loopback on many systems) and its domain.
	"https://localhost.localdomain/hook",
	"https://printer.localdomain/hook",
	// Trailing dots: one or several, on names and on addresses.
	"https://localhost../",
	"https://localhost.../hook",
	"https://example.com./hook",
	"https://example.com../hook",
	"https://10.0.0.1./hook",
	"https://10.0.0.1../hook",
	// Credentials in the URL.
	"https://user:pass@example.com/hook",
	"https://user@example.com/hook",
	"https://:secret@example.com/hook",
	"https://printer.local/",
	"https://metadata.google.internal/computeMetadata/v1/",
	"https://intranet/",
	"https://app.localhost/",
	"ftp://example.com/hook",
	"file:///etc/passwd",
	"not a url",
	"/relative/path",
];

const LOOPBACK = [
	"http://127.0.0.1/hook",
	"http://127.0.0.1:8787/hook",
	"http://localhost/hook",
	"http://localhost:3000/hook",
	"http://[::1]:9000/hook",
	"https://127.0.0.1/hook",
];

// Other spellings of 127.0.0.1 and ::1 that a naive string check lets through.
const LOOPBACK_IN_DISGUISE = [
	"http://2130706433/hook",
	"http://0x7f000001/hook",
	"http://0x7f.0.0.1/hook",
	"http://0177.0.0.1/hook",
	"http://127.1/hook",
	"http://127.0.1/hook",
	"http://[::ffff:127.0.0.1]/hook",
	"http://[0:0:0:0:0:0:0:1]/hook",
	"http://LOCALHOST./hook",
];

const PUBLIC = ["https://example.com/hooks/captions", "https://hooks.example.org:8443/x?y=1", "https://8.8.8.8/hook"];

describe("the SSRF check in production", () => {
	it.each([...REFUSED_EVERYWHERE, ...LOOPBACK, ...LOOPBACK_IN_DISGUISE])("refuses %s", (url) => {
		const verdict = checkWebhookUrl(url, "production");
		expect(verdict.ok).toBe(false);
		if (!verdict.ok) expect(verdict.reason.length).toBeGreaterThan(10);
	});

	it.each(LOOPBACK_IN_DISGUISE.map((url) => url.replace("http:", "https:")))(
		"sees through %s: it is loopback",
		(url) => {
			const verdict = checkWebhookUrl(url, "production");
			expect(verdict).toMatchObject({
				ok: false,
				reason: expect.stringMatching(/is (a loopback|an IPv4-mapped|a local)/),
			});
		},
	);

	it.each(PUBLIC)("allows %s", (url) => {
		expect(checkWebhookUrl(url, "production")).toEqual({ ok: true, url: new URL(url).href });
	});

	it.each(["http://example.com/hook", "http://8.8.8.8/hook"])("refuses plain http to a public host: %s", (url) => {
		const verdict = checkWebhookUrl(url, "production");
		expect(verdict).toEqual({ ok: false, code: "unsafe_url", reason: "only https URLs are allowed" });
	});

	it("names the IPv4 address a 6to4, Teredo or NAT64 address embeds", () => {
		expect(checkWebhookUrl("https://[2002:a00:1::1]/", "production")).toMatchObject({
			ok: false,
			reason: "the host [2002:a00:1::1] is a 6to4 address (embeds 10.0.0.1)",
		});
		// Teredo keeps the client's address inverted: 0x3f57 0xfe29 is 192.168.1.214 (0xc0a8 0x01d6).
		expect(checkWebhookUrl("https://[2001:0:4136:e378:8000:63bf:3f57:fe29]/", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("a Teredo address (embeds 192.168.1.214)"),
		});
		expect(checkWebhookUrl("https://[64:ff9b::7f00:1]/", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("a NAT64 address (embeds 127.0.0.1)"),
		});
		expect(checkWebhookUrl("https://[::ffff:0:a9fe:a9fe]/", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("an IPv4-translated (SIIT) address (embeds 169.254.169.254)"),
		});
	});

	it("refuses host names ending in dots, and says why", () => {
		expect(checkWebhookUrl("https://localhost../", "production")).toMatchObject({
			ok: false,
			reason: "the host localhost.. is a local host name",
		});
		expect(checkWebhookUrl("https://example.com../", "production")).toMatchObject({
			ok: false,
			reason: "the host example.com.. is a host name ending in a dot",
		});
		// "127.0.0.1." is dotted-decimal IPv4 to the URL parser: it is 127.0.0.1, a loopback address.
		expect(checkWebhookUrl("https://127.0.0.1./", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("a loopback address"),
		});
		expect(checkWebhookUrl("http://localhost../hook", "local").ok).toBe(false);
		expect(checkWebhookUrl("http://127.0.0.1../hook", "local").ok).toBe(false);
	});

	it("refuses credentials in the URL without repeating them", () => {
		expect(checkWebhookUrl("https://alice:s3cret@example.com/hook", "production")).toEqual({
			ok: false,
			code: "unsafe_url",
			reason: "it carries credentials (user:password@)",
		});
	});

	it("names what is wrong with a disguised loopback address", () => {
		expect(checkWebhookUrl("http://0x7f000001/", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("127.0.0.1 is a loopback address"),
		});
		expect(checkWebhookUrl("https://[::ffff:169.254.169.254]/", "production")).toMatchObject({
			ok: false,
			reason: expect.stringContaining("IPv4-mapped"),
		});
	});
});

describe("the SSRF check in local development", () => {
	it.each(LOOPBACK)("allows %s", (url) => {
		expect(checkWebhookUrl(url, "local").ok).toBe(true);
	});

	it.each([...PUBLIC, "http://example.com/hook"])("allows public hosts, over http too: %s", (url) => {
		expect(checkWebhookUrl(url, "local").ok).toBe(true);
	});

	it.each(REFUSED_EVERYWHERE)("still refuses %s", (url) => {
		expect(checkWebhookUrl(url, "local").ok).toBe(false);
	});
});

/** The status Worker with DEPLOY_MODE overridden, as a production deployment would run it. */
async function callAs(mode: "production" | "local", method: string, path: string, init: RequestInit = {}) {
	const headers = new Headers(init.headers);
	headers.set("authorization", `Bearer ${ADMIN}`);
	const request = new Request(`https://status.test${path}`, { ...init, method, headers });
	return status.fetch(request, { ...env, DEPLOY_MODE: mode }, createExecutionContext());
}

describe("URLs entering through the API", () => {
	it.each(["http://127.0.0.1:9/hook", "http://2130706433/hook", "https://169.254.169.254/", "https://[::1]/"])(
		"POST /v1/webhooks refuses %s in production with 400 unsafe_url",
		async (url) => {
			const res = await callAs("production", "POST", "/v1/webhooks", {
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ url, events: ["job.succeeded"], prefix: uniqueKey("ssrf/") }),
			});
			expect(res.status).toBe(400);
			const error = await errorOf(res);
			expect(error.code).toBe("unsafe_url");
			expect(error.message).toContain("is refused");
			expect(error.details).toEqual([{ field: "url", in: "body", message: error.message }]);
		},
	);

	it("POST /v1/webhooks refuses user:pass@ with 400 unsafe_url, and the message does not echo the password", async () => {
		const res = await call("POST", "/v1/webhooks", {
			json: { url: "http://alice:s3cret@127.0.0.1:9/hook", events: ["job.succeeded"], prefix: uniqueKey("ssrf/") },
		});
		expect(res.status).toBe(400);
		const error = await errorOf(res);
		expect(error.code).toBe("unsafe_url");
		expect(error.message).toContain("credentials");
		expect(error.message).not.toContain("s3cret");
	});

	it("POST /v1/jobs and uploads refuse a callback URL with credentials", async () => {
		const key = uniqueKey("ssrf/creds.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		const job = await call("POST", "/v1/jobs", { json: { key, callback_url: "http://u:p@localhost:9/hook" } });
		expect(job.status).toBe(400);
		expect((await errorOf(job)).code).toBe("unsafe_url");
		const upload = await call("PUT", `/v1/images/${uniqueKey("ssrf/creds2.png")}`, {
			body: await fixture("small.png"),
			headers: { "X-Callback-Url": "http://u:p@localhost:9/hook" },
		});
		expect(upload.status).toBe(400);
		expect((await errorOf(upload)).code).toBe("unsafe_url");
	});

	it("POST /v1/webhooks accepts a public https URL in production", async () => {
		const res = await callAs("production", "POST", "/v1/webhooks", {
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ url: "https://example.com/hook", events: ["job.failed"], prefix: uniqueKey("ssrf/") }),
		});
		expect(res.status).toBe(201);
	});

	it("POST /v1/webhooks accepts http://127.0.0.1 and refuses a private address in local mode", async () => {
		const ok = await call("POST", "/v1/webhooks", {
			json: { url: "http://127.0.0.1:9999/hook", events: ["job.succeeded"], prefix: uniqueKey("ssrf/") },
		});
		expect(ok.status).toBe(201);
		const refused = await call("POST", "/v1/webhooks", {
			json: { url: "http://192.168.0.10/hook", events: ["job.succeeded"], prefix: uniqueKey("ssrf/") },
		});
		expect(refused.status).toBe(400);
		expect((await errorOf(refused)).code).toBe("unsafe_url");
	});

	it("an upload's X-Callback-Url to the metadata address is refused with 400 and nothing is stored", async () => {
		const key = uniqueKey("ssrf/cb.png");
		const res = await call("PUT", `/v1/images/${key}`, {
			body: await fixture("small.png"),
			headers: { "X-Callback-Url": "http://169.254.169.254/latest/meta-data/" },
		});
		expect(res.status).toBe(400);
		const error = await errorOf(res);
		expect(error.code).toBe("unsafe_url");
		expect(error.details).toEqual([{ field: "X-Callback-Url", in: "header", message: error.message }]);
		expect(await env.BUCKET.head(key)).toBeNull();
	});

	it("an upload's X-Callback-Url on loopback is accepted in local mode", async () => {
		const job = await uploadViaApi(uniqueKey("ssrf/ok.png"), await fixture("small.png"), {
			"X-Callback-Url": "http://localhost:9/hook",
		});
		expect(job.status).toBe("queued");
	});

	it("POST /v1/jobs refuses a callback_url in a private range", async () => {
		const key = uniqueKey("ssrf/again.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		const res = await call("POST", "/v1/jobs", { json: { key, callback_url: "http://10.1.2.3/hook" } });
		expect(res.status).toBe(400);
		const error = await errorOf(res);
		expect(error.code).toBe("unsafe_url");
		expect(error.details).toEqual([{ field: "callback_url", in: "body", message: error.message }]);
	});
});
