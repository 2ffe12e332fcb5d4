import type { D1Migration } from "cloudflare:test";

declare global {
	namespace Cloudflare {
		interface Env {
			TEST_MIGRATIONS: D1Migration[];
		}
	}
}

declare module "vitest" {
	export interface ProvidedContext {
		/** Base URL of the loopback server that serves image fixtures (test/support/global-setup.ts). */
		fixturesUrl: string;
		/** Base URL of the webhook receiver on the same server: POST <hooksUrl>/<name> (test/webhooks). */
		hooksUrl: string;
		/** The node project's broker of its shared `npm run dev` stack (test/node/support/shared-stack-setup.ts). */
		sharedStackBroker: string;
		/** The node project's broker of its tuned stack (test/node/support/tuned-stack.ts). */
		tunedStackBroker: string;
		/** The node project's broker of the Workers' dry runs (test/node/support/dry-runs-setup.ts). */
		dryRunBroker: string;
		/** The workerd files that start quiet, on fresh storage (test/quiet-setup.ts). */
		quietStartFiles: string[];
	}
}
