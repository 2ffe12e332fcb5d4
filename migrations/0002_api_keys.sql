-- API keys of the status API (described in docs/data.md). The token itself is shown once at creation and never
-- stored: only its SHA-256 digest (hex), which is what requests are looked up by. A key may be
-- limited to an object-key prefix (scope); NULL means every key. Revoked keys stay listed.
CREATE TABLE api_keys (
	id TEXT PRIMARY KEY,
	name TEXT,
	prefix TEXT,
	token_hash TEXT NOT NULL UNIQUE,
	-- The first characters of the token, so a user can tell keys apart without the secret.
	token_hint TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
