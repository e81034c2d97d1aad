/* The twin's map screens, part 6 of 6: the live alarm stream client.
 *
 * Reads GET /alarms/stream (Server-Sent Events) with fetch, since EventSource cannot send the X-API-Key header;
 * resumes from the last event id after a break, and hands each event to the screen.
 */
(function (T) {
  "use strict";

  let stream = null;

  T.stopStream = function () {
    if (stream) stream.abort();
    stream = null;
  };

  /**
   * Follow the stream from event `since` on. `on` = {event(kind, data), id(n), connected(bool), status(text, kind)}.
   */
  T.startStream = function (since, on) {
    T.stopStream();
    const controller = (stream = new AbortController());
    let cursor = since == null ? null : since;
    (async () => {
      while (!controller.signal.aborted) {
        try {
          const target = T.url("alarms/stream");
          if (cursor != null) target.search = "since=" + cursor;
          const response = await fetch(target, {
            headers: Object.assign({ Accept: "text/event-stream" }, T.key.headers()), signal: controller.signal,
          });
          if (response.status === 401 || response.status === 403) {
            on.status("实时告警需要值班员或检查员密钥", "error");
            return;
          }
          if (!response.ok) throw new Error("stream " + response.status);
          on.status("● 实时告警已连接", "ok");
          on.connected(true);
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replace(/\r\n/g, "\n");
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              let kind = "message";
              const data = [];
              for (const line of block.split("\n")) {
                if (line.startsWith("id:")) on.id((cursor = Number(line.slice(3).trim())));
                else if (line.startsWith("event:")) kind = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).trim());
              }
              if (data.length) on.event(kind, JSON.parse(data.join("\n")));
            }
          }
        } catch (error) {
          if (controller.signal.aborted) return;
          console.warn("twin screen: alarm stream interrupted", error);
        }
        on.connected(false);
        on.status("实时告警重连中…", "warn");
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
  };
})((window.twin = window.twin || {}));
