/**
 * The rate-limit slots of a queue batch's captions, asked for together. Each message's first
 * request for a slot joins the batch's (shared/queue/gather.ts: all the messages still owed, or
 * WRITE_HOLD_MS after the first); the gathered requests of one lane, key and list of limits are
 * one slot stream of the lane scheduler (`slotStream`), which tells each slot as the scheduler
 * hands it out, at its pace and by its policy, as it would a single caller's. The slots go to the
 * requests in the order they asked. A message's later slots (the next model of its chain) are
 * asked for alone.
 *
 * The scheduler hands out no more slots than the group asked for, each to a waiting message, so
 * none is left over; if the invocation ends first, the stream is cancelled and the scheduler
 * gives the rest to other waiters.
 */
import { type Grant, type SlotRequest, Slots } from "../../shared/scheduling/lanes";

/** The slot a message will get: a promise of its own, as the batch's slots come one turn at a time. */
export interface SlotAnswer {
	grant: Promise<Grant>;
}

/** The scheduler's side the batch uses (the Durable Object's stub). */
export interface SlotSource {
	slotStream(request: SlotRequest, count: number): Promise<ReadableStream<Uint8Array>>;
}

interface Owed {
	request: SlotRequest;
	resolve: (grant: Grant) => void;
	reject: (error: unknown) => void;
}

/** What requests may share one stream: same lane, key and limits (in order). */
const groupOf = (r: SlotRequest) => JSON.stringify([r.lane, r.key, r.limits.map((l) => l.name)]);

/** Answers a gathered group of requests: one stream per group, each slot to the next in order. */
export function acquireTogether(source: SlotSource, requests: SlotRequest[]): SlotAnswer[] {
	const groups = new Map<string, Owed[]>();
	const answers = requests.map((request): SlotAnswer => {
		let owed: Owed | undefined;
		const grant = new Promise<Grant>((resolve, reject) => {
			owed = { request, resolve, reject };
		});
		const key = groupOf(request);
		if (owed) groups.set(key, [...(groups.get(key) ?? []), owed]);
		return { grant };
	});
	for (const group of groups.values()) void serve(source, group);
	return answers;
}

async function serve(source: SlotSource, group: Owed[]): Promise<void> {
	const [first] = group;
	if (!first) return;
	// The group is as old as its oldest job (what the scheduler reports as waiting longest).
	const since = Math.min(...group.map((o) => o.request.since));
	let next = 0;
	try {
		const stream = await source.slotStream({ ...first.request, since }, group.length);
		for await (const slots of slotLines(stream)) {
			if (slots.kind === "refused") {
				for (const o of group.slice(next)) o.resolve(slots);
				return;
			}
			for (const limit of slots.limits) group[next++]?.resolve({ kind: "slot", limit });
			if (next >= group.length) return;
		}
		throw new Error("the lane scheduler's slot stream ended before every slot");
	} catch (error) {
		for (const o of group.slice(next)) o.reject(error);
	}
}

/** The stream's lines, one `Slots` each; cancels the stream when the reader stops early. */
async function* slotLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<Slots> {
	const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
	let buffer = "";
	try {
		for (;;) {
			const { value, done } = await reader.read();
			if (done) return;
			buffer += value;
			const lines = buffer.split("\n");
			buffer = lines.pop() ?? "";
			for (const line of lines) if (line) yield Slots.parse(JSON.parse(line));
		}
	} finally {
		await reader.cancel().catch(() => undefined);
	}
}
