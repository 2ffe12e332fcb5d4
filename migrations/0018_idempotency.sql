-- Idempotent creates (docs/api.md, "Idempotent creates"): the first answer to a create sent with an
-- Idempotency-Key, kept 24 hours and replayed to a retry with the same key and the same request.
-- `id` is '<principal>:<Idempotency-Key>' (the principal is 'admin' or the API key's id), so one
-- key's idempotency keys never collide with another's. `status` is NULL while the first request
-- runs; `response` is its body, sealed like webhook secrets (a key's token is in it).
CREATE TABLE idempotency_keys (
	id TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	status INTEGER,
	response TEXT,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
-- The status Worker deletes expired rows a few at a time after each create.
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
