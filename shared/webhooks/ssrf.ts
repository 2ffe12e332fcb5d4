/**
 * Which URLs webhooks may be sent to (SSRF guard, docs/api.md). In production: only `https` to public
 * hosts; loopback, private, link-local, CGNAT, metadata, multicast and reserved addresses (IPv4
 * and IPv6, including IPv4-mapped and IPv4-translated IPv6, NAT64, 6to4 and its relay anycast
 * range, and Teredo, which reach IPv4 through a relay), local names (localhost, *.localdomain, …), host names ending in a dot, and URLs carrying credentials (`user:pass@`) are
 * refused. In local development
 * (DEPLOY_MODE "local") `http` is allowed and so are loopback hosts (127.0.0.1, localhost, [::1]).
 *
 * The check is on the URL as the WHATWG parser normalises it, which is also what fetch() uses: a
 * decimal, hex, octal or short IPv4 host (2130706433, 0x7f000001, 0177.0.0.1, 127.1) is already
 * the dotted 127.0.0.1 there, so it cannot slip past. Host names are not resolved (Workers has no
 * resolver); names that are local by definition are refused. A public name whose DNS answer is a
 * private address still passes this check: what stops it is the platform, whose fetch() leaves from
 * Cloudflare's network to the public Internet and reaches a private network only through a Workers
 * VPC binding (developers.cloudflare.com/workers-vpc/), which this service does not have.
 */
import { redactUrls } from "../log";

export type DeployMode = "local" | "production";

export type UrlVerdict = { ok: true; url: string } | { ok: false; code: "unsafe_url"; reason: string };

/** IPv4 ranges (first address, prefix length) that are not public unicast. */
const BLOCKED_V4: [string, number, string][] = [
	["0.0.0.0", 8, "a 'this network' address"],
	["10.0.0.0", 8, "a private address"],
	["100.64.0.0", 10, "a carrier-grade NAT address"],
	["127.0.0.0", 8, "a loopback address"],
	["169.254.0.0", 16, "a link-local (cloud metadata) address"],
	["172.16.0.0", 12, "a private address"],
	["192.0.0.0", 24, "an IETF protocol address"],
	["192.0.2.0", 24, "a documentation address"],
	["192.88.99.0", 24, "a 6to4 relay anycast address"],
	["192.168.0.0", 16, "a private address"],
	["198.18.0.0", 15, "a benchmarking address"],
	["198.51.100.0", 24, "a documentation address"],
	["203.0.113.0", 24, "a documentation address"],
	["224.0.0.0", 4, "a multicast address"],
	["240.0.0.0", 4, "a reserved address"],
];

const LOCAL_NAME_SUFFIXES = [".localhost", ".localdomain", ".local", ".internal", ".home.arpa", ".lan"];

function v4ToNumber(host: string): number | null {
	const parts = host.split(".");
	if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
	return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function v4Problem(address: number): string | null {
	for (const [first, bits, what] of BLOCKED_V4) {
		const base = v4ToNumber(first) ?? 0;
		const size = 2 ** (32 - bits);
		if (address >= base && address < base + size) return what;
	}
	return null;
}

/**
 * The eight 16-bit groups of an IPv6 address (without brackets), or null if it is not one. The
 * WHATWG parser has already written any dotted IPv4 tail in hex, so only hex groups are accepted.
 */
function v6Groups(host: string): number[] | null {
	const halves = host.split("::");
	if (halves.length > 2) return null;
	const parse = (s: string) =>
		s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : Number.NaN));
	const head = parse(halves[0] ?? "");
	const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
	const fill = 8 - head.length - rest.length;
	if (halves.length === 2 && fill < 1) return null;
	const groups = halves.length === 2 ? [...head, ...new Array<number>(fill).fill(0), ...rest] : head;
	if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return null;
	return groups;
}

function v6Problem(groups: number[]): string | null {
	const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
	const embedded = g6 * 65536 + g7;
	if (groups.every((g) => g === 0)) return "the unspecified address";
	if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0 && g6 === 0 && g7 === 1) {
		return "a loopback address";
	}
	// IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) reach IPv4.
	if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || g5 === 0)) {
		return `an IPv4-mapped address (${v4Problem(embedded) ?? "IPv4 must be written as IPv4"})`;
	}
	// IPv4-translated (::ffff:0:a.b.c.d, ::ffff:0:0:0/96, SIIT, RFC 7915) reaches IPv4 through a translator.
	if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) {
		return `an IPv4-translated (SIIT) address (embeds ${v4Text(embedded)})`;
	}
	// Translation and tunnelling prefixes reach an IPv4 address chosen by whoever wrote the URL,
	// through a gateway or relay on the way: refused whatever they embed (a webhook never needs them).
	// NAT64: the well-known 64:ff9b::/96 and the local-use 64:ff9b:1::/48 (RFC 6052, RFC 8215).
	if (g0 === 0x64 && g1 === 0xff9b) return `a NAT64 address (embeds ${v4Text(embedded)})`;
	// 6to4 (2002::/16, RFC 3056): the IPv4 address is groups 1-2.
	if (g0 === 0x2002) return `a 6to4 address (embeds ${v4Text(g1 * 65536 + g2)})`;
	// Teredo (2001::/32, RFC 4380): the client's IPv4 address is the last 32 bits, inverted.
	if (g0 === 0x2001 && g1 === 0) return `a Teredo address (embeds ${v4Text((~embedded >>> 0) & 0xffffffff)})`;
	if ((g0 & 0xfe00) === 0xfc00) return "a unique local (private) address";
	if ((g0 & 0xffc0) === 0xfe80) return "a link-local address";
	if ((g0 & 0xffc0) === 0xfec0) return "a site-local address";
	if ((g0 & 0xff00) === 0xff00) return "a multicast address";
	if (g0 === 0x2001 && g1 === 0x0db8) return "a documentation address";
	if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return "a discard address";
	return null;
}

const v4Text = (address: number) =>
	[address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join(".");

const isLoopbackHost = (host: string) =>
	host === "localhost" || host === "[::1]" || (v4ToNumber(host) ?? 0) >>> 24 === 127;

/** Why a host is not a public destination, or null if it is. `host` is WHATWG-normalised. */
export function hostProblem(host: string): string | null {
	const name = host.replace(/\.+$/, "").toLowerCase();
	const problem = nameProblem(name);
	if (problem !== null) return problem;
	// "example.com." is the same host to DNS, but "localhost.." and friends slip past suffix and
	// equality checks; a webhook URL has no reason to end its host with a dot.
	if (name !== host.toLowerCase()) return "a host name ending in a dot";
	return null;
}

function nameProblem(name: string): string | null {
	if (name.startsWith("[") && name.endsWith("]")) {
		const groups = v6Groups(name.slice(1, -1));
		return groups === null ? "not a valid IPv6 address" : v6Problem(groups);
	}
	const v4 = v4ToNumber(name);
	if (v4 !== null) return v4Problem(v4);
	// The parser turns every numeric IPv4 form into dotted decimal; anything still numeric is odd.
	if (/^[0-9.]+$/.test(name) || /^0x[0-9a-f]+$/i.test(name)) return "an unusual numeric address";
	if (name === "localhost" || LOCAL_NAME_SUFFIXES.some((s) => name.endsWith(s))) return "a local host name";
	if (!name.includes(".")) return "not a fully qualified public host name";
	return null;
}

/** Checks a webhook or callback URL; the refusal reason is safe to show to the caller. */
export function checkWebhookUrl(raw: string, mode: DeployMode): UrlVerdict {
	const refuse = (reason: string): UrlVerdict => ({ ok: false, code: "unsafe_url", reason });
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return refuse("it is not an absolute URL");
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") return refuse(`the scheme ${url.protocol} is not allowed`);
	// Credentials in a URL end up in logs and in the receiver's; a webhook authenticates by its signature.
	if (url.username !== "" || url.password !== "") return refuse("it carries credentials (user:password@)");
	if (mode === "local" && isLoopbackHost(url.hostname)) return { ok: true, url: url.href };
	const problem = hostProblem(url.hostname);
	if (problem !== null) return refuse(`the host ${url.hostname} is ${problem}`);
	if (url.protocol === "http:" && mode === "production") return refuse("only https URLs are allowed");
	return { ok: true, url: url.href };
}

/** The message of a refusal, naming the URL: "… is refused: the host 127.0.0.1 is a loopback address". */
export const refusalMessage = (raw: string, reason: string) =>
	`The webhook URL ${redactUrls(raw)} is refused: ${reason}. Webhooks go only to public https hosts.`;
