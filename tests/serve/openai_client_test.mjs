// expo serve through the official OpenAI Node client (npm package `openai`), as an application
// would use it: models list, chat completions plain and streamed (the streamed text equal to
// the plain answer for the same request), text completions plain and streamed, stop strings,
// usage, logprobs, errors, and 16 streamed requests at once each equal to its answer alone.
// Usage: node tests/serve/openai_client_test.mjs BASE_URL MODEL OPENAI_PACKAGE_DIR
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const [baseURL, model, packageDir] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const OpenAI = require(packageDir);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'not-needed', maxRetries: 0 });

let passed = 0;
let failed = 0;
async function check(name, body) {
  try {
    await body();
    passed += 1;
  } catch (e) {
    failed += 1;
    console.log(`FAIL: ${name}\n  | ${String(e && e.stack ? e.stack : e).split('\n').slice(0, 8).join('\n  | ')}`);
  }
}

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour.' },
];
const sampled = { model, messages, max_tokens: 24, temperature: 0.9, top_p: 0.95, seed: 7 };

async function streamedChat(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function contentOf(chunks) {
  return chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
}

await check('models list', async () => {
  const page = await client.models.list();
  const ids = [];
  for await (const m of page) ids.push(m.id);
  assert.deepEqual(ids, [model]);
});

let plain;
await check('chat completion', async () => {
  plain = await client.chat.completions.create(sampled);
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.model, model);
  assert.equal(plain.choices.length, 1);
  assert.equal(plain.choices[0].message.role, 'assistant');
  assert.equal(typeof plain.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(plain.choices[0].finish_reason));
  const u = plain.usage;
  assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
});

await check('the same request gives the same answer', async () => {
  const again = await client.chat.completions.create(sampled);
  assert.equal(again.choices[0].message.content, plain.choices[0].message.content);
});

await check('streamed chat equals the plain answer', async () => {
  const chunks = await streamedChat(sampled);
  assert.ok(chunks.length >= 3);
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(contentOf(chunks), plain.choices[0].message.content);
  const finish = chunks.filter((c) => c.choices[0] && c.choices[0].finish_reason);
  assert.equal(finish.length, 1);
  assert.equal(finish[0].choices[0].finish_reason, plain.choices[0].finish_reason);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, plain.usage);
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  assert.ok(chunks.every((c) => c.id === chunks[0].id));
});

await check('stop string cuts the answer, plain and streamed', async () => {
  // A sampled answer (seeded) with an ASCII character after its start, as the stop string.
  let greedy;
  let full;
  let at = -1;
  for (let seed = 1; seed < 50 && at <= 0; seed += 1) {
    greedy = { model, messages, max_tokens: 32, temperature: 1.0, seed };
    full = (await client.chat.completions.create(greedy)).choices[0].message.content;
    at = [...full].findIndex((ch, i) => i > 0 && /[!-~]/.test(ch));
  }
  assert.ok(at > 0, `no ASCII character to stop at in ${JSON.stringify(full)}`);
  const stop = [...full][at];
  const expected = full.slice(0, full.indexOf(stop));
  const cut = await client.chat.completions.create({ ...greedy, stop: [stop, '\u0000never'] });
  assert.equal(cut.choices[0].message.content, expected);
  assert.equal(cut.choices[0].finish_reason, 'stop');
  const streamed = await streamedChat({ ...greedy, stop });
  assert.equal(contentOf(streamed), expected);
});

await check('text completion, plain and streamed', async () => {
  const params = { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0.8, seed: 3 };
  const c = await client.completions.create(params);
  assert.equal(c.object, 'text_completion');
  assert.equal(typeof c.choices[0].text, 'string');
  assert.equal(c.usage.completion_tokens, 12);
  assert.equal(c.choices[0].finish_reason, 'length');
  const stream = await client.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, c.choices[0].text);
  assert.equal(finish, 'length');
  // The completions API's default length is 16 tokens.
  const short = await client.completions.create({ model, prompt: 'Hi', temperature: 0, stop: null });
  assert.ok(short.usage.completion_tokens <= 16);
});

await check('max_completion_tokens', async () => {
  const c = await client.chat.completions.create({ model, messages, max_completion_tokens: 3, temperature: 0, stop: [] });
  assert.ok(c.usage.completion_tokens <= 3);
});

await check('logprobs', async () => {
  const c = await client.chat.completions.create({ model, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = c.choices[0].logprobs.content;
  assert.equal(content.length, c.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most probable one.
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-9);
  }
});

await check('errors: unknown model 404, unsupported field 400', async () => {
  await assert.rejects(client.chat.completions.create({ ...sampled, model: 'gpt-4' }), (e) => e.status === 404 && /does not exist/.test(e.message));
  await assert.rejects(client.chat.completions.create({ ...sampled, n: 2 }), (e) => e.status === 400 && /`n`/.test(e.message));
});

await check('16 concurrent streamed requests each equal their answer alone', async () => {
  const params = (i) => ({ model, messages: [{ role: 'user', content: `Tell me about ${i}.` }], max_tokens: 16, temperature: 1.0, seed: 100 + i });
  const alone = [];
  for (let i = 0; i < 16; i += 1) alone.push((await client.chat.completions.create(params(i))).choices[0].message.content);
  const together = await Promise.all([...Array(16).keys()].map(async (i) => contentOf(await streamedChat(params(i)))));
  assert.deepEqual(together, alone);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
