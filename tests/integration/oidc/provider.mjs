// A real OIDC provider (the npm package oidc-provider) for Ghaf's tests, on 127.0.0.1 only.
// Usage: node provider.mjs CONFIG.json — CONFIG has port, signing JWK (private, made by the
// test), audience, and clients [{client_id, client_secret, groups}]. Prints "ready ISSUER".
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const groupsOf = Object.fromEntries(config.clients.map((c) => [c.client_id, c.groups]));

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
  })),
  jwks: { keys: [config.jwk] },
  features: {
    devInteractions: { enabled: false },
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
  extraTokenClaims: async (_ctx, token) => ({ groups: groupsOf[token.clientId] ?? [] }),
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(config.port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
