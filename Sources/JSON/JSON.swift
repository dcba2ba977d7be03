// JSON values: a strict parser and a compact serializer (RFC 8259), without Foundation.
