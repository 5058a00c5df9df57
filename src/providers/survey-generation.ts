/**
 * Which survey may prime a snapshot (docs/adr/0018). A snapshot keeps this
 * process's writes from the moment a survey begins, so only the survey that
 * began last, with nothing cleared since, saw the world those writes are
 * measured against: an earlier one, or one the snapshot was cleared under,
 * may have read before a write that is no longer known, and must not prime.
 */
export class SurveyGeneration {
  #generation = 0;
  #collecting = false;

  /** Writes made now must be kept: a survey is reading or its answers are being given. */
  get collecting(): boolean {
    return this.#collecting;
  }

  /** A survey begins (after the snapshot cleared itself): the token its prime() must show. */
  open(): number {
    this.#collecting = true;
    return this.#generation;
  }

  /** Whether the survey under `token` may prime the snapshot now. */
  accepts(token: number): boolean {
    return this.#collecting && token === this.#generation;
  }

  /** Whether `token` is the newest survey's (its failure then clears the snapshot). */
  isLatest(token: number): boolean {
    return token === this.#generation;
  }

  /** The snapshot is cleared: every survey begun so far is refused. */
  close(): void {
    this.#generation += 1;
    this.#collecting = false;
  }
}
