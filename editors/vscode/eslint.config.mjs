// ESLint for the extension's TypeScript, run by `cargo xtask test` before the tests.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/**", "out/**", "out-test/**", "node_modules/**", "esbuild.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The end-to-end harness runs as plain CommonJS under node.
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: globals.node },
    rules: {
      "@typescript-eslint/no-require-imports": "off",
      // The fake vscode module defines its own `Disposable`, as vscode does.
      "no-redeclare": ["error", { builtinGlobals: false }],
    },
  },
  {
    files: ["**/*.ts"],
    rules: {
      // Unused parameters named `_x` are deliberate (callback signatures).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
