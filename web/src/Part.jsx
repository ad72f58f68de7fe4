// One part of a UIMessage: text, reasoning (collapsible), a tool call with its input and output.
export function Part({ part }) {
  if (part.type === "text") {
    return <p className="text">{part.text}</p>;
  }
  if (part.type === "reasoning") {
    if (!part.text) return null; // a part that only carries what the provider needs back
    return (
      <details className="reasoning">
        <summary>{part.state === "streaming" ? "Thinking…" : "Reasoning"}</summary>
        <p>{part.text}</p>
      </details>
    );
  }
  if (part.type === "dynamic-tool" || part.type.startsWith("tool-")) {
    const name = part.type === "dynamic-tool" ? part.toolName : part.type.slice(5);
    return (
      <div className="tool" data-state={part.state} data-tool={name}>
        <div className="call">
          <span className="name">{name}</span>
          <code className="input">{part.input === undefined ? "…" : JSON.stringify(part.input)}</code>
          <span className="state">{label(part.state)}</span>
        </div>
        {part.state === "output-available" && <pre className="output">{show(part.output)}</pre>}
        {part.state === "output-error" && <pre className="output bad">{part.errorText}</pre>}
      </div>
    );
  }
  if (part.type === "data-ask-user") {
    return <p className="ask">{part.data.question}</p>;
  }
  return null;
}

function label(state) {
  return {
    "input-streaming": "writing the call…",
    "input-available": "running…",
    "output-available": "done",
    "output-error": "failed",
  }[state] ?? state;
}

function show(output) {
  return typeof output === "string" ? output : JSON.stringify(output, null, 2);
}
