/**
 * What `npm run deploy` checks on the account through Cloudflare's REST API, when it has an API
 * token (CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, as wrangler reads them; the base URL from
 * CLOUDFLARE_API_BASE_URL, as wrangler reads it too). Without a token these checks say what they
 * would have done and what to run by hand.
 */

export interface AccountApi {
	base: string;
	token: string;
	accountId: string;
}

export function accountApi(env: NodeJS.ProcessEnv = process.env): AccountApi | null {
	const token = env.CLOUDFLARE_API_TOKEN;
	const accountId = env.CLOUDFLARE_ACCOUNT_ID;
	if (!token || !accountId) return null;
	return { base: env.CLOUDFLARE_API_BASE_URL ?? "https://api.cloudflare.com/client/v4", token, accountId };
}

async function request(api: AccountApi, method: string, path: string, body?: unknown): Promise<Response> {
	return fetch(`${api.base}/accounts/${api.accountId}${path}`, {
		method,
		headers: { authorization: `Bearer ${api.token}`, "content-type": "application/json" },
		...(body === undefined ? {} : { body: JSON.stringify(body) }),
	});
}

/** The account's workers.dev subdomain, or null when it has none (the status Worker's URL needs one). */
export async function workersDevSubdomain(api: AccountApi): Promise<string | null> {
	const res = await request(api, "GET", "/workers/subdomain");
	if (res.status === 404) return null;
	if (!res.ok) throw new Error(`reading the workers.dev subdomain failed: HTTP ${res.status}`);
	const body = (await res.json()) as { result?: { subdomain?: string } | null };
	return body.result?.subdomain || null;
}

/** The model whose licence must be accepted once per account before it answers (else `5016`). */
export const LICENSED_MODEL = "@cf/meta/llama-3.2-11b-vision-instruct";
export const LICENCE_URL = "https://github.com/meta-llama/llama-models/blob/main/models/llama3_2/LICENSE";

/** Sends the one-time `agree` prompt that accepts the model's licence for the account. */
export async function acceptModelLicence(api: AccountApi, model = LICENSED_MODEL): Promise<void> {
	const res = await request(api, "POST", `/ai/run/${model}`, { prompt: "agree" });
	// Workers AI answers the agreement itself with a text, not with an error.
	if (!res.ok) throw new Error(`sending 'agree' to ${model} failed: HTTP ${res.status} ${await res.text()}`);
}

/** The curl command that does the same by hand. */
export const agreeCommand = (model = LICENSED_MODEL) =>
	`curl https://api.cloudflare.com/client/v4/accounts/$CLOUDFLARE_ACCOUNT_ID/ai/run/${model} -H "Authorization: Bearer $CLOUDFLARE_API_TOKEN" -d '{"prompt":"agree"}'`;

/** What the service needs of the account's plan, said before anything is created. */
export const PLAN_REQUIREMENTS = [
	"r2-captions needs the Workers Paid plan:",
	"  - CPU time: the consumer and webhooks Workers use more than the Free plan's 10 ms per invocation;",
	"  - subrequests: a queue batch makes more than the Free plan's 50 (R2, D1, Workers AI, webhooks);",
	"  - D1: more rows written per day than the Free plan's 100,000 once a few thousand images a day are captioned;",
	"  - Queues, which the Free plan does not include for production use.",
	"  See developers.cloudflare.com/workers/platform/limits/ and developers.cloudflare.com/d1/platform/limits/.",
].join("\n");
