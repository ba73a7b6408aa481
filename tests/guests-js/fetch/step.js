// Outbound HTTP from JavaScript: `fetch(url)` (input url), with the secret
// named by input token-secret as a bearer token. Outputs status and body;
// a refused or failed request fails the run with fetch's error.

import { input, requireInput, requireSecret, setOutput } from '@stepbox/sdk';

export async function run() {
  const url = requireInput('url');
  const headers = {};
  const tokenSecret = input('token-secret');
  if (tokenSecret !== undefined) headers.authorization = `Bearer ${requireSecret(tokenSecret)}`;
  const response = await fetch(url, { headers });
  setOutput('status', String(response.status));
  setOutput('body', await response.text());
}
