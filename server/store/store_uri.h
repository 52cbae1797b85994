// PostgreSQL connection URIs as --store takes them: recognising one, finding and redacting a
// password in it, adding libpq parameters it does not set. Pure string handling (no libpq), so the
// flag parser can use it; libpq itself parses the URI when connecting. Thread-safe.
#pragma once

#include <string>

namespace attattr::store {

// True for "postgresql://..." and "postgres://..." (what --store takes as a PostgreSQL URI).
bool IsPostgresUri(const std::string& store);
// True when the URI carries a password, in its user info ("postgresql://user:secret@host/db") or
// as a password= query parameter.
bool UriHasPassword(const std::string& uri);
// The URI with any password replaced by "***", for logs and messages.
std::string RedactUri(const std::string& uri);
// `uri` with `key=value` (percent-encoded) added to its query unless the URI sets `key` itself.
std::string WithUriDefault(std::string uri, const std::string& key, const std::string& value);

}  // namespace attattr::store
