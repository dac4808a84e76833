"""Facts: small reads of live state on a server, each returning a typed value."""
