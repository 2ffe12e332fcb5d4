/**
 * An event keeps no second copy of its job: every attempt rebuilds the body from the job row (which
 * no longer changes once terminal) and the event's time, byte for byte the same on a retry; an
 * event dispatched with a stored payload (before bodies were rebuilt) still sends what it stored.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { onlyJob, runConsumer } from "../support/queue";
import { dispatchOne, finishedJob, hook, runWebhooks, subscribe, verified } from "./support";

const PayloadColumn = z.object({ payload: z.string().nullable() });
const storedPayload = (jobId: string) =>
	env.DB.prepare(`SELECT payload FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
		.bind(jobId)
		.first()
		.then((row) => PayloadColumn.parse(row).payload);

describe("webhook payloads", () => {
	it("are rebuilt from the job at each attempt, the same bytes, and not stored with the event", async () => {
		const prefix = uniqueKey("whpayload/");
		const receiver = hook("payload");
		await receiver.script([{ status: 500 }]);
		const sub = await subscribe({ url: receiver.url, prefix });
		const key = `${prefix}img.png`;
		await runConsumer([await upload(key, await fixture("small.png"))]);
		const job = await onlyJob(key);

		const [first, second] = await receiver.waitFor(2);
		if (!first || !second) throw new Error("two attempts expected");
		expect(second.body).toBe(first.body);
		expect(verified(sub.secret, first)).toMatchObject({ type: "job.succeeded", data: { id: job.id, key } });
		expect(await storedPayload(job.id)).toBeNull();
	});

	it("an event dispatched with its payload stored sends the stored body", async () => {
		const prefix = uniqueKey("whlegacy/");
		const receiver = hook("legacy");
		const sub = await subscribe({ url: receiver.url, prefix });
		const { jobId, eventId } = await finishedJob(`${prefix}img.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		const legacy = JSON.stringify({
			type: "job.succeeded",
			timestamp: new Date().toISOString(),
			data: { id: jobId, note: "stored before bodies were rebuilt" },
		});
		await env.DB.prepare("UPDATE webhook_events SET payload = ?2 WHERE id = ?1").bind(eventId, legacy).run();
		await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);
		const [request] = await receiver.waitFor(1);
		expect(request?.body).toBe(legacy);
		expect(request && new Webhook(sub.secret).verify(request.body, request.headers)).toMatchObject({
			data: { id: jobId },
		});
	});
});
