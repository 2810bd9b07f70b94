// Under the agent's V8 flags (runtime-env.ts AGENT_NODE_FLAGS) there is no WebAssembly. Node's fetch family is
// undici, whose HTTP parser is WebAssembly: the first touch of any of these globals throws "WebAssembly is not
// defined", even `typeof Response`, which libraries use to sniff their runtime (pg does as it loads). Without
// WebAssembly they are removed, so they read as absent. Every entry point imports this module first.
const global = globalThis as Record<string, unknown>;
if (global.WebAssembly === undefined) {
  for (const name of ['fetch', 'Request', 'Response', 'Headers', 'FormData', 'MessageEvent']) delete global[name];
}
export {};
