export { bestRead, DEFAULT_DET_SIDE_PX, PlateEngine, type PlateEngineOptions, type PlateRead, type PlateResult } from './engine.js';
export { formatNumber, isCanonicalPlate, normalizePlate, SPECIAL_SERIES, type PlateFormat } from './format.js';
export { defaultPlateModels, type PlateModelPaths } from './models.js';
export { wantsPlateRead, type PlateReadCandidate, type PlateTrigger } from './policy.js';
export { PlateReader, type PlateReaderOptions } from './reader.js';
export { PlateVote, type PlateVerdict, type PlateVoteInput } from './vote.js';
