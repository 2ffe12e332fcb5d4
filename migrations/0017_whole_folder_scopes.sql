-- A key's scope is a whole folder: its prefix ends with '/'. A key made before that rule could hold
-- 'customers/4', which also reached 'customers/42/…'; it now means the folder 'customers/4/'.
-- Its subscriptions follow it: one filtering on the old prefix (or on none) now filters on the
-- folder, and one that reached outside the folder (possible only through the old meaning) is
-- disabled with disabled_reason 'outside_key_scope', kept for the record like a revoked key's.
-- The subscriptions go first: they are matched against the keys' old prefixes.
UPDATE webhook_subscriptions
SET status = 'disabled', disabled_reason = 'outside_key_scope', updated_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE status = 'active'
	AND EXISTS (
		SELECT 1 FROM api_keys k
		WHERE k.id = webhook_subscriptions.key_id
			AND k.prefix IS NOT NULL AND substr(k.prefix, -1) <> '/'
			AND webhook_subscriptions.prefix IS NOT NULL
			AND webhook_subscriptions.prefix <> k.prefix
			AND substr(webhook_subscriptions.prefix, 1, length(k.prefix) + 1) <> k.prefix || '/'
	);

UPDATE webhook_subscriptions
SET prefix = (SELECT k.prefix || '/' FROM api_keys k WHERE k.id = webhook_subscriptions.key_id)
WHERE EXISTS (
	SELECT 1 FROM api_keys k
	WHERE k.id = webhook_subscriptions.key_id
		AND k.prefix IS NOT NULL AND substr(k.prefix, -1) <> '/'
		AND (webhook_subscriptions.prefix IS NULL OR webhook_subscriptions.prefix = k.prefix)
);

UPDATE api_keys SET prefix = prefix || '/' WHERE prefix IS NOT NULL AND substr(prefix, -1) <> '/';
