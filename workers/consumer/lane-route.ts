/**
 * The consumer's one hook into the lane scheduler (shared/scheduling/): for each caption, the
 * route through the model chain. Every model call takes its slot from the scheduler in the
 * caption's lane (which queue its message came from) under its job's API key. A spillover
 * batch's caption first takes a slot of either its first model's task type or the task type of
 * the chain's first model of another type, whichever comes first, and starts the chain at that
 * model.
 */
import type { Pace, Pacer, Route } from "../../shared/models/chain";
import { pacingRate, type RateLimits, rateLimitFor } from "../../shared/models/rate-limits";
import { type ModelAdapter, writes } from "../../shared/models/types";
import type { GatherTicket } from "../../shared/queue/gather";
import { type Grant, type Lane, type LimitSpec, SCHEDULER_NAME, type SlotRequest } from "../../shared/scheduling/lanes";
import type { SlotAnswer } from "./batch-slots";
import type { ConsumerSettings } from "./config";

/** Whose caption it is, and how it may be scheduled. */
export interface CaptionTurn {
	lane: Lane;
	keyId: string | null;
	/** The job's language (null: English): the chain's models that cannot write it are left out. */
	language: string | null;
	/** The job's batch asked for spillover. */
	spillover: boolean;
	/** When the job was created (ms). */
	createdAt: number;
	/** This message's place among its queue batch's first slots, asked for together (batch-slots.ts). */
	slots?: GatherTicket<SlotRequest, SlotAnswer>;
}

const GO: Pace = { kind: "go" };

function limitSpec(adapter: ModelAdapter, limits: RateLimits, burst: number): LimitSpec | null {
	const limit = rateLimitFor(adapter, limits);
	return limit && { name: limit.name, perMinute: limit.perMinute, pacedPerMinute: pacingRate(limit.perMinute, burst) };
}

const later = (limit: string, grant: Extract<Grant, { kind: "refused" }>): Pace => ({
	kind: "later",
	message: `No slot of ${limit} within the wait: next in about ${grant.retryAfterMs} ms`,
	retryAfterSeconds: Math.ceil(grant.retryAfterMs / 1000),
});

export async function captionRoute(env: ConsumerEnv, settings: ConsumerSettings, turn: CaptionTurn): Promise<Route> {
	const scheduler = env.MODEL_SCHEDULER.getByName(SCHEDULER_NAME);
	const { MODEL_RATE_LIMITS: limits, MODEL_BURST: burst } = settings;
	let batchTicket = turn.slots;
	const ask = (specs: LimitSpec[]): Promise<Grant> => {
		const request: SlotRequest = {
			lane: turn.lane,
			key: turn.keyId,
			limits: specs,
			burst,
			maxWaitMs: settings.MODEL_MAX_WAIT_SECONDS * 1000,
			minBatchShare: settings.BATCH_MIN_SHARE_PERCENT / 100,
			since: turn.createdAt,
		};
		// The caption's first slot with its batch's; any later one alone.
		const ticket = batchTicket;
		batchTicket = undefined;
		if (!ticket) return scheduler.acquire(request);
		return ticket.ask(request).then((answer) => answer.grant);
	};
	/** A slot already taken for the limit named, used by the first call under it. */
	let prepaid: string | null = null;
	const pace: Pacer = async (adapter) => {
		const spec = limitSpec(adapter, limits, burst);
		if (!spec) return GO;
		if (prepaid === spec.name) {
			prepaid = null;
			return GO;
		}
		const grant = await ask([spec]);
		return grant.kind === "slot" ? GO : later(spec.name, grant);
	};
	// The models that can write the job's language: a spillover's slots are taken for those only.
	const chain = settings.MODEL_CHAIN.filter((adapter) => writes(adapter, turn.language));
	const spill = turn.spillover && turn.lane === "batch" ? spillTarget(chain, limits, burst) : null;
	if (!spill) return { adapters: chain, pace };
	const grant = await ask([spill.first, spill.other.spec]);
	if (grant.kind === "refused") return { adapters: chain, pace: async () => later(spill.first.name, grant) };
	prepaid = grant.limit;
	if (grant.limit === spill.first.name) return { adapters: chain, pace };
	// Spilled: the other task type's first model, then the chain as configured.
	return { adapters: [spill.other.adapter, ...chain.filter((a) => a !== spill.other.adapter)], pace };
}

/** The chain's first limit, and its first model under a limit of another task type (null: nothing to spill to). */
function spillTarget(chain: readonly ModelAdapter[], limits: RateLimits, burst: number) {
	const [head] = chain;
	const first = head && limitSpec(head, limits, burst);
	if (!head || !first) return null;
	for (const adapter of chain) {
		const spec = limitSpec(adapter, limits, burst);
		if (spec && adapter.task !== head.task && spec.name !== first.name) {
			return { first, other: { adapter, spec } };
		}
	}
	return null;
}
