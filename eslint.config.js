// ESLint flat config. Prettier formats (see .prettierrc.json); ESLint checks code: typescript-eslint's
// recommended rules, unused variables, type-only imports, and a 120-column line width.
import js from '@eslint/js';
import stylistic from '@stylistic/eslint-plugin';
import prettier from 'eslint-config-prettier';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: ['node_modules/', 'data/', '.cache/', 'coverage/', 'bench/results/'],
  },
  {
    files: ['**/*.{js,mjs,cjs,ts,mts,cts,tsx}'],
    extends: [js.configs.recommended, tseslint.configs.recommended, prettier],
    plugins: { '@stylistic': stylistic },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Prettier breaks what it can at 120; this catches what it cannot (long comments, long chains it leaves).
      // String, template and regular-expression literals and URLs are left whole rather than split.
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          tabWidth: 2,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
    },
  },
  {
    // `any` is how these read untyped JSON: FHIR resources and definitions walked member by member (src, and the IG's
    // StructureDefinitions in scripts/derive-profiles.ts), responses and documents probed by tests, autocannon's
    // requests and results (bench). Typing them precisely is its own change.
    files: [
      'src/fhir/document.ts',
      'src/fhir/profiles.ts',
      'src/fhir/r4-definitions.ts',
      'src/fhir/structure.ts',
      'src/fhir/validate.ts',
      'src/records/index-keys.ts',
      'scripts/derive-profiles.ts',
      'test/**',
      'bench/**',
    ],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
