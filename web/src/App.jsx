// The chat page of `rx-allm serve`: useChat from @ai-sdk/react with its default transport
// (POST /api/chat, resume with GET /api/chat/<id>/stream). A tab opened on the page's
// share link (#<chat id>), or the same page refreshed, loads the conversation and follows
// the running generation.
import { useEffect, useState } from "react";
import { useChat } from "@ai-sdk/react";
import { Part } from "./Part.jsx";

function newChatId() {
  return `chat-${Math.random().toString(36).slice(2, 10)}`;
}

export function App() {
  const shared = window.location.hash.slice(1);
  const [chatId] = useState(() => shared || newChatId());
  const [history, setHistory] = useState(shared ? null : []);
  const [info, setInfo] = useState(null);

  useEffect(() => {
    fetch("api/info").then((r) => r.json()).then(setInfo, () => setInfo(null));
    if (!shared) {
      window.history.replaceState(null, "", `#${chatId}`);
      return;
    }
    fetch(`api/chat/${encodeURIComponent(chatId)}`)
      .then((r) => (r.ok ? r.json() : { messages: [] }))
      .then((body) => setHistory(body.messages), () => setHistory([]));
  }, [chatId, shared]);

  return (
    <main>
      <header>
        <h1>rx_allm <small>chat</small></h1>
        <span className="model" data-testid="model">
          {info ? `${info.provider} · ${info.model ?? "default model"}` : "…"}
        </span>
      </header>
      {history === null ? <p className="status">Loading the conversation…</p> : <Chat id={chatId} history={history} follow={Boolean(shared)} />}
    </main>
  );
}

function Chat({ id, history, follow }) {
  const { messages, sendMessage, status, stop, error } = useChat({ id, messages: history, resume: follow });
  const [input, setInput] = useState("");
  const busy = status === "submitted" || status === "streaming";

  function submit(event) {
    event.preventDefault();
    if (!input.trim() || busy) return;
    sendMessage({ text: input });
    setInput("");
  }

  return (
    <>
      <section className="messages" aria-live="polite">
        {messages.map((message) => (
          <article key={message.id} className={`message ${message.role}`} data-role={message.role}>
            {message.role === "assistant" && message.metadata?.provider && (
              <div className="by">
                {message.metadata.provider}
                {message.metadata.model ? ` · ${message.metadata.model}` : ""}
              </div>
            )}
            {message.parts.map((part, index) => (
              <Part key={index} part={part} />
            ))}
          </article>
        ))}
      </section>
      <p className={`status ${error ? "bad" : ""}`} data-testid="status">
        {error ? error.message : busy ? "streaming…" : status === "ready" && messages.length ? "done" : "Ask something."}
      </p>
      <form onSubmit={submit}>
        <textarea
          value={input}
          placeholder="Ask something (try: what is 6 * 7?)"
          onChange={(e) => setInput(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) submit(e);
          }}
        />
        <button type="submit" id="send" disabled={busy}>Send</button>
        <button type="button" id="stop" disabled={!busy} onClick={() => halt(id, stop)}>Stop</button>
      </form>
      <p className="share">
        Open <a href={`#${id}`} target="_blank" rel="noreferrer" id="share">this conversation</a> in another
        tab to follow the same generation.
      </p>
    </>
  );
}

// Stop for every viewer: the server cancels the reply (the provider sees the close), and
// this tab stops reading. Closing a tab or refreshing is not a Stop: the reply keeps
// running for a while so the refreshed page can follow it again.
function halt(id, stop) {
  stop();
  fetch(`api/chat/${encodeURIComponent(id)}/stop`, { method: "POST" });
}
