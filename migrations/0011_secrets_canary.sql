-- A value sealed with WEBHOOK_SECRETS_KEY (shared/webhooks/secrets-key.ts): the status and webhooks
-- Workers open it before they use the key, so a Worker given another key refuses to run instead of
-- sealing secrets nobody can open or failing every delivery.
CREATE TABLE secrets_canary (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	sealed TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
