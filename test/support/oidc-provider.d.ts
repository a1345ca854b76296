// oidc-provider ships no types; the tests use a small part of it (test/support/oidc-issuer.ts).
declare module 'oidc-provider';
