// npm install canonicalize
import { createHmac, timingSafeEqual } from "node:crypto";
import canonicalize from "canonicalize";

const PREFIX = "hmac-sha256+jcs:";

// RFC 8785 bytes of the command without its signature: what the guardian signs.
export function canonical(command) {
  const { signature, ...unsigned } = command;
  return Buffer.from(canonicalize(unsigned), "utf8");
}

// True when the parsed command carries a valid hmac-sha256+jcs signature for key.
export function verify(command, key) {
  const signature = typeof command.signature === "string" ? command.signature : "";
  if (!signature.startsWith(PREFIX)) return false;
  const given = Buffer.from(signature.slice(PREFIX.length));
  const expected = Buffer.from(createHmac("sha256", key).update(canonical(command)).digest("hex"));
  return given.length === expected.length && timingSafeEqual(given, expected);
}
