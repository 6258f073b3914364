// A small command-line front end to typage (the npm package age-encryption),
// used by pouch's interoperability tests (tests/pq.rs).
//
//   node typage.mjs keygen IDENTITY_FILE RECIPIENT_FILE   post-quantum key pair
//   node typage.mjs encrypt RECIPIENTS_FILE IN OUT        one recipient per line
//   node typage.mjs decrypt IDENTITY_FILE IN OUT          AGE-SECRET-KEY-… lines
import { readFileSync, writeFileSync } from "node:fs";
import * as age from "age-encryption";

const lines = (path) =>
  readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

const [command, ...args] = process.argv.slice(2);
if (command === "keygen") {
  const [identityFile, recipientFile] = args;
  const identity = await age.generateHybridIdentity();
  const recipient = await age.identityToRecipient(identity);
  writeFileSync(identityFile, `# typage\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600 });
  writeFileSync(recipientFile, `${recipient}\n`);
} else if (command === "encrypt") {
  const [recipientsFile, input, output] = args;
  const e = new age.Encrypter();
  for (const r of lines(recipientsFile)) e.addRecipient(r);
  writeFileSync(output, await e.encrypt(readFileSync(input)));
} else if (command === "decrypt") {
  const [identityFile, input, output] = args;
  const d = new age.Decrypter();
  for (const i of lines(identityFile)) d.addIdentity(i);
  writeFileSync(output, await d.decrypt(readFileSync(input)));
} else {
  console.error("usage: typage.mjs keygen|encrypt|decrypt ...");
  process.exit(2);
}
