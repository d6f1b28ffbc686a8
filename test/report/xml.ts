// A strict little XML reader for the JUnit tests (no npm dependencies): it
// accepts only well-formed documents of the shape the reporter writes and
// throws on anything else, so a parse is itself the well-formedness check.

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Character data directly inside the element, entities decoded. */
  text: string;
}

/** A parsed document: its root element, and the text of the comments before it. */
export interface XmlDocument {
  root: XmlElement;
  comments: string[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlChar(code: number): boolean {
  return (
    code === 0x09 ||
    code === 0x0a ||
    code === 0x0d ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

function decode(raw: string, where: string): string {
  return raw.replace(/&([^;]*);?/g, (whole, body: string) => {
    if (!whole.endsWith(';')) throw new Error(`bare & in ${where}`);
    if (body in ENTITIES) return ENTITIES[body]!;
    const match = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(body);
    if (!match) throw new Error(`unknown entity &${body}; in ${where}`);
    const code = match[1] !== undefined ? parseInt(match[1], 16) : parseInt(match[2]!, 10);
    if (!xmlChar(code)) throw new Error(`reference to an illegal character &${body}; in ${where}`);
    return String.fromCodePoint(code);
  });
}

/** The root element of a document (comments are checked, then dropped). */
export function parseXml(document: string): XmlElement {
  return parseXmlDocument(document).root;
}

export function parseXmlDocument(document: string): XmlDocument {
  for (const ch of document) {
    const code = ch.codePointAt(0)!;
    if (!xmlChar(code)) throw new Error(`illegal XML 1.0 character U+${code.toString(16)}`);
  }
  const declaration = '<?xml version="1.0" encoding="UTF-8"?>\n';
  if (!document.startsWith(declaration)) throw new Error('missing XML declaration');
  let pos = declaration.length;

  const name = (): string => {
    const match = /^[A-Za-z_][\w.-]*/.exec(document.slice(pos));
    if (!match) throw new Error(`expected a name at ${pos}`);
    pos += match[0].length;
    return match[0];
  };
  const skipSpace = (): void => {
    while (/\s/.test(document[pos] ?? '')) pos += 1;
  };
  const expect = (text: string): void => {
    if (!document.startsWith(text, pos)) throw new Error(`expected ${JSON.stringify(text)} at ${pos}`);
    pos += text.length;
  };
  /** `<!-- text -->`: "--" may not appear inside, nor "-" just before the end. */
  const comment = (): string => {
    expect('<!--');
    const end = document.indexOf('-->', pos);
    if (end === -1) throw new Error(`unclosed comment at ${pos}`);
    const text = document.slice(pos, end);
    if (text.includes('--') || text.endsWith('-')) throw new Error(`"--" inside a comment at ${pos}`);
    pos = end + 3;
    return text;
  };

  const element = (): XmlElement => {
    expect('<');
    const node: XmlElement = { name: name(), attributes: {}, children: [], text: '' };
    for (;;) {
      const before = pos;
      skipSpace();
      if (document.startsWith('/>', pos)) {
        pos += 2;
        return node;
      }
      if (document[pos] === '>') {
        pos += 1;
        break;
      }
      if (pos === before) throw new Error(`expected whitespace before an attribute at ${pos}`);
      const key = name();
      if (key in node.attributes) throw new Error(`duplicate attribute ${key}`);
      expect('="');
      const end = document.indexOf('"', pos);
      const raw = document.slice(pos, end);
      if (end === -1 || raw.includes('<')) throw new Error(`bad value for attribute ${key}`);
      node.attributes[key] = decode(raw, `attribute ${key}`);
      pos = end + 1;
    }
    for (;;) {
      if (document.startsWith('</', pos)) {
        pos += 2;
        if (name() !== node.name) throw new Error(`mismatched end tag for <${node.name}>`);
        expect('>');
        return node;
      }
      if (document.startsWith('<!--', pos)) {
        comment();
        continue;
      }
      if (document[pos] === '<') {
        node.children.push(element());
        continue;
      }
      const end = document.indexOf('<', pos);
      if (end === -1) throw new Error(`unclosed <${node.name}>`);
      const raw = document.slice(pos, end);
      if (raw.includes(']]>')) throw new Error(`"]]>" in the text of <${node.name}>`);
      // Parsers turn raw CR and CRLF into LF; only &#13; keeps a CR.
      node.text += decode(raw.replace(/\r\n?/g, '\n'), `<${node.name}>`);
      pos = end;
    }
  };

  const comments: string[] = [];
  for (;;) {
    skipSpace();
    if (!document.startsWith('<!--', pos)) break;
    comments.push(comment());
  }
  const root = element();
  skipSpace();
  if (pos !== document.length) throw new Error('content after the root element');
  return { root, comments };
}
