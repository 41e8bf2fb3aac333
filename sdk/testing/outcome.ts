import { QansError, type QansErrorCode } from "../errors.js";

/** What an action did: the code of the QansError it threw, "no error", or "foreign error" for any other throw. */
export type Outcome = QansErrorCode | "no error" | "foreign error";

function outcomeOf(error: unknown): Outcome {
  return error instanceof QansError ? error.code : "foreign error";
}

/** The outcome of calling `fn`. */
export function codeOf(fn: () => unknown): Outcome {
  try {
    fn();
    return "no error";
  } catch (error) {
    return outcomeOf(error);
  }
}

/** The outcome of awaiting `action`, or of calling it and awaiting its result. */
export async function codeOfAsync(action: Promise<unknown> | (() => unknown)): Promise<Outcome> {
  try {
    await (typeof action === "function" ? action() : action);
    return "no error";
  } catch (error) {
    return outcomeOf(error);
  }
}
