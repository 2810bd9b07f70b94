/**
 * A capability with a lifecycle. Constructors only assign; `start()` acquires resources and `stop()` releases
 * them. The controller starts modules in order and stops them in reverse.
 */
export interface Module {
  readonly name: string;
  /** `signal` aborts when shutdown is requested while starting; long starts should honour it. */
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}
