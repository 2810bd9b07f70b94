// The folder tree is the architecture: each folder imports only the folders below it. `npm run lint:layers`
// (part of `npm run lint`) fails on any import that climbs a floor, on a cycle, or on an import of tests/.
//
//   core ← contract ← config ← buffer, ingest ← inference ← agent ← cli   (center beside agent; tools, testkit, bench aside)
//
/** @type {import('dependency-cruiser').IConfiguration} */
const forbid = (name, comment, from, toPaths) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: toPaths } });
const ours = (...folders) => `^(${folders.join('|')})/`;

module.exports = {
  forbidden: [
    { name: 'no-cycles', comment: 'An import cycle hides which module owns what.', severity: 'error', from: {}, to: { circular: true } },
    forbid('core-is-the-ground-floor', 'core/ imports nothing of ours.', '^core/', ours('contract', 'config', 'buffer', 'ingest', 'inference', 'agent', 'center', 'cli', 'tools', 'testkit', 'bench', 'tests')),
    forbid('contract-only-core', 'The wire contract depends on core only.', '^contract/', ours('cli', 'config', 'buffer', 'ingest', 'inference', 'agent', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('config-below-the-stages', 'config/ imports core and contract only.', '^config/', ours('cli', 'buffer', 'ingest', 'inference', 'agent', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('buffer-knows-no-mqtt-or-vision', 'The outbox knows nothing of MQTT, vision or the programs.', '^buffer/', ours('cli', 'ingest', 'inference', 'agent', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('ingest-below-inference', 'Camera ingest (ffmpeg, frames, recording ring) knows nothing of what is done with the frames.', '^ingest/', ours('cli', 'buffer', 'inference', 'agent', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('inference-below-agent', 'The vision stages never reach up into the programs.', '^inference/', ours('cli', 'buffer', 'agent', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('agent-not-center', 'The edge program never imports the control-center program nor the CLI that assembles both.', '^agent/', ours('cli', 'center', 'tools', 'testkit', 'bench', 'tests')),
    forbid('center-not-edge', 'The center program never imports the edge program or its vision and buffer stages.', '^center/', ours('cli', 'agent', 'ingest', 'inference', 'buffer', 'tools', 'testkit', 'bench', 'tests')),
    forbid('tools-only-contract', 'Generators read the contract, nothing else.', '^tools/', ours('cli', 'buffer', 'ingest', 'inference', 'agent', 'center', 'testkit', 'bench', 'tests')),
    forbid('cli-is-the-top', 'The one binary assembles the programs; nothing but tests imports it.', '^(?!cli/|tests/)', '^cli/'),
    forbid('testkit-not-tests', 'Shared helpers never import tests or benchmarks.', '^testkit/', ours('tests', 'bench')),
    forbid('bench-not-tests', 'Benchmarks use testkit/, never tests/.', '^bench/', ours('tests')),
    forbid('nothing-imports-tests', 'tests/ is a leaf: only its own files import it.', '^(?!tests/)', '^tests/'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|models/build|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
