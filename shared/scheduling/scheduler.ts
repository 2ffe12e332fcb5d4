/**
 * The lane scheduler: one Durable Object (`MODEL_SCHEDULER`, instance "global") that every consumer
 * invocation asks for a slot before each model call. It paces each rate limit (a task type, or a
 * model with a limit of its own) by GCRA like the per-limit pacers before it (shared/gcra.ts), and
 * decides who gets each slot (./policy.ts): interactive work first, the batch lane's minimum share,
 * batch slots round the API keys. A caller waits inside its call until it is handed a slot, or
 * until `maxWaitMs` passes (then it is told when to come back): no caller books a slot ahead, so
 * interactive work that arrives later is served before batch work that waits. A queue batch's
 * messages of one lane and key ask together (`acquireMany`): one waiter owed several slots, each
 * handed out as a single caller's would be, that takes in one answer all it is given in its turn.
 *
 * A spillover batch's caption lists two limits (its first model's task type, then another task
 * type's): it takes whichever has a slot first, so a backfill runs on both budgets at once.
 *
 * State is in memory: the waiters are calls in progress (a restart fails them and their messages
 * are delivered again from the queues, which hold the work durably); the last minute's grants
 * only steer shares, and a restart forgets them.
 */
import { DurableObject } from "cloudflare:workers";
import type { Grant, LaneFigures, LimitSpec, SlotRequest, Slots } from "./lanes";
import { LANES } from "./lanes";
import { chooseWaiter, type RecentGrant, SHARE_WINDOW_MS, type Waiter } from "./policy";

interface Schedule {
	spec: LimitSpec;
	burst: number;
	/** GCRA's theoretical arrival time (ms). */
	tat: number;
}

interface Pending extends Waiter {
	since: number;
	deadline: number;
	minBatchShare: number;
	/** Slots asked for (a queue batch's messages under one key ask together). */
	want: number;
	/** The limit of each slot handed to it so far. */
	got: string[];
	/** Of those, how many it was told of. */
	told: number;
	/** It stays after a turn until every slot it wants is handed out or refused (a stream), or leaves with its turn's. */
	standing: boolean;
	/** Tells the caller of the slots of one turn (`last`: it wants no more). */
	tell: (limits: string[], last: boolean) => void;
	/** Tells the caller no slot will come within its wait (and ends a standing waiter). */
	refuse: (grant: Extract<Slots, { kind: "refused" }>) => void;
}

/** Slots a waiter still wants. */
const owed = (w: Pending) => w.want - w.got.length;

const interval = (s: Schedule) => 60_000 / s.spec.pacedPerMinute;
/** When the schedule's next slot may be taken (ms). */
const nextSlotAt = (s: Schedule) => s.tat - (Math.max(1, s.burst) - 1) * interval(s);

export class LaneScheduler extends DurableObject {
	private readonly schedules = new Map<string, Schedule>();
	private waiters: Pending[] = [];
	private recent: RecentGrant[] = [];
	private seq = 0;
	private timer: ReturnType<typeof setTimeout> | undefined;

	/** One slot, once it is this caller's turn (within `maxWaitMs`). */
	async acquire(request: SlotRequest): Promise<Grant> {
		const slots = await this.acquireMany(request, 1);
		return slots.kind === "refused" ? slots : { kind: "slot", limit: slots.limits[0] ?? "" };
	}

	/**
	 * Up to `count` slots for the messages of one queue batch that share a lane, a key and limits:
	 * the caller waits as one waiter until its turn comes (within `maxWaitMs`), then takes every slot
	 * it is given in that turn, each handed out by the same policy as a single slot (so the burst of
	 * an idle limit goes to the batch in one answer, and under load one slot at a time). The rest
	 * it asks for again; nothing is booked ahead.
	 */
	acquireMany(request: SlotRequest, count: number): Promise<Slots> {
		return new Promise<Slots>((resolve) => {
			this.wait(request, count, {
				standing: false,
				tell: (limits) => resolve({ kind: "slots", limits }),
				refuse: resolve,
			});
		});
	}

	/**
	 * Up to `count` slots for the messages of one queue batch that share a lane, a key and limits,
	 * told as they are handed out, one line each turn (`SlotsLine`), on one stream: one waiter that
	 * stays until all are handed out, each by the same policy and pace as a single caller's slot,
	 * or until the rest cannot come within `maxWaitMs` of the ask (a last "refused" line). The
	 * caller cancels the stream when it needs no more; nothing is booked ahead.
	 */
	slotStream(request: SlotRequest, count: number): ReadableStream<Uint8Array> {
		const encoder = new TextEncoder();
		let waiter: Pending | null = null;
		return new ReadableStream<Uint8Array>({
			start: (controller) => {
				const line = (slots: Slots) => controller.enqueue(encoder.encode(`${JSON.stringify(slots)}\n`));
				waiter = this.wait(request, count, {
					standing: true,
					tell: (limits, last) => {
						line({ kind: "slots", limits });
						if (last) controller.close();
					},
					refuse: (refused) => {
						line(refused);
						controller.close();
					},
				});
			},
			cancel: () => {
				// The batch needs no more: slots not yet handed out go to the other waiters.
				this.waiters = this.waiters.filter((w) => w !== waiter);
			},
		});
	}

	/** Adds a waiter for `count` slots (or refuses it at once when none can come within its wait). */
	private wait(
		request: SlotRequest,
		count: number,
		how: Pick<Pending, "standing" | "tell" | "refuse">,
	): Pending | null {
		for (const spec of request.limits) this.follow(spec, request.burst);
		const now = Date.now();
		// A slot that cannot come within the wait is refused at once, rather than after waiting for it.
		const eta = Math.min(...request.limits.map((l) => this.eta(l.name, request.lane, now)));
		if (eta > request.maxWaitMs) {
			how.refuse({ kind: "refused", retryAfterMs: Math.ceil(eta) });
			return null;
		}
		const waiter: Pending = {
			seq: ++this.seq,
			lane: request.lane,
			key: request.key,
			limits: request.limits.map((l) => l.name),
			since: request.since,
			deadline: now + request.maxWaitMs,
			minBatchShare: request.minBatchShare,
			want: Math.max(1, Math.floor(count)),
			got: [],
			told: 0,
			...how,
		};
		this.waiters.push(waiter);
		this.pump();
		return waiter;
	}

	/** Per lane and limit: jobs waiting, the oldest one's age, and the last minute's slots. */
	stats(): LaneFigures[] {
		const now = Date.now();
		this.forget(now);
		const figures: LaneFigures[] = [];
		for (const [name, schedule] of this.schedules) {
			for (const lane of LANES) {
				const waiting = this.waiters.filter((w) => w.lane === lane && w.limits[0] === name);
				const jobs = waiting.reduce((sum, w) => sum + owed(w), 0);
				const calls = this.recent.filter((g) => g.lane === lane && g.limit === name).length;
				const oldest = waiting.length > 0 ? Math.min(...waiting.map((w) => w.since)) : null;
				figures.push({
					lane,
					task_type: name,
					waiting: jobs,
					oldest_waiting_seconds: oldest === null ? null : Math.max(0, Math.round((now - oldest) / 100) / 10),
					calls_last_minute: calls,
					share_last_minute: Math.round((calls / schedule.spec.perMinute) * 1000) / 1000,
				});
			}
		}
		return figures;
	}

	/**
	 * How long (ms) until a caller of `lane` would likely get a slot of `limit`: its next slot, plus
	 * one interval per caller served before it (the interactive lane's, or everyone's for a batch).
	 */
	private eta(limit: string, lane: SlotRequest["lane"], now: number, self?: Pending): number {
		const schedule = this.schedules.get(limit);
		if (!schedule) return 0;
		const ahead = this.waiters
			.filter((w) => w !== self && w.limits.includes(limit) && (lane === "batch" || w.lane === lane))
			.reduce((sum, w) => sum + owed(w), 0);
		return Math.max(0, nextSlotAt(schedule) - now) + ahead * interval(schedule);
	}

	/** A limit whose pace changed (new configuration) keeps its schedule at the new pace. */
	private follow(spec: LimitSpec, burst: number): void {
		const known = this.schedules.get(spec.name);
		if (known) {
			known.spec = spec;
			known.burst = burst;
		} else {
			this.schedules.set(spec.name, { spec, burst, tat: 0 });
		}
	}

	/** Hands out every slot due now, refuses callers past their wait, and sets the timer for what is next. */
	private pump(): void {
		if (this.timer !== undefined) clearTimeout(this.timer);
		this.timer = undefined;
		const now = Date.now();
		this.forget(now);
		this.expire(now);
		const served: Pending[] = [];
		let granted = true;
		while (granted && this.waiters.length > 0) {
			granted = false;
			for (const [name, schedule] of this.schedules) {
				if (nextSlotAt(schedule) > now) continue;
				const share = this.waiters.find((w) => w.limits.includes(name))?.minBatchShare ?? 0;
				const waiter = chooseWaiter(this.waiters, name, this.recent, share);
				if (!waiter) continue;
				schedule.tat = Math.max(schedule.tat, now) + interval(schedule);
				if (!served.includes(waiter)) served.push(waiter);
				waiter.got.push(name);
				if (owed(waiter) === 0) this.waiters = this.waiters.filter((w) => w !== waiter);
				this.recent.push({ at: now, lane: waiter.lane, limit: name, key: waiter.key });
				granted = true;
			}
		}
		// Every waiter served in this turn is told its slots; one that is not standing leaves with
		// them (it asks again for more), a standing one stays while it wants more.
		const leaving = new Set(served.filter((w) => !w.standing || owed(w) === 0));
		if (leaving.size > 0) this.waiters = this.waiters.filter((w) => !leaving.has(w));
		for (const w of served) {
			const limits = w.got.slice(w.told);
			w.told = w.got.length;
			w.tell(limits, owed(w) === 0);
		}
		this.refuseBeyondWait(served, now);
		if (this.waiters.length === 0) return;
		const due = this.waiters.flatMap((w) => w.limits.map((name) => this.schedules.get(name)));
		const nextSlot = Math.min(...due.map((s) => (s ? nextSlotAt(s) : Number.POSITIVE_INFINITY)));
		const nextDeadline = Math.min(...this.waiters.map((w) => w.deadline));
		const at = Math.min(nextSlot, nextDeadline);
		this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(at - now)));
	}

	/**
	 * A standing waiter served in this turn whose next slot cannot come before its wait ends is
	 * told so now, as a new caller would be.
	 */
	private refuseBeyondWait(served: Pending[], now: number): void {
		for (const w of served) {
			if (!w.standing || owed(w) === 0 || !this.waiters.includes(w)) continue;
			const eta = Math.min(...w.limits.map((name) => this.eta(name, w.lane, now, w)));
			if (now + eta <= w.deadline) continue;
			this.waiters = this.waiters.filter((x) => x !== w);
			w.refuse({ kind: "refused", retryAfterMs: Math.ceil(eta) });
		}
	}

	/** Callers whose wait is over are told when a slot of their first limit is likely (at least 1 s). */
	private expire(now: number): void {
		const late = this.waiters.filter((w) => w.deadline <= now);
		if (late.length === 0) return;
		this.waiters = this.waiters.filter((w) => w.deadline > now);
		for (const w of late) {
			const eta = Math.min(...w.limits.map((name) => this.eta(name, w.lane, now)));
			w.refuse({ kind: "refused", retryAfterMs: Math.max(1000, Math.ceil(eta)) });
		}
	}

	private forget(now: number): void {
		const since = now - SHARE_WINDOW_MS;
		if (this.recent.length > 0 && (this.recent[0]?.at ?? now) < since) {
			this.recent = this.recent.filter((g) => g.at >= since);
		}
	}
}
