/**
 * DELIBERATELY NAIVE BASELINE — benchmark only (see "Performance" in README.md).
 *
 * A caption consumer as common tutorials write it, kept so that `npm run bench` can compare the
 * real consumer (workers/consumer) with it on the same workload. Its weaknesses are the point:
 * - messages are processed one after another, so a batch of ten takes ten model latencies;
 * - the whole object is read and spread into a number array (`[...new Uint8Array(buf)]`), so
 *   memory grows with the upload (about 8 bytes of JS array per image byte, plus copies);
 * - every column change is its own D1 statement (up to six round trips per image);
 * - no downscaling, no validation, no fallback chain, no leases, no backoff.
 * It uses the same bucket, jobs table and model emulator (shared/models/backend.ts) as the real
 * consumer, so only the consumer's code differs between the two runs.
 */
import { modelBackend } from "../../shared/models/backend";

interface Notification {
	bucket: string;
	object: { key: string; eTag: string; size: number };
	eventTime: string;
}

const MODEL = "@cf/unum/uform-gen2-qwen-500m";

export default {
	async queue(batch, env) {
		const ai = modelBackend(env);
		for (const message of batch.messages) {
			const { bucket, object } = message.body as Notification;
			try {
				let job = await env.DB.prepare(
					"SELECT id FROM jobs WHERE bucket = ? AND key = ? AND etag = ? AND source = 'notification'",
				)
					.bind(bucket, object.key, object.eTag)
					.first<{ id: string }>();
				if (!job) {
					const id = `job_naive_${crypto.randomUUID()}`;
					await env.DB.prepare(
						"INSERT INTO jobs (id, source, bucket, key, etag, size, status, created_at, updated_at) VALUES (?, 'notification', ?, ?, ?, ?, 'queued', ?, ?)",
					)
						.bind(id, bucket, object.key, object.eTag, object.size, Date.now(), Date.now())
						.run();
					job = { id };
				}
				await env.DB.prepare(
					"UPDATE jobs SET status = 'processing', started_at = ?, attempts = attempts + 1 WHERE id = ?",
				)
					.bind(Date.now(), job.id)
					.run();

				const file = await env.BUCKET.get(object.key);
				if (!file) throw new Error(`${object.key} not found`);
				const buf = await file.arrayBuffer();
				const started = Date.now();
				const result = (await ai.run(MODEL, {
					image: [...new Uint8Array(buf)],
					prompt: "Generate a caption for this image",
					max_tokens: 512,
				})) as { description: string };
				const inferenceMs = Date.now() - started;

				await env.DB.prepare("UPDATE jobs SET caption = ? WHERE id = ?").bind(result.description, job.id).run();
				await env.DB.prepare("UPDATE jobs SET model = ?, inference_ms = ? WHERE id = ?")
					.bind(MODEL, inferenceMs, job.id)
					.run();
				await env.DB.prepare(
					"UPDATE jobs SET status = 'succeeded', completed_at = ?1, updated_at = ?1, total_ms = ?1 - created_at WHERE id = ?2",
				)
					.bind(Date.now(), job.id)
					.run();
				message.ack();
			} catch (err) {
				console.error("caption failed", err);
				message.retry();
			}
		}
	},
} satisfies ExportedHandler<NaiveConsumerEnv>;
