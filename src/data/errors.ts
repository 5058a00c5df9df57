import { TerminalError, TransientError } from "../errors.js";

/**
 * Errors of the data mover that callers act on by type (style: classified
 * once, by type, never by message).
 */

/**
 * The stream no longer holds the records after the checkpoint (DynamoDB keeps
 * 24 hours): changes may have been lost, so the move must start over from a
 * fresh openCapture and backfill. Terminal for this checkpoint, transient
 * for the move: the tier-move runner starts it over, and a reconcile that
 * sees it escape does the same on its next try.
 */
export class CaptureLostError extends TransientError {
  constructor(
    readonly table: string,
    readonly shardId: string,
    options?: ErrorOptions,
  ) {
    super(
      `the stream of table ${table} no longer holds shard ${shardId} from the checkpoint on (records older than 24 hours are trimmed); start the copy again from a new capture`,
      options,
    );
  }
}

/** A backup that cannot be restored as asked: wrong tenant, missing or corrupt objects. Terminal until the backup or the request changes. */
export class BackupError extends TerminalError {}

/** A table without a stream cannot be captured; the move cannot start. */
export class NoStreamError extends Error {
  constructor(readonly table: string) {
    super(`table ${table} has no stream: enable DynamoDB Streams (NEW_AND_OLD_IMAGES or NEW_IMAGE) before moving its data`);
    this.name = "NoStreamError";
  }
}
