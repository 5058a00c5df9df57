import { execFile } from "node:child_process";

/** How cfn-lint is run by the template tests (tests/unit/templates-lint.test.ts, deploy-template.test.ts). */

export const CFN_LINT_INSTALL_HINT =
  "cfn-lint is not on the PATH: install it with `pip install cfn-lint` (CI and the dev machines have it)";

export interface Finding {
  readonly Rule: { readonly Id: string };
  readonly Level: string;
  readonly Message: string;
  readonly Filename: string;
  readonly Location: { readonly Path?: readonly (string | number)[] };
}

export interface LintRun {
  readonly code: number;
  readonly findings: readonly Finding[];
  readonly stderr: string;
}

export function cfnLint(args: readonly string[]): Promise<LintRun> {
  return new Promise((resolve, reject) => {
    execFile("cfn-lint", [...args], { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === "ENOENT") return reject(new Error(CFN_LINT_INSTALL_HINT));
      const code = err ? Number((err as { code?: unknown }).code ?? 1) : 0;
      let findings: Finding[];
      try {
        findings = stdout.trim() === "" ? [] : (JSON.parse(stdout) as Finding[]);
      } catch {
        return reject(new Error(`cfn-lint exited ${code} with output that is not JSON:\n${stdout}\n${stderr}`));
      }
      resolve({ code, findings, stderr });
    });
  });
}

/** Informational (I) and experimental rules on; any finding, even informational, makes the exit code non-zero. */
export const lintAll = (files: readonly string[]) =>
  cfnLint(["--format", "json", "--include-checks", "I", "--include-experimental", "--non-zero-exit-code", "informational", "--", ...files]);

/** One line per finding, for an assertion that shows them all. */
export function readableFindings(run: LintRun, dir = ""): string[] {
  return run.findings.map(
    (f) =>
      `${f.Rule.Id} ${f.Level} ${dir === "" ? f.Filename : f.Filename.replace(dir, "")} ${(f.Location.Path ?? []).join("/")}: ${f.Message}`,
  );
}
