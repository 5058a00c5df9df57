/**
 * What a work queue reports about itself, the way client-go's workqueue does,
 * so that src/observability can export it under the names dashboards built
 * for controller-runtime already chart (workqueue_*{name}). The queue knows
 * only this interface; a Prometheus registry stays out of the reconciler
 * package, and a test can count calls with a plain object. Times in seconds.
 */
export interface QueueMetrics {
  /** A key became dirty (it was not waiting already): workqueue_adds_total. */
  added(): void;
  /** Keys that need processing and are not being processed yet: workqueue_depth. */
  depth(n: number): void;
  /** How long a key waited between its add and its hand-out to a worker: workqueue_queue_duration_seconds. */
  waited(seconds: number): void;
  /** How long a worker held a key, hand-out to done: workqueue_work_duration_seconds. */
  worked(seconds: number): void;
  /** A delayed add (a backoff retry or a requeue-after), counted as client-go counts it: workqueue_retries_total. */
  retried(): void;
}

/** Work handed out and not done yet, read when metrics are collected rather than pushed on a timer. */
export interface InProgress {
  /** Sum over the keys being processed of the time since each was handed out: workqueue_unfinished_work_seconds. */
  readonly unfinishedSeconds: number;
  /** The longest of those times: workqueue_longest_running_processor_seconds. */
  readonly longestSeconds: number;
}

export interface QueueMetricsProvider {
  /**
   * The metrics of the queue called `name`. `inProgress` is read at each
   * collection; a later queue of the same name (the next leadership term)
   * replaces the reader of the one before.
   */
  forQueue(name: string, inProgress: () => InProgress): QueueMetrics;
}
