// An OpenID provider on loopback for the sign-in tests: the npm package oidc-provider
// (OpenID-certified), with its own sign-in page that checks a password, test users in
// groups, and JWT access tokens for the relay's API as a hospital's provider issues them.
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"port", "jwks": {"keys": [private JWKs]}, "client": {client metadata},
//          "audience", "scope", "users": {"name": {"password", "groups": [...]}}}
// It prints "listening <issuer>" once it answers.
import { readFileSync } from 'node:fs';
import { Provider } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;
const users = config.users;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
</head><body><h1>${title}</h1>${body}</body></html>`;
}

function loginForm(uid, error) {
  return page('Hospital sign-in', `
<form method="post" action="/interaction/${uid}/login">
  <label for="username">User name</label> <input id="username" name="username" required>
  <label for="password">Password</label> <input id="password" name="password" type="password" required>
  <button id="sign-in" type="submit">Sign in</button>
  ${error ? `<p id="error" role="alert">${escape(error)}</p>` : ''}
</form>
<p><a id="cancel" href="/interaction/${uid}/abort">Cancel</a></p>`);
}

const provider = new Provider(issuer, {
  clients: [config.client],
  jwks: config.jwks,
  cookies: { keys: ['test-provider-cookie-key'] },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
  scopes: ['openid', 'profile', 'groups', 'offline_access'],
  async findAccount(ctx, sub) {
    if (!users[sub]) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, name: sub, groups: users[sub].groups };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => config.audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== config.audience) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: config.scope,
          audience: config.audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // The groups travel in the access token, where the relay's API reads them.
  async extraTokenClaims(ctx, token) {
    const user = users[token.accountId];
    return user ? { groups: user.groups, preferred_username: token.accountId } : undefined;
  },
  // A first-party application: the hospital has consented for its staff.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile groups');
    grant.addResourceScope(config.audience, config.scope);
    await grant.save();
    return grant;
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600,
         Session: 3600, Grant: 3600 },
});

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== match[1]) ctx.throw(400, 'interaction mismatch');
  if (!match[2] && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginForm(details.uid);
    return undefined;
  }
  if (match[2] === '/abort') {
    return provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied', error_description: 'the user cancelled the sign-in' });
  }
  if (match[2] === '/login' && ctx.method === 'POST') {
    const form = new URLSearchParams(await readBody(ctx.req));
    const name = form.get('username');
    if (!users[name] || users[name].password !== form.get('password')) {
      ctx.type = 'html';
      ctx.body = loginForm(details.uid, 'Wrong user name or password.');
      return undefined;
    }
    return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: name } },
      { mergeWithLastSubmission: false });
  }
  return next();
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
