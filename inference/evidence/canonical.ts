// The writer's canonical JSON is the format's (contract/evidence.ts): one definition, re-exported for the code
// that imports it from here.
export { canonicalJson } from '../../contract/evidence.js';

/** A value canonical JSON can hold (the writer's manifests are built from these). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };
