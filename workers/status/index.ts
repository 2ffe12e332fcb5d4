export default {
	async fetch() {
		return Response.json({ ok: true });
	},
} satisfies ExportedHandler<StatusEnv>;
