/** The plate reader's worker thread: the PP-OCRv4 sessions live here (their run() blocks this thread only). */
import { serveRecognizer } from '../worker-serve.js';
import { PlateEngine, type PlateEngineOptions } from './engine.js';

serveRecognizer((init: PlateEngineOptions) => PlateEngine.create(init));
