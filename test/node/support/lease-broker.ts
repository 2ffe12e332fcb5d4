/**
 * A loopback server for a global setup to lend the test files something costly that it makes only
 * if asked: `POST <route>` makes it when nobody holds it (`make()`), counts a lease and answers what
 * was made as JSON (500 with the error if making it failed); `POST <route>/release` ends a lease.
 * With `lending`, once the last lease has ended and nobody has asked again for `idleMs`, `unmake()`
 * stops it and the next ask makes it afresh (the shared stack); without, it stays until `close()`
 * (the dry runs, made once for every file). A run of files that never ask makes none.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface LeaseBroker {
	url: string;
	/** Stops answering and unmakes whatever is made, once it has settled (the global teardown). */
	close(): Promise<void>;
}

export interface Lending<T> {
	unmake(made: T): Promise<void>;
	idleMs: number;
}

export async function startLeaseBroker<T>(
	route: string,
	make: () => Promise<T>,
	lending?: Lending<T>,
): Promise<LeaseBroker> {
	let made: Promise<T> | undefined;
	let leases = 0;
	let idle: NodeJS.Timeout | undefined;
	/** The unmaking under way, if any: a new one is made only after it. */
	let unmaking: Promise<void> = Promise.resolve();

	const unmakeNow = () => {
		const current = made;
		made = undefined;
		// Settled (and unmade, when lent) before a new one is made or the teardown goes on.
		if (current)
			unmaking = unmaking.then(() =>
				current.then(
					(value) => lending?.unmake(value),
					() => undefined,
				),
			);
		return unmaking;
	};
	const server = createServer((req, res) => {
		if (req.method === "POST" && req.url === route) {
			clearTimeout(idle);
			leases++;
			made ??= unmaking.then(make);
			made.then(
				(value) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value)),
				(err: unknown) => res.writeHead(500).end(err instanceof Error ? (err.stack ?? err.message) : String(err)),
			);
		} else if (req.method === "POST" && req.url === `${route}/release`) {
			leases = Math.max(0, leases - 1);
			if (leases === 0 && lending) {
				clearTimeout(idle);
				idle = setTimeout(unmakeNow, lending.idleMs);
			}
			res.writeHead(204).end();
		} else {
			res.writeHead(404).end();
		}
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		async close() {
			clearTimeout(idle);
			server.close();
			server.closeAllConnections();
			await unmakeNow();
		},
	};
}
