import { ConfigError } from "../core/errors";

/** A word of a volfile line. `keyword` is set for the grammar's keywords when written bare (unquoted). */
export interface Token {
  text: string;
  line: number;
  keyword: Keyword | undefined;
}

export type Keyword = "volume" | "type" | "option" | "subvolumes" | "end-volume";

// GlusterFS's lexer (spec.l / graph.l): lowercase keywords, the final `s` of subvolumes may be `S`.
const KEYWORDS: ReadonlyMap<string, Keyword> = new Map<string, Keyword>([
  ["volume", "volume"],
  ["type", "type"],
  ["option", "option"],
  ["subvolumes", "subvolumes"],
  ["subvolumeS", "subvolumes"],
  ["end-volume", "end-volume"],
]);

const SPACE = new Set([" ", "\t", "\r", "\f", "\v"]);

/**
 * Splits a volfile into lines of tokens. A word is a run of anything but whitespace, `"` and `\`;
 * `"..."` is one word (no newline inside); `\` takes the next character literally; `#` at the start
 * of a token comments out the rest of the line (`a#b` is one word). Adjacent quoted and bare parts
 * join into one word, as in a shell. Returns the non-empty lines, each with its tokens.
 */
export function tokenize(text: string, file: string): Token[][] {
  const lines: Token[][] = [];
  let current: Token[] = [];
  let line = 1;
  let word: string | undefined; // the token being built
  let bare = true; // no quotes or escapes in it: may be a keyword
  let i = 0;

  const endWord = (): void => {
    if (word === undefined) return;
    current.push({ text: word, line, keyword: bare ? KEYWORDS.get(word) : undefined });
    word = undefined;
    bare = true;
  };
  const endLine = (): void => {
    endWord();
    if (current.length > 0) lines.push(current);
    current = [];
  };
  const fail = (message: string): never => {
    throw new ConfigError(message, { file, line });
  };

  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      endLine();
      line++;
      i++;
    } else if (SPACE.has(c)) {
      endWord();
      i++;
    } else if (c === "#" && word === undefined) {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "`") {
      // 1.3 ran the command and used its output; a config check must not run commands.
      fail("backtick command substitution is not supported (write the value itself)");
    } else if (c === "\\") {
      const next = text[i + 1];
      if (next === undefined || next === "\n") fail("a backslash at the end of a line escapes nothing");
      word = (word ?? "") + next;
      bare = false;
      i += 2;
    } else if (c === '"') {
      let quoted = "";
      i++;
      for (;;) {
        const q = text[i];
        if (q === undefined || q === "\n") fail('unterminated quoted word: missing closing "');
        if (q === '"') break;
        if (q === "\\") {
          const next = text[i + 1];
          if (next === undefined || next === "\n") fail('unterminated quoted word: missing closing "');
          quoted += next;
          i += 2;
        } else {
          quoted += q;
          i++;
        }
      }
      i++; // the closing quote
      word = (word ?? "") + quoted;
      bare = false;
    } else {
      word = (word ?? "") + c;
      i++;
    }
  }
  endLine();
  return lines;
}
