/**
 * The recovery sweeps (stalled jobs and listings in the consumer, the outbox and stalled
 * deliveries in the webhooks Worker) and the consumer's retention sweep run on a cron in production. Crons do not fire under
 * `wrangler dev`, so `npm run dev` runs the same sweeps through a named entrypoint of each Worker
 * (bound to the status Worker only in the local config) and `POST /v1/admin/sweep`. These are the
 * cut-offs a caller may give and what each Worker reports.
 */
import { z } from "zod";

export const RecoveryCutoffs = z
	.strictObject({
		restarted_at: z.number().int().nonnegative().optional().meta({
			description:
				"Unix ms when the local stack (re)started: anything last touched before it is stalled now (its queue message, its lease holder or its retry died with the old process).",
		}),
		stale_after_ms: z.number().int().positive().optional().meta({
			description:
				"Work untouched for this long counts as stalled (default: the production crons' own periods, 5 to 10 minutes).",
		}),
	})
	.meta({ id: "RecoveryCutoffs" });
export type RecoveryCutoffs = z.infer<typeof RecoveryCutoffs>;

/** `before` for a sweep whose production staleness is `defaultStallMs`. */
export function staleBefore(cutoffs: RecoveryCutoffs, now: number, defaultStallMs: number): number {
	return Math.max(cutoffs.restarted_at ?? 0, now - (cutoffs.stale_after_ms ?? defaultStallMs));
}

export const RetentionReport = z
	.object({
		jobs_deleted: z.number().int(),
		webhook_events_deleted: z
			.number()
			.int()
			.meta({ description: "Events deleted, each with its deliveries and attempts" }),
		batches_deleted: z.number().int().meta({ description: "Batches deleted, each with its key list" }),
		parts_archived: z.number().int().meta({ description: "Archive files written to R2 before the deletes" }),
		rows_written: z.number().int().meta({
			description: "D1 rows written by the deletes (each row and each of its index entries), as D1 bills them",
		}),
		truncated: z.boolean(),
		skipped: z.boolean().meta({ description: "Another retention run held the lease: this one did nothing" }),
	})
	.meta({ id: "RetentionReport" });
export type RetentionReport = z.infer<typeof RetentionReport>;

export const ConsumerSweepReport = z.object({
	jobs_requeued: z.number().int(),
	jobs_failed: z.number().int(),
	write_backs_resent: z.number().int().meta({
		description: "Succeeded jobs whose write-back a dead consumer left pending, sent again by id",
	}),
	listings_resent: z.number().int(),
	truncated: z.boolean(),
	retention: RetentionReport.meta({
		description: "The retention sweep: rows past RETENTION_*_DAYS archived to R2 and deleted (docs/data.md)",
	}),
});
export type ConsumerSweepReport = z.infer<typeof ConsumerSweepReport>;

export const WebhooksSweepReport = z.object({
	events_resent: z.number().int(),
	deliveries_resent: z.number().int(),
	truncated: z.boolean(),
	secrets_sealed: z.number().int().meta({
		description: "Secrets sealed: found in clear, or moved from WEBHOOK_SECRETS_KEY_PREVIOUS to the current key",
	}),
});
export type WebhooksSweepReport = z.infer<typeof WebhooksSweepReport>;

export const SweepReport = z
	.object({
		consumer: ConsumerSweepReport,
		webhooks: WebhooksSweepReport,
	})
	.meta({ id: "SweepReport" });
export type SweepReport = z.infer<typeof SweepReport>;
