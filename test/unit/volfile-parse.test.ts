import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../runtime/core/errors";
import { parseVolfile, parseVolfileCollecting } from "../../runtime/volfile";

function syntaxError(text: string): ConfigError {
  try {
    parseVolfile(text, "t.vol");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected a syntax error");
}

test("parses volumes, types, options, subvolumes with their lines", () => {
  const v = parseVolfile(
    ["# head", "volume a", "  type storage/posix", "\toption directory /x # comment", "end-volume", "",
      "volume b", "type features/posix-locks", "subvolumes a", "end-volume"].join("\n"),
    "t.vol",
  );
  assert.equal(v.file, "t.vol");
  assert.deepEqual(v.volumes.map((x) => [x.name, x.type, x.line, x.typeLine, x.endLine]), [
    ["a", "storage/posix", 2, 3, 5],
    ["b", "features/posix-locks", 7, 8, 10],
  ]);
  assert.deepEqual(v.volumes[0]!.options, [{ key: "directory", values: ["/x"], line: 4 }]);
  assert.deepEqual(v.volumes[1]!.subvolumes, ["a"]);
  assert.equal(v.volumes[1]!.subvolumesLine, 9);
});

test("# starts a comment only at the start of a token", () => {
  const v = parseVolfile('volume a\ntype t/x\noption k a#b #c d\noption q "#x" y\nend-volume\n');
  assert.deepEqual(v.volumes[0]!.options.map((o) => o.values), [["a#b"], ["#x", "y"]]);
});

test("quoted words keep spaces, escapes and keywords; adjacent parts join", () => {
  const v = parseVolfile('volume a\ntype t/x\noption k "a b\\"c" \noption t "type"\noption j x"y z"\\ w\nend-volume');
  assert.deepEqual(v.volumes[0]!.options.map((o) => o.values), [['a b"c'], ["type"], ["xy z w"]]);
});

test("subvolumeS with a capital S is the keyword, CRLF line ends are fine", () => {
  const v = parseVolfile("volume a\r\ntype t/x\r\nend-volume\r\nvolume b\r\ntype t/y\r\nsubvolumeS a\r\nend-volume\r\n");
  assert.deepEqual(v.volumes[1]!.subvolumes, ["a"]);
});

test("syntax errors name the line", () => {
  const cases: [string, number, RegExp][] = [
    ["volume a\ntype t/x\noption k\nend-volume", 3, /no value/],
    ["volume a\ntype t/x\noption\nend-volume", 3, /needs a name and a value/],
    ["volume a\ntype t/x\n", 1, /not closed/],
    ["volume a\ntype t/x\nvolume b\ntype t/y\nend-volume", 3, /"a" \(line 1\) is not closed/],
    ["end-volume", 1, /without a volume/],
    ["option k v", 1, /outside a volume/],
    ["type t/x", 1, /outside a volume/],
    ["volume a\ntype t/x\ntype t/y\nend-volume", 3, /type given twice/],
    ["volume a\noption k v\ntype t/x\nend-volume", 3, /type must be the first line/],
    ["volume a\ntype t/x\nsubvolumes b\nsubvolumes c\nend-volume", 4, /subvolumes given twice/],
    ["volume a\ntype t/x\nsubvolumes\nend-volume", 3, /at least one/],
    ["volume\ntype t/x\nend-volume", 1, /needs a name/],
    ["volume a b\ntype t/x\nend-volume", 1, /one name/],
    ["volume a\ntype\nend-volume", 2, /needs a value/],
    ["volume a\ntype t/x\nend-volume now", 3, /takes no words/],
    ["volume a\ntype t/x\noption type v\nend-volume", 3, /keyword "type" out of place/],
    ["volume a\nhello world\nend-volume", 2, /unexpected word "hello"/],
    ['volume a\ntype t/x\noption k "abc\nend-volume', 3, /unterminated quoted word/],
    ["volume a\ntype t/x\noption k `hostname`\nend-volume", 3, /backtick/],
    ["volume a\ntype t/x\noption k v\\", 3, /backslash/],
  ];
  for (const [text, line, message] of cases) {
    const e = syntaxError(text);
    assert.equal(e.where?.line, line, `${JSON.stringify(text)}: ${e.message}`);
    assert.match(e.message, message);
    assert.ok(e.message.startsWith(`t.vol:${line}: `), e.message);
  }
});

test("the collecting parser reports every syntax error and recovers at the next line", () => {
  const { volfile, errors } = parseVolfileCollecting("volume a\ntype t/x\noption k\nbad word\nend-volume\nend-volume\n", "t.vol");
  assert.deepEqual(errors.map((e) => e.where?.line), [3, 4, 6]);
  assert.equal(volfile.volumes.length, 1);
});

test("an empty or comment-only file parses to no volumes", () => {
  assert.deepEqual(parseVolfile("  \n# nothing\n\n").volumes, []);
});
