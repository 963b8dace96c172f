"""Application hardening: response security headers and the SSRF guard for outbound fetches."""
