/** GET /v1/images/{key}: the stored object, its preview through the Images binding, ETags and scope. */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { inspectImage } from "../../shared/image/sniff";
import status from "../../workers/status/index";
import { fixture, uniqueKey } from "../support/fixtures";
import { imagesFailing } from "../support/images";
import { call, createKey, errorOf, invalidFields, uploadViaApi } from "./support";

const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

describe("GET /v1/images/{key}", () => {
	it("answers the uploaded bytes with their image type, length and ETag", async () => {
		const key = uniqueKey("read/photo.jpg");
		const jpeg = await fixture("wide-2000x1000.jpg");
		await uploadViaApi(key, jpeg);

		const res = await call("GET", `/v1/images/${encodeURIComponent(key)}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("image/jpeg");
		expect(res.headers.get("content-length")).toBe(String(jpeg.length));
		expect(res.headers.get("content-disposition")).toBe("inline; filename*=UTF-8''photo.jpg");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		const object = await env.BUCKET.head(key);
		expect(res.headers.get("etag")).toBe(`"${object?.etag}"`);
		expect(await bytesOf(res)).toEqual(jpeg);
		// Unencoded slashes reach the same object.
		expect((await call("GET", `/v1/images/${key}`)).status).toBe(200);
	});

	it("?width= answers a WebP preview no wider than asked, with an ETag of its own", async () => {
		const key = uniqueKey("read/wide.jpg");
		await uploadViaApi(key, await fixture("wide-2000x1000.jpg"));

		const res = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=200`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("image/webp");
		const preview = inspectImage(await bytesOf(res));
		expect(preview).toMatchObject({ format: "webp", width: 200, height: 100 });
		const object = await env.BUCKET.head(key);
		expect(res.headers.get("etag")).toBe(`W/"${object?.etag}-w200"`);

		// A preview never enlarges: a 64-pixel-wide image stays 64 wide.
		const small = uniqueKey("read/small.png");
		await uploadViaApi(small, await fixture("small.png"));
		const tiny = await call("GET", `/v1/images/${encodeURIComponent(small)}?width=400`);
		expect(inspectImage(await bytesOf(tiny))).toMatchObject({ width: 64, height: 48 });
	});

	it("answers 304 to a current If-None-Match, and the object again once it changed", async () => {
		const key = uniqueKey("read/etag.png");
		await uploadViaApi(key, await fixture("small.png"));
		const first = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=32`);
		const etag = first.headers.get("etag") ?? "";
		await first.arrayBuffer();

		const again = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=32`, {
			headers: { "If-None-Match": etag },
		});
		expect(again.status).toBe(304);
		expect(again.headers.get("etag")).toBe(etag);
		// The preview's tag does not stand for the original, nor for another width.
		const original = await call("GET", `/v1/images/${encodeURIComponent(key)}`, { headers: { "If-None-Match": etag } });
		expect(original.status).toBe(200);
		await original.arrayBuffer();
		const wider = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=48`, {
			headers: { "If-None-Match": etag },
		});
		expect(wider.status).toBe(200);
		await wider.arrayBuffer();

		// A list of tags, as HTTP allows (a cache holding several versions): any current one is a 304.
		const original200 = await call("GET", `/v1/images/${encodeURIComponent(key)}`);
		const originalTag = original200.headers.get("etag") ?? "";
		await original200.arrayBuffer();
		for (const list of [`"stale", ${originalTag}`, `${originalTag}, "stale"`, `W/"stale-w32", ${etag}`]) {
			const path = list.includes("-w32") ? `?width=32` : "";
			const listed = await call("GET", `/v1/images/${encodeURIComponent(key)}${path}`, {
				headers: { "If-None-Match": list },
			});
			expect(listed.status, list).toBe(304);
		}
		const none = await call("GET", `/v1/images/${encodeURIComponent(key)}`, {
			headers: { "If-None-Match": `"stale", "older"` },
		});
		expect(none.status).toBe(200);
		await none.arrayBuffer();

		await uploadViaApi(key, await fixture("small.jpg"));
		const changed = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=32`, {
			headers: { "If-None-Match": etag },
		});
		expect(changed.status).toBe(200);
		expect(changed.headers.get("etag")).not.toBe(etag);
		expect(inspectImage(await bytesOf(changed)).format).toBe("webp");
	});

	it("serves an object that is not an image as an octet-stream attachment, and refuses to preview it", async () => {
		const key = uniqueKey("read/page.html");
		await env.BUCKET.put(key, "<script>alert(1)</script>", { httpMetadata: { contentType: "text/html" } });

		const res = await call("GET", `/v1/images/${encodeURIComponent(key)}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("application/octet-stream");
		expect(res.headers.get("content-disposition")).toBe("attachment; filename*=UTF-8''page.html");
		expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
		expect(new TextDecoder().decode(await bytesOf(res))).toBe("<script>alert(1)</script>");

		const preview = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=100`);
		expect(preview.status).toBe(415);
		expect(await errorOf(preview)).toMatchObject({ code: "unsupported_media_type" });
	});

	it("a preview the Images service fails to make (not the image's fault) is a 503 with Retry-After, not a 415", async () => {
		const key = uniqueKey("read/service-down.jpg");
		await env.BUCKET.put(key, await fixture("small.jpg"), { httpMetadata: { contentType: "image/jpeg" } });
		const request = (width: number) =>
			new Request(`https://status.test/v1/images/${encodeURIComponent(key)}?width=${width}`, {
				headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` },
			});
		for (const code of [9522, 9422, 9432]) {
			const failing = { ...env, IMAGES: imagesFailing(env.IMAGES, code, 1) };
			const res = await status.fetch(request(40), failing, createExecutionContext());
			expect(res.status).toBe(503);
			expect(res.headers.get("retry-after")).toBe("30");
			expect(await errorOf(res)).toMatchObject({ code: "unavailable" });
		}
		const bad = { ...env, IMAGES: imagesFailing(env.IMAGES, 9412, 1) };
		expect((await status.fetch(request(40), bad, createExecutionContext())).status).toBe(415);
	});

	it("needs a token, answers 404 for a missing object and validates width", async () => {
		const key = uniqueKey("read/x.png");
		await uploadViaApi(key, await fixture("small.png"));
		expect((await call("GET", `/v1/images/${encodeURIComponent(key)}`, { token: null })).status).toBe(401);
		const missing = await call("GET", `/v1/images/${encodeURIComponent(uniqueKey("read/none.png"))}`);
		expect(missing.status).toBe(404);
		expect(await errorOf(missing)).toMatchObject({ code: "not_found" });
		for (const width of ["0", "15", "2049", "wide"]) {
			const bad = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=${width}`);
			expect(await invalidFields(bad), width).toEqual(["width"]);
		}
	});

	it("a scoped key reads objects under its prefix; others answer 404 as if they did not exist", async () => {
		const mine = uniqueKey("scoped-read/");
		const other = uniqueKey("elsewhere/");
		await uploadViaApi(`${mine}a.png`, await fixture("small.png"));
		await uploadViaApi(`${other}b.png`, await fixture("small.png"));
		const key = await createKey(mine);

		const ok = await call("GET", `/v1/images/${encodeURIComponent(`${mine}a.png`)}?width=32`, { token: key.token });
		expect(ok.status).toBe(200);
		await ok.arrayBuffer();
		const hidden = await call("GET", `/v1/images/${encodeURIComponent(`${other}b.png`)}`, { token: key.token });
		expect(hidden.status).toBe(404);
		expect(await errorOf(hidden)).toMatchObject({ code: "not_found" });
	});
});
