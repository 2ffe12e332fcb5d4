-- A scoped key's GET /v1/webhooks reads only the subscriptions inside its prefix, as an index range
-- (described in docs/data.md), instead of walking every subscription newest first.
CREATE INDEX webhook_subscriptions_prefix ON webhook_subscriptions (prefix);
