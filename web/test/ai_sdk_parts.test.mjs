// What useChat sends back besides text, through the real client: the Chat class useChat wraps,
// with the default transport (which validates every chunk against the package's schema).
// RX_ALLM_URL is the base URL of the server pytest started: /<provider>/api/chat answers with
// that provider (through the emulator, reasoning on, a client-side get_weather tool offered).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Chat } from "@ai-sdk/react";
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls, validateUIMessages } from "ai";

const BASE = process.env.RX_ALLM_URL;
assert.ok(BASE, "RX_ALLM_URL must name the server under test");
// The first bytes of a PNG file, as a browser's FileReader gives them.
const PNG_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==";

function settled(chat, done, timeoutMs = 10000) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (chat.status === "error") return reject(chat.error);
      if (chat.status === "ready" && done()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`still ${chat.status}`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

function textOf(message) {
  return message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

// The data each API needs back: where it rides, and under which name.
const KEPT = {
  anthropic: (reply) => reply.parts.find((p) => p.type === "reasoning").providerMetadata.rx_allm.signature,
  gemini: (reply) => reply.parts.find((p) => p.type === "tool-get_weather").callProviderMetadata.rx_allm.thought_signature,
  // the reasoning item, and the message item that follows it
  responses: (reply) =>
    reply.parts.find((p) => p.type === "reasoning").providerMetadata.rx_allm.id &&
    reply.parts.find((p) => p.type === "data-rx_allm").data.item_id,
};

for (const provider of Object.keys(KEPT)) {
  test(`${provider}: an image file from sendMessage reaches the model`, async () => {
    const chat = new Chat({ transport: new DefaultChatTransport({ api: `${BASE}/${provider}/api/chat` }) });
    const file = { type: "file", mediaType: "image/png", filename: "dot.png", url: PNG_URL };
    await chat.sendMessage({ text: "What is this?", files: [file] });
    await settled(chat, () => chat.messages.length === 2);
    assert.equal(chat.error, undefined);
    // The emulated model names what reached it in the provider's request body.
    assert.equal(textOf(chat.lastMessage), "I see one image/png image.");
  });

  test(`${provider}: a file the library cannot send is refused with its media type`, async () => {
    const chat = new Chat({ transport: new DefaultChatTransport({ api: `${BASE}/${provider}/api/chat` }) });
    const file = { type: "file", mediaType: "application/pdf", url: "data:application/pdf;base64,JVBERi0=" };
    await chat.sendMessage({ text: "Summarise", files: [file] });
    assert.equal(chat.status, "error");
    assert.match(
      String(chat.error.message),
      /^invalid_request: messages\.0\.parts\.0\.mediaType: cannot send a file of type application\/pdf/,
    );
  });

  test(`${provider}: reasoning, a tool run in the browser, then a valid follow-up`, async () => {
    const chat = new Chat({
      transport: new DefaultChatTransport({ api: `${BASE}/${provider}/api/chat` }),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
      onToolCall({ toolCall }) {
        // Not awaited, as the AI SDK asks: the output goes in once the stream is done.
        chat.addToolOutput({ tool: toolCall.toolName, toolCallId: toolCall.toolCallId, output: { conditions: "sunny" } });
      },
    });
    await chat.sendMessage({ text: "Weather in Oslo?" });
    await settled(chat, () => textOf(chat.lastMessage) !== "");
    assert.equal(chat.error, undefined);
    const reply = chat.lastMessage;
    // The follow-up was accepted (the emulator refuses one the real API would refuse).
    assert.equal(textOf(reply), "Let me check.Sunny.");
    const reasoning = reply.parts.find((p) => p.type === "reasoning");
    assert.equal(reasoning.text, "The user wants weather.");
    const tool = reply.parts.find((p) => p.type === "tool-get_weather");
    assert.equal(tool.state, "output-available");
    assert.equal(typeof KEPT[provider](reply), "string");
    // What the browser holds (and sends back) is a valid UIMessage list for the package.
    await validateUIMessages({ messages: chat.messages });
  });
}
