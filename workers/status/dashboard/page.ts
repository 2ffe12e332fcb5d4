/**
 * The dashboard's HTML page (`GET /`): a small static shell with the sign-in form, so the first
 * paint needs nothing but this response and the stylesheet. The scripts (workers/status/assets/
 * dashboard/, served as Workers static assets) sign in, then draw every view from the public /v1
 * API with the token kept in sessionStorage. The Content-Security-Policy lets the page run only
 * its own scripts and reach only its own origin, and allows no inline code, no framing and no
 * form submission (a form can therefore never put the token in a URL, even without scripts).
 */

/** Every script of the dashboard, preloaded so the browser fetches them in one round trip. */
export const DASHBOARD_MODULES = [
	"app.js",
	"api.js",
	"client.js",
	"dom.js",
	"charts.js",
	"images.js",
	"poll.js",
	"live.js",
	"output-fields.js",
	"deliveries.js",
	"batch-progress.js",
	"caption-history.js",
	"job-outcome.js",
	"views/jobs.js",
	"views/job.js",
	"views/upload.js",
	"views/batches.js",
	"views/webhooks.js",
	"views/stats.js",
] as const;

export const DASHBOARD_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' blob: data:",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
	// Strings can never become markup or code: the scripts build the page with DOM calls only.
	"require-trusted-types-for 'script'",
	"trusted-types 'none'",
].join("; ");

export const DASHBOARD_HEADERS = {
	"Content-Type": "text/html; charset=utf-8",
	"Content-Security-Policy": DASHBOARD_CSP,
	"Cache-Control": "no-cache",
	"Referrer-Policy": "no-referrer",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options": "DENY",
} as const;

const preloads = DASHBOARD_MODULES.map((m) => `<link rel="modulepreload" href="/dashboard/${m}">`).join("\n\t\t");

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
	<head>
		<meta charset="utf-8">
		<meta name="viewport" content="width=device-width, initial-scale=1">
		<title>Sign in · r2-captions</title>
		<link rel="icon" href="data:,">
		<link rel="stylesheet" href="/dashboard/style.css">
		${preloads}
		<script type="module" src="/dashboard/app.js"></script>
	</head>
	<body>
		<a class="skip-link" href="#main" id="skip-link">Skip to content</a>
		<header class="top-bar">
			<a class="brand" href="#/jobs">r2-captions</a>
			<nav id="nav" aria-label="Dashboard" hidden>
				<ul>
					<li><a href="#/jobs">Jobs</a></li>
					<li><a href="#/upload">Upload</a></li>
					<li><a href="#/batches">Batches</a></li>
					<li><a href="#/webhooks">Webhooks</a></li>
					<li><a href="#/stats">Stats</a></li>
				</ul>
			</nav>
			<div id="session" class="session" hidden>
				<span id="who"></span>
				<button id="sign-out" type="button" class="secondary">Sign out</button>
			</div>
		</header>
		<main id="main" tabindex="-1">
			<section id="sign-in" class="sign-in" aria-labelledby="sign-in-title">
				<h1 id="sign-in-title">Sign in</h1>
				<form id="sign-in-form" method="post" novalidate>
					<label for="token">API token</label>
					<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required
						aria-describedby="token-help token-error">
					<p id="token-help" class="help">The admin token or an API key. It is kept in this browser tab only
						(sessionStorage) and sent as <code>Authorization: Bearer</code>; closing the tab forgets it.</p>
					<p id="token-error" class="error" role="alert" hidden></p>
					<button type="submit">Sign in</button>
				</form>
				<noscript><p class="error">The dashboard needs JavaScript.</p></noscript>
			</section>
			<div id="view" hidden></div>
		</main>
		<div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
	</body>
</html>
`;
