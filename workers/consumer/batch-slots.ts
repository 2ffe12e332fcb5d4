/**
 * The rate-limit slots of a queue batch's captions, asked for together. Each message's first
 * request for a slot joins the batch's (shared/queue/gather.ts: all the messages still owed, or
 * WRITE_HOLD_MS after the first); the gathered requests of one key and one list of limits are one
 * `acquireMany` of the lane scheduler, whose slots go to them in the order they asked. Those it
 * did not serve in that turn ask again together, until each has a slot or is told to come back
 * later. A message's later slots (the next model of its chain) are asked for alone.
 *
 * Every slot answered is one the scheduler handed out at its pace and to one waiting message, so
 * no slot is left over: the batch never calls faster than a single caller's slots would let it.
 */
import type { Grant, SlotRequest, Slots } from "../../shared/scheduling/lanes";

/** The slot a message will get: a promise of its own, as the batch's slots come one turn at a time. */
export interface SlotAnswer {
	grant: Promise<Grant>;
}

/** The scheduler's side the batch uses (the Durable Object's stub). */
export interface SlotSource {
	acquireMany(request: SlotRequest, count: number): Promise<Slots>;
}

interface Owed {
	request: SlotRequest;
	resolve: (grant: Grant) => void;
	reject: (error: unknown) => void;
}

/** What requests may share one acquisition: same lane, key and limits (in order). */
const groupOf = (r: SlotRequest) => JSON.stringify([r.lane, r.key, r.limits.map((l) => l.name)]);

/** Answers a gathered group of requests: one acquisition per group, each slot to the next in order. */
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
	let waiting = group;
	while (waiting.length > 0) {
		const [first] = waiting;
		if (!first) return;
		// The group is as old as its oldest job (what the scheduler reports as waiting longest).
		const since = Math.min(...waiting.map((o) => o.request.since));
		let slots: Slots;
		try {
			slots = await source.acquireMany({ ...first.request, since }, waiting.length);
		} catch (error) {
			for (const o of waiting) o.reject(error);
			return;
		}
		if (slots.kind === "refused") {
			for (const o of waiting) o.resolve(slots);
			return;
		}
		slots.limits.forEach((limit, i) => {
			waiting[i]?.resolve({ kind: "slot", limit });
		});
		waiting = waiting.slice(slots.limits.length);
	}
}
