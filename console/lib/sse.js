// Server-Sent Events over fetch (EventSource cannot send an Authorization header): yields
// {id, event, data} for each event of a text/event-stream response body.
export async function* readEventStream(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { id: null, event: "message", data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl = buffer.search(/\r?\n/);
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(buffer[nl] === "\r" ? nl + 2 : nl + 1);
        if (line === "") {
          if (event.data.length > 0) yield { id: event.id, event: event.event, data: event.data.join("\n") };
          event = { id: null, event: "message", data: [] };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") event.data.push(value);
          else if (field === "event") event.event = value;
          else if (field === "id") event.id = value;
        }
        nl = buffer.search(/\r?\n/);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
