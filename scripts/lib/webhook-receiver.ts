/**
 * A webhook receiver for the demo, the restart test and the soak, on 127.0.0.1: it verifies every
 * delivery with the `standardwebhooks` library, as a real receiver would, and keeps what arrived.
 * It can be told to fail a share of deliveries with 500 (the soak), as a flaky receiver does.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Delivery {
	/** Which target the delivery came to: a subscription or a per-object callback URL. */
	target: string;
	webhookId: string;
	type: string;
	key: string;
	jobId: string;
	verified: boolean;
	/** What the receiver answered: 204, 400 (not verified) or 500 (a failure it was told to play). */
	answered: number;
	error?: string;
}

export interface ReceiverOptions {
	/** Share of verified deliveries (0 to 1) answered with 500 at random. */
	failureRate?: number;
}

function readBody(req: IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		let body = "";
		req.setEncoding("utf8");
		req.on("data", (chunk: string) => {
			body += chunk;
		});
		req.on("end", () => resolve(body));
		req.on("error", reject);
	});
}

const header = (req: IncomingMessage, name: string) => String(req.headers[name] ?? "");

/**
 * Starts the receiver. `secrets` maps a path (`/subscription`, `/callback`) to the secret that
 * signs deliveries to it; `onDelivery` is told of each one.
 */
export async function startReceiver(
	secrets: Map<string, string>,
	onDelivery: (d: Delivery) => void,
	options: ReceiverOptions = {},
) {
	const server = createServer(async (req, res) => {
		const path = req.url ?? "/";
		const secret = secrets.get(path);
		const body = await readBody(req);
		if (req.method !== "POST" || secret === undefined) {
			res.writeHead(404).end();
			return;
		}
		const headers = {
			"webhook-id": header(req, "webhook-id"),
			"webhook-timestamp": header(req, "webhook-timestamp"),
			"webhook-signature": header(req, "webhook-signature"),
		};
		let delivery: Omit<Delivery, "answered">;
		try {
			const event = new Webhook(secret).verify(body, headers) as {
				type: string;
				data: { id: string; key: string };
			};
			delivery = {
				target: path.slice(1),
				webhookId: headers["webhook-id"],
				type: event.type,
				key: event.data.key,
				jobId: event.data.id,
				verified: true,
			};
		} catch (err) {
			delivery = {
				target: path.slice(1),
				webhookId: headers["webhook-id"],
				type: "?",
				key: "?",
				jobId: "?",
				verified: false,
				error: err instanceof Error ? err.message : String(err),
			};
		}
		// A receiver that cannot verify answers 4xx: the sender must not treat it as delivered.
		const fails = delivery.verified && Math.random() < (options.failureRate ?? 0);
		const answered = !delivery.verified ? 400 : fails ? 500 : 204;
		res.writeHead(answered).end();
		onDelivery({ ...delivery, answered });
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: (path: string) => `http://127.0.0.1:${port}${path}`,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
