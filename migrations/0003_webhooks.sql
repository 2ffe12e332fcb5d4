-- Webhooks (described in docs/data.md): subscriptions, one event per finished job (the outbox), one delivery per
-- (event, target), and one row per HTTP attempt of a delivery.

-- A subscription receives the events it lists for jobs whose object key starts with `prefix`
-- (NULL: every key). Its secret signs every delivery, so it is kept in clear (never returned
-- after creation). A 410 answer disables it.
CREATE TABLE webhook_subscriptions (
	id TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	events TEXT NOT NULL,
	prefix TEXT,
	secret TEXT NOT NULL,
	-- The API key that created it (NULL: the admin token), for audit.
	key_id TEXT,
	status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
	disabled_reason TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_subscriptions_created ON webhook_subscriptions (created_at DESC, id DESC);

-- The outbox: written in the same D1 transaction that makes a job terminal, so a finished job
-- always has exactly one event (job_id is unique). `dispatched_at` is set once its deliveries
-- exist; the webhooks Worker's cron re-enqueues events that stay undispatched (their queue message
-- was never sent or was lost). `payload` is the body, fixed at dispatch.
CREATE TABLE webhook_events (
	id TEXT PRIMARY KEY,
	job_id TEXT NOT NULL UNIQUE,
	type TEXT NOT NULL CHECK (type IN ('job.succeeded', 'job.failed')),
	payload TEXT,
	created_at INTEGER NOT NULL,
	dispatched_at INTEGER
);
CREATE INDEX webhook_events_undispatched ON webhook_events (created_at) WHERE dispatched_at IS NULL;

-- One event sent to one target: a subscription (target = its id) or the job's callback-url
-- (target = 'callback'). The id is the `webhook-id` header, the same on every attempt and
-- redelivery. A lease (token + expiry) keeps two messages for one delivery from sending at once.
CREATE TABLE webhook_deliveries (
	id TEXT PRIMARY KEY,
	event_id TEXT NOT NULL,
	subscription_id TEXT,
	target TEXT NOT NULL,
	url TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts INTEGER NOT NULL DEFAULT 0,
	last_status_code INTEGER,
	last_error TEXT,
	lease_token TEXT,
	lease_expires_at INTEGER,
	next_attempt_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	completed_at INTEGER,
	UNIQUE (event_id, target)
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every HTTP attempt (or refusal to make one), with its outcome.
CREATE TABLE webhook_attempts (
	delivery_id TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	status_code INTEGER,
	duration_ms INTEGER NOT NULL,
	error TEXT,
	PRIMARY KEY (delivery_id, attempt)
);
