/**
 * Messages of the `batch-listing` queue: "list page `page` of batch `batch_id`". The status Worker
 * sends page 0 when a batch is created; the consumer's lister sends each next page once a page's
 * jobs are committed. The page number lets a lister tell a retry of its own page from a stale or
 * duplicate message (workers/consumer/batch-lister.ts).
 */
import { z } from "zod";

export const BatchPageMessage = z.object({
	kind: z.literal("batch-page"),
	batch_id: z.string().startsWith("bat_"),
	page: z.number().int().nonnegative(),
});
export type BatchPageMessage = z.infer<typeof BatchPageMessage>;

export const batchPage = (batchId: string, page: number): BatchPageMessage => ({
	kind: "batch-page",
	batch_id: batchId,
	page,
});
