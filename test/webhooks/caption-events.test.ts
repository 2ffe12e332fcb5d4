/**
 * `caption.updated`: a person's caption reaches the subscriptions that list the type (and whose
 * prefix holds the key), signed as every delivery, through the real queues; others get nothing.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { CaptionWebhookPayload } from "../../shared/webhooks/schema";
import { call } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { deliveriesOf, hook, subscribe } from "./support";

describe("caption.updated", () => {
	it("goes to a subscription that lists it, with the caption as written; not to one that does not", async () => {
		const prefix = uniqueKey("caption-events/");
		const key = `${prefix}cat.jpg`;
		const etag = (await env.BUCKET.put(key, await fixture("small.jpg")))?.etag;
		const listening = hook("caption-updated");
		const other = hook("jobs-only");
		const captions = await subscribe({ url: listening.url, events: ["caption.updated"], prefix });
		const jobs = await subscribe({ url: other.url, events: ["job.succeeded"], prefix });
		const elsewhere = await subscribe({ url: other.url, events: ["caption.updated"], prefix: uniqueKey("other/") });

		const res = await call("PUT", `/v1/captions/${encodeURIComponent(key)}`, { json: { text: "A cat, by hand." } });
		expect(res.status).toBe(200);

		const [received, ...more] = await listening.waitFor(1);
		expect(more).toEqual([]);
		const payload = CaptionWebhookPayload.parse(
			new Webhook(captions.secret).verify(received?.body ?? "", received?.headers ?? {}),
		);
		expect(payload).toMatchObject({
			type: "caption.updated",
			data: { key, etag, text: "A cat, by hand.", source: "human", job_id: null, model: null, versions: 1 },
		});
		const [delivery] = await deliveriesOf(captions.id);
		expect(delivery).toMatchObject({
			event_type: "caption.updated",
			job_id: null,
			batch_id: null,
			status: "succeeded",
		});
		expect(await deliveriesOf(jobs.id)).toEqual([]);
		expect(await deliveriesOf(elsewhere.id)).toEqual([]);
		expect(await other.received()).toEqual([]);
	});
});
