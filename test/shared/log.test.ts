import { afterEach, describe, expect, it, vi } from "vitest";
import { log, redactUrls } from "../../shared/log";

describe("log lines never carry a URL's query string or credentials", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it.each([
		["https://example.com/hook?token=abc123", "https://example.com/hook?redacted"],
		["http://alice:s3cret@127.0.0.1:9/h?x=1#frag", "http://127.0.0.1:9/h?redacted#frag"],
		[
			"Network error: fetch to https://a.example/x?sig=zz failed",
			"Network error: fetch to https://a.example/x?redacted failed",
		],
		[
			"two: https://a.example/?a=1 and http://b.example/p?b=2",
			"two: https://a.example/?redacted and http://b.example/p?redacted",
		],
		["https://example.com/hook", "https://example.com/hook"],
		["no url here ?q=1", "no url here ?q=1"],
	])("%s → %s", (text, expected) => {
		expect(redactUrls(text)).toBe(expected);
	});

	it("redacts every string field of a line, nested ones too", () => {
		const lines: string[] = [];
		vi.spyOn(console, "warn").mockImplementation((line: string) => {
			lines.push(line);
		});
		log("warn", "webhook_attempt", {
			url: "https://u:pw@hooks.example/cb?api_key=K1",
			error: "The webhook URL https://hooks.example/cb?api_key=K2 is refused",
			nested: { urls: ["https://hooks.example/cb?api_key=K3"] },
			count: 3,
		});
		expect(lines).toHaveLength(1);
		const line = lines[0] ?? "";
		for (const secret of ["K1", "K2", "K3", "pw@"]) expect(line).not.toContain(secret);
		expect(JSON.parse(line)).toEqual({
			level: "warn",
			event: "webhook_attempt",
			url: "https://hooks.example/cb?redacted",
			error: "The webhook URL https://hooks.example/cb?redacted is refused",
			nested: { urls: ["https://hooks.example/cb?redacted"] },
			count: 3,
		});
	});
});
