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
