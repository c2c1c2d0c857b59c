// A real OpenID Connect provider (node-oidc-provider 9) for the single sign-on tests, on
// loopback only. Its own login page ("devInteractions": any login name, any password, then a
// consent page) is what the browser goes through; the accounts and their claims come from the
// input.
//
//   node e2e/oidc-provider.mjs '{"port": 9000, "clients": [...], "accounts": {...}}'
//
// input: {"port", "clients": [{"client_id", "client_secret"?, "redirect_uris",
//   "wrongAudience"?}], "accounts": {"<login>": {claims}}}. Prints one JSON line
// {"ready": true, "issuer"} once it listens; stops on SIGTERM.
//
// `wrongAudience: "<other client id>"` is the test's one departure from a plain provider: ID
// tokens issued to that client are made out to the other client (signed by the provider's
// real key), which is what a token meant for another application looks like.

import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const cfg = JSON.parse(process.argv[2] ?? "{}");
const host = "127.0.0.1";
const issuer = `http://${host}:${cfg.port}`;

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-rs256", alg: "RS256", use: "sig" };

const accounts = cfg.accounts ?? {};
const provider = new Provider(issuer, {
  clients: (cfg.clients ?? []).map(({ wrongAudience, ...c }) => ({
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: c.client_secret ? "client_secret_basic" : "none",
    ...c,
  })),
  jwks: { keys: [jwk] },
  cookies: { keys: ["bedrud-test-cookie-key"] },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});

// Quiet the provider's own development warnings; the test reads only the JSON line.
provider.on("server_error", (_ctx, err) => console.error(`provider error: ${err?.message ?? err}`));

const wrong = Object.fromEntries((cfg.clients ?? []).filter((c) => c.wrongAudience).map((c) => [c.client_id, c.wrongAudience]));
if (Object.keys(wrong).length) {
  const IdToken = provider.IdToken;
  const issue = IdToken.prototype.issue;
  IdToken.prototype.issue = async function (opts) {
    const other = this.client && wrong[this.client.clientId];
    if (other && opts?.use === "idtoken") this.client = await provider.Client.find(other);
    return issue.call(this, opts);
  };
}

const server = provider.listen(cfg.port, host, () => console.log(JSON.stringify({ ready: true, issuer })));
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
