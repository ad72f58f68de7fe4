// What an AG-UI client sends back besides text, through the real HttpAgent (which validates
// every event against @ag-ui/core's schemas and keeps what they give each message).
// RX_ALLM_URL is the base URL of the server pytest started: /<provider>/api/agui answers with
// that provider (through the emulator, reasoning on); the client declares get_weather and runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpAgent } from "@ag-ui/client";

const BASE = process.env.RX_ALLM_URL;
assert.ok(BASE, "RX_ALLM_URL must name the server under test");
// The first bytes of a PNG file, base64.
const PNG = "iVBORw0KGgoAAAANSUhEUg==";
const WEATHER = { name: "get_weather", description: "The weather in a city", parameters: { type: "object" } };

function agent(provider, content) {
  return new HttpAgent({
    url: `${BASE}/${provider}/api/agui`,
    threadId: `thread-${provider}`,
    initialMessages: [{ id: "u1", role: "user", content }],
  });
}

const assistantText = (a) => a.messages.filter((m) => m.role === "assistant").map((m) => m.content ?? "").join("");

// Where the data each API needs back rides: the opaque encryptedValue the client keeps.
const KEPT = {
  anthropic: (messages) => messages.find((m) => m.role === "reasoning").encryptedValue,
  gemini: (messages) => messages.find((m) => m.toolCalls).toolCalls[0].encryptedValue,
  // the reasoning item, and the message item that follows it
  responses: (messages) =>
    messages.find((m) => m.role === "reasoning").encryptedValue &&
    messages.find((m) => m.role === "assistant").encryptedValue,
};

for (const provider of Object.keys(KEPT)) {
  test(`${provider}: an image part of a user message reaches the model`, async () => {
    const a = agent(provider, [
      { type: "text", text: "What is this?" },
      { type: "image", source: { type: "data", value: PNG, mimeType: "image/png" } },
    ]);
    await a.runAgent({ runId: `img-${provider}` });
    // The emulated model names what reached it in the provider's request body.
    assert.equal(assistantText(a), "I see one image/png image.");
  });

  test(`${provider}: a part the library cannot send is refused in one line`, async () => {
    const a = agent(provider, [
      { type: "text", text: "Summarise" },
      { type: "document", source: { type: "data", value: "JVBERi0=", mimeType: "application/pdf" } },
    ]);
    await assert.rejects(a.runAgent({ runId: `pdf-${provider}` }), (error) => {
      assert.equal(error.status, 400);
      assert.equal(
        error.payload,
        "invalid_request: messages.0.content.1.type: cannot send this document part to the model: images only",
      );
      return true;
    });
  });

  test(`${provider}: reasoning, a tool the client runs, then a valid follow-up`, async () => {
    const a = agent(provider, "Weather in Oslo?");
    await a.runAgent({ runId: `tool-${provider}`, tools: [WEATHER] });
    const call = a.messages.flatMap((m) => m.toolCalls ?? []).find((c) => c.function.name === "get_weather");
    assert.ok(call, JSON.stringify(a.messages));
    assert.equal(typeof KEPT[provider](a.messages), "string");
    a.addMessage({ id: "t1", role: "tool", toolCallId: call.id, content: JSON.stringify({ conditions: "sunny" }) });
    const errors = [];
    await a.runAgent({ runId: `tool-${provider}-2`, tools: [WEATHER] }, { onRunErrorEvent: ({ event }) => errors.push(event) });
    assert.deepEqual(errors, []);
    // The follow-up was accepted (the emulator refuses one the real API would refuse), and the
    // emulated model found the provider's own signature or item in it.
    assert.equal(assistantText(a), "Let me check.Sunny.");
    const reasoning = a.messages.find((m) => m.role === "reasoning");
    assert.equal(reasoning.content, "The user wants weather.");
  });
}
