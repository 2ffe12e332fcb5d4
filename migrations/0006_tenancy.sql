-- Tenancy and secrets: subscriptions belong to the key that created them, are disabled
-- with it and after a day of failing; secrets are sealed (AES-GCM, shared/webhooks/secret-box.ts)
-- instead of stored in clear, and can be rotated with an overlap; a key has its own callback secret.
--
-- Rows written before this migration keep their clear `whsec_` secret in `secret`: both Workers
-- still read that form, and the webhooks Worker's cron seals such rows in place (a SQL migration
-- cannot run AES-GCM), so they stop being clear within one cron period after deployment.

-- `secret` now holds the sealed secret ("v1.<iv>.<ciphertext>", bound to the row's id).
-- After a rotation, the secret it replaced (sealed too) keeps signing, next to the new one, until
-- `previous_secret_expires_at`.
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret_expires_at INTEGER;
-- When the endpoint's current run of failed attempts began (NULL: its last attempt succeeded, or
-- none failed yet). A run that lasts 24 h disables the subscription.
ALTER TABLE webhook_subscriptions ADD COLUMN failing_since INTEGER;
-- Per-key quota and revocation look subscriptions up by their owner.
CREATE INDEX webhook_subscriptions_key ON webhook_subscriptions (key_id, status);

-- The sealed `whsec_` secret that signs callbacks of this key's jobs and batches (NULL: a key made
-- before this migration, whose callbacks keep the service-wide WEBHOOK_SECRET).
ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;

-- The API key that created the job (NULL: the admin token, or an R2 notification).
ALTER TABLE jobs ADD COLUMN key_id TEXT;

-- For a callback-url delivery: the key whose secret signs it (NULL: WEBHOOK_SECRET).
ALTER TABLE webhook_deliveries ADD COLUMN key_id TEXT;
