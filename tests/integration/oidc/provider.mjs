// A real OIDC provider (the npm package oidc-provider) for Ghaf's tests, on 127.0.0.1 only.
// Usage: node provider.mjs CONFIG.json — CONFIG has port, signing JWK (private, made by the
// test), audience, and clients [{client_id, client_secret, groups}]. Prints "ready ISSUER".
// With CONFIG.interactive ({client_id, redirect_uris, accounts: {login: groups}}) it also
// signs people in for a browser: a public authorization-code client (PKCE required), the
// provider's development login form (any password; sub = the login name, groups from
// accounts), and consent granted at once for that first-party client.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const groupsOf = Object.fromEntries(config.clients.map((c) => [c.client_id, c.groups]));
const interactive = config.interactive ?? null;
const accounts = interactive?.accounts ?? {};
const people = interactive
  ? [{
      client_id: interactive.client_id,
      grant_types: ['authorization_code'],
      redirect_uris: interactive.redirect_uris,
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }]
  : [];

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  })).concat(people),
  jwks: { keys: [config.jwk] },
  features: {
    devInteractions: { enabled: interactive !== null },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== config.audience) throw new Error(`unknown resource ${resource}`);
        return {
          scope: 'api',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  cookies: { keys: [config.cookie_key] },
  ttl: { ClientCredentials: 300 },
  extraTokenClaims: async (_ctx, token) => ({
    groups: token.accountId ? accounts[token.accountId] ?? [] : groupsOf[token.clientId] ?? [],
  }),
  claims: { openid: ['sub'], groups: ['groups'] },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, groups: accounts[id] ?? [] }),
  }),
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!interactive || ctx.oidc.client.clientId !== interactive.client_id) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid groups');
    grant.addOIDCClaims(['sub', 'groups']);
    grant.addResourceScope(config.audience, 'api');
    await grant.save();
    return grant;
  },
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
