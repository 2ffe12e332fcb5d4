/**
 * A loopback server for a global setup to hand the test files something costly that it makes once
 * and only if asked: `POST <route>` makes it the first time (`make()`), and every ask gets the same
 * answer as JSON (500 with the error if making it failed). A run of files that never ask makes none.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface OnceBroker<T> {
	url: string;
	/** What was made, or is being made; undefined while nobody has asked. */
	made(): Promise<T> | undefined;
	close(): void;
}

export async function startOnceBroker<T>(route: string, make: () => Promise<T>): Promise<OnceBroker<T>> {
	let made: Promise<T> | undefined;
	const server = createServer((req, res) => {
		if (req.method !== "POST" || req.url !== route) {
			res.writeHead(404).end();
			return;
		}
		made ??= make();
		made.then(
			(value) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value)),
			(err: unknown) => res.writeHead(500).end(err instanceof Error ? (err.stack ?? err.message) : String(err)),
		);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		made: () => made,
		close() {
			server.close();
			server.closeAllConnections();
		},
	};
}
