// The typed linter: rules that need the type checker (floating promises,
// misused promises, unsafe any) catch what tsc alone lets through.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Fakes and adapters implement async ports with synchronous bodies on purpose.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    // Ports are a leaf (src/ports.ts): adapters and the generic reconciler machinery never reach into the operator.
    files: ["src/reconciler/**", "src/providers/**", "src/data/**", "src/tiers/**", "src/apps/**", "src/tenants/**", "src/ports.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["**/operator/*"], message: "Import from src/ports.ts instead." }] }],
    },
  },
  { files: ["**/*.js"], ...tseslint.configs.disableTypeChecked },
  // The installed command is plain JavaScript run by Node, with Node's globals.
  { files: ["bin/**/*.js"], languageOptions: { globals: { console: "readonly", process: "readonly" } } },
);
