/**
 * Gathers one kind of write (the claims, or the finishes) of a queue batch's messages into one
 * round trip. Every message of the batch is a participant from the moment it starts until it asks
 * (once) or leaves; the gathered asks are written together as soon as every participant still
 * owed has asked, or `holdMs` after the first ask of the group, whichever comes first (so a
 * message held up elsewhere, a slot of the rate limit half a minute away, delays its neighbours'
 * writes by at most `holdMs`). A message started later (the batch's concurrency is below its
 * size) joins the next group. Whether every participant has asked is looked at once the current
 * turn of the event loop's microtasks comes, so that participants joining in the same turn as
 * the first ask (the batch's other messages, started one after another) are part of its group.
 *
 * `write` answers every ask of a group, in order; if it throws, every ask of the group gets the
 * error (the caller decides whether to write its ask alone).
 */

interface Waiting<Ask, Answer> {
	ask: Ask;
	resolve: (answer: Answer) => void;
	reject: (error: unknown) => void;
}

export interface GatherTicket<Ask, Answer> {
	/** Joins the group being gathered; resolves once the group is written. At most once per ticket. */
	ask(ask: Ask): Promise<Answer>;
	/** This participant will not ask (or has asked already): the group no longer waits for it. */
	leave(): void;
}

export class Gather<Ask, Answer> {
	private owed = 0;
	private waiting: Waiting<Ask, Answer>[] = [];
	private timer: ReturnType<typeof setTimeout> | null = null;

	constructor(
		private readonly write: (asks: Ask[]) => Promise<Answer[]>,
		private readonly holdMs: number,
	) {}

	/** A new participant, owed until it asks or leaves. */
	join(): GatherTicket<Ask, Answer> {
		this.owed++;
		let settled = false;
		const settle = () => {
			if (settled) return false;
			settled = true;
			this.owed--;
			return true;
		};
		return {
			ask: (ask) => {
				if (!settle()) return Promise.reject(new Error("a gather ticket asks at most once"));
				return new Promise<Answer>((resolve, reject) => {
					this.waiting.push({ ask, resolve, reject });
					if (this.waiting.length === 1) this.timer = setTimeout(() => this.flush(), this.holdMs);
					// Not at once: the participants started in this same turn (a batch's messages are all
					// started before any of them awaits) have not all joined yet. A message whose ask
					// comes before its first await (a caption request by job id) would otherwise be
					// written alone, and its neighbours after it.
					queueMicrotask(() => this.flushIfComplete());
				});
			},
			leave: () => {
				if (settle()) this.flushIfComplete();
			},
		};
	}

	private flushIfComplete(): void {
		if (this.waiting.length > 0 && this.owed === 0) this.flush();
	}

	private flush(): void {
		if (this.timer !== null) clearTimeout(this.timer);
		this.timer = null;
		const group = this.waiting;
		this.waiting = [];
		if (group.length === 0) return;
		this.write(group.map((w) => w.ask)).then(
			(answers) => {
				group.forEach((w, i) => {
					w.resolve(answers[i] as Answer);
				});
			},
			(error: unknown) => {
				for (const w of group) w.reject(error);
			},
		);
	}
}
