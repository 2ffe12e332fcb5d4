/**
 * Queue delays that are plain numbers (no Worker types, so that the Node tests that check the
 * production configs read them too): the platform's limit, and the dead-letter outage schedule.
 */

/**
 * The longest delay a message is given. Cloudflare's documents disagree: the Queues limits page
 * (developers.cloudflare.com/queues/platform/limits/) says a message may be delayed up to 24 hours,
 * while the JavaScript API page (developers.cloudflare.com/queues/configuration/javascript-apis/,
 * `delaySeconds`) says 0 to 43,200 seconds (12 hours). A delay above what the platform takes would
 * make `retry()` throw and the message be retried at once, so every delay here stays within the
 * smaller of the two.
 */
export const MAX_DELAY_SECONDS = 43_200;

/**
 * A dead letter that only its message knows of (nothing in D1 a sweep would find), refused by D1:
 * a minute, doubling each delivery up to MAX_DELAY_SECONDS (60, 120, … 30,720 s, then 12 h), so
 * that caption-jobs-dlq's 14 retries span about 65 hours of outage (docs/recovery.md#a-d1-outage).
 */
export const deadLetterOutageDelay = (attempts: number): number =>
	Math.min(MAX_DELAY_SECONDS, 60 * 2 ** Math.max(0, attempts - 1));
