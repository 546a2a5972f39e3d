/**
 * The size limits of what clients may send the dashboard (docs/http-api.md), and the door to the
 * schemas:
 * the routes and the socket need these numbers at start-up, while the zod schemas in requests.ts
 * (zod itself ≈ 25 ms CPU to load, the schemas ≈ 10 ms to build) are loaded at the first request
 * that is validated (issue 17: cold start).
 */
import { lazyModule } from '../registry-core/lazy-module';

/** Upper bound of a dashboard API body or WebSocket message; the longest valid one is a URL op. */
export const MAX_BODY_BYTES = 4096;
export const MAX_URL_LENGTH = 2048;
/** The longest npm package name: the longest useful name filter. */
export const MAX_FILTER_LENGTH = 214;
export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;
/** The largest page `GET /_dashboard/api/packages` answers. */
export const MAX_PAGE_SIZE = 500;

/** requests.ts (the zod schemas), loaded once, by the first request or message that needs one. */
export const requestSchemas = lazyModule(() => require('./requests') as typeof import('./requests'));
