import { IMAGES_MAX_INPUT_BYTES } from "../../shared/image/images-errors";

/**
 * An Images binding whose first `times` transformations fail the way the binding reports a
 * service error (an Error with the numeric `code` of the Images error table), then the real
 * local binding again. Local mode never produces these codes on its own (it runs sharp in
 * process), so this is the only way to exercise them; every other call goes to the real binding.
 */
export function imagesFailing(images: ImagesBinding, code: number, times: number): ImagesBinding {
	let left = times;
	const failing: ImageTransformer = {
		transform: () => failing,
		draw: () => failing,
		output: async () => {
			throw Object.assign(new Error(`IMAGES_TRANSFORM_ERROR ${code}: ERROR: service error`), { code });
		},
	};
	return {
		info: (stream, options) => images.info(stream, options),
		text: (content, options) => images.text(content, options),
		get hosted() {
			return images.hosted;
		},
		input(stream, options) {
			if (left <= 0) return images.input(stream, options);
			left--;
			void stream.cancel();
			return failing;
		},
	};
}

/**
 * The local Images binding runs sharp in process and takes inputs of any size; the service takes at
 * most IMAGES_MAX_INPUT_BYTES. This wrapper plays that limit (an input over it fails as a service
 * error does) and counts the inputs it was given, so a test can show that nothing over the limit is
 * ever sent. Every consumer run of the tests goes through it (test/support/queue.ts).
 */
export function imagesWithInputLimit(images: ImagesBinding): ImagesBinding & { inputs: number } {
	const limited = {
		inputs: 0,
		info: (stream: ReadableStream<Uint8Array>, options?: ImageInputOptions) => images.info(stream, options),
		text: (...args: Parameters<ImagesBinding["text"]>) => images.text(...args),
		get hosted() {
			return images.hosted;
		},
		input(stream: ReadableStream<Uint8Array>, options?: ImageInputOptions): ImageTransformer {
			limited.inputs++;
			const reader = stream.getReader();
			let seen = 0;
			const counted = new ReadableStream<Uint8Array>({
				async pull(controller) {
					const { done, value } = await reader.read();
					if (done) return controller.close();
					seen += value.byteLength;
					if (seen <= IMAGES_MAX_INPUT_BYTES) return controller.enqueue(value);
					await reader.cancel();
					controller.error(
						Object.assign(new Error(`IMAGES_TRANSFORM_ERROR: input over ${IMAGES_MAX_INPUT_BYTES} bytes`), {
							code: 9402,
						}),
					);
				},
				cancel: (reason) => reader.cancel(reason),
			});
			return images.input(counted, options);
		},
	};
	return limited;
}
