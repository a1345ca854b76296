/**
 * Configuration is the environment, parsed once at start with zod and
 * documented in README.md ("Configuration"). Laptop-safe defaults.
 */
import { z } from 'zod';
import { DEFAULT_ABHA_SYSTEMS } from './fhir/abha.js';

const list = (fallback: string[]) =>
  z
    .string()
    .optional()
    .transform((v) =>
      v
        ? v
            .split(',')
            .map((s) => s.trim().replace(/\/$/, ''))
            .filter(Boolean)
        : fallback,
    );

export const ConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  MONGODB_URI: z.string().url().optional(),
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,63}$/)
    .default('abha_vault'),
  DATA_DIR: z.string().default('./data'),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  MAX_JSON_DEPTH: z.coerce.number().int().min(8).max(1000).default(64),
  MAX_BUNDLE_ENTRIES: z.coerce.number().int().min(1).default(1000),
  MAX_STRING_LENGTH: z.coerce
    .number()
    .int()
    .min(64)
    .default(8 * 1024 * 1024),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(1200),
  RATE_LIMIT_BURST: z.coerce.number().int().min(1).default(200),
  METRICS_PUBLIC: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  DB_COMMAND_METRICS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  SEARCH_DEFAULT_COUNT: z.coerce.number().int().min(1).max(1000).default(20),
  SEARCH_MAX_COUNT: z.coerce.number().int().min(1).max(1000).default(100),
  IMPORT_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(64),
  ABHA_IDENTIFIER_SYSTEMS: list(DEFAULT_ABHA_SYSTEMS),
  DB_TIMEOUT_MS: z.coerce.number().int().min(100).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PUBLIC_BASE_URL: z.string().url().optional(),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_PUBLIC_KEY_FILE: z.string().optional(),
  AUTH_ISSUER: z.string().optional(),
  AUTH_AUDIENCE: z.string().optional(),
  AUTH_GATEWAY_CLIENTS: list([]),
  GATEWAY_JWKS_URL: z.string().url().optional(),
  PAGING_KEYS_FILE: z.string().optional(),
  PAGING_CURSOR_TTL_SEC: z.coerce.number().int().min(60).max(86_400).default(1800),
  CONSENT_SWEEP_MS: z.coerce.number().int().min(1000).default(60_000),
  // The ABDM gateway (src/abdm/gateway.ts, src/abdm/dialect.ts): the base of the dialect GATEWAY_API_VERSION names
  // (v3: https://dev.abdm.gov.in/api/hiecm in the sandbox); v0.5 messages are answered at GATEWAY_V05_BASE_URL when set.
  GATEWAY_BASE_URL: z.string().url().optional(),
  GATEWAY_API_VERSION: z.enum(['v3', 'v0.5']).default('v3'),
  GATEWAY_V05_BASE_URL: z.string().url().optional(),
  GATEWAY_CLIENT_ID: z.string().optional(),
  GATEWAY_CLIENT_SECRET: z.string().optional(),
  GATEWAY_CM_ID: z.string().default('sbx'),
  GATEWAY_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  // HIP-initiated linking, context and SMS notify (src/abdm/hip-linking.ts): on whenever a gateway is configured.
  HIP_INITIATED_LINKING: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  HIP_LINK_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  HIP_LINK_BACKOFF_MS: z.coerce.number().int().min(0).default(30_000),
  HIP_LINK_SWEEP_MS: z.coerce.number().int().min(1000).default(15_000),
  // How long a generate-token or link/carecontext waits for the gateway's answer before the try counts as failed.
  HIP_LINK_ANSWER_TIMEOUT_MS: z.coerce.number().int().min(1000).default(300_000),
  // The push's destinations (src/http/outbound.ts): https only unless HI_PUSH_ALLOW_HTTP (default: outside production);
  // never loopback, private, link-local or the store's own addresses unless HI_PUSH_ALLOWED_HOSTS names them.
  HI_PUSH_ALLOW_HTTP: z.enum(['true', 'false']).optional(),
  HI_PUSH_ALLOWED_HOSTS: list([]),
  HI_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(10),
  HI_PUSH_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
  HI_PUSH_BACKOFF_MS: z.coerce.number().int().min(0).default(500),
  HI_PUSH_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  LINK_OTP_TTL_SEC: z.coerce.number().int().min(30).default(300),
  LINK_OTP_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  // Linking: one-time code delivery, discovery records, link/init limits (src/abdm/otp-delivery.ts,
  // src/abdm/linking.ts).
  // Unset delivery: console outside production; production refuses to start unless it is webhook (checkLinkingConfig).
  LINK_OTP_DELIVERY: z.enum(['console', 'webhook']).optional(),
  LINK_OTP_WEBHOOK_URL: z.string().url().optional(),
  LINK_OTP_WEBHOOK_SECRET: z.string().min(32).optional(),
  LINK_OTP_WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(4),
  LINK_OTP_WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(0).max(60_000).default(250),
  LINK_OTP_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  LINK_DISCOVERY_TTL_SEC: z.coerce.number().int().min(60).max(86_400).default(1800),
  LINK_INIT_PER_PATIENT_PER_HOUR: z.coerce.number().int().min(1).default(5),
  LINK_INIT_PER_CALLER_PER_MINUTE: z.coerce.number().int().min(0).default(60),
  // The web page's sign-in (src/web/sign-in.ts): OpenID Connect when OIDC_ISSUER is set; outside production, also
  // a development form that mints a token from the development key.
  OIDC_ISSUER: z.string().url().optional(),
  OIDC_CLIENT_ID: z.string().min(1).optional(),
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OIDC_REDIRECT_URL: z.string().url().optional(),
  OIDC_SCOPE: z.string().default('openid profile'),
  OIDC_ROLE_CLAIM: z.string().min(1).default('abdm_role'),
  OIDC_FACILITY_CLAIM: z.string().min(1).default('abdm_facility'),
  WEB_SESSION_TTL_SEC: z.coerce.number().int().min(60).max(3600).default(3600),
  WEB_DEV_SIGN_IN: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
});

export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`Invalid configuration:\n${lines}`);
  }
  const oidc = ['OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET'] as const;
  const oidcSet = oidc.filter((k) => parsed.data[k] !== undefined);
  if (oidcSet.length > 0 && oidcSet.length < oidc.length) {
    throw new Error(
      `Invalid configuration:\n  ${oidc.filter((k) => !oidcSet.includes(k)).join(', ')}: required with ${oidcSet.join(', ')} (OpenID Connect sign-in needs all three)`,
    );
  }
  if (parsed.data.NODE_ENV === 'production' && !parsed.data.PUBLIC_BASE_URL) {
    throw new Error(
      'Invalid configuration:\n  PUBLIC_BASE_URL: required with NODE_ENV=production (every link the server writes is built on it)',
    );
  }
  return parsed.data;
}

/** The request-body limits every JSON route applies (guard). */
export const guardLimits = (config: Config) => ({
  maxBytes: config.MAX_BODY_BYTES,
  maxDepth: config.MAX_JSON_DEPTH,
  maxStringLength: config.MAX_STRING_LENGTH,
});

/** The document validator's options from configuration. */
export const validatorOptions = (config: Config) => ({
  ...guardLimits(config),
  maxEntries: config.MAX_BUNDLE_ENTRIES,
  abhaSystems: config.ABHA_IDENTIFIER_SYSTEMS,
});
