/**
 * A streamed download rendered a page of rows at a time (the batch results and captions exports):
 * the next page is read from D1 only when the client has taken the bytes of the last one, so memory
 * stays the size of a page whatever the number of rows.
 */

/**
 * The pages as a byte stream. `render(rows, first)` turns a page into text (it may be empty: the
 * stream reads on); `header` is what an export without rows still says (a CSV header row).
 */
export function pagedStream<T>(
	pages: AsyncGenerator<T[], void>,
	render: (rows: T[], first: boolean) => string,
	header: string,
): ReadableStream<Uint8Array> {
	const encoder = new TextEncoder();
	let first = true;
	return new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				for (;;) {
					const next = await pages.next();
					if (next.done) {
						if (first && header.length > 0) controller.enqueue(encoder.encode(header));
						controller.close();
						return;
					}
					const text = render(next.value, first);
					first = false;
					if (text.length > 0) {
						controller.enqueue(encoder.encode(text));
						return;
					}
				}
			},
			async cancel() {
				await pages.return(undefined);
			},
		},
		{ highWaterMark: 0 },
	);
}
