/**
 * `r2c webhooks listen`: like `stripe listen`. Starts a receiver on 127.0.0.1, subscribes it
 * (`POST /v1/webhooks`), verifies every delivery with `standardwebhooks` and the subscription's
 * secret, prints each event, optionally forwards it (same body and signature headers) to
 * `--forward-to`, and deletes the subscription on Ctrl-C. The service only calls loopback URLs
 * in local development; against a deployment, pass `--public-url` (a tunnel to `--port`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { type CreatedWebhookSubscription, ok, type WebhookEventType, type WebhookPayload } from "../client/index.ts";
import type { Context } from "./context.ts";
import { CliError, describe } from "./errors.ts";
import { jobSummary } from "./jobs.ts";

export interface ListenOptions {
	forwardTo?: string;
	events: WebhookEventType[];
	prefix?: string;
	port: number;
	publicUrl?: string;
}

const SIGNATURE_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;

async function readBody(req: IncomingMessage): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString("utf8");
}

/** POSTs the delivery on as it came; the status the forward target answered, or why it could not. */
async function forward(url: string, body: string, headers: Record<string, string>): Promise<number | string> {
	try {
		const res = await fetch(url, {
			method: "POST",
			body,
			headers: { ...headers, "content-type": "application/json" },
			signal: AbortSignal.timeout(10_000),
		});
		await res.body?.cancel();
		return res.status;
	} catch (err) {
		const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
		return cause;
	}
}

function eventLine(event: WebhookPayload): string {
	if (event.type === "caption.updated") {
		const { data } = event;
		return `${event.timestamp}  ${event.type.padEnd(15)}  ${data.key}  ${data.source}  ${data.text.slice(0, 100)}`;
	}
	const data = event.data;
	if ("key" in data)
		return `${event.timestamp}  ${event.type.padEnd(15)}  ${data.id}  ${data.key}  ${jobSummary(data, 100)}`;
	const { counts } = data;
	const done = `${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.skipped} skipped, ${counts.missing} missing, ${counts.cancelled} cancelled`;
	return `${event.timestamp}  ${event.type.padEnd(15)}  ${data.id}  ${data.prefix ?? `${data.key_count} keys`}  ${done}`;
}

export async function listen(ctx: Context, options: ListenOptions): Promise<number> {
	if (options.forwardTo !== undefined && !URL.canParse(options.forwardTo)) {
		throw new CliError(`--forward-to ${options.forwardTo} is not a URL`);
	}
	let subscription: CreatedWebhookSubscription | null = null;
	const out = (line: string) => process.stdout.write(`${line}\n`);

	const handle = async (req: IncomingMessage, res: ServerResponse) => {
		const body = await readBody(req);
		if (req.method !== "POST" || subscription === null) {
			res.writeHead(404).end();
			return;
		}
		const headers = Object.fromEntries(SIGNATURE_HEADERS.map((name) => [name, String(req.headers[name] ?? "")]));
		let event: WebhookPayload;
		try {
			event = new Webhook(subscription.secret).verify(body, headers) as WebhookPayload;
		} catch (err) {
			const reason = err instanceof Error ? err.message : String(err);
			process.stderr.write(`r2c: rejected a delivery that failed verification (${reason})\n`);
			res.writeHead(400).end();
			return;
		}
		const forwarded = options.forwardTo === undefined ? undefined : await forward(options.forwardTo, body, headers);
		if (ctx.json) {
			out(JSON.stringify({ webhook_id: headers["webhook-id"], verified: true, forwarded, event }));
		} else {
			out(eventLine(event));
			if (forwarded !== undefined) out(`  → ${options.forwardTo} ${forwarded}`);
		}
		// The service retries what the forward target did not accept, as it would deliver to it directly.
		const status = forwarded === undefined ? 204 : typeof forwarded === "number" ? forwarded : 502;
		res.writeHead(status).end();
	};

	const server = createServer((req, res) => {
		handle(req, res).catch(() => res.writeHead(500).end());
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", (err) => reject(new CliError(`cannot listen on 127.0.0.1:${options.port}: ${err.message}`)));
		server.listen(options.port, "127.0.0.1", resolve);
	});
	const { port } = server.address() as AddressInfo;
	const url = options.publicUrl ?? `http://127.0.0.1:${port}/`;
	const close = () => new Promise<void>((resolve) => server.close(() => resolve()));

	try {
		const body = { url, events: options.events, ...(options.prefix !== undefined ? { prefix: options.prefix } : {}) };
		subscription = await ok(ctx.api.POST("/v1/webhooks", { body }));
	} catch (err) {
		await close();
		throw err;
	}
	const id = subscription.id;
	process.stderr.write(
		`Ready: subscription ${id} sends ${options.events.join(", ")}${options.prefix ? ` under ${options.prefix}` : ""} ` +
			`to ${url}${options.forwardTo ? `, forwarded to ${options.forwardTo}` : ""}. Ctrl-C stops and removes it.\n`,
	);
	// Like `stripe listen`: the forward target verifies with this subscription's secret.
	if (options.forwardTo) process.stderr.write(`Signing secret for ${options.forwardTo}: ${subscription.secret}\n`);

	const signal = await new Promise<NodeJS.Signals>((resolve) => {
		for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => resolve(s));
	});
	server.closeAllConnections();
	await close();
	try {
		await ok(ctx.api.DELETE("/v1/webhooks/{id}", { params: { path: { id } } }));
		process.stderr.write(`Stopped (${signal}); removed subscription ${id}.\n`);
		return 0;
	} catch (err) {
		const { message } = describe(err, ctx.apiUrl);
		process.stderr.write(`r2c: could not remove subscription ${id}: ${message}\n`);
		return 1;
	}
}
