// Remote (and local) config changes: check, write, apply in place or by a restart, probation, rollback.
export { ConfigApplier, CONFIG_METRICS, type ConfigApplierDeps, type ConfigApplierStats, type ConfigApplyRequest, type ConfigApplyResult, type ConfigGetResult } from './applier.js';
export { CameraSet, type CameraChanges, type CameraSetDeps } from './camera-set.js';
export { diffCameras, planChanges, type CameraDiff, type ChangePlan } from './plan.js';
export { moduleProbe, type ProbedModules } from './probe.js';
export { Probation, type ProbationExcuses, type ProbationProbe, type ProbationSample, type ProbationVerdict } from './probation.js';
export { configHash, prevFileOf, recoverPendingConfig, type RecoveryReport } from './recovery.js';
export { CONFIG_STATE_FILE, readConfigState, type ConfigStateFile } from './state.js';
