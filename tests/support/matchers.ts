import { expect } from "vitest";

/**
 * Vitest types its asymmetric matchers as `any`, so one inside an object
 * literal is an unsafe assignment to the typed linter, and a typo in the
 * shape around it goes unchecked. These wrappers give each matcher the type
 * of the value it stands for.
 */
export const stringContaining = (text: string): string => expect.stringContaining(text) as string;
export const stringMatching = (pattern: RegExp | string): string => expect.stringMatching(pattern) as string;
export const objectContaining = <T extends object>(shape: T): T => expect.objectContaining(shape as Record<string, unknown>) as T;
export const anyArray = (): unknown[] => expect.any(Array) as unknown[];
