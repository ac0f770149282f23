// A Server-Sent Events parser for a response read with fetch(): the
// console's streams are POSTs, which EventSource cannot send. It follows
// the HTML standard's rules for the fields the API sends (event, data,
// id) and ignores comments and other fields.

export class SSEParser {
  constructor() {
    this.buf = "";
    this.skipLF = false; // the last chunk ended in \r: a \n next is its line end
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.hasData = false;
  }

  // push takes the next piece of text (split anywhere) and returns the
  // events it completes, each {event, data, id}.
  push(text) {
    const out = [];
    let s = this.buf + text;
    if (s === "") return out;
    if (this.skipLF && s.startsWith("\n")) s = s.slice(1);
    this.skipLF = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c !== "\n" && c !== "\r") continue;
      this.line(s.slice(start, i), out);
      if (c === "\r") {
        if (i + 1 === s.length) this.skipLF = true;
        else if (s[i + 1] === "\n") i++;
      }
      start = i + 1;
    }
    this.buf = s.slice(start);
    return out;
  }

  line(line, out) {
    if (line === "") {
      if (this.hasData) {
        out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event": this.event = value; break;
      case "data": this.data.push(value); this.hasData = true; break;
      case "id": if (!value.includes("\0")) this.id = value; break;
    }
  }
}
