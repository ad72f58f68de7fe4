// Our UI message stream through the `ai` package's own client side: the default chat
// transport (which validates every chunk against the package's chunk schema) and
// readUIMessageStream (which assembles the UIMessage useChat would render).
// RX_ALLM_URL is the base URL of a server running rx_allm.ui handlers (started by pytest).
import { test } from "node:test";
import assert from "node:assert/strict";
import { DefaultChatTransport, readUIMessageStream, uiMessageChunkSchema } from "ai";

const BASE = process.env.RX_ALLM_URL;
assert.ok(BASE, "RX_ALLM_URL must name the server under test");

function userMessage(text, id = "u1") {
  return { id, role: "user", parts: [{ type: "text", text }] };
}

async function send(messages, api = `${BASE}/api/chat`) {
  const transport = new DefaultChatTransport({ api });
  const stream = await transport.sendMessages({
    chatId: "chat-node",
    messages,
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: new AbortController().signal,
  });
  const errors = [];
  let last;
  for await (const message of readUIMessageStream({ stream, onError: (e) => errors.push(e) })) {
    last = message;
  }
  return { message: last, errors };
}

test("the response carries the protocol header and ends with [DONE]", async () => {
  const response = await fetch(`${BASE}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: "c", messages: [userMessage("hello")], trigger: "submit-message" }),
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-vercel-ai-ui-message-stream"), "v1");
  assert.match(response.headers.get("content-type"), /^text\/event-stream/);
  const body = await response.text();
  const frames = body.split("\n\n").filter(Boolean);
  assert.equal(frames.at(-1), "data: [DONE]");
  for (const frame of frames.slice(0, -1)) {
    assert.ok(frame.startsWith("data: "), frame);
    const parsed = await uiMessageChunkSchema().validate(JSON.parse(frame.slice(6)));
    assert.equal(parsed.success, true, `${frame} is not a valid UI message chunk`);
  }
});

test("text arrives as one text part", async () => {
  const { message, errors } = await send([userMessage("hello")]);
  assert.deepEqual(errors, []);
  assert.equal(message.role, "assistant");
  const text = message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  assert.match(text, /^You asked: “(hello|again)”/);
  assert.equal(message.metadata.provider, "openai");
  assert.equal(message.metadata.model, "gpt-test");
});

test("a tool call arrives with its streamed arguments, its result and the next step", async () => {
  const { message, errors } = await send([userMessage("What is 6 * 7?")]);
  assert.deepEqual(errors, []);
  const tools = message.parts.filter((p) => p.type.startsWith("tool-"));
  assert.equal(tools.length, 1);
  assert.equal(tools[0].type, "tool-calculator");
  assert.ok(tools[0].toolCallId);
  assert.deepEqual(tools[0].input, { expression: "6 * 7" });
  assert.equal(tools[0].state, "output-available");
  assert.equal(tools[0].output, 42);
  assert.equal(message.parts.filter((p) => p.type === "step-start").length, 2);
  const text = message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  assert.match(text, /^The tool answered 42\./);
});

test("a conversation with a tool call goes back as history for the next turn", async () => {
  const first = await send([userMessage("What is 6 * 7?")]);
  const { message, errors } = await send([userMessage("What is 6 * 7?"), first.message, userMessage("thanks", "u2")]);
  assert.deepEqual(errors, []);
  const text = message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  assert.match(text, /^You asked: “thanks”/);
});

test("a second turn sends the history back and gets a new reply", async () => {
  const first = await send([userMessage("hello")]);
  const { message, errors } = await send([userMessage("hello"), first.message, userMessage("again", "u2")]);
  assert.deepEqual(errors, []);
  const text = message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
  assert.match(text, /^You asked: “(hello|again)”/);
});

test("an upstream error reaches the client as the protocol's error", async () => {
  const { message, errors } = await send([userMessage("please fail")]);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0].message), /^provider_unavailable: /);
  assert.doesNotMatch(String(errors[0].message), /sk-test-openai/);
  assert.ok(message === undefined || message.role === "assistant");
});

test("a malformed request is refused with a one-line reason", async () => {
  const response = await fetch(`${BASE}/api/chat`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "robot", parts: [] }] }),
  });
  assert.equal(response.status, 400);
  assert.equal(await response.text(), "invalid_request: messages.0.role: unknown role 'robot'");
});

test("reasoning arrives as a reasoning part before the text", async () => {
  const { message, errors } = await send([userMessage("what is 6 * 7?")], `${BASE}/reasoning/api/chat`);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    message.parts.filter((p) => p.type !== "step-start").map((p) => [p.type, p.text, p.state]),
    [
      ["reasoning", "Let me think. 6 times 7 is 42.", "done"],
      ["text", "42", "done"],
    ],
  );
});
