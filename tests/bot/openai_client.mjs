// The metered API driven by the official OpenAI client library (the
// `openai` npm package), against a running daemon. Run by
// tests/bot/test_daemon_api.c:
//   node openai_client.mjs MODULE_DIR BASE_URL KEY REVOKED EXPIRED LIMITED CHATONLY
// Prints "ok <check>" per check and "all ok" at the end; exits 1 on the
// first failure, naming it.
import { createRequire } from 'node:module';
import path from 'node:path';

const [moduleDir, baseURL, key, revoked, expired, limited, chatonly] = process.argv.slice(2);
const require = createRequire(path.join(moduleDir, 'index.js'));
const mod = require('openai');
const OpenAI = mod.default ?? mod;

function check(cond, what) {
  if (!cond) throw new Error(`failed: ${what}`);
  console.log(`ok ${what}`);
}

function client(apiKey) {
  // No retries: a 429 must reach the test, not be waited out.
  return new OpenAI({ apiKey, baseURL: `${baseURL}/v1`, maxRetries: 0, timeout: 20000 });
}

async function available() {
  const r = await fetch(`${baseURL}/api/v1/me`, { headers: { Authorization: `Bearer ${key}` } });
  const j = await r.json();
  return j.available;
}

async function expectStatus(promise, status, code, what) {
  try {
    await promise;
  } catch (e) {
    check(e.status === status && (code === null || e.code === code),
          `${what} (${e.status} ${e.code})`);
    return;
  }
  throw new Error(`failed: ${what}: no error`);
}

const api = client(key);
const start = await available();

const models = await api.models.list();
const ids = models.data.map((m) => m.id);
check(ids.includes('demo-chat') && ids.includes('demo-image'), 'models list');

const done = await api.chat.completions.create({
  model: 'demo-chat',
  messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }],
});
check(done.choices[0].message.content.startsWith('[demo]'), 'completion text');
check(done.choices[0].finish_reason === 'stop', 'completion finish reason');
check(done.usage.total_tokens > 0, 'completion usage');
check(done.haibot.credits_charged === 3, 'completion charged 3');
check((await available()) === start - 3, 'balance after the completion');

const stream = await api.chat.completions.create({
  model: 'demo-chat',
  messages: [{ role: 'user', content: 'stream please' }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = '';
let chunks = 0;
let usage = null;
let finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length > 0) {
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
}
check(chunks >= 3 && text.startsWith('[demo]'), `streamed in ${chunks} chunks`);
check(finish === 'stop', 'stream finish reason');
check(usage !== null && usage.completion_tokens > 0, 'stream usage chunk');
check((await available()) === start - 6, 'balance after the stream');

const image = await api.images.generate({ model: 'demo-image', prompt: 'a cat', size: '64x64' });
const png = Buffer.from(image.data[0].b64_json, 'base64');
check(png.subarray(1, 4).toString() === 'PNG', 'image is a PNG');
check((await available()) === start - 11, 'balance after the image');

await expectStatus(client('hai-' + '0'.repeat(64)).models.list(), 401, 'invalid_api_key',
                   'bad key refused');
await expectStatus(client(revoked).models.list(), 401, 'revoked_api_key', 'revoked key refused');
await expectStatus(client(expired).models.list(), 401, 'expired_api_key', 'expired key refused');
await expectStatus(api.chat.completions.create({
  model: 'pricey', messages: [{ role: 'user', content: 'hi' }],
}), 402, 'insufficient_credits', 'no credits');
const lim = client(limited);
await lim.models.list();
await lim.models.list();
await expectStatus(lim.models.list(), 429, 'rate_limit_exceeded', 'rate limit');
await expectStatus(client(chatonly).images.generate({ model: 'demo-image', prompt: 'a cat' }),
                   404, 'model_not_found', 'model the key may not use');
await expectStatus(api.chat.completions.create({
  model: 'demo-chat', messages: [{ role: 'user', content: 'x'.repeat(10000) }],
}), 413, 'request_too_large', 'body too large');
check((await available()) === start - 11, 'refusals charged nothing');
console.log('all ok');
