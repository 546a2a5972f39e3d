/**
 * jose, loaded by the first token signed or verified (or the first OIDC exchange), not at start:
 * it is one ≈ 15 ms CPU module (issue 17: cold start) and nothing at start-up needs it — the key
 * files are read and checked with node:crypto (keys.ts), so a bad key still stops start-up.
 */
import { lazyModule } from '../registry-core/lazy-module';

export const jose = lazyModule(() => require('jose') as typeof import('jose'));
