// Our AG-UI endpoint through @ag-ui/client's HttpAgent: it validates and verifies the
// event sequence and assembles the messages an AG-UI front end renders.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpAgent } from "@ag-ui/client";

const BASE = process.env.RX_ALLM_URL;
assert.ok(BASE, "RX_ALLM_URL must name the server under test");

function agent(text) {
  return new HttpAgent({
    url: `${BASE}/api/agui`,
    threadId: "thread-node",
    initialMessages: [{ id: "u1", role: "user", content: text }],
  });
}

test("text arrives as an assistant message", async () => {
  const a = agent("hello");
  const seen = [];
  await a.runAgent({ runId: "run-1" }, { onEvent: ({ event }) => seen.push(event.type) });
  assert.equal(seen[0], "RUN_STARTED");
  assert.equal(seen.at(-1), "RUN_FINISHED");
  const replies = a.messages.filter((m) => m.role === "assistant");
  assert.match(replies.map((m) => m.content).join(""), /^You asked: “hello”/);
});

test("a tool call arrives with its arguments and result, then the answer", async () => {
  const a = agent("What is 6 * 7?");
  await a.runAgent({ runId: "run-2" });
  const calls = a.messages.flatMap((m) => (m.role === "assistant" ? m.toolCalls ?? [] : []));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, "calculator");
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { expression: "6 * 7" });
  const results = a.messages.filter((m) => m.role === "tool");
  assert.equal(results.length, 1);
  assert.equal(results[0].toolCallId, calls[0].id);
  assert.equal(results[0].content, "42");
  const last = a.messages.at(-1);
  assert.equal(last.role, "assistant");
  assert.match(last.content, /^The tool answered 42\./);
});

test("a thread with a tool call continues on the next run", async () => {
  const a = agent("What is 6 * 7?");
  await a.runAgent({ runId: "run-6" });
  a.addMessage({ id: "u2", role: "user", content: "thanks" });
  await a.runAgent({ runId: "run-7" });
  assert.match(a.messages.at(-1).content, /^You asked: “thanks”/);
});

test("a second run continues the thread", async () => {
  const a = agent("hello");
  await a.runAgent({ runId: "run-3" });
  a.addMessage({ id: "u2", role: "user", content: "again" });
  await a.runAgent({ runId: "run-4" });
  const replies = a.messages.filter((m) => m.role === "assistant");
  assert.equal(replies.length, 2);
});

test("an upstream error is RUN_ERROR with the typed reason", async () => {
  const a = agent("please fail");
  const errors = [];
  try {
    await a.runAgent({ runId: "run-5" }, { onRunErrorEvent: ({ event }) => errors.push(event) });
  } catch (error) {
    errors.push({ thrown: String(error) });
  }
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.equal(errors[0].code, "provider_unavailable");
  assert.match(errors[0].message, /^provider_unavailable: /);
});

test("reasoning arrives before the answer", async () => {
  const a = new HttpAgent({
    url: `${BASE}/reasoning/api/agui`,
    threadId: "thread-reasoning",
    initialMessages: [{ id: "u1", role: "user", content: "what is 6 * 7?" }],
  });
  const reasoning = [];
  await a.runAgent(
    { runId: "run-r" },
    { onReasoningMessageContentEvent: ({ event }) => reasoning.push(event.delta) },
  );
  assert.equal(reasoning.join(""), "Let me think. 6 times 7 is 42.");
  assert.equal(a.messages.filter((m) => m.role === "assistant").map((m) => m.content).join(""), "42");
});
