/**
 * The two lanes of caption work and what a caption asks the lane scheduler for. Interactive work
 * (uploads, event notifications, `POST /v1/jobs`) comes through `caption-jobs`; the jobs of batches
 * through `caption-batch-jobs`. Both take their model calls' slots from one scheduler
 * (./scheduler.ts), which serves the interactive lane first within each rate limit and keeps a
 * minimum share for the batch lane.
 */
import { z } from "zod";

/** The one scheduler instance every consumer invocation asks (a name, so the status Worker can read it too). */
export const SCHEDULER_NAME = "global";

export const LANES = ["interactive", "batch"] as const;
export const Lane = z.enum(LANES);
export type Lane = z.infer<typeof Lane>;

/** The queue each lane's caption messages travel on. */
export const LANE_QUEUES = { interactive: "caption-jobs", batch: "caption-batch-jobs" } as const satisfies Record<
	Lane,
	string
>;

export const laneOfQueue = (queue: string): Lane => (queue === LANE_QUEUES.batch ? "batch" : "interactive");

/** One rate limit a slot may be taken from: a task type or a model id. */
export interface LimitSpec {
	name: string;
	/** The platform's limit (requests per minute): what shares are reported against. */
	perMinute: number;
	/** The pace slots are handed out at (below `perMinute`, leaving room for the burst). */
	pacedPerMinute: number;
}

export interface SlotRequest {
	lane: Lane;
	/** The API key whose job it is (null: the admin's): batch slots go round the keys. */
	key: string | null;
	/** The limits the caption may use, in order of preference (two for a spillover batch's job). */
	limits: LimitSpec[];
	/** Slots one limit may give at once after an idle spell. */
	burst: number;
	/** How long the caller waits for a slot before it is told to come back later. */
	maxWaitMs: number;
	/** Fraction (0-1) of each limit's recent slots the batch lane is owed while it has work waiting. */
	minBatchShare: number;
	/** When the job was created (ms): the age of the oldest waiting job is reported. */
	since: number;
}

/** A slot of limit `limit`, to be used now; or none within `maxWaitMs`. */
export type Grant = { kind: "slot"; limit: string } | { kind: "refused"; retryAfterMs: number };

/**
 * Slots to be used now, the limit of each (at least one, at most the number asked for); or none
 * within `maxWaitMs`. Also one line of the scheduler's slot stream (JSON), read back with this schema.
 */
export const Slots = z.discriminatedUnion("kind", [
	z.object({ kind: z.literal("slots"), limits: z.array(z.string()).min(1) }),
	z.object({ kind: z.literal("refused"), retryAfterMs: z.number() }),
]);
export type Slots = z.infer<typeof Slots>;

export const LaneFigures = z
	.object({
		lane: Lane,
		task_type: z.string().meta({ description: "The rate limit: a task type, or a model id with a limit of its own." }),
		waiting: z.number().int().meta({
			description:
				"Jobs of this lane delivered to the consumer and waiting for a slot of this limit now (jobs still in the queue are in `counts.queued`).",
		}),
		oldest_waiting_seconds: z
			.number()
			.nullable()
			.meta({ description: "Age (since the job was created) of the oldest of them; null when none waits." }),
		calls_last_minute: z.number().int().meta({ description: "Slots this lane took from the limit in the last 60 s." }),
		share_last_minute: z.number().meta({
			description:
				"Those slots as a fraction of the limit's requests per minute (0-1; both lanes add up to at most 1).",
		}),
	})
	.meta({ id: "LaneFigures" });
export type LaneFigures = z.infer<typeof LaneFigures>;
