/**
 * The client address that failed authentication counts against (auth/failure-limit.ts). On
 * Cloudflare every request carries `CF-Connecting-IP`, which the edge sets itself; `wrangler dev`
 * (miniflare) sets it from the socket when the client did not send one. An IPv6 client is counted
 * by its /64, since one subscriber usually holds a whole /64 and could otherwise change address at
 * will. Without the header (the Worker called directly, as the test pool does) every request
 * shares the one address `unknown`.
 */

/** Where requests without `CF-Connecting-IP` count. */
export const UNKNOWN_ADDRESS = "unknown";

export function clientAddress(headers: Headers): string {
	const address = headers.get("cf-connecting-ip")?.trim().toLowerCase();
	if (!address) return UNKNOWN_ADDRESS;
	if (!address.includes(":")) return address;
	// An IPv4-mapped address (`::ffff:192.0.2.1`) is its IPv4 client, not one /64 shared by all of them.
	const mapped = address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
	return mapped?.[1] ?? ipv6Network(address);
}

/** The /64 an IPv6 address is in, written as its first four groups (leading zeros dropped). */
function ipv6Network(address: string): string {
	const [head = "", tail] = address.split("::", 2);
	const groups = (part: string) => (part === "" ? [] : part.split(":"));
	const left = groups(head);
	// `::` stands for as many zero groups as the eight need; an embedded IPv4 tail is in the last 64 bits anyway.
	const full =
		tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - groups(tail).length)).fill("0")];
	const network = [...full, "0", "0", "0", "0"].slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16));
	return `${network.join(":")}::/64`;
}
